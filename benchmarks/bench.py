"""Throughput of dni's noisy recurrences against fused, noise-free torch.nn — ratios from one run.

    python benchmarks/bench.py [--seconds 5] [--device cpu|cuda] [--skip-batched]

Training: samples/s of one optimiser step (forward, backward, Adam) at batch 128 for
  * plain:   the readable noisy cell stepped in Python with autograd (dni.cells),
  * dni:     the default path (fused BPTT, dni.fused, noise drawn ahead in a thread),
  * torch:   torch.nn.LSTM / nn.RNN (noise-free, fused), same batch and hidden size,
  * batched: the 11 σtrain models trained together (dni.batched) vs the 11 one after another.
Evaluation: noisy sequence forwards/s of lstm28 at σval = 0.5 with 40 repeats batched
(dni.evaluate.noisy_accuracy) vs torch.nn.LSTM inference at batch 1024, with GFLOP/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F

from dni.batched import StackedClassifier
from dni.data import SequenceData
from dni.evaluate import noisy_accuracy
from dni.models import build_model
from dni.noise import AdditiveGaussian, PerModelGaussian, PrefetchedGaussian, prefetch_pays_off

B, T, I, H, C = 128, 28, 28, 128, 10


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


def training_rates(preset: str, seconds: float, device: str, batched: bool) -> dict:
    x = torch.rand(B, T, I, device=device)
    y = torch.randint(0, C, (B,), device=device)
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

    results["torch"] = rate(torch_step, B, seconds)

    model = build_model(preset, 0.5).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    opt_m = torch.optim.Adam(model.parameters())

    def plain_step():
        loss = F.cross_entropy(model.forward_reference(x, generator=gen), y)
        opt_m.zero_grad()
        loss.backward()
        opt_m.step()

    results["plain"] = rate(plain_step, B, seconds)

    prefetch = prefetch_pays_off()  # what train() does on this machine
    noise = PrefetchedGaussian(0.5, gen, endless(model.training_noise_shapes(B, T)), device=device) if prefetch else AdditiveGaussian(0.5)

    def dni_step():
        loss = F.cross_entropy(model(x, noise=noise, generator=gen), y)
        opt_m.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt_m.step()

    results["dni"] = rate(dni_step, B, seconds)
    if prefetch:
        noise.close()

    if batched:
        sigmas = [round(0.1 * i, 1) for i in range(11)]
        stacked = StackedClassifier([build_model(preset, s) for s in sigmas], sigmas).to(device)
        opt_s = torch.optim.Adam(stacked.parameters())
        noise_s = (PrefetchedGaussian(stacked.sigmas, gen, endless(stacked.noise_shapes(B, T)), device=device) if prefetch
                   else PerModelGaussian(stacked.sigmas, gen))

        def batched_step():
            logits = stacked(x, noise_s)
            losses = F.cross_entropy(logits.transpose(1, 2), y.expand(len(sigmas), -1), reduction="none").mean(1)
            opt_s.zero_grad()
            losses.sum().backward()
            stacked.clip_grad_norm_(5.0)
            opt_s.step()

        results["batched"] = rate(batched_step, B * len(sigmas), seconds)  # model-samples/s
        if prefetch:
            noise_s.close()
    return results


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
    args = parser.parse_args()
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), {dev}, torch {torch.__version__}, "
          f"device {args.device}; noise drawn {'ahead in a thread' if prefetch_pays_off() else 'inline'}")
    print(f"{'training, batch 128':38s} {'samples/s':>10s} {'× torch':>8s}")
    for preset in ("lstm28", "rnn28"):
        r = training_rates(preset, args.seconds, args.device, not args.skip_batched)
        name = "nn.LSTM" if preset == "lstm28" else "nn.RNN"
        print(f"  {preset}: torch {name} (noise-free, fused)  {r['torch']:10.0f} {1:8.2f}")
        print(f"  {preset}: plain noisy cell, σ=0.5       {r['plain']:10.0f} {r['plain'] / r['torch']:8.2f}")
        print(f"  {preset}: dni fast path, σ=0.5          {r['dni']:10.0f} {r['dni'] / r['torch']:8.2f}")
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
