"""The committed result set, re-derived from the committed checkpoints on full MNIST (issue 25, item 1).

results/dni_paper.nc must be what its checkpoints give: every clean point (σval = 0, one
deterministic pass) and, for a few noisy points, a few of the 40 repeats (each repeat draws from its
own generator, seeded from (eval seed, arch, σtrain, σval, r), so any subset of repeats can be
re-run alone). Bit for bit with the torch version the results were made with (README
"Reproducibility"; results/README.md names it); with another torch, floating-point rounding may
move a number, and the test then allows one standard error of the committed point.
"""

import math
import re

import numpy as np
import pytest
import torch
from conftest import REPO, needs_full_mnist

from dni.data import load_sequences
from dni.evaluation.evaluate import evaluate, noisy_accuracy, repeat_seed
from dni.nn.presets import get_preset
from dni.store.checkpoints import load_checkpoint
from dni.store.results import load_results

pytestmark = needs_full_mnist

RESULTS = REPO / "results"
CHECKPOINTS = RESULTS / "dni_paper_checkpoints"
TORCH_OF_RESULTS = re.search(r"torch (\d+\.\d+\.\d+)", (RESULTS / "README.md").read_text(encoding="utf-8")).group(1)
SAME_TORCH = torch.__version__.split("+")[0] == TORCH_OF_RESULTS

# (preset, σtrain, σval, repeats re-run): each preset, where inference noise moves the accuracy most
NOISY_POINTS = [("lstm28", 0.0, 1.0, [0, 39]), ("rnn28", 1.0, 0.5, [0, 17, 39]), ("lstm_stroke50", 0.9, 1.0, [39])]


@pytest.fixture(scope="module")
def paper():
    return load_results(RESULTS / "dni_paper.nc")


@pytest.fixture(scope="module")
def test_sets():
    return {kind: load_sequences("mnist", "test", kind, progress=False) for kind in ("rows", "strokes")}


def assert_reproduced(ours, committed, standard_error, what):
    if SAME_TORCH:
        np.testing.assert_array_equal(ours, committed, err_msg=f"{what}: not bit for bit (torch {torch.__version__})")
    else:
        assert np.all(np.abs(np.asarray(ours) - committed) <= standard_error), (what, ours, committed, standard_error)


def test_every_clean_point_is_what_its_checkpoint_gives(paper, test_sets):
    """All 33 models at σval = 0 on the 10,000 test digits: accuracy and loss, as committed."""
    models = [load_checkpoint(CHECKPOINTS / f"{arch}_sigma{st:.2f}_seed0.pt")
              for arch in paper.arch.values.tolist() for st in paper.sigma_train.values]
    assert len(models) == 33
    ours = {}
    for kind, data in test_sets.items():  # one evaluate() per test set: all models of its presets
        mine = [m for m in models if get_preset(m.arch).data == kind]
        ours[kind] = evaluate(mine, [0.0], repeats=1, data=data, seed=int(paper.attrs["eval_seed"]), progress=False)
    n = int(paper.attrs["test_size"])
    for arch in paper.arch.values.tolist():
        ds = ours[get_preset(arch).data].sel(arch=arch, sigma_val=0.0, seed=0)
        committed = paper.sel(arch=arch, sigma_val=0.0, seed=0)
        np.testing.assert_array_equal(ds.sigma_train.values, committed.sigma_train.values)
        acc = committed.accuracy.values
        assert_reproduced(ds.accuracy.values, acc, np.sqrt(acc * (1 - acc) / n), f"{arch} clean accuracy")
        # a mean cross-entropy's standard error is std/√n, and a trained classifier's per-digit losses have a std
        # 5–12 times their mean (measured on these models): mean/√n is less than one standard error
        loss = committed.loss.values
        assert_reproduced(ds.loss.values, loss, loss / math.sqrt(n), f"{arch} clean loss")


@pytest.mark.parametrize("arch, sigma_train, sigma_val, repeats", NOISY_POINTS)
def test_sampled_noisy_repeats_are_what_their_checkpoints_give(paper, test_sets, arch, sigma_train, sigma_val, repeats):
    """A few repeats of a noisy point, each from its own seeded generator, batched as evaluate() batches them."""
    model = load_checkpoint(CHECKPOINTS / f"{arch}_sigma{sigma_train:.2f}_seed0.pt").model
    seed = int(paper.attrs["eval_seed"])
    gens = [torch.Generator().manual_seed(repeat_seed(seed, arch, sigma_train, sigma_val, r)) for r in repeats]
    acc, loss = noisy_accuracy(model, test_sets[get_preset(arch).data], sigma_val, gens, len(repeats))
    point = paper.sel(arch=arch, sigma_train=sigma_train, sigma_val=sigma_val)
    assert point.accuracy.std("seed") > 0  # a noisy point: its repeats differ
    se_acc = float(point.accuracy.std("seed", ddof=1)) / math.sqrt(point.sizes["seed"])
    se_loss = float(point.loss.std("seed", ddof=1)) / math.sqrt(point.sizes["seed"])
    assert_reproduced(acc, point.accuracy.sel(seed=repeats).values, se_acc, f"{arch} {sigma_train}/{sigma_val} accuracy")
    assert_reproduced(loss, point.loss.sel(seed=repeats).values, se_loss, f"{arch} {sigma_train}/{sigma_val} loss")
