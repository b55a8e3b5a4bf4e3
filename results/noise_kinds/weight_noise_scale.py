"""Why additive Deep Noise Injection does not carry over to weight noise (issue 19, REPRODUCTION.md).

    python results/noise_kinds/weight_noise_scale.py [N_DIGITS]   # default 1000 full-MNIST test digits

Weight noise relative to max|W| (``weight_read``, ``programming``) puts on each gate pre-activation a
perturbation of std σ·max|W|·‖[h, x]‖₂ (exact for weight_read, in distribution, README Noise kinds), where
additive noise puts σ. For each committed additive lstm28 model (σtrain 0, 0.5, 0.7, 1.0), and each other
training kind's middle-strength model (output_relative 0.78, programming 0.1, weight_read 0.15), this prints,
from a noiseless pass over the first test digits: max|W| of the cell's product [W_hh W_ih] and its rms,
the mean ‖[h, x]‖₂ over steps and digits, and the resulting pre-activation noise std under weight_read
0.15 (its middle strength) — the additive σ that would be equivalent.
"""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from dni.data import load_sequences  # noqa: E402
from dni.noise.base import NOISELESS  # noqa: E402
from dni.store.checkpoints import load_checkpoint  # noqa: E402

SIGMA = 0.15  # weight_read's middle strength (strengths.json)


MODELS = [("additive", st, f"results/dni_paper_checkpoints/lstm28_sigma{st:.2f}_seed0.pt") for st in (0.0, 0.5, 0.7, 1.0)] + [
    (kind, st, f"results/noise_kinds/checkpoints/lstm28_{kind}_sigma{st:.2f}_seed0.pt")
    for kind, st in (("output_relative", 0.78), ("programming", 0.1), ("weight_read", 0.15))]


def scales(n: int = 1000) -> list[dict]:
    """Per model of MODELS: its training kind and σtrain, max|W|, rms(W), mean ‖[h, x]‖₂ and the equivalent additive σ."""
    torch.set_num_threads(1)
    x = load_sequences("mnist", "test", progress=False).x[:n]  # (N, T, I)
    rows = []
    for kind, st, path in MODELS:
        model = load_checkpoint(ROOT / path).model.eval()
        W = torch.cat([model.cell.weight_hh, model.cell.weight_ih], 1).detach()  # (G, H + I)
        _, trace = model.trace(x, noise=NOISELESS)  # noiseless: a model left alone runs under its own training noise
        h_prev = torch.cat([torch.zeros_like(trace.h[:, :1]), trace.h[:, :-1]], 1)  # (N, T, H): the h each step reads
        norm = torch.cat([h_prev, model._scaled(x)], -1).norm(dim=-1).mean().item()  # mean over (N, T): the input the product sees
        w_max = W.abs().max().item()
        rows.append({"train_noise": kind, "sigma_train": st, "w_max": w_max, "w_rms": W.pow(2).mean().sqrt().item(), "norm": norm,
                     "equivalent_sigma": SIGMA * w_max * norm})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| trained under | σtrain | max\\|W\\| | rms(W) | max/rms | mean ‖[h, x]‖₂ | σ·max\\|W\\|·‖[h, x]‖₂ at σ = 0.15 (equivalent additive σ) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['train_noise']} | {r['sigma_train']:g} | {r['w_max']:.2f} | {r['w_rms']:.3f} | {r['w_max'] / r['w_rms']:.0f} | {r['norm']:.2f} | "
              f"{r['equivalent_sigma']:.2f} |" for r in rows]
    return "\n".join(lines)


def main(n: int = 1000) -> None:
    print(f"lstm28, first {n} full-MNIST test digits, no noise; weight_read σ = {SIGMA}\n")
    print(markdown(scales(n)))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
