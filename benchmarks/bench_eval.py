"""Grid evaluation, shared vs per-point draws (issue 22): rates, variance reduction, profile.

One trained lstm28 (results/dni_paper_checkpoints/lstm28_sigma0.50_seed0.pt) is evaluated on the
paper's σval grid 0:1:0.1 × 40 repeats over --digits test digits, once with each draw scheme
(dni.noise.draws), in one run; printed:

* grid rate in sequence forwards/s (wall clock, and per CPU-second: the per-point scheme draws
  ahead on a second core, so on a machine full of one-thread processes CPU time is what counts) (10 noisy σval × 40 repeats × digits + the σval = 0 pass),
  shared / per-point, and against noise-free ``torch.nn.LSTM`` inference at batch 1024;
* the variance reduction: std over repeats of acc(σval_k+1) − acc(σval_k), averaged over the 10
  neighbouring pairs, per-point vs shared (same model, digits and repeats);
* a torch profile of one shared chunk (where the remaining time goes);
* the load average before and after (ratios on a busy machine are rough; absolute times count
  only on an otherwise idle machine).

  OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --threads 1   # one process per core, as the grid runs
  python benchmarks/bench_eval.py --device cuda                   # GPU: Philox generators, same scheme
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dni.data import load_sequences  # noqa: E402
from dni.noise.draws import DIGITS_PER_CHUNK, chunk_seed, shared_noisy_accuracy  # noqa: E402
from dni.evaluation.evaluate import evaluate  # noqa: E402
from dni.store.checkpoints import load_checkpoint  # noqa: E402

SIGMAS = [round(0.1 * k, 1) for k in range(11)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=512, help="test digits per grid (default 512)")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default="mnist" if os.environ.get("DNI_DATA_DIR") else "subset")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(args.threads or cores)
    load0 = os.getloadavg()
    print(f"machine: {cores} cores, {torch.get_num_threads()} torch threads, device {args.device}, torch {torch.__version__}; "
          f"load average before {load0[0]:.2f}")
    m = load_checkpoint(REPO / "results" / "dni_paper_checkpoints" / "lstm28_sigma0.50_seed0.pt")
    data = load_sequences(args.data, "test").take(slice(0, args.digits))
    R, D = args.repeats, len(data)
    forwards = (len(SIGMAS) - 1) * R * D + D

    ref = torch.nn.LSTM(28, 128, batch_first=True).to(args.device).eval()
    x = torch.rand(1024, 28, 28, device=args.device)
    with torch.no_grad():
        ref(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 5:
            ref(x)
            n += 1
        if args.device != "cpu":
            torch.cuda.synchronize()
    torch_rate = n * 1024 / (time.perf_counter() - t0)

    results, rates, cpu = {}, {}, {}
    for draws in ("per-point", "shared"):
        evaluate(m, [0.5], 2, data=data.take(slice(0, 64)), progress=False, draws=draws, device=args.device)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        ds = evaluate(m, SIGMAS, R, data=data, progress=False, draws=draws, device=args.device)
        rates[draws] = forwards / (time.perf_counter() - t0)
        cpu[draws] = forwards / (time.process_time() - c0)  # per CPU-second, all threads (the drawing thread too)
        results[draws] = ds.accuracy.values[0, 0]  # (σval, repeat)
    print(f"grid: lstm28 σtrain 0.5, σval 0:1:0.1 × {R} repeats × {D} digits ({args.data}) = {forwards} sequence forwards")
    print(f"  torch nn.LSTM inference, batch 1024 (noise-free)  {torch_rate:9.0f} sequences/s   1.00")
    for draws in ("per-point", "shared"):
        print(f"  dni grid, {draws:9s} draws                      {rates[draws]:9.0f} sequences/s   {rates[draws] / torch_rate:.2f}× torch")
    print(f"  shared / per-point: {rates['shared'] / rates['per-point']:.2f}× wall-clock; "
          f"{cpu['shared'] / cpu['per-point']:.2f}× per CPU-second ({cpu['per-point']:.0f} → {cpu['shared']:.0f} sequences per CPU-s; "
          "what a saturated machine running one process per core gains)")
    std = {k: np.diff(v[1:], axis=0).std(axis=1, ddof=1) for k, v in results.items()}  # σval 0.1…1: 9 noisy pairs
    print("variance reduction: std over repeats of acc(σval_k+1) − acc(σval_k), pairs 0.1–0.2 … 0.9–1.0 (percentage points)")
    for k in std:
        print(f"  {k:9s}: mean {100 * std[k].mean():.3f}  per pair {np.round(100 * std[k], 3).tolist()}")
    print(f"  per-point / shared std: {std['per-point'].mean() / std['shared'].mean():.2f}× "
          f"(variance {np.mean(std['per-point'] ** 2) / np.mean(std['shared'] ** 2):.1f}×)")

    from torch.profiler import profile
    chunk = data.take(slice(0, DIGITS_PER_CHUNK))
    with profile() as prof:
        shared_noisy_accuracy(m.model, chunk, SIGMAS[1:], R, lambda r, c: chunk_seed(0, "lstm28", 0.5, r, c), args.device)
    print("profile of one shared chunk (10 σval × 40 repeats × 128 digits):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    load1 = os.getloadavg()
    busy = max(load0[0], load1[0]) > 0.5 * cores
    print(f"load average after {load1[0]:.2f}" + ("  — the machine was busy: ratios are rough, absolute rates low" if busy else ""))


if __name__ == "__main__":
    main()
