"""Internal statistics for the paper's figures: state distributions (Figs 3, 4, 7, 8), weights (Figs 5, 9).

Results are xarray objects with labelled dimensions, like the result store.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from dni.noise.base import NoiseModel
from dni.noise.session import as_noise_model


@torch.no_grad()
def state_distributions(model, x: torch.Tensor, sigma_val: float = 0.0, *, generator=None,
                        bins: int = 60, c_range: tuple[float, float] = (-3.0, 3.0)) -> xr.Dataset:
    """Histograms of the output states h and (LSTM) internal states c of every step.

    Runs ``model`` once over x (B, T, I) with inference noise ``sigma_val``: a σ (the paper's additive
    noise), a :class:`dni.noise.base.NoiseModel`, or a noise spec at a strength (``dni.noise.session.noise_for``;
    its draws come from ``generator``). Returns densities ``h`` over ``(step, h_value)`` on [-1, 1]
    (h = o·tanh(c) is bounded) and ``c`` over ``(step, c_value)`` on ``c_range``, each relative to
    all states of its step: the c of a step integrates to the share of its states inside ``c_range``,
    and the shares outside are reported per step as ``c_below`` and ``c_above`` (overflow bins,
    drawn as marked bins by the figures — never folded into the end bins, where they would look like
    real modes). Also the N(0, 1) density the paper draws for comparison on both grids (``noise_h``,
    ``noise_c``) and per-step standard deviations ``h_std``, ``c_std``.
    """
    model.eval()
    noise = as_noise_model(sigma_val, generator)
    _, trace = model.trace(x, noise=noise, generator=generator)
    T = trace.h.shape[1]

    def density(states, value_range):  # (B, T, H) → centres (bins,), densities (T, bins), below (T,), above (T,)
        edges = np.linspace(*value_range, bins + 1)
        width = edges[1] - edges[0]
        values = states.transpose(0, 1).reshape(T, -1).numpy()  # (T, B·H)
        hist = np.stack([np.histogram(v, bins=edges)[0] / (v.size * width) for v in values])
        below, above = (values < value_range[0]).mean(axis=1), (values > value_range[1]).mean(axis=1)
        return (edges[:-1] + edges[1:]) / 2, hist, below, above

    gauss = lambda v: np.exp(-v**2 / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    h_value, h, _, _ = density(trace.h, (-1.0, 1.0))  # |h| ≤ 1: nothing outside
    data = {"h": (("step", "h_value"), h), "h_std": ("step", trace.h.std(dim=(0, 2)).numpy()), "noise_h": ("h_value", gauss(h_value))}
    coords = {"step": np.arange(1, T + 1), "h_value": h_value}
    if trace.c is not None:
        c_value, c, below, above = density(trace.c, c_range)
        data.update({"c": (("step", "c_value"), c), "c_below": ("step", below), "c_above": ("step", above),
                     "c_std": ("step", trace.c.std(dim=(0, 2)).numpy()), "noise_c": ("c_value", gauss(c_value))})
        coords["c_value"] = c_value
    return xr.Dataset(data, coords=coords, attrs={"sigma_val": float(getattr(noise, "sigma", np.nan)), "noise": str(getattr(noise, "spec", "additive")),
                                                       "digits": int(x.shape[0]), "c_range": list(c_range)})


def weight_power(model) -> float:
    """Expected weight power mean(w²) over all weights and biases (paper §III-A: 0.013 → 0.037)."""
    return float((model.weights() ** 2).mean())


def weight_histogram(model, bins: int = 140, value_range: tuple[float, float] = (-3.5, 3.5)) -> xr.DataArray:
    """Density of all trainable values of ``model`` (paper Figs 5, 9); values outside the range count in the end bins.

    The default range holds every weight of our full-MNIST models (at σtrain 1.0 all lie within ±3.4).
    """
    w = model.weights().numpy()
    counts, edges = np.histogram(np.clip(w, *value_range), bins=bins, range=value_range, density=True)
    return xr.DataArray(counts, coords={"value": (edges[:-1] + edges[1:]) / 2}, dims="value",
                        attrs={"weight_power": float((w**2).mean()), "count": int(w.size)})


class _PreactivationRecorder(NoiseModel):
    """A noise model that adds nothing and keeps |W·x + b| of every matrix–vector product it sees."""

    commutes_with_recurrence = False  # every product through :meth:`product`, as the analog kinds (adc) see them

    def __init__(self):
        self.magnitudes: list[np.ndarray] = []

    @property
    def is_noiseless(self) -> bool:
        return False  # so that the model routes its products here

    def product(self, name, weight, bias, x, generator=None):
        return self.add(torch.nn.functional.linear(x, weight, bias), generator)

    def add(self, preactivation, generator=None):
        self.magnitudes.append(preactivation.detach().abs().reshape(-1).cpu().double().numpy())
        return preactivation


@torch.no_grad()
def preactivation_bound(model, x: torch.Tensor, quantile: float = 0.999) -> float:
    """A model's own ADC range (issue 34): the ``quantile`` of the absolute pre-activation ``|W·x + b|`` over every
    matrix–vector product of a clean (noiseless) pass over x (B, T, I) — every step's gate products
    and the FC layer's, the values an ADC quantises (``adc(bits=B,bound=…)``, :mod:`dni.noise.kinds`:
    ``Q(W·x + b)`` clipped to [−bound, bound]). With the 99.9th percentile over N clean test digits,
    one in a thousand pre-activations is clipped on clean inputs.

    Use per model: ``bound = preactivation_bound(m.model, test.x[:N])`` then evaluate it under
    ``f"adc(bits=8,bound={bound:.4g})"`` (``dni evaluate --eval-noise``): each model's converter
    then spans its own range, not one bound fixed for all.
    """
    if not 0 < quantile <= 1:
        from dni.errors import InvalidArgumentError

        raise InvalidArgumentError(f"quantile must be in (0, 1], got {quantile!r}")
    model.eval()
    recorder = _PreactivationRecorder()
    model(x, noise=recorder)
    values = np.concatenate(recorder.magnitudes)
    return float(np.quantile(values, quantile))
