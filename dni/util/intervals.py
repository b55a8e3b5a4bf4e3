"""Uncertainty of a claim across independently trained models (issue 34): Student-t confidence intervals.

A number dni publishes is a mean over **training seeds** (independently initialised and shuffled models),
each model's accuracy itself a mean over evaluation repeats. The spread that decides whether two
settings differ is the model-to-model spread, so the interval is taken across seeds:

    x̄ ± t_{1−α/2, n−1} · s / √n,        s² = Σ (x_k − x̄)² / (n − 1)   (two-sided Student t, n models)

With one model there is no interval (``half_width`` NaN; callers print "1 seed: no interval"). The
evaluation repeats' standard error (:func:`standard_error` over the repeat axis) measures inference noise,
not this spread, and is reported apart. A paired comparison (:func:`paired_interval`) takes the interval
of the per-seed differences, so whatever the two settings share per seed cancels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """mean, half width and bounds of a two-sided t-interval, and n, the models it rests on (arrays or scalars)."""

    mean: np.ndarray
    half_width: np.ndarray
    n: np.ndarray
    confidence: float = CONFIDENCE

    @property
    def low(self):
        return self.mean - self.half_width

    @property
    def high(self):
        return self.mean + self.half_width

    def excludes(self, value) -> np.ndarray:
        """True where the whole interval lies on one side of ``value`` (never with n < 2)."""
        return (self.low > value) | (self.high < value)


def t_quantile(n, confidence: float = CONFIDENCE):
    """t_{1−α/2, n−1}: the two-sided Student-t quantile for n samples (NaN for n < 2)."""
    from scipy.stats import t

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(n >= 2, t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)), np.nan)


def t_interval(samples, axis: int = -1, confidence: float = CONFIDENCE) -> Interval:
    """The t-interval of the mean of ``samples`` along ``axis``, NaN samples left out (a model not trained)."""
    x = np.asarray(samples, dtype=float)
    n = np.sum(~np.isnan(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(x, axis=axis) if x.size else np.nan
        sd = np.sqrt(np.nansum((x - np.expand_dims(mean, axis)) ** 2, axis=axis) / (n - 1))
        half = t_quantile(n, confidence) * sd / np.sqrt(n)
    return Interval(mean, np.where(n >= 2, half, np.nan), n, confidence)


def prediction_interval(samples, axis: int = -1, confidence: float = CONFIDENCE) -> Interval:
    """Where one *more* model of the setting would fall: x̄ ± t_{1−α/2, n−1} · s · √(1 + 1/n) (NaN samples left out).

    The question "could a single model elsewhere (the paper's) come from this setting?" compares one model, not a
    mean, so it needs this interval, not :func:`t_interval`'s (which is √(n + 1) times narrower)."""
    ci = t_interval(samples, axis=axis, confidence=confidence)
    with np.errstate(invalid="ignore"):
        return Interval(ci.mean, ci.half_width * np.sqrt(ci.n + 1.0), ci.n, confidence)


def paired_interval(a, b, axis: int = -1, confidence: float = CONFIDENCE) -> Interval:
    """The t-interval of the mean per-seed difference ``a − b`` (seeds along ``axis``, paired by position)."""
    return t_interval(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), axis=axis, confidence=confidence)


def standard_error(samples, axis: int = -1):
    """s/√n along ``axis`` (NaN left out): the evaluation repeats' standard error of one model's mean."""
    x = np.asarray(samples, dtype=float)
    n = np.sum(~np.isnan(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanstd of a slice with < 2 values: NaN, as returned
        return np.where(n >= 2, np.nanstd(x, axis=axis, ddof=1) / np.sqrt(n), np.nan)
