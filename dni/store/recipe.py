"""The recipe of a trained model (:class:`TrainConfig`): everything that determines it, stored in its
checkpoint as JSON; torch-free, so the command line knows its defaults without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dni.errors import InvalidArgumentError
from dni.nn.presets import check_init, get_preset
from dni.noise.catalogue import PAPER
from dni.util.validation import validate_sigma


@dataclass
class TrainConfig:
    """Everything that determines a trained model; stored in its checkpoint (JSON-able)."""

    preset: str = "lstm28"
    sigma_train: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    data: str = "subset"
    val_fraction: float = 0.1
    clip_grad_norm: float | None = 5.0
    device: str = "cpu"
    patience: int | None = None
    """Convergence criterion: stop once validation accuracy at σtrain has not improved for this many
    epochs (``epochs`` is then the maximum) and keep the weights of the best epoch. None: train all
    ``epochs`` and keep the last weights."""
    lr_patience: int | None = None
    """Halve the learning rate once validation accuracy at σtrain has not improved for this many
    epochs (torch's ReduceLROnPlateau); None: a constant learning rate."""
    # The recipe options of issue 26 (how the paper's models may have been trained); the defaults are
    # dni's recipe, and a checkpoint config saved before they existed loads with them.
    input_scale: float = 1.0
    """The model multiplies every input by this (255: raw 0–255 pixels instead of [0, 1]), at training
    and evaluation alike (:class:`dni.nn.models.SequenceClassifier`)."""
    init: str = "torch"
    """Parameter initialisation, one of :data:`dni.nn.presets.INITS` (``glorot``: TF 1.x BasicLSTMCell's)."""
    weight_decay: float = 0.0
    """L2 weight decay λ on every trainable value (biases too): λ·w is added to each gradient (torch's
    ``weight_decay``, i.e. the loss gets λ/2·Σw², TF's ``λ·tf.nn.l2_loss``), after gradient clipping."""
    optimiser: str = "adam"
    """One of :data:`OPTIMISERS`, all at ``lr``."""
    dropout: float = 0.0
    """Dropout on the output: the probability of zeroing each unit of h_T before the FC layer in training
    (inverted dropout; none in evaluation; :class:`dni.nn.models.SequenceClassifier`)."""
    train_noise: str = PAPER
    """The kind of noise injected in training, at strength σtrain: a noise spec's label
    (:mod:`dni.noise.kinds`; ``additive`` is the paper's eq. 2, and what a checkpoint saved before
    noise specs existed was trained with)."""
    select_on: str = "noisy"
    """Which validation accuracy the convergence criterion (``patience``), the best epoch and the
    ``lr_patience`` schedule follow: "noisy" at σtrain under the train noise (the paper's, and what a
    checkpoint saved before this option was trained with) or "clean" at σ 0 (issue 34: a model trained
    under strong noise is not stopped early by its own noise on the validation set)."""

    def __post_init__(self):
        from dni.data import (
            DATA_SOURCES,  # (torch: imported when a recipe is made, not with the module)
        )
        from dni.noise.spec import parse_noise

        get_preset(self.preset)
        self.sigma_train = validate_sigma(self.sigma_train, "sigma_train")
        self.train_noise = parse_noise(self.train_noise).label
        if self.data not in DATA_SOURCES:
            raise InvalidArgumentError(f"unknown data {self.data!r}; choose one of: {', '.join(DATA_SOURCES)}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidArgumentError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.val_fraction < 1:
            raise InvalidArgumentError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise InvalidArgumentError(f"patience must be an integer >= 1 (or None), got {self.patience!r}")
        if self.patience is not None and self.val_fraction == 0:
            raise InvalidArgumentError("patience needs a validation split: set val_fraction > 0")
        if self.lr_patience is not None and (not isinstance(self.lr_patience, int) or self.lr_patience < 1):
            raise InvalidArgumentError(f"lr_patience must be an integer >= 1 (or None), got {self.lr_patience!r}")
        if self.lr_patience is not None and self.val_fraction == 0:
            raise InvalidArgumentError("lr_patience needs a validation split: set val_fraction > 0")
        if not (isinstance(self.input_scale, (int, float)) and math.isfinite(self.input_scale) and self.input_scale > 0):
            raise InvalidArgumentError(f"input_scale must be a positive number (e.g. 255 for raw pixels), got {self.input_scale!r}")
        check_init(self.init, get_preset(self.preset).cell)
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InvalidArgumentError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise InvalidArgumentError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        if self.select_on not in SELECT_ON:
            raise InvalidArgumentError(f"select_on must be one of {', '.join(SELECT_ON)}, got {self.select_on!r}")
        if self.optimiser not in OPTIMISERS:
            raise InvalidArgumentError(f"unknown optimiser {self.optimiser!r}; choose one of: {', '.join(OPTIMISERS)}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


SELECT_ON = ("noisy", "clean")
"""Values of :attr:`TrainConfig.select_on`."""

OPTIMISERS = {
    "adam": "torch.optim.Adam with its defaults β 0.9, 0.999, ε 1e-8 (TF 1.x AdamOptimizer's too); dni's default",
    "sgd": "plain stochastic gradient descent, no momentum (TF 1.x GradientDescentOptimizer)",
    "rmsprop": "torch.optim.RMSprop with TF 1.x RMSPropOptimizer's defaults: decay 0.9, momentum 0, ε 1e-10 "
               "(TF adds ε inside the square root, torch outside, and TF starts the mean square at 1, torch at 0)",
}
"""The optimisers of ``TrainConfig.optimiser`` (``dni train --optimiser``)."""
