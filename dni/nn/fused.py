"""Fused noisy LSTM / RNN sequences for training: hand-written BPTT in one autograd node.

Same arithmetic as :class:`dni.nn.cells.NoisyLSTMCell` / :class:`dni.nn.cells.NoisyRNNCell` stepped T
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

from dni.noise.base import NoiseModel


def gate_order(H: int, device) -> torch.Tensor:
    """Row permutation (i, f, g, o) → (o, i, f, g)."""
    idx = torch.arange(4 * H, device=device).view(4, H)
    return idx[[3, 0, 1, 2]].reshape(-1)


class NoisyLSTMSequence(torch.autograd.Function):
    """``h_T`` of S stacked LSTMs: P (S, T, B, 4H) in gate order (o, i, f, g), W_hh (S, 4H, H).

    Zero initial state; returns (S, B, H). S = 1 is one model; S > 1 trains S models together
    (:mod:`dni.training.batched`) with batched matmuls.
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


class NoisyLSTMLayer(torch.autograd.Function):
    """Every output of one noisy LSTM layer direction from a given state, for :func:`dni.noisify`'s ``nn.LSTM``.

    P (T, B, 4H): input part of every product plus bias plus noise, gate order (o, i, f, g); W_hh (4H, H) in
    that order; h0, c0 (B, H). Returns (h_1 … h_T (T, B, H), c_T (B, H)), with gradients for all four inputs
    (a torch layer returns every step's output and its final states). The same recurrence as
    :class:`NoisyLSTMSequence` with S = 1; in backward each step's output gradient joins dh.
    """

    @staticmethod
    def forward(ctx, P, weight_hh, h0, c0):
        T, B, G = P.shape
        H = G // 4
        acts = torch.empty_like(P)  # (T, B, 4H): σ(o), σ(i), σ(f), tanh(g)
        c = P.new_empty(T + 1, B, H)
        h = P.new_empty(T + 1, B, H)
        c[0], h[0] = c0, h0
        tanh_c = P.new_empty(T, B, H)
        W_t = weight_hh.t()  # (H, 4H)
        for t in range(T):
            a = acts[t]
            torch.addmm(P[t], h[t], W_t, out=a)  # (B, 4H) pre-activation incl. noise
            a[:, : 3 * H].sigmoid_()
            a[:, 3 * H :].tanh_()
            o, i, f, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            torch.mul(f, c[t], out=c[t + 1]).addcmul_(i, g)
            torch.tanh(c[t + 1], out=tanh_c[t])
            torch.mul(o, tanh_c[t], out=h[t + 1])
        ctx.save_for_backward(acts, c, h, tanh_c, weight_hh)
        return h[1:].clone(), c[T].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_c):
        acts, c, h, tanh_c, weight_hh = ctx.saved_tensors
        T, B, G = acts.shape
        H = G // 4
        o, i, f, g = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H : 3 * H], acts[..., 3 * H :]
        coef = torch.empty_like(acts)  # (T, B, 4H): dpre_o = coef·dh, dpre_{i,f,g} = coef·dc
        torch.mul(tanh_c, o * (1 - o), out=coef[..., :H])
        torch.mul(g, i * (1 - i), out=coef[..., H : 2 * H])
        torch.mul(c[:-1], f * (1 - f), out=coef[..., 2 * H : 3 * H])
        torch.mul(i, 1 - g * g, out=coef[..., 3 * H :])
        dh_to_dc = o * (1 - tanh_c * tanh_c)  # (T, B, H)
        dP = torch.empty_like(acts)
        dh = torch.zeros_like(h[0])  # (B, H)
        dc = grad_c.clone()
        for t in range(T - 1, -1, -1):
            dh = dh + grad_out[t]  # the step's own output gradient joins what comes back from t + 1
            dc.addcmul_(dh, dh_to_dc[t])
            d = dP[t]  # (B, 4H)
            torch.mul(coef[t, :, :H], dh, out=d[:, :H])
            torch.mul(coef[t, :, H:].view(B, 3, H), dc.unsqueeze(1), out=d[:, H:].view(B, 3, H))
            dc.mul_(f[t])
            dh = d @ weight_hh  # (B, H)
        grad_w = dP.view(T * B, G).t() @ h[:-1].reshape(T * B, H)  # (4H, H)
        return dP, grad_w, dh, dc


class NoisyRNNLayer(torch.autograd.Function):
    """Every output h_1 … h_T (T, B, H) of one noisy tanh RNN layer direction: P (T, B, H), W_hh (H, H), h0 (B, H)."""

    @staticmethod
    def forward(ctx, P, weight_hh, h0):
        T, B, H = P.shape
        h = P.new_empty(T + 1, B, H)
        h[0] = h0
        W_t = weight_hh.t()
        for t in range(T):
            torch.addmm(P[t], h[t], W_t, out=h[t + 1]).tanh_()
        ctx.save_for_backward(h, weight_hh)
        return h[1:].clone()

    @staticmethod
    def backward(ctx, grad_out):
        h, weight_hh = ctx.saved_tensors
        T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
        coef = 1 - h[1:] * h[1:]  # tanh' of every step (T, B, H)
        dP = torch.empty_like(coef)
        dh = torch.zeros_like(h[0])
        for t in range(T - 1, -1, -1):
            torch.mul(dh + grad_out[t], coef[t], out=dP[t])
            dh = dP[t] @ weight_hh
        grad_w = dP.view(T * B, H).t() @ h[:-1].reshape(T * B, H)
        return dP, grad_w, dh


def layer_outputs(cell, x, state, noise: NoiseModel, generator=None):
    """Fused training path of one layer direction of a torch LSTM / RNN (:mod:`dni.noisify`): x (B, T, I) from
    ``state`` ((h0, c0) or h0, each (B, H)) → (outputs (B, T, H), final state). The noise of the whole
    sequence is one (T, B, G) draw (statistically the per-step draws of :func:`dni.nn.recurrence.unroll`)."""
    if cell.has_cell_state:
        rows = gate_order(cell.hidden_size, x.device)
        P = _noisy_projection(cell, x, noise, generator, rows)  # (T, B, 4H)
        out, c_last = NoisyLSTMLayer.apply(P, cell.weight_hh[rows], *state)  # (T, B, H), (B, H)
        return out.transpose(0, 1), (out[-1], c_last)
    P = _noisy_projection(cell, x, noise, generator)  # (T, B, H)
    out = NoisyRNNLayer.apply(P, cell.weight_hh, state)
    return out.transpose(0, 1), out[-1]
