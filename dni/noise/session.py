"""A noise spec at work: :class:`NoiseSession` draws each kind's noise for the products of one forward pass.

:func:`noise_for` turns a spec and a strength into the noise a model computes with; :func:`as_noise_model`
accepts the forms users pass (a σ, a spec, ``None``, a :class:`dni.noise.base.NoiseModel`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dni.noise.base import NOISELESS, AdditiveGaussian, NoiseModel
from dni.noise.kinds import Kind, ProductStats
from dni.noise.spec import NoiseSpec, parse_noise
from dni.util.validation import validate_sigma


def as_noise_model(noise, generator=None, repeats: int = 1) -> NoiseModel:
    """Accept a :class:`NoiseModel`, a σ (number: the paper's additive noise), ``None`` (noiseless),
    or a :class:`dni.noise.spec.NoiseSpec` at a fixed strength (a fresh session: new chips)."""
    if noise is None:
        return NOISELESS
    if isinstance(noise, NoiseModel):
        return noise

    if isinstance(noise, NoiseSpec):
        return NoiseSession(noise, generator, repeats)
    return AdditiveGaussian(validate_sigma(noise))


class NoiseSession(NoiseModel):
    """The noise of one forward pass (training) or one evaluation (all digits of R repeats): a spec
    at a fixed strength, its generators, and the chips (programming noise) drawn so far.

    ``generator``: one generator, or R (one per repeat: rows of a product come in R equal blocks,
    block r drawn from generator r, as :meth:`dni.noise.base.AdditiveGaussian.sample`). Chips are drawn
    at a product's first use, per repeat, and kept for the session's life.
    """

    commutes_with_recurrence = False

    def __init__(self, spec: NoiseSpec, generator=None, repeats: int = 1):
        self.spec, self.generator, self.repeats = spec, generator, repeats
        self._chips: dict[str, torch.Tensor] = {}
        self._prefetched = None
        self._weight_kinds = [k for k in spec.kinds if not k.is_off and type(k).weight is not Kind.weight]
        self._input_kinds = [k for k in spec.kinds if not k.is_off and type(k).input is not Kind.input]
        self._output_kinds = [k for k in spec.kinds if not k.is_off and type(k).output is not Kind.output]

    @property
    def is_noiseless(self) -> bool:
        return not (self._weight_kinds or self._input_kinds or self._output_kinds)

    @property
    def random(self) -> bool:
        return any(k.random for k in self._weight_kinds + self._input_kinds + self._output_kinds)

    @property
    def splits_products(self) -> bool:
        """Whether a product may be computed from the parts of its input (every kind :attr:`Kind.splits`):
        inference's fast path then precomputes the input part of all steps (:func:`dni.nn.recurrence.unroll`)."""
        return all(k.splits for k in self.spec.kinds)

    def process_input(self, x: torch.Tensor) -> torch.Tensor:
        """The product's input as the tile sees it (the input kinds, e.g. DAC quantisation)."""
        for kind in self._input_kinds:
            x = kind.input(x)
        return x

    def perturb(self, y: torch.Tensor, stats: ProductStats) -> torch.Tensor:
        """The output kinds applied to a product's value ``y`` (N, G) in the tile order, each drawing its ε."""
        for kind in self._output_kinds:
            y = kind.output(y, stats, lambda shape: self.draw(shape, y))
        return y

    def draw(self, shape, like: torch.Tensor) -> torch.Tensor:
        """Standard normal ε of ``shape`` (its first dim in R repeat blocks when there are R generators);
        from the background thread when :meth:`prefetch` started one (the same numbers)."""
        if self._prefetched is not None:
            eps = self._prefetched.take(shape)
            if eps.dtype != like.dtype or eps.device != like.device:
                raise RuntimeError(f"prefetched noise is {eps.dtype} on {eps.device}, the product {like.dtype} on {like.device}")
            return eps
        gens = self.generator
        if isinstance(gens, (list, tuple)):
            eps = torch.empty(shape, device=like.device, dtype=like.dtype)
            for block, gen in zip(eps.chunk(len(gens)), gens, strict=True):
                torch.randn(block.shape, generator=gen, out=block)
            return eps
        return torch.randn(shape, generator=gens, device=like.device, dtype=like.dtype)

    def _chips_per_weight(self) -> int | None:
        """How many chips a weight has: one per generator of a list, else one per repeat; None: a single (G, K) chip."""
        if isinstance(self.generator, (list, tuple)):
            return len(self.generator)
        return self.repeats if self.repeats > 1 else None

    def _chip_draw_shape(self, weight_shape) -> tuple[int, ...]:
        """The ε of a weight's chips as one :meth:`draw`: n blocks of the weight's shape, block r from generator r."""
        n = self._chips_per_weight()
        return tuple(weight_shape) if n is None else (n * weight_shape[0], *weight_shape[1:])

    def chip(self, name: str, W: torch.Tensor) -> torch.Tensor:
        """The weight as programmed on this session's chip(s): (G, K), or (R, G, K), one chip per repeat
        (repeat r's drawn from generator r when there is one per repeat)."""
        if not self._weight_kinds:
            return W
        if name not in self._chips or self._chips[name].shape[-2:] != W.shape:
            n = self._chips_per_weight()
            chip_shape = W.shape if n is None else (n, *W.shape)

            def draw(_):
                return self.draw(self._chip_draw_shape(W.shape), W).view(chip_shape)

            chipped = W
            for kind in self._weight_kinds:
                chipped = kind.weight(chipped, draw)
            self._chips[name] = chipped
        return self._chips[name]

    def draw_shapes(self, products) -> list[tuple[int, ...]]:
        """The shapes of every :meth:`draw` this session makes over the products ``products`` —
        (name, weight shape (G, K), output shape (N, G)) in call order — for :meth:`prefetch`."""
        shapes, chipped = [], set(self._chips)
        random_weight = any(k.random for k in self._weight_kinds)
        random_outputs = sum(1 for k in self._output_kinds if k.random)
        for name, weight_shape, out_shape in products:
            if random_weight and name not in chipped:
                chipped.add(name)
                shapes += [self._chip_draw_shape(weight_shape)] * sum(k.weight_draws for k in self._weight_kinds if k.random)
            shapes += [tuple(out_shape)] * random_outputs
        return shapes

    def prefetch(self, products, device="cpu", dtype=None):
        """Draw this session's ε ahead in a background thread (:class:`dni.noise.base.PrefetchedGaussian`), in
        the order the products ``products`` (see :meth:`draw_shapes`) will ask for them: the same numbers
        as drawing inline. Call :meth:`close` when done."""
        from dni.noise.base import PrefetchedGaussian

        self.close()
        self._prefetched = PrefetchedGaussian(1.0, self.generator, self.draw_shapes(products), device=device, dtype=dtype)

    def check_used_up(self):
        """After the products a :meth:`prefetch` listed: raise unless every draw it made was used."""
        if self._prefetched is not None:
            self._prefetched.check_used_up()

    def close(self):
        """Stop a :meth:`prefetch` thread, if any."""
        if self._prefetched is not None:
            self._prefetched.close()
            self._prefetched = None

    def product(self, name, weight, bias, x, generator=None):
        """The noisy ``weight·x + bias`` of product ``name``: x (N, M) → (N, G); N = R·B rows when repeats."""
        if self.is_noiseless:
            return F.linear(x, weight, bias)
        x = self.process_input(x)
        W = self.chip(name, weight)
        if W.dim() == 3:  # one chip per repeat: rows in R blocks
            R = W.shape[0]
            y = torch.baddbmm(bias.expand(R, 1, -1) if bias is not None else x.new_zeros(R, 1, W.shape[1]),
                              x.reshape(R, -1, x.shape[-1]), W.transpose(1, 2)).reshape(x.shape[0], -1)
        else:
            y = F.linear(x, W, bias)
        return self.perturb(y, ProductStats(x, weight))

    def add(self, preactivation, generator=None):
        raise TypeError("a NoiseSession perturbs whole products (product()), not pre-activations")


def noise_for(spec, sigma):
    """The noise a model computes with under ``spec`` at strength ``sigma``: an
    :class:`dni.noise.base.AdditiveGaussian` for the paper's spec, which the fast paths (:mod:`dni.nn.recurrence`,
    :mod:`dni.nn.fused`, :mod:`dni.training.batched`) take bit for bit as before; else the spec at that strength,
    which a model turns into a :class:`NoiseSession` per forward pass (the general path)."""
    spec = parse_noise(spec)
    if spec.is_paper:
        return AdditiveGaussian(sigma)
    spec = spec.at(sigma)
    return AdditiveGaussian(0.0) if NoiseSession(spec).is_noiseless else spec


def commutes(noise) -> bool:
    """Whether ``noise`` may be folded into a precomputed input projection (the fast paths): additive noise only."""
    return getattr(noise, "commutes_with_recurrence", True)
