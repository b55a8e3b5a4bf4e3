"""Sweeps on Dask (dni.experiments.dask_cluster, issue 20): one process, 2 workers, and 2 workers of which one is
killed mid-training give the same numbers, bit for bit; a killed client resumes; Ctrl-C cancels;
bad input is one line, exit 2, and nothing written."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import torch
import xarray as xr
from conftest import REPO

from dni.cli import main
from dni.experiments.sweep import run_sweep
from dni.store.results import load_results

SETTINGS = dict(preset="rnn28", epochs=2, sigma_train=[0.0, 1.0], sigma_val=[0.0, 0.5, 1.0], repeats=3)
ARGS = ["--preset", "rnn28", "--epochs", "2", "--sigma-train", "0,1", "--sigma-val", "0,0.5,1", "--repeats", "3"]
COMPARED = ("accuracy", "loss", "model_crc", "weight_power", "epochs", "best_epoch")
"""Everything of a result but the wall times."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep in this process, with one torch thread (what every Dask worker uses)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("one") / "one.nc"
        return run_sweep(**SETTINGS, out=out, progress=False, log=lambda m: None), out
    finally:
        torch.set_num_threads(threads)


def assert_same(ds, reference):
    for name in COMPARED:
        xr.testing.assert_equal(ds[name], reference[name])
    assert ds.accuracy.notnull().all()


def test_two_workers_give_the_numbers_of_one_process(reference, tmp_path, capsys):
    out = tmp_path / "two.nc"
    assert main(["--quiet", "sweep", *ARGS, "--workers", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Dask LocalCluster: 2 worker process(es), one torch thread each; dashboard http" in err
    assert err.count(" on tcp://127.0.0.1:") == 2  # one line per trained model, naming its worker
    assert_same(load_results(out), reference[0])
    assert sorted(p.name for p in (tmp_path / "two_checkpoints").iterdir()) == ["rnn28_sigma0.00_seed0.pt", "rnn28_sigma1.00_seed0.pt"]


def test_a_worker_killed_mid_training_changes_nothing(reference, tmp_path):
    """SIGKILL the worker training a model after its first epoch: the scheduler reruns the task, which
    goes on from the model's per-epoch state (the worker reaches the checkpoint folder); same numbers."""
    from dni.experiments.dask_cluster import open_cluster

    folder = tmp_path / "killed_checkpoints"
    killed = []
    with open_cluster(workers=2, log=lambda m: None) as cluster:
        pids = cluster.client.run(os.getpid)

        def kill_a_training_worker():
            deadline = time.time() + 300
            while time.time() < deadline:
                started = [p.name[: -len(".pt.partial")] for p in folder.glob("*.pt.partial")] if folder.is_dir() else []
                for address, keys in cluster.client.processing().items():
                    if any(k.startswith(f"train-{name}-") for k in keys for name in started):
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_training_worker)
        killer.start()
        logs = []
        ds = run_sweep(**SETTINGS, out=tmp_path / "killed.nc", progress=False, log=logs.append, client=cluster)
        killer.join()
    assert killed, "no worker was killed mid-training"
    assert sum("resuming training from" in m and "after epoch 1" in m for m in logs) == 1, logs
    assert_same(ds, reference[0])
    assert_same(load_results(tmp_path / "killed.nc"), reference[0])
    assert not list(folder.glob("*.partial"))


def sweep_process(out, *extra):
    """``dni sweep --workers 2`` as a terminal runs it (Ctrl-C is SIGINT's default)."""
    return subprocess.Popen([sys.executable, "-m", "dni.cli", "--quiet", "sweep", *ARGS, "--workers", "2", "--out", str(out), *extra],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_cancels_then_a_killed_client_resumes(reference, tmp_path, capsys):
    """Per-point draws: one task per (model, σval), so the client is killed between points."""
    out = tmp_path / "client.nc"
    # Ctrl-C while the models train: the tasks are cancelled, the workers end, today's message
    proc = sweep_process(out, "--draws", "per-point")
    assert proc.stderr.readline().startswith("Dask LocalCluster: 2 worker process(es)")
    workers = psutil.Process(proc.pid).children(recursive=True)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    # (Python's multiprocessing resource tracker may warn after it, at the spawned workers' exit: not dni's output)
    lines = [line for line in proc.stderr.read().splitlines() if "resource_tracker" not in line]
    assert lines[-1] == "dni: interrupted; finished checkpoints are kept, run the same command to continue"
    assert workers and not psutil.wait_procs(workers, timeout=30)[1]  # no worker left running

    # the client killed once the first point is written
    proc = sweep_process(out, "--draws", "per-point")
    proc.stderr.readline()
    workers = psutil.Process(proc.pid).children(recursive=True)
    deadline = time.time() + 300
    while not out.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for p in psutil.wait_procs(workers, timeout=30)[1]:  # workers left behind by a killed client end with it, or here
        p.kill()
    done = int(load_results(out).accuracy.notnull().all("seed").sum())
    assert 0 < done < 6, done

    assert main(["sweep", *ARGS, "--draws", "per-point", "--workers", "2", "--out", str(out), "--quiet"]) == 0
    assert f"resuming {out}: {done} of 6 points already evaluated" in capsys.readouterr().err
    # the reference's models, evaluated in this process under the same draws
    per_point = run_sweep(**SETTINGS, draws="per-point", out=tmp_path / "pp.nc", checkpoint_dir=reference[1].with_name("one_checkpoints"),
                          progress=False, log=lambda m: None)
    assert_same(load_results(out), per_point)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be an integer >= 1 (worker processes of a local Dask cluster), got 0"),
    (["--workers", "-2"], "--workers must be an integer >= 1 (worker processes of a local Dask cluster), got -2"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "give --workers (a Dask cluster on this machine) or --scheduler (an existing one), not both"),
    (["--workers", "2", "--batch-models"], "--batch-models trains the models together in one process; it does not go with --workers or --scheduler"),
])
def test_bad_cluster_arguments(tmp_path, capsys, args, message):
    out = tmp_path / "r.nc"
    assert main(["sweep", *ARGS, "--out", str(out), *args]) == 2
    assert capsys.readouterr().err == f"dni: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_scheduler_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
    import dask

    dask.config.refresh()
    try:
        code = main(["sweep", *ARGS, "--out", str(tmp_path / "r.nc"), "--scheduler", "tcp://127.0.0.1:9"])
    finally:
        monkeypatch.undo()
        dask.config.refresh()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("dni: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def scheduler():
    """A Dask scheduler without workers, for a worker the test starts."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, protocol="tcp://", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def start_worker(address, **env):
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                             "--no-dashboard"], env={**os.environ, **env}, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def connected_worker(address):
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(1, timeout=120)
        return next(iter(client.scheduler_info()["workers"]))


def test_a_worker_that_cannot_import_dni_is_named_and_finished_results_stay(reference, scheduler, tmp_path, capsys):
    shadow = tmp_path / "shadow" / "dni"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("dni is broken here")\n')
    out = tmp_path / "r.nc"
    shutil.copy(reference[1], out)
    shutil.copytree(reference[1].with_name("one_checkpoints"), tmp_path / "r_checkpoints")
    before = {p.name: p.read_bytes() for p in [out, *(tmp_path / "r_checkpoints").iterdir()]}
    worker = start_worker(scheduler, PYTHONPATH=str(shadow.parent))
    try:
        address = connected_worker(scheduler)
        code = main(["--quiet", "sweep", *ARGS[:-4], "--sigma-val", "0,0.25,0.5,1", "--repeats", "3", "--out", str(out),
                     "--scheduler", scheduler])
    finally:
        worker.kill()
        worker.wait()
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1] == (f"dni: error: worker {address} cannot import dni (ImportError: dni is broken here); "
                                    "install dni in the workers' environment")
    assert {p.name: p.read_bytes() for p in [out, *(tmp_path / "r_checkpoints").iterdir()]} == before


def test_a_worker_without_the_data_is_named_and_nothing_is_written(scheduler, tmp_path, capsys):
    worker = start_worker(scheduler, DNI_DATA_DIR=str(tmp_path / "no-data"))
    try:
        address = connected_worker(scheduler)
        code = main(["--quiet", "sweep", *ARGS, "--data", "mnist", "--out", str(tmp_path / "r.nc"), "--scheduler", scheduler])
    finally:
        worker.kill()
        worker.wait()
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1].startswith(f"dni: error: worker {address}: ") and str(tmp_path / "no-data") in err[-1], err
    assert [p.name for p in tmp_path.iterdir() if p.name != "no-data"] == []


def test_a_local_cluster_leaves_the_client_environment_as_it_was(monkeypatch):
    """Dask's nannies set OMP_NUM_THREADS=1 in the client's os.environ for their workers; left there,
    every later subprocess of the client would run one-threaded and compute other numbers."""
    from dni.experiments.dask_cluster import open_cluster

    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    with open_cluster(workers=1, log=lambda m: None):
        assert dict(os.environ) == before
    assert dict(os.environ) == before


@pytest.mark.parametrize("address", ["garbage", "tcp://host:port"])
def test_a_malformed_scheduler_address_is_one_line_and_exits_at_once(tmp_path, address):
    """Issue 36.8: `--scheduler garbage` printed the right line, then hung 2 × the connect timeout in the Dask
    client's destructor and printed a TimeoutError traceback at exit. A subprocess, to see what happens at exit."""
    import subprocess
    import sys

    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "20s"}  # a hang would be 40 s: the timeout below catches it
    run = subprocess.run([sys.executable, "-m", "dni.cli", "--quiet", "sweep", *ARGS, "--out", str(tmp_path / "r.nc"), "--scheduler", address],
                         capture_output=True, text=True, env=env, timeout=35)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"dni: error: {address!r} is not a Dask scheduler address ("), run.stderr
    assert list(tmp_path.iterdir()) == []
