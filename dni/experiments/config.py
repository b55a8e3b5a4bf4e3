"""What a sweep is: :class:`SweepConfig`, the σtrain × σval (× noise kinds) grid of one preset and how it runs.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path

from dni.errors import InvalidArgumentError
from dni.nn.presets import get_preset
from dni.noise.catalogue import PAPER, validate_draws
from dni.store.layout import default_checkpoint_dir
from dni.store.recipe import TrainConfig
from dni.util.io import check_writable, check_writable_dir
from dni.util.validation import (
    parse_sigmas,
    validate_device,
    validate_repeats,
    validate_sigmas,
)

DEFAULT_SIGMA_TRAIN = (0.0, 0.5, 1.0)
PAPER_SIGMAS = tuple(round(0.1 * i, 1) for i in range(11))



def validate_cluster(workers, scheduler, batch_models: bool = False) -> int | None:
    """``workers`` as an int (or None), after checking the three ways to run are not mixed."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise InvalidArgumentError(f"--workers must be an integer >= 1 (worker processes of a local Dask cluster), got {workers!r}")
    if workers is not None and scheduler is not None:
        raise InvalidArgumentError("give --workers (a Dask cluster on this machine) or --scheduler (an existing one), not both")
    if batch_models and (workers is not None or scheduler is not None):
        raise InvalidArgumentError("--batch-models trains the models together in one process; it does not go with --workers or --scheduler")
    return None if workers is None else int(workers)


@dataclass
class SweepConfig:
    """Settings of :func:`run_sweep`; the defaults are the README's main job (a few minutes)."""

    preset: str = "lstm28"
    sigma_train: list[float] = field(default_factory=lambda: list(DEFAULT_SIGMA_TRAIN))
    sigma_val: list[float] = field(default_factory=lambda: list(PAPER_SIGMAS))
    repeats: int = 5
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    seed: int = 0
    data: str = "subset"
    out: Path = Path("dni_sweep.nc")
    checkpoint_dir: Path | None = None
    device: str = "cpu"
    batch_models: bool = False
    """Train the σtrain models that are not trained yet together (:mod:`dni.training.batched`)."""
    patience: int | None = None
    """Convergence criterion of :class:`dni.store.recipe.TrainConfig` (``epochs`` is then the maximum)."""
    lr_patience: int | None = None
    """Learning-rate schedule of :class:`dni.store.recipe.TrainConfig` (halve after this many epochs without a new best)."""
    input_scale: float = TrainConfig.input_scale
    init: str = TrainConfig.init
    weight_decay: float = TrainConfig.weight_decay
    optimiser: str = TrainConfig.optimiser
    dropout: float = TrainConfig.dropout
    """These five: the recipe options of :class:`dni.store.recipe.TrainConfig` (issue 26), passed to every model."""
    retrain: bool = False
    """Replace checkpoints (and training states) of other settings, keeping each old file as a backup
    (:func:`dni.util.io.move_aside`); without it such a file stops the sweep (:func:`cached_model`)."""
    train_noise: str | list[str] = PAPER
    """The kind of training noise at strength σtrain, a noise spec (:mod:`dni.noise.kinds`), or a list:
    the mismatch grid trains models under each and evaluates each under every ``eval_noise``."""
    eval_noise: str | list[str] = PAPER
    """The kind of inference noise at strength σval, a noise spec, or a list."""
    draws: str = "shared"
    """Evaluation draw scheme (:mod:`dni.noise.draws`, issue 22): "shared" ε across σval (default) or
    "per-point" (how the committed paper numbers were made); recorded in the result's attrs."""
    workers: int | None = None
    """Run the sweep's tasks on a Dask ``LocalCluster`` of this many worker processes, one torch thread
    each (:mod:`dni.experiments.dask_cluster`); None: in this process."""
    scheduler: str | None = None
    """Run the sweep's tasks on the Dask cluster of this scheduler address (e.g. ``tcp://host:8786``)."""

    def __post_init__(self):
        get_preset(self.preset)
        self.train_noise, self.eval_noise = _noise_labels(self.train_noise, "train_noise"), _noise_labels(self.eval_noise, "eval_noise")
        # σ lists may come as text ("0:1:0.1", "0,0.5,1"), e.g. from papermill -p
        self.sigma_train = parse_sigmas(self.sigma_train, "sigma_train") if isinstance(self.sigma_train, str) else validate_sigmas(self.sigma_train, "sigma_train")
        self.sigma_val = parse_sigmas(self.sigma_val, "sigma_val") if isinstance(self.sigma_val, str) else validate_sigmas(self.sigma_val, "sigma_val")
        self.repeats = validate_repeats(self.repeats)
        self.draws = validate_draws(self.draws)
        self.device = validate_device(self.device)

        self.workers = validate_cluster(self.workers, self.scheduler, self.batch_models)
        from dni.noise.spec import check_strength_grid  # (torch: loaded with the noise specs above)

        for train_noise, eval_noise in self.noise_pairs:  # issue 36: a fixed-strength spec over a σ grid, before any training
            check_strength_grid(train_noise, self.sigma_train, "--sigma-train")
            check_strength_grid(eval_noise, self.sigma_val, "--sigma-val")
        for s in self.sigma_train:
            for train_noise in {t for t, _ in self.noise_pairs}:
                self.train_config(s, train_noise)  # bad training settings fail here, before anything is written
        self.out = check_writable(self.out)
        self.checkpoint_dir = check_writable_dir(Path(self.checkpoint_dir) if self.checkpoint_dir else default_checkpoint_dir(self.out))

    def train_config(self, sigma_train: float, train_noise: str | None = None) -> TrainConfig:
        """The training settings of the model at ``sigma_train`` (under ``train_noise``; default: the sweep's one)."""
        if train_noise is None and isinstance(self.train_noise, list):
            raise InvalidArgumentError("a sweep over several train noises has one model per train noise: name it")
        return TrainConfig(preset=self.preset, sigma_train=sigma_train, epochs=self.epochs, batch_size=self.batch_size,
                           lr=self.lr, seed=self.seed, data=self.data, device=self.device, patience=self.patience,
                           lr_patience=self.lr_patience, input_scale=self.input_scale, init=self.init,
                           weight_decay=self.weight_decay, optimiser=self.optimiser, dropout=self.dropout,
                           train_noise=train_noise or self.train_noise)

    @property
    def noises(self) -> dict[str, str]:
        return {"train_noise": self.train_noise, "eval_noise": self.eval_noise}

    @property
    def noise_pairs(self) -> list[tuple[str, str]]:
        """(train noise, eval noise) pairs of the mismatch grid; one for a paper-style sweep."""
        as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
        return [(t, e) for t in as_list(self.train_noise) for e in as_list(self.eval_noise)]


def _noise_labels(value, name: str) -> str | list[str]:
    """Canonical label(s) of one spec or a list of specs (a one-element list is that spec)."""
    from dni.noise.spec import (
        parse_noise,  # (torch: a sweep is configured before the model layers load)
    )

    if isinstance(value, (list, tuple)):
        labels = list(dict.fromkeys(parse_noise(v).label for v in value))
        if not labels:
            raise InvalidArgumentError(f"{name} list is empty; give at least one noise spec, e.g. additive")
        return labels[0] if len(labels) == 1 else labels
    return parse_noise(value).label
