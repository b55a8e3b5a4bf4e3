"""Noisy inference: accuracy of trained models at σval × R repeats (paper §III, Figs 2, 10).

Each (model, σval) point of the paper is the mean of 40 independent noisy evaluations of the
test set. Here repeat r (coordinate ``seed`` = r) draws its noise from its own generator, seeded
from (eval seed, arch, σtrain, σval, r [, training seed when ≠ 0]) — so a repeat's value does not depend on how many
repeats run, in what batches, or whether the run was resumed. The R repeats of a batch of
digits run as one batch of R·B sequences (:func:`dni.nn.recurrence.unroll`). σval = 0 draws no
noise: it is evaluated once and that accuracy fills every repeat.

That is the "per-point" draw scheme, with which the committed paper numbers were made. New results
use the "shared" scheme by default (issue 22, :mod:`dni.noise.draws`): the ε of each (model, repeat,
chunk of digits) is drawn once and shared by every σval (z = σval·ε), the draws on all cores.
``evaluate(..., draws=...)`` selects it; the result records it in ``attrs["draws"]``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from dni.data import SequenceData, load_sequences
from dni.errors import InvalidArgumentError
from dni.nn.presets import get_preset
from dni.noise.base import NoiseModel, PrefetchedGaussian, prefetch_pays_off
from dni.noise.catalogue import DEFAULT as DEFAULT_DRAWS
from dni.noise.catalogue import PAPER, validate_draws
from dni.noise.draws import chunk_seed, shared_noisy_accuracy, takes_shared_draws, train_seed_key
from dni.noise.session import NoiseSession, noise_for
from dni.noise.spec import check_strength_grid, parse_noise
from dni.store.checkpoints import TrainedModel
from dni.store.results import make_results
from dni.util.progress import tqdm
from dni.util.validation import validate_repeats, validate_sigmas

DIGITS_PER_PASS = 256
"""Test digits per batched noisy pass (× R repeats: 10,240 sequences at R = 40, the measured best
size). Fixed, not derived from R: how digits are cut into passes decides which draws of a
repeat's generator meet which digit, so it must not depend on the number of repeats."""
NOISELESS_BATCH = 4096
"""Digits per pass at σval = 0 (no draws, so any size gives the same result)."""


def repeat_seed(eval_seed: int, arch: str, sigma_train: float, sigma_val: float, repeat: int,
                train_noise: str = PAPER, eval_noise: str = PAPER, train_seed: int = 0) -> int:
    """The noise seed of one repeat; stable across runs, machines and Python versions.

    The noise specs enter the key only when they are not the paper's, and the model's training seed
    only when it is not 0 (:func:`dni.noise.draws.train_seed_key`, issue 34), so the paper's seeds (and the
    committed seed-0 numbers) stay as they were, and models of other training seeds draw independently.
    """
    key = [int(eval_seed), zlib.crc32(arch.encode()), round(sigma_train * 1e6), round(sigma_val * 1e6), int(repeat)]
    if (train_noise, eval_noise) != (PAPER, PAPER):
        key += [zlib.crc32(str(train_noise).encode()), zlib.crc32(str(eval_noise).encode())]
    key += train_seed_key(train_seed)
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1)


@torch.no_grad()
def noisy_accuracy(model, data: SequenceData, sigma_val: float, generators: list[torch.Generator] | None,
                   repeats: int, device="cpu", eval_noise: str = PAPER) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and mean cross-entropy of each of ``repeats`` noisy passes over ``data``: two (R,) arrays.

    ``generators``: one per repeat (ignored when σval = 0, where a single pass is made).
    ``eval_noise``: the noise spec (:mod:`dni.noise.kinds`) at strength σval; the paper's takes the
    fast path below, others the general path (:func:`_general_noisy_accuracy`).
    """
    model.eval()
    noise = noise_for(eval_noise, sigma_val)
    if not isinstance(noise, NoiseModel):  # a spec the fast path cannot take
        return _general_noisy_accuracy(model, data, noise, generators, repeats, device)
    R = 1 if noise.is_noiseless else repeats
    chunk = NOISELESS_BATCH if noise.is_noiseless else DIGITS_PER_PASS
    correct = torch.zeros(R, dtype=torch.long)
    loss = torch.zeros(R, dtype=torch.float64)
    gens = None if noise.is_noiseless else generators
    starts = range(0, len(data), chunk)
    threads = torch.get_num_threads()
    if not noise.is_noiseless and device == "cpu" and threads > 1:
        # drawing noise is as costly as the recurrence: one core draws (below) while torch computes on the rest
        torch.set_num_threads(threads - 1)
    if not noise.is_noiseless and prefetch_pays_off():  # draw ahead in a thread: the same generators in the same order
        steps = data.x.shape[1]
        shapes = (s for start in starts for s in model.inference_noise_shapes(len(data.y[start : start + chunk]), steps, R))
        noise = PrefetchedGaussian(sigma_val, gens, shapes, device=device)
    try:
        for start in starts:
            x = data.x[start : start + chunk].to(device)  # (B, T, I)
            y = data.y[start : start + chunk].to(device)  # (B,)
            logits = model(x, noise=noise, generator=gens, repeats=R).view(R, len(y), -1)  # (R, B, C)
            correct += (logits.argmax(-1) == y).sum(1).cpu()
            loss += torch.nn.functional.cross_entropy(logits.transpose(1, 2), y.expand(R, -1), reduction="none").sum(1).double().cpu()
    finally:
        if isinstance(noise, PrefetchedGaussian):
            noise.close()
        torch.set_num_threads(threads)
    acc, mean_loss = correct.double().numpy() / len(data), loss.numpy() / len(data)
    if R == 1 and repeats > 1:
        acc, mean_loss = np.repeat(acc, repeats), np.repeat(mean_loss, repeats)
    return acc, mean_loss


@torch.no_grad()
def _general_noisy_accuracy(model, data: SequenceData, spec, generators, repeats: int, device):
    """:func:`noisy_accuracy` under any noise spec: one :class:`dni.noise.session.NoiseSession` per
    evaluation, so that each repeat is one chip (programming noise) for every digit; a spec that
    draws nothing (quantisation only) is evaluated once."""
    session = NoiseSession(spec, generators, repeats)
    R = repeats if session.random else 1
    if R == 1:
        session = NoiseSession(spec, generators[0] if generators else None, 1)
    correct = torch.zeros(R, dtype=torch.long)
    loss = torch.zeros(R, dtype=torch.float64)
    starts = range(0, len(data), DIGITS_PER_PASS)
    threads = torch.get_num_threads()
    if session.random and device == "cpu" and threads > 1:  # as the additive path: one core draws, torch computes on the rest
        torch.set_num_threads(threads - 1)
    if session.random and prefetch_pays_off():  # ε drawn ahead in a thread, as the additive path's: the same numbers
        steps = data.x.shape[1]
        session.prefetch([p for start in starts for p in model.inference_products(len(data.y[start : start + DIGITS_PER_PASS]), steps, R)],
                         device=device, dtype=next(model.parameters()).dtype)
    try:
        for start in starts:
            x = data.x[start : start + DIGITS_PER_PASS].to(device)  # (B, T, I)
            y = data.y[start : start + DIGITS_PER_PASS].to(device)  # (B,)
            logits = model(x, noise=session, generator=session.generator, repeats=R).view(R, len(y), -1)  # (R, B, C)
            correct += (logits.argmax(-1) == y).sum(1).cpu()
            loss += torch.nn.functional.cross_entropy(logits.transpose(1, 2), y.expand(R, -1), reduction="none").sum(1).double().cpu()
        session.check_used_up()
    finally:
        session.close()
        torch.set_num_threads(threads)
    acc, mean_loss = correct.double().numpy() / len(data), loss.numpy() / len(data)
    if R == 1 and repeats > 1:
        acc, mean_loss = np.repeat(acc, repeats), np.repeat(mean_loss, repeats)
    return acc, mean_loss


def evaluate(models: TrainedModel | Sequence[TrainedModel], sigma_val=(0.0,), repeats: int = 1, *,
             data: str | SequenceData = "subset", seed: int = 0, device: str = "cpu", progress: bool = True,
             skip=frozenset(), on_point=None, bar=None, eval_noise=PAPER, draws=DEFAULT_DRAWS):
    """Evaluate trained models at every σval with ``repeats`` noisy repeats on the test set.

    Returns an ``xarray.Dataset`` (schema in :mod:`dni.store.results`) with ``accuracy`` and ``loss``
    over ``(arch, sigma_train, sigma_val, seed)``. ``data``: "subset" / "mnist" (their test
    split) or a :class:`SequenceData` to evaluate on. Deterministic given ``seed``.

    Resuming: points ``(arch, σtrain, σval)`` in ``skip`` are not evaluated (NaN in the result);
    ``on_point(partial)`` is called with the dataset of the points finished so far after each.
    ``bar``: an open tqdm bar to advance by one per point, instead of a bar of its own (a caller
    that evaluates in parts). ``eval_noise``: the kind of inference noise at strength σval (a noise
    spec, :mod:`dni.noise.kinds`; the paper's additive by default). The models must share one train noise.

    ``draws``: "shared" (default; :mod:`dni.noise.draws`: one ε per (model, repeat, chunk) for every σval
    of the call — a model's σval > 0 points are then evaluated together and ``on_point`` is called
    for each as they are assembled) or "per-point" (fresh ε per (σval, repeat): the committed paper
    numbers). The additive kind only: other eval noise kinds draw per point under either scheme.
    The result's ``attrs["draws"]`` records the scheme asked for.
    """
    draws = validate_draws(draws)
    eval_noise = parse_noise(eval_noise).label
    if isinstance(models, TrainedModel):
        models = [models]
    models = list(models)
    if not models:
        raise InvalidArgumentError("no models to evaluate; give at least one checkpoint")
    keys = [(m.arch, m.sigma_train) for m in models]
    train_noises = sorted({m.config.train_noise for m in models})
    if len(train_noises) > 1:
        raise InvalidArgumentError(f"models of different train noise ({', '.join(train_noises)}) go to separate result files; "
                                   "evaluate them one train noise at a time")
    if len(set(keys)) != len(keys):
        raise InvalidArgumentError(f"two models share (preset, sigma_train): {keys}; evaluate them separately")
    sigmas = validate_sigmas(sigma_val)
    check_strength_grid(eval_noise, sigmas, "sigma_val")
    repeats = validate_repeats(repeats)
    test_sets: dict[str, SequenceData] = {}
    results = []
    cells = [(m, s) for m in models for s in sigmas]
    source = data if isinstance(data, str) else "custom"

    def assemble():
        known = data if isinstance(data, SequenceData) else next(iter(test_sets.values()), None)
        return make_results(results, sigmas, repeats, dataset=source, eval_seed=seed,
                            test_size=len(known) if known is not None else None,  # None: every point skipped
                            train_noise=train_noises[0], eval_noise=eval_noise, draws=draws)

    shared = draws == "shared" and takes_shared_draws(eval_noise)
    done_shared: dict = {}  # (model index, σval) → (acc, loss) of a model's σval > 0, evaluated together

    for m, s in cells if bar is not None else tqdm(cells, desc="evaluate", disable=not progress, unit="point"):
        if (m.arch, m.sigma_train, s) in skip:
            continue
        kind = get_preset(m.arch).data
        if kind not in test_sets:
            test_sets[kind] = data if isinstance(data, SequenceData) else load_sequences(data, "test", kind)
        if shared and s > 0:
            key = (id(m), s)
            if key not in done_shared:  # the model's first σval > 0: evaluate all of its pending ones on common ε
                todo = [t for t in sigmas if t > 0 and (m.arch, m.sigma_train, t) not in skip]
                seed_of = lambda r, c, m=m: chunk_seed(seed, m.arch, m.sigma_train, r, c, m.config.train_noise, eval_noise,
                                                            m.config.seed)  # noqa: E731
                out = shared_noisy_accuracy(m.model.to(device), test_sets[kind], todo, repeats, seed_of, device)
                done_shared.update({(id(m), t): v for t, v in out.items()})
            acc, loss = done_shared.pop(key)
        else:
            gens = [torch.Generator(device=device).manual_seed(repeat_seed(seed, m.arch, m.sigma_train, s, r, m.config.train_noise, eval_noise,
                                                                                  m.config.seed))
                    for r in range(repeats)]
            acc, loss = noisy_accuracy(m.model.to(device), test_sets[kind], s, gens, repeats, device, eval_noise)
        results.append((m, s, acc, loss))
        if bar is not None:
            bar.update(1)
        if on_point is not None:
            on_point(assemble())
    return assemble()


def evaluate_into(path, models: Sequence[TrainedModel], sigma_val, repeats: int, *, data: str = "subset", seed: int = 0,
                  device: str = "cpu", progress: bool = True, log=print, eval_noise=PAPER, draws=DEFAULT_DRAWS):
    """:func:`evaluate` into the result file ``path``, extending what it holds (``dni evaluate --out``).

    An existing file is resumed like a sweep's: its points of these very models (same weights,
    data and eval seed, :func:`dni.store.results.check_joinable`) with all repeats are not evaluated
    again, and everything else in it is kept. A file they cannot join is refused, never replaced.
    The file is rewritten (atomically) after every point. ``draws``: the scheme of :func:`evaluate`;
    a file of the other scheme (one without the attribute: "per-point") is refused.
    """
    from pathlib import Path

    from dni.store.results import (
        check_joinable,
        complete_points,
        compact_train_seed,
        merge_results,
        read_existing_results,
        save_results,
        without_incomplete_points,
    )

    from dni.store.results import seed_slice, with_seed_slice, with_train_seed_dim

    path = Path(path)
    whole = read_existing_results(path)
    train_seeds = sorted({m.config.seed for m in models})
    if len(train_seeds) > 1:  # a file's slice is one training seed's (issue 34)
        raise InvalidArgumentError(f"the checkpoints are of training seeds {train_seeds}; evaluate one training seed at a time "
                                   "into the file (or run `dni sweep --train-seeds`)")
    train_seed = train_seeds[0] if train_seeds else 0
    whole = with_train_seed_dim(whole, path) if whole is not None else None
    existing = seed_slice(whole, train_seed)  # this seed's points, in the one-seed schema
    eval_noise = parse_noise(eval_noise).label
    draws = validate_draws(draws)
    if existing is None and whole is not None:
        # a file of other training seeds: refused where it holds points of these (arch, σtrain) as today — a checkpoint
        # of another seed may be of another recipe too, which a file of seeds must not mix (`dni sweep --train-seeds` adds seeds)
        check_joinable(seed_slice(whole, int(whole.train_seed.values[0])), path, dataset=data if isinstance(data, str) else "custom",
                       eval_seed=seed, models=models, eval_noise=eval_noise,
                       train_noise=models[0].config.train_noise if models else PAPER, draws=draws)
    check_joinable(existing, path, dataset=data if isinstance(data, str) else "custom", eval_seed=seed, models=models,
                   eval_noise=eval_noise, train_noise=models[0].config.train_noise if models else PAPER, draws=draws)
    ours = {(m.arch, m.sigma_train) for m in models}
    sigmas = validate_sigmas(sigma_val)
    if existing is not None:  # points outside this run's σval grid are kept as they are, whatever their repeats
        existing = without_incomplete_points(existing, ours, repeats, sigmas)
    skip = {p for p in complete_points(existing, repeats) if p[:2] in ours and p[2] in sigmas} if existing is not None else set()
    if skip:
        log(f"resuming {path}: {len(skip)} of {len(models) * len(sigmas)} points already evaluated")

    def write(partial):
        save_results(with_seed_slice(whole, train_seed, merge_results([existing, partial]) if existing is not None else partial), path)

    new = evaluate(models, sigma_val, repeats, data=data, seed=seed, device=device, progress=progress, skip=skip,
                   on_point=write, eval_noise=eval_noise, draws=draws)
    if whole is None:
        return new
    merged = with_seed_slice(whole, train_seed, merge_results([existing, new]) if existing is not None else new)
    save_results(merged, path)
    return compact_train_seed(merged)
