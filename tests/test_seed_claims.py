"""Issue 34: REPRODUCTION.md's claims across training seeds (dni.paper.seeds), against scipy and hand-built models."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from dni.paper.seeds import (
    AT_ONE,
    CLEAN,
    POWER,
    SEEDS_BLOCKS,
    SEEDS_FIGURE_CAPTION,
    WORST,
    Claim,
    Difference,
    claim_row,
    difference_row,
    load_seed_results,
    per_model,
    seeds_blocks,
    verdict,
)
from dni.store.results import save_results
from dni.util.intervals import t_interval

SIGMA_VAL = np.round(np.arange(0, 1.01, 0.1), 10)


def _dataset(level: dict[tuple[int, float], float], slope: dict[tuple[int, float], float], repeats: int = 6,
             rng_seed: int = 0) -> xr.Dataset:
    """lstm28, training seeds 0..2, σtrain 0 / 0.5 / 1: model (k, σtrain)'s accuracy at σval s is
    level − slope·s, plus evaluation noise whose mean over the repeats is exactly 0 (so each model's
    mean is known by construction); NaN for a model not in ``level``."""
    rng = np.random.default_rng(rng_seed)
    seeds, sts = [0, 1, 2], [0.0, 0.5, 1.0]
    acc = np.full((1, 3, 3, len(SIGMA_VAL), repeats), np.nan)
    power = np.full((1, 3, 3), np.nan)
    for i, k in enumerate(seeds):
        for j, st in enumerate(sts):
            if (k, st) not in level:
                continue
            noise = rng.normal(0, 0.002, size=(len(SIGMA_VAL), repeats))
            noise -= noise.mean(axis=1, keepdims=True)
            noise[0] = 0.0  # σval 0: no noise drawn
            acc[0, i, j] = level[k, st] - slope[k, st] * SIGMA_VAL[:, None] + noise
            power[0, i, j] = 0.05 + 0.05 * st + 0.001 * k
    dims = ("arch", "train_seed", "sigma_train", "sigma_val", "seed")
    coords = {"arch": ["lstm28"], "train_seed": seeds, "sigma_train": sts, "sigma_val": SIGMA_VAL, "seed": np.arange(repeats)}
    ds = xr.Dataset({"accuracy": (dims, acc), "loss": (dims, 1 - acc), "weight_power": (dims[:3], power),
                     "model_crc": (dims[:3], np.where(np.isnan(power), np.nan, 1.0))}, coords=coords)
    ds.attrs.update(dataset="mnist", test_size=10000, eval_seed=0, draws="shared")
    return ds


LEVEL = {(0, 0.0): 0.991, (1, 0.0): 0.990, (2, 0.0): 0.988, (0, 0.5): 0.990, (1, 0.5): 0.991, (2, 0.5): 0.989,
         (0, 1.0): 0.989, (1, 1.0): 0.987, (2, 1.0): 0.990}
SLOPE = {(0, 0.0): 0.13, (1, 0.0): 0.11, (2, 0.0): 0.16, (0, 0.5): 0.011, (1, 0.5): 0.009, (2, 0.5): 0.014,
         (0, 1.0): 0.004, (1, 1.0): 0.006, (2, 1.0): 0.003}


@pytest.fixture()
def folder(tmp_path):
    save_results(_dataset(LEVEL, SLOPE), tmp_path / "lstm28.nc")
    return tmp_path


def _scipy_interval(x):
    x = np.asarray(x, float)
    return stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))


def test_per_model_statistics_are_the_constructed_ones(folder):
    ds = load_seed_results(folder)["lstm28"]
    np.testing.assert_allclose(per_model(ds, "lstm28", 0.0, CLEAN).values, [0.991, 0.990, 0.988])
    np.testing.assert_allclose(per_model(ds, "lstm28", 0.0, AT_ONE).values, [0.991 - 0.13, 0.990 - 0.11, 0.988 - 0.16])
    np.testing.assert_allclose(per_model(ds, "lstm28", 1.0, WORST).values, [0.989 - 0.004, 0.987 - 0.006, 0.990 - 0.003])
    np.testing.assert_allclose(per_model(ds, "lstm28", 0.5, POWER).values, [0.075, 0.076, 0.077])


def test_a_claim_row_quotes_the_scipy_interval_and_counts_the_models_that_hold(folder):
    ds = load_seed_results(folder)["lstm28"]
    worst = np.array([0.985, 0.981, 0.987])
    low, high = _scipy_interval(worst)
    row = claim_row(ds, Claim("lstm28", "lstm28", 1.0, WORST, "> 98 %", 0.98))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "lstm28 σtrain 1, worst over σval"
    assert cells[1] == "98.50 (0), 98.10 (1), 98.70 (2)"
    assert cells[2] == f"{worst.mean() * 100:.2f} % [{low * 100:.2f}, {high * 100:.2f}]"
    assert cells[3] == "3" and cells[4] == "> 98 %"
    assert cells[5] == "3 of 3"  # every model above 98 % …
    assert low < 0.98 and cells[6] == "not established for > 98.00 % (the interval straddles it)"  # … but not the interval


def test_verdicts_against_a_bound():
    ci = t_interval([0.985, 0.986, 0.987])  # a tight interval around 98.6 %
    assert verdict(ci, 0.98) == "established"
    assert verdict(ci, 0.99) == "refuted"
    assert verdict(t_interval([0.97, 0.99, 0.985]), 0.98) == "not established (the interval straddles it)"
    assert verdict(ci, 0.99, above=False) == "established"  # "at most 99 %": the whole interval is below
    assert verdict(ci, 0.98, above=False) == "refuted"
    assert verdict(t_interval([0.985]), 0.98) == "1 model: no interval"


def test_a_paired_difference_with_a_known_gap_is_separated_and_its_interval_is_scipys(folder):
    ds = load_seed_results(folder)["lstm28"]
    row = difference_row(ds, Difference("lstm28", "lstm28", 1.0, 0.0, AT_ONE))
    cells = [c.strip() for c in row.strip("|").split("|")]
    d = np.array([(0.989 - 0.004) - (0.991 - 0.13), (0.987 - 0.006) - (0.990 - 0.11), (0.990 - 0.003) - (0.988 - 0.16)])
    low, high = _scipy_interval(d)
    assert cells[2] == f"{d.mean() * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}]"
    assert cells[3] == "3" and cells[4] == "A > B"
    clean = difference_row(ds, Difference("lstm28", "lstm28", 1.0, 0.0, CLEAN))  # −0.2, −0.3, +0.2 pp
    assert clean.rstrip(" |").endswith("not separated (the interval includes 0)")


def test_a_missing_model_leaves_its_seed_out_and_one_model_gives_no_interval(tmp_path):
    level = {key: v for key, v in LEVEL.items() if key != (2, 1.0)}
    save_results(_dataset(level, SLOPE), tmp_path / "lstm28.nc")
    ds = load_seed_results(tmp_path)["lstm28"]
    row = claim_row(ds, Claim("lstm28", "lstm28", 1.0, WORST, "> 98 %", 0.98))
    assert "98.50 (0), 98.10 (1) |" in row and "| 2 |" in row and "2 of 2" in row
    diff = difference_row(ds, Difference("lstm28", "lstm28", 1.0, 0.0, AT_ONE))
    assert "| 2 |" in diff
    one = {key: v for key, v in LEVEL.items() if key[0] == 0}
    save_results(_dataset(one, SLOPE), tmp_path / "one.nc")
    row = claim_row(load_seed_results(tmp_path)["one"], Claim("one", "lstm28", 1.0, WORST, "> 98 %", 0.98))
    assert "(1 model: no interval)" in row and row.split("|")[-2].strip() == "1 model: no interval"
    assert claim_row(ds, Claim("lstm28", "lstm28", 0.7, WORST)) is None  # a σtrain the file does not hold


def test_reproduction_writes_the_seeds_blocks_and_refuses_them_without_results(folder, tmp_path, capsys):
    from conftest import REPO

    from dni.cli import main
    from dni.paper.reproduction import document_blocks

    doc = tmp_path / "R.md"
    names = ("provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures", *SEEDS_BLOCKS)
    doc.write_text("\n\n".join(f"<!-- dni:begin {n} -->\n<!-- dni:end {n} -->" for n in names) + "\n")
    demo = REPO / "widgets" / "demo" / "demo.nc"
    args = ["--quiet", "reproduction", str(demo), "--doc", str(doc), "--no-figures", "--noise-kinds", str(tmp_path / "none.nc")]
    assert main([*args, "--seeds", str(folder)]) == 0
    blocks = document_blocks(doc.read_text())
    assert {k: blocks[k] for k in SEEDS_BLOCKS} == seeds_blocks(load_seed_results(folder), demo.parent / "figures", tmp_path)
    link = os.path.relpath(demo.parent / "figures" / "seeds_lstm28_accuracy.png", tmp_path)
    assert blocks["seeds-figures"] == f"![lstm28: {SEEDS_FIGURE_CAPTION}]({link})"
    assert "lstm28 σtrain 1, worst over σval" in blocks["seeds-claims"]
    assert "shared draws" in blocks["seeds-provenance"] and "(seeds 0, 1, 2)" in blocks["seeds-provenance"]
    assert main([*args, "--seeds", str(folder), "--check"]) == 0
    capsys.readouterr()
    assert main([*args, "--seeds", str(tmp_path / "absent")]) == 2
    assert f"no folder {tmp_path / 'absent'}: give the folder of results/run_seeds_eval.sh's files" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*args, "--seeds", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "has seeds blocks but" in err and "empty holds no result files: run results/run_seeds_eval.sh" in err


def _control(power: dict[tuple[int, float], float], clean: dict[tuple[int, float], float]) -> xr.Dataset:
    """The weight-power control as run_seeds_eval.sh writes it: lstm_stroke50, σval 0 alone, one pass per model."""
    seeds, sts = [0, 1, 2], [0.0, 0.5, 1.0]
    acc = np.array([[[[[clean[k, st]]] for st in sts] for k in seeds]])  # (arch, train_seed, sigma_train, sigma_val, seed)
    wp = np.array([[[power[k, st] for st in sts] for k in seeds]])
    dims = ("arch", "train_seed", "sigma_train", "sigma_val", "seed")
    coords = {"arch": ["lstm_stroke50"], "train_seed": seeds, "sigma_train": sts, "sigma_val": [0.0], "seed": [0]}
    ds = xr.Dataset({"accuracy": (dims, acc), "loss": (dims, 1 - acc), "weight_power": (dims[:3], wp),
                     "model_crc": (dims[:3], np.ones_like(wp))}, coords=coords)
    ds.attrs.update(dataset="mnist", test_size=10000, eval_seed=0)
    return ds


def test_the_noiseless_control_gets_its_paired_rows_no_repeat_spread_and_no_curve(folder):
    """The fixed-length control (σval 0 only, one pass): its weight-power and clean differences are paired within a
    training seed like any other; its provenance says there is no inference noise (no NaN SE); it has no figure."""
    power = {(k, st): 0.09 + 0.02 * st + 0.003 * k + 0.001 * (k == 1) * st for k in range(3) for st in (0.0, 0.5, 1.0)}
    clean = {(k, st): 0.980 - 0.002 * st + 0.001 * k for k in range(3) for st in (0.0, 0.5, 1.0)}
    save_results(_control(power, clean), folder / "control_lstm_stroke50.nc")
    blocks = seeds_blocks(load_seed_results(folder), folder / "figures", folder)
    d = np.array([power[k, 1.0] - power[k, 0.0] for k in range(3)])
    low, high = _scipy_interval(d)
    row = next(r for r in blocks["seeds-differences"].splitlines()
               if r.startswith("| lstm_stroke50 (30 epochs, last weights): σtrain 1 − σtrain 0, mean(w²) |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{d.mean():+.4f} [{low:+.4f}, {high:+.4f}]" and cells[3] == "3" and cells[4] == "A > B"
    clean_row = next(r for r in blocks["seeds-differences"].splitlines() if "last weights): σtrain 1 − σtrain 0, clean" in r)
    assert "-0.20 (0), -0.20 (1), -0.20 (2)" in clean_row
    line = next(r for r in blocks["seeds-provenance"].splitlines() if r.startswith("- `control_lstm_stroke50.nc`"))
    assert line.endswith("σval 0, one noiseless pass per model (no inference noise, so no evaluation-repeat SE)")
    assert "nan" not in blocks["seeds-provenance"]
    assert "control" not in blocks["seeds-figures"] and "seeds_lstm28_accuracy.png" in blocks["seeds-figures"]


def test_the_seeds_figure_draws_the_band_of_the_interval_across_models(folder):
    """The figure ``dni reproduction`` renders per seeds file: one band per σtrain, its edges the t-interval."""
    from dni_widgets.figures import reproduction_figure

    ds = load_seed_results(folder)["lstm28"]
    layout = reproduction_figure("accuracy", ds, {}, "lstm28")
    bands = [r for r in layout.select({"name": "seed_band"})]
    assert len(bands) >= 3  # σtrain 0, 0.5, 1 (in each of the two panels)
    per_model = ds.accuracy.sel(arch="lstm28", sigma_train=0.0).mean("seed").transpose("sigma_val", "train_seed").values
    ci = t_interval(per_model, axis=-1)
    # the accuracy panel's σtrain 0 band: the one whose curve is σtrain 0's mean (bokeh's select has no order)
    data = next(b.data_source.data for b in bands if np.allclose(b.data_source.data["value"], ci.mean * 100, rtol=1e-12))
    np.testing.assert_allclose(np.asarray(data["low"], float), ci.low * 100, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(data["high"], float), ci.high * 100, rtol=1e-9)


def test_the_papers_one_model_is_held_against_the_prediction_interval_of_one_more_of_ours(folder):
    """The paper's number is one model's: inside or outside x̄ ± t·s·√(1 + 1/n), widened by its rounding."""
    ds = load_seed_results(folder)["lstm28"]
    clean = np.array([0.991, 0.990, 0.988])
    half = stats.t.ppf(0.975, 2) * clean.std(ddof=1) * np.sqrt(1 + 1 / 3)
    low, high = clean.mean() - half, clean.mean() + half
    assert low < 0.985 < 0.987 < high < 0.999  # the numbers below sit on either side
    shown = f"[{low * 100:.2f}, {high * 100:.2f}]"
    inside = claim_row(ds, Claim("lstm28", "lstm28", 0.0, CLEAN, "98.7 %"))
    assert inside.endswith(f"| 98.7 % | – | inside our models' 95 % prediction interval {shown} |")
    outside = claim_row(ds, Claim("lstm28", "lstm28", 0.0, CLEAN, "99.9 %"))
    assert outside.endswith(f"| – | outside our models' 95 % prediction interval {shown}: differs |")
    # the paper's rounding counts: a value whose rounding reaches into the interval is not called different
    edge = np.ceil(high * 1e4) / 1e2  # in %, 2 decimals (± 0.005 pp of rounding): just above the interval, by less than that
    assert 0 < edge / 100 - high < 0.00005
    assert claim_row(ds, Claim("lstm28", "lstm28", 0.0, CLEAN, f"{edge:.2f} %")).endswith(f"{shown} |")
    power = claim_row(ds, Claim("lstm28", "lstm28", 0.0, POWER, "0.013"))  # 0.050, 0.051, 0.052
    assert "| 0.0500 (0), 0.0510 (1), 0.0520 (2) |" in power and power.endswith(": differs |")
    assert claim_row(ds, Claim("lstm28", "lstm28", 0.5, WORST)).endswith("| – | – | – |")


def test_prediction_interval_is_the_t_interval_widened_by_the_square_root_of_n_plus_one():
    from dni.util.intervals import prediction_interval

    x = np.array([0.2, 0.5, 0.4, 0.9])
    pi, ci = prediction_interval(x), t_interval(x)
    assert float(pi.half_width) == pytest.approx(stats.t.ppf(0.975, 3) * x.std(ddof=1) * np.sqrt(1 + 1 / 4), rel=1e-12)
    assert float(pi.half_width) == pytest.approx(float(ci.half_width) * np.sqrt(5), rel=1e-12)
    assert np.isnan(prediction_interval([0.3]).half_width)


def test_a_model_at_exactly_the_bound_is_not_above_it_and_ties_of_the_interval_are_decided_as_stated(tmp_path):
    level = {**LEVEL, (0, 1.0): 0.98 + 0.004, (1, 1.0): 0.98 + 0.006, (2, 1.0): 0.98 + 0.003}  # worst = 0.98 exactly
    save_results(_dataset(level, SLOPE, repeats=40, rng_seed=3), tmp_path / "lstm28.nc")
    ds = load_seed_results(tmp_path)["lstm28"]
    np.testing.assert_array_equal(per_model(ds, "lstm28", 1.0, WORST).values, [0.98, 0.98, 0.98])
    row = claim_row(ds, Claim("lstm28", "lstm28", 1.0, WORST, "> 98 %", 0.98))
    assert "| 0 of 3 |" in row and "refuted" in row  # > 98 %: a model at 98.00 % does not meet it, nor does the interval
    assert "| 3 of 3 |" in claim_row(ds, Claim("lstm28", "lstm28", 1.0, WORST, "≤ 98 %", 0.98, above=False))
    from dni.util.intervals import Interval

    at = Interval(np.float64(0.985), np.float64(0.005), np.int64(3))  # low exactly 0.98, high exactly 0.99
    assert verdict(at, 0.98) == "not established (the interval straddles it)"  # "> 98 %" needs low above it
    assert verdict(at, 0.99, above=False) == "established"  # "≤ 99 %": high at it is enough


def test_a_model_missing_one_sigma_val_has_no_worst_case_but_keeps_its_clean_value(tmp_path):
    ds = _dataset(LEVEL, SLOPE)
    ds["accuracy"].loc[dict(train_seed=1, sigma_train=1.0, sigma_val=0.5)] = np.nan
    save_results(ds, tmp_path / "lstm28.nc")
    ds = load_seed_results(tmp_path)["lstm28"]
    assert np.isnan(per_model(ds, "lstm28", 1.0, WORST).values).tolist() == [False, True, False]
    assert not np.isnan(per_model(ds, "lstm28", 1.0, CLEAN).values).any()
    assert "98.50 (0), 98.70 (2) |" in claim_row(ds, Claim("lstm28", "lstm28", 1.0, WORST, "> 98 %", 0.98))
    no_one = ds.sel(sigma_val=ds.sigma_val.values[ds.sigma_val.values < 0.95])  # a file without σval 1
    assert claim_row(no_one, Claim("lstm28", "lstm28", 0.0, AT_ONE, "12.5 %")) is None


def test_pairs_are_made_within_a_training_seed_only(tmp_path):
    level = {key: v for key, v in LEVEL.items() if key not in {(0, 1.0), (2, 0.0)}}  # A lacks seed 0, B lacks seed 2
    save_results(_dataset(level, SLOPE), tmp_path / "lstm28.nc")
    ds = load_seed_results(tmp_path)["lstm28"]
    row = difference_row(ds, Difference("lstm28", "lstm28", 1.0, 0.0, CLEAN))
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    assert cells[1] == f"{(0.987 - 0.990) * 100:+.2f} (1)" and cells[3] == "1" and cells[4] == "1 model each: no interval"


def test_dni_reports_worst_case_leaves_out_a_model_not_evaluated_at_every_sigma_val(tmp_path):
    """A sweep cut off mid-model holds some σval of it: its worst case over σval is unknown, not the minimum of
    what is there (which would flatter it)."""
    from dni.paper.report import seed_interval_table

    ds = _dataset(LEVEL, SLOPE)
    ds["accuracy"].loc[dict(train_seed=1, sigma_train=1.0, sigma_val=ds.sigma_val.values[1:])] = np.nan
    save_results(ds, tmp_path / "lstm28.nc")
    table = seed_interval_table(load_seed_results(tmp_path)["lstm28"])
    row = next(r for r in table.splitlines() if "worst accuracy" in r)
    worst = np.array([0.989 - 0.004, 0.990 - 0.003])  # seeds 0 and 2; seed 1 has σval 0 only
    ci = t_interval(worst)
    assert "(1)" in row and f"{ci.mean * 100:.1f} ± {ci.half_width * 100:.1f} % (n = 2)" in row and "nan" in row


@pytest.mark.parametrize(("script", "stages"), [
    ("run_seeds.sh", "paper wd kinds weight_read weight_read_lr control"),
    ("run_seeds_eval.sh", "lstm28 rnn28 lstm_stroke50 wd (= wd0 wd1) kinds control"),
])
def test_the_seeds_scripts_refuse_an_unknown_stage_before_any_work(script, stages, tmp_path):
    """A typo in a stage name must not start hours of training on the stages before it."""
    import subprocess

    from conftest import REPO

    env = {**os.environ, "DNI_DATA_DIR": str(tmp_path), "PATH": str(tmp_path) + os.pathsep + os.environ["PATH"]}
    (tmp_path / "dni").write_text("#!/bin/sh\necho ran >> \"$DNI_DATA_DIR/ran\"\n")  # a stand-in that records any call
    (tmp_path / "dni").chmod(0o755)
    done = subprocess.run(["bash", str(REPO / "results" / script), "lstm28" if "eval" in script else "paper", "bogus"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"unknown stage 'bogus'; the stages are: {stages}"
    assert not (tmp_path / "ran").exists()
