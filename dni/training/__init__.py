"""Deep Noise Injection training (paper §I, §III): one model (:mod:`~dni.training.train`), or the σtrain
models of a preset together (:mod:`~dni.training.batched`), each resumable after any finished epoch."""
