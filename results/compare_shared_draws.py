"""Compare a re-evaluation with shared draws against the committed per-point numbers (issue 22, item 3).

  python results/compare_shared_draws.py results/sweeps/lstm28_shared_draws.nc results/dni_paper.nc

Per (arch, σtrain, σval) point both files hold with all repeats: Δ = mean_shared − mean_committed
and its standard error SE = sqrt(s²_shared/R_shared + s²_committed/R_committed) (sample std over
repeats; the two evaluations are independent). A point passes when |Δ| < 3·SE, or when both are
exact (SE = 0, e.g. σval = 0, which draws nothing: Δ must then be 0). Prints the table and the count.

  python results/compare_shared_draws.py NEW OLD --markdown   # the summary REPRODUCTION.md quotes

``--markdown`` prints instead: the count, the largest |Δ|/SE, Δ per (σtrain, σval) as a table, and the
variance reduction on the whole grid (std over repeats of acc(σval_k+1) − acc(σval_k), per model,
committed per-point vs shared).
"""

import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from dni.store.results import draws_of, load_results  # noqa: E402


def compare(new_path, old_path, k: float = 3.0):
    new, old = load_results(new_path), load_results(old_path)
    print(f"{new_path}: draws {draws_of(new)}; {old_path}: draws {draws_of(old)}; test |Δ| < {k:g} SE")
    rows, passed = [], 0
    for arch in new.arch.values:
        for st in new.sigma_train.values:
            for sv in new.sigma_val.values:
                a = new.accuracy.sel(arch=arch, sigma_train=st, sigma_val=sv).values
                if np.isnan(a).any() or arch not in old.arch.values or st not in old.sigma_train.values or sv not in old.sigma_val.values:
                    continue
                b = old.accuracy.sel(arch=arch, sigma_train=st, sigma_val=sv).values
                b = b[~np.isnan(b)]
                delta = a.mean() - b.mean()
                se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
                ok = abs(delta) < k * se if se > 0 else delta == 0
                passed += ok
                rows.append((arch, st, sv, 100 * a.mean(), 100 * b.mean(), 100 * delta, 100 * se, ok))
    print(f"{'arch':8s} {'σtrain':>6s} {'σval':>5s} {'shared %':>9s} {'committed %':>11s} {'Δ pp':>7s} {'SE pp':>6s}  pass")
    for arch, st, sv, x, y, d, se, ok in rows:
        print(f"{arch:8s} {st:6.1f} {sv:5.1f} {x:9.2f} {y:11.2f} {d:7.3f} {se:6.3f}  {'yes' if ok else 'NO'}")
    print(f"{passed} of {len(rows)} points pass |Δ| < {k:g} SE")
    return passed, len(rows)


def markdown(new_path, old_path, k: float = 3.0):
    new, old = load_results(new_path), load_results(old_path)
    arch = str(new.arch.values[0])
    a = new.accuracy.sel(arch=arch) * 100  # (σtrain, σval, seed)
    b = old.accuracy.sel(arch=arch, sigma_train=a.sigma_train, sigma_val=a.sigma_val) * 100
    complete = ~np.isnan(a).any("seed")
    delta = (a.mean("seed") - b.mean("seed")).where(complete)
    se = np.sqrt(a.var("seed", ddof=1) / a.sizes["seed"] + b.var("seed", ddof=1) / b.sizes["seed"])
    noisy = complete & (a.sigma_val > 0)
    ratio = (abs(delta) / se).where(noisy)
    exact = complete & (a.sigma_val == 0)
    print(f"{arch}: {int(noisy.sum())} noisy points re-evaluated with shared draws, "
          f"{int((ratio < k).sum())} of them within {k:g} SE of the committed per-point value "
          f"(largest |Δ|/SE {float(ratio.max()):.2f}, median {float(ratio.median()):.2f}); "
          f"σval = 0: {int((delta.where(exact) == 0).sum())} of {int(exact.sum())} identical.\n")
    print("Δ = shared − committed, mean over 40 repeats, in points (σtrain rows, σval columns; — not yet evaluated):\n")
    svals = [v for v in a.sigma_val.values if v > 0]
    print("| σtrain | " + " | ".join(f"{v:g}" for v in svals) + " |")
    print("|---" * (len(svals) + 1) + "|")
    for st in a.sigma_train.values:
        cells = [delta.sel(sigma_train=st, sigma_val=v).item() for v in svals]
        print(f"| {st:g} | " + " | ".join("—" if np.isnan(c) else f"{c:+.2f}" for c in cells) + " |")
    # variance reduction: neighbouring noisy σval of one model, both complete
    diffs = {}
    for name, acc in (("per-point (committed)", b), ("shared", a)):
        stds = []
        for st in a.sigma_train.values:
            for lo, hi in zip(svals[:-1], svals[1:]):
                if bool(complete.sel(sigma_train=st, sigma_val=lo)) and bool(complete.sel(sigma_train=st, sigma_val=hi)):
                    stds.append(float((acc.sel(sigma_train=st, sigma_val=hi) - acc.sel(sigma_train=st, sigma_val=lo)).std(ddof=1)))
        diffs[name] = np.array(stds)
    n = len(diffs["shared"])
    if n:
        pp, sh = diffs["per-point (committed)"], diffs["shared"]
        print(f"\nStd over repeats of acc(σval_k+1) − acc(σval_k), over the {n} neighbouring pairs of noisy σval: "
              f"per-point {pp.mean():.3f} points, shared {sh.mean():.3f} points — {pp.mean() / sh.mean():.2f}× less "
              f"(variance {np.mean(pp ** 2) / np.mean(sh ** 2):.1f}× less).")


if __name__ == "__main__":
    args = [x for x in sys.argv[1:] if x != "--markdown"]
    (markdown if "--markdown" in sys.argv else compare)(args[0], args[1])
