"""Sweeps sharing a checkpoint folder split the models between them (dni.sweep.model_lock): a model
another process is training is left to it, waited for at the end, and taken over if that process dies."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from dni.sweep import checkpoint_path, model_lock, train_models, training_state_path
from dni.train import TrainConfig, load_checkpoint, train

# Another process: takes the lock of rnn28 σtrain 0.5, says so, and on a line from stdin trains and saves that model.
OTHER_PROCESS = """
import sys
from pathlib import Path
from dni.sweep import checkpoint_path, model_lock, training_state_path
from dni.train import TrainConfig, save_checkpoint, train
config = TrainConfig(preset="rnn28", sigma_train=0.5, epochs=int(sys.argv[2]))
path = checkpoint_path(Path(sys.argv[1]), config)
with model_lock(path):
    print("locked", flush=True)
    sys.stdin.readline()
    save_checkpoint(train(config, progress=False, state_path=training_state_path(path), log=lambda m: None), path)
"""


def start_other_process(directory, epochs):
    proc = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, str(directory), str(epochs)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "locked\n"
    return proc


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("batch", [False, True], ids=["one_by_one", "batched"])
def test_a_model_another_process_trains_is_left_to_it_and_loaded(tmp_path, batch):
    configs = [TrainConfig(preset="rnn28", sigma_train=s, epochs=1) for s in (0.0, 0.5, 1.0)]
    other = start_other_process(tmp_path, epochs=1)
    logs = []

    def log(message):
        logs.append(message)
        if message.startswith("waiting for"):  # now let the other process train and save its model
            other.stdin.write("go\n")
            other.stdin.flush()

    try:
        models = train_models(configs, tmp_path, batch=batch, progress=False, log=log)
    finally:
        other.kill()
    locked = checkpoint_path(tmp_path, configs[1])
    expected = [f"left to the process training it: {locked}", f"waiting for {locked}: another process is training it",
                f"reusing {locked}: another process trained it"]
    assert [m for m in logs if str(locked) in m] == expected
    assert logs.index(expected[1]) == len(logs) - 2  # waited only after training the two free models
    assert same_weights(models[1].model, load_checkpoint(locked).model)  # the other process's model, loaded
    for c in (configs[0], configs[2]):
        assert checkpoint_path(tmp_path, c).exists()
    assert [m.config.sigma_train for m in models] == [0.0, 0.5, 1.0]
    for c in configs:  # every lock is free again
        model_lock(checkpoint_path(tmp_path, c)).acquire(timeout=0)


def test_a_model_whose_process_died_is_taken_over_from_its_last_epoch(tmp_path):
    config = TrainConfig(preset="rnn28", sigma_train=0.5, epochs=3)
    state = training_state_path(checkpoint_path(tmp_path, config))
    other = start_other_process(tmp_path, epochs=3)
    logs = []

    def log(message):
        logs.append(message)
        if message.startswith("waiting for"):  # let it train, and kill it after its first epoch
            other.stdin.write("go\n")
            other.stdin.flush()
            deadline = time.time() + 300
            while not state.exists() and time.time() < deadline:
                time.sleep(0.02)
            other.send_signal(signal.SIGKILL)
            other.wait()

    models = train_models([config], tmp_path, progress=False, log=log)
    assert other.returncode == -signal.SIGKILL
    assert any(m.startswith(f"resuming training from {state} after epoch") for m in logs), logs
    assert not any("another process trained it" in m for m in logs)
    assert not state.exists()
    straight = train(config, progress=False, log=lambda m: None)  # training is deterministic: the uncut model
    assert same_weights(models[0].model, straight.model)
    assert same_weights(load_checkpoint(checkpoint_path(tmp_path, config)).model, straight.model)


def test_train_only_sweep_trains_the_free_checkpoints_and_evaluates_nothing(tmp_path):
    """``dni sweep --train-only`` (a helper process) trains what no other process is training, and returns."""
    out = tmp_path / "grid.nc"
    folder = tmp_path / "grid_checkpoints"
    folder.mkdir()
    cmd = [sys.executable, "-m", "dni.cli", "--quiet", "sweep", "--train-only", "--preset", "rnn28", "--epochs", "1",
           "--sigma-train", "0,0.5,1", "--out", str(out)]
    other = start_other_process(folder, epochs=1)  # holds σtrain 0.5 and never trains it
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    finally:
        other.kill()
        other.wait()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rnn28 σtrain 0, 1: trained, in {folder}/; σtrain 0.5: left to the processes training them (")
    assert sorted(p.name for p in folder.glob("*.pt*")) == ["rnn28_sigma0.00_seed0.pt", "rnn28_sigma1.00_seed0.pt"]
    assert not out.exists()

    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)  # its process is gone
    assert again.stderr.count("reusing") == 2
    assert again.stdout.startswith(f"rnn28 σtrain 0, 0.5, 1: trained, in {folder}/ (")
    assert (folder / "rnn28_sigma0.50_seed0.pt").exists() and not out.exists()
