"""Sweeps on Dask (issue 20): one process vs ``--workers 2``, and the scheduler's cost per task.

    python benchmarks/bench_dask.py [--epochs 2] [--workers-list 1,2,4] [--tiny-tasks 200]

1. The same small sweep — subset, lstm28 and rnn28, σtrain 0, 0.5, 1 (6 models), 11 σval × 10
   repeats — in this process (the default path, torch's own thread count) and on a Dask
   LocalCluster of 2 one-thread workers (the cluster's start included), both through
   :func:`dni.experiments.sweep.run_sweep`, so neither pays an interpreter start the other does not. Prints
   the wall times and their ratio (issue 20's goal: ≥ 1.3× on 2 cores) and the workers' time
   outside task compute per task (scheduling, transfers, the client writing files, and idle
   waiting at the end of a preset), from Dask's task stream. (The numbers equal a one-thread
   process's bit for bit, tests/test_distributed.py; the default path's torch threads give other
   weights, so they are not compared here.)
2. Per-task overhead on a tiny model: a LocalCluster of N workers runs K tasks that each make
   one noisy forward pass of rnn28 on 16 digits (about a millisecond); overhead per task =
   (N × wall − K × in-process time of one task) / K, against a 30 s training epoch.

Run it without OMP_NUM_THREADS (the default path uses torch's thread count; Dask sets one thread per
worker) on a machine as quiet as you can get, and report the load (``uptime``) beside the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

PRESETS = ("lstm28", "rnn28")
SWEEP = dict(sigma_train=[0.0, 0.5, 1.0], sigma_val=[round(0.1 * i, 1) for i in range(11)], repeats=10, data="subset")


def sweep_both(folder: Path, epochs: int, client=None) -> dict:
    from dni.experiments.sweep import run_sweep

    folder.mkdir()
    return {p: run_sweep(preset=p, epochs=epochs, out=folder / f"{p}.nc", progress=False, log=lambda m: None, client=client, **SWEEP)
            for p in PRESETS}


def tiny_task(seed: int) -> int:
    """One noisy forward of rnn28 on 16 digits (a task with almost no work)."""
    import torch

    from dni.nn.models import build_model

    torch.set_num_threads(1)
    model = build_model("rnn28", 0.0)
    x = torch.rand(16, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return int(model(x, noise=0.1, generator=torch.Generator().manual_seed(seed)).argmax(1).sum())


def tiny_overhead(workers: int, tasks: int, one_task: float) -> tuple[float, float]:
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.gather(client.map(tiny_task, range(workers * 4), pure=False))  # warm: torch and dni imported on every worker
        start = time.perf_counter()
        client.gather(client.map(tiny_task, range(tasks), pure=False))
        wall = time.perf_counter() - start
    return wall, (workers * wall - tasks * one_task) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per model (default 2)")
    parser.add_argument("--workers-list", default="1,2,4", help="LocalCluster sizes of the tiny-model run (default 1,2,4)")
    parser.add_argument("--tiny-tasks", type=int, default=200)
    args = parser.parse_args()
    from distributed import get_task_stream

    from dni.experiments.dask_cluster import open_cluster

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads in this process; load before: {os.getloadavg()[0]:.2f}")
    print(f"sweep (subset, {', '.join(PRESETS)}, 6 models × {args.epochs} epochs, 11 σval × 10 repeats):", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        threads = torch.get_num_threads()
        start = time.perf_counter()
        sweep_both(tmp / "one", args.epochs)
        one_wall = time.perf_counter() - start
        print(f"  one process ({threads} threads): {one_wall:6.1f} s   (load {os.getloadavg()[0]:.2f})", flush=True)
        start = time.perf_counter()
        with open_cluster(workers=2, log=lambda m: None) as cluster:
            up = time.perf_counter() - start
            with get_task_stream(cluster.client) as stream:
                sweep_both(tmp / "two", args.epochs, client=cluster)
            two_wall = time.perf_counter() - start
            computing = sum(s["stop"] - s["start"] for t in stream.data for s in t["startstops"] if s["action"] == "compute")
            tasks = len(stream.data)
    print(f"  --workers 2:                {two_wall:6.1f} s (cluster start {up:.1f} s)   ratio {one_wall / two_wall:.2f}×   "
          f"(load {os.getloadavg()[0]:.2f})")
    print(f"  {tasks} tasks, {computing:.1f} s of task compute; worker time outside it: "
          f"{(2 * (two_wall - up) - computing) / tasks:.2f} s per task (scheduling, transfers, client writes, idle at the end)",
          flush=True)

    one_task = min(timed(tiny_task) for _ in range(20))
    print(f"tiny task (rnn28 forward, 16 digits): {one_task * 1e3:.2f} ms in this process")
    for n in (int(w) for w in args.workers_list.split(",")):
        wall, overhead = tiny_overhead(n, args.tiny_tasks, one_task)
        print(f"  LocalCluster of {n}: {args.tiny_tasks} tasks in {wall:.2f} s; overhead {overhead * 1e3:.1f} ms per task "
              f"= {overhead / 30 * 100:.3f} % of a 30 s epoch")
    print(f"load after: {os.getloadavg()[0]:.2f}")


def timed(fn) -> float:
    start = time.perf_counter()
    fn(0)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
