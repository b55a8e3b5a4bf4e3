"""Noisy networks: the readable cells (the reference every fast path is tested against), the unrolled and
fused sequence paths, the paper's presets (Tables I–III), stacked models for model-batched training,
:func:`~dni.nn.noisify.noisify` for any torch model, and the probes behind the state and weight figures."""
