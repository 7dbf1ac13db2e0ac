// The compiled inner loop of lstmlab's fused LSTM (see fused.py for the equations).
//
// Two ops, registered as torch.ops.lstmlab.fused_lstm_forward / fused_lstm_backward. Each runs
// the time loop of one layer-direction: per step one matrix product (at::addmm, MKL/oneDNN) and
// one fused pass over the elements of each sequence. The input projections before the loop and
// the weight gradients after it are big matrix products done in Python (fused.py).
//
// Every variant runs the same code: a gate the spec lacks reads a row of ones (i = 1, o = 1), so
// the loops stay free of branches per element; only loop-invariant switches remain (g = tanh /
// identity, h = tanh / identity, CIFG's f = 1 - i, peepholes, the projection). A term the spec
// lacks is left out, never multiplied by zero: 0 * inf is NaN, and NaN and inf must come out
// exactly where the reference loop (cells.py) puts them. For that reason the build does not use
// -ffast-math (it assumes no NaN and no inf); exp is vectorised through glibc's libmvec by the
// declarations below, which -ffast-math used to switch on.
//
// Shapes: T steps, B sequences, H hidden units, G gate blocks, S learned sigmoid gates (FGR),
// Hy the width of the output y: P with a projection (y = W_hr m, m = h(c) o), else H.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <utility>

#include <cmath>
#include <vector>

#define LSTMLAB_IVDEP _Pragma("GCC ivdep")

// glibc declares these SIMD variants (libmvec) only under -ffast-math (__FAST_MATH__); declared
// here so that GCC vectorises the gate loops with IEEE semantics kept (-fno-math-errno suffices).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
extern "C" {
float expf(float) noexcept __attribute__((simd("notinbranch")));
double exp(double) noexcept __attribute__((simd("notinbranch")));
}
#endif

namespace {

// The variant, as Python's Layout.ints(): sizes and the block of each gate (-1 if absent).
struct Layout {
  int64_t H, G, S;
  int64_t i, f, z, o;     // block in the (G*H) pre-activations
  int64_t si, sf, so;     // block in FGR's (S*H) vector of gate activations
  bool g_tanh, h_tanh, coupled, fgr, peep;
  int64_t P;              // projection size, 0 for none

  explicit Layout(c10::IntArrayRef v)
      : H(v[0]), G(v[1]), S(v[2]), i(v[3]), f(v[4]), z(v[5]), o(v[6]), si(v[7]), sf(v[8]),
        so(v[9]), g_tanh(v[10] != 0), h_tanh(v[11] != 0), coupled(v[12] != 0), fgr(v[13] != 0),
        peep(v[14] != 0), P(v[15]) {
    TORCH_CHECK(v.size() == 16, "lstmlab: bad layout");
  }
};

// Written with exp alone so that GCC vectorises them (libmvec). IEEE arithmetic gives the limits
// exactly: exp overflows to inf and 1 / inf = 0, so sigmoid(-inf) = 0, tanh(+-inf) = +-1, and NaN
// stays NaN.
template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T tanh_(T x) {
  return T(2) / (T(1) + std::exp(T(-2) * x)) - T(1);
}

// One step of the forward pass for rows [0, B): pre-activations `a` (B, G*H) in place become the
// activations; writes c_t, h(c_t), y_t (with a projection: m_t = h(c_t) o_t, projected by the
// caller) and FGR's s_t. Rows outside their sequence hold the state (m_t: zero).
template <typename T>
void forward_rows(const Layout& L, int64_t B, T* a, const T* rec, const bool* mask, const T* yp,
                  const T* cp, const T* sp, T* yn, T* cn, T* hcn, T* sn, const T* P,
                  const T* ones) {
  const int64_t H = L.H, GH = L.G * H, SH = L.S * H;
  const T* pi = P;
  const T* pf = P + H;
  const T* po = P + 2 * H;
  for (int64_t b = 0; b < B; ++b) {
    T* ab = a + b * GH;
    const T* c0 = cp + b * H;
    T* c1 = cn + b * H;
    T* y1 = yn + b * H;
    if (mask != nullptr && !mask[b]) {  // past the end: hold the state
      if (L.P > 0)
        std::fill(y1, y1 + H, T(0));
      else
        std::copy(yp + b * H, yp + (b + 1) * H, y1);
      std::copy(c0, c0 + H, c1);
      if (L.fgr) std::copy(sp + b * SH, sp + (b + 1) * SH, sn + b * SH);
      continue;
    }
    if (L.fgr) {  // + W_gates s_{t-1}, computed for all rows by one matrix product
      const int64_t blocks[3][2] = {{L.i, L.si}, {L.f, L.sf}, {L.o, L.so}};
      for (const auto& bs : blocks) {
        if (bs[1] < 0) continue;
        T* dst = ab + bs[0] * H;
        const T* src = rec + b * SH + bs[1] * H;
        LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) dst[j] += src[j];
      }
    }
    T* ai = L.i >= 0 ? ab + L.i * H : nullptr;
    T* af = L.f >= 0 ? ab + L.f * H : nullptr;
    T* az = ab + L.z * H;
    T* ao = L.o >= 0 ? ab + L.o * H : nullptr;
    if (ai && L.peep)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) ai[j] = sigmoid(ai[j] + pi[j] * c0[j]);
    else if (ai)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) ai[j] = sigmoid(ai[j]);
    if (af && L.peep)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) af[j] = sigmoid(af[j] + pf[j] * c0[j]);
    else if (af)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) af[j] = sigmoid(af[j]);
    if (L.g_tanh)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) az[j] = tanh_(az[j]);
    const T* I = ai ? ai : ones;
    const T* F = af ? af : ones;
    const bool coupled = L.coupled;
    LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) {
      const T f = coupled ? T(1) - I[j] : F[j];
      c1[j] = az[j] * I[j] + c0[j] * f;
    }
    if (ao && L.peep)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) ao[j] = sigmoid(ao[j] + po[j] * c1[j]);
    else if (ao)
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) ao[j] = sigmoid(ao[j]);
    const T* O = ao ? ao : ones;
    if (L.h_tanh) {
      T* hc = hcn + b * H;
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) {
        hc[j] = tanh_(c1[j]);
        y1[j] = hc[j] * O[j];
      }
    } else {
      LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) y1[j] = c1[j] * O[j];
    }
    if (L.fgr) {
      const int64_t blocks[3][2] = {{L.i, L.si}, {L.f, L.sf}, {L.o, L.so}};
      for (const auto& bs : blocks)
        if (bs[1] >= 0) std::copy(ab + bs[0] * H, ab + (bs[0] + 1) * H, sn + b * SH + bs[1] * H);
    }
  }
}

// The element loop of one row of the backward step. The switches are template arguments: GCC
// vectorises this loop only when no run-time switch is left inside it, and a switch cannot become
// a multiplication by 0 or 1 (NaN * 0 is NaN). HT: h = tanh; GT: g = tanh; CP: CIFG (f = 1 - i);
// PI, PF, PO: the peephole term of a gate that exists.
template <typename T, bool HT, bool GT, bool CP, bool PI, bool PF, bool PO>
void backward_elems(int64_t H, const T* dout_b, const T* dys_b, const T* I, const T* F,
                    const T* Z, const T* O, const T* hc, const T* c0, const T* dsi, const T* dsf,
                    const T* dso, T* dc, const T* pi, const T* pf, const T* po, T* dai_out,
                    T* daf_out, T* daz_out, T* dao_out) {
  LSTMLAB_IVDEP for (int64_t j = 0; j < H; ++j) {
    const T dy = dout_b[j] + dys_b[j];
    const T i = I[j], z = Z[j], o = O[j], h = hc[j];
    const T dao = (dy * h + dso[j]) * o * (T(1) - o);                // 0 when o = 1
    T dc_t = dc[j] + dy * o * (HT ? T(1) - h * h : T(1));
    if constexpr (PO) dc_t += dao * po[j];
    const T daz = dc_t * i * (GT ? T(1) - z * z : T(1));
    const T f = CP ? T(1) - i : F[j];
    const T df = dc_t * c0[j] + dsf[j];
    T di = dc_t * z + dsi[j];
    if constexpr (CP) di -= df;                                        // f = 1 - i: df/di = -1
    const T dai = di * i * (T(1) - i);                                 // 0 when i = 1
    const T daf = df * f * (T(1) - f);                                 // unused unless learned
    T dc_prev = dc_t * f;
    if constexpr (PI) dc_prev += dai * pi[j];
    if constexpr (PF) dc_prev += daf * pf[j];
    dc[j] = dc_prev;
    dai_out[j] = dai;
    daf_out[j] = daf;
    daz_out[j] = daz;
    dao_out[j] = dao;
  }
}

template <typename T>
using BackwardElems = decltype(&backward_elems<T, false, false, false, false, false, false>);

// The 64 instantiations, indexed by HT + 2 GT + 4 CP + 8 PI + 16 PF + 32 PO.
template <typename T, std::size_t... K>
constexpr std::array<BackwardElems<T>, sizeof...(K)> backward_table(std::index_sequence<K...>) {
  return {&backward_elems<T, (K & 1) != 0, (K & 2) != 0, (K & 4) != 0, (K & 8) != 0,
                          (K & 16) != 0, (K & 32) != 0>...};
}

// One step of the backward pass (see fused.py's docstring for the equations). Reads dy_t's two
// parts (dout, the carried dys; with a projection the caller passes dm_t = W_hr^T dy_t and zeros),
// dc_t (dcs, updated in place to dc_{t-1}) and FGR's ds_t; writes the gradient of the
// pre-activations dA (B, G*H) (and dAs, (B, S*H), for FGR) and, for rows past their end, the
// carries that pass through unchanged (ycarry unless null, scarry).
template <typename T>
void backward_rows(const Layout& L, int64_t B, const T* a, const bool* mask, const T* cp,
                   const T* cn, const T* hcn, const T* dout, const T* dys, T* dcs, const T* ds,
                   T* dA, T* dAs, T* ycarry, T* scarry, const T* P, const T* ones,
                   const T* zeros, T* scratch) {
  const int64_t H = L.H, GH = L.G * H, SH = L.S * H;
  const T* pi = P;
  const T* pf = P + H;
  const T* po = P + 2 * H;
  // a peephole term exists only where the gate does (a missing gate's da may be NaN * 0)
  const bool pe_i = L.peep && L.i >= 0, pe_f = L.peep && L.f >= 0, pe_o = L.peep && L.o >= 0;
  static constexpr auto table = backward_table<T>(std::make_index_sequence<64>{});
  const BackwardElems<T> elems = table[int(L.h_tanh) + 2 * int(L.g_tanh) + 4 * int(L.coupled) +
                                       8 * int(pe_i) + 16 * int(pe_f) + 32 * int(pe_o)];
  for (int64_t b = 0; b < B; ++b) {
    T* dAb = dA + b * GH;
    T* dAsb = L.fgr ? dAs + b * SH : nullptr;
    if (mask != nullptr) {
      if (!mask[b]) {  // past the end: no gradient to the step, the carries pass through
        std::fill(dAb, dAb + GH, T(0));
        if (ycarry != nullptr) std::copy(dys + b * H, dys + (b + 1) * H, ycarry + b * H);
        if (L.fgr) {
          std::fill(dAsb, dAsb + SH, T(0));
          std::copy(ds + b * SH, ds + (b + 1) * SH, scarry + b * SH);
        }
        continue;
      }
      if (ycarry != nullptr) std::fill(ycarry + b * H, ycarry + (b + 1) * H, T(0));
      if (L.fgr) std::fill(scarry + b * SH, scarry + (b + 1) * SH, T(0));
    }
    const T* ab = a + b * GH;
    const T* I = L.i >= 0 ? ab + L.i * H : ones;
    const T* F = L.f >= 0 ? ab + L.f * H : ones;
    const T* Z = ab + L.z * H;
    const T* O = L.o >= 0 ? ab + L.o * H : ones;
    const T* c0 = cp + b * H;
    const T* c1 = cn + b * H;
    const T* hc = L.h_tanh ? hcn + b * H : c1;
    const T* dout_b = dout + b * H;
    const T* dys_b = dys + b * H;
    T* dc = dcs + b * H;
    const T* dsb = L.fgr ? ds + b * SH : nullptr;
    const T* dsi = L.fgr && L.si >= 0 ? dsb + L.si * H : zeros;
    const T* dsf = L.fgr && L.sf >= 0 ? dsb + L.sf * H : zeros;
    const T* dso = L.fgr && L.so >= 0 ? dsb + L.so * H : zeros;
    T* dai_out = L.i >= 0 ? dAb + L.i * H : scratch;
    T* daf_out = L.f >= 0 ? dAb + L.f * H : scratch + H;
    T* daz_out = dAb + L.z * H;
    T* dao_out = L.o >= 0 ? dAb + L.o * H : scratch + 2 * H;
    elems(H, dout_b, dys_b, I, F, Z, O, hc, c0, dsi, dsf, dso, dc, pi, pf, po, dai_out, daf_out,
          daz_out, dao_out);
    if (L.fgr) {
      const int64_t blocks[3][2] = {{L.i, L.si}, {L.f, L.sf}, {L.o, L.so}};
      for (const auto& bs : blocks)
        if (bs[1] >= 0) std::copy(dAb + bs[0] * H, dAb + (bs[0] + 1) * H, dAsb + bs[1] * H);
    }
  }
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

at::Tensor none_if_absent(const at::Tensor& t, const at::Tensor& like) {
  return t.defined() ? t : at::empty({0}, like.options());
}

// acts (T, B, G*H): W x_t + b for every step on entry, the gate activations on return.
// Returns Y (T, B, Hy) the state y after each step, C (T, B, H), HC = h(C) (T, B, H),
// S (T, B, S*H) for FGR and, with a projection Wr (P, H), M (T, B, H) = h(C) o before it
// (empty tensors where not needed).
std::vector<at::Tensor> fused_lstm_forward(c10::IntArrayRef layout, bool reverse, at::Tensor acts,
                                           const std::optional<at::Tensor>& mask_opt,
                                           const at::Tensor& h0, const at::Tensor& c0,
                                           const at::Tensor& R, const at::Tensor& P,
                                           const std::optional<at::Tensor>& Wg_opt,
                                           const std::optional<at::Tensor>& Wr_opt) {
  const Layout L(layout);
  TORCH_CHECK(acts.is_contiguous() && h0.is_contiguous() && c0.is_contiguous() &&
              P.is_contiguous(), "lstmlab: fused_lstm_forward needs contiguous tensors");
  TORCH_CHECK((L.P > 0) == (Wr_opt.has_value() && Wr_opt->defined()),
              "lstmlab: fused_lstm_forward: projection size and weight_hr disagree");
  const int64_t T_ = acts.size(0), B = acts.size(1), H = L.H, SH = L.S * H;
  const int64_t Hy = L.P > 0 ? L.P : H;
  const auto opts = acts.options();
  at::Tensor mask = mask_opt.has_value() ? mask_opt->contiguous() : at::Tensor();
  at::Tensor Y = at::empty({T_, B, Hy}, opts), C = at::empty({T_, B, H}, opts);
  at::Tensor M = L.P > 0 ? at::empty({T_, B, H}, opts) : at::Tensor();
  at::Tensor HC = L.h_tanh ? at::empty({T_, B, H}, opts) : at::Tensor();
  at::Tensor S = L.fgr ? at::empty({T_, B, SH}, opts) : at::Tensor();
  at::Tensor rec = L.fgr ? at::empty({B, SH}, opts) : at::Tensor();
  at::Tensor Wgt = L.fgr ? Wg_opt->t() : at::Tensor();
  at::Tensor Wrt = L.P > 0 ? Wr_opt->t() : at::Tensor();
  const at::Tensor Rt = R.t();
  at::Tensor y = h0, c = c0, s = L.fgr ? at::zeros({B, SH}, opts) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "fused_lstm_forward", [&] {
    std::vector<scalar_t> ones(H, scalar_t(1));
    const scalar_t* Pp = P.data_ptr<scalar_t>();
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? T_ - 1 - k : k;
      at::Tensor a = acts.select(0, t);
      a.addmm_(y, Rt);                                  // + R y_{t-1}
      if (L.fgr) at::mm_out(rec, s, Wgt);               // W_gates s_{t-1}
      const bool* m = mask.defined() ? mask.data_ptr<bool>() + t * B : nullptr;
      at::Tensor yn = Y.select(0, t), cn = C.select(0, t);
      at::Tensor mn = L.P > 0 ? M.select(0, t) : yn;    // m_t, which is y_t without projection
      at::Tensor sn = L.fgr ? S.select(0, t) : at::Tensor();
      forward_rows<scalar_t>(L, B, a.data_ptr<scalar_t>(), ptr<scalar_t>(rec), m,
                             ptr<scalar_t>(y), c.data_ptr<scalar_t>(), ptr<scalar_t>(s),
                             ptr<scalar_t>(mn), cn.data_ptr<scalar_t>(),
                             L.h_tanh ? ptr<scalar_t>(HC.select(0, t)) : nullptr,
                             ptr<scalar_t>(sn), Pp, ones.data());
      if (L.P > 0) {                                    // y_t = W_hr m_t; held rows keep y
        at::mm_out(yn, mn, Wrt);
        if (m != nullptr) {
          const scalar_t* yp = ptr<scalar_t>(y);
          scalar_t* yo = ptr<scalar_t>(yn);
          for (int64_t b = 0; b < B; ++b)
            if (!m[b]) std::copy(yp + b * Hy, yp + (b + 1) * Hy, yo + b * Hy);
        }
      }
      y = yn;
      c = cn;
      s = sn;
    }
  });
  return {Y, C, none_if_absent(HC, acts), none_if_absent(S, acts), none_if_absent(M, acts)};
}

// Returns dA (T, B, G*H), dAs (T, B, S*H) (empty unless FGR), dh_0 (B, Hy), dc_0 (B, H) and, with
// a projection, DY (T, B, P): each step's dL/dy_t (zero past a sequence's end), for dW_hr.
std::vector<at::Tensor> fused_lstm_backward(c10::IntArrayRef layout, bool reverse,
                                            const at::Tensor& acts,
                                            const std::optional<at::Tensor>& mask_opt,
                                            const at::Tensor& c0, const at::Tensor& C,
                                            const std::optional<at::Tensor>& HC_opt,
                                            const at::Tensor& R, const at::Tensor& P,
                                            const std::optional<at::Tensor>& Wg_opt,
                                            const std::optional<at::Tensor>& Wr_opt,
                                            const at::Tensor& dout, const at::Tensor& dh,
                                            const at::Tensor& dc) {
  const Layout L(layout);
  TORCH_CHECK(acts.is_contiguous() && C.is_contiguous() && dout.is_contiguous() &&
              c0.is_contiguous() && P.is_contiguous(),
              "lstmlab: fused_lstm_backward needs contiguous tensors");
  TORCH_CHECK((L.P > 0) == (Wr_opt.has_value() && Wr_opt->defined()),
              "lstmlab: fused_lstm_backward: projection size and weight_hr disagree");
  const int64_t T_ = acts.size(0), B = acts.size(1), H = L.H, SH = L.S * H;
  const int64_t Hy = L.P > 0 ? L.P : H;
  const bool proj = L.P > 0;
  const auto opts = acts.options();
  at::Tensor mask = mask_opt.has_value() ? mask_opt->contiguous() : at::Tensor();
  at::Tensor HC = L.h_tanh ? HC_opt->contiguous() : at::Tensor();
  at::Tensor dA = at::empty_like(acts);
  at::Tensor dAs = L.fgr ? at::empty({T_, B, SH}, opts) : at::Tensor();
  at::Tensor dys = dh.contiguous().clone(), dcs = dc.contiguous().clone();
  at::Tensor ds = L.fgr ? at::zeros({B, SH}, opts) : at::Tensor();
  at::Tensor ycarry = mask.defined() ? at::empty({B, Hy}, opts) : at::Tensor();
  at::Tensor scarry = mask.defined() && L.fgr ? at::empty({B, SH}, opts) : at::Tensor();
  at::Tensor DY = proj ? at::empty({T_, B, Hy}, opts) : at::Tensor();
  at::Tensor dm = proj ? at::empty({B, H}, opts) : at::Tensor();
  at::Tensor zero_bh = proj ? at::zeros({B, H}, opts) : at::Tensor();
  const at::Tensor Wg = L.fgr ? *Wg_opt : at::Tensor();
  const at::Tensor Wr = proj ? *Wr_opt : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "fused_lstm_backward", [&] {
    std::vector<scalar_t> ones(H, scalar_t(1)), zeros(H, scalar_t(0)), scratch(3 * H);
    const scalar_t* Pp = P.data_ptr<scalar_t>();
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? k : T_ - 1 - k;        // the forward order, reversed
      const int64_t prev = reverse ? t + 1 : t - 1;      // the step before t in forward order
      const bool first = reverse ? t == T_ - 1 : t == 0;
      const scalar_t* cp = first ? ptr<scalar_t>(c0) : ptr<scalar_t>(C[prev]);
      const bool* m = mask.defined() ? mask.data_ptr<bool>() + t * B : nullptr;
      at::Tensor dA_t = dA.select(0, t);
      at::Tensor dAs_t = L.fgr ? dAs.select(0, t) : at::Tensor();
      const scalar_t* dout_t = ptr<scalar_t>(dout.select(0, t));
      const scalar_t* dys_t = ptr<scalar_t>(dys);
      if (proj) {  // dy_t = dout_t + carry (zero past the end; the carry passes), dm = W_hr^T dy
        at::Tensor DY_t = DY.select(0, t);
        scalar_t* dy = ptr<scalar_t>(DY_t);
        scalar_t* yc = ptr<scalar_t>(ycarry);
        for (int64_t b = 0; b < B; ++b) {
          const bool inside = m == nullptr || m[b];
          for (int64_t j = 0; j < Hy; ++j) {
            const int64_t n = b * Hy + j;
            dy[n] = inside ? dout_t[n] + dys_t[n] : scalar_t(0);
            if (yc != nullptr) yc[n] = inside ? scalar_t(0) : dys_t[n];
          }
        }
        at::mm_out(dm, DY_t, Wr);
        dout_t = ptr<scalar_t>(dm);
        dys_t = ptr<scalar_t>(zero_bh);
      }
      backward_rows<scalar_t>(
          L, B, ptr<scalar_t>(acts.select(0, t)), m, cp, ptr<scalar_t>(C.select(0, t)),
          L.h_tanh ? ptr<scalar_t>(HC.select(0, t)) : nullptr, dout_t, dys_t,
          ptr<scalar_t>(dcs), ptr<scalar_t>(ds), ptr<scalar_t>(dA_t), ptr<scalar_t>(dAs_t),
          proj ? nullptr : ptr<scalar_t>(ycarry), ptr<scalar_t>(scarry), Pp, ones.data(),
          zeros.data(), scratch.data());
      // dy_{t-1} = R^T da_t (+ the carry of rows past their end); FGR: ds_{t-1} = W_gates^T da_s
      if (mask.defined()) {
        at::addmm_out(dys, ycarry, dA_t, R);
        if (L.fgr) at::addmm_out(ds, scarry, dAs_t, Wg);
      } else {
        at::mm_out(dys, dA_t, R);
        if (L.fgr) at::mm_out(ds, dAs_t, Wg);
      }
    }
  });
  return {dA, none_if_absent(dAs, acts), dys, dcs, none_if_absent(DY, acts)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmlab, m) {
  m.def("fused_lstm_forward(int[] layout, bool reverse, Tensor(a!) acts, Tensor? mask, "
        "Tensor h0, Tensor c0, Tensor R, Tensor P, Tensor? Wg, Tensor? Wr) -> Tensor[]");
  m.def("fused_lstm_backward(int[] layout, bool reverse, Tensor acts, Tensor? mask, Tensor c0, "
        "Tensor C, Tensor? HC, Tensor R, Tensor P, Tensor? Wg, Tensor? Wr, Tensor dout, "
        "Tensor dh, Tensor dc) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(lstmlab, CPU, m) {
  m.impl("fused_lstm_forward", &fused_lstm_forward);
  m.impl("fused_lstm_backward", &fused_lstm_backward);
}
