"""The additive-trained models under additive inference noise for the noise-kind cross grid (issue 19),
taken from the committed paper grid instead of evaluated again.

    python results/noise_kinds/committed_points.py results/dni_paper.nc results/noise_kinds/additive__additive.nc 0,0.5,0.7,1

The committed points were evaluated with per-point draws seeded by (eval seed, arch, σtrain, σval,
repeat) (dni.evaluation.evaluate.repeat_seed), which is what `dni evaluate --draws per-point` of the same
checkpoints at the same σ would draw: the same numbers (tests/test_committed_results.py re-evaluates
committed points bit for bit). Writes lstm28 at those σtrain × σval, with the noise pair and the
draw scheme in the attrs; refuses to replace an existing file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from dni.store.results import load_results, save_results  # noqa: E402


def main(source, target, sigmas):
    target = Path(target)
    if target.exists():
        sys.exit(f"{target} exists; delete it first to write it again")
    values = [float(s) for s in sigmas.split(",")]
    ds = load_results(source).sel(arch=["lstm28"], sigma_train=values, sigma_val=values)
    ds.attrs.update(train_noise="additive", eval_noise="additive", draws="per-point",
                    source=f"the committed points of {source} (per-point draws: what dni evaluate --draws per-point gives)")
    save_results(ds.load(), target)
    print(f"wrote {target}: lstm28 σtrain × σval {values} from {source}")


if __name__ == "__main__":
    main(*sys.argv[1:])
