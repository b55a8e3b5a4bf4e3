"""Throughput of dni's noisy recurrences against fused, noise-free torch.nn — ratios from one run.

    python benchmarks/bench.py [--seconds 5] [--device cpu|cuda] [--skip-batched] [--batch-size 128]

Training: samples/s of one optimiser step (forward, backward, Adam) at batch 128 (--batch-size) for
  * plain:   the readable noisy cell stepped in Python with autograd (dni.nn.cells),
  * dni:     the default path (fused BPTT, dni.nn.fused, noise drawn ahead in a thread),
  * torch:   torch.nn.LSTM / nn.RNN (noise-free, fused), same batch and hidden size,
  * batched: the 11 σtrain models trained together (dni.training.batched) vs the 11 one after another,
  * processes: dni's step in one process per core, one torch thread each, side by side (sweeps
    sharing a checkpoint folder under OMP_NUM_THREADS=1), summed, vs one process using every core.
Evaluation: noisy sequence forwards/s of lstm28 at σval = 0.5 with 40 repeats batched
(dni.evaluation.evaluate.noisy_accuracy) vs torch.nn.LSTM inference at batch 1024, with GFLOP/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time

import torch
import torch.nn.functional as F

from dni.nn.stacked import StackedClassifier
from dni.data import SequenceData
from dni.evaluation.evaluate import noisy_accuracy
from dni.nn.models import build_model
from dni.noise.base import AdditiveGaussian, PerModelGaussian, PrefetchedGaussian, prefetch_pays_off

T, I, H, C = 28, 28, 128, 10


def rate(step, items_per_step: int, seconds: float) -> float:
    for _ in range(3):
        step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += items_per_step
    return n / (time.perf_counter() - start)


def forward_flops(cell: str) -> float:
    """Multiply-adds ×2 of one sequence forward: T steps of W·[h, x] plus the FC layer."""
    gates = 4 if cell == "lstm" else 1
    return T * 2 * (I + H) * gates * H + 2 * H * C


def endless(shapes_of_one_step):
    while True:
        yield from shapes_of_one_step


def training_rates(preset: str, seconds: float, device: str, batched: bool, batch: int) -> dict:
    x = torch.rand(batch, T, I, device=device)
    y = torch.randint(0, C, (batch,), device=device)
    results = {}

    TorchRNN = torch.nn.LSTM if preset == "lstm28" else torch.nn.RNN
    ref, fc = TorchRNN(I, H, batch_first=True).to(device), torch.nn.Linear(H, C).to(device)
    opt = torch.optim.Adam([*ref.parameters(), *fc.parameters()])

    def torch_step():
        out, _ = ref(x)
        loss = F.cross_entropy(fc(out[:, -1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    results["torch"] = rate(torch_step, batch, seconds)

    model = build_model(preset, 0.5).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    opt_m = torch.optim.Adam(model.parameters())

    def plain_step():
        loss = F.cross_entropy(model.forward_reference(x, generator=gen), y)
        opt_m.zero_grad()
        loss.backward()
        opt_m.step()

    results["plain"] = rate(plain_step, batch, seconds)

    results["dni"] = dni_training_rate(preset, seconds, device, batch)
    prefetch = prefetch_pays_off()  # what train() does on this machine

    if batched:
        sigmas = [round(0.1 * i, 1) for i in range(11)]
        stacked = StackedClassifier([build_model(preset, s) for s in sigmas], sigmas).to(device)
        opt_s = torch.optim.Adam(stacked.parameters())
        noise_s = (PrefetchedGaussian(stacked.sigmas, gen, endless(stacked.noise_shapes(batch, T)), device=device) if prefetch
                   else PerModelGaussian(stacked.sigmas, gen))

        def batched_step():
            logits = stacked(x, noise_s)
            losses = F.cross_entropy(logits.transpose(1, 2), y.expand(len(sigmas), -1), reduction="none").mean(1)
            opt_s.zero_grad()
            losses.sum().backward()
            stacked.clip_grad_norm_(5.0)
            opt_s.step()

        results["batched"] = rate(batched_step, batch * len(sigmas), seconds)  # model-samples/s
        if prefetch:
            noise_s.close()
    return results


def dni_training_rate(preset: str, seconds: float, device: str, batch: int, barrier=None) -> float:
    """Samples/s of dni's default training step (fused BPTT, noise drawn as train() draws it) at σ = 0.5."""
    x = torch.rand(batch, T, I, device=device)
    y = torch.randint(0, C, (batch,), device=device)
    model = build_model(preset, 0.5).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    opt = torch.optim.Adam(model.parameters())
    prefetch = prefetch_pays_off()  # what train() does here
    noise = PrefetchedGaussian(0.5, gen, endless(model.training_noise_shapes(batch, T)), device=device) if prefetch else AdditiveGaussian(0.5)

    def dni_step():
        loss = F.cross_entropy(model(x, noise=noise, generator=gen), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    if barrier is not None:  # processes measured side by side start together
        dni_step()
        barrier.wait()
    result = rate(dni_step, batch, seconds)
    if prefetch:
        noise.close()
    return result


def _one_thread_worker(preset, seconds, batch, barrier, results):
    torch.set_num_threads(1)
    results.put(dni_training_rate(preset, seconds, "cpu", batch, barrier))


def one_thread_processes_rate(preset: str, seconds: float, processes: int, batch: int) -> float:
    """Samples/s summed over ``processes`` side-by-side training processes of one torch thread each
    (as sweeps sharing a checkpoint folder under OMP_NUM_THREADS=1 run)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_one_thread_worker, args=(preset, seconds, batch, barrier, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    total = sum(results.get() for _ in workers)
    for w in workers:
        w.join()
    return total


def evaluation_rates(seconds: float, device: str) -> dict:
    ref = torch.nn.LSTM(I, H, batch_first=True).to(device).eval()
    x = torch.rand(1024, T, I, device=device)

    @torch.no_grad()
    def torch_step():
        ref(x)

    results = {"torch": rate(torch_step, 1024, seconds)}
    model = build_model("lstm28").to(device).eval()
    data = SequenceData(torch.rand(2048, T, I), torch.randint(0, C, (2048,)), torch.zeros(2048, 28, 28, dtype=torch.uint8))
    repeats = 40
    gens = [torch.Generator(device=device).manual_seed(r) for r in range(repeats)]
    results["dni"] = rate(lambda: noisy_accuracy(model, data, 0.5, gens, repeats, device), len(data) * repeats, seconds)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per entry")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-batched", action="store_true")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch (dni sweep's default is 64)")
    args = parser.parse_args()
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), {dev}, torch {torch.__version__}, "
          f"device {args.device}; noise drawn {'ahead in a thread' if prefetch_pays_off() else 'inline'}")
    print(f"{f'training, batch {args.batch_size}':38s} {'samples/s':>10s} {'× torch':>8s}")
    for preset in ("lstm28", "rnn28"):
        r = training_rates(preset, args.seconds, args.device, not args.skip_batched, args.batch_size)
        name = "nn.LSTM" if preset == "lstm28" else "nn.RNN"
        print(f"  {preset}: torch {name} (noise-free, fused)  {r['torch']:10.0f} {1:8.2f}")
        print(f"  {preset}: plain noisy cell, σ=0.5       {r['plain']:10.0f} {r['plain'] / r['torch']:8.2f}")
        print(f"  {preset}: dni fast path, σ=0.5          {r['dni']:10.0f} {r['dni'] / r['torch']:8.2f}")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)  # (not on macOS)
        if args.device == "cpu" and cores > 1:
            r["processes"] = one_thread_processes_rate(preset, args.seconds, cores, args.batch_size)
            print(f"  {preset}: {cores} processes × 1 thread, summed  {r['processes']:10.0f} {r['processes'] / r['torch']:8.2f}"
                  f"   = {r['processes'] / r['dni']:.2f}× one process")
        if "batched" in r:
            print(f"  {preset}: 11 models batched (model-samples/s) {r['batched']:6.0f} {r['batched'] / r['torch']:8.2f}"
                  f"   = {r['batched'] / r['dni']:.2f}× the 11 trained one after another")
    e = evaluation_rates(args.seconds, args.device)
    fl = forward_flops("lstm")
    print("evaluation, lstm28 sequences/s")
    print(f"  torch nn.LSTM inference, batch 1024 (noise-free) {e['torch']:10.0f}  {e['torch'] * fl / 1e9:6.1f} GFLOP/s")
    print(f"  dni σval=0.5, 40 repeats batched               {e['dni']:10.0f}  {e['dni'] * fl / 1e9:6.1f} GFLOP/s   {e['dni'] / e['torch']:.2f}× torch")
    grid = 11 * 10 * 40 * 10_000 + 11 * 10_000  # σval = 0 once per model
    print(f"  full lstm28 grid (11 models × 11 σval × 40 repeats × 10k digits) at this rate: {grid / e['dni'] / 60:.0f} min")


if __name__ == "__main__":
    main()
