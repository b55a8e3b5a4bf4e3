"""Which code runs a noisy recurrence: the one place that decides (issue 35).

Every sequence of a noisy cell — a classifier's forward (:mod:`dni.nn.models`), :func:`dni.nn.recurrence.unroll`,
a noisified torch layer (:mod:`dni.nn.noisify`) and model-batched training (:mod:`dni.training.batched`) — asks
:func:`choose_path` and runs what it answers. All paths compute paper eq. 2 (``g(W·[h, x] + b + z)`` after every
product); the readable cells of :mod:`dni.nn.cells` are the reference each of them is tested against.
"""

from __future__ import annotations

from enum import Enum

from dni.nn.cells import NoisyLSTMCell, NoisyRNNCell
from dni.noise.session import commutes

FUSABLE = (NoisyLSTMCell, NoisyRNNCell)
"""Cells with a fused BPTT Function (:mod:`dni.nn.fused`); the GRU's candidate takes two products per step."""

SPLITTABLE = (NoisyLSTMCell, NoisyRNNCell)
"""Cells whose step is one product on [h, x] followed by element-wise gates (:func:`dni.nn.recurrence.split_steps`)."""


class Path(str, Enum):
    """The code that runs a noisy sequence (see :func:`choose_path` for when)."""

    FUSED = "fused"
    """Training under the paper's additive noise, LSTM or RNN: :mod:`dni.nn.fused` — the input projection of all
    steps plus bias plus the whole sequence's noise as one (T, B, G) tensor (one draw, or (S, T, B, G) with a
    model-stack dim), then one autograd Function running the recurrence with a hand-written backward pass.
    Fastest for training; its draws differ from the readable cell's (statistically the same)."""

    UNROLLED = "unrolled"
    """Additive noise otherwise — inference, the GRU, or several repeats / generators: :func:`dni.nn.recurrence.unroll`'s
    fast path — the input projection of all steps in one matmul, the noise added per step in the readable
    cell's order and shapes, then ``h·W_hhᵀ`` and the gates per step (autograd when grad is on). Draws equal
    the readable cell's."""

    SPLIT = "split"
    """Inference under other noise kinds whose products may be split (:attr:`dni.noise.session.NoiseSession.splits_products`),
    LSTM or RNN: :func:`dni.nn.recurrence.split_steps` — the input part precomputed, ``h·W_hhᵀ`` added per step,
    then the session's output kinds on the sum with the product's statistics assembled from the parts. The
    readable cell's draws in its order."""

    READABLE = "readable"
    """Everything else (training under other kinds, kinds that do not split, the GRU under other kinds): the
    readable cell of :mod:`dni.nn.cells` stepped T times with the noise's whole products, autograd for training."""


def choose_path(cell, noise, *, grad: bool, generator=None, repeats: int = 1, trace: bool = False) -> Path:
    """The :class:`Path` that runs ``cell`` (a cell or its class) over a sequence under ``noise`` (a noise model).

    ``grad``: whether gradients are recorded (``torch.is_grad_enabled()``); ``generator``: one generator, or a
    list of them (one per repeat block of rows); ``repeats``: R noisy repeats of the batch as one; ``trace``:
    the per-step internals are wanted (:class:`dni.nn.recurrence.Trace`).

    * :attr:`Path.FUSED` — grad on, additive noise (it commutes with ``h·W_hhᵀ``), an LSTM or RNN, one
      repeat from one generator, no trace;
    * :attr:`Path.UNROLLED` — additive noise otherwise;
    * :attr:`Path.SPLIT` — other noise kinds in inference (grad off), an LSTM or RNN, products that may split;
    * :attr:`Path.READABLE` — otherwise.
    """
    kind = cell if isinstance(cell, type) else type(cell)
    if commutes(noise):
        several = repeats != 1 or isinstance(generator, (list, tuple))
        if grad and kind in FUSABLE and not several and not trace:
            return Path.FUSED
        return Path.UNROLLED
    if not grad and kind in SPLITTABLE and getattr(noise, "splits_products", False):
        return Path.SPLIT
    return Path.READABLE
