"""Model-batched Deep Noise Injection: the σtrain models of one preset trained together.

The paper trains one model per σtrain (11 per preset, §III). Those models share the preset, the
data and the training settings, and differ only in their noise level, so dni stacks their
weights on a leading model dimension S and trains them in one pass over the data: one input
projection einsum for all S models, batched matmuls (``bmm``) in the fused recurrence
(:mod:`dni.fused`), and the per-model noise scaled by its own σ (model s sees
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
from dataclasses import asdict

import torch
import torch.nn.functional as F
from .progress import tqdm

from . import __version__
from .data import SequenceData
from .errors import InvalidArgumentError
from .fused import SEQUENCES, gate_order
from .io import atomic_path
from .models import SequenceClassifier, build_model, get_preset
from .noise import PerModelGaussian, PrefetchedGaussian, prefetch_pays_off
from .train import BestEpoch, TrainConfig, TrainedModel, TrainingRun, TrainingState, learning_rate_schedule, validation_record

BATCHABLE_CELLS = tuple(SEQUENCES)  # "lstm", "rnn"


class StackedClassifier(torch.nn.Module):
    """S classifiers of one preset, weights stacked: ``weight_hh`` (S, G, H), ``fc_weight`` (S, C, H), ...

    ``forward(x (B, T, I), noise)`` → logits (S, B, C): every model reads the same batch.
    """

    def __init__(self, models: list[SequenceClassifier], sigmas):
        super().__init__()
        cell = models[0].cell
        self.kind = models[0].preset.cell
        self.hidden_size = cell.hidden_size
        stack = lambda get: torch.nn.Parameter(torch.stack([get(m).detach().clone() for m in models]))  # noqa: E731
        self.weight_ih = stack(lambda m: m.cell.weight_ih)  # (S, G, I)
        self.weight_hh = stack(lambda m: m.cell.weight_hh)  # (S, G, H)
        self.bias = stack(lambda m: m.cell.bias)  # (S, G)
        self.fc_weight = stack(lambda m: m.fc.weight)  # (S, C, H)
        self.fc_bias = stack(lambda m: m.fc.bias)  # (S, C)
        self.register_buffer("sigmas", torch.tensor(sigmas, dtype=self.weight_ih.dtype))  # (S,)
        self.rows = gate_order(self.hidden_size, self.weight_ih.device) if self.kind == "lstm" else None

    def noise_shapes(self, batch: int, steps: int):
        S, G = self.weight_ih.shape[:2]
        return [(S, steps, batch, G), (S, batch, self.fc_weight.shape[1])]

    def forward(self, x, noise):
        """``noise``: a :class:`PrefetchedGaussian` with per-model σ, or any model adding unit-free z."""
        W_ih, b, W_hh = self.weight_ih, self.bias, self.weight_hh
        if self.rows is not None:
            W_ih, b, W_hh = W_ih[:, self.rows], b[:, self.rows], W_hh[:, self.rows]
        P = torch.einsum("bti,sgi->stbg", x, W_ih) + b[:, None, None, :]  # (S, T, B, G)
        h = SEQUENCES[self.kind].apply(noise.add(P), W_hh)  # (S, B, H)
        logits = torch.baddbmm(self.fc_bias.unsqueeze(1), h, self.fc_weight.transpose(1, 2))  # (S, B, C)
        return noise.add(logits)

    def clip_grad_norm_(self, max_norm: float) -> None:
        """``torch.nn.utils.clip_grad_norm_`` applied to each model separately."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        sq = sum(g.pow(2).reshape(g.shape[0], -1).sum(1) for g in grads)  # (S,)
        scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))

    def adam_step(self, optimiser: torch.optim.Optimizer, scale: torch.Tensor | None) -> None:
        """``optimiser.step()`` with model s's update scaled by ``scale[s]`` (its own learning rate)."""
        if scale is None:
            optimiser.step()
            return
        params = list(self.parameters())
        before = [p.detach().clone() for p in params]
        optimiser.step()
        with torch.no_grad():
            for p, b in zip(params, before):  # p = b + scale·(p − b)
                p.sub_(b).mul_(scale.view(-1, *[1] * (p.dim() - 1))).add_(b)

    def unstack(self, configs: list[TrainConfig]) -> list[SequenceClassifier]:
        return [self.unstack_one(s, config) for s, config in enumerate(configs)]

    def unstack_one(self, s: int, config: TrainConfig) -> SequenceClassifier:
        """Model ``s`` as a plain :class:`SequenceClassifier` (a copy of its weights)."""
        m = build_model(config.preset, config.sigma_train)
        with torch.no_grad():
            m.cell.weight_ih.copy_(self.weight_ih[s])
            m.cell.weight_hh.copy_(self.weight_hh[s])
            m.cell.bias.copy_(self.bias[s])
            m.fc.weight.copy_(self.fc_weight[s])
            m.fc.bias.copy_(self.fc_bias[s])
        return m.eval()


class PerModelRates:
    """Each model's learning rate under ``config.lr_patience``: torch's ``ReduceLROnPlateau``, one per
    model, exactly as :func:`dni.train.train` sets it up (constant when ``lr_patience`` is None)."""

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


class BatchedTrainingState:
    """The state of a model-batched run after an epoch, as :class:`dni.train.TrainingState` is for one
    model: the stacked weights, Adam's moments, each model's rate schedule, best epoch (and its
    weights) and history, which models have converged, and the batch-order and noise generator
    states. A run cut off after an epoch resumes from it to the run that was not cut off, bit for
    bit (tested), so a GPU session's time limit (or a session end) does not lose the models in training.

    A run resumes from the state of a run with more models when those extra models have converged:
    a sweep restarted after a cut asks only for the models it has no checkpoint of.
    """

    def __init__(self, payload: dict, positions: list[int]):
        self.payload = payload
        self.configs = [TrainConfig.from_dict(c) for c in payload["configs"]]  # every model of the saved run
        self.positions = positions  # the saved run's index of each model asked for

    @staticmethod
    def save(path, configs, stacked, optimiser, rates: PerModelRates, bests, histories, epochs_done: int, finished_meta,
             run: TrainingRun, seconds: float) -> None:
        payload = {"configs": [asdict(c) for c in configs], "epochs_done": epochs_done, "model": stacked.state_dict(),
                   "optimiser": optimiser.state_dict(), "rates": rates.state_dict(), "bests": [b.state_dict() for b in bests],
                   "histories": histories, "finished_meta": finished_meta,
                   "shuffle": run.shuffle.get_state(), "noise": run.noise.get_state(), "seconds": seconds}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @staticmethod
    def load(path, configs: list[TrainConfig]) -> "BatchedTrainingState | None":
        """The state in ``path`` if its run holds every model of ``configs`` (exactly, device too) and
        its other models have converged; else None (the run starts from scratch and overwrites it)."""
        try:
            payload = torch.load(path, map_location=configs[0].device, weights_only=True)
            saved = [TrainConfig.from_dict(c) for c in payload["configs"]]
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 — a cut-off or foreign file is not resumed from, only overwritten
            return None
        free, positions = list(range(len(saved))), []
        for c in configs:
            match = next((i for i in free if saved[i] == c), None)
            if match is None:
                return None
            free.remove(match)
            positions.append(match)
        if any(payload["bests"][i]["since"] < (saved[i].patience or float("inf")) for i in free):
            return None  # a model not asked for is still training: this is another run's state
        return BatchedTrainingState(payload, positions)

    @staticmethod
    def peek(path) -> "list[tuple[TrainConfig, list[dict]]] | None":
        """(config, history so far) of each model of the run in ``path`` that has not converged; None if unreadable."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            configs = [TrainConfig.from_dict(c) for c in payload["configs"]]
            return [(c, h) for c, h, meta in zip(configs, payload["histories"], payload["finished_meta"]) if meta is None]
        except Exception:  # noqa: BLE001 — being written, or not a batched training state
            return None


def training_states(path) -> list[tuple[TrainConfig, list[dict]]]:
    """(config, history so far) of each model in training whose state ``path`` holds: one model's
    (:class:`dni.train.TrainingState`) or a model-batched run's; [] if it cannot be read."""
    batched = BatchedTrainingState.peek(path)
    if batched is not None:
        return batched
    one = TrainingState.peek(path)
    return [one] if one is not None else []


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
    if preset.cell not in BATCHABLE_CELLS:
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
            if "val_accuracy" in record:
                bests[s].update(epoch + 1, record["val_accuracy"], m.state_dict)
                rates.step(s, record["val_accuracy"])  # model s's rate for the next epoch
            if bests[s].converged:
                newly.append(s)
                finished[s] = finish(s)
                finished_meta[s] = finished[s].meta
        if state_path is not None:  # before the converged models are handed out: a cut in between still finds them here
            BatchedTrainingState.save(state_path, configs, stacked, optimiser, rates, bests, histories, epoch + 1,
                                      finished_meta, run, elapsed())
        hand_out(newly)
    return [finished[s] if s in finished else finish(s) for s in positions]
