"""Trained models on disk: the recipe (:class:`TrainConfig`), checkpoints, and the training states a cut-off
run resumes from (one model's, or a model-batched run's), with their names in a checkpoint folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from dni._version import __version__
from dni.errors import CheckpointError
from dni.nn.models import SequenceClassifier, build_model
from dni.store.recipe import TrainConfig
from dni.util.io import atomic_path


@dataclass
class TrainedModel:
    """A model with the config that produced it and its per-epoch history."""

    model: SequenceClassifier
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return self.config.preset

    @property
    def sigma_train(self) -> float:
        return self.config.sigma_train


class TrainingState:
    """Everything a training run needs to go on after an epoch: weights, Adam's moments, the rate
    schedule, the best epoch so far (and its weights), the history, and the states of the batch
    order and noise generators. Resuming from it gives the run that was cut off, bit for bit (tested).
    """

    @staticmethod
    def save(path, config: TrainConfig, model, optimiser, schedule, best, run, history, seconds: float):
        payload = {"config": asdict(config), "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                   "schedule": schedule.state_dict() if schedule is not None else None,
                   "best": best.state_dict(),
                   "history": history, "shuffle": run.shuffle.get_state(), "noise": run.noise.get_state(), "seconds": seconds}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @staticmethod
    def load(path, config: TrainConfig) -> "TrainingState | None":
        """The saved state if ``path`` holds one of exactly ``config`` (device too), else None."""
        try:
            payload = torch.load(path, map_location=config.device, weights_only=True)
            if TrainConfig.from_dict(payload["config"]) != config:
                return None
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 — a cut-off or foreign file is not resumed from, only overwritten
            return None
        state = TrainingState()
        state.payload = payload
        return state

    @staticmethod
    def peek(path) -> "tuple[TrainConfig, list[dict]] | None":
        """(config, history so far) of the state in ``path``; None if it cannot be read."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            return TrainConfig.from_dict(payload["config"]), payload["history"]
        except Exception:  # noqa: BLE001 — being written, or not a training state
            return None

    def restore(self, model, optimiser, schedule, best, run, history: list) -> float:
        """Put the saved state into these objects; returns the seconds the earlier runs took."""
        p = self.payload
        model.load_state_dict(p["model"])
        optimiser.load_state_dict(p["optimiser"])
        if schedule is not None and p["schedule"] is not None:
            schedule.load_state_dict(p["schedule"])
        best.load_state_dict(p["best"])
        history.extend(p["history"])
        run.shuffle.set_state(p["shuffle"].cpu())
        run.noise.set_state(p["noise"].cpu())
        return float(p["seconds"])


def save_checkpoint(trained: TrainedModel, path) -> None:
    """Write state dict + JSON-able config, history and metadata to ``path`` atomically."""
    payload = {
        "state_dict": trained.model.state_dict(),
        "config": asdict(trained.config),
        "history": trained.history,
        "meta": {**trained.meta, "dni_version": __version__},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path, preset: str | None = None) -> TrainedModel:
    """Load a checkpoint into an identical model; ``preset`` (if given) must match its preset."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(payload["config"])
        state_dict = payload["state_dict"]
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `dni train`") from None
    except Exception as err:
        raise CheckpointError(f"{path} is not a dni checkpoint ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if preset is not None and config.preset != preset:
        raise CheckpointError(f"checkpoint {path} holds preset {config.preset!r}, not {preset!r}; pass a {preset} checkpoint or --preset {config.preset}")
    model = build_model(config.preset, config.sigma_train, input_scale=config.input_scale, train_noise=config.train_noise,
                        dropout=config.dropout)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit preset {config.preset!r}: {str(err).splitlines()[0]}") from None
    model.eval()
    return TrainedModel(model, config, payload.get("history", []), payload.get("meta", {}))


class BatchedTrainingState:
    """The state of a model-batched run after an epoch, as :class:`dni.store.checkpoints.TrainingState` is for one
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
    def save(path, configs, stacked, optimiser, rates, bests, histories, epochs_done: int, finished_meta,
             run, seconds: float) -> None:
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
    (:class:`dni.store.checkpoints.TrainingState`) or a model-batched run's; [] if it cannot be read."""
    batched = BatchedTrainingState.peek(path)
    if batched is not None:
        return batched
    one = TrainingState.peek(path)
    return [one] if one is not None else []
