"""Training seeds as a dim (issue 34): --train-seeds, the train_seed dim, intervals in tables, the paired
comparison, resume of a multi-seed sweep, --select-on clean and a model's own ADC range."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
import torch
import xarray as xr

from dni.errors import InvalidArgumentError, ResultSchemaError
from dni.experiments.sweep import run_sweep
from dni.paper.compare import compare_files, comparison_table, paired_comparison
from dni.store.checkpoints import load_checkpoint
from dni.store.layout import checkpoint_path
from dni.store.recipe import TrainConfig
from dni.store.results import (
    accuracy_table,
    load_results,
    merge_results,
    model_crc,
    save_results,
    with_train_seed_dim,
)
from dni.training.train import train
from dni.util.validation import MAX_TRAIN_SEEDS, parse_train_seeds

QUIET = dict(progress=False, log=lambda m: None)
SMALL = dict(preset="rnn28", epochs=1, sigma_val=[0.0, 0.5], repeats=2)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """A 2-seed, 1-epoch sweep of rnn28 at σtrain 0.5 on the embedded subset."""
    out = tmp_path_factory.mktemp("seeds") / "s.nc"
    ds = run_sweep(**SMALL, sigma_train=[0.5], train_seeds="0,1", out=out, **QUIET)
    return ds, out


# --- bad input: one line, before any work ---------------------------------------------------------

@pytest.mark.parametrize("text, says", [("", "empty"), ("0,-1", "negative"), ("0,1,1", "seed 1 given twice"),
                                        (f"0:{MAX_TRAIN_SEEDS}:1", "limit of 32"), ("a", "not an integer")])
def test_bad_train_seeds_are_one_line(text, says):
    with pytest.raises(InvalidArgumentError, match=says) as err:
        parse_train_seeds(text)
    assert "\n" not in str(err.value)


def test_train_seed_grids_parse_like_sigma_grids():
    assert parse_train_seeds("0,1,2") == [0, 1, 2]
    assert parse_train_seeds("0:4:2") == [0, 2, 4]
    assert parse_train_seeds([3]) == [3]


def test_cli_refuses_bad_train_seeds_before_any_work(tmp_path):
    out = tmp_path / "x.nc"
    run = subprocess.run([sys.executable, "-m", "dni.cli", "sweep", "--train-seeds", "0,0", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "seed 0 given twice" in run.stderr and len(run.stderr.strip().splitlines()[-1]) > 0
    assert not out.exists() and not (tmp_path / "x_checkpoints").exists()


# --- the draw key ----------------------------------------------------------------------------------

def test_seed_zero_keeps_its_draw_key_and_other_seeds_get_their_own():
    import zlib

    from dni.evaluation.evaluate import repeat_seed
    from dni.noise.draws import chunk_seed

    # the key as it was before issue 34, built by hand
    hand = int(np.random.SeedSequence([0, zlib.crc32(b"lstm28"), 500000, 1000000, 3]).generate_state(1, np.uint64)[0] >> 1)
    assert repeat_seed(0, "lstm28", 0.5, 1.0, 3) == repeat_seed(0, "lstm28", 0.5, 1.0, 3, train_seed=0) == hand
    seeds = {repeat_seed(0, "lstm28", 0.5, 1.0, 3, train_seed=k) for k in range(4)}
    assert len(seeds) == 4  # seed k's evaluation noise is not seed j's
    assert len({chunk_seed(0, "lstm28", 0.5, 3, 7, train_seed=k) for k in range(4)}) == 4


# --- the sweep -------------------------------------------------------------------------------------

def test_seed_k_of_a_multi_seed_sweep_is_the_model_trained_alone(two_seeds, tmp_path):
    ds, out = two_seeds
    assert ds.accuracy.dims == ("arch", "train_seed", "sigma_train", "sigma_val", "seed")
    assert ds.train_seed.values.tolist() == [0, 1]
    alone = train(TrainConfig(preset="rnn28", sigma_train=0.5, epochs=1, seed=1), progress=False, log=lambda m: None)
    swept = load_checkpoint(checkpoint_path(out.with_name("s_checkpoints"), TrainConfig(preset="rnn28", sigma_train=0.5, epochs=1, seed=1)))
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, swept.model.state_dict()[name]), name
    assert int(ds.model_crc.sel(arch="rnn28", train_seed=1, sigma_train=0.5)) == model_crc(alone.model)
    assert int(ds.model_crc.sel(train_seed=0).item()) != int(ds.model_crc.sel(train_seed=1).item())


def test_seed_zero_of_a_multi_seed_sweep_is_the_one_seed_sweep(two_seeds, tmp_path):
    ds, _ = two_seeds
    one = run_sweep(**SMALL, sigma_train=[0.5], out=tmp_path / "one.nc", **QUIET)
    assert "train_seed" not in one.dims and int(one.train_seed.item()) == 0  # one seed: today's schema
    np.testing.assert_array_equal(ds.accuracy.sel(train_seed=0).values, one.accuracy.values)
    # seed 1 was evaluated on draws of its own: not the same numbers at σval 0.5 as seed 0's model would get
    assert not np.array_equal(ds.accuracy.sel(train_seed=1, sigma_val=0.5).values, ds.accuracy.sel(train_seed=0, sigma_val=0.5).values)


def test_extending_one_seed_to_two_reuses_seed_zero_untouched(tmp_path, monkeypatch):
    import dni.experiments.sweep as sweep

    out = tmp_path / "e.nc"
    first = run_sweep(**SMALL, sigma_train=[0.5], out=out, **QUIET)
    evaluated, trained = [], []
    real_evaluate, real_train = sweep.evaluate, sweep.train
    monkeypatch.setattr(sweep, "evaluate", lambda models, *a, **k: evaluated.extend(m.config.seed for m in models) or real_evaluate(models, *a, **k))
    monkeypatch.setattr(sweep, "train", lambda config, **k: trained.append(config.seed) or real_train(config, **k))
    both = run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[0, 1], out=out, **QUIET)
    assert evaluated == [1] and trained == [1]  # seed 0: neither trained nor evaluated again
    for var in ("accuracy", "loss", "model_crc", "epochs"):
        np.testing.assert_array_equal(both[var].sel(train_seed=0).values, first[var].values, err_msg=var)
    assert load_results(out).train_seed.values.tolist() == [0, 1]


def test_a_multi_seed_sweep_killed_mid_seed_resumes_to_the_uninterrupted_result(two_seeds, tmp_path, monkeypatch):
    import dni.experiments.sweep as sweep

    reference, _ = two_seeds
    out = tmp_path / "k.nc"
    real_evaluate = sweep.evaluate

    def killed_in_seed_1(models, sigma_val, *a, on_point=None, **k):
        if models[0].config.seed != 1:
            return real_evaluate(models, sigma_val, *a, on_point=on_point, **k)

        def point_then_kill(partial):  # the first point of seed 1 is written, then the process "dies"
            on_point(partial)
            raise KeyboardInterrupt

        return real_evaluate(models, sigma_val, *a, on_point=point_then_kill, **k)

    monkeypatch.setattr(sweep, "evaluate", killed_in_seed_1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[0, 1], out=out, **QUIET)
    partial = load_results(out)
    assert partial.train_seed.values.tolist() == [0, 1]
    done = int(partial.accuracy.notnull().all("seed").sum())
    assert done == 3  # seed 0's two points and seed 1's first
    monkeypatch.setattr(sweep, "evaluate", real_evaluate)
    resumed = run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[0, 1], out=out, **QUIET)
    for var in ("accuracy", "loss", "model_crc", "epochs", "weight_power"):
        xr.testing.assert_equal(resumed[var], reference[var])


# --- merge -----------------------------------------------------------------------------------------

def test_merge_joins_seeds_and_refuses_other_weights_of_one_seed(two_seeds, tmp_path):
    ds, _ = two_seeds
    seed0 = run_sweep(**SMALL, sigma_train=[0.5], out=tmp_path / "a.nc", **QUIET)
    seed1 = run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[1], out=tmp_path / "b.nc", **QUIET)
    merged = merge_results([seed0, seed1])  # two one-seed files (today's schema) → the dim
    np.testing.assert_array_equal(merged.accuracy.values, ds.accuracy.values)
    forged = ds.copy(deep=True)
    forged["model_crc"].loc[{"train_seed": 1}] = 12345.0
    with pytest.raises(InvalidArgumentError, match="training seed 1 of rnn28 σtrain 0.5 has other weights") as err:
        merge_results([ds, forged])
    assert "\n" not in str(err.value)


def test_an_old_file_is_its_one_seed_and_a_mixed_one_is_refused(tmp_path):
    old = xr.Dataset({"accuracy": (("arch", "sigma_train", "sigma_val", "seed"), np.full((1, 2, 1, 2), 0.9)),
                      "train_seed": (("arch", "sigma_train"), [[1.0, np.nan]])},
                     coords={"arch": ["lstm28"], "sigma_train": [0.0, 1.0], "sigma_val": [0.0], "seed": [0, 1]})
    assert with_train_seed_dim(old).train_seed.values.tolist() == [1]
    assert load_results(save_results(old, tmp_path / "old.nc"), train_seed_dim=True).train_seed.values.tolist() == [1]
    mixed = old.assign(train_seed=(("arch", "sigma_train"), [[0.0, 1.0]]))
    save_results(mixed, tmp_path / "mixed.nc")
    with pytest.raises(ResultSchemaError, match=r"training seeds \[0, 1\]"):
        load_results(tmp_path / "mixed.nc", train_seed_dim=True)


# --- intervals in tables -----------------------------------------------------------------------------

def _constructed(per_model, repeats=3, spread=0.001):
    """accuracy over (arch, train_seed, sigma_train, sigma_val, seed) whose per-model means are ``per_model`` (seeds, σval)."""
    per_model = np.asarray(per_model, float)
    offsets = spread * (np.arange(repeats) - (repeats - 1) / 2)  # mean 0 over repeats
    acc = per_model[None, :, None, :, None] + offsets
    return xr.Dataset({"accuracy": (("arch", "train_seed", "sigma_train", "sigma_val", "seed"), acc)},
                      coords={"arch": ["lstm28"], "train_seed": list(range(per_model.shape[0])), "sigma_train": [1.0],
                              "sigma_val": [0.0, 1.0][: per_model.shape[1]], "seed": list(range(repeats))},
                      attrs={"dataset": "subset"})


def test_table_shows_the_t_interval_across_seeds_and_the_repeat_se_apart():
    models = [[0.97, 0.90], [0.98, 0.93], [0.96, 0.91]]
    text = accuracy_table(_constructed(models))
    x = np.array(models)[:, 1] * 100
    hand = scipy.stats.t.ppf(0.975, 2) * x.std(ddof=1) / np.sqrt(3)  # 4.303 · s / √3
    assert f"{x.mean():.1f}±{hand:.1f}" in text  # 91.3±3.8
    assert "mean over 3 training seeds (0, 1, 2) ± 95 % Student-t interval" in text
    se = np.std([-0.1, 0, 0.1], ddof=1) / np.sqrt(3)  # the repeats' spread, in %
    assert "evaluation-repeat standard error" in text and f"{se:.2f}" in text


def test_a_table_of_one_seed_asked_for_an_interval_says_so():
    one = _constructed([[0.97, 0.90]])
    assert "1 seed: no interval" in accuracy_table(one, interval=True)
    assert "1 seed" not in accuracy_table(one) and "±" not in accuracy_table(one)


# --- the paired comparison ----------------------------------------------------------------------------

def test_paired_comparison_of_constructed_models_with_a_known_difference():
    b = np.array([[0.90, 0.50], [0.94, 0.60], [0.88, 0.40], [0.92, 0.55]])  # 4 seeds × 2 σval, a large spread
    diff = np.array([[0.010, 0.20], [0.012, 0.22], [0.008, 0.18], [0.010, 0.20]])
    c = paired_comparison(_constructed(b + diff).accuracy.sel(arch="lstm28", sigma_train=1.0),
                          _constructed(b).accuracy.sel(arch="lstm28", sigma_train=1.0))
    assert c.seeds == [0, 1, 2, 3]
    np.testing.assert_allclose(c.per_seed, diff, atol=1e-12)
    for j in range(2):
        low, high = scipy.stats.t.interval(0.95, 3, loc=diff[:, j].mean(), scale=scipy.stats.sem(diff[:, j]))
        np.testing.assert_allclose([c.interval.low[j], c.interval.high[j]], [low, high], rtol=1e-9)
    assert bool(c.interval.excludes(0).all())  # the seeds' spread (±3 pp) cancels in the pairs
    unpaired = scipy.stats.t.ppf(0.975, 3) * (b + diff)[:, 0].std(ddof=1) / 2
    assert c.interval.half_width[0] < unpaired / 5


def test_compare_files_under_the_same_draws_and_with_one_seed(two_seeds, tmp_path):
    ds, out = two_seeds
    save_results(ds, tmp_path / "a.nc")
    lower = ds.copy(deep=True)
    lower["accuracy"] = lower.accuracy - 0.01
    save_results(lower, tmp_path / "b.nc")
    c = compare_files([tmp_path / "a.nc", tmp_path / "b.nc"])
    assert c.shared_draws and c.seeds == [0, 1]
    np.testing.assert_allclose(c.interval.mean, 0.01, atol=1e-12)
    assert "n = 2 (0, 1)" in comparison_table(c) and "the same evaluation draws" in comparison_table(c)
    one = run_sweep(**SMALL, sigma_train=[0.5], out=tmp_path / "one.nc", **QUIET)
    save_results(one.assign(accuracy=one.accuracy - 0.02), tmp_path / "one_b.nc")
    text = comparison_table(compare_files([tmp_path / "one.nc", tmp_path / "one_b.nc"]))
    assert "1 seed: no interval" in text
    with pytest.raises(InvalidArgumentError, match="name the two settings"):
        compare_files([out])


# --- the two options of item 3 -------------------------------------------------------------------------

def test_select_on_clean_picks_the_best_clean_validation_epoch():
    config = TrainConfig(preset="rnn28", sigma_train=1.0, epochs=3, lr=1e-2, patience=3, select_on="clean")
    trained = train(config, progress=False, log=lambda m: None)
    clean = [r["val_accuracy_clean"] for r in trained.history]
    assert trained.meta["best_epoch"] == 1 + int(np.argmax(clean))
    from dni.training.train import selection_accuracy

    record = {"val_accuracy": 0.4, "val_accuracy_clean": 0.9}
    assert selection_accuracy(record, config) == 0.9 and selection_accuracy(record, TrainConfig(preset="rnn28")) == 0.4
    assert TrainConfig.from_dict({"preset": "rnn28", "sigma_train": 0.5}).select_on == "noisy"  # an old checkpoint's config
    with pytest.raises(InvalidArgumentError, match="select_on must be one of noisy, clean"):
        TrainConfig(select_on="best")


def test_a_models_own_adc_range_is_the_quantile_of_its_preactivations():
    from dni.data import load_sequences
    from dni.nn.probes import preactivation_bound
    from dni.nn.presets import get_preset

    model = train(TrainConfig(preset="rnn28", epochs=1), progress=False, log=lambda m: None).model
    x = load_sequences("subset", "test", get_preset("rnn28").data).x[:64]
    p = dict(model.named_parameters())
    h, values = torch.zeros(len(x), p["cell.weight_hh"].shape[0]), []
    with torch.no_grad():  # the Elman recurrence by hand: one product per step, then the FC layer
        for t in range(x.shape[1]):
            pre = x[:, t] @ p["cell.weight_ih"].T + h @ p["cell.weight_hh"].T + p["cell.bias"]
            values.append(pre.abs().flatten())
            h = torch.tanh(pre)
        values.append((h @ p["fc.weight"].T + p["fc.bias"]).abs().flatten())
    hand = torch.cat(values).double().numpy()
    assert preactivation_bound(model, x) == pytest.approx(np.quantile(hand, 0.999), rel=1e-5)
    assert preactivation_bound(model, x, 1.0) == pytest.approx(hand.max(), rel=1e-6)


# --- Dask and the command line --------------------------------------------------------------------------

def test_a_multi_seed_sweep_on_a_dask_cluster_gives_the_numbers_of_one_process(two_seeds, tmp_path):
    """Every Dask worker computes with one torch thread: so does the in-process reference here (the thread
    count changes floating-point sums, tests/test_distributed.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[0, 1], out=tmp_path / "one.nc", **QUIET)
    finally:
        torch.set_num_threads(threads)
    ds = run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[0, 1], out=tmp_path / "d.nc", workers=2, **QUIET)
    for var in ("accuracy", "loss", "model_crc"):
        xr.testing.assert_equal(ds[var], reference[var])


def test_cli_table_and_compare_print_intervals(two_seeds, tmp_path):
    _, out = two_seeds
    dni = [sys.executable, "-m", "dni.cli", "--quiet"]
    table = subprocess.run([*dni, "table", str(out)], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "mean over 2 training seeds (0, 1) ± 95 % Student-t interval" in table.stdout
    compare = subprocess.run([*dni, "compare", str(out), str(out), "--sigma-val", "0.5"], capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0, compare.stderr
    assert "n = 2 (0, 1)" in compare.stdout and "+0.00" in compare.stdout  # a model against itself: no difference
    bad = subprocess.run([*dni, "compare", str(out), "--sigma-val", "0.5"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "name the two settings" in bad.stderr


def test_dni_evaluate_of_seed_1_is_refused_by_a_seed_0_file_and_merges_as_the_sweep_wrote_it(two_seeds, tmp_path):
    from dni.evaluation.evaluate import evaluate_into

    reference, out = two_seeds
    folder = out.with_name("s_checkpoints")
    model = {k: load_checkpoint(checkpoint_path(folder, TrainConfig(preset="rnn28", sigma_train=0.5, epochs=1, seed=k))) for k in (0, 1)}
    target = tmp_path / "e.nc"
    evaluate_into(target, [model[0]], [0.0, 0.5], 2, progress=False, log=lambda m: None)
    with pytest.raises(InvalidArgumentError, match="training seeds \\[0, 1\\]"):
        evaluate_into(target, [model[0], model[1]], [0.0, 0.5], 2, progress=False, log=lambda m: None)
    from dni.errors import ResultConflictError

    with pytest.raises(ResultConflictError, match="evaluated with other weights"):  # seeds join a file by `dni sweep --train-seeds`
        evaluate_into(target, [model[1]], [0.0, 0.5], 2, progress=False, log=lambda m: None)
    one = evaluate_into(tmp_path / "one.nc", [model[1]], [0.0, 0.5], 2, progress=False, log=lambda m: None)
    ds = merge_results([load_results(target), one])  # `dni merge`: the two seeds, as the sweep wrote them
    for var in ("accuracy", "loss", "model_crc"):
        xr.testing.assert_equal(ds[var], reference[var])


def test_a_file_of_seed_1_drawn_before_the_key_change_is_not_extended(tmp_path):
    from dni.errors import ResultConflictError
    from dni.experiments.sweep import run_sweep

    old = tmp_path / "old.nc"
    run_sweep(**SMALL, sigma_train=[0.5], train_seeds=[1], out=old, **QUIET)
    ds = load_results(old)
    del ds.attrs["draw_key"]  # as the replicate file written before issue 34
    save_results(ds, old)
    with pytest.raises(ResultConflictError, match="training seed 1 evaluated before the training seed entered the draw key"):
        run_sweep(**{**SMALL, "sigma_val": [0.0, 0.5, 1.0]}, sigma_train=[0.5], train_seeds=[1], out=old, **QUIET)
