"""Noise models: how analog noise perturbs the output of a matrix–vector product.

The paper (eq. 2) models every analog matrix–vector multiplication as

    f(x) = g(W·x + b + z),   z ~ N(0, σ²) element-wise,

with a fresh draw of z at every time step and every forward pass, in training (σtrain,
"Deep Noise Injection") and in inference (σval). This module is the one place that decides how
z is drawn; cells and the fused recurrence only call :meth:`NoiseModel.add`.

Other noise models (multiplicative, quantisation, ...) subclass :class:`NoiseModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dni.util.validation import validate_sigma


class NoiseModel:
    """Interface of a noise model: the noisy product ``W·x + b`` (:meth:`product`); the paper's
    additive models perturb the pre-activation (:meth:`add`), which commutes with the recurrence.
    The other kinds of analog noise live in :mod:`dni.noise.kinds`."""

    commutes_with_recurrence: bool = True
    """Whether the noise may be added to a precomputed input projection before ``h·W_hhᵀ`` (the fast paths)."""

    def product(self, name: str, weight: torch.Tensor, bias, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The noisy ``weight·x + bias`` of the product called ``name`` (e.g. "cell", "fc"): x (N, M) → (N, G)."""
        return self.add(torch.nn.functional.linear(x, weight, bias), generator)

    def add(self, preactivation: torch.Tensor, generator=None) -> torch.Tensor:
        """Return the noisy pre-activation (a new tensor; the input is not modified).

        ``generator``: a ``torch.Generator``, ``None`` (torch's global generator), or a sequence
        of generators, one per equal block of the first dimension (one per repeat).
        """
        raise NotImplementedError

    @property
    def is_noiseless(self) -> bool:
        """True when :meth:`add` is the identity and draws nothing."""
        raise NotImplementedError


@dataclass(frozen=True)
class AdditiveGaussian(NoiseModel):
    """The paper's noise (eq. 2): ``W·x + b + z`` with ``z ~ N(0, sigma²)`` per element.

    ``sigma = 0`` returns the pre-activation itself and draws no random numbers, so a
    σ = 0 network is exactly the noiseless network and leaves every generator untouched.
    """

    sigma: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "sigma", validate_sigma(self.sigma))

    @property
    def is_noiseless(self) -> bool:
        return self.sigma == 0.0

    def sample(self, like: torch.Tensor, generator=None) -> torch.Tensor:
        """Draw z shaped like ``like`` (same device and dtype).

        ``generator`` is one ``torch.Generator`` (or ``None``: torch's global one), or a sequence
        of R generators: then ``like``'s first dimension is R equal blocks (R repeats of one
        batch, see :func:`dni.nn.recurrence.unroll`) and block r is drawn from generator r alone, so
        repeat r's noise does not depend on how many repeats share the pass.
        """
        if isinstance(generator, (list, tuple)):
            z = torch.empty_like(like)
            for block, gen in zip(z.chunk(len(generator)), generator, strict=True):
                torch.randn(block.shape, generator=gen, out=block)
        else:
            z = torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
        return z.mul_(self.sigma)

    def add(self, preactivation, generator=None):
        if self.is_noiseless:
            return preactivation
        return self.sample(preactivation, generator).add_(preactivation)  # into the fresh z: no extra tensor


NOISELESS = AdditiveGaussian(0.0)


class ReplayNoise(NoiseModel):
    """Adds given noise tensors, one per :meth:`add` call, in order — to run two implementations
    (the readable cell and a fused path) on exactly the same z. The generator is ignored."""

    def __init__(self, tensors):
        self._tensors = list(tensors)

    @property
    def is_noiseless(self) -> bool:
        return False

    def add(self, preactivation, generator=None):
        if not self._tensors:
            raise RuntimeError("ReplayNoise ran out of noise tensors")
        z = self._tensors.pop(0)
        return preactivation + z.to(preactivation)


class PerModelGaussian(NoiseModel):
    """Additive Gaussian noise with one σ per stacked model (model-batched training, :mod:`dni.training.batched`).

    A pre-activation (S, ...) gets ``σ_s·ε`` in block s, ε ~ N(0, 1) drawn from ``generator`` in
    one call per pre-activation — the draws :class:`PrefetchedGaussian` makes with a σ tensor.
    """

    def __init__(self, sigmas: torch.Tensor, generator: torch.Generator | None = None):
        self.sigma = sigmas.detach()
        self.generator = generator

    @property
    def is_noiseless(self) -> bool:
        return False

    def add(self, preactivation, generator=None):
        z = torch.randn(preactivation.shape, generator=self.generator, device=preactivation.device, dtype=preactivation.dtype)
        return preactivation + z.mul_(self.sigma.to(z).view(-1, *[1] * (z.dim() - 1)))


_END = object()
"""What :class:`PrefetchedGaussian`'s worker queues after the last listed draw."""


def prefetch_pays_off() -> bool:
    """Whether drawing noise in a background thread speeds things up here.

    Only when torch leaves a core free: torch's OpenMP workers spin between kernels, and a third
    busy thread on two cores makes a training step 2× slower (measured), while with one torch
    thread on two cores the thread hides most of the drawing time. ``DNI_PREFETCH=0``/``1`` decides
    instead: a Dask LocalCluster with as many one-thread workers as cores sets 0 (:mod:`dni.experiments.dask_cluster`),
    as every core is then taken. The draws are the same either way; only the speed differs.
    """
    import os

    choice = os.environ.get("DNI_PREFETCH", "").strip()
    if choice in ("0", "1"):
        return choice == "1"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores


class PrefetchedGaussian(NoiseModel):
    """The paper's additive Gaussian noise, drawn ahead in a background thread.

    Training knows the shape of every noise draw in advance (per batch: the (T, B, G) block of
    the fused recurrence, then the (B, C) of the FC layer), and the noise does not depend on the
    weights, so a worker thread draws batch k+1's noise while batch k computes. The worker calls
    the generator in exactly the order the inline path would, so the draws — and the trained
    model — are bit-for-bit those of :class:`AdditiveGaussian` with the same generator (tested).

    ``shapes``: an iterable of tensor shapes in the order :meth:`add` will be called.
    ``sigma`` may also be a tensor of S per-model σ (model-batched training, :mod:`dni.training.batched`):
    draws then have S as their first dimension and block s is scaled by sigma[s]. ``generator``
    may be a list of per-repeat generators (evaluation), as for :meth:`AdditiveGaussian.sample`.
    """

    def __init__(self, sigma, generator: torch.Generator, shapes, device="cpu", depth: int = 4, dtype=None):
        import queue
        import threading

        if isinstance(sigma, torch.Tensor) and sigma.numel() > 1:
            self.sigma = sigma.detach().to(device)

            def draw(shape):
                z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
                return z.mul_(self.sigma.view(-1, *[1] * (z.dim() - 1)))
        else:
            self.sigma = validate_sigma(sigma)
            gaussian = AdditiveGaussian(self.sigma)

            def draw(shape):  # one generator, or one per repeat block (AdditiveGaussian.sample)
                return gaussian.sample(torch.empty(shape, device=device, dtype=dtype), generator)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()

        def work():
            try:
                for shape in shapes:
                    if self._stop.is_set():
                        return
                    z = draw(shape)
                    self._queue.put(z)
                self._queue.put(_END)
            except BaseException as err:  # surface worker errors in the training thread
                self._queue.put(err)

        self._thread = threading.Thread(target=work, daemon=True, name="dni-noise-prefetch")
        self._thread.start()

    @property
    def is_noiseless(self) -> bool:
        return not isinstance(self.sigma, torch.Tensor) and self.sigma == 0.0

    def take(self, shape) -> torch.Tensor:
        """The next draw (its own tensor), which must have ``shape``."""
        z = self._queue.get()
        if z is _END:
            raise RuntimeError(f"prefetched noise ran out: a draw of shape {tuple(shape)} was asked for after the last listed one")
        if isinstance(z, BaseException):
            raise z
        if z.shape != tuple(shape):
            raise RuntimeError(f"prefetched noise of shape {tuple(z.shape)} where {tuple(shape)} was asked for")
        return z

    def add(self, preactivation, generator=None):
        return self.take(preactivation.shape).add_(preactivation)  # z is this call's own tensor: add into it

    def check_used_up(self):
        """Raise unless every listed draw was taken (a pass that asked for fewer draws than listed)."""
        z = self._queue.get()
        if z is not _END:
            if isinstance(z, BaseException):
                raise z
            raise RuntimeError(f"prefetched noise left unused: a draw of shape {tuple(z.shape)} was listed but never asked for")
        self._queue.put(_END)

    def close(self):
        """Stop the worker and wait for it: a thread left inside torch at interpreter exit aborts the process."""
        self._stop.set()
        while self._thread.is_alive():
            while not self._queue.empty():  # unblock a worker waiting to put
                self._queue.get_nowait()
            self._thread.join(timeout=0.05)
