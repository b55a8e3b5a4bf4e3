"""Model-batched Deep Noise Injection: the σtrain models of one preset trained together.

The paper trains one model per σtrain (11 per preset, §III). Those models share the preset, the
data and the training settings, and differ only in their noise level, so dni stacks their
weights on a leading model dimension S and trains them in one pass over the data: one input
projection einsum for all S models, batched matmuls (``bmm``) in the fused recurrence
(:mod:`dni.nn.fused`), and the per-model noise scaled by its own σ (model s sees
``W·[h, x] + b + σ_s·ε``, eq. 2).

Equivalence with training the S models one after another (each starting from the same seed):
same initial weights, same validation split and batch order, Adam (element-wise, so stacked
parameters are S independent optimisers) and gradient clipping per model; the noise draws
differ (one (S, T, B, G) block per batch), which is statistically the same. At σ = 0 the two
agree to float rounding (tested).

Learning-rate schedules (``lr_patience``) are per model too: each model has torch's
``ReduceLROnPlateau`` on its own validation accuracy, and its share of the Adam step is scaled by
its rate over the base rate (Adam's moments do not depend on the rate, so this is model s's own
Adam step at its own rate).
"""

from __future__ import annotations

import datetime

import torch
import torch.nn.functional as F

from dni._version import __version__
from dni.data import SequenceData
from dni.errors import InvalidArgumentError
from dni.nn.cells import CELLS
from dni.nn.models import build_model
from dni.nn.paths import Path, choose_path
from dni.nn.presets import get_preset
from dni.nn.stacked import BATCHABLE_CELLS, StackedClassifier
from dni.noise.base import PerModelGaussian, PrefetchedGaussian, prefetch_pays_off
from dni.noise.session import noise_for
from dni.store.checkpoints import BatchedTrainingState, TrainedModel
from dni.store.recipe import TrainConfig
from dni.training.train import (
    selection_accuracy,
    BestEpoch,
    TrainingRun,
    learning_rate_schedule,
    validation_record,
)
from dni.util.progress import tqdm


class PerModelRates:
    """Each model's learning rate under ``config.lr_patience``: torch's ``ReduceLROnPlateau``, one per
    model, exactly as :func:`dni.training.train.train` sets it up (constant when ``lr_patience`` is None)."""

    def __init__(self, config: TrainConfig, models: int):
        self.base, self.device = config.lr, config.device
        self.optimisers = [torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr) for _ in range(models)]
        self.schedules = [learning_rate_schedule(o, config) for o in self.optimisers]

    @property
    def lr(self) -> list[float]:
        return [o.param_groups[0]["lr"] for o in self.optimisers]

    def step(self, s: int, val_accuracy: float) -> None:
        if self.schedules[s] is not None:
            self.schedules[s].step(val_accuracy)

    def scale(self) -> torch.Tensor | None:
        """(S,) rate / base rate, or None when every model is at the base rate."""
        lr = self.lr
        if all(r == self.base for r in lr):
            return None
        return torch.tensor([r / self.base for r in lr], device=self.device)

    def state_dict(self) -> dict:
        return {"optimisers": [o.state_dict() for o in self.optimisers],
                "schedules": [s.state_dict() if s is not None else None for s in self.schedules]}

    def load_state_dict(self, saved: dict) -> None:
        for o, state in zip(self.optimisers, saved["optimisers"]):
            o.load_state_dict(state)
        for schedule, state in zip(self.schedules, saved["schedules"]):
            if schedule is not None and state is not None:
                schedule.load_state_dict(state)


def train_batched(configs: list[TrainConfig], *, progress: bool = True, train_data: SequenceData | None = None,
                  prefetch_noise: bool | None = None, on_converged=None, state_path=None, log=None) -> list[TrainedModel]:
    """Train the models of ``configs`` (one preset, settings equal but σtrain) together.

    ``prefetch_noise``: draw the noise in a background thread (same draws); default: when a core is spare.
    ``on_converged(s, trained)``: called as soon as model ``s`` meets its convergence criterion, with
    the model it ends as (its best epoch's weights), so a caller can save it before the others finish;
    the returned list holds that same model.
    ``state_path``: after every epoch the run's state is saved there (:class:`BatchedTrainingState`),
    and a run that finds a state holding its models continues from it; the caller deletes it once
    the models are saved. ``log`` tells of a resume.
    """
    if not configs:
        raise InvalidArgumentError("no models to train")
    base = configs[0]
    differing = {k for c in configs for k, v in vars(c).items() if k != "sigma_train" and v != getattr(base, k)}
    if differing:
        raise InvalidArgumentError(f"model-batched training needs equal settings except sigma_train; these differ: {sorted(differing)}")
    recipe = {k: getattr(base, k) for k in ("input_scale", "init", "weight_decay", "optimiser", "dropout", "train_noise")
              if getattr(base, k) != getattr(TrainConfig, k)}
    if recipe:  # the stacked models are dni's default recipe only (issue 26's options train one model at a time)
        raise InvalidArgumentError(f"model-batched training supports only the default recipe, not "
                                   f"{', '.join(f'{k} {v!r}' for k, v in recipe.items())}; drop --batch-models")
    preset = get_preset(base.preset)
    if choose_path(CELLS[preset.cell], noise_for(base.train_noise, base.sigma_train), grad=True) is not Path.FUSED:
        raise InvalidArgumentError(f"model-batched training supports {', '.join(BATCHABLE_CELLS)} cells, not {preset.cell}")
    wanted = list(configs)
    state = BatchedTrainingState.load(state_path, wanted) if state_path is not None else None
    positions = list(range(len(wanted)))  # each asked-for model's index in the stack
    if state is not None:
        configs, positions = state.configs, state.positions  # the saved run: these models and others that converged
    asked = {s: k for k, s in enumerate(positions)}  # stack index → index in ``wanted``
    models = []
    for c in configs:
        torch.manual_seed(c.seed)  # the same initial weights as train() gives each model
        models.append(build_model(preset, c.sigma_train))
    sigmas = [c.sigma_train for c in configs]
    stacked = StackedClassifier(models, sigmas).to(base.device)
    run = TrainingRun.prepare(base, train_data)  # the split, batch order and batch sizes of train()
    fit = run.fit
    optimiser = torch.optim.Adam(stacked.parameters(), lr=base.lr)
    rates = PerModelRates(base, len(configs))
    prefetch = prefetch_noise if prefetch_noise is not None else prefetch_pays_off()
    histories: list[list[dict]] = [[] for _ in configs]
    bests = [BestEpoch(c.patience) for c in configs]
    finished_meta: list[dict | None] = [None] * len(configs)  # a converged model's metadata, fixed when it converged
    finished: dict[int, TrainedModel] = {}
    started, earlier_seconds, first_epoch = datetime.datetime.now(), 0.0, 0
    elapsed = lambda: earlier_seconds + (datetime.datetime.now() - started).total_seconds()  # noqa: E731

    def finish(s: int) -> TrainedModel:
        """Model ``s`` as it ends: its best validation epoch's weights, its history, when it was done."""
        m = stacked.unstack_one(s, configs[s])
        if bests[s].state is not None:
            m.load_state_dict(bests[s].state)
        meta = finished_meta[s] or {
            "dni_version": __version__, "trained_at": started.isoformat(timespec="seconds"),
            "train_seconds": elapsed(),  # shared with the other models
            "train_size": len(fit), "val_size": len(run.val), "model_batched": len(configs),
            "epochs_run": len(histories[s]), "best_epoch": bests[s].epoch}
        return TrainedModel(m.cpu(), configs[s], histories[s], meta)

    def hand_out(newly: list[int]) -> None:
        """Give the caller the models that have just converged (those it asked for)."""
        for s in newly:
            if on_converged is not None and s in asked:
                on_converged(asked[s], finished[s])

    if state is not None:
        p = state.payload
        stacked.load_state_dict(p["model"])
        optimiser.load_state_dict(p["optimiser"])
        rates.load_state_dict(p["rates"])
        for b, saved in zip(bests, p["bests"]):
            b.load_state_dict(saved)
        histories, finished_meta = p["histories"], p["finished_meta"]
        run.shuffle.set_state(p["shuffle"].cpu())
        run.noise.set_state(p["noise"].cpu())
        earlier_seconds, first_epoch = float(p["seconds"]), int(p["epochs_done"])
        if log is not None:
            log(f"resuming batched training from {state_path} after epoch {first_epoch}")
        converged = [s for s in range(len(configs)) if finished_meta[s] is not None]
        finished.update({s: finish(s) for s in converged})
        hand_out(converged)  # again: the run may have been cut before the caller saved them

    def epoch_noise():
        """The σtrain noise of one epoch. One prefetching thread per epoch: at its end every draw made
        has been used, so the generator's state is exactly the next epoch's start (what the state saves)."""
        if not prefetch:
            return PerModelGaussian(stacked.sigmas, run.noise)
        shapes = (shape for size in run.batch_sizes for shape in stacked.noise_shapes(size, run.steps))
        return PrefetchedGaussian(stacked.sigmas, run.noise, shapes, device=base.device)

    bar = tqdm(range(first_epoch, base.epochs), desc=f"{base.preset} ×{len(configs)} σtrain", disable=not progress, unit="epoch",
               initial=first_epoch, total=base.epochs)
    fit_x, fit_y = fit.x.to(base.device), fit.y.to(base.device)  # (N, T, I), (N,): on the device once
    for epoch in bar:
        if all(b.converged for b in bests):
            break
        order = torch.randperm(len(fit), generator=run.shuffle).to(base.device)
        # summed on the device: no host synchronisation inside the epoch, so a GPU never waits for Python
        total_loss = torch.zeros(len(configs), dtype=torch.float64, device=base.device)
        total_correct = torch.zeros(len(configs), dtype=torch.long, device=base.device)
        scale = rates.scale()  # (S,) each model's rate / base rate, or None when all are at the base rate
        noise = epoch_noise()
        try:
            for b in tqdm(range(len(run.batch_sizes)), leave=False, disable=not progress, unit="batch"):
                idx = order[b * base.batch_size : (b + 1) * base.batch_size]
                x, y = fit_x[idx], fit_y[idx]  # (B, T, I), (B,)
                logits = stacked(x, noise)  # (S, B, C)
                losses = F.cross_entropy(logits.transpose(1, 2), y.expand(len(configs), -1), reduction="none").mean(1)  # (S,)
                optimiser.zero_grad(set_to_none=True)
                losses.sum().backward()  # each model's gradient is that of its own mean loss
                if base.clip_grad_norm:
                    stacked.clip_grad_norm_(base.clip_grad_norm)
                stacked.adam_step(optimiser, scale)
                total_loss += losses.detach().double() * len(idx)
                total_correct += (logits.argmax(-1) == y).sum(1)
        finally:
            if isinstance(noise, PrefetchedGaussian):
                noise.close()
        total_loss, total_correct = total_loss.cpu(), total_correct.cpu()
        trained = stacked.unstack(configs)
        newly = []
        for s, (m, c) in enumerate(zip(trained, configs)):
            if bests[s].converged:
                continue  # this model's result is fixed; it keeps training with the others but is not recorded
            record = {"epoch": epoch + 1, "lr": rates.lr[s], "train_loss": float(total_loss[s]) / len(fit),
                      "train_accuracy": int(total_correct[s]) / len(fit), **validation_record(m.to(base.device), run.val, c)}
            histories[s].append(record)
            chosen = selection_accuracy(record, c)  # at σtrain, or σ 0 with select_on "clean"
            if chosen is not None:
                bests[s].update(epoch + 1, chosen, m.state_dict)
                rates.step(s, chosen)  # model s's rate for the next epoch
            if bests[s].converged:
                newly.append(s)
                finished[s] = finish(s)
                finished_meta[s] = finished[s].meta
        if state_path is not None:  # before the converged models are handed out: a cut in between still finds them here
            BatchedTrainingState.save(state_path, configs, stacked, optimiser, rates, bests, histories, epoch + 1,
                                      finished_meta, run, elapsed())
        hand_out(newly)
    return [finished[s] if s in finished else finish(s) for s in positions]
