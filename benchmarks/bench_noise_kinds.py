"""Cost of each noise kind (dni.noise.kinds) against the paper's additive fast path — ratios from one run.

    python benchmarks/bench_noise_kinds.py [--seconds 3] [--threads 1] [--preset lstm28]

Training: samples/s of one optimiser step (forward, backward, Adam) at batch 128 under each kind
at strength 0.1 (quantisers: 8 bits) vs the additive kind (fused BPTT, dni.nn.fused).
Evaluation: noisy sequence forwards/s with 40 repeats batched (dni.evaluation.evaluate.noisy_accuracy) on
512 digits under each kind vs the additive kind. Issue 19's goal: every kind ≤ 1.5× the additive
path's time (ratio ≥ 0.67 here). Pin the threads (--threads) and run on a quiet machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from dni.data import SequenceData
from dni.evaluation.evaluate import noisy_accuracy
from dni.nn.models import build_model
from dni.nn.presets import get_preset

KINDS = ["additive", "output_relative", "weight_read", "programming", "dac(bits=8,bound=1)", "adc(bits=8,bound=10)",
         "programming+weight_read+adc(bits=8,bound=10)"]
SIGMA = 0.1


def rate(step, items: int, seconds: float) -> float:
    step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += items
    return n / (time.perf_counter() - start)


def training_rate(preset: str, kind: str, seconds: float, batch: int = 128) -> float:
    p = get_preset(preset)
    torch.manual_seed(0)
    model = build_model(preset, SIGMA, train_noise=kind)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, p.steps, p.input_size), torch.randint(0, 10, (batch,))
    gen = torch.Generator().manual_seed(1)

    def step():
        loss = F.cross_entropy(model(x, generator=gen), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return rate(step, batch, seconds)


def evaluation_rate(preset: str, kind: str, seconds: float, digits: int = 512, repeats: int = 40) -> float:
    p = get_preset(preset)
    model = build_model(preset).eval()
    data = SequenceData(torch.rand(digits, p.steps, p.input_size), torch.randint(0, 10, (digits,)), torch.zeros(digits, 28, 28, dtype=torch.uint8))
    gens = [torch.Generator().manual_seed(r) for r in range(repeats)]
    return rate(lambda: noisy_accuracy(model, data, SIGMA, gens, repeats, eval_noise=kind), digits * repeats, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: pin, for comparable ratios)")
    parser.add_argument("--preset", default="lstm28")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} torch thread(s); {args.preset}, strength {SIGMA}")
    print(f"{'kind':48s} {'train samples/s':>16s} {'× additive':>10s} {'eval seq/s':>12s} {'× additive':>10s}")
    base = None
    for kind in KINDS:
        train, evaluate = training_rate(args.preset, kind, args.seconds), evaluation_rate(args.preset, kind, args.seconds)
        base = base or (train, evaluate)
        print(f"{kind:48s} {train:16.0f} {train / base[0]:10.2f} {evaluate:12.0f} {evaluate / base[1]:10.2f}")


if __name__ == "__main__":
    main()
