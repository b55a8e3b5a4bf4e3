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
    parse_train_seeds,
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
    """The evaluation seed; also the training seed when ``train_seeds`` is not given (one model per σtrain)."""
    train_seeds: list[int] | str | None = None
    """Training seeds (issue 34): one model per (σtrain, seed), each exactly the model ``seed=k`` trains
    alone; the result gets a ``train_seed`` dim. ``"0,1,2"``, ``"0:2:1"`` or a list; None: ``[seed]``."""
    select_on: str = "noisy"
    """Early stopping / best epoch on validation at σtrain ("noisy", the paper's) or at σ 0 ("clean"):
    :attr:`dni.store.recipe.TrainConfig.select_on`."""
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
        if self.train_seeds is not None:
            self.train_seeds = parse_train_seeds(self.train_seeds, "--train-seeds")
        self.draws = validate_draws(self.draws)
        self.device = validate_device(self.device)

        self.workers = validate_cluster(self.workers, self.scheduler, self.batch_models)
        from dni.noise.spec import check_strength_grid  # (torch: loaded with the noise specs above)

        grid_of_kinds = len(self.noise_pairs) > 1  # its fixed eval kinds are one point each, at σval 0 (issue 36, item 14)
        for train_noise, eval_noise in self.noise_pairs:  # issue 36: a fixed-strength spec over a σ grid, before any training
            check_strength_grid(train_noise, self.sigma_train, "--sigma-train")
            if not grid_of_kinds:
                check_strength_grid(eval_noise, self.sigma_val, "--sigma-val")
        for s in self.sigma_train:
            for train_noise in {t for t, _ in self.noise_pairs}:
                self.train_config(s, train_noise, self.seeds[0])  # bad training settings fail here, before anything is written
        self.out = check_writable(self.out)
        self.checkpoint_dir = check_writable_dir(Path(self.checkpoint_dir) if self.checkpoint_dir else default_checkpoint_dir(self.out))

    @property
    def seeds(self) -> list[int]:
        """The training seeds of the sweep: ``train_seeds``, else ``[seed]``."""
        return list(self.train_seeds) if self.train_seeds is not None else [int(self.seed)]

    @property
    def train_seed(self) -> int:
        """The one training seed of a one-seed sweep (a multi-seed sweep runs one of these per seed)."""
        if len(self.seeds) != 1:
            raise InvalidArgumentError(f"a sweep over training seeds {self.seeds} has one model per seed: name it")
        return self.seeds[0]

    def for_seed(self, train_seed: int) -> "SweepConfig":
        """The one-seed sweep of training seed ``train_seed`` (same eval seed, file and checkpoints)."""
        from dataclasses import replace

        return replace(self, train_seeds=[int(train_seed)])

    def train_config(self, sigma_train: float, train_noise: str | None = None, train_seed: int | None = None) -> TrainConfig:
        """The training settings of the model at ``sigma_train`` (under ``train_noise``; default: the sweep's one)
        and ``train_seed`` (default: the sweep's one; the TrainConfig seed, so seed k is the model ``--seed k`` trains)."""
        if train_noise is None and isinstance(self.train_noise, list):
            raise InvalidArgumentError("a sweep over several train noises has one model per train noise: name it")
        return TrainConfig(preset=self.preset, sigma_train=sigma_train, epochs=self.epochs, batch_size=self.batch_size,
                           lr=self.lr, seed=self.train_seed if train_seed is None else int(train_seed), data=self.data, device=self.device, patience=self.patience,
                           lr_patience=self.lr_patience, input_scale=self.input_scale, init=self.init,
                           weight_decay=self.weight_decay, optimiser=self.optimiser, dropout=self.dropout,
                           train_noise=train_noise or self.train_noise, select_on=self.select_on)

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
