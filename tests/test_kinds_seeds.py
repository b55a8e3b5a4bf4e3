"""Issue 34: the noise-kinds answers across training seeds (dni.paper.kinds_seeds), against scipy and hand-built files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from dni.errors import ResultSchemaError
from dni.paper.kinds_seeds import (
    ADDITIVE_07,
    CONVENTIONAL,
    KIND_DIFFERENCES,
    KINDS_SEEDS_BLOCKS,
    PROGRAMMING,
    WEIGHT_READ,
    KindDifference,
    kind_difference_row,
    kinds_seeds_blocks,
    kinds_table,
    load_kinds_seeds,
    middle_strength,
    model_values,
)
from dni.store.results import save_results

MIDDLE = {"additive": 0.7, "output_relative": 0.78, "programming": 0.1, "weight_read": 0.15}
SIGMAS = {"additive": [0.0, 0.5, 0.7, 1.0], "output_relative": [0.78], "programming": [0.1], "weight_read": [0.15]}


def clean(train: str, st: float, k: int) -> float:
    """Model (train kind, σtrain, training seed k)'s noiseless accuracy, by construction."""
    return 0.99 - 0.01 * (train == "weight_read") - 0.001 * k - 0.0005 * st


def drop(train: str, st: float, eval_kind: str, k: int) -> float:
    """Its loss under ``eval_kind`` at the middle strength: weight noise hurts additive-trained models more the larger
    σtrain, programming-trained ones little; the training seed adds 0.002·k (so a pair's difference is the same in
    every seed only where both drops are equal)."""
    weight = eval_kind in ("programming", "weight_read")
    if train == "additive":
        base = (0.04 + 0.3 * st) if weight else 0.13 * (1 - st)
    elif train == "programming":
        base = 0.01
    else:
        base = 0.02
    return base + 0.002 * k * (train != "programming")


def kinds_file(train: str, eval_kind: str, seeds=(0, 1, 2), repeats: int = 5, skip=()) -> xr.Dataset:
    """One file of ``run_seeds_eval.sh kinds``: σval {0, middle}, training seeds ``seeds``; each model's mean over its
    repeats is exactly the constructed value (the repeats' noise sums to 0); (σtrain, seed) in ``skip`` are NaN."""
    rng = np.random.default_rng(len(train) * 7 + len(eval_kind))
    sts, sv = SIGMAS[train], [0.0, MIDDLE[eval_kind]]
    acc = np.full((1, len(seeds), len(sts), 2, repeats), np.nan)
    for i, k in enumerate(seeds):
        for j, st in enumerate(sts):
            if (st, k) in skip:
                continue
            noise = rng.normal(0, 0.003, repeats)
            acc[0, i, j, 0] = clean(train, st, k)
            acc[0, i, j, 1] = clean(train, st, k) - drop(train, st, eval_kind, k) + noise - noise.mean()
    dims = ("arch", "train_seed", "sigma_train", "sigma_val", "seed")
    coords = {"arch": ["lstm28"], "train_seed": list(seeds), "sigma_train": sts, "sigma_val": sv, "seed": np.arange(repeats)}
    ds = xr.Dataset({"accuracy": (dims, acc), "loss": (dims, 1 - acc),
                     "model_crc": (dims[:3], np.where(np.isnan(acc[..., 0, 0]), np.nan, 1.0))}, coords=coords)
    ds.attrs.update(dataset="mnist", test_size=10000, eval_seed=0, draws="shared", train_noise=train, eval_noise=eval_kind)
    return ds


@pytest.fixture()
def folder(tmp_path):
    for train in SIGMAS:
        for eval_kind in MIDDLE:
            save_results(kinds_file(train, eval_kind), tmp_path / f"{train}__{eval_kind}.nc")
    return tmp_path


def _scipy(x) -> str:
    x = np.asarray(x, float)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    return f"{x.mean() * 100:.2f} % [{low * 100:.2f}, {high * 100:.2f}]"


def test_each_model_is_its_mean_over_the_repeats_and_noiseless_is_sigma_val_0(folder):
    results = load_kinds_seeds(folder)
    assert set(results) == {(t, e) for t in SIGMAS for e in MIDDLE}
    got = model_values(results, ADDITIVE_07, "weight_read")
    np.testing.assert_allclose(got.values, [clean("additive", 0.7, k) - drop("additive", 0.7, "weight_read", k) for k in range(3)])
    np.testing.assert_allclose(model_values(results, WEIGHT_READ, None).values, [clean("weight_read", 0.15, k) for k in range(3)])
    assert CONVENTIONAL.label == "conventional (σtrain 0)" and WEIGHT_READ.label == "weight_read 0.15, selected on clean validation"
    assert model_values(results, CONVENTIONAL, "weight_read") is not None
    assert middle_strength(results[("programming", "weight_read")]) == 0.15


def test_the_table_quotes_the_scipy_interval_of_every_cell(folder):
    results = load_kinds_seeds(folder)
    table = kinds_table(results)
    header, _rule, *rows = table.splitlines()
    assert header == ("| trained under | models (training seeds) | noiseless | additive 0.7 | output_relative 0.78 | "
                      "programming 0.1 | weight_read 0.15 |")
    assert len(rows) == 7
    wr = next(r for r in rows if r.startswith("| weight_read 0.15, selected on clean validation |"))
    cells = [c.strip() for c in wr.strip("|").split("|")]
    assert cells[1] == "3 (0, 1, 2)"
    assert cells[2] == _scipy([clean("weight_read", 0.15, k) for k in range(3)])
    assert cells[6] == _scipy([clean("weight_read", 0.15, k) - drop("weight_read", 0.15, "weight_read", k) for k in range(3)])


def test_a_paired_difference_with_a_known_gap_is_separated_and_its_interval_is_scipys(folder):
    results = load_kinds_seeds(folder)
    diff = KindDifference(PROGRAMMING, ADDITIVE_07, "weight_read", "test")
    row = kind_difference_row(results, diff)
    d = [model_values(results, PROGRAMMING, "weight_read").values[k] - model_values(results, ADDITIVE_07, "weight_read").values[k]
         for k in range(3)]
    # by construction: 0.0005·0.6 clean + (0.04 + 0.21 + 0.002·k) − 0.01 = 0.2403 + 0.002·k
    np.testing.assert_allclose(d, [0.2403 + 0.002 * k for k in range(3)], atol=1e-9)
    x = np.array(d)
    low, high = stats.t.interval(0.95, 2, loc=x.mean(), scale=stats.sem(x))
    assert f"| {x.mean() * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}] | 3 | A > B |" in row
    assert row.startswith("| programming 0.1 − additive 0.7 | weight_read 0.15 | test |")
    # a model against itself: every difference 0, not separated
    same = kind_difference_row(results, KindDifference(CONVENTIONAL, CONVENTIONAL, None, "nothing"))
    assert same.endswith("| 3 | not separated (the interval includes 0) |")


def test_a_missing_model_leaves_its_seed_out_and_one_model_gives_no_interval(tmp_path):
    for train in ("additive", "programming"):
        for eval_kind in MIDDLE:
            seeds = (0, 1, 2) if train == "additive" else (0,)
            save_results(kinds_file(train, eval_kind, seeds, skip={(0.7, 2)}), tmp_path / f"{train}__{eval_kind}.nc")
    results = load_kinds_seeds(tmp_path)
    rows = kinds_table(results).splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["conventional (σtrain 0)", "additive 0.5", "additive 0.7", "additive 1",
                                                      "programming 0.1"]
    assert "| additive 0.7 | 2 (0, 1) |" in kinds_table(results)
    assert "(1 model: no interval)" in rows[-1]
    row = kind_difference_row(results, KindDifference(PROGRAMMING, ADDITIVE_07, "weight_read", "x"))
    assert row.endswith("| 1 | 1 model each: no interval |")
    assert kind_difference_row(results, KindDifference(WEIGHT_READ, CONVENTIONAL, None, "x")) is None  # no weight_read file


def test_every_listed_difference_has_a_row_when_every_model_is_there(folder):
    blocks = kinds_seeds_blocks(load_kinds_seeds(folder))
    assert set(blocks) == set(KINDS_SEEDS_BLOCKS)
    assert len(blocks["seeds-kinds-differences"].splitlines()) == 2 + len(KIND_DIFFERENCES)
    assert kinds_seeds_blocks({})["seeds-kinds"] == "(no model of the noise kinds evaluated across training seeds yet)"


def test_bad_files_are_refused_in_one_line(tmp_path):
    ds = kinds_file("programming", "weight_read")
    del ds.attrs["eval_noise"]
    save_results(ds, tmp_path / "x.nc")
    with pytest.raises(ResultSchemaError, match=r"x.nc has no train_noise/eval_noise attributes: it is not a file of "
                                                r"results/run_seeds_eval.sh kinds; move it out of"):
        load_kinds_seeds(tmp_path)
    (tmp_path / "x.nc").unlink()
    save_results(kinds_file("programming", "weight_read").assign_coords(sigma_val=[0.1, 0.15]), tmp_path / "two.nc")
    with pytest.raises(ResultSchemaError, match=r"two.nc evaluates σval 0.1, 0.15; a kinds file holds σval 0 and one "
                                                r"strength: re-run results/run_seeds_eval.sh kinds"):
        load_kinds_seeds(tmp_path)
    (tmp_path / "two.nc").unlink()
    save_results(kinds_file("programming", "weight_read"), tmp_path / "a.nc")
    save_results(kinds_file("programming", "weight_read"), tmp_path / "b_old.nc")
    with pytest.raises(ResultSchemaError, match=r"a.nc and .*b_old.nc both hold lstm28 trained under programming and "
                                                r"evaluated under weight_read: keep one of them"):
        load_kinds_seeds(tmp_path)


def test_noiseless_comes_from_every_file_of_the_training_kind_and_files_must_agree(tmp_path):
    """A partial file first in order (one seed) must not hide the seeds another file holds; σval 0 is one noise-free
    pass, so two files that disagree on it are not from the same checkpoints."""
    save_results(kinds_file("weight_read", "additive", seeds=(0,)), tmp_path / "weight_read__additive.nc")
    save_results(kinds_file("weight_read", "weight_read"), tmp_path / "weight_read__weight_read.nc")
    results = load_kinds_seeds(tmp_path)
    np.testing.assert_allclose(model_values(results, WEIGHT_READ, None).values, [clean("weight_read", 0.15, k) for k in range(3)])
    row = kinds_table(results).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3 (0, 1, 2)" and cells[2] == _scipy([clean("weight_read", 0.15, k) for k in range(3)])
    assert cells[3].endswith("(1 model: no interval)")  # additive 0.7: the one seed evaluated so far
    two = kinds_file("weight_read", "output_relative", skip={(0.15, 1)})
    save_results(two, tmp_path / "weight_read__output_relative.nc")
    cells = [c.strip() for c in kinds_table(load_kinds_seeds(tmp_path)).splitlines()[2].strip("|").split("|")]
    assert cells[4].endswith(" (2 of 3 models)")
    off = kinds_file("weight_read", "programming")
    off["accuracy"].loc[{"sigma_val": 0.0, "train_seed": 1}] += 0.001
    save_results(off, tmp_path / "weight_read__programming.nc")
    with pytest.raises(ResultSchemaError, match=r"give weight_read 0.15, selected on clean validation seed 1 different "
                                                r"noiseless accuracies: they are not from the same checkpoints"):
        model_values(load_kinds_seeds(tmp_path), WEIGHT_READ, None)


def test_files_of_one_eval_kind_must_agree_on_its_strength(tmp_path):
    save_results(kinds_file("programming", "weight_read"), tmp_path / "p.nc")
    save_results(kinds_file("additive", "weight_read").assign_coords(sigma_val=[0.0, 0.2]), tmp_path / "a.nc")
    with pytest.raises(ResultSchemaError, match=r"the files evaluated under weight_read use different strengths "
                                                r"\(.*a.nc: 0.2, .*p.nc: 0.15\): re-run results/run_seeds_eval.sh kinds"):
        kinds_table(load_kinds_seeds(tmp_path))


def test_a_model_below_another_in_every_seed_reads_a_less_than_b(folder):
    results = load_kinds_seeds(folder)
    row = kind_difference_row(results, KindDifference(WEIGHT_READ, PROGRAMMING, "weight_read", "which"))
    # by construction: clean −0.01 − 0.0005·(0.15 − 0.1), drops 0.02 + 0.002·k against 0.01
    d = np.array([-0.01 - 0.0005 * 0.05 - (0.02 + 0.002 * k) + 0.01 for k in range(3)])
    got = model_values(results, WEIGHT_READ, "weight_read").values - model_values(results, PROGRAMMING, "weight_read").values
    np.testing.assert_allclose(got, d, atol=1e-9)
    low, high = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert high < 0
    assert row.endswith(f"| {d.mean() * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}] | 3 | A < B |")


def test_reproduction_writes_the_kinds_blocks_and_refuses_them_without_results(folder, tmp_path, capsys):
    from conftest import REPO

    from dni.cli import main
    from dni.paper.reproduction import document_blocks
    from dni.paper.seeds import SEEDS_BLOCKS

    doc = tmp_path / "R.md"
    names = ("provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures", *SEEDS_BLOCKS,
             *KINDS_SEEDS_BLOCKS)
    doc.write_text("\n\n".join(f"<!-- dni:begin {n} -->\n<!-- dni:end {n} -->" for n in names) + "\n")
    seeds = tmp_path / "seeds"
    (seeds / "kinds").mkdir(parents=True)
    for p in folder.glob("*.nc"):
        p.rename(seeds / "kinds" / p.name)
    demo = REPO / "widgets" / "demo" / "demo.nc"
    shutil.copy(demo, seeds / "demo.nc")  # the seeds blocks need a file; the demo reads as its one training seed
    args = ["--quiet", "reproduction", str(demo), "--doc", str(doc), "--no-figures", "--noise-kinds", str(tmp_path / "none.nc"),
            "--seeds", str(seeds)]
    assert main(args) == 0
    blocks = document_blocks(doc.read_text())
    assert {k: blocks[k] for k in KINDS_SEEDS_BLOCKS} == kinds_seeds_blocks(load_kinds_seeds(seeds / "kinds"))
    assert main([*args, "--check"]) == 0
    for p in (seeds / "kinds").glob("*.nc"):
        p.unlink()
    capsys.readouterr()
    assert main(args) == 2
    assert f"has seeds-kinds blocks but {seeds / 'kinds'} holds no result files: run results/run_seeds_eval.sh kinds" in capsys.readouterr().err
