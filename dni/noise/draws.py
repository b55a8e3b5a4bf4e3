"""Common random numbers across σval (issue 22): one standard-normal ε per (model, repeat, chunk), shared by every σval.

The paper's inference noise is ``z = σval·ε`` with ε ~ N(0, 1) per element (eq. 2). dni's first
evaluation scheme ("per-point", :func:`dni.evaluation.evaluate.repeat_seed`) draws fresh ε for every
(σval, repeat); this one ("shared") draws the ε of each (repeat r, chunk c of test digits) once
and runs the forward passes of every σval of the grid on it, back to back. Each point's
distribution is exactly the per-point one (its ε is N(0, 1) and independent across repeats and
digits); only the correlation *between* σval points changes — differences between neighbouring
σval carry less Monte-Carlo noise — and the draws cost one grid's worth instead of one per σval.

Seeding is counter-based: the generator of (r, c) is seeded from the key
``(eval seed, arch, σtrain, r, c, "shared-draws" [, train/eval noise spec] [, "train_seed", k])`` (:func:`chunk_seed`;
the training seed k of the model enters only when k ≠ 0, so every seed-0 number re-derives bit for bit, issue 34),
so any (r, c) block can be drawn by any thread in any order: the blocks of a chunk are drawn in
parallel by a thread pool (:func:`draw_chunk`, torch releases the GIL while it draws) and the result
is bit for bit the same for any number of threads. ``--device cuda`` seeds a ``torch.Generator``
on the GPU (Philox) with the same keys: the same scheme, other numbers than the CPU's MT19937.

Layout and memory: the ε of repeat r and chunk c is one flat vector of all its draws, in the order
the forward pass consumes them (:meth:`dni.nn.models.SequenceClassifier.inference_noise_shapes` with R = 1: per
step the (B, G) input-product draw [and the GRU's (B, H)], then the FC's (B, C)). A pass holds
at most :data:`REPEATS_PER_PASS` repeats × :data:`DIGITS_PER_CHUNK` digits of ε: for lstm28
(T = 28, G = 512) 40 × 128 × 28 × 512 × 4 B ≈ 294 MB.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from dni.errors import InvalidArgumentError
from dni.noise.base import AdditiveGaussian, NoiseModel
from dni.noise.catalogue import PAPER
from dni.noise.session import noise_for

DIGITS_PER_CHUNK = 128
"""Test digits per chunk (× R repeats per pass). Fixed: it decides which draws meet which digit."""
REPEATS_PER_PASS = 40
"""At most this many repeats per batched pass (bounds the memory of ε; results do not depend on it)."""
_TAG = zlib.crc32(b"shared-draws")


_TRAIN_SEED_TAG = zlib.crc32(b"train_seed")


def train_seed_key(train_seed: int) -> list[int]:
    """What a model's training seed adds to an evaluation draw key: nothing for seed 0 (the committed
    numbers' keys), ``["train_seed" tag, k]`` for k ≠ 0 (issue 34)."""
    return [] if int(train_seed) == 0 else [_TRAIN_SEED_TAG, int(train_seed)]


def takes_shared_draws(eval_noise=PAPER) -> bool:
    """Whether the shared scheme applies to ``eval_noise``: the additive kind (z = σ·ε). Other kinds
    (:mod:`dni.noise.kinds`) draw per point whatever the scheme (their draws are not a scaled ε)."""
    return isinstance(noise_for(eval_noise, 1.0), AdditiveGaussian)


def chunk_seed(eval_seed: int, arch: str, sigma_train: float, repeat: int, chunk: int,
               train_noise: str = PAPER, eval_noise: str = PAPER, train_seed: int = 0) -> int:
    """The seed of the ε of (model, repeat, chunk): a counter-based key, no σval in it.

    ``train_seed`` (issue 34): the training seed of the model; it is appended (with a tag) only when
    it is not 0, so a seed-0 model keeps its committed draws and the draws of seed k are independent
    of seed j's (another key for every k).
    """
    key = [int(eval_seed), zlib.crc32(arch.encode()), round(sigma_train * 1e6), int(repeat), int(chunk), _TAG]
    if (train_noise, eval_noise) != (PAPER, PAPER):
        key += [zlib.crc32(str(train_noise).encode()), zlib.crc32(str(eval_noise).encode())]
    key += train_seed_key(train_seed)
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1)


def draw_chunk(seeds, size: int, device="cpu", threads: int | None = None) -> torch.Tensor:
    """ε (len(seeds), size): row r drawn by a generator seeded with seeds[r] alone, the rows by
    ``threads`` threads (default: torch's thread count) — the same tensor for any ``threads``."""
    eps = torch.empty(len(seeds), size, device=device)

    def one(r):
        gen = torch.Generator(device=device).manual_seed(int(seeds[r]))
        torch.randn(size, generator=gen, out=eps[r])

    threads = torch.get_num_threads() if threads is None else threads
    if threads > 1 and len(seeds) > 1 and torch.device(device).type == "cpu":
        with ThreadPoolExecutor(max_workers=min(threads, len(seeds)), thread_name_prefix="dni-draws") as pool:
            list(pool.map(one, range(len(seeds))))
    else:  # one thread; on a GPU the kernels queue anyway
        for r in range(len(seeds)):
            one(r)
    return eps


class SharedGaussian(NoiseModel):
    """The paper's additive noise at ``sigma`` with given ε: call k of :meth:`add` returns
    ``pre + sigma·ε_k`` in one kernel (``torch.add(pre, ε, alpha=σ)``: one pass over the block, where
    the per-point path scales then adds), where ε_k is the k-th block of ``shapes`` in each row of
    ``eps`` (one row per repeat)."""

    def __init__(self, sigma: float, eps: torch.Tensor, shapes):
        self.sigma, self.eps = float(sigma), eps
        self._blocks, offset = [], 0
        for shape in shapes:
            n = int(np.prod(shape))
            self._blocks.append((offset, n, tuple(shape)))
            offset += n
        if offset != eps.shape[1]:
            raise RuntimeError(f"ε holds {eps.shape[1]} draws per repeat, the pass needs {offset}")
        self._next = 0

    @property
    def is_noiseless(self) -> bool:
        return False

    @property
    def consumed(self) -> bool:
        return self._next == len(self._blocks)

    def add(self, preactivation, generator=None):
        if self._next == len(self._blocks):
            raise RuntimeError("SharedGaussian ran out of draws: the pass made more noisy products than its shapes")
        offset, n, shape = self._blocks[self._next]
        self._next += 1
        R = self.eps.shape[0]
        eps = self.eps[:, offset : offset + n].view(R, *shape)  # (R, *shape): repeat r is block r
        if preactivation.shape == eps.shape:  # an (R, B, G) step input
            return torch.add(preactivation, eps, alpha=self.sigma)
        return torch.add(preactivation, eps.reshape(preactivation.shape), alpha=self.sigma)  # (R·B, ·) or R = 1: rows of repeat r


@torch.no_grad()
def shared_noisy_accuracy(model, data, sigmas, repeats: int, seed_of, device="cpu", threads: int | None = None):
    """Accuracy and mean cross-entropy of ``repeats`` noisy passes over ``data`` at every σ of
    ``sigmas`` (all > 0) on common ε: ``{σ: (accuracy (R,), loss (R,))}``.

    ``seed_of(repeat, chunk)``: the generator seed of that block (:func:`chunk_seed`). Per chunk of
    :data:`DIGITS_PER_CHUNK` digits and group of at most :data:`REPEATS_PER_PASS` repeats, ε is
    drawn once (:func:`draw_chunk`, ``threads`` threads) and the σ run one after the other on it.
    A point's value does not depend on which other σ or how many repeats are evaluated with it.
    """
    sigmas = [float(s) for s in sigmas]
    if any(s <= 0 for s in sigmas):
        raise InvalidArgumentError(f"shared draws are for σval > 0 (σval = 0 draws nothing), got {sigmas}")
    model.eval()
    steps = data.x.shape[1]
    correct = {s: torch.zeros(repeats, dtype=torch.long) for s in sigmas}
    loss = {s: torch.zeros(repeats, dtype=torch.float64) for s in sigmas}
    for c, start in enumerate(range(0, len(data), DIGITS_PER_CHUNK)):
        x = data.x[start : start + DIGITS_PER_CHUNK].to(device)  # (B, T, I)
        y = data.y[start : start + DIGITS_PER_CHUNK].to(device)  # (B,)
        shapes = model.inference_noise_shapes(len(y), steps, 1)  # one repeat's draws, in order
        size = sum(int(np.prod(s)) for s in shapes)
        for r0 in range(0, repeats, REPEATS_PER_PASS):
            rs = range(r0, min(r0 + REPEATS_PER_PASS, repeats))
            eps = draw_chunk([seed_of(r, c) for r in rs], size, device, threads)  # (R, size)
            for s in sigmas:
                noise = SharedGaussian(s, eps, shapes)
                logits = model(x, noise=noise, repeats=len(rs)).view(len(rs), len(y), -1)  # (R, B, C)
                if not noise.consumed:
                    raise RuntimeError("the pass used fewer noisy products than Model.inference_noise_shapes lists")
                correct[s][r0 : rs.stop] += (logits.argmax(-1) == y).sum(1).cpu()
                loss[s][r0 : rs.stop] += torch.nn.functional.cross_entropy(
                    logits.transpose(1, 2), y.expand(len(rs), -1), reduction="none").sum(1).double().cpu()
            del eps
    return {s: (correct[s].double().numpy() / len(data), loss[s].numpy() / len(data)) for s in sigmas}
