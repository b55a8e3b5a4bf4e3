"""Overhead of dni.noisify against the original torch module — ratios from one run.

    python benchmarks/bench_noisify.py [--seconds 3] [--rounds 3] [--threads 1]

For each user model (a 1-layer LSTM and GRU on MNIST rows, T = 28, I = 28, H = 128, + Linear head; a
2-layer bidirectional LSTM, H = 64) it measures samples/s of

* a training step (forward, backward, Adam) at batch 128: the original module, noisified at σ = 0
  (torch's own forward: no overhead by design), noisified at σ = 0.5 (the paper's additive noise:
  dni's input-projection path with autograd through the steps);
* inference (no grad) at batch 256: the original, noisified under ``eval_noise`` σ = 0, and σ = 0.5.

Ratio = noisified rate / original rate (1.0: no overhead; 0.5: twice the time). For reference, the
preset lstm28 (dni's own model, fused BPTT, :mod:`dni.nn.fused`) at σ = 0.5 on the same data.
The three variants of a row are measured interleaved, ``--rounds`` times each, and the best rate of each
is kept (on a shared machine the best round is the least disturbed one; the σ = 0 column, the very same
computation as the original, shows how much disturbance remains). Pin the threads; the load is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

import dni
from dni.nn.models import build_model


class Head(nn.Module):
    def __init__(self, kind, hidden, layers=1, bidirectional=False):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](28, hidden, num_layers=layers, bidirectional=bidirectional,
                                                        batch_first=True)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), 10)

    def forward(self, x):  # (B, 28, 28) → (B, 10)
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


MODELS = {"lstm H128": lambda: Head("lstm", 128), "gru H128": lambda: Head("gru", 128),
          "lstm 2-layer bidir H64": lambda: Head("lstm", 64, 2, True)}


def rate(step, items: int, seconds: float) -> float:
    step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += items
    return n / (time.perf_counter() - start)


def training_rate(model, seconds, batch=128) -> float:
    x, y = torch.rand(batch, 28, 28), torch.randint(0, 10, (batch,))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        loss = F.cross_entropy(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return rate(step, batch, seconds)


def inference_rate(model, seconds, sigma=None, batch=256) -> float:
    x = torch.rand(batch, 28, 28)
    model.eval()
    gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def step():
        if sigma is None:
            model(x)
        else:
            with dni.eval_noise("additive", sigma, gen):
                model(x)

    return rate(step, batch, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per variant, over all rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant; the best is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'model':<24} {'phase':<10} {'original/s':>10} {'σ=0/s':>9} {'ratio':>6} {'σ=0.5/s':>9} {'ratio':>6}")
    seconds = args.seconds / args.rounds

    def best(*measures):
        rates = [[m() for m in measures] for _ in range(args.rounds)]  # interleaved rounds
        return [max(r[i] for r in rates) for i in range(len(measures))]

    for name, make in MODELS.items():
        torch.manual_seed(0)
        original = make()
        zero, noisy = dni.noisify(original, sigma=0.0), dni.noisify(original, sigma=0.5)
        base, r0, r1 = best(*(lambda m=m: training_rate(m, seconds) for m in (original, zero, noisy)))
        print(f"{name:<24} {'train':<10} {base:10.0f} {r0:9.0f} {r0 / base:6.2f} {r1:9.0f} {r1 / base:6.2f}")
        base, r0, r1 = best(lambda: inference_rate(original, seconds), lambda: inference_rate(noisy, seconds, 0.0),
                            lambda: inference_rate(noisy, seconds, 0.5))
        print(f"{name:<24} {'inference':<10} {base:10.0f} {r0:9.0f} {r0 / base:6.2f} {r1:9.0f} {r1 / base:6.2f}")
    torch.manual_seed(0)
    preset = build_model("lstm28", 0.5)
    print(f"reference: preset lstm28 (fused BPTT) train at σ=0.5: {best(lambda: training_rate(preset, seconds))[0]:.0f}/s")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
