"""The fused LSTM: one autograd function per layer-direction, with backpropagation through time
derived by hand, for every variant (``LSTMSpec``), with or without a projection.

Forward, for t = 1..T (or T..1 for the reverse direction), with a_t the pre-activations:

    A    = X W^T + b_ih + b_hh                       all steps at once, (T*B, G*H) = one matmul
    a_t  = A_t + R y_{t-1} (+ W_gates s_{t-1})       per step: the one recurrent matmul, then
    i    = sigmoid(a_i + p_i c_{t-1})                one fused pass over the elements
    f    = sigmoid(a_f + p_f c_{t-1}),   or 1 - i (CIFG), or 1 (NFG)
    z    = g(a_z)
    c_t  = z i + c_{t-1} f
    o    = sigmoid(a_o + p_o c_t)
    m_t  = h(c_t) o                                  s_t = [i; f; o] (learned gates, FGR)
    y_t  = m_t, or W_hr m_t with a projection        (LSTMP, Sak et al. 2014: y is P wide)

A gate the spec lacks is the constant 1; a peephole it lacks is no term at all (not a zero
weight: 0 * inf would be NaN where the reference has none). Backward, for t = T..1, given
dy_t = dL/dout_t + (dL/dy_t from step t+1), dc_t from step t+1 and (FGR) ds_t:

    dm      = dy_t, or W_hr^T dy_t with a projection
    da_o    = (dm h(c_t) + ds_o) o (1 - o)
    dc      = dc_t + dm o h'(c_t) + da_o p_o
    da_z    = dc i g'(a_z)
    df      = dc c_{t-1} + ds_f
    di      = dc z + ds_i            (CIFG: di -= df, as f = 1 - i)
    da_i    = di i (1 - i)
    da_f    = df f (1 - f)
    dc_{t-1} = dc f + da_i p_i + da_f p_f
    dy_{t-1} = R^T da_t              (the one recurrent matmul of the step)
    ds_{t-1} = W_gates^T [da_i; da_f; da_o]

with g'(a) = 1 - z^2 (tanh) or 1, h'(c) = 1 - h(c)^2 or 1. After the loop, with dA all da_t:

    dX = dA W,   dW = dA^T X,   dR = dA^T Y_prev,   db_ih = db_hh = sum dA,
    dp_i = sum da_i c_{t-1},   dp_f = sum da_f c_{t-1},   dp_o = sum da_o c_t,
    dW_gates = dA_s^T S_prev,   dW_hr = sum dy_t^T m_t    (each one matmul or reduction over T*B)

Variable lengths: a step outside a sequence (mask False) holds its state (y, c, s) and outputs
zero; backward, its da is zero and dy, dc, ds pass through unchanged. The inner loops run in C++
(``lstm_fused.cpp``, compiled on first use) or, as the fallback, in PyTorch below; both are this
module's equations and take the variant from ``Layout``, built from the spec. NaN and inf come out
where the reference step loop (``reference_lstm``, cells.py's equations) puts them.

The hand-derived backward is a first derivative only. When a second one is asked for
(``torch.autograd.grad(..., create_graph=True)``), the backward differentiates the reference loop
instead, so double backward gives the reference's exact higher derivatives.

Under torch.compile / torch.export (dynamo) the same computation runs as the custom op
``lstmlab::fused_lstm`` (with a fake implementation for tracing, and ``lstmlab::fused_lstm_grad``
for its backward), which the compiler treats as one opaque node.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab import cells
from lstmlab.cells import LSTMSpec, LSTMWeights
from lstmlab.kernels import build


@dataclass(frozen=True)
class Layout:
    """Where a variant's gates live: block index in the (G*H) pre-activations (-1 if the gate has
    no weights), and in FGR's (S*H) vector of gate activations; and the activation switches."""

    G: int
    S: int
    i: int
    f: int
    z: int
    o: int
    si: int
    sf: int
    so: int
    peepholes: bool
    g_tanh: bool
    h_tanh: bool
    coupled: bool
    fgr: bool

    @staticmethod
    @functools.cache
    def of(spec: LSTMSpec) -> Layout:
        def at(names: tuple[str, ...], name: str) -> int:
            return names.index(name) if name in names else -1

        gates, sig = spec.gates, spec.sigmoid_gates
        return Layout(len(gates), len(sig), at(gates, "i"), at(gates, "f"), at(gates, "z"),
                      at(gates, "o"), at(sig, "i"), at(sig, "f"), at(sig, "o"),
                      bool(spec.peephole_gates), spec.input_activation, spec.output_activation,
                      spec.coupled, spec.gate_recurrence)

    def ints(self, hidden: int, proj: int = 0) -> list[int]:
        """The layout as the C++ kernel reads it (``proj``: the projection size, 0 for none)."""
        return [hidden, self.G, self.S, self.i, self.f, self.z, self.o, self.si, self.sf, self.so,
                int(self.g_tanh), int(self.h_tanh), int(self.coupled), int(self.fgr),
                int(self.peepholes), proj]


def _block(t: Tensor, k: int, size: int) -> Tensor:
    """Block k (of width ``size``) of the last dimension."""
    return t[..., k * size:(k + 1) * size]


def _shift(seq: Tensor, first: Tensor, reverse: bool) -> Tensor:
    """The previous step's value of a state sequence (T, B, N), ``first`` (B, N) before step 1."""
    if reverse:
        return torch.cat([seq[1:], first.unsqueeze(0)])
    return torch.cat([first.unsqueeze(0), seq[:-1]])


# --- the reference: cells.py's step, looped (differentiable; the double-backward path) --------


def reference_lstm(spec: LSTMSpec, x: Tensor, h0: Tensor, c0: Tensor, w: LSTMWeights,
                   mask: Tensor | None = None,
                   reverse: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """One layer-direction by the plain loop over ``cells.lstm_step`` (autograd through every
    op): what ``fused_lstm`` computes. Same arguments and results as ``fused_lstm``."""
    w = LSTMWeights(*w)
    wx = F.linear(x, w.weight_ih, w.bias_ih)
    if mask is not None:  # padding must not reach the gradient, not even as NaN
        wx = wx.masked_fill(~mask.unsqueeze(2), 0.0)
    steps, batch = x.shape[0], x.shape[1]
    side = len(spec.sigmoid_gates) * c0.shape[1]
    y, c = h0, c0
    s = x.new_zeros(batch, side) if spec.gate_recurrence else None
    outputs: list[Tensor] = [x] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        step = cells.lstm_step(spec, wx[t], y, c, s, w)
        if mask is None:
            y, c, s, outputs[t] = step.y, step.c, step.gates, step.y
        else:
            inside = mask[t].unsqueeze(1)
            y, c = torch.where(inside, step.y, y), torch.where(inside, step.c, c)
            s = torch.where(inside, step.gates, s) if s is not None else None
            outputs[t] = torch.where(inside, step.y, 0.0)
    return torch.stack(outputs), y, c


# --- the pure-PyTorch inner loops (the fallback; the C++ ops compute the same) --------------------


def _forward_loop(L: Layout, reverse: bool, acts: Tensor, mask: Tensor | None, h0: Tensor,
                  c0: Tensor, R: Tensor, P: Tensor, Wg: Tensor | None, Wr: Tensor | None
                  ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """acts (T, B, G*H) holds A on entry and the activations on return. Returns the state after
    each step Y (T, B, Hy), C (T, B, H), h(C) (T, B, H) if h = tanh, FGR's S (T, B, S*H) and,
    with a projection, M (T, B, H), the output before it (zero past a sequence's end)."""
    steps, batch, _ = acts.shape
    H, Hy = c0.shape[1], h0.shape[1]
    Y, C = acts.new_empty(steps, batch, Hy), acts.new_empty(steps, batch, H)
    HC = acts.new_empty(steps, batch, H) if L.h_tanh else None
    S = acts.new_empty(steps, batch, L.S * H) if L.fgr else None
    M = acts.new_empty(steps, batch, H) if Wr is not None else None
    y, c = h0, c0
    s = acts.new_zeros(batch, L.S * H) if L.fgr else None
    p_i, p_f, p_o = P
    sig = [(k, sk) for k, sk in ((L.i, L.si), (L.f, L.sf), (L.o, L.so)) if sk >= 0]
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        a = acts[t]
        a.addmm_(y, R.t())
        if L.fgr:
            rec = s @ Wg.t()
            for k, sk in sig:
                _block(a, k, H).add_(_block(rec, sk, H))
        i = f = o = None
        if L.i >= 0:
            i = _block(a, L.i, H)
            if L.peepholes:
                i.addcmul_(p_i, c)
            i.sigmoid_()
        if L.f >= 0:
            f = _block(a, L.f, H)
            if L.peepholes:
                f.addcmul_(p_f, c)
            f.sigmoid_()
        elif L.coupled:
            f = 1 - i
        z = _block(a, L.z, H)
        if L.g_tanh:
            z.tanh_()
        c_new = z * i if i is not None else z.clone()
        if f is not None:
            c_new.addcmul_(c, f)
        else:
            c_new.add_(c)
        if L.o >= 0:
            o = _block(a, L.o, H)
            if L.peepholes:
                o.addcmul_(p_o, c_new)
            o.sigmoid_()
        hc = torch.tanh(c_new) if L.h_tanh else c_new
        m = hc * o if o is not None else hc.clone()
        y_new = m @ Wr.t() if Wr is not None else m
        s_new = torch.cat([_block(a, k, H) for k, _ in sig], dim=1) if L.fgr else None
        if mask is not None:
            inside = mask[t].unsqueeze(1)
            y_new, c_new = torch.where(inside, y_new, y), torch.where(inside, c_new, c)
            if L.fgr:
                s_new = torch.where(inside, s_new, s)
            if M is not None:
                m = torch.where(inside, m, 0.0)
        Y[t], C[t] = y_new, c_new
        if HC is not None:
            HC[t] = hc
        if S is not None:
            S[t] = s_new
        if M is not None:
            M[t] = m
        y, c, s = Y[t], C[t], (S[t] if S is not None else None)
    return Y, C, HC, S, M


def _backward_loop(L: Layout, reverse: bool, acts: Tensor, mask: Tensor | None, c0: Tensor,
                   C: Tensor, HC: Tensor | None, R: Tensor, P: Tensor, Wg: Tensor | None,
                   Wr: Tensor | None, dout: Tensor, dh: Tensor, dc: Tensor
                   ) -> tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor | None]:
    """The module docstring's backward equations, step by step. Returns dA (T, B, G*H),
    FGR's dA_s (T, B, S*H), dh_0 (B, Hy), dc_0 (B, H) and, with a projection, each step's
    dL/dy_t, DY (T, B, P) (zero past a sequence's end)."""
    steps, batch, _ = acts.shape
    H = c0.shape[1]
    p_i, p_f, p_o = P
    dA = torch.empty_like(acts)
    dAs = acts.new_empty(steps, batch, L.S * H) if L.fgr else None
    DY = torch.empty_like(dout) if Wr is not None else None
    dys, dcs = dh, dc
    ds = acts.new_zeros(batch, L.S * H) if L.fgr else None
    sig = [(k, sk) for k, sk in ((L.i, L.si), (L.f, L.sf), (L.o, L.so)) if sk >= 0]
    zero = torch.zeros((), dtype=acts.dtype, device=acts.device)

    def ds_of(sk: int) -> Tensor | float:
        return _block(ds, sk, H) if L.fgr and sk >= 0 else 0.0

    for t in (range(steps) if reverse else range(steps - 1, -1, -1)):
        first = t == (steps - 1 if reverse else 0)
        c_prev = c0 if first else C[t + 1 if reverse else t - 1]
        a, da = acts[t], dA[t]
        inside = mask[t].unsqueeze(1) if mask is not None else None
        dy = dout[t] + dys
        if Wr is not None:
            if inside is not None:
                dy = torch.where(inside, dy, zero)
            DY[t] = dy
            dy = dy @ Wr
        hc = HC[t] if HC is not None else C[t]
        i = _block(a, L.i, H) if L.i >= 0 else None
        z = _block(a, L.z, H)
        dc_t = dcs
        if L.o >= 0:
            o = _block(a, L.o, H)
            da_o = (dy * hc + ds_of(L.so)) * o * (1 - o)
            _block(da, L.o, H).copy_(da_o)
            dh_c = dy * o
        else:
            dh_c = dy
        dc_t = dc_t + (dh_c * (1 - hc * hc) if L.h_tanh else dh_c)
        if L.o >= 0 and L.peepholes:
            dc_t = dc_t + da_o * p_o
        da_z = dc_t * i if i is not None else dc_t
        _block(da, L.z, H).copy_(da_z * (1 - z * z) if L.g_tanh else da_z)
        f = _block(a, L.f, H) if L.f >= 0 else (1 - i if L.coupled else None)
        dc_prev = dc_t * f if f is not None else dc_t
        if f is not None:
            df = dc_t * c_prev + ds_of(L.sf)
        if i is not None:
            di = dc_t * z + ds_of(L.si)
            if L.coupled:
                di = di - df
            da_i = di * i * (1 - i)
            _block(da, L.i, H).copy_(da_i)
            if L.peepholes:
                dc_prev = dc_prev + da_i * p_i
        if L.f >= 0:
            da_f = df * f * (1 - f)
            _block(da, L.f, H).copy_(da_f)
            if L.peepholes:
                dc_prev = dc_prev + da_f * p_f
        if inside is not None:
            da.copy_(torch.where(inside, da, zero))
            dc_prev = torch.where(inside, dc_prev, dcs)
        dy_prev = da @ R
        if inside is not None:
            dy_prev = dy_prev + torch.where(inside, zero, dys)
        if L.fgr:
            das = dAs[t]
            for k, sk in sig:
                _block(das, sk, H).copy_(_block(da, k, H))
            ds_prev = das @ Wg
            ds = ds_prev + torch.where(inside, zero, ds) if inside is not None else ds_prev
        dys, dcs = dy_prev, dc_prev
    return dA, dAs, dys, dcs, DY


# --- one layer-direction, forward and backward, as functions of tensors -------------------------


def _forward(spec: LSTMSpec, reverse: bool, compiled: bool, mask: Tensor | None, x: Tensor,
             h0: Tensor, c0: Tensor, w: LSTMWeights
             ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor | None, ...]]:
    """Output (T, B, Hy), h_n (B, Hy), c_n (B, H), and (acts, Y, C, HC, S, M, P) for backward."""
    L = Layout.of(spec)
    steps, batch, inputs = x.shape
    H = c0.shape[1]
    proj = 0 if w.weight_hr is None else w.weight_hr.shape[0]
    x2 = x.reshape(steps * batch, inputs)
    if w.bias_ih is not None:
        acts = torch.addmm(w.bias_ih + w.bias_hh, x2, w.weight_ih.t())
    else:
        acts = x2 @ w.weight_ih.t()
    acts = acts.view(steps, batch, L.G * H)
    zeros = c0.new_zeros(H)
    P = torch.stack([p if p is not None else zeros
                     for p in (w.weight_ci, w.weight_cf, w.weight_co)])
    h0, c0 = h0.contiguous(), c0.contiguous()
    if compiled:
        Y, C, HC, S, M = build.ops().fused_lstm_forward(
            L.ints(H, proj), reverse, acts, mask, h0, c0, w.weight_hh, P, w.weight_gates,
            w.weight_hr)
        HC = HC if L.h_tanh else None
        S = S if L.fgr else None
        M = M if proj else None
    else:
        Y, C, HC, S, M = _forward_loop(L, reverse, acts, mask, h0, c0, w.weight_hh, P,
                                       w.weight_gates, w.weight_hr)
    out = Y if mask is None else torch.where(mask.unsqueeze(2), Y, 0.0)
    last = 0 if reverse else steps - 1
    return out, Y[last].clone(), C[last].clone(), (acts, Y, C, HC, S, M, P)


def _backward(spec: LSTMSpec, reverse: bool, compiled: bool, mask: Tensor | None, x: Tensor,
              h0: Tensor, c0: Tensor, w: LSTMWeights, saved: tuple[Tensor | None, ...],
              dout: Tensor | None, dh: Tensor | None, dc: Tensor | None,
              need: tuple[bool, ...]) -> list[Tensor | None]:
    """The gradients of (x, h0, c0, *w) (None where ``need`` is False or the weight is absent)."""
    acts, Y, C, HC, S, M, P = saved
    L = Layout.of(spec)
    steps, batch, inputs = x.shape
    H, Hy = c0.shape[1], h0.shape[1]
    proj = 0 if w.weight_hr is None else w.weight_hr.shape[0]
    h0, c0 = h0.contiguous(), c0.contiguous()
    dout = torch.zeros_like(Y) if dout is None else dout.contiguous()
    dh = torch.zeros_like(h0) if dh is None else dh.contiguous()
    dc = torch.zeros_like(c0) if dc is None else dc.contiguous()
    if compiled:
        dA, dAs, dh0, dc0, DY = build.ops().fused_lstm_backward(
            L.ints(H, proj), reverse, acts, mask, c0, C, HC, w.weight_hh, P, w.weight_gates,
            w.weight_hr, dout, dh, dc)
    else:
        dA, dAs, dh0, dc0, DY = _backward_loop(L, reverse, acts, mask, c0, C, HC, w.weight_hh,
                                               P, w.weight_gates, w.weight_hr, dout, dh, dc)

    # the weight gradients of all steps: one matrix product (or reduction) each
    dA2 = dA.view(steps * batch, L.G * H)
    grads: list[Tensor | None] = [None] * 12
    if need[0]:
        grads[0] = (dA2 @ w.weight_ih).view(steps, batch, inputs)
    grads[1] = dh0 if need[1] else None
    grads[2] = dc0 if need[2] else None
    if need[3]:
        grads[3] = dA2.t() @ x.reshape(steps * batch, inputs)
    if need[4]:  # dR = sum_t da_t^T y_{t-1}: the first step sees h_0, the others Y
        if reverse:
            dR = dA[-1].t() @ h0
            da_rest, y_prev = dA[:-1], Y[1:]
        else:
            dR = dA[0].t() @ h0
            da_rest, y_prev = dA[1:], Y[:-1]
        if steps > 1:
            dR.addmm_(da_rest.reshape(-1, L.G * H).t(), y_prev.reshape(-1, Hy))
        grads[4] = dR
    if w.bias_ih is not None and (need[5] or need[6]):
        db = dA2.sum(0)
        grads[5], grads[6] = (db if need[5] else None), (db if need[6] else None)
    if L.peepholes:
        c_prev = _shift(C, c0, reverse)
        for n, (k, c) in enumerate(((L.i, c_prev), (L.f, c_prev), (L.o, C))):
            if k >= 0 and need[7 + n]:
                grads[7 + n] = (_block(dA, k, H) * c).sum((0, 1))
    if L.fgr and need[10]:
        s_prev = _shift(S, S.new_zeros(batch, L.S * H), reverse)
        grads[10] = dAs.view(-1, L.S * H).t() @ s_prev.view(-1, L.S * H)
    if proj and need[11]:
        grads[11] = DY.reshape(-1, proj).t() @ M.reshape(-1, H)
    return grads


def _second_order_grads(spec: LSTMSpec, reverse: bool, mask: Tensor | None,
                        inputs: tuple[Tensor | None, ...], need: tuple[bool, ...],
                        dout: Tensor | None, dh: Tensor | None,
                        dc: Tensor | None) -> list[Tensor | None]:
    """The backward with create_graph=True: differentiate the reference loop (recomputed from the
    saved inputs) so that the gradients are themselves differentiable."""
    x, h0, c0, *weights = inputs
    wanted = [k for k, t in enumerate(inputs) if need[k] and t is not None]
    with torch.enable_grad():
        results = reference_lstm(spec, x, h0, c0, LSTMWeights(*weights), mask, reverse)
        pairs = [(r, g) for r, g in zip(results, (dout, dh, dc), strict=True) if g is not None]
        found = torch.autograd.grad([r for r, _ in pairs], [inputs[k] for k in wanted],
                                    [g for _, g in pairs], create_graph=True, allow_unused=True)
    grads: list[Tensor | None] = [None] * len(inputs)
    for k, g in zip(wanted, found, strict=True):
        grads[k] = g if g is not None else torch.zeros_like(inputs[k])
    return grads


class FusedLSTMFunction(torch.autograd.Function):
    """One layer-direction of an LSTM: (x, h_0, c_0, weights) -> (output, h_n, c_n).

    x (T, B, I); h_0 (B, Hy), c_0 (B, H); output (T, B, Hy), zero past each sequence's end;
    h_n (B, Hy), c_n (B, H). ``weights`` are the nine fields of ``LSTMWeights``.
    """

    @staticmethod
    def forward(ctx, spec: LSTMSpec, reverse: bool, mask: Tensor | None, compiled: bool,
                x: Tensor, h0: Tensor, c0: Tensor, *weights: Tensor | None):
        w = LSTMWeights(*weights)
        out, h_n, c_n, saved = _forward(spec, reverse, compiled, mask, x, h0, c0, w)
        ctx.spec, ctx.reverse, ctx.compiled = spec, reverse, compiled
        ctx.save_for_backward(x, h0, c0, *w, mask, *saved)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, dout: Tensor | None, dh: Tensor | None, dc: Tensor | None):
        x, h0, c0, *rest = ctx.saved_tensors
        w, mask, saved = LSTMWeights(*rest[:9]), rest[9], tuple(rest[10:])
        need = ctx.needs_input_grad[4:]
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            grads = _second_order_grads(ctx.spec, ctx.reverse, mask, (x, h0, c0, *w), need,
                                        dout, dh, dc)
        else:
            grads = _backward(ctx.spec, ctx.reverse, ctx.compiled, mask, x, h0, c0, w, saved,
                              dout, dh, dc, need)
        return (None, None, None, None, *grads)


# --- the same as custom ops, for torch.compile and torch.export -------------------------------

def _resolve(compiled: bool | int | None, x: Tensor) -> bool:
    """True to run the C++ loop: ``compiled`` True/1 requires it, False/0 refuses it, None/2
    takes it where it is available."""
    if compiled is None or compiled == 2:
        return build.available(x)
    if compiled and not build.available(x):
        raise RuntimeError("lstmlab: the compiled LSTM kernel is not available here "
                           f"({build.why_unavailable(x)})")
    return bool(compiled)


def _empty_if_none(t: Tensor | None, like: Tensor) -> Tensor:
    return like.new_empty(0) if t is None else t


def _none_if_empty(t: Tensor) -> Tensor | None:
    return None if t.numel() == 0 and t.dim() == 1 else t


@torch.library.custom_op("lstmlab::fused_lstm", mutates_args=())
def _fused_lstm_op(x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                   bias_ih: Tensor | None, bias_hh: Tensor | None, weight_ci: Tensor | None,
                   weight_cf: Tensor | None, weight_co: Tensor | None,
                   weight_gates: Tensor | None, weight_hr: Tensor | None, mask: Tensor | None,
                   variant: str, reverse: bool, compiled: int) -> list[Tensor]:
    """[output, h_n, c_n, acts, Y (empty without a mask: it is the output), C, HC, S, M, P]."""
    w = LSTMWeights(weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co,
                    weight_gates, weight_hr)
    out, h_n, c_n, (acts, Y, C, HC, S, M, P) = _forward(
        cells.lstm_spec(variant), reverse, _resolve(compiled, x), mask, x, h0, c0, w)
    Y = x.new_empty(0) if mask is None else Y  # an op's outputs must not alias each other
    return [out, h_n, c_n, acts, Y, C, *(_empty_if_none(t, x) for t in (HC, S, M)), P]


@_fused_lstm_op.register_fake
def _fused_lstm_fake(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf,
                     weight_co, weight_gates, weight_hr, mask, variant, reverse, compiled):
    L = Layout.of(cells.lstm_spec(variant))
    steps, batch, _ = x.shape
    H, Hy = c0.shape[1], h0.shape[1]

    def new(*shape: int) -> Tensor:
        return x.new_empty(shape)

    return [new(steps, batch, Hy), new(batch, Hy), new(batch, H), new(steps, batch, L.G * H),
            new(steps, batch, Hy) if mask is not None else new(0), new(steps, batch, H),
            new(steps, batch, H) if L.h_tanh else new(0),
            new(steps, batch, L.S * H) if L.fgr else new(0),
            new(steps, batch, H) if weight_hr is not None else new(0), new(3, H)]


@torch.library.custom_op("lstmlab::fused_lstm_grad", mutates_args=())
def _fused_lstm_grad_op(x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                        bias_ih: Tensor | None, bias_hh: Tensor | None,
                        weight_ci: Tensor | None, weight_cf: Tensor | None,
                        weight_co: Tensor | None, weight_gates: Tensor | None,
                        weight_hr: Tensor | None, mask: Tensor | None, acts: Tensor, Y: Tensor,
                        C: Tensor, HC: Tensor, S: Tensor, M: Tensor, P: Tensor, dout: Tensor,
                        dh: Tensor, dc: Tensor, variant: str, reverse: bool, compiled: int,
                        need: list[bool]) -> list[Tensor]:
    """The gradients of (x, h0, c0, *weights); an empty tensor where none is needed."""
    w = LSTMWeights(weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co,
                    weight_gates, weight_hr)
    saved = (acts, Y, C, _none_if_empty(HC), _none_if_empty(S), _none_if_empty(M), P)
    grads = _backward(cells.lstm_spec(variant), reverse, _resolve(compiled, x), mask, x, h0, c0,
                      w, saved, dout, dh, dc, tuple(need))
    # an op's outputs must alias neither its inputs nor each other (db_ih is db_hh)
    taken = {t.untyped_storage().data_ptr() for t in (dout, dh, dc) if t.numel()}
    results = []
    for g in grads:
        if g is None:
            g = x.new_empty(0)
        elif g.numel() and g.untyped_storage().data_ptr() in taken:
            g = g.clone()
        if g.numel():
            taken.add(g.untyped_storage().data_ptr())
        results.append(g)
    return results


@_fused_lstm_grad_op.register_fake
def _fused_lstm_grad_fake(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci,
                          weight_cf, weight_co, weight_gates, weight_hr, mask, acts, Y, C, HC, S,
                          M, P, dout, dh, dc, variant, reverse, compiled, need):
    inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co,
              weight_gates, weight_hr)
    return [torch.empty_like(t) if n and t is not None else x.new_empty(0)
            for t, n in zip(inputs, need, strict=True)]


def _op_setup_context(ctx, inputs, output) -> None:
    *tensors, mask, variant, reverse, compiled = inputs
    out, _, _, acts, Y, C, HC, S, M, P = output
    ctx.variant, ctx.reverse, ctx.compiled = variant, reverse, compiled
    ctx.save_for_backward(*tensors, mask, acts, out if mask is None else Y, C, HC, S, M, P)


def _op_backward(ctx, grads: list[Tensor | None]):
    dout, dh, dc = grads[:3]  # the intermediates' gradients are none of the caller's business
    x, h0, c0, *rest = ctx.saved_tensors
    weights, mask, saved = rest[:9], rest[9], rest[10:]
    need = tuple(ctx.needs_input_grad[:12])
    if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
        grads = _second_order_grads(cells.lstm_spec(ctx.variant), ctx.reverse, mask,
                                    (x, h0, c0, *weights), need, dout, dh, dc)
    else:
        acts, Y, C, HC, S, M, P = saved
        dout = torch.zeros_like(Y) if dout is None else dout
        dh = torch.zeros_like(h0) if dh is None else dh
        dc = torch.zeros_like(c0) if dc is None else dc
        found = torch.ops.lstmlab.fused_lstm_grad(x, h0, c0, *weights, mask, acts, Y, C, HC, S,
                                                  M, P, dout, dh, dc, ctx.variant, ctx.reverse,
                                                  ctx.compiled, list(need))
        grads = [g if n else None for g, n in zip(found, need, strict=True)]
    return (*grads, None, None, None, None)


_fused_lstm_op.register_autograd(_op_backward, setup_context=_op_setup_context)


# --- the entry point ----------------------------------------------------------------------------


def fused_lstm(spec: LSTMSpec, x: Tensor, h0: Tensor, c0: Tensor, w: LSTMWeights,
               mask: Tensor | None = None, reverse: bool = False,
               compiled: bool | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One layer-direction of the LSTM ``spec`` over x (T, B, I) from state h0 (B, Hy), c0 (B, H)
    (Hy = P with a projection ``w.weight_hr`` (P, H), else H).

    mask (T, B) bool marks the steps inside each sequence (None: all). ``compiled`` picks the C++
    loop (True), the PyTorch loop (False) or the C++ loop when it is available (None).
    Returns output (T, B, Hy), h_n (B, Hy), c_n (B, H).
    """
    w = LSTMWeights(*w)
    if mask is not None:
        mask = mask.contiguous()
    if torch.compiler.is_compiling():  # one opaque op (with a fake) for dynamo and export
        mode = 2 if compiled is None else int(bool(compiled))
        result = torch.ops.lstmlab.fused_lstm(x, h0, c0, *w, mask, spec.name, reverse, mode)
        return result[0], result[1], result[2]
    return FusedLSTMFunction.apply(spec, reverse, mask, _resolve(compiled, x), x, h0, c0, *w)
