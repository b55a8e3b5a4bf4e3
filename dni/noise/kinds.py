"""Noise specs: which analog non-idealities every matrix–vector product suffers — one place for all kinds.

A **spec** is a small, JSON-able, composable description of the noise of one analog tile, e.g.
``weight_read`` or ``programming(sigma=0.02)+weight_read+adc(bits=8,bound=10)``. It is parsed here
(:func:`parse_noise`), stored as its canonical label in checkpoints and result attrs, and turned
into the noise a model computes with by :func:`noise_for`. Cells and the fast paths never name a
kind: they ask for "the noisy product" (:meth:`dni.noise.base.NoiseModel.product`).

One product ``y = W·x + b`` (W: N × M, x: M, per row of a batch; E, ε standard normal):

=====================  =========================================================  ===========================================
kind                   y                                                          source / nearest aihwkit configuration
=====================  =========================================================  ===========================================
``additive``           W·x + b + σ·ε                                              the paper, eq. 2; aihwkit out_noise = σ, noise management NONE
``output_relative``    W·x + b + σ·max_j|x_j|·ε                                   aihwkit out_noise = σ, ABS_MAX noise management, inp_bound 1
``weight_read``        (W + σ·max|W|·E)·x + b ≡ W·x + b + σ·max|W|·‖x‖₂·ε         aihwkit w_noise = σ·max|W| (ADDITIVE_CONSTANT); "Noisy Machines"
``programming``        (W + σ·max|W|·E_chip)·x + b, E_chip fixed per chip         Joshi et al. 2020 (*not* aihwkit's programming noise)
``pcm(t=…)``           W_t·x + b, W_t: W on PCM devices t s after programming     approximates aihwkit PCMLikeNoiseModel + GlobalDriftCompensation
``dac``                W·Q(x) + b                                                 aihwkit inp_res = 1/(2^bits − 2), inp_bound = bound
``adc``                Q(W·x + b)                                                 aihwkit out_res = 1/(2^bits − 2), out_bound = bound, analog bias
=====================  =========================================================  ===========================================

The aihwkit column names the configuration of aihwkit 1.2's analog tile that computes the same product;
every other non-ideality of the tile must be off (no input/output rounding, no output clipping, no bound
management, no weight remapping, digital bias except for ``adc``). aihwkit's ``w_noise`` is absolute (not
relative to max|W|), so ``weight_read`` needs it set per tile; aihwkit's own programming noise
(``StateIndependentNoiseModel``) perturbs both devices of a pair and clamps them at 0, which biases
weights toward zero, unlike ``programming``; aihwkit's default digital bias computes ``Q(W·x) + b``, so
``adc`` matches only with ``digital_bias=False``. The docs' reference page "dni and aihwkit" states each
configuration in full and what was checked.

``weight_read`` is sampled on the right-hand side: per output element, ``Σ_j E_ij x_j`` is exactly
N(0, ‖x‖²), so one draw per output replaces N·M draws (same distribution; tested statistically).
``programming`` draws E_chip once per *chip*: once per evaluation repeat (each repeat is one chip
instance, the same for every digit), and afresh for every training batch. Q is a symmetric uniform
quantiser with zero: ``Q(v) = Δ·round(clip(v, -bound, bound)/Δ)``, ``Δ = bound/(2^(bits-1) - 1)``
(2^bits − 1 levels, as aihwkit's and signed int8's −127…127); its gradient is straight-through
(1 inside [−bound, bound], 0 outside, where the clip holds).

The order within a tile (composition): pcm → programming → weight_read → dac on inputs → product →
additive / output_relative → adc. The noise scales (σ·max|x|, σ·max|W|·‖x‖) are constants for
back-propagation (noise is injected, not differentiated), as in aihwkit's forward-only noise.

An LSTM step is one product of W (4H × (H+I)) with [h, x]: max|W|, ‖x‖₂ and max|x| are over that
concatenated product, per sequence and step; a GRU step is two (see :class:`dni.nn.cells.NoisyGRUCell`);
the FC layer is its own product. At strength 0 (σ = 0) every σ-kind is off and draws nothing.

Inference computes an LSTM/RNN step's product from its parts, ``W_h·h + (W_x·x_t + b)``, the input part
precomputed for all steps (:func:`dni.nn.recurrence.unroll`), and hands the kinds a
:class:`SplitProductStats`; a kind whose hooks need more than element-wise inputs and the product's
statistics sets :attr:`Kind.splits` False and is stepped through the readable cell.

To add a kind: one class here with :func:`register` and its name in :data:`dni.noise.catalogue.KIND_NAMES`
(the import fails until the two agree); nothing else changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from dni.errors import InvalidNoiseSpecError
from dni.noise.catalogue import KIND_NAMES
from dni.util.validation import validate_sigma

KINDS: dict[str, type["Kind"]] = {}


def register(cls):
    KINDS[cls.name] = cls
    return cls


def _number(v) -> str:
    """A setting as label text: shortest form, no "+" (it joins kinds): 1e+07 → 1e07."""
    return f"{v:g}".replace("e+", "e")


@dataclass(frozen=True)
class Kind:
    """One non-ideality of a product. Subclasses set ``name``, ``order`` (place in the tile) and one hook."""

    name: ClassVar[str] = ""
    order: ClassVar[int] = 0
    random: ClassVar[bool] = True
    weight_draws: ClassVar[int] = 1
    """How many standard-normal tensors of the weight's shape the ``weight`` hook draws per chip."""
    splits: ClassVar[bool] = True
    """Whether the kind gives the same product when it is computed from the parts of its input, ``[h, x]``
    (as inference does, :func:`dni.nn.recurrence.unroll`): its ``input`` hook acts element-wise and its
    ``output`` hook reads only :class:`ProductStats`' statistics. A kind for which this does not hold
    sets it False and takes the readable step."""

    @property
    def is_off(self) -> bool:
        return False

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def label(self) -> str:
        p = self.params()
        return self.name + (f"({','.join(f'{k}={_number(v)}' for k, v in p.items())})" if p else "")

    # hooks: a kind implements the one of its stage
    def weight(self, W: torch.Tensor, draw) -> torch.Tensor:
        return W

    def input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def output(self, y: torch.Tensor, stats: "ProductStats", draw) -> torch.Tensor:
        return y


@dataclass(frozen=True)
class _SigmaKind(Kind):
    """A kind whose strength is σ; σ None means "the grid's σ" (σtrain / σval of a sweep)."""

    sigma: float | None = None

    def __post_init__(self):
        if self.sigma is not None:
            object.__setattr__(self, "sigma", validate_sigma(self.sigma, f"{self.name} sigma"))

    @property
    def is_off(self) -> bool:
        return self.sigma == 0.0


@register
@dataclass(frozen=True)
class PCM(Kind):
    """Phase-change memory at ``t`` seconds after programming: programming noise, conductance drift and
    1/f read noise of a pair of PCM devices per weight, with global drift compensation — aihwkit's
    ``PCMLikeNoiseModel`` (Nandakumar et al., ICECS 2019) with its defaults, and ``GlobalDriftCompensation``.

    Per weight matrix W (one chip): ``g± = clip(±W·g_max/max|W|, 0, g_max)`` (g_max = 25 µS, one device of
    the pair at 0), and per device, with ε₁, ε₂, ε₃ ~ N(0, 1):

    * programming: ``g_p = max(g + σ_p(g)·ε₁, 0)``, ``σ_p(g) = 0.26348 + 1.9650·(g/g_max) − 1.1731·(g/g_max)²`` µS;
    * drift exponent: ``ν = |μ(g) + s(g)·ε₂|``, ``μ = clip(−0.0155·ln(g/g_max) + 0.0244, 0.049, 0.1)``,
      ``s = clip(−0.0125·ln(g/g_max) − 0.0059, 0.008, 0.045)``;
    * at ``t' = t + t₀`` (t₀ = 20 s): ``g_d = g_p·(t'/t₀)^(−ν)`` (for t > 0), then read noise
      ``g_t = max(g_d + |g_d|·Q(g_p)·√ln((t' + t_r)/(2·t_r))·ε₃, 0)``, ``Q = min(0.0088/max((g_p/g_max)^0.65, 1e-3), 0.2)``,
      t_r = 250 ns;
    * ``W_t = (g₊ − g₋)·max|W|/g_max``; global drift compensation (``compensation=1``, the default) scales it by
      ``mean|W_p| / mean|W_t|`` — the mean output magnitude of one-hot inputs read right after programming
      over the one read at t (aihwkit ``GlobalDriftCompensation``, with exact reads).

    Drawn once per chip, like ``programming`` (each evaluation repeat is one chip; training draws per batch,
    gradients straight through), in this order: ε₁, ε₂ of g₊, ε₁, ε₂ of g₋, then ε₃ of g₊ and of g₋. As
    aihwkit's ``apply_noise``, the conductances are converted once; aihwkit's inference tile converts the
    programmed weights to conductances a second time before drifting them (scaled to their new max|W|, the
    pair collapsed into one device), which shrinks the weights by about 0.5 % at one day without
    compensation — so this kind approximates the tile, it does not reproduce it draw for draw. Inference time is a setting of the spec, so accuracy over t is one
    eval noise per t — ``dni sweep --eval-noise "pcm(t=1)" --eval-noise "pcm(t=86400)" …``, or ``dni evaluate``
    per t and ``dni merge`` — with t in the result's ``eval_noise`` dim.
    """

    name: ClassVar[str] = "pcm"
    order: ClassVar[int] = -1
    weight_draws: ClassVar[int] = 6
    t: float | None = None
    compensation: int | None = None
    G_MAX: ClassVar[float] = 25.0
    PROG_COEFF: ClassVar[tuple] = (0.26348, 1.9650, -1.1731)
    T0: ClassVar[float] = 20.0
    T_READ: ClassVar[float] = 250e-9

    def __post_init__(self):
        if self.t is None:
            raise InvalidNoiseSpecError("noise kind 'pcm' needs t, the seconds since programming, e.g. pcm(t=3600)")
        if isinstance(self.t, bool) or not isinstance(self.t, (int, float)) or not math.isfinite(self.t) or self.t < 0:
            raise InvalidNoiseSpecError(f"pcm t must be a number of seconds >= 0 since programming, got {self.t!r}")
        object.__setattr__(self, "t", float(self.t))
        if self.compensation not in (None, 0, 1) or isinstance(self.compensation, bool):
            raise InvalidNoiseSpecError(f"pcm compensation must be 1 (global drift compensation, the default) or 0, got {self.compensation!r}")

    def weight(self, W, draw):
        g_max = self.G_MAX
        scale = g_max / W.detach().abs().max().clamp(min=1e-7)  # µS per weight unit
        Wd = W.detach()
        targets = [(Wd * scale).clamp(0.0, g_max), (-Wd * scale).clamp(0.0, g_max)]  # g₊, g₋
        programmed, drifts = [], []
        for g in targets:
            rel = g / g_max
            sig_prog = self.PROG_COEFF[0] + self.PROG_COEFF[1] * rel + self.PROG_COEFF[2] * rel**2
            programmed.append((g + sig_prog * draw(W.shape)).clamp(min=0.0))
            log_rel = rel.clamp(min=1e-7).log()
            mu = (-0.0155 * log_rel + 0.0244).clamp(0.049, 0.1)
            sig = (-0.0125 * log_rel - 0.0059).clamp(0.008, 0.045)
            drifts.append((mu + sig * draw(W.shape)).abs())
        t = self.t + self.T0
        read_factor = math.sqrt(math.log((t + self.T_READ) / (2 * self.T_READ)))
        final = []
        for g_p, nu in zip(programmed, drifts):
            g_d = g_p * (t / self.T0) ** (-nu) if self.t > 0 else g_p
            q = (0.0088 / ((g_p.abs() / g_max) ** 0.65).clamp(min=1e-3)).clamp(max=0.2)
            final.append((g_d + g_d.abs() * q * read_factor * draw(W.shape)).clamp(min=0.0))
        W_t = (final[0] - final[1]) / scale
        if self.compensation != 0:
            W_p = (programmed[0] - programmed[1]) / scale
            W_t = W_t * (W_p.abs().mean((-2, -1), keepdim=True) / W_t.abs().mean((-2, -1), keepdim=True).clamp(min=1e-12))
        return W + (W_t - Wd)  # the chip's weights; gradient straight through to W


@register
@dataclass(frozen=True)
class Programming(_SigmaKind):
    """Static weight noise of one chip: ``W + σ·max|W|·E_chip`` (Joshi et al. 2020).

    Not aihwkit's programming noise: aihwkit's ``StateIndependentNoiseModel`` perturbs both devices of a
    pair and clamps each at 0 conductance, which biases weights toward zero; this kind is unbiased.
    """

    name: ClassVar[str] = "programming"
    order: ClassVar[int] = 0

    def weight(self, W, draw):  # W (G, K), or (R, G, K) after an earlier weight kind: max|W| per chip
        return W + (self.sigma * W.detach().abs().amax((-2, -1), keepdim=True)) * draw(W.shape[-2:])


@register
@dataclass(frozen=True)
class WeightRead(_SigmaKind):
    """Fresh weight noise on every product, ``(W + σ·max|W|·E)·x``, sampled as ``σ·max|W|·‖x‖₂·ε``.

    aihwkit: ``w_noise_type=ADDITIVE_CONSTANT`` with ``w_noise = σ·max|W|`` set for each tile (aihwkit's
    ``w_noise`` is absolute, not relative to max|W|), digital bias, no weight remapping.
    """

    name: ClassVar[str] = "weight_read"
    order: ClassVar[int] = 1

    def output(self, y, stats, draw):
        return y + (self.sigma * stats.w_absmax * stats.x_norm) * draw(y.shape)


@dataclass(frozen=True)
class _Quantiser(Kind):
    bits: int | None = None
    bound: float | None = None
    random: ClassVar[bool] = False

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 24:
            raise InvalidNoiseSpecError(f"{self.name} bits must be an integer from 2 to 24 (a symmetric converter with zero "
                                        f"needs 3 levels), got {self.bits!r}")
        if isinstance(self.bound, bool) or not isinstance(self.bound, (int, float)) or not math.isfinite(self.bound) or self.bound <= 0:
            raise InvalidNoiseSpecError(f"{self.name} bound must be a number > 0 (the converter's range is [-bound, bound]), got {self.bound!r}")
        object.__setattr__(self, "bound", float(self.bound))

    def label(self) -> str:
        return f"{self.name}(bits={self.bits},bound={self.bound:g})"

    def quantise(self, v: torch.Tensor) -> torch.Tensor:
        """Q(v) with a straight-through gradient (identity inside the bound, 0 outside)."""
        step = self.bound / (2 ** (self.bits - 1) - 1)
        clipped = v.clamp(-self.bound, self.bound)
        return clipped + (torch.round(clipped.detach() / step) * step - clipped.detach())


@register
@dataclass(frozen=True)
class DAC(_Quantiser):
    """Input quantisation ``W·Q(x) + b`` (aihwkit ``inp_res = 1/(2^bits − 2)``, ``inp_bound = bound``)."""

    name: ClassVar[str] = "dac"
    order: ClassVar[int] = 2

    def input(self, x):
        return self.quantise(x)


@register
@dataclass(frozen=True)
class Additive(_SigmaKind):
    """The paper's noise (eq. 2): ``W·x + b + σ·ε``."""

    name: ClassVar[str] = "additive"
    order: ClassVar[int] = 3

    def output(self, y, stats, draw):
        return y + self.sigma * draw(y.shape)


@register
@dataclass(frozen=True)
class OutputRelative(_SigmaKind):
    """Noise relative to the input range, ``W·x + b + σ·max_j|x_j|·ε``.

    aihwkit: ``out_noise = σ`` with ABS_MAX noise management, ``inp_bound = 1``, no input/output rounding,
    no output clipping, no bound management, digital bias.
    """

    name: ClassVar[str] = "output_relative"
    order: ClassVar[int] = 4

    def output(self, y, stats, draw):
        return y + (self.sigma * stats.x_absmax) * draw(y.shape)


@register
@dataclass(frozen=True)
class ADC(_Quantiser):
    """Output quantisation ``Q(W·x + b)``.

    aihwkit: ``out_res = 1/(2^bits − 2)``, ``out_bound = bound``, with an analog bias
    (``digital_bias=False``): aihwkit's default digital bias computes ``Q(W·x) + b``.
    """

    name: ClassVar[str] = "adc"
    order: ClassVar[int] = 5

    def output(self, y, stats, draw):
        return self.quantise(y)


@dataclass
class ProductStats:
    """What output kinds scale with, per row of a product (constants for back-propagation)."""

    x: torch.Tensor  # (..., M) the product's (quantised) input
    W: torch.Tensor  # (N, M) its nominal weight

    @property
    def x_absmax(self):  # (..., 1)
        return self.x.detach().abs().amax(-1, keepdim=True)

    @property
    def x_norm(self):  # (..., 1)
        return self.x.detach().norm(dim=-1, keepdim=True)

    @property
    def w_absmax(self):  # ()
        return self.W.detach().abs().max()


class SplitProductStats(ProductStats):
    """:class:`ProductStats` of a product on ``[h, x_t]`` assembled from its parts (inference's fast path,
    :func:`dni.nn.recurrence.unroll`), where x's share is computed for all steps at once.

    h: (R·B, H) the step's (input-processed) hidden part, R repeats of B rows; ``x_absmax``, ``x_sq``:
    (B, 1) max|x_j| and Σx_j² of the step's input part, shared by the R repeats; ``w_absmax``: max|W| of the
    product's nominal weight ``W`` (G, H + I)."""

    def __init__(self, h: torch.Tensor, x_part: torch.Tensor, x_absmax: torch.Tensor, x_sq: torch.Tensor, w_absmax: torch.Tensor,
                 W: torch.Tensor):
        self.h, self.x_part, self.W = h.detach(), x_part.detach(), W.detach()
        self._x_absmax, self._x_sq, self._w_absmax = x_absmax.detach(), x_sq.detach(), w_absmax.detach()

    def _rows(self, v):  # (B, k) → (R·B, k): the step's input part is the same in every repeat
        repeats = self.h.shape[0] // v.shape[0]
        return v.expand(repeats, *v.shape).reshape(self.h.shape[0], v.shape[-1])

    @property
    def x(self):  # (R·B, H + I), built only for a kind that asks for the whole input
        return torch.cat([self.h, self._rows(self.x_part)], dim=1)

    @property
    def x_absmax(self):  # (R·B, 1)
        return torch.maximum(self.h.abs().amax(-1, keepdim=True), self._rows(self._x_absmax))

    @property
    def x_norm(self):  # (R·B, 1)
        return (self.h.square().sum(-1, keepdim=True) + self._rows(self._x_sq)).sqrt()

    @property
    def w_absmax(self):  # ()
        return self._w_absmax


if tuple(KINDS) != KIND_NAMES:  # the torch-free catalogue names exactly the registered kinds, in order
    raise RuntimeError(f"dni.noise.catalogue.KIND_NAMES {KIND_NAMES} != the registered kinds {tuple(KINDS)}: update the catalogue")
