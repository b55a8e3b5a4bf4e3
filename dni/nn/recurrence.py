"""Unrolling a noisy cell over a whole sequence — the fast path used by training and evaluation.

Same arithmetic as stepping a cell of :mod:`dni.nn.cells` T times, reorganised for speed:

* the input part of every product, ``W_ih·x_t + b``, is computed for all T steps in one matmul
  (it does not depend on h). Because the noise is additive and independent of h, adding
  z_t to it is the same as adding z_t to ``W·[h, x] + b`` (paper eq. 2);
* per step only ``h·W_hhᵀ`` and element-wise work remain;
* R noisy **repeats** of one batch run as one batch of R·B rows: the input projection is
  computed once and shared, and each repeat may draw from its own generator.

Noise is drawn per step in the same order and shape as the reference cells draw it, so with the
same generator the fast path reproduces the reference cell's noisy output too (tested).

Noise of other kinds (:mod:`dni.noise.kinds`) does not commute with ``h·W_hhᵀ``: it scales with the
whole product's input or quantises its sum. In inference an LSTM or RNN still precomputes the input
part for all T steps, adds ``h·W_hhᵀ`` per step and only then applies the noise, with the product's
statistics (max|[h, x]|, ‖[h, x]‖) assembled from the parts (:class:`dni.noise.kinds.SplitProductStats`);
the draws are those of the readable cell, in the same order (tested against it in float64).
Training under those kinds steps the readable cell (autograd).

Which of these runs is :func:`dni.nn.paths.choose_path`'s answer alone (fused BPTT of :mod:`dni.nn.fused` for
training under additive noise included); :func:`unroll` dispatches on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dni.nn import fused
from dni.nn.cells import NoisyGRUCell, NoisyLSTMCell, NoisyRNNCell
from dni.nn.paths import Path, choose_path
from dni.noise.base import NoiseModel
from dni.noise.kinds import SplitProductStats


@dataclass
class Trace:
    """Per-step internals of an unrolled sequence (for probes and figures, paper Figs 3, 4, 7, 8).

    h: (N, T, H) output states; c: (N, T, H) LSTM internal states (None for RNN/GRU);
    preactivation: (N, T, G) the noisy pre-activations ``W·[h, x] + b + z`` of each step.
    """

    h: torch.Tensor
    c: torch.Tensor | None
    preactivation: torch.Tensor


def unroll(cell, x: torch.Tensor, noise: NoiseModel, generator=None, repeats: int = 1, trace: bool = False):
    """Run ``cell`` over x (B, T, I) from a zero state; return the last h (R·B, H) [, Trace].

    Rows ``r·B … (r+1)·B - 1`` of the result are repeat r. ``generator`` is one generator or a
    list of ``repeats`` generators (one per repeat, see :meth:`dni.noise.base.AdditiveGaussian.sample`).
    The path is :func:`dni.nn.paths.choose_path`'s: fused BPTT (:func:`dni.nn.fused.last_hidden`) in training
    under additive noise, the split path (:func:`split_steps`) or the readable cell under other kinds, else
    the unrolled fast path below.
    """
    path = choose_path(cell, noise, grad=torch.is_grad_enabled(), generator=generator, repeats=repeats, trace=trace)
    if path is Path.FUSED:
        return fused.last_hidden(cell, x, noise, generator)
    if path is Path.SPLIT:
        return _unroll_split(cell, x, noise, repeats, trace)
    if path is Path.READABLE:
        return _unroll_cell(cell, x, noise, generator, repeats, trace)
    B, T, _ = x.shape
    proj = F.linear(x, cell.weight_ih, cell.bias)  # (B, T, G): input part of all T products
    state = cell.initial_state(repeats * B, x)
    steps = _Steps(cell, trace)
    step = _STEPS[type(cell)]
    for t in range(T):
        p = proj[:, t]  # (B, G)
        if repeats > 1:
            p = p.expand(repeats, B, p.shape[-1])  # (R, B, G) view, no copy: repeat r is block r
        p = noise.add(p, generator).reshape(repeats * B, -1)  # (R·B, G)
        state, pre = step(cell, p, state, noise, generator, trace)
        steps.add(state, pre)
    return steps.result(state)


class _Steps:
    """The per-step states and pre-activations of an unrolled sequence, kept only when tracing; :meth:`result`
    is what :func:`unroll` returns: the last h (N, H) [, :class:`Trace`]."""

    def __init__(self, cell, trace: bool):
        self.cell, self.trace = cell, trace
        self.h, self.c, self.pre = [], [], []

    def add(self, state, pre):
        if self.trace:
            h, c = state if self.cell.has_cell_state else (state, None)
            self.h.append(h)
            self.c.append(c)
            self.pre.append(pre)

    def result(self, state):
        h_last = state[0] if self.cell.has_cell_state else state
        if not self.trace:
            return h_last
        stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731 — list of (N, ·) → (N, T, ·)
        return h_last, Trace(stack(self.h), stack(self.c) if self.cell.has_cell_state else None, stack(self.pre))


def _unroll_cell(cell, x, noise, generator, repeats: int, trace: bool):
    """The general path: the readable cell stepped T times on R·B rows (repeat r in block r), with
    the noise's products (:meth:`dni.noise.base.NoiseModel.product`) — any kind of noise; autograd for training."""
    B, T, I = x.shape
    state = cell.initial_state(repeats * B, x)
    steps = _Steps(cell, trace)
    recorder = _Recorder(noise) if trace else noise
    for t in range(T):
        xt = x[:, t] if repeats == 1 else x[:, t].expand(repeats, B, I).reshape(repeats * B, I)  # (R·B, I)
        state = cell(xt, state, noise=recorder, generator=generator)
        steps.add(state, torch.cat(recorder.take(), dim=1) if trace else None)
    return steps.result(state)


def _rows(v: torch.Tensor, rows: int) -> torch.Tensor:
    """v (B, k) as (rows, k), rows = R·B: the same input rows in every repeat block."""
    return v if v.shape[0] == rows else v.expand(rows // v.shape[0], *v.shape).reshape(rows, v.shape[-1])


def split_steps(cell, x, session, state, reverse: bool = False, trace: bool = False):
    """The steps of ``cell`` over x (B, T, I) under a noise session whose products may be split
    (:attr:`dni.noise.session.NoiseSession.splits_products`), from ``state`` (N rows, N = R·B: R repeat blocks
    sharing x's rows, or N = B): yields (t, new state, pre-activations (N, G)), t from 0 (from T - 1 if ``reverse``).

    ``W·[h, x_t] + b = W_h·h + (W_x·x_t + b)`` with the input part of all T steps precomputed, then the
    session's output kinds on the sum, with max|[h, x]| and ‖[h, x]‖ from the parts. A session with one chip
    per repeat (programming noise: (R, G, H + I)) computes the input part per step and repeat block. Same
    draws in the same order as stepping the readable cell (:func:`_unroll_cell`). ``trace``: the yielded
    pre-activations are kept intact (else the LSTM's gates are computed in place in them)."""
    B, T, I = x.shape
    H = cell.hidden_size
    W_nominal = cell.weight_on_concat()  # (G, H + I): the product's weight, its max|W| for the noise scales
    w_absmax = W_nominal.abs().max()
    W = session.chip("cell", W_nominal)  # (G, H + I), or (R, G, H + I): one chip per repeat
    W_h, W_x = W[..., :H], W[..., H:]
    xq = session.process_input(x)  # (B, T, I)
    x_absmax, x_sq = xq.abs().amax(-1, keepdim=True), xq.square().sum(-1, keepdim=True)  # (B, T, 1) each
    per_chip = W.dim() == 3
    proj = None if per_chip else F.linear(xq, W_x, cell.bias)  # (B, T, G)
    gates = _GATES[type(cell)]
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h, c = state if cell.has_cell_state else (state, None)
        N = h.shape[0]
        hq = session.process_input(h)  # (N, H)
        if per_chip:
            R = W.shape[0]
            xt = xq[:, t] if B * R == N else _rows(xq[:, t], N).view(R, N // R, I)  # (B, I) shared by the blocks, or (R, N/R, I)
            p = torch.matmul(xt, W_x.transpose(1, 2)) + cell.bias  # (R, N/R, G)
            pre = torch.baddbmm(p, hq.view(R, N // R, H), W_h.transpose(1, 2)).view(N, -1)  # (N, G)
        else:
            pre = torch.addmm(_rows(proj[:, t], N), hq, W_h.t())  # (N, G)
        pre = session.perturb(pre, SplitProductStats(hq, xq[:, t], x_absmax[:, t], x_sq[:, t], w_absmax, W_nominal))
        state, pre = gates(cell, pre, c, trace)
        yield t, state, pre


def _unroll_split(cell, x, session, repeats: int, trace: bool):
    """:func:`unroll` on the split path (:func:`split_steps`) from a zero state of R·B rows."""
    state = cell.initial_state(repeats * x.shape[0], x)
    steps = _Steps(cell, trace)
    for _, state, pre in split_steps(cell, x, session, state, trace=trace):
        steps.add(state, pre)
    return steps.result(state)


class _Recorder(NoiseModel):
    """Passes products to ``inner`` and keeps their noisy outputs (the trace's pre-activations)."""

    commutes_with_recurrence = False

    def __init__(self, inner):
        self.inner, self.outputs = inner, []

    @property
    def is_noiseless(self):
        return self.inner.is_noiseless

    def product(self, name, weight, bias, x, generator=None):
        y = self.inner.product(name, weight, bias, x, generator)
        self.outputs.append(y)
        return y

    def take(self):
        out, self.outputs = self.outputs, []
        return out


def _rnn_step(cell, p, h, noise, generator, trace):
    pre = torch.addmm(p, h, cell.weight_hh.t())  # (N, H) = W·[h, x] + b + z
    return _rnn_gates(cell, pre, None, trace)


def _rnn_gates(cell, pre, c, trace):
    return torch.tanh(pre), pre


def _lstm_step(cell, p, state, noise, generator, trace):
    h, c = state
    pre = torch.addmm(p, h, cell.weight_hh.t())  # (N, 4H)
    return _lstm_gates(cell, pre, c, trace)


def _lstm_gates(cell, pre, c, trace):
    """The LSTM's new (h, c) from its noisy pre-activations (N, 4H) and cell state c (N, H); and pre."""
    if not torch.is_grad_enabled():  # inference: fewer, in-place kernels
        H = cell.hidden_size
        a = pre.clone() if trace else pre  # pre is this step's own tensor
        a[:, : 2 * H].sigmoid_()
        a[:, 2 * H : 3 * H].tanh_()
        a[:, 3 * H :].sigmoid_()
        h, c, _ = fused.lstm_state(*a.split(H, dim=1), c)
        return (h, c), pre
    i, f, g, o = pre.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return (h, c), pre


def _gru_step(cell, p, h, noise, generator, trace):
    H = cell.hidden_size
    rz = torch.addmm(p[:, : 2 * H], h, cell.weight_hh[: 2 * H].t())  # (N, 2H)
    a = p[:, 2 * H :]  # (N, H), noise already added
    u = noise.add(F.linear(h, cell.weight_hh[2 * H :], cell.bias_hn), generator)  # (N, H)
    r, z = torch.sigmoid(rz).chunk(2, dim=1)
    n = torch.tanh(a + r * u)
    return (1 - z) * n + z * h, torch.cat([rz, a, u], dim=1)


_STEPS = {NoisyRNNCell: _rnn_step, NoisyLSTMCell: _lstm_step, NoisyGRUCell: _gru_step}
_GATES = {NoisyRNNCell: _rnn_gates, NoisyLSTMCell: _lstm_gates}
"""The split path's gates of :data:`dni.nn.paths.SPLITTABLE`: one product on [h, x], then element-wise gates."""
