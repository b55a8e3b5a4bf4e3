"""Fused noisy LSTM / RNN sequences for training: hand-written BPTT in one autograd node.

Same arithmetic as :class:`dni.nn.cells.NoisyLSTMCell` / :class:`dni.nn.cells.NoisyRNNCell` stepped T
times (paper eq. 2, Fig. 1), organised so the per-step Python work is a handful of in-place
kernels and every weight gradient is one large matmul after the loop:

* the input projection of all steps plus bias plus **all the noise of the sequence** is one
  tensor ``P = x·W_ihᵀ + b + z``, (T, B, G), computed with ordinary autograd (so dW_ih and db
  come from autograd's single matmul over T·B rows);
* :class:`NoisyLSTM` (:class:`NoisyRNN`) runs the recurrence ``pre_t = P_t + h_{t-1}·W_hhᵀ`` without
  recording a graph, saves the activations, and in ``backward`` walks the steps in reverse
  with coefficients precomputed for all steps at once; ``dW_hh = Σ_t dpre_tᵀ·h_{t-1}`` is one
  (G × T·B)·(T·B × H) matmul;
* the LSTM's gates are reordered to (o, i, f, g) inside the function, so one ``sigmoid_``
  covers three gates in the forward pass and one multiply by dc covers three in the backward.

One Function per cell serves every fused caller: the classifier's training (h_T from a zero state,
:func:`last_hidden`), model-batched training (the same with a leading model-stack dim S,
:func:`stacked_last_hidden`) and a noisified torch layer (every output from a given state, gradients
for the state too, :func:`layer_outputs`). :func:`dni.nn.paths.choose_path` decides when it runs.

Numerics equal the reference given the same noise tensors (tested; see :func:`last_hidden`'s
``noise_tensor`` argument). The noise here is drawn as one (T, B, G) block per batch instead of T
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


def lstm_state(i, f, g, o, c, out=None):
    """The LSTM's state update from its activated gates (paper Fig. 1): ``c' = σ(f)·c + σ(i)·tanh(g)``,
    ``h' = σ(o)·tanh(c')``; i, f, o already through σ, g through tanh, all (..., H). Returns (h', c', tanh c').

    The gate maths shared by :class:`NoisyLSTM` and :func:`dni.nn.recurrence.unroll`'s inference;
    ``out`` = (c', tanh c', h') buffers to write into (the fused forward pass keeps every step's)."""
    c_out, tanh_out, h_out = (None, None, None) if out is None else out
    c = torch.mul(f, c, out=c_out).addcmul_(i, g)
    tanh_c = torch.tanh(c, out=tanh_out)
    return torch.mul(o, tanh_c, out=h_out), c, tanh_c


def _matmuls(stacked: bool):
    """(bias + a·b, a·b) of the recurrence: batched over a leading model-stack dim, or plain.

    Kept apart rather than always batching a stack of one: the two may round differently, and the committed
    checkpoints were trained with the classifier's fused path running a stack of one (``baddbmm``/``bmm``)
    while a noisified torch layer runs ``addmm``/``mm``."""
    return (torch.baddbmm, torch.bmm) if stacked else (torch.addmm, torch.mm)


def _weight_gradient(dP, h, mm):
    """``dW_hh = Σ_t dpre_tᵀ·h_{t-1}``: one (G × T·B)·(T·B × H) product (per model of the stack)."""
    T = dP.shape[-3]
    return mm(dP.flatten(-3, -2).transpose(-1, -2), h.narrow(-3, 0, T).flatten(-3, -2))


class NoisyLSTM(torch.autograd.Function):
    """The noisy LSTM recurrence over a whole sequence, with a hand-written backward pass (BPTT).

    ``NoisyLSTM.apply(P, weight_hh, h0, c0, all_outputs)``: P (..., T, B, 4H) the input part of every product plus
    bias plus noise in gate order (o, i, f, g); weight_hh (..., 4H, H) in that order; h0, c0 (..., B, H) or None
    (zero state); "..." is () for one model or (S,) for S stacked models (batched matmuls, model-batched training
    :mod:`dni.training.batched`). Returns (h_1 … h_T (..., T, B, H) if ``all_outputs`` else h_T (..., B, H),
    c_T (..., B, H)), with gradients for P, weight_hh and a given initial state. The classifier's fused training
    wants h_T; a noisified ``nn.LSTM`` layer every output and the final state (:func:`layer_outputs`).
    """

    @staticmethod
    def forward(ctx, P, weight_hh, h0, c0, all_outputs: bool):
        T, B, G = P.shape[-3:]
        lead, H = P.shape[:-3], G // 4
        addmm, _ = _matmuls(P.dim() == 4)
        acts = torch.empty_like(P)  # (..., T, B, 4H): σ(o), σ(i), σ(f), tanh(g)
        c = P.new_zeros(*lead, T + 1, B, H)  # c_0 … c_T
        h = P.new_zeros(*lead, T + 1, B, H)  # h_0 … h_T
        if c0 is not None:
            c.select(-3, 0).copy_(c0)
        if h0 is not None:
            h.select(-3, 0).copy_(h0)
        tanh_c = P.new_empty(*lead, T, B, H)
        W_t = weight_hh.transpose(-1, -2)  # (..., H, 4H)
        for t in range(T):
            a = acts.select(-3, t)
            addmm(P.select(-3, t), h.select(-3, t), W_t, out=a)  # (..., B, 4H) pre-activation incl. noise
            a[..., : 3 * H].sigmoid_()
            a[..., 3 * H :].tanh_()
            o, i, f, g = a.split(H, dim=-1)
            lstm_state(i, f, g, o, c.select(-3, t), out=(c.select(-3, t + 1), tanh_c.select(-3, t), h.select(-3, t + 1)))
        ctx.save_for_backward(acts, c, h, tanh_c, weight_hh)
        ctx.all_outputs = all_outputs
        out = h.narrow(-3, 1, T) if all_outputs else h.select(-3, T)
        return out.clone(), c.select(-3, T).clone()

    @staticmethod
    def backward(ctx, grad_out, grad_c):
        acts, c, h, tanh_c, weight_hh = ctx.saved_tensors
        T, H = acts.shape[-3], acts.shape[-1] // 4
        _, mm = _matmuls(acts.dim() == 4)
        o, i, f, g = acts.split(H, dim=-1)
        # coefficients of all steps at once (big, vectorised): dpre_o = coef·dh, dpre_{i,f,g} = coef·dc
        coef = torch.empty_like(acts)  # (..., T, B, 4H)
        torch.mul(tanh_c, o * (1 - o), out=coef[..., :H])  # tanh(c)·σ'(o)
        torch.mul(g, i * (1 - i), out=coef[..., H : 2 * H])  # g·σ'(i)
        torch.mul(c.narrow(-3, 0, T), f * (1 - f), out=coef[..., 2 * H : 3 * H])  # c_{t-1}·σ'(f)
        torch.mul(i, 1 - g * g, out=coef[..., 3 * H :])  # i·tanh'(g)
        dh_to_dc = o * (1 - tanh_c * tanh_c)  # (..., T, B, H)
        dP = torch.empty_like(acts)
        dh = torch.zeros_like(h.select(-3, 0)) if ctx.all_outputs else grad_out.contiguous()  # (..., B, H)
        dc = grad_c.clone()
        for t in range(T - 1, -1, -1):
            if ctx.all_outputs:
                dh = dh + grad_out.select(-3, t)  # the step's own output gradient joins what comes back from t + 1
            dc.addcmul_(dh, dh_to_dc.select(-3, t))  # total dc_t
            d, k = dP.select(-3, t), coef.select(-3, t)  # (..., B, 4H)
            torch.mul(k[..., :H], dh, out=d[..., :H])  # o gate
            torch.mul(k[..., H:].unflatten(-1, (3, H)), dc.unsqueeze(-2), out=d[..., H:].unflatten(-1, (3, H)))  # i, f, g
            dc.mul_(f.select(-3, t))  # dc_{t-1} through the forget gate
            dh = mm(d, weight_hh)  # (..., B, 4H)·(..., 4H, H)
        needs = ctx.needs_input_grad
        return dP, _weight_gradient(dP, h, mm), dh if needs[2] else None, dc if needs[3] else None, None


class NoisyRNN(torch.autograd.Function):
    """The noisy vanilla RNN recurrence ``h_t = tanh(P_t + h_{t-1}·W_hhᵀ)`` with a hand-written backward pass.

    ``NoisyRNN.apply(P, weight_hh, h0, all_outputs)``: P (..., T, B, H), weight_hh (..., H, H), h0 (..., B, H) or
    None; "..." () or (S,) as in :class:`NoisyLSTM`. Returns h_1 … h_T (..., T, B, H) if ``all_outputs`` else
    h_T (..., B, H)."""

    @staticmethod
    def forward(ctx, P, weight_hh, h0, all_outputs: bool):
        T, B, H = P.shape[-3:]
        addmm, _ = _matmuls(P.dim() == 4)
        h = P.new_zeros(*P.shape[:-3], T + 1, B, H)
        if h0 is not None:
            h.select(-3, 0).copy_(h0)
        W_t = weight_hh.transpose(-1, -2)
        for t in range(T):
            addmm(P.select(-3, t), h.select(-3, t), W_t, out=h.select(-3, t + 1)).tanh_()
        ctx.save_for_backward(h, weight_hh)
        ctx.all_outputs = all_outputs
        return (h.narrow(-3, 1, T) if all_outputs else h.select(-3, T)).clone()

    @staticmethod
    def backward(ctx, grad_out):
        h, weight_hh = ctx.saved_tensors
        T = h.shape[-3] - 1
        _, mm = _matmuls(h.dim() == 4)
        after = h.narrow(-3, 1, T)
        coef = 1 - after * after  # tanh' of every step (..., T, B, H)
        dP = torch.empty_like(coef)
        dh = torch.zeros_like(h.select(-3, 0)) if ctx.all_outputs else grad_out.contiguous()
        for t in range(T - 1, -1, -1):
            torch.mul(dh + grad_out.select(-3, t) if ctx.all_outputs else dh, coef.select(-3, t), out=dP.select(-3, t))
            dh = mm(dP.select(-3, t), weight_hh)
        return dP, _weight_gradient(dP, h, mm), dh if ctx.needs_input_grad[2] else None, None


def _last_hidden(P, weight_hh, lstm: bool):
    """h_T (..., B, H) from a zero state: :class:`NoisyLSTM` or :class:`NoisyRNN` on P (..., T, B, G)."""
    return NoisyLSTM.apply(P, weight_hh, None, None, False)[0] if lstm else NoisyRNN.apply(P, weight_hh, None, False)


def _noisy_projection(cell, x, noise: NoiseModel, generator, rows=None, noise_tensor=None):
    """P = W_ih·x_t + b + z for all steps, time-major (T, B, G); rows permutes the gate rows."""
    W, b = (cell.weight_ih, cell.bias) if rows is None else (cell.weight_ih[rows], cell.bias[rows])
    P = torch.nn.functional.linear(x.transpose(0, 1), W, b)  # (T, B, G)
    if noise_tensor is not None:  # explicit noise (T, B, G) in the cell's own gate order
        return P.add_(noise_tensor if rows is None else noise_tensor[..., rows])
    return noise.add(P, generator)


def last_hidden(cell, x, noise: NoiseModel, generator=None, noise_tensor=None):
    """Last output state h_T (B, H) of a noisy LSTM or RNN over x (B, T, I) from a zero state, fused path
    (:attr:`dni.nn.paths.Path.FUSED`). ``noise_tensor``: explicit noise (T, B, G) in the cell's gate order (tests).

    Runs as a stack of one model (batched matmuls), as the committed checkpoints were trained."""
    lstm = cell.has_cell_state
    rows = gate_order(cell.hidden_size, x.device) if lstm else None
    P = _noisy_projection(cell, x, noise, generator, rows, noise_tensor).unsqueeze(0)  # (1, T, B, G)
    W = (cell.weight_hh if rows is None else cell.weight_hh[rows]).unsqueeze(0)  # (1, G, H)
    return _last_hidden(P, W, lstm)[0]


def stacked_last_hidden(kind: str, x, weight_ih, bias, weight_hh, noise: NoiseModel):
    """h_T (S, B, H) of S stacked models of one kind (``"lstm"``, ``"rnn"``) over the same x (B, T, I), fused path
    (model-batched training, :class:`dni.nn.stacked.StackedClassifier`): weight_ih (S, G, I), bias (S, G),
    weight_hh (S, G, H) in the cells' gate order; ``noise`` adds each model's z to P (S, T, B, G) in one draw."""
    if kind == "lstm":
        rows = gate_order(weight_hh.shape[-1], weight_hh.device)
        weight_ih, bias, weight_hh = weight_ih[:, rows], bias[:, rows], weight_hh[:, rows]
    P = noise.add(torch.einsum("bti,sgi->stbg", x, weight_ih) + bias[:, None, None, :])  # (S, T, B, G)
    return _last_hidden(P, weight_hh, kind == "lstm")


def layer_outputs(cell, x, state, noise: NoiseModel, generator=None):
    """Fused training path of one layer direction of a torch LSTM / RNN (:mod:`dni.noisify`): x (B, T, I) from
    ``state`` ((h0, c0) or h0, each (B, H)) → (outputs (B, T, H), final state). The noise of the whole
    sequence is one (T, B, G) draw (statistically the per-step draws of :func:`dni.nn.recurrence.unroll`)."""
    if cell.has_cell_state:
        rows = gate_order(cell.hidden_size, x.device)
        P = _noisy_projection(cell, x, noise, generator, rows)  # (T, B, 4H)
        out, c_last = NoisyLSTM.apply(P, cell.weight_hh[rows], *state, True)  # (T, B, H), (B, H)
        return out.transpose(0, 1), (out[-1], c_last)
    P = _noisy_projection(cell, x, noise, generator)  # (T, B, H)
    out = NoisyRNN.apply(P, cell.weight_hh, state, True)
    return out.transpose(0, 1), out[-1]
