"""Robustness of any noisified model over any DataLoader, in the result schema of ``dni evaluate``.

``dni.robustness(model, loader, eval_noise="additive", sigma_val=[0, 0.5, 1], repeats=10)`` evaluates a
model made with :func:`dni.noisify` at every σval with ``repeats`` independent noisy passes over the
loader's (x, y) batches and returns an ``xarray.Dataset`` over (arch, sigma_train, sigma_val, seed)
(:mod:`dni.store.results`), so ``dni table``, ``merge``, the figures and the explorer's accuracy views take it.

Seeds: repeat r of point (σval) draws from a generator seeded with :func:`dni.evaluation.evaluate.repeat_seed`
(eval seed, arch, σtrain, σval, r, train noise, eval noise) — the "per-point" scheme of ``dni evaluate``
(``attrs["draws"] = "per-point"``). A noisified preset evaluated with a loader of
:data:`dni.evaluation.evaluate.DIGITS_PER_PASS` digits per batch (in order) therefore gives ``dni evaluate
--draws per-point``'s numbers exactly (tested): repeat r's generator meets the same digits in the same order.

Repeats: where the model allows it, the R repeats of a batch run as one batch of R·B rows (x tiled R times
along dim 0; rows r·B … (r+1)·B − 1 are repeat r and draw from generator r only). A model whose noisy
products do not see those R·B rows in dim 0 (e.g. a Linear applied time-major) is detected at its first
product and evaluated one repeat at a time instead — the same numbers, since each repeat has its own
generator either way.

``metric``: "accuracy" (argmax of the output vs integer y; ``loss`` is then the mean cross-entropy, as in
``dni evaluate``), "mse" (mean squared error per example; lower is better), or a function
``metric(output, y) -> (B,) per-example values`` (one per example: a scalar, a (B, C) array or a vector of
another length is refused with one line, issue 36 — its mean would not be the metric's). The metric's mean is stored in the
``accuracy`` variable (its ``long_name`` and ``attrs["metric"]`` name it), so every accuracy view works on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from dni.errors import InvalidArgumentError, NotNoisifiedError
from dni.evaluation.evaluate import repeat_seed
from dni.nn.noisify import _NotBatchable, inference_noise, noise_scope, noisified_layers
from dni.noise.spec import parse_noise
from dni.store.results import make_results
from dni.util.progress import tqdm
from dni.util.validation import validate_repeats, validate_sigmas


def accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 where ``output.argmax(-1) == y``, per example: (B, C), (B,) → (B,) float64."""
    return (output.argmax(-1) == y).double()


def mse(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error per example, averaged over its other dims: (B, ...) → (B,) float64."""
    err = (output.double() - y.double().reshape(output.shape)) ** 2
    return err.reshape(len(err), -1).mean(1)


METRICS = {"accuracy": accuracy, "mse": mse}


def _metric(metric):
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric not in METRICS:
        raise InvalidArgumentError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}, or pass a function (output, y) -> values")
    return metric, METRICS[metric]


def _pair(batch, index: int):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        what = f"a {type(batch).__name__}" + (f" of {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise InvalidArgumentError(f"loader batch {index} is {what}, not an (x, y) pair of tensors; "
                                   "give a DataLoader over a TensorDataset(x, y) or one that yields (x, y)")
    return batch


@dataclass
class _Sums:
    """Per-repeat sums of the metric and the cross-entropy, and the number of examples."""

    repeats: int
    value: np.ndarray = field(init=False)
    loss: np.ndarray = field(init=False)
    count: int = 0

    def __post_init__(self):
        self.value, self.loss = np.zeros(self.repeats), np.zeros(self.repeats)

    def add(self, r, out, y, fn, classify: bool):
        v = torch.as_tensor(fn(out, y))
        if v.dim() == 0 or v.shape[0] != len(y) or v.numel() != len(y):  # (B,) or (B, 1): one value per example
            raise InvalidArgumentError(f"the metric returned shape {tuple(v.shape)} for a batch of {len(y)} examples; it must return "
                                       f"one value per example, shape ({len(y)},) (e.g. reduce logits with argmax, not a mean)")
        self.value[r] += float(v.double().sum())
        if classify:
            self.loss[r] += float(F.cross_entropy(out, y, reduction="none").sum().double())


def _device(model):
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _point(model, loader, noise_of, gens, fn, classify: bool, batched: bool) -> _Sums:
    """Per-repeat sums of one σval point. ``noise_of(generator, repeats)``: the point's noise model.

    Batched: one pass over the loader, each batch tiled R times (repeat r in block r, generator r), one
    noise session for all batches (one chip per repeat). Looped: R passes, repeat r with generator r and
    its own session. Raises :class:`_NotBatchable` when the model's products or output do not keep R·B rows.
    """
    R, device = len(gens), _device(model)
    sums = _Sums(R)
    if batched:
        with noise_scope(noise_of(gens, R), gens) as scope:
            for i, batch in enumerate(loader):
                x, y = (t.to(device) for t in _pair(batch, i))
                B = len(x)
                scope.rows = R * B
                out = model(x.repeat(R, *[1] * (x.dim() - 1)))  # (R·B, ...): repeat r in rows r·B … (r+1)·B - 1
                if out.shape[0] != R * B:
                    raise _NotBatchable(f"the model's output has {out.shape[0]} rows, not {R * B}")
                for r in range(R):
                    sums.add(r, out[r * B : (r + 1) * B], y, fn, classify)
                sums.count += B
        return sums
    for r, gen in enumerate(gens):
        count = 0
        with noise_scope(noise_of(gen, 1), gen):
            for i, batch in enumerate(loader):
                x, y = (t.to(device) for t in _pair(batch, i))
                sums.add(r, model(x), y, fn, classify)
                count += len(x)
        sums.count = count
    return sums


@torch.no_grad()
def robustness(model: torch.nn.Module, loader, eval_noise="additive", sigma_val=(0.0,), repeats: int = 1,
               metric="accuracy", *, arch: str = "model", sigma_train: float | None = None, seed: int = 0,
               dataset: str = "custom", batch_repeats: bool | None = None, progress: bool = True):
    """The metric of ``model`` (made with :func:`dni.noisify`) under ``eval_noise`` at every σval, ``repeats``
    noisy passes each, over ``loader``'s (x, y) batches; an ``xarray.Dataset`` in ``dni evaluate``'s schema.

    ``arch``: the model's name (the ``arch`` coordinate); ``sigma_train``: its σtrain coordinate (default: the
    σ it was noisified with); ``seed``: the evaluation seed (:func:`dni.evaluation.evaluate.repeat_seed`); ``dataset``:
    the ``dataset`` attribute. ``batch_repeats``: None tries batched repeats and falls back to a loop (see the
    module doc), True insists, False loops. σval = 0 is one noiseless pass (the original model) for all repeats.
    The model is put in ``eval()`` mode.
    """
    if not noisified_layers(model):
        raise NotNoisifiedError(f"{type(model).__name__} has no noisified layer, so eval noise cannot reach it; "
                                "call model = dni.noisify(model) first")
    spec = parse_noise(eval_noise)
    sigmas = validate_sigmas(sigma_val)
    repeats = validate_repeats(repeats)
    name, fn = _metric(metric)
    classify = fn is accuracy
    sigma_train = float(getattr(model, "dni_sigma_train", 0.0) if sigma_train is None else sigma_train)
    train_label = getattr(model, "dni_train_noise", "additive")
    model.eval()
    device = _device(model)
    results, test_size = [], None
    shim = SimpleNamespace(arch=arch, sigma_train=sigma_train, model=_Weights(model), history=[],
                           meta={"epochs_run": np.nan, "best_epoch": np.nan}, config=SimpleNamespace(seed=np.nan, epochs=np.nan))
    for s in tqdm(sigmas, desc=f"robustness {arch}", unit="point", disable=not progress):
        probe = inference_noise(spec, s)
        if probe.is_noiseless:  # the original model: one pass fills every repeat
            sums = _Sums(1)
            for i, batch in enumerate(loader):
                x, y = (t.to(device) for t in _pair(batch, i))
                sums.add(0, model(x), y, fn, classify)
                sums.count += len(x)
            values, losses = np.repeat(sums.value, repeats), np.repeat(sums.loss, repeats)
        else:
            def gens():
                return [torch.Generator(device=device).manual_seed(repeat_seed(seed, arch, sigma_train, s, r, train_label, spec.label))
                        for r in range(repeats)]

            def noise_of(generator, R):
                return inference_noise(spec, s, generator, R)

            sums = None
            if batch_repeats is not False and repeats > 1:
                try:
                    sums = _point(model, loader, noise_of, gens(), fn, classify, batched=True)
                except _NotBatchable:
                    if batch_repeats:
                        raise InvalidArgumentError(f"{arch}: repeats cannot be batched (its noisy products do not see the batch "
                                                   "in dim 0); use batch_repeats=None or False") from None
                    batch_repeats = False  # the model cannot: loop from now on
            if sums is None:
                sums = _point(model, loader, noise_of, gens(), fn, classify, batched=False)
            values, losses = sums.value, sums.loss
        if sums.count == 0:
            raise InvalidArgumentError("the loader yielded no batches")
        test_size = sums.count
        results.append((shim, s, values / sums.count, losses / sums.count if classify else np.full(repeats, np.nan)))
    ds = make_results(results, sigmas, repeats, dataset=dataset, eval_seed=seed, test_size=test_size,
                      train_noise=train_label, eval_noise=spec.label, draws="per-point")
    ds.attrs["metric"] = name
    if name != "accuracy":
        ds["accuracy"].attrs.update(long_name=f"test {name} (stored in the accuracy variable)", units="")
        ds["loss"].attrs["long_name"] = "not computed (the metric is not accuracy)"
    return ds


class _Weights:
    """What the result's per-model variables read of a model: its parameters, flat (:func:`dni.store.results.with_model_variables`)."""

    def __init__(self, model):
        self._model = model

    def parameters(self):
        return self._model.parameters()

    def weights(self):
        return torch.cat([p.detach().reshape(-1) for p in self._model.parameters()])
