"""The numbers of the noise-kind experiment (issue 19, item 5) as Markdown, for FINDINGS.md.

    python results/noise_kinds/findings.py results/noise_kinds.nc results/noise_kinds/adc_bits*.nc

Prints (1) the cross table: each train kind's model at its middle strength (and the conventional
σtrain = 0 model) under each eval kind at its three strengths, mean accuracy over the repeats ± its
standard error; (2) per eval kind, which train kind keeps the most accuracy at the middle and top
strengths; (3) per additive-trained model, its accuracy at each ADC resolution and the fewest bits
that keep it within 1 point of its noiseless accuracy. Strengths come from ``strengths.json``.
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from dni.results import load_results, noise_of, select_noise  # noqa: E402


def point(ds, train, evaluation, sigma_train, sigma_val):
    """(mean, standard error) in % of one point of the cross grid, or None if it is not there."""
    if train not in ds.train_noise.values or evaluation not in ds.eval_noise.values:
        return None  # that row or column of the grid is not evaluated (yet)
    view = select_noise(ds, train, evaluation)
    if sigma_train not in view.sigma_train.values or sigma_val not in view.sigma_val.values:
        return None
    acc = view.accuracy.sel(arch="lstm28", sigma_train=sigma_train, sigma_val=sigma_val).values * 100
    acc = acc[~np.isnan(acc)]
    return (acc.mean(), acc.std(ddof=1) / np.sqrt(len(acc)) if len(acc) > 1 else 0.0) if len(acc) else None


def fmt(p):
    return "—" if p is None else f"{p[0]:.1f} ± {p[1]:.2f}"


def main(merged_path, *adc_paths):
    strengths = json.loads((HERE / "strengths.json").read_text())["strengths"]
    kinds = list(strengths)
    ds = load_results(merged_path)
    rows = [("additive", 0.0, "conventional (σtrain 0)")] + [(t, strengths[t][1], f"{t} σtrain {strengths[t][1]:g}") for t in kinds]
    print("## Cross table: accuracy (%) — rows: training noise at its middle strength; columns: inference noise and strength\n")
    header = [f"{e} {s:g}" for e in kinds for s in strengths[e]]
    print("| trained under | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for t, st, label in rows:
        print(f"| {label} | " + " | ".join(fmt(point(ds, t, e, st, s)) for e in kinds for s in strengths[e]) + " |")
    print("\n## Every model under every inference noise at its middle strength, accuracy (%)\n")
    every = [("additive", st) for st in [0.0] + strengths["additive"]] + [(t, st) for t in kinds[1:] for st in strengths[t]]
    print("| trained under | σtrain | noiseless | " + " | ".join(f"{e} {strengths[e][1]:g}" for e in kinds) + " |")
    print("|---" * (len(kinds) + 3) + "|")
    for t, st in every:
        clean = next((p for p in (point(ds, t, e, st, 0.0) for e in kinds) if p is not None), None)
        print(f"| {t} | {st:g} | {fmt(clean)} | " + " | ".join(fmt(point(ds, t, e, st, strengths[e][1])) for e in kinds) + " |")
    print("\n## Best protection per inference noise (middle and top strength)\n")
    for e in kinds:
        for level in (1, 2):
            sv = strengths[e][level]
            scores = {label: point(ds, t, e, st, sv) for t, st, label in rows[1:]}
            scores = {k: v for k, v in scores.items() if v is not None}
            if scores:
                best = max(scores, key=lambda k: scores[k][0])
                print(f"- {e} at {sv:g}: best {best} ({fmt(scores[best])}); " +
                      ", ".join(f"{k} {fmt(v)}" for k, v in scores.items() if k != best))
    if adc_paths:
        print("\n## ADC resolution (no other noise), accuracy (%) of the additive-trained models\n")
        by_bits = {}
        for path in adc_paths:
            part = load_results(path)
            bits = int(noise_of(part)["eval_noise"].split("bits=")[1].split(",")[0])
            by_bits[bits] = part.accuracy.sel(arch="lstm28", sigma_val=0.0).mean("seed") * 100
        bits = sorted(by_bits)
        clean = select_noise(ds, "additive", "additive").accuracy.sel(arch="lstm28", sigma_val=0.0).mean("seed") * 100
        print("| σtrain | noiseless | " + " | ".join(f"{b} bits" for b in bits) + " | fewest bits within 1 point |")
        print("|---" * (len(bits) + 3) + "|")
        for st in by_bits[bits[0]].sigma_train.values:
            accs = [float(by_bits[b].sel(sigma_train=st)) for b in bits]
            if st not in clean.sigma_train.values:
                print(f"| {st:g} | — | " + " | ".join(f"{a:.1f}" for a in accs) + " | — |")
                continue
            ref = float(clean.sel(sigma_train=st))
            enough = next((b for b, a in zip(bits, accs) if a >= ref - 1.0), None)
            print(f"| {st:g} | {ref:.1f} | " + " | ".join(f"{a:.1f}" for a in accs) + f" | {enough if enough else '> ' + str(bits[-1])} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
