"""Fused noisy LSTM / RNN sequences for training: hand-written BPTT in one autograd node.

Same arithmetic as :class:`dni.cells.NoisyLSTMCell` / :class:`dni.cells.NoisyRNNCell` stepped T
times (paper eq. 2, Fig. 1), organised so the per-step Python work is a handful of in-place
kernels and every weight gradient is one large matmul after the loop:

* the input projection of all steps plus bias plus **all the noise of the sequence** is one
  tensor ``P = x·W_ihᵀ + b + z``, (T, B, G), computed with ordinary autograd (so dW_ih and db
  come from autograd's single matmul over T·B rows);
* :class:`NoisyLSTMSequence` runs the recurrence ``pre_t = P_t + h_{t-1}·W_hhᵀ`` without
  recording a graph, saves the activations, and in ``backward`` walks the steps in reverse
  with coefficients precomputed for all steps at once; ``dW_hh = Σ_t dpre_tᵀ·h_{t-1}`` is one
  (G × T·B)·(T·B × H) matmul;
* the LSTM's gates are reordered to (o, i, f, g) inside the function, so one ``sigmoid_``
  covers three gates in the forward pass and one multiply by dc covers three in the backward.

Numerics equal the reference given the same noise tensors (tested; see :func:`lstm_last_hidden`
``noise=`` argument). The noise here is drawn as one (T, B, G) block per batch instead of T
(B, G) draws, so with the same *generator* the draws differ from the reference cell's —
statistically identical (also tested).
"""

from __future__ import annotations

import torch

from .noise import NoiseModel


def gate_order(H: int, device) -> torch.Tensor:
    """Row permutation (i, f, g, o) → (o, i, f, g)."""
    idx = torch.arange(4 * H, device=device).view(4, H)
    return idx[[3, 0, 1, 2]].reshape(-1)


class NoisyLSTMSequence(torch.autograd.Function):
    """``h_T`` of S stacked LSTMs: P (S, T, B, 4H) in gate order (o, i, f, g), W_hh (S, 4H, H).

    Zero initial state; returns (S, B, H). S = 1 is one model; S > 1 trains S models together
    (:mod:`dni.batched`) with batched matmuls.
    """

    @staticmethod
    def forward(ctx, P, weight_hh):
        S, T, B, G = P.shape
        H = G // 4
        acts = torch.empty_like(P)  # (S, T, B, 4H): σ(o), σ(i), σ(f), tanh(g)
        c = P.new_zeros(S, T + 1, B, H)  # c[:, 0] = 0
        h = P.new_zeros(S, T + 1, B, H)  # h[:, 0] = 0
        tanh_c = P.new_empty(S, T, B, H)
        W_t = weight_hh.transpose(1, 2)  # (S, H, 4H)
        for t in range(T):
            a = acts[:, t]
            torch.baddbmm(P[:, t], h[:, t], W_t, out=a)  # (S, B, 4H) pre-activation incl. noise
            a[..., : 3 * H].sigmoid_()
            a[..., 3 * H :].tanh_()
            o, i, f, g = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
            torch.mul(f, c[:, t], out=c[:, t + 1]).addcmul_(i, g)
            torch.tanh(c[:, t + 1], out=tanh_c[:, t])
            torch.mul(o, tanh_c[:, t], out=h[:, t + 1])
        ctx.save_for_backward(acts, c, h, tanh_c, weight_hh)
        return h[:, T].clone()

    @staticmethod
    def backward(ctx, grad_h):
        acts, c, h, tanh_c, weight_hh = ctx.saved_tensors
        S, T, B, G = acts.shape
        H = G // 4
        o, i, f, g = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H : 3 * H], acts[..., 3 * H :]
        # coefficients of all steps at once (big, vectorised): dpre_o = coef·dh, dpre_{i,f,g} = coef·dc
        coef = torch.empty_like(acts)  # (S, T, B, 4H)
        torch.mul(tanh_c, o * (1 - o), out=coef[..., :H])  # tanh(c)·σ'(o)
        torch.mul(g, i * (1 - i), out=coef[..., H : 2 * H])  # g·σ'(i)
        torch.mul(c[:, :-1], f * (1 - f), out=coef[..., 2 * H : 3 * H])  # c_{t-1}·σ'(f)
        torch.mul(i, 1 - g * g, out=coef[..., 3 * H :])  # i·tanh'(g)
        dh_to_dc = o * (1 - tanh_c * tanh_c)  # (S, T, B, H)
        dP = torch.empty_like(acts)
        dh = grad_h.contiguous()  # (S, B, H)
        dc = torch.zeros_like(dh)
        for t in range(T - 1, -1, -1):
            dc.addcmul_(dh, dh_to_dc[:, t])  # total dc_t
            d = dP[:, t]  # (S, B, 4H)
            torch.mul(coef[:, t, :, :H], dh, out=d[..., :H])  # o gate
            torch.mul(coef[:, t, :, H:].view(S, B, 3, H), dc.unsqueeze(2), out=d[..., H:].view(S, B, 3, H))  # i, f, g
            dc.mul_(f[:, t])  # dc_{t-1} through the forget gate
            dh = torch.bmm(d, weight_hh)  # (S, B, 4H)·(S, 4H, H)
        grad_w = torch.bmm(dP.view(S, T * B, G).transpose(1, 2), h[:, :-1].reshape(S, T * B, H))  # (S, 4H, H)
        return dP, grad_w


class NoisyRNNSequence(torch.autograd.Function):
    """``h_T`` of S stacked vanilla RNNs ``h_t = tanh(P_t + h_{t-1}·W_hhᵀ)``: P (S, T, B, H) → (S, B, H)."""

    @staticmethod
    def forward(ctx, P, weight_hh):
        S, T, B, H = P.shape
        h = P.new_zeros(S, T + 1, B, H)
        W_t = weight_hh.transpose(1, 2)
        for t in range(T):
            torch.baddbmm(P[:, t], h[:, t], W_t, out=h[:, t + 1]).tanh_()
        ctx.save_for_backward(h, weight_hh)
        return h[:, T].clone()

    @staticmethod
    def backward(ctx, grad_h):
        h, weight_hh = ctx.saved_tensors
        S, T1, B, H = h.shape
        T = T1 - 1
        coef = 1 - h[:, 1:] * h[:, 1:]  # tanh' of every step (S, T, B, H)
        dP = torch.empty_like(coef)
        dh = grad_h.contiguous()
        for t in range(T - 1, -1, -1):
            torch.mul(dh, coef[:, t], out=dP[:, t])
            dh = torch.bmm(dP[:, t], weight_hh)
        grad_w = torch.bmm(dP.view(S, T * B, H).transpose(1, 2), h[:, :-1].reshape(S, T * B, H))
        return dP, grad_w


SEQUENCES = {"lstm": NoisyLSTMSequence, "rnn": NoisyRNNSequence}


def _noisy_projection(cell, x, noise: NoiseModel, generator, rows=None, noise_tensor=None):
    """P = W_ih·x_t + b + z for all steps, time-major (T, B, G); rows permutes the gate rows."""
    W, b = (cell.weight_ih, cell.bias) if rows is None else (cell.weight_ih[rows], cell.bias[rows])
    P = torch.nn.functional.linear(x.transpose(0, 1), W, b)  # (T, B, G)
    if noise_tensor is not None:  # explicit noise (T, B, G) in the cell's own gate order
        return P.add_(noise_tensor if rows is None else noise_tensor[..., rows])
    return noise.add(P, generator)


def lstm_last_hidden(cell, x, noise: NoiseModel, generator=None, noise_tensor=None):
    """Last output state (B, H) of the noisy LSTM over x (B, T, I), fused path."""
    rows = gate_order(cell.hidden_size, x.device)
    P = _noisy_projection(cell, x, noise, generator, rows, noise_tensor)  # (T, B, 4H)
    return NoisyLSTMSequence.apply(P.unsqueeze(0), cell.weight_hh[rows].unsqueeze(0))[0]


def rnn_last_hidden(cell, x, noise: NoiseModel, generator=None, noise_tensor=None):
    """Last output state (B, H) of the noisy vanilla RNN over x (B, T, I), fused path."""
    P = _noisy_projection(cell, x, noise, generator, None, noise_tensor)  # (T, B, H)
    return NoisyRNNSequence.apply(P.unsqueeze(0), cell.weight_hh.unsqueeze(0))[0]
