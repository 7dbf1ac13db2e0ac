"""The fused LSTM: one autograd function per layer-direction, with backpropagation through time
derived by hand, for every variant (``LSTMSpec``).

Forward, for t = 1..T (or T..1 for the reverse direction), with a_t the pre-activations:

    A    = X W^T + b_ih + b_hh                       all steps at once, (T*B, G*H) = one matmul
    a_t  = A_t + R y_{t-1} (+ W_gates s_{t-1})       per step: the one recurrent matmul, then
    i    = sigmoid(a_i + p_i c_{t-1})                one fused pass over the elements
    f    = sigmoid(a_f + p_f c_{t-1}),   or 1 - i (CIFG), or 1 (NFG)
    z    = g(a_z)
    c_t  = z i + c_{t-1} f
    o    = sigmoid(a_o + p_o c_t)
    y_t  = h(c_t) o                                  s_t = [i; f; o] (learned gates, FGR)

A gate the spec lacks is the constant 1, a missing peephole is 0. Backward, for t = T..1, given
dy_t = dL/dout_t + (dL/dy_t from step t+1), dc_t from step t+1 and (FGR) ds_t:

    da_o    = (dy_t h(c_t) + ds_o) o (1 - o)
    dc      = dc_t + dy_t o h'(c_t) + da_o p_o
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
    dW_gates = dA_s^T S_prev                          (each one matmul or reduction over T*B)

Variable lengths: a step outside a sequence (mask False) holds its state (y, c, s) and outputs
zero; backward, its da is zero and dy, dc, ds pass through unchanged. The inner loops run in C++
(``lstm_fused.cpp``, compiled on first use) or, as the fallback, in PyTorch below; both are this
module's equations and take the variant from ``Layout``, built from the spec.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

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

    def ints(self, hidden: int) -> list[int]:
        """The layout as the C++ kernel reads it."""
        return [hidden, self.G, self.S, self.i, self.f, self.z, self.o, self.si, self.sf, self.so,
                int(self.g_tanh), int(self.h_tanh), int(self.coupled), int(self.fgr)]


def _block(t: Tensor, k: int, size: int) -> Tensor:
    """Block k (of width ``size``) of the last dimension."""
    return t[..., k * size:(k + 1) * size]


def _shift(seq: Tensor, first: Tensor, reverse: bool) -> Tensor:
    """The previous step's value of a state sequence (T, B, N), ``first`` (B, N) before step 1."""
    if reverse:
        return torch.cat([seq[1:], first.unsqueeze(0)])
    return torch.cat([first.unsqueeze(0), seq[:-1]])


# --- the pure-PyTorch inner loops (the fallback; the C++ ops compute the same) --------------------


def _forward_loop(L: Layout, reverse: bool, acts: Tensor, mask: Tensor | None, h0: Tensor,
                  c0: Tensor, R: Tensor, P: Tensor, Wg: Tensor | None
                  ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """acts (T, B, G*H) holds A on entry and the activations on return. Returns the state after
    each step Y, C (T, B, H), h(C) (T, B, H) if h = tanh, and FGR's S (T, B, S*H)."""
    steps, batch, _ = acts.shape
    H = h0.shape[1]
    Y, C = acts.new_empty(steps, batch, H), acts.new_empty(steps, batch, H)
    HC = acts.new_empty(steps, batch, H) if L.h_tanh else None
    S = acts.new_empty(steps, batch, L.S * H) if L.fgr else None
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
        i = _block(a, L.i, H).addcmul_(p_i, c).sigmoid_() if L.i >= 0 else None
        if L.f >= 0:
            f = _block(a, L.f, H).addcmul_(p_f, c).sigmoid_()
        else:
            f = 1 - i if L.coupled else None
        z = _block(a, L.z, H)
        if L.g_tanh:
            z.tanh_()
        c_new = z * i if i is not None else z.clone()
        if f is not None:
            c_new.addcmul_(c, f)
        else:
            c_new.add_(c)
        o = _block(a, L.o, H).addcmul_(p_o, c_new).sigmoid_() if L.o >= 0 else None
        hc = torch.tanh(c_new) if L.h_tanh else c_new
        y_new = hc * o if o is not None else hc.clone()
        s_new = torch.cat([_block(a, k, H) for k, _ in sig], dim=1) if L.fgr else None
        if mask is not None:
            inside = mask[t].unsqueeze(1)
            y_new, c_new = torch.where(inside, y_new, y), torch.where(inside, c_new, c)
            if L.fgr:
                s_new = torch.where(inside, s_new, s)
        Y[t], C[t] = y_new, c_new
        if HC is not None:
            HC[t] = hc
        if S is not None:
            S[t] = s_new
        y, c, s = Y[t], C[t], (S[t] if S is not None else None)
    return Y, C, HC, S


def _backward_loop(L: Layout, reverse: bool, acts: Tensor, mask: Tensor | None, c0: Tensor,
                   C: Tensor, HC: Tensor | None, R: Tensor, P: Tensor, Wg: Tensor | None,
                   dout: Tensor, dh: Tensor, dc: Tensor
                   ) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """The module docstring's backward equations, step by step. Returns dA (T, B, G*H),
    FGR's dA_s (T, B, S*H), dh_0 and dc_0 (B, H)."""
    steps, batch, _ = acts.shape
    H = c0.shape[1]
    p_i, p_f, p_o = P
    dA = torch.empty_like(acts)
    dAs = acts.new_empty(steps, batch, L.S * H) if L.fgr else None
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
        dy = dout[t] + dys
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
        if mask is not None:
            inside = mask[t].unsqueeze(1)
            da.copy_(torch.where(inside, da, zero))
            dc_prev = torch.where(inside, dc_prev, dcs)
        dy_prev = da @ R
        if mask is not None:
            dy_prev = dy_prev + torch.where(inside, zero, dys)
        if L.fgr:
            das = dAs[t]
            for k, sk in sig:
                _block(das, sk, H).copy_(_block(da, k, H))
            ds_prev = das @ Wg
            ds = ds_prev + torch.where(inside, zero, ds) if mask is not None else ds_prev
        dys, dcs = dy_prev, dc_prev
    return dA, dAs, dys, dcs


# --- the autograd function ----------------------------------------------------------------------


class FusedLSTMFunction(torch.autograd.Function):
    """One layer-direction of an LSTM: (x, h_0, c_0, weights) -> (output, h_n, c_n).

    x (T, B, I); h_0, c_0 (B, H); output (T, B, H), zero past each sequence's end; h_n, c_n (B, H).
    """

    @staticmethod
    def forward(ctx, spec: LSTMSpec, reverse: bool, mask: Tensor | None, compiled: bool,
                x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None, bias_hh: Tensor | None, weight_ci: Tensor | None,
                weight_cf: Tensor | None, weight_co: Tensor | None,
                weight_gates: Tensor | None):
        L = Layout.of(spec)
        steps, batch, inputs = x.shape
        H = h0.shape[1]
        x2 = x.reshape(steps * batch, inputs)
        if bias_ih is not None:
            acts = torch.addmm(bias_ih + bias_hh, x2, weight_ih.t())
        else:
            acts = x2 @ weight_ih.t()
        acts = acts.view(steps, batch, L.G * H)
        zeros = h0.new_zeros(H)
        P = torch.stack([p if p is not None else zeros
                         for p in (weight_ci, weight_cf, weight_co)])
        h0, c0 = h0.contiguous(), c0.contiguous()
        if compiled:
            Y, C, HC, S = build.ops().fused_lstm_forward(
                L.ints(H), reverse, acts, mask, h0, c0, weight_hh, P, weight_gates)
            HC = HC if L.h_tanh else None
            S = S if L.fgr else None
        else:
            Y, C, HC, S = _forward_loop(L, reverse, acts, mask, h0, c0, weight_hh, P,
                                        weight_gates)
        out = Y if mask is None else Y * mask.unsqueeze(2)
        last = 0 if reverse else steps - 1
        ctx.spec, ctx.reverse, ctx.compiled = spec, reverse, compiled
        ctx.has_bias = bias_ih is not None
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, P, weight_gates, mask, acts, Y, C,
                              HC, S)
        return out, Y[last].clone(), C[last].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: Tensor | None, dh: Tensor | None, dc: Tensor | None):
        x, h0, c0, W, R, P, Wg, mask, acts, Y, C, HC, S = ctx.saved_tensors
        spec, reverse = ctx.spec, ctx.reverse
        L = Layout.of(spec)
        steps, batch, inputs = x.shape
        H = h0.shape[1]
        dout = torch.zeros_like(Y) if dout is None else dout.contiguous()
        dh = torch.zeros_like(h0) if dh is None else dh.contiguous()
        dc = torch.zeros_like(c0) if dc is None else dc.contiguous()
        if ctx.compiled:
            dA, dAs, dh0, dc0 = build.ops().fused_lstm_backward(
                L.ints(H), reverse, acts, mask, c0, C, HC, R, P, Wg, dout, dh, dc)
        else:
            dA, dAs, dh0, dc0 = _backward_loop(L, reverse, acts, mask, c0, C, HC, R, P, Wg,
                                               dout, dh, dc)

        # the weight gradients of all steps: one matrix product (or reduction) each
        need = ctx.needs_input_grad
        dA2 = dA.view(steps * batch, L.G * H)
        dx = (dA2 @ W).view(steps, batch, inputs) if need[4] else None
        dW = dA2.t() @ x.reshape(steps * batch, inputs) if need[7] else None
        dR = None
        if need[8]:  # dR = sum_t da_t^T y_{t-1}: the first step sees h_0, the others Y
            if reverse:
                dR = dA[-1].t() @ h0
                da_rest, y_prev = dA[:-1], Y[1:]
            else:
                dR = dA[0].t() @ h0
                da_rest, y_prev = dA[1:], Y[:-1]
            if steps > 1:
                dR.addmm_(da_rest.reshape(-1, L.G * H).t(), y_prev.reshape(-1, H))
        db = dA2.sum(0) if ctx.has_bias and (need[9] or need[10]) else None
        dp = [None, None, None]
        if L.peepholes:
            c_prev = _shift(C, c0, reverse)
            for n, (k, c) in enumerate(((L.i, c_prev), (L.f, c_prev), (L.o, C))):
                if k >= 0 and need[11 + n]:
                    dp[n] = (_block(dA, k, H) * c).sum((0, 1))
        dWg = None
        if L.fgr and need[14]:
            s_prev = _shift(S, S.new_zeros(batch, L.S * H), reverse)
            dWg = dAs.view(-1, L.S * H).t() @ s_prev.view(-1, L.S * H)
        return (None, None, None, None, dx, dh0 if need[5] else None, dc0 if need[6] else None,
                dW, dR, db, db, *dp, dWg)


def fused_lstm(spec: LSTMSpec, x: Tensor, h0: Tensor, c0: Tensor, w: LSTMWeights,
               mask: Tensor | None = None, reverse: bool = False,
               compiled: bool | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One layer-direction of the LSTM ``spec`` over x (T, B, I) from state h0, c0 (B, H).

    mask (T, B) bool marks the steps inside each sequence (None: all). ``compiled`` picks the C++
    loop (True), the PyTorch loop (False) or the C++ loop when it is available (None).
    Returns output (T, B, H), h_n, c_n (B, H).
    """
    if compiled is None:
        compiled = build.available(x)
    elif compiled and not build.available(x):
        raise RuntimeError("lstmlab: the compiled LSTM kernel is not available here "
                           f"({build.why_unavailable(x)})")
    if mask is not None:
        mask = mask.contiguous()
    return FusedLSTMFunction.apply(spec, reverse, mask, compiled, x, h0, c0, *w)
