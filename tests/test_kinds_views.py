"""Issue 37: the grid of noise kinds as an instrument — every committed result opens, the kinds views
show the file's numbers, controls offer only what exists, the reopen line restores a view, the
accuracy views draw the across-seed band, and a sweep holds a fixed eval kind as one point.

Expected values are computed here from the raw file (xarray on the NetCDF, ``strengths.json`` for the
calibrated levels, scipy.stats.t for the intervals), not through the code under test.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import REPO
from dni_widgets.explorer import Explorer
from dni_widgets.loading import DEMO_DIR, open_result_models

from dni.store.layout import locate_checkpoints
from dni.store.results import load_results, model_crc

RESULTS = REPO / "results"
KINDS = RESULTS / "noise_kinds.nc"
STRENGTHS = json.loads((RESULTS / "noise_kinds" / "strengths.json").read_text())["strengths"]
COMMITTED = sorted(p for p in RESULTS.rglob("*.nc") if "_parts" not in str(p))


def raw(path=KINDS):
    """The file as xarray reads it; a grid in the kinds layout on the shared σ axes (the store's conversion,
    tested on its own against the per-pair files below)."""
    from dni.store.results import from_kinds_layout

    return from_kinds_layout(xr.open_dataset(path, engine="h5netcdf").load())


def is_result(path) -> bool:
    try:
        load_results(path)
        return True
    except Exception:  # noqa: BLE001 — calibration files and the like are not result sets
        return False


@pytest.mark.parametrize("path", [p for p in COMMITTED if is_result(p)], ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_result_opens_with_its_models(path):
    """open_results reads each file and finds exactly the models whose weights have the CRC the file records."""
    from dni.store.checkpoints import load_checkpoint

    ds, found = open_result_models(path)
    crcs = {int(v) for v in np.ravel(raw(path).model_crc.values) if v == v} if "model_crc" in raw(path) else set()
    for (arch, _, st, _), checkpoint in found.items():
        m = load_checkpoint(checkpoint)
        assert (m.arch, m.sigma_train) == (arch, st)
        assert model_crc(m.model) in crcs
    folder = path.with_name(path.stem + "_checkpoints")
    if folder.is_dir():  # a sweep's own folder: every model of the file whose checkpoint is there is found
        assert found
    explorer = Explorer(ds, found, digits=16, path=path)  # what Explorer.open(path) builds
    assert "nan" not in explorer.status.value and explorer.curves.data["ys"]
    if found:
        assert "no checkpoint" not in explorer.fig_weights.title.text


def test_the_kinds_grid_finds_its_models_in_both_folders():
    """The grid's own checkpoints (results/noise_kinds/checkpoints) and the additive ones it reuses
    (results/dni_paper_checkpoints): all 13 models, each the file's CRC."""
    ds, found = open_result_models(KINDS)
    file = raw()
    expected = {(str(t), float(st)) for t in file.train_noise.values for st in file.sigma_train.values
                if file.model_crc.sel(train_noise=t, arch="lstm28", sigma_train=st).notnull()}
    assert {(t, st) for (_, t, st, _) in found} == expected and len(expected) == 13
    assert found[("lstm28", "additive", 0.5, 0)] == RESULTS / "dni_paper_checkpoints" / "lstm28_sigma0.50_seed0.pt"
    assert found[("lstm28", "weight_read", 0.15, 0)] == RESULTS / "noise_kinds" / "checkpoints" / "lstm28_weight_read_sigma0.15_seed0.pt"


def test_a_folder_of_other_weights_under_the_same_names_is_refused(tmp_path):
    """A checkpoint whose name matches but whose weights do not have the recorded CRC is not the result's model."""
    import shutil

    ds = load_results(RESULTS / "paper_recipe" / "sgd.nc")
    shutil.copy(RESULTS / "dni_paper_checkpoints" / "lstm28_sigma0.00_seed0.pt", tmp_path / "lstm28_sigma0.00_seed0.pt")
    assert locate_checkpoints(ds, [tmp_path]) == {}
    assert len(locate_checkpoints(ds, [RESULTS / "paper_recipe" / "sgd_checkpoints"])) == 1


def test_dni_figures_writes_the_kinds_grid(tmp_path):
    """Issue 36 item 6: `dni figures GRID.nc` works; the page holds the kinds heatmap's numbers."""
    from dni.cli import main

    out = tmp_path / "kinds.html"
    assert main(["figures", str(KINDS), "-o", str(out), "--svg"]) == 0
    html = out.read_text()
    assert "per train kind \\u00d7 eval kind" in html and '"output_backend":"svg"' in html
    file = raw()
    middle = float(file.accuracy.sel(train_noise="weight_read", eval_noise="programming", arch="lstm28",
                                     sigma_train=STRENGTHS["weight_read"][1], sigma_val=STRENGTHS["programming"][1]).mean()) * 100
    assert f"{middle:.1f}" in html


@pytest.fixture(scope="module")
def kinds():
    return Explorer.open(KINDS, digits=32)


def level_mean(file, t, e, level):
    """Mean accuracy (%) of pair (t, e) at the calibrated level (0, 1, 2) of both kinds (strengths.json);
    a converter (no strength) at its one point, σval 0."""
    st = STRENGTHS[t][level]
    sv = STRENGTHS[e][level] if e in STRENGTHS else 0.0
    return float(file.accuracy.sel(train_noise=t, eval_noise=e, arch="lstm28", sigma_train=st, sigma_val=sv).mean()) * 100


def test_kinds_heatmap_cells_are_the_files_numbers_at_matched_strength(kinds):
    file = raw()
    for level, name in enumerate(("low", "middle", "high")):
        kinds.level.value = name
        cells = kinds.kinds_holder.children[0].select_one({"name": "kind_cells"}).data_source.data
        got = {(t, e): v for t, e, v in zip(cells["train_noise"], cells["eval_noise"], cells["accuracy"])}
        for t in STRENGTHS:
            for e in ("additive", "weight_read", "programming", "output_relative", "adc(bits=4,bound=16)"):
                if t != "additive" and e.startswith("adc"):
                    assert np.isnan(got[(t, e)])  # not measured: an empty cell, not a number
                else:
                    assert got[(t, e)] == pytest.approx(level_mean(file, t, e, level), rel=1e-12), (t, e, name)
    kinds.level.value = "middle"


def test_a_click_on_a_kinds_cell_selects_the_pair_everywhere(kinds):
    cells = kinds.kinds_holder.children[0].select_one({"name": "kind_cells"}).data_source
    k = next(i for i, (t, e) in enumerate(zip(cells.data["train_noise"], cells.data["eval_noise"]))
             if (t, e) == ("programming", "weight_read"))
    cells.selected.indices = [k]
    assert (kinds.train_noise.value, kinds.eval_noise.value) == ("programming", "weight_read")
    assert (kinds.sigma_train.value, kinds.sigma_val.value) == (STRENGTHS["programming"][1], STRENGTHS["weight_read"][1])
    file = raw()
    acc = file.accuracy.sel(train_noise="programming", eval_noise="weight_read", arch="lstm28")
    sts = [s for s in file.sigma_train.values if acc.sel(sigma_train=s).notnull().any()]
    svs = [s for s in file.sigma_val.values if acc.sel(sigma_val=s).notnull().any()]
    assert list(kinds.sigma_train.options) == sts and list(kinds.sigma_val.options) == svs  # only what exists
    for st, xs, ys in zip(kinds.curves.data["sigma_train"], kinds.curves.data["xs"], kinds.curves.data["ys"]):
        assert xs == svs
        np.testing.assert_allclose(ys, acc.sel(sigma_train=float(st), sigma_val=svs).mean("seed").values * 100, rtol=1e-12)
    marker = kinds.kinds_holder.children[0].select_one({"name": "selected_pair"}).data_source.data
    assert marker == {"x": ["weight_read"], "y": ["programming"]}
    assert "over 40 evaluation repeats" in kinds.status.value and "nan" not in kinds.status.value
    assert kinds.timings["accuracy"] < 60  # recorded (not asserted as speed)


def test_lines_per_training_kind_follow_the_eval_kind(kinds):
    kinds.set_selection(train_noise="additive", eval_noise="weight_read", sigma_train=0.5, sigma_val=0.15)
    lines = kinds.kinds_holder.children[1]
    renderers = [r for r in lines.renderers if type(r.glyph).__name__ == "Line"]
    file = raw()
    expected = {}
    for t in file.train_noise.values:
        acc = file.accuracy.sel(train_noise=t, eval_noise="weight_read", arch="lstm28").mean("seed")
        for st in file.sigma_train.values:
            if acc.sel(sigma_train=st).notnull().any():
                expected[(str(t), float(st))] = acc.sel(sigma_train=st, sigma_val=[0.0, 0.11, 0.15, 0.2]).values * 100
    assert len(renderers) == len(expected) == 13
    for r in renderers:
        data = r.data_source.data
        np.testing.assert_allclose(data["value"], expected[(data["train_noise"][0], data["sigma_train"][0])], rtol=1e-12)
        assert data["sigma_val"] == [0.0, 0.11, 0.15, 0.2]
    markers = [r for r in lines.renderers if type(r.glyph).__name__ == "Scatter"]
    assert len(markers) == 13  # a marker on every measured point of every line


def test_a_converter_point_says_deterministic_and_tooltips_print_plain_numbers(kinds):
    kinds.set_selection(train_noise="additive", eval_noise="adc(bits=4,bound=16)", sigma_train=1.0)
    assert list(kinds.sigma_val.options) == [0.0]
    assert "over 1 deterministic evaluation" in kinds.status.value
    file = raw()
    acc = float(file.accuracy.sel(train_noise="additive", eval_noise="adc(bits=4,bound=16)", arch="lstm28",
                                  sigma_train=1.0, sigma_val=0.0).mean()) * 100
    assert f"{acc:.1f} %" in kinds.status.value
    assert ("σval", "@x{0.[0000]}") in kinds.fig_accuracy.hover.tooltips
    heat_tips = dict(kinds.kinds_holder.children[0].hover.tooltips)
    assert "@sigma_val{0.[0000]}" in heat_tips["evaluated under"] and "@sigma_train{0.[0000]}" in heat_tips["trained under"]
    legend = [item.label.value for item in kinds.fig_accuracy.legend[0].items]
    assert "baseline σtrain = σval = 0" in legend


def test_default_view_shows_data_and_the_reopen_line_restores_the_view(kinds):
    fresh = Explorer.open(KINDS, digits=32)
    assert (fresh.train_noise.value, fresh.eval_noise.value) == ("additive", "additive")
    assert "nan" not in fresh.status.value and fresh.sigma_val.value in fresh.sigma_val.options
    fresh.set_selection(train_noise="weight_read", eval_noise="programming", sigma_train=0.2, sigma_val=0.13)
    fresh.level.value = "high"
    fresh.compare.value = True
    fresh.compare_noise.value = "additive"
    fresh.compare_sigma.value = 0.7
    fresh.save_as.value = "SVG"
    line = fresh.reopen_line()
    assert line.startswith(f"Explorer.open({str(KINDS)!r}, select=") and line in fresh.reopen.value.replace("&#x27;", "'")
    again = eval(line, {"Explorer": Explorer})
    assert again.selection() == fresh.selection()
    for name in ("train_noise", "eval_noise", "sigma_train", "sigma_val", "level", "compare", "compare_noise", "compare_sigma", "save_as"):
        assert getattr(again, name).value == getattr(fresh, name).value, name
    assert again.fig_accuracy.output_backend == "svg"
    assert again.compare_curve.data["y"]  # the compared model's curve is drawn


def test_comparison_shows_the_second_models_curve_and_states():
    ex = Explorer.open(KINDS, digits=32, select={"train_noise": "weight_read", "eval_noise": "weight_read", "sigma_train": 0.15,
                                                 "sigma_val": 0.15, "compare": ("additive", 0.0)})
    file = raw()
    expected = file.accuracy.sel(train_noise="additive", eval_noise="weight_read", arch="lstm28", sigma_train=0.0,
                                 sigma_val=[0.0, 0.11, 0.15, 0.2]).mean("seed").values * 100
    np.testing.assert_allclose(ex.compare_curve.data["y"], expected, rtol=1e-12)
    assert ex.compare_row.visible and len(ex.h_compare.data["ys"]) == 28
    assert ex.h_compare.data["ys"] != ex.h_lines.data["ys"]  # another model, other states


# --- across training seeds (issue 34) -----------------------------------------------------------


def three_seeds():
    """The demo's results as if trained with seeds 0, 1, 2: seed k's accuracies shifted by a different amount per point."""
    demo = load_results(DEMO_DIR / "demo.nc")
    rng = np.random.default_rng(0)
    parts = [demo.accuracy + (0 if k == 0 else rng.normal(0, 0.01, demo.accuracy.shape[:-1] + (1,))) for k in range(3)]
    acc = xr.concat(parts, dim=xr.DataArray([0, 1, 2], dims="train_seed", name="train_seed"))
    ds = demo.drop_vars(["train_seed"]).assign(accuracy=acc.transpose("arch", "sigma_train", "sigma_val", "seed", "train_seed"))
    return ds


def test_accuracy_band_is_the_t_interval_across_seeds():
    from scipy import stats
    from dni_widgets.figures import accuracy_figure, accuracy_sources

    ds = three_seeds()
    per_seed = ds.accuracy.sel(arch="lstm28").mean("seed").values * 100  # (σtrain, σval, train seed)
    sources = accuracy_sources(ds, "lstm28")
    for k, st in enumerate(ds.sigma_train.values):
        x = per_seed[k]
        mean, sem = x.mean(axis=-1), x.std(axis=-1, ddof=1) / np.sqrt(3)
        half = stats.t.ppf(0.975, 2) * sem
        np.testing.assert_allclose(sources[float(st)]["value"], mean, rtol=1e-12)
        np.testing.assert_allclose(sources[float(st)]["low"], mean - half, rtol=1e-12)
        np.testing.assert_allclose(sources[float(st)]["high"], mean + half, rtol=1e-12)
    fig = accuracy_figure(ds, "lstm28")
    assert "t-interval over 3 training seeds" in fig.title.text and fig.select({"name": "seed_band"})
    one = accuracy_figure(load_results(DEMO_DIR / "demo.nc"), "lstm28")
    assert "1 seed: no interval" in one.title.text and not one.select({"name": "seed_band"})
    np.testing.assert_allclose(accuracy_sources(ds, "lstm28", seeds=1)[0.5]["value"], per_seed[1, :, 1], rtol=1e-12)


def test_explorer_offers_all_seeds_or_one(tmp_path):
    from scipy import stats

    ds = three_seeds()
    ex = Explorer(ds, {}, digits=32, select={"arch": "lstm28", "sigma_train": 0.5, "sigma_val": 0.7})
    assert [v for _, v in ex.train_seeds.options] == ["all", 0, 1, 2]
    per_seed = ds.accuracy.sel(arch="lstm28").mean("seed").values * 100
    k = list(ex.curves.data["sigma_train"]).index("0.5")
    x = per_seed[list(ds.sigma_train.values).index(0.5)]
    half = stats.t.ppf(0.975, 2) * x.std(axis=-1, ddof=1) / np.sqrt(3)
    band = ex.bands.data["ys"][k]
    n = len(ds.sigma_val)
    np.testing.assert_allclose(band[:n], x.mean(axis=-1) - half, rtol=1e-12)
    np.testing.assert_allclose(band[n:][::-1], x.mean(axis=-1) + half, rtol=1e-12)
    assert "t-interval over 3 training seeds" in ex.status.value and "mean of 3 training seeds" in ex.status.value
    ex.train_seeds.value = 2
    assert ex.bands.data["ys"] == [] and "1 seed: no interval" in ex.status.value
    np.testing.assert_allclose(ex.curves.data["ys"][k], x[:, 2], rtol=1e-12)


# --- a fixed eval kind in a sweep's grid (issue 36 item 14) -------------------------------------


def test_a_sweep_holds_a_fixed_eval_kind_as_one_point_beside_a_sigma_kind(tmp_path):
    from dni.cli import main

    out = tmp_path / "grid.nc"
    assert main(["sweep", "--epochs", "1", "--sigma-train", "0", "--eval-noise", "additive", "--eval-noise", "adc(bits=4,bound=16)",
                 "--sigma-val", "0:1:0.5", "--repeats", "2", "--out", str(out), "--quiet"]) == 0
    file = raw(out)
    assert sorted(file.eval_noise.values.tolist()) == ["adc(bits=4,bound=16)", "additive"]
    additive = file.accuracy.sel(train_noise="additive", eval_noise="additive", arch="lstm28", sigma_train=0.0)
    adc = file.accuracy.sel(train_noise="additive", eval_noise="adc(bits=4,bound=16)", arch="lstm28", sigma_train=0.0)
    assert additive.notnull().any("seed").values.tolist() == [True, True, True]
    assert adc.notnull().any("seed").values.tolist() == [True, False, False]  # one point, at σval 0
    ex = Explorer.open(out, digits=16, select={"eval_noise": "adc(bits=4,bound=16)"})
    assert list(ex.sigma_val.options) == [0.0] and "1 deterministic evaluation" in ex.status.value


def test_svg_export_writes_each_plot(tmp_path):
    from test_browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    from dni_widgets.figures import PngRenderer
    from dni_widgets.kinds import kinds_figures

    with PngRenderer() as renderer:
        paths = renderer.save_svg(kinds_figures(load_results(KINDS), "lstm28"), tmp_path / "kinds.svg")
    assert len(paths) >= 4  # three heatmaps and the lines per σ-kind
    import xml.etree.ElementTree as ET

    root = ET.parse(paths[0]).getroot()
    assert root.tag.endswith("svg") and "weight_read" in paths[0].read_text()


# --- the kinds layout (issue 37 item 2) ---------------------------------------------------------


def test_the_committed_grid_is_stored_in_the_kinds_layout_with_the_parts_numbers():
    """results/noise_kinds.nc holds each kind's own strengths as levels; read back (load_results) it is the
    shared-axes grid whose every point equals the per-pair files it was merged from, and nothing else."""
    import glob

    from dni.store.results import merge_results

    stored = xr.open_dataset(KINDS, engine="h5netcdf").load()
    assert stored.attrs["layout"] == "kinds" and "sigma_train" not in stored.dims and "train_level" in stored.dims
    assert stored.sigma_train.sel(train_noise="weight_read").values[:3].tolist() == STRENGTHS["weight_read"]
    grid = load_results(KINDS)
    parts = merge_results(load_results(p) for p in sorted(glob.glob(str(RESULTS / "noise_kinds" / "*__*.nc")))
                          + sorted(glob.glob(str(RESULTS / "noise_kinds" / "adc_bits*.nc"))))
    expected = parts.accuracy.reindex_like(grid.accuracy)
    assert int(grid.accuracy.notnull().sum()) == int(expected.notnull().sum()) > 8000
    np.testing.assert_array_equal(grid.accuracy.values, expected.values)  # bit for bit, NaN where no point


def hand_grid():
    """Two train kinds × two eval kinds (one fixed), each with its own strengths, two training seeds."""
    rng = np.random.default_rng(1)
    sigma_train, sigma_val = [0.0, 0.1, 0.5, 1.0], [0.0, 0.2, 0.7]
    acc = np.full((2, 2, 1, 4, 3, 2, 3), np.nan)  # (train, eval, arch, σtrain, σval, train_seed, seed)
    acc[0, 0, 0][np.ix_([0, 2, 3], [0, 2])] = rng.random((3, 2, 2, 3))  # additive: σtrain 0, 0.5, 1; σval 0, 0.7
    acc[1, 0, 0][np.ix_([1], [0, 1, 2])] = rng.random((1, 3, 2, 3))  # weight_read: σtrain 0.1, also at σval 0.2
    acc[0, 1, 0][np.ix_([0, 2, 3], [0])] = rng.random((3, 1, 2, 3))  # a fixed eval kind: σval 0 only
    crc = np.full((2, 1, 4), np.nan)
    crc[0, 0, [0, 2, 3]], crc[1, 0, 1] = [1.0, 2.0, 3.0], 4.0
    return xr.Dataset(
        {"accuracy": (("train_noise", "eval_noise", "arch", "sigma_train", "sigma_val", "train_seed", "seed"), acc),
         "model_crc": (("train_noise", "arch", "sigma_train"), crc)},
        coords={"train_noise": ["additive", "weight_read"], "eval_noise": ["additive", "adc(bits=4,bound=16)"], "arch": ["lstm28"],
                "sigma_train": sigma_train, "sigma_val": sigma_val, "train_seed": [0, 1], "seed": [0, 1, 2]},
        attrs={"dataset": "subset", "eval_seed": 0})


def test_kinds_layout_round_trip_keeps_every_number(tmp_path):
    from dni.store.results import from_kinds_layout, save_kinds_results, to_kinds_layout

    wide = hand_grid()
    compact = to_kinds_layout(wide)
    assert compact.sizes["train_level"] == 3 and compact.sizes["eval_level"] == 3
    assert compact.sigma_train.sel(train_noise="weight_read").values.tolist()[:1] == [0.1]
    assert np.isnan(compact.sigma_val.sel(eval_noise="adc(bits=4,bound=16)").values[1])  # a fixed kind: one level
    xr.testing.assert_identical(from_kinds_layout(compact), wide)
    one_seed = wide.isel(train_seed=0, drop=True)  # (the store reads a train_seed dim once issue 34 lands)
    path = save_kinds_results(one_seed, tmp_path / "grid.nc")
    xr.testing.assert_identical(load_results(path), one_seed)
    assert xr.open_dataset(path, engine="h5netcdf").attrs["layout"] == "kinds"



def test_dni_merge_writes_the_kinds_layout_and_table_reads_it(tmp_path, capsys):
    from dni.cli import main
    from dni.store.results import accuracy_table

    out = tmp_path / "grid.nc"
    parts = [RESULTS / "noise_kinds" / "weight_read__programming.nc", RESULTS / "noise_kinds" / "adc_bits4.nc"]
    assert main(["merge", *map(str, parts), "--out", str(out), "--kinds-layout"]) == 0
    assert xr.open_dataset(out, engine="h5netcdf").attrs["layout"] == "kinds"
    wide = load_results(out)
    from dni.store.results import merge_results

    xr.testing.assert_equal(wide.accuracy, merge_results(load_results(p) for p in parts).accuracy)
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    assert capsys.readouterr().out.strip() == accuracy_table(merge_results(load_results(p) for p in parts)).strip()


def test_reproduction_shows_the_kinds_grid_as_a_figure():
    """Issue 37, item 3: the kinds views as a static figure in REPRODUCTION.md (block ``noise-kinds-figure``, rendered by
    ``dni reproduction`` with the other figures), linking the committed PNG."""
    from pathlib import Path

    from dni.paper.reproduction import KINDS_FIGURE, document_blocks, figure_path, noise_kinds_figure_block

    repo = Path(__file__).resolve().parents[1]
    block = document_blocks((repo / "REPRODUCTION.md").read_text(encoding="utf-8"))["noise-kinds-figure"]
    assert block == noise_kinds_figure_block("lstm28", repo / "results" / "figures", repo)
    png = figure_path(repo / "results" / "figures", "lstm28", KINDS_FIGURE)
    assert "(results/figures/lstm28_noise_kinds.png)" in block and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
