"""Compare a re-evaluation with shared draws against the committed per-point numbers (issue 22, item 3).

  python results/compare_shared_draws.py results/sweeps/lstm28_shared_draws.nc results/dni_paper.nc

Per (arch, σtrain, σval) point both files hold with all repeats: Δ = mean_shared − mean_committed
and its standard error SE = sqrt(s²_shared/R_shared + s²_committed/R_committed) (sample std over
repeats; the two evaluations are independent). A point passes when |Δ| < 3·SE, or when both are
exact (SE = 0, e.g. σval = 0, which draws nothing: Δ must then be 0). Prints the table and the count.
"""

import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from dni.results import draws_of, load_results  # noqa: E402


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


if __name__ == "__main__":
    compare(sys.argv[1], sys.argv[2])
