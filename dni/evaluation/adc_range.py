"""ADC resolution with each model's own converter range (issue 34), beside one range fixed for all.

An ADC quantises every pre-activation ``W·x + b`` to B bits over [−bound, bound] and clips beyond it
(``adc(bits=B,bound=…)``, :mod:`dni.noise.kinds`). With one bound for every model (±16, the mismatch
grid's) a model with large pre-activations — the additive-DNI models, whose weights grow with σtrain
(paper §III-A, Figs 5, 9) — uses more of the converter's levels than one with small ones, so the
comparison favours it. Here each model also gets its own range: the ``quantile`` of its absolute clean
pre-activations (:func:`dni.nn.probes.preactivation_bound`) on ``calibration`` **training** digits (the
test digits are what is scored, so they do not set the range).

Quantisation draws no noise: one pass per (model, range, bits) gives the accuracy exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from dni.data import SequenceData
from dni.errors import InvalidArgumentError
from dni.evaluation.evaluate import evaluate
from dni.nn.probes import preactivation_bound
from dni.store.checkpoints import TrainedModel
from dni.util.progress import tqdm

BITS = tuple(range(4, 11))
"""The resolutions of the mismatch grid's ADC sweep (``results/run_noise_kinds.sh``)."""
FIXED_BOUND = 16.0
"""The mismatch grid's range, ±16 for every model."""
QUANTILE = 0.999
"""The own range: the 99.9th percentile of the absolute pre-activations, so one clean pre-activation in a thousand is clipped."""


def adc_spec(bits: int, bound: float) -> str:
    """The noise spec of a B-bit ADC over ±bound (bound to 4 significant digits: :func:`adc_resolution` records
    each own range rounded so, so the range recorded is the range applied)."""
    return f"adc(bits={int(bits)},bound={bound:.4g})"


def model_label(model: TrainedModel) -> str:
    """A model's label in a sweep: ``<train noise> <σtrain> seed <training seed>``."""
    return f"{model.config.train_noise} {model.sigma_train:g} seed {model.config.seed}"


def adc_resolution(models: Sequence[TrainedModel], test: SequenceData, calibration: SequenceData, bits=BITS,
                   fixed_bound: float = FIXED_BOUND, quantile: float = QUANTILE, progress: bool = True) -> xr.Dataset:
    """Accuracy of each model with no noise and under an ADC of each resolution, over ±``fixed_bound`` and over
    its own range (``quantile`` of its absolute pre-activations on ``calibration``.x, (N, T, I)).

    Returns a dataset over ``model`` (labels ``<train noise> <σtrain> seed <k>``, with coords ``train_noise``,
    ``sigma_train``, ``train_seed``), ``range`` ("fixed", "own") and ``bits``: ``accuracy`` (model, range,
    bits), ``noiseless`` and ``bound`` (model, range: the range each was quantised over).
    """
    models = list(models)
    if not models:
        raise InvalidArgumentError("no models to evaluate; give at least one checkpoint")
    bits = list(bits)
    if not bits or not all(isinstance(b, (int, np.integer)) and b >= 1 for b in bits):
        raise InvalidArgumentError(f"bits must be positive integers, got {bits}")
    if not 0 < quantile <= 1 or not fixed_bound > 0:
        raise InvalidArgumentError(f"quantile must be in (0, 1] and fixed_bound > 0, got {quantile!r} and {fixed_bound!r}")
    if not len(calibration):
        raise InvalidArgumentError("no calibration digits: give a few hundred training digits to set each model's range")
    labels = [model_label(m) for m in models]
    if len(set(labels)) != len(labels):
        raise InvalidArgumentError(f"two models share (train noise, σtrain, training seed): {labels}")
    acc = np.full((len(models), 2, len(bits)), np.nan)
    bounds = np.full((len(models), 2), np.nan)
    noiseless = np.full(len(models), np.nan)
    for i, m in enumerate(tqdm(models, desc="ADC ranges", disable=not progress, unit="model")):
        own = float(f"{preactivation_bound(m.model, calibration.x, quantile):.4g}")  # as adc_spec writes it, so recorded = applied
        bounds[i] = fixed_bound, own
        noiseless[i] = float(evaluate(m, (0.0,), 1, data=test, progress=False).accuracy.values.ravel()[0])
        for j, bound in enumerate((fixed_bound, own)):
            for k, b in enumerate(bits):
                run = evaluate(m, (0.0,), 1, data=test, progress=False, eval_noise=adc_spec(b, bound))
                acc[i, j, k] = float(run.accuracy.values.ravel()[0])
    coords = {"model": labels, "range": ["fixed", "own"], "bits": bits,
              "train_noise": ("model", [m.config.train_noise for m in models]),
              "sigma_train": ("model", [m.sigma_train for m in models]),
              "train_seed": ("model", [m.config.seed for m in models])}
    out = xr.Dataset({"accuracy": (("model", "range", "bits"), acc), "noiseless": (("model",), noiseless),
                      "bound": (("model", "range"), bounds)}, coords=coords)
    out.attrs.update(quantile=quantile, fixed_bound=fixed_bound, calibration_digits=len(calibration),
                     test_size=len(test), arch=",".join(sorted({m.arch for m in models})))
    return out


def fewest_bits(ds: xr.Dataset, within: float = 0.01) -> xr.DataArray:
    """(model, range): the fewest bits whose accuracy is within ``within`` (a fraction) of the model's noiseless
    accuracy; NaN where no resolution of the sweep is."""
    ok = ds.accuracy >= ds.noiseless - within  # (model, range, bits)
    first = ok.argmax("bits")
    return xr.where(ok.any("bits"), ds.bits.isel(bits=first), np.nan)
