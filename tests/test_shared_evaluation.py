"""Sweeps with the same settings in several processes share the evaluation (dni.sweep.SharedResultFile):
a model another process is evaluating is left to it, its points are kept in the one result file, and
a process that died holding a model is taken over. The file equals a one-process run."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import dni.sweep
from conftest import REPO
from dni.results import load_results
from dni.sweep import SweepConfig, checkpoint_path, result_lock, run_sweep

SETTINGS = dict(preset="rnn28", epochs=1, sigma_train=[0.0, 0.5, 1.0], sigma_val=[0.0, 0.5, 1.0], repeats=3)

# Another process: takes the evaluation lock of rnn28 σtrain 0.5, says so, and on a line from stdin
# evaluates that model and writes its points into the shared result file.
OTHER_PROCESS = """
import sys, time
from pathlib import Path
from dni.evaluate import evaluate
from dni.sweep import SharedResultFile, SweepConfig, cached_model, checkpoint_path, result_lock
config = SweepConfig(preset="rnn28", epochs=1, sigma_train=[0.0, 0.5, 1.0], sigma_val=[0.0, 0.5, 1.0], repeats=3,
                     out=Path(sys.argv[1]), checkpoint_dir=Path(sys.argv[2]))
models = [cached_model(config.train_config(s), config.checkpoint_dir, log=lambda m: None) for s in config.sigma_train]
shared = SharedResultFile(config, models, time.perf_counter(), log=lambda m: None)
with result_lock(config.out, checkpoint_path(config.checkpoint_dir, shared.configs[1]).name):
    print("locked", flush=True)
    sys.stdin.readline()
    shared.add(evaluate([models[1]], config.sigma_val, config.repeats, seed=config.seed, progress=False))
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run by one process alone, and its checkpoint folder."""
    folder = tmp_path_factory.mktemp("one_process")
    ds = run_sweep(**SETTINGS, out=folder / "sweep.nc", progress=False, log=lambda m: None)
    return ds, folder / "sweep_checkpoints"


def assert_same_sweep(ds, reference):
    """The same points and models, apart from when and how long they were computed."""
    def comparable(d):
        d = d[["accuracy", "loss", "model_crc", "weight_power", "epochs"]].copy()
        d.attrs = {k: v for k, v in d.attrs.items() if k not in ("created", "sweep_seconds")}
        return d
    xr.testing.assert_identical(comparable(ds), comparable(reference))


def evaluated_models(monkeypatch) -> list[float]:
    """Record the σtrain of every model this process's sweep evaluates."""
    calls, real = [], dni.sweep.evaluate
    monkeypatch.setattr(dni.sweep, "evaluate", lambda models, *a, **k: calls.extend(m.sigma_train for m in models) or real(models, *a, **k))
    return calls


def run_beside(other, out, checkpoints, log):
    """The sweep run in this process while ``other`` holds a lock; ``other`` is killed afterwards in any case."""
    try:
        return run_sweep(**SETTINGS, out=out, checkpoint_dir=checkpoints, progress=False, log=log)
    finally:
        other.kill()


def assert_only_the_free_models_evaluated(ds):
    """``ds`` (the result file when the sweep began to wait) holds σtrain 0 and 1, and nothing of the locked σtrain 0.5."""
    done = ds.accuracy.notnull().all("seed")
    assert done.sel(sigma_train=[0.0, 1.0]).all() and not done.sel(sigma_train=0.5).any()


@pytest.mark.parametrize("other_ends", ["evaluates", "dies"])
def test_a_model_another_process_evaluates_is_left_to_it(tmp_path, reference, monkeypatch, other_ends):
    ref, trained = reference
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(trained, checkpoints)  # the models are trained; only the evaluation is shared
    out = tmp_path / "shared.nc"
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, str(out), str(checkpoints)], cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline() == "locked\n"
    locked = checkpoint_path(checkpoints, SweepConfig(**SETTINGS, out=out).train_config(0.5))
    evaluated = evaluated_models(monkeypatch)
    logs, file_when_waiting = [], []

    def log(message):
        logs.append(message)
        if message == f"waiting for the process evaluating {locked}":
            file_when_waiting.append(load_results(out))
            if other_ends == "evaluates":
                other.stdin.write("go\n")
                other.stdin.flush()
                assert other.wait(timeout=300) == 0
            else:
                other.kill()
                other.wait()

    ds = run_beside(other, out, checkpoints, log)
    assert_only_the_free_models_evaluated(file_when_waiting[0])
    assert evaluated == ([0.0, 1.0] if other_ends == "evaluates" else [0.0, 1.0, 0.5])  # took over only a dead process's model
    assert_same_sweep(ds, ref)
    assert_same_sweep(load_results(out), ref)
    for name in ("shared.nc", *(p.name for p in checkpoints.glob("*.pt"))):  # every evaluation lock is free again
        result_lock(out, None if name == "shared.nc" else name).acquire(timeout=0)


def test_a_model_another_process_trains_is_evaluated_after_the_others(tmp_path, reference, monkeypatch):
    """run_sweep does not wait for the training of a model before evaluating the models it has."""
    from test_shared_checkpoints import start_other_process

    ref, trained = reference
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    other = start_other_process(checkpoints, epochs=1)  # holds the training lock of rnn28 σtrain 0.5
    out = tmp_path / "shared.nc"
    locked = checkpoint_path(checkpoints, SweepConfig(**SETTINGS, out=out).train_config(0.5))
    evaluated = evaluated_models(monkeypatch)
    file_when_waiting = []

    def log(message):
        if message == f"waiting for {locked}: another process is training it" and not file_when_waiting:
            file_when_waiting.append(load_results(out))
            other.stdin.write("go\n")  # now let it train and save that model
            other.stdin.flush()

    ds = run_beside(other, out, checkpoints, log)
    assert_only_the_free_models_evaluated(file_when_waiting[0])
    assert evaluated == [0.0, 1.0, 0.5]
    assert_same_sweep(ds, ref)


def test_two_dni_sweeps_started_together_write_the_one_process_result(tmp_path, reference):
    ref, _ = reference
    out = tmp_path / "two.nc"
    cmd = [sys.executable, "-m", "dni.cli", "--quiet", "sweep", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,0.5,1",
           "--sigma-val", "0,0.5,1", "--repeats", "3", "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert_same_sweep(load_results(out), ref)
    assert np.isfinite(load_results(out).accuracy.values).all()
