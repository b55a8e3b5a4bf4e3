"""A sweep killed mid-way continues where it stopped and ends with the uninterrupted result."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from conftest import REPO

from dni.experiments.sweep import run_sweep
from dni.store.results import load_results

ARGS = ["--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,0.5,1", "--sigma-val", "0:1:0.25", "--repeats", "3"]


def sweep_cmd(out):
    return [sys.executable, "-m", "dni.cli", "--quiet", "sweep", *ARGS, "--out", str(out)]


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed.nc"
    proc = subprocess.Popen(sweep_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not out.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # the result file appears after the first evaluated point
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = load_results(out)  # never corrupt: readable right after the kill
    assert partial.model_crc.notnull().all()  # every trained model is described, evaluated yet or not
    done = int(partial.accuracy.notnull().all("seed").sum())
    assert 0 < done < 15, f"the kill should land mid-way, {done} of 15 points were done"
    checkpoints = sorted(p.name for p in (tmp_path / "killed_checkpoints").glob("*.pt"))
    assert len(checkpoints) == 3  # all models were trained before evaluation began

    resumed = subprocess.run(sweep_cmd(out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("reusing") == 3  # no model retrained
    assert f"resuming {out}: {done} of 15 points already evaluated" in resumed.stderr

    reference = run_sweep(preset="rnn28", epochs=1, sigma_train=[0, 0.5, 1], sigma_val="0:1:0.25", repeats=3,
                          out=tmp_path / "uninterrupted.nc", progress=False, log=lambda m: None)
    final = load_results(out)
    xr.testing.assert_equal(final.accuracy, reference.accuracy)
    xr.testing.assert_equal(final.loss, reference.loss)
    for var in ("epochs", "best_epoch", "weight_power", "model_crc"):  # the same models (training is deterministic)
        xr.testing.assert_equal(final[var], reference[var])
    assert not np.isnan(final.accuracy.values).any()
    assert final.attrs["test_size"] == reference.attrs["test_size"] == 2000
    assert 0 < partial.attrs["sweep_seconds"] < final.attrs["sweep_seconds"]  # the resumed run adds its time


def test_results_of_other_models_are_not_reused(tmp_path):
    """A result file computed with other weights (here: other epochs, retrained with --retrain) is
    evaluated afresh; the old checkpoint and the old result file are kept as backups."""
    out = tmp_path / "r.nc"
    first = run_sweep(preset="rnn28", epochs=1, sigma_train=[0.5], sigma_val=[0.0, 1.0], repeats=2, out=out, progress=False, log=lambda m: None)
    old_result = out.read_bytes()
    logs = []
    second = run_sweep(preset="rnn28", epochs=2, sigma_train=[0.5], sigma_val=[0.0, 1.0], repeats=2, out=out, progress=False,
                       log=logs.append, retrain=True)
    assert not any("resuming" in m for m in logs)
    assert not np.array_equal(first.loss.values, second.loss.values)
    backups = sorted(p.name for p in tmp_path.glob("r.nc.bak-*"))
    assert len(backups) == 1 and (tmp_path / backups[0]).read_bytes() == old_result
    assert len(list((tmp_path / "r_checkpoints").glob("rnn28_sigma0.50_seed0.pt.bak-*"))) == 1
    logs.clear()
    written = out.read_bytes()
    third = run_sweep(preset="rnn28", epochs=2, sigma_train=[0.5], sigma_val=[0.0, 1.0], repeats=2, out=out, progress=False, log=logs.append)
    assert any("resuming" in m and "2 of 2 points" in m for m in logs)
    xr.testing.assert_equal(third.accuracy, second.accuracy)
    # nothing left to evaluate: the file is left exactly as it was (a finished run's file stays unmodified)
    assert any("left as it was" in m for m in logs)
    assert out.read_bytes() == written
    assert third.attrs == load_results(out).attrs and third.attrs["test_size"] == 2000


def test_ctrl_c_during_noisy_evaluation_exits_cleanly(tmp_path):
    """SIGINT mid-evaluation: the one-line message, exit 130, no abort from the noise-drawing thread."""
    import os

    checkpoint = REPO / "widgets" / "demo" / "checkpoints" / "lstm28_sigma0.00_seed0.pt"
    cmd = [sys.executable, "-m", "dni.cli", "evaluate", str(checkpoint), "--sigma-val", "1", "--repeats", "40",
           "--out", str(tmp_path / "e.nc")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    seen = b""
    while b"evaluate" not in seen:  # the progress bar: evaluation has begun
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err.decode(errors="replace")
    assert b"dni: interrupted" in err and b"terminate called" not in err
    assert not (tmp_path / "e.nc").exists()  # nothing half-written


def test_raising_the_epoch_limit_reuses_a_model_that_converged_before_it(tmp_path):
    """A checkpoint that stopped on its patience before its epoch limit is the model a higher limit
    would train (checked by training it afresh); one that could have trained on is trained again."""
    from dataclasses import replace

    from dni.data import load_sequences
    from dni.experiments.reuse import cached_model
    from dni.store.checkpoints import TrainedModel, save_checkpoint
    from dni.store.layout import checkpoint_path
    from dni.store.results import model_crc
    from dni.training.train import train

    data = load_sequences("subset", "train").take(slice(0, 400))
    stopped = train(preset="rnn28", sigma_train=0.5, epochs=6, lr=0.02, patience=1, progress=False, train_data=data)
    run = len(stopped.history)
    assert run < 6, f"no early stop to test: {stopped.history}"
    path = checkpoint_path(tmp_path, stopped.config)
    save_checkpoint(stopped, path)

    logs = []
    higher = replace(stopped.config, epochs=12)
    reused = cached_model(higher, tmp_path, logs.append)
    assert logs == [f"reusing {path}: it converged after {run} of at most 6 epochs, so at most 12 trains the same model"]
    assert reused.config == higher
    afresh = train(higher, progress=False, train_data=data)
    assert afresh.history == reused.history and model_crc(afresh.model) == model_crc(reused.model)

    from dni.errors import CheckpointConflictError

    for other, differs in ((replace(stopped.config, epochs=run), f"epochs 6 → {run}"),  # the limit would now end the run, not the patience
                           (replace(higher, lr=0.01), "epochs 6 → 12, lr 0.02 → 0.01")):  # other settings besides the limit
        with pytest.raises(CheckpointConflictError, match=f"holds a model trained with other settings \\({differs}\\)"):
            cached_model(other, tmp_path, logs.append)
    # a model that ran all its epochs (no convergence criterion) could have trained on: retrained with --retrain
    save_checkpoint(TrainedModel(stopped.model, replace(stopped.config, patience=None, epochs=run), stopped.history), path)
    logs.clear()
    assert cached_model(replace(stopped.config, patience=None, epochs=12), tmp_path, logs.append, retrain=True) is None
    assert len(logs) == 1 and logs[0].startswith(f"retraining: {path} holds a model trained with other settings (epochs {run} → 12)")
    assert not path.exists() and len(list(tmp_path.glob(path.name + ".bak-*"))) == 1


def test_a_checkpoint_trained_on_another_device_is_reused(tmp_path):
    """The device is not part of a model's settings: a GPU-trained checkpoint serves a CPU sweep
    (and keeps saying where it was trained); any other difference still retrains."""
    from dataclasses import replace

    from dni.data import load_sequences
    from dni.experiments.reuse import cached_model
    from dni.store.checkpoints import TrainedModel, save_checkpoint
    from dni.store.layout import checkpoint_path
    from dni.store.results import model_crc
    from dni.training.train import train

    data = load_sequences("subset", "train").take(slice(0, 200))
    trained = train(preset="rnn28", sigma_train=0.3, epochs=1, progress=False, train_data=data)
    on_gpu = replace(trained.config, device="cuda")
    path = checkpoint_path(tmp_path, on_gpu)
    save_checkpoint(TrainedModel(trained.model, on_gpu, trained.history, trained.meta), path)

    logs = []
    reused = cached_model(trained.config, tmp_path, logs.append)
    assert logs == [f"reusing {path} (trained on cuda)"]
    assert reused.config == on_gpu and model_crc(reused.model) == model_crc(trained.model)
    from dni.errors import CheckpointConflictError

    with pytest.raises(CheckpointConflictError, match=r"holds a model trained with other settings \(lr 0\.002 → 0\.001\)"):
        cached_model(replace(trained.config, lr=trained.config.lr / 2), tmp_path, logs.append)
    assert path.exists()  # not replaced unasked


def test_sweep_killed_mid_training_continues_from_the_last_epoch(tmp_path):
    """Killed while a model trains, a sweep goes on from that model's last finished epoch (its
    ``.partial`` training state) and ends with the models of an uninterrupted sweep."""
    args = ["--preset", "rnn28", "--epochs", "3", "--sigma-train", "0.5", "--sigma-val", "0,1", "--repeats", "2"]
    out = tmp_path / "cut.nc"
    cmd = [sys.executable, "-m", "dni.cli", "--quiet", "sweep", *args, "--out", str(out)]
    state = tmp_path / "cut_checkpoints" / "rnn28_sigma0.50_seed0.pt.partial"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # written after the first epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and not out.exists(), "the kill should land during training"

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming training from {state} after epoch" in resumed.stderr
    assert not state.exists()  # removed once the checkpoint is written
    reference = run_sweep(preset="rnn28", epochs=3, sigma_train=[0.5], sigma_val=[0, 1], repeats=2,
                          out=tmp_path / "straight.nc", progress=False, log=lambda m: None)
    final = load_results(out)
    for var in ("model_crc", "epochs", "best_epoch"):
        xr.testing.assert_equal(final[var], reference[var])
    xr.testing.assert_equal(final.accuracy, reference.accuracy)
