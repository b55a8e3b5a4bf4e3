"""Internal statistics for the paper's figures: state distributions (Figs 3, 4, 7, 8), weights (Figs 5, 9).

Results are xarray objects with labelled dimensions, like the result store.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from .noise import as_noise_model


@torch.no_grad()
def state_distributions(model, x: torch.Tensor, sigma_val: float = 0.0, *, generator=None,
                        bins: int = 60, value_range: tuple[float, float] = (-3.0, 3.0)) -> xr.Dataset:
    """Histograms of the output states h and (LSTM) internal states c of every step.

    Runs ``model`` once over x (B, T, I) with noise σval. Returns ``h`` and ``c`` densities over
    ``(step, value)`` (each step integrates to 1 over ``value_range``; mass outside is
    clipped in), the noise density N(0, 1) the paper draws for comparison, and per-step
    ``h_std``/``c_std``.
    """
    model.eval()
    _, trace = model.trace(x, noise=as_noise_model(sigma_val), generator=generator)
    edges = np.linspace(*value_range, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]

    def density(states):  # (B, T, H) → (T, bins)
        values = states.clamp(*value_range).transpose(0, 1).reshape(states.shape[1], -1).numpy()
        return np.stack([np.histogram(v, bins=edges)[0] / (v.size * width) for v in values])

    data = {"h": (("step", "value"), density(trace.h)), "h_std": ("step", trace.h.std(dim=(0, 2)).numpy())}
    if trace.c is not None:
        data["c"] = (("step", "value"), density(trace.c))
        data["c_std"] = ("step", trace.c.std(dim=(0, 2)).numpy())
    data["noise_density"] = ("value", np.exp(-centres**2 / 2) / np.sqrt(2 * np.pi))
    return xr.Dataset(data, coords={"step": np.arange(1, trace.h.shape[1] + 1), "value": centres},
                      attrs={"sigma_val": float(as_noise_model(sigma_val).sigma) if hasattr(as_noise_model(sigma_val), "sigma") else np.nan,
                             "digits": int(x.shape[0])})


def weight_power(model) -> float:
    """Expected weight power mean(w²) over all weights and biases (paper §III-A: 0.013 → 0.037)."""
    return float((model.weights() ** 2).mean())


def weight_histogram(model, bins: int = 80, value_range: tuple[float, float] = (-1.5, 1.5)) -> xr.DataArray:
    """Density of all trainable values of ``model`` (paper Figs 5, 9)."""
    w = model.weights().numpy()
    counts, edges = np.histogram(np.clip(w, *value_range), bins=bins, range=value_range, density=True)
    return xr.DataArray(counts, coords={"value": (edges[:-1] + edges[1:]) / 2}, dims="value",
                        attrs={"weight_power": float((w**2).mean()), "count": int(w.size)})
