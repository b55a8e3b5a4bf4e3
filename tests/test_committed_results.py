"""The committed reproduction (issue 6): results/dni_paper.nc, its checkpoints, and REPRODUCTION.md.

These tests read committed files only (no training, no full MNIST): the result set must hold the
paper's full grid with no gap, come from the committed checkpoints, and every number in
REPRODUCTION.md must equal one recomputed from it.
"""

import re

import numpy as np
import pytest
from conftest import REPO, needs_full_mnist

from dni.store.checkpoints import load_checkpoint
from dni.store.layout import find_checkpoints
from dni.store.results import load_results, merge_results, model_crc

RESULTS = REPO / "results"
DOC = REPO / "REPRODUCTION.md"
PRESETS = ["lstm28", "lstm_stroke50", "rnn28"]  # the paper's three networks (Tables I, II, III)
GRID = np.round(np.arange(0, 1.01, 0.1), 1)  # σtrain and σval: 0.0, 0.1, …, 1.0 (paper Figs 2, 10)
PATIENCE = {"lstm28": 10, "lstm_stroke50": 10, "rnn28": 20}  # results/run_paper_grid.sh
EPOCH_LIMIT = {"lstm28": 100, "lstm_stroke50": 100, "rnn28": 300}


@pytest.fixture(scope="module")
def paper():
    return load_results(RESULTS / "dni_paper.nc")


def test_the_dataset_holds_the_full_grid_without_gaps(paper):
    assert sorted(paper.arch.values.tolist()) == sorted(PRESETS)
    np.testing.assert_allclose(paper.sigma_train.values, GRID)
    np.testing.assert_allclose(paper.sigma_val.values, GRID)
    assert paper.sizes["seed"] == 40
    assert paper.attrs["dataset"] == "mnist" and int(paper.attrs["test_size"]) == 10_000
    for name in ("accuracy", "loss", "weight_power", "epochs", "best_epoch", "model_crc"):
        assert int(paper[name].isnull().sum()) == 0, f"{name} has missing values"
    acc = paper.accuracy.values  # (arch, σtrain, σval, seed)
    assert ((acc >= 0) & (acc <= 1)).all()
    # σval 0 draws no noise: its 40 repeats are one deterministic evaluation ...
    clean = paper.accuracy.sel(sigma_val=0.0).values  # (arch, σtrain, seed)
    assert (clean == clean[..., :1]).all()
    # ... while noisy repeats draw their own noise, so they differ
    assert (paper.accuracy.sel(sigma_val=1.0).std("seed") > 0).all()
    # accuracies are counts of 10,000 test digits
    np.testing.assert_allclose(acc * 10_000, np.round(acc * 10_000), atol=1e-6)


def test_every_model_stopped_by_the_convergence_criterion(paper):
    """No model hit the epoch limit: each ran exactly PATIENCE epochs past its best (results/README.md)."""
    for arch in PRESETS:
        epochs = paper.epochs.sel(arch=arch).values
        best = paper.best_epoch.sel(arch=arch).values
        np.testing.assert_array_equal(epochs - best, PATIENCE[arch], err_msg=arch)
        assert (epochs < EPOCH_LIMIT[arch]).all(), arch


def test_the_dataset_is_the_merge_of_the_committed_sweeps(paper):
    merged = merge_results(load_results(RESULTS / "sweeps" / f"{arch}.nc") for arch in PRESETS)
    for name in ("accuracy", "loss", "weight_power", "epochs", "model_crc"):
        np.testing.assert_array_equal(merged[name].sel(arch=paper.arch).values, paper[name].values, err_msg=name)


def test_the_results_come_from_the_committed_checkpoints(paper):
    found = find_checkpoints(paper, RESULTS / "dni_paper_checkpoints")
    assert len(found) == len(PRESETS) * len(GRID)
    for (arch, sigma_train), path in found.items():
        model = load_checkpoint(path)
        assert model_crc(model.model) == int(paper.model_crc.sel(arch=arch, sigma_train=sigma_train)), path.name
        assert model.meta["epochs_run"] == int(paper.epochs.sel(arch=arch, sigma_train=sigma_train)), path.name


def _blocks(text: str) -> dict:
    """{name: body} of the generated blocks, read with a pattern of this test's own (not dni.paper.reproduction's)."""
    found = re.findall(r"<!-- dni:begin ([\w-]+) -->\n(.*?)\n?<!-- dni:end \1 -->", text, flags=re.S)
    assert len({name for name, _ in found}) == len(found), "a block appears twice"
    return dict(found)


def _table(body: str, first_cell: str) -> list[str]:
    """The cells of the markdown row whose first cell is ``first_cell``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines() if line.startswith("|")]
    matches = [r for r in rows if r[0] == first_cell]
    assert len(matches) == 1, (first_cell, body)
    return matches[0]


def test_reproduction_md_blocks_equal_a_direct_computation(paper):
    """Every number of the generated blocks of REPRODUCTION.md, recomputed with numpy from the committed
    files (not through dni.paper.report or dni.paper.reproduction): provenance, differences, noisy points, spread,
    every mean of the accuracy tables, the training-length runs, and one figure link per preset and kind."""
    from dni.paper.report import (
        PAPER,  # the paper's numbers (data, transcribed from the paper)
    )

    blocks = _blocks(DOC.read_text(encoding="utf-8"))
    assert set(blocks) == {"provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures", "training-length",
                           "paper-recipe", "paper-recipe-dni", "noise-kinds-middle", "noise-kinds-grid", "noise-kinds-best", "adc-bits",
                           "noise-kinds-figure", "adc-own-range", "seeds-provenance", "seeds-claims", "seeds-differences",
                           "seeds-collapse", "seeds-figures", "seeds-kinds", "seeds-kinds-differences"}  # the last eight: issue 34,
    # checked by the tests below
    st, sv = paper.sigma_train.values, paper.sigma_val.values
    mean = {arch: paper.accuracy.sel(arch=arch).values.mean(axis=-1) for arch in PRESETS}  # (σtrain, σval)

    prov = blocks["provenance"]
    assert f"- test set: mnist, {int(paper.attrs['test_size']):,} digits; {paper.sizes['seed']} noisy repeats" in prov
    assert f"evaluation noise seed {int(paper.attrs['eval_seed'])}" in prov
    assert f"- missing values in the accuracy grid: {int(np.isnan(paper.accuracy.values).sum())}" in prov
    for arch in PRESETS:
        cells = _table(prov, arch)
        assert cells[1] == ", ".join(str(int(e)) for e in paper.epochs.sel(arch=arch).values)
        assert cells[2] == f"{paper.train_seconds.sel(arch=arch).values.sum() / 3600:.2f} h"

    for arch in PRESETS:
        acc, p = mean[arch], PAPER[arch]
        clean, at_1, worst = acc[0, 0], acc[0, -1], acc.min(axis=1)
        best = int(np.argmax(worst))
        power = paper.weight_power.sel(arch=arch).values
        cells = _table(blocks["differences"], arch)
        assert cells[1] == f"{(clean - p['clean']) * 100:+.1f}" and cells[2] == f"{(at_1 - p['conventional_at_1']) * 100:+.1f}"
        assert cells[3] == f"{st[best]:.1f} / {p['best_sigma_train']:.1f}"
        bound = float(p["worst_case"].strip("> %")) / 100
        assert cells[4] == f"{'yes' if worst[best] > bound else 'no'} ({worst[best] * 100:.1f} % vs {p['worst_case']})"
        assert cells[5].startswith(f"×{power[-1] / power[0]:.2f} / ")

        noisy = acc[:, sv > 0]
        i, j = np.unravel_index(np.argmax(noisy), noisy.shape)
        cells = _table(blocks["noisy-points"], arch)
        assert cells[1] == f"{clean * 100:.1f} %" and cells[2] == f"({st[i]:g}, {sv[sv > 0][j]:g})"
        assert cells[3] == f"{noisy.max() * 100:.1f} % ({(noisy.max() - clean) * 100:+.2f})"
        assert cells[4] == f"{int((noisy > clean).sum())} of {noisy.size}"
        assert cells[5] == f"{int((noisy > acc[:, :1]).sum())} of {noisy.size}"  # above the same model at σval 0

        reps = paper.accuracy.sel(arch=arch).values[:, sv > 0]  # (σtrain, noisy σval, repeat): σval 0's equal repeats left out
        std = reps.std(axis=-1, ddof=1) * 100
        i, j = np.unravel_index(np.argmax(std), std.shape)
        assert _table(blocks["spread"], arch)[1:] == [f"{std.max():.2f}", f"({st[i]:g}, {sv[sv > 0][j]:g})", f"{np.median(std):.2f}",
                                                      f"{np.median(std / np.sqrt(reps.shape[-1])):.3f}"]

        table = blocks["tables"].split(f"{arch}: test accuracy (%), mean of {paper.sizes['seed']} repeat(s) on mnist\n")[1]
        lines = table.splitlines()
        assert [float(v) for v in lines[0].split()[1:]] == pytest.approx(sv)
        for k, row in enumerate(acc):
            label, *values = lines[1 + k].split()
            assert float(label) == pytest.approx(st[k])
            np.testing.assert_allclose([float(v) for v in values], np.round(row * 100, 1), atol=1e-9, err_msg=f"{arch} σtrain {st[k]}")

        links = re.findall(rf"\]\((results/figures/{arch}_(\w+)\.png)\)", blocks["figures"])
        assert sorted(kind for _, kind in links) == ["accuracy", "heatmap", "states", "weights"]
        for link, _ in links:
            assert (REPO / link).is_file(), f"{link} is linked but missing: run dni reproduction"

    runs = [load_results(p) for p in sorted((RESULTS / "training_length").glob("*.nc"))]
    assert runs
    for run in runs:
        epochs = int(run.epochs.item())
        acc = run.accuracy.sel(arch="lstm28", sigma_train=0.0).values.mean(axis=-1)  # σval 0, 0.5, 1
        assert np.allclose(run.sigma_val.values, [0.0, 0.5, 1.0])
        cells = _table(blocks["training-length"], f"{epochs} epoch{'' if epochs == 1 else 's'}")
        assert cells[1:] == [f"{run.weight_power.item():.4f}"] + [f"{a * 100:.1f} %" for a in acc]
    converged = [c for c in blocks["training-length"].splitlines() if c.startswith("| convergence")]
    assert len(converged) == 1
    lstm = paper.sel(arch="lstm28", sigma_train=0.0)
    assert converged[0].endswith(f"(the main grid: best epoch {int(lstm.best_epoch)} of {int(lstm.epochs)}) | "
                                 f"{float(lstm.weight_power):.4f} | " + " | ".join(
                                     f"{lstm.accuracy.sel(sigma_val=v).values.mean() * 100:.1f} %" for v in (0.0, 0.5, 1.0)) + " |")


def test_paper_recipe_block_and_prose_equal_a_direct_computation():
    """Issue 26's table: one row per committed factor (results/paper_recipe/<factor>.nc) with its model's epochs, its
    accuracies and mean(w²), recomputed with numpy; and the numbers the prose quotes about the factors."""
    import xarray as xr

    block = _blocks(DOC.read_text(encoding="utf-8"))["paper-recipe"]
    factors = sorted((RESULTS / "paper_recipe").glob("*.nc"))
    assert factors, "the study has committed factors"
    pair = {"lstm28": (98.3, 25), "rnn28": (97.6, 25), "lstm_stroke50": (95.6, 25)}  # the paper's clean less 0.4 point; ≤ 25 %
    rows, other_presets = {}, {}  # lstm28's factors; (preset, factor) of the others' (results/paper_recipe/<preset>_<factor>.nc)
    for path in factors:
        ds = xr.open_dataset(path, engine="h5netcdf")
        arch = str(ds.arch.values[0])
        factor = path.stem.removeprefix(f"{arch}_")
        assert (factor == path.stem) == (arch == "lstm28"), path.stem
        run = ds.sel(arch=arch, sigma_train=0.0)
        acc = run.accuracy.values.mean(axis=-1) * 100  # (σval,): 0, 0.5, 1
        assert np.allclose(run.sigma_val.values, [0.0, 0.5, 1.0]) and run.sizes["seed"] == 40
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines() if line.startswith(f"| {arch} | {factor} |")]
        assert len(cells) == 1, path.stem
        assert cells[0][3:] == [f"{int(run.epochs)} ({int(run.best_epoch)})"] + [f"{a:.1f} %" for a in acc] + [
            f"{float(run.weight_power):.4f}", "yes" if acc[0] >= pair[arch][0] and acc[2] <= pair[arch][1] else "no"], path.stem
        (rows if arch == "lstm28" else other_presets)[factor if arch == "lstm28" else (arch, factor)] = (acc, float(run.weight_power))
    # the prose: "L2 weight decay 1e-4 keeps 99.1 % clean and falls to 44.5 % at σval 1 …; … init … falls to 64.7 %"
    prose = _section("### What makes the paper's conventional model collapse?", "**Readings of the noise placement**")
    decay, example, steps = rows["weight_decay_1e-4"], rows["tf_example"], rows["steps_10k"]
    assert f"changes little: {steps[0][0]:.1f} % clean, {steps[0][2]:.1f} % at σval 1" in prose
    assert f"decay 1e-4 keeps {decay[0][0]:.1f} % clean and falls to {decay[0][2]:.1f} % at σval 1" in prose
    # "L2 weight decay reproduces the paper's pair: at 1e-3, 98.7 % clean and 12.3 % at σval 1 … (and 56.7 % at σval 0.5);
    # at 3e-4, 99.0 % clean and 24.9 % at σval 1, just inside the issue's test"; "No other factor does"
    strong, middle, glorot = rows["weight_decay_1e-3"], rows["weight_decay_3e-4"], rows["glorot"]
    assert [other for other, (acc, _) in rows.items() if acc[0] >= 98.3 and acc[2] <= 25] == ["weight_decay_1e-3", "weight_decay_3e-4"]
    assert (f"reproduces the paper's pair**: at 1e-3, {strong[0][0]:.1f} % clean and {strong[0][2]:.1f} % at σval 1, where the "
            f"paper reports 98.7 % and 12.5 % (and {strong[0][1]:.1f} % at σval 0.5); at 3e-4, {middle[0][0]:.1f} % clean and "
            f"{middle[0][2]:.1f} % at σval 1, just inside the issue's test") in prose
    assert 24 < middle[0][2] <= 25  # "just inside"
    scale = rows["input_scale_255"]
    assert (f"Raw 0–255 pixels train to only {scale[0][0]:.1f} % clean under the grid's schedule and keep {scale[0][2]:.1f} % at σval 1, "
            f"with the largest weights of the study (mean(w²) {scale[1]:.4f})") in prose
    assert max(rows.values(), key=lambda r: r[1]) is scale
    assert f"mean(w²) {strong[1]:.4f}, a seventh of the paper's 0.013" in prose and round(0.013 / strong[1]) == 7
    assert f"with forget bias 1 (TensorFlow 1.x's `BasicLSTMCell`) keeps {glorot[0][2]:.1f} % at σval 1" in prose
    assert f"RMSProp (TensorFlow 1.x's defaults) keeps {rows['rmsprop'][0][2]:.1f} %" in prose
    # the σtrain 1.0 model under weight decay 1e-3 (results/paper_recipe/dni/): "keeps 96.1 % where the conventional one
    # falls to 12.3 % …; it reaches 97.8 % clean and 96.1 % at σval 1 …; mean(w²) 0.0019 → 0.0055, ×2.9"
    under = xr.open_dataset(RESULTS / "paper_recipe/dni/weight_decay_1e-3.nc", engine="h5netcdf").sel(arch="lstm28", sigma_train=1.0)
    dni_acc = under.accuracy.sel(sigma_val=[0.0, 1.0]).values.mean(axis=-1) * 100
    dni_prose = _section("table below).", "The other factors do not produce the collapse.")
    assert f"at σval 1 the σtrain 1.0 model keeps {dni_acc[1]:.1f} % where the conventional one falls to {strong[0][2]:.1f} %" in dni_prose
    assert f"it reaches {dni_acc[0]:.1f} % clean and {dni_acc[1]:.1f} % at σval 1" in dni_prose
    assert under.accuracy.mean("seed").max() * 100 < 98  # "it is below 98 % at every σval"
    committed = load_results(RESULTS / "dni_paper.nc").accuracy.sel(arch="lstm28", sigma_train=1.0).mean("seed")  # (σval,)
    assert (committed - under.accuracy.mean("seed")).min() * 100 >= 1.0  # "a point or more below the committed σtrain 1.0 model everywhere"
    dni_block = _blocks(DOC.read_text(encoding="utf-8"))["paper-recipe-dni"]
    bound = {"lstm28": 98, "rnn28": 94, "lstm_stroke50": 92}  # the paper's worst case of its best σtrain (§III)
    dni_runs = sorted((RESULTS / "paper_recipe/dni").glob("*.nc"))
    assert len(dni_runs) >= 2
    for path in dni_runs:  # every σtrain 1.0 model's row: its 11 σval means, the worst, the verdict
        ds = xr.open_dataset(path, engine="h5netcdf")
        arch = str(ds.arch.values[0])
        model = ds.sel(arch=arch, sigma_train=1.0)
        means = model.accuracy.values.mean(axis=-1) * 100  # (σval,): 0, 0.1, …, 1
        assert np.allclose(model.sigma_val.values, np.round(np.arange(0, 1.01, 0.1), 1)) and model.sizes["seed"] == 40
        label = f"| {arch} | σtrain 1.0, {path.stem.removeprefix(arch + '_')} |"
        lines = [line for line in dni_block.splitlines() if line.startswith(label)]
        assert len(lines) == 1, label
        row = [c.strip() for c in lines[0].strip("|").split("|")]
        assert row[2:] == [f"{m:.1f} %" for m in means] + [f"{means.min():.1f} %", "yes" if means.min() > bound[arch] else "no"], label
    # across training seeds 0–2 (issue 34): the two settings' mean(w²) with their t-intervals, and the growth of the means
    from scipy import stats

    def over_seeds(name):
        w = xr.load_dataset(SEEDS_DIR / f"{name}.nc").weight_power.values.ravel()
        low, high = stats.t.interval(0.95, len(w) - 1, loc=w.mean(), scale=stats.sem(w))
        return w.mean(), f"{w.mean():.4f} [{low:.4f}, {high:.4f}]"

    (w0, text0), (w1, text1) = over_seeds("weight_decay_1e-3"), over_seeds("weight_decay_1e-3_dni")
    assert f"mean(w²) {text0} → {text1}, about ×{w1 / w0:.1f}" in " ".join(dni_prose.split())
    # "decay 3e-4 comes closer to both: … keeps 98.2 % or more up to σval 0.9 but reaches 97.8 % at σval 1, 0.2 point short
    # of the paper's bound (its mean(w²) 0.0038 → 0.0100, ×2.6)"
    weaker = xr.open_dataset(RESULTS / "paper_recipe/dni/weight_decay_3e-4.nc", engine="h5netcdf").sel(arch="lstm28", sigma_train=1.0)
    means = weaker.accuracy.mean("seed") * 100  # (σval,)
    up_to, at_1 = float(means.sel(sigma_val=slice(0, 0.9)).min()), float(means.sel(sigma_val=1.0))
    assert up_to >= 98 > at_1
    assert (f"its σtrain 1.0 model keeps {up_to:.1f} % or more up to σval 0.9 but reaches {at_1:.1f} % at σval 1, "
            f"{98 - at_1:.1f} point short of the paper's bound (its mean(w²) {middle[1]:.4f} → {float(weaker.weight_power):.4f}, "
            f"×{float(weaker.weight_power) / middle[1]:.1f})") in dni_prose
    # the answer and the other presets: every number quoted recomputed from the .nc files
    answer = _section("### What makes the paper's conventional model collapse?", "No model above has both")
    others = _section("**The other presets.**", "The other factors do not produce the collapse.")
    rnn, rnn_weaker, strokes = (other_presets[k][0] for k in (("rnn28", "weight_decay_1e-3"), ("rnn28", "weight_decay_3e-4"),
                                                            ("lstm_stroke50", "weight_decay_1e-3")))
    assert (f"(LSTM-28 {strong[0][0]:.1f} % clean and {strong[0][2]:.1f} % at σval 1, the paper 98.7 % and 12.5 %; RNN-28 "
            f"{rnn[0]:.1f} % and {rnn[2]:.1f} %, the paper 98.0 % and 15 %; strokes {strokes[0]:.1f} % and {strokes[2]:.1f} %, "
            "the paper 96 % and 10.5 %)") in answer
    assert all(acc[2] > 25 for name, (acc, _) in rows.items() if not name.startswith("weight_decay"))  # "none of the seven other"
    assert sum(not name.startswith("weight_decay") for name in rows) == 7
    rnn_dni = xr.open_dataset(RESULTS / "paper_recipe/dni/rnn28_weight_decay_1e-3.nc", engine="h5netcdf").accuracy.sel(
        arch="rnn28", sigma_train=1.0, sigma_val=1.0).mean() * 100
    assert f"σval 1 from the collapse to {dni_acc[1]:.1f} % (LSTM-28) and {float(rnn_dni):.1f} % (RNN-28)" in answer
    assert f"misses the bound only at σval 1, by {98 - at_1:.1f} point" in answer
    grid = load_results(RESULTS / "dni_paper.nc").accuracy.mean("seed")  # (arch, σtrain, σval)
    assert (f"RNN-28 keeps {rnn[0]:.1f} % clean and falls to {rnn[2]:.1f} % at σval 1 (the committed model "
            f"{float(grid.sel(arch='rnn28', sigma_train=0, sigma_val=1)) * 100:.1f} %), strokes {strokes[0]:.1f} % and "
            f"{strokes[2]:.1f} % (committed {float(grid.sel(arch='lstm_stroke50', sigma_train=0, sigma_val=1)) * 100:.1f} %); "
            f"at 3e-4 RNN-28 gives {rnn_weaker[0]:.1f} % and {rnn_weaker[2]:.1f} %") in others
    committed_rnn = float(grid.sel(arch="rnn28", sigma_train=1.0, sigma_val=1)) * 100
    assert (f"the σtrain 1.0 RNN-28 keeps {float(rnn_dni):.1f} % at σval 1, {94 - float(rnn_dni):.1f} point below the paper's "
            f"> 94 % (which is for σtrain 0.9) and below the committed σtrain 1.0 model's {committed_rnn:.1f} %") in others
    drop = rows["dropout_0.5"][0]
    assert f"Dropout 0.5 on the output keeps {drop[0]:.1f} % clean and {drop[2]:.1f} % at σval 1" in prose
    assert abs(drop[2] - float(grid.sel(arch="lstm28", sigma_train=0, sigma_val=1)) * 100) < 0.5  # "as the committed model does"
    # "A second training seed of it … repeats the miss: 98.7 % clean and 97.6 % at σval 1"
    seed1 = xr.open_dataset(RESULTS / "paper_recipe/replicates/dni_weight_decay_3e-4_seed1.nc", engine="h5netcdf").sel(arch="lstm28", sigma_train=1.0)
    replicate = seed1.accuracy.sel(sigma_val=[0.0, 1.0]).values.mean(axis=-1) * 100  # (2,)
    assert replicate[1] < 98 and f"repeats the miss: {replicate[0]:.1f} % clean and {replicate[1]:.1f} % at σval 1" in dni_prose
    sgd = rows["sgd"]
    assert f"Plain SGD (rate 0.1) comes closest after weight decay: {sgd[0][0]:.1f} % clean, {sgd[0][2]:.1f} % at σval 1, with mean(w²) {sgd[1]:.4f}" in prose
    assert sorted(rows, key=lambda name: rows[name][0][2])[:5] == ["weight_decay_1e-3", "weight_decay_3e-4", "weight_decay_1e-4", "sgd", "tf_example"]
    script = (RESULTS / "run_paper_recipe.sh").read_text(encoding="utf-8")
    planned = re.search(r"^order=\((.*)\)$", script, flags=re.M).group(1).split()  # every factor the study runs
    assert set(rows) <= set(planned)
    assert f"({len(rows)} of {len(planned)} done" + (")" if len(rows) == len(planned) else ";") in prose
    assert f"(output layer N(0, 1)) falls to {example[0][2]:.1f} %" in prose
    assert f"at 1e-4 it is {decay[1]:.4f}, half the paper's 0.013" in prose and 0.4 < decay[1] / 0.013 < 0.6
    # "weight decay drives most of them to zero (56 % of its weights are below 0.01 in magnitude, 4 % of the committed model's)"
    small = [float((load_checkpoint(path).model.weights().abs() < 0.01).float().mean()) * 100 for path in (
        RESULTS / "paper_recipe/weight_decay_1e-4_checkpoints/lstm28_sigma0.00_seed0.pt",
        RESULTS / "dni_paper_checkpoints/lstm28_sigma0.00_seed0.pt")]
    assert f"({small[0]:.0f} % of its weights are below 0.01 in magnitude, {small[1]:.0f} % of the committed model's)" in prose
    assert small[0] > 50


def test_noise_kinds_blocks_equal_a_direct_computation():
    """Issue 19's mismatch grid (results/noise_kinds.nc): every cell of the full grid block, recomputed
    with numpy from the raw repeats, and the additive × additive points equal the committed grid's."""
    import xarray as xr

    grid = load_results(RESULTS / "noise_kinds.nc")  # the kinds layout, read as the shared-axes schema
    paper = xr.open_dataset(RESULTS / "dni_paper.nc", engine="h5netcdf")
    blocks = _blocks(DOC.read_text(encoding="utf-8"))
    lines = [line for line in blocks["noise-kinds-grid"].splitlines() if not line.startswith("|---")]
    header = [c.strip() for c in lines[0].strip("|").split("|")][3:]
    checked = 0
    for line in lines[1:]:
        train, sigma_train, _, *cells = [c.strip() for c in line.strip("|").split("|")]
        for column, cell in zip(header, cells):
            evaluation, sigma_val = column.rsplit(" ", 1)
            acc = grid.accuracy.sel(train_noise=train, eval_noise=evaluation, arch="lstm28",
                                    sigma_train=float(sigma_train), sigma_val=float(sigma_val)).values * 100  # (seed,)
            acc = acc[~np.isnan(acc)]
            if not len(acc):
                expected = "—"
            elif acc.max() == acc.min():  # deterministic (σval 0): the mean only
                expected = f"{acc.mean():.1f}"
            else:
                expected = f"{acc.mean():.1f} ± {acc.std(ddof=1) / np.sqrt(len(acc)):.2f}"
            assert cell == expected, (line, column)
            checked += len(acc) > 0
    assert checked >= 30
    additive = grid.accuracy.sel(train_noise="additive", eval_noise="additive", arch="lstm28")
    for st in (0.0, 0.5, 0.7, 1.0):
        for sv in (0.5, 0.7, 1.0):
            np.testing.assert_array_equal(additive.sel(sigma_train=st, sigma_val=sv).values,
                                          paper.accuracy.sel(arch="lstm28", sigma_train=st, sigma_val=sv).values)


def test_the_noise_kinds_prose_quotes_the_grid():
    """The numbers REPRODUCTION.md's issue-19 section quotes by hand, from results/noise_kinds.nc."""

    grid = load_results(RESULTS / "noise_kinds.nc")  # the kinds layout, read as the shared-axes schema
    text = DOC.read_text(encoding="utf-8")
    prose = re.sub(r"<!-- dni:begin ([\w-]+) -->.*?<!-- dni:end \1 -->", "", text, flags=re.S)
    section = prose.split("## Beyond the paper")[1].split("\n## ")[0]

    def acc(train_st, evaluation, sv):
        return f"{float(grid.accuracy.sel(train_noise='additive', eval_noise=evaluation, arch='lstm28', sigma_train=train_st, sigma_val=sv).mean('seed')) * 100:.1f} %"

    quoted = [acc(0.0, "output_relative", 1.1), acc(0.7, "output_relative", 1.1), acc(0.0, "additive", 1.0), acc(0.7, "additive", 1.0),
              acc(0.0, "weight_read", 0.15), acc(0.0, "programming", 0.1),
              ", ".join(acc(st, "weight_read", 0.15) for st in (0.5, 0.7, 1.0)),
              ", ".join(acc(st, "programming", 0.1) for st in (0.5, 0.7, 1.0)),
              acc(0.0, "adc(bits=4,bound=16)", 0.0)]
    for number in quoted:
        assert number in section, f"the section should quote {number}"
    # seed 0 alone: "the conventional model 6 bits and 72.3 % at 4 bits, σtrain 0.7 and 1.0 4 bits and 98.4 % and 98.7 % at 4 bits"
    fewest = []
    for st in (0.0, 0.5, 0.7, 1.0):
        clean = float(grid.accuracy.sel(train_noise="additive", eval_noise="additive", arch="lstm28", sigma_train=st, sigma_val=0).mean())
        fewest.append(next(b for b in range(4, 11) if float(grid.accuracy.sel(
            train_noise="additive", eval_noise=f"adc(bits={b},bound=16)", arch="lstm28", sigma_train=st, sigma_val=0).mean()) >= clean - 0.01))
    assert fewest == [6, 5, 4, 4]
    flat = " ".join(section.split())
    assert (f"seed 0 alone: the conventional model 6 bits and {acc(0.0, 'adc(bits=4,bound=16)', 0.0)} at 4 bits, σtrain 0.7 and 1.0 "
            f"4 bits and {acc(0.7, 'adc(bits=4,bound=16)', 0.0)} and {acc(1.0, 'adc(bits=4,bound=16)', 0.0)} at 4 bits") in flat


def _section(start: str, end: str) -> str:
    """REPRODUCTION.md's prose (blocks removed) from ``start`` to ``end``, whitespace collapsed (it wraps anywhere)."""
    text = DOC.read_text(encoding="utf-8")
    prose = re.sub(r"<!-- dni:begin ([\w-]+) -->.*?<!-- dni:end \1 -->", "", text, flags=re.S)
    return " ".join(prose.split(start)[1].split(end)[0].split())


def test_the_which_training_noise_prose_quotes_the_grid():
    """"Which training noise protects best?": the single-model numbers it quotes, from results/noise_kinds.nc; the
    weight_read retrain's kept epochs and training losses, from the committed checkpoints' histories; the yardstick,
    from the three conventional lstm28 models. (Its intervals are checked against the seeds-kinds blocks by
    test_every_interval_the_prose_quotes_is_one_of_the_blocks, and those blocks against the files above.)"""

    grid = load_results(RESULTS / "noise_kinds.nc").accuracy.sel(arch="lstm28") * 100  # the kinds layout, read as the shared axes
    section = _section("**Which training noise protects best?**", "What the seed-0 models learned")

    def repeats(train, st, evaluation, sv):  # (seed,) in %
        return grid.sel(train_noise=train, eval_noise=evaluation, sigma_train=st, sigma_val=sv).values

    def acc(*key):
        return f"{repeats(*key).mean():.1f} %"

    columns = [(e, float(sv)) for e in ("additive", "output_relative", "programming", "weight_read") for sv in grid.sigma_val.values
               if sv > 0 and not np.isnan(repeats("additive", 0.0, e, sv)).all()]
    assert len(columns) == 12
    conventional, P1, P13 = ("additive", 0.0), ("programming", 0.1), ("programming", 0.13)
    means = {m: round(float(repeats(*m, "weight_read", 0.2).mean()), 1) for m in (conventional, ("programming", 0.073))}
    quoted = [
        f"columns ({np.mean([repeats(*P1, *c).mean() for c in columns]):.1f} %; a ranking of single models)",
        f"programming 0.073 model at weight_read 0.2, {acc('programming', 0.073, 'weight_read', 0.2)} against the conventional "
        f"{acc(*conventional, 'weight_read', 0.2)}: {abs(means['programming', 0.073] - means[conventional]):.1f} points between two",
        f"The seed-0 model of the grid ({acc('weight_read', 0.15, 'additive', 0.0)} clean)",
        f"standard deviation of {repeats(*conventional, 'programming', 0.13).std(ddof=1):.2f} points (worst chip "
        f"{repeats(*conventional, 'programming', 0.13).min():.1f} %), the programming 0.13 model's with "
        f"{repeats(*P13, 'programming', 0.13).std(ddof=1):.2f} (worst chip {repeats(*P13, 'programming', 0.13).min():.1f} %)",
    ]
    for text in quoted:
        assert " ".join(text.split()) in section, f"the section should say: {text}"
    # the grid's weight_read 0.15 and 0.2 models kept epochs 5 and 3 (selected under their own noise)
    kept = load_results(RESULTS / "noise_kinds.nc", need=("best_epoch",)).best_epoch.sel(arch="lstm28", train_noise="weight_read")
    assert [int(kept.sel(sigma_train=st)) for st in (0.15, 0.2)] == [5, 3]
    assert "had kept epoch 5 by validation under its own noise, and the weight_read 0.2 model epoch 3" in section
    # the retrain on clean validation: kept and run epochs, and the training loss's minimum and later rise
    retrained = [load_checkpoint(RESULTS / "noise_kinds" / "weight_read_clean_checkpoints" / f"lstm28_weight_read_sigma0.15_seed{k}.pt")
                 for k in range(3)]
    assert all(m.config.select_on == "clean" for m in retrained)
    kept = [m.meta["best_epoch"] for m in retrained]
    run = [m.meta["epochs_run"] for m in retrained]
    assert f"still keep epochs {kept[0]}, {kept[1]} and {kept[2]} (of {run[0]}, {run[1]}, {run[2]})" in section
    for m in retrained:  # best clean epoch = kept epoch, and the training loss is lowest at epoch 3–5, then rises
        loss = [h["train_loss"] for h in m.history]
        assert 3 <= int(np.argmin(loss)) + 1 <= 5 and loss[-1] > 1.5 * min(loss)
        assert int(np.argmax([h["val_accuracy_clean"] for h in m.history])) + 1 == m.meta["best_epoch"]
    loss0 = [h["train_loss"] for h in retrained[0].history]
    assert f"(seed 0: {loss0[4]:.3f} at epoch 5, {loss0[13]:.3f} at epoch 14)" in section and int(np.argmin(loss0)) == 4
    slow = load_checkpoint(RESULTS / "noise_kinds" / "weight_read_lr5e-4_checkpoints" / "lstm28_weight_read_sigma0.15_seed0.pt")
    assert slow.config.lr == 5e-4 and slow.config.select_on == "clean"
    loss, clean = [h["train_loss"] for h in slow.history], [h["val_accuracy_clean"] for h in slow.history]
    assert (f"(0.741 at epoch 1, {min(loss):.3f} at epoch {int(np.argmin(loss)) + 1}, {loss[-1]:.3f} at epoch {len(loss)})"
            == f"({loss[0]:.3f} at epoch 1, 0.196 at epoch 13, 0.200 at epoch 15)")
    halved = next(h["epoch"] for h in slow.history if h["lr"] < slow.config.lr)
    assert slow.config.lr / 2 == 2.5e-4 and min(h["lr"] for h in slow.history) == 2.5e-4
    assert f"(0.741 at epoch 1, 0.196 at epoch 13, 0.200 at epoch 15; the rate halved to 2.5e-4 from epoch {halved})" in section
    assert f"still peaks at {max(clean) * 100:.1f} % (epoch {int(np.argmax(clean)) + 1})" in section
    # the yardstick "about 14 points" = t·s·√2 over the three conventional lstm28 models at σval 1, and their spread
    from scipy import stats

    at_1 = load_results(SEEDS_DIR / "lstm28.nc", train_seed_dim=True).accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=1.0)
    per_model = at_1.mean("seed").values * 100
    yardstick = stats.t.ppf(0.975, len(per_model) - 1) * per_model.std(ddof=1) * np.sqrt(2)
    assert f"up to about {yardstick:.0f} points at strong noise" in section
    seeds = load_results(SEEDS_DIR / "lstm28.nc", train_seed_dim=True).accuracy.sel(arch="lstm28", sigma_train=0.0).mean("seed") * 100
    spread = lambda sv: float(seeds.sel(sigma_val=sv).max() - seeds.sel(sigma_val=sv).min())  # noqa: E731
    assert f"{spread(0.0):.2f} point clean, and {spread(1.0):.1f} points" in section


@needs_full_mnist
def test_the_weight_noise_scales_quoted_in_the_prose():
    """weight_noise_scale.py on the committed models: the max|W|, ‖[h, x]‖₂ and equivalent σ the section quotes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("weight_noise_scale", RESULTS / "noise_kinds" / "weight_noise_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured = {(r["train_noise"], r["sigma_train"]): r for r in module.scales(1000)}
    c0, c1, a7 = measured["additive", 0.0], measured["additive", 1.0], measured["additive", 0.7]
    programming, read = measured["programming", 0.1], measured["weight_read", 0.15]
    carry = _section("**Does additive DNI carry over?**", "**Which training noise protects best?**")
    learned = _section("What the seed-0 models learned", "**ADC resolution.**")
    quoted = {carry: [f"max|W| {c0['w_max']:.2f} → {c1['w_max']:.2f} from σtrain 0 to 1.0, max/rms "
                      f"{c0['w_max'] / c0['w_rms']:.0f} → {c1['w_max'] / c1['w_rms']:.0f}",
                      f"mean ‖[h, x]‖₂ {c0['norm']:.1f} → {c1['norm']:.1f}",
                      f"the conventional model meets the equivalent of additive σ {c0['equivalent_sigma']:.2f}, and the σtrain 1.0 model "
                      f"{c1['equivalent_sigma']:.1f}"],
              learned: [f"mean ‖[h, x]‖₂ {programming['norm']:.2f} against {c0['norm']:.2f} for the conventional model and "
                        f"{a7['norm']:.2f} for additive 0.7, although its max|W| grew to {programming['w_max']:.2f}",
                        f"equivalent of additive σ {programming['equivalent_sigma']:.2f}, more than the conventional model "
                        f"({c0['equivalent_sigma']:.2f})",
                        f"(max|W| {read['w_max']:.2f}, from {c0['w_max']:.2f}) but not its state (‖[h, x]‖₂ {read['norm']:.2f}); "
                        f"it meets equivalent σ {read['equivalent_sigma']:.2f}"]}
    for section, texts in quoted.items():
        for text in texts:
            assert text in section, f"the section should say: {text}"
    # the claims the numbers carry: additive DNI inflates the noise it meets, programming training shrinks the state
    assert c0["equivalent_sigma"] < a7["equivalent_sigma"] < c1["equivalent_sigma"]
    assert programming["norm"] < c0["norm"] < read["norm"] and read["w_max"] < c0["w_max"] < programming["w_max"]


def test_reproduction_md_headline_numbers_equal_a_direct_computation(paper):
    """The headline numbers, recomputed with numpy from the raw accuracies (not through dni.paper.report)."""
    text = DOC.read_text(encoding="utf-8")
    st, sv = paper.sigma_train.values, paper.sigma_val.values
    for arch in PRESETS:
        acc = paper.accuracy.sel(arch=arch).values.mean(axis=-1)  # (σtrain, σval)
        clean, at_1 = acc[st == 0, sv == 0].item(), acc[st == 0, sv == 1].item()
        worst = acc.min(axis=1)  # (σtrain,)
        best = int(np.argmax(worst))
        power = paper.weight_power.sel(arch=arch).values  # (σtrain,)
        above = int((acc[:, sv > 0] > clean).sum())
        cells = _table(_blocks(text)["headline"], f"{arch} (ours)")
        assert cells[1:3] == [f"{clean * 100:.1f} %", f"{at_1 * 100:.1f} %"], cells
        label, value = re.fullmatch(r"σtrain ([\d.]+): ([\d.]+ %)", cells[3]).groups()
        assert float(label) == st[best] and value == f"{worst[best] * 100:.1f} %", cells
        assert cells[4:6] == [f"{power[0]:.4f} → {power[-1]:.4f}", f"{above} of {acc[:, sv > 0].size}"], cells
        # the full table carries every mean, one decimal
        table = text.split(f"{arch}: test accuracy (%), mean of 40 repeat(s) on mnist")[1]
        first = table.splitlines()[2].split()  # σtrain 0's row: label, then 11 values
        np.testing.assert_allclose([float(v) for v in first[1:]], np.round(acc[0] * 100, 1), atol=1e-9)


def test_the_prose_quotes_the_numbers_it_discusses(paper):
    """Numbers written by hand in REPRODUCTION.md's prose that must follow the data."""
    text = DOC.read_text(encoding="utf-8")
    prose = re.sub(r"<!-- dni:begin ([\w-]+) -->.*?<!-- dni:end \1 -->", "", text, flags=re.S)
    lstm = paper.accuracy.sel(arch="lstm28").mean("seed")  # (σtrain, σval)
    rnn = paper.accuracy.sel(arch="rnn28").mean("seed")
    strokes = paper.accuracy.sel(arch="lstm_stroke50").mean("seed")
    quoted = {
        "lstm28 clean": f"{float(lstm.sel(sigma_train=0, sigma_val=0)) * 100:.1f} %",
        "lstm28 σtrain 0 at σval 1": f"{float(lstm.sel(sigma_train=0, sigma_val=1)) * 100:.1f} %",
        "lstm28 σtrain 1.0 worst case": f"{float(lstm.sel(sigma_train=1.0).min()) * 100:.1f} %",
        "rnn28 σtrain 0 at σval 1": f"{float(rnn.sel(sigma_train=0, sigma_val=1)) * 100:.1f} %",
        "rnn28 best worst case": f"{float(rnn.min('sigma_val').max()) * 100:.1f} %",
        "lstm28 σtrain 0.8 weight power": f"{float(paper.weight_power.sel(arch='lstm28', sigma_train=0.8)):.4f}",
        "lstm_stroke50 clean": f"{float(strokes.sel(sigma_train=0, sigma_val=0)) * 100:.1f} %",
        "lstm_stroke50 σtrain 0 at σval 1": f"{float(strokes.sel(sigma_train=0, sigma_val=1)) * 100:.1f} %",
        "lstm_stroke50 σtrain 0.9 worst case": f"{float(strokes.sel(sigma_train=0.9).min()) * 100:.1f} %",
        "lstm_stroke50 best worst case": f"{float(strokes.min('sigma_val').max()) * 100:.1f} %",
        "lstm_stroke50 σtrain 0.8 weight power":
            f"{float(paper.weight_power.sel(arch='lstm_stroke50', sigma_train=0.8)):.4f}",
    }
    clean = float(strokes.sel(sigma_train=0, sigma_val=0))
    better_at_0 = int((strokes.sel(sigma_val=0) > clean).sum())  # noise-trained models above the conventional one
    above = int((strokes.sel(sigma_val=slice(0.1, None)) > clean).sum())
    quoted["lstm_stroke50 models better at σval 0"] = f"{better_at_0} of the 10 are above its {clean * 100:.2f} %"
    quoted["lstm_stroke50 noisy points above clean"] = f"{above} of 110 points are above the clean baseline"
    for what, number in quoted.items():
        assert number in prose, f"the prose should quote {what}, {number}"

    # "the noisy points above their own model's noiseless accuracy … are so by 0.05 points at most, at σval ≤ 0.6"
    acc = paper.accuracy.mean("seed")  # (arch, σtrain, σval)
    gain = acc.sel(sigma_val=slice(0.1, None)) - acc.sel(sigma_val=0)  # inference noise's own effect
    assert float(gain.max()) * 100 <= 0.05
    assert float(gain.sigma_val.where(gain > 0).max()) <= 0.6
    assert "0.05 points at most, at σval ≤ 0.6" in prose


def test_paper_figures_notebook_opens_the_committed_results(tmp_path):
    import json

    import papermill as pm

    out = tmp_path / "paper_figures.out.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "paper_figures.ipynb"), str(out), cwd=str(tmp_path), progress_bar=False,
                        parameters={"result": str(RESULTS / "dni_paper.nc"), "digits": 50})
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    for arch in PRESETS:
        assert f"{arch}: test accuracy (%), mean of 40 repeat(s) on mnist" in text


def test_the_explorer_opens_the_committed_results(paper):
    from dni_widgets.explorer import Explorer

    explorer = Explorer.open(RESULTS / "dni_paper.nc", digits=32)
    assert list(explorer.arch.options) == paper.arch.values.tolist()
    explorer.arch.value = "rnn28"
    explorer.sigma_train.value, explorer.sigma_val.value = 0.0, 1.0
    expected = paper.accuracy.sel(arch="rnn28", sigma_train=0.0, sigma_val=1.0).mean().item() * 100
    assert explorer.selected_point.data["y"] == [pytest.approx(expected)]
    weights = load_checkpoint(RESULTS / "dni_paper_checkpoints" / "rnn28_sigma0.00_seed0.pt").model
    assert f"{float((weights.weights() ** 2).mean()):.4f}" in explorer.fig_weights.title.text


@needs_full_mnist
def test_the_explorer_shows_the_committed_models_on_full_mnist_digits():
    """Explorer.open(..., data="mnist"): the state view of the committed models runs on full-MNIST test digits."""
    import torch
    from dni_widgets.explorer import Explorer

    from dni.data import load_sequences
    from dni.nn.probes import state_distributions

    explorer = Explorer.open(RESULTS / "dni_paper.nc", data="mnist", digits=64)
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value, explorer.sigma_val.value = 1.0, 0.5
    x = load_sequences("mnist", "test", progress=False).x[:64]
    model = load_checkpoint(RESULTS / "dni_paper_checkpoints" / "lstm28_sigma1.00_seed0.pt").model
    expected = state_distributions(model, x, 0.5, generator=torch.Generator().manual_seed(0), bins=explorer.bins)
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected.h.values, rtol=1e-12)
    assert "on 64 test digits (mnist)" in explorer.status.value


SEEDS_DIR = RESULTS / "seeds"  # results/run_seeds_eval.sh: the models of each headline setting, training seeds 0, 1, 2


def _seed_file(arch: str, recipe: str | None, sigma_train: float) -> str:
    """Which file of results/seeds/ a row of a seeds block reads, from its label (this test's own mapping)."""
    if recipe == "weight decay 1e-3":
        return "weight_decay_1e-3" if sigma_train == 0 else "weight_decay_1e-3_dni"
    return {None: arch, "30 epochs, last weights": f"control_{arch}"}[recipe]


def _per_model_from_file(file: str, arch: str, st: float, statistic: str):
    """(training seeds, values) of each model, read with xarray alone: a model's accuracy the mean of its repeats."""
    import xarray as xr

    ds = xr.load_dataset(SEEDS_DIR / f"{file}.nc")
    if "train_seed" not in ds.dims:  # a file of one training seed: the seed is a per-model variable
        seed = int(np.nanmax(ds.train_seed.values))
        ds = ds.drop_vars("train_seed").expand_dims(train_seed=[seed])
    if statistic == "mean(w²)":
        v = ds.weight_power.sel(arch=arch, sigma_train=st)
    else:
        acc = ds.accuracy.sel(arch=arch, sigma_train=st).mean("seed", skipna=False).round(9)  # (train_seed, σval)
        v = {"clean": lambda: acc.sel(sigma_val=0.0), "at σval 1": lambda: acc.sel(sigma_val=1.0),
             "worst over σval": lambda: acc.min("sigma_val", skipna=False)}[statistic]()
    keep = ~np.isnan(v.values)
    return v.train_seed.values[keep], v.values[keep]


def test_every_interval_reproduction_md_quotes_is_recomputed_from_the_seed_files():
    """Issue 34: each row of the seeds blocks — per-model values, mean, the 95 % Student-t interval across models,
    how many models meet the paper's bound and the verdict, or the paper's one-model number against the
    prediction interval x̄ ± t·s·√(1 + 1/n) — recomputed with xarray, numpy and scipy from the committed files."""
    from scipy import stats

    assert sorted(SEEDS_DIR.glob("*.nc")), "no committed seed files in results/seeds/"
    blocks = _blocks(DOC.read_text(encoding="utf-8"))
    assert {"seeds-provenance", "seeds-claims", "seeds-collapse", "seeds-differences", "seeds-figures"} <= set(blocks)
    pct = lambda statistic: statistic != "mean(w²)"  # noqa: E731

    def fmt(x, statistic, signed=False):
        return (f"{x * 100:+.2f}" if signed else f"{x * 100:.2f}") if pct(statistic) else (f"{x:+.4f}" if signed else f"{x:.4f}")

    def interval(x, statistic, signed=False):
        unit = (" pp" if signed else " %") if pct(statistic) else ""
        low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
        return f"{fmt(np.mean(x), statistic, signed)}{unit} [{fmt(low, statistic, signed)}, {fmt(high, statistic, signed)}]", low, high

    labels, differences, checked = set(), set(), 0
    for block in ("seeds-claims", "seeds-collapse"):
        for line in blocks[block].splitlines()[2:]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            m = re.fullmatch(r"(\w+) σtrain ([\d.]+)(?: \(([^)]*)\))?, (.+)", cells[0])
            arch, st, recipe, statistic = m[1], float(m[2]), m[3], m[4]
            labels.add(cells[0])
            seeds, x = _per_model_from_file(_seed_file(arch, recipe, st), arch, st, statistic)
            assert cells[1] == ", ".join(f"{fmt(v, statistic)} ({k})" for k, v in zip(seeds, x)), line
            assert cells[3] == str(len(x))
            if len(x) < 2:
                assert cells[2].endswith("(1 model: no interval)")
                continue
            text, low, high = interval(x, statistic)
            assert cells[2] == text, line
            bound = re.search(r" for ([>≤]) ([\d.]+) %", cells[6])
            number = re.fullmatch(r"(\d+)(?:\.(\d+))?( %)?", cells[4])
            if bound:
                b, above = float(bound[2]) / 100, bound[1] == ">"
                assert cells[5] == f"{int((x > b if above else x <= b).sum())} of {len(x)}"
                clears, misses = (low > b, high <= b) if above else (high <= b, low > b)
                assert cells[6].startswith("established" if clears else "refuted" if misses else "not established"), line
            elif number:  # the paper's one model against where one more of ours would fall
                scale = 100 if number[3] else 1
                value, rounding = float(number[0].rstrip(" %")) / scale, 0.5 * 10.0 ** -len(number[2] or "") / scale
                half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) * np.sqrt(1 + 1 / len(x))
                lo, hi = np.mean(x) - half, np.mean(x) + half
                inside = not (value + rounding < lo or value - rounding > hi)
                assert cells[5] == "–" and cells[6] == (f"{'inside' if inside else 'outside'} our models' 95 % prediction interval "
                                                        f"[{fmt(lo, statistic)}, {fmt(hi, statistic)}]" + ("" if inside else ": differs")), line
            else:
                assert cells[5] == cells[6] == "–", line
            checked += 1
    for line in blocks["seeds-differences"].splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"(\w+)(?: \(([^)]*)\))?: σtrain ([\d.]+) − σtrain ([\d.]+), (.+)", cells[0])
        arch, recipe, a, b, statistic = m[1], m[2], float(m[3]), float(m[4]), m[5]
        differences.add(cells[0])
        file = _seed_file(arch, recipe, a)
        (sa, xa), (sb, xb) = _per_model_from_file(file, arch, a, statistic), _per_model_from_file(file, arch, b, statistic)
        common = sorted(set(sa.tolist()) & set(sb.tolist()))
        d = np.array([xa[list(sa).index(k)] - xb[list(sb).index(k)] for k in common])
        assert cells[1] == ", ".join(f"{fmt(v, statistic, True)} ({k})" for k, v in zip(common, d)), line
        assert cells[3] == str(len(d))
        if len(d) >= 2:
            text, low, high = interval(d, statistic, signed=True)
            assert cells[2] == text, line
            assert cells[4] == ("A > B" if low > 0 else "A < B" if high < 0 else "not separated (the interval includes 0)")
            checked += 1
    # the rows the prose relies on are there (a claim whose models exist must not vanish from its table)
    if (SEEDS_DIR / "lstm28.nc").is_file():
        assert {"lstm28 σtrain 0, clean", "lstm28 σtrain 0, at σval 1", "lstm28 σtrain 1, worst over σval"} <= labels
    if (SEEDS_DIR / "rnn28.nc").is_file():
        assert {"rnn28 σtrain 0, clean", "rnn28 σtrain 0, at σval 1", "rnn28 σtrain 0.9, worst over σval"} <= labels
    if (SEEDS_DIR / "weight_decay_1e-3.nc").is_file():
        assert {"lstm28 σtrain 0 (weight decay 1e-3), clean", "lstm28 σtrain 0 (weight decay 1e-3), at σval 1"} <= labels
    if (SEEDS_DIR / "lstm_stroke50.nc").is_file():
        assert {"lstm_stroke50 σtrain 0, clean", "lstm_stroke50 σtrain 0, at σval 1", "lstm_stroke50 σtrain 0.9, worst over σval"} <= labels
        assert "lstm_stroke50: σtrain 0.9 − σtrain 0, mean(w²)" in differences
    if (SEEDS_DIR / "control_lstm_stroke50.nc").is_file():  # the weight-power control (fixed length)
        assert {f"lstm_stroke50 (30 epochs, last weights): σtrain {a} − σtrain 0, mean(w²)" for a in ("0.5", "1")} <= differences
    assert checked >= 5, "too few intervals quoted to check"


def test_the_noise_kinds_intervals_are_recomputed_from_the_kinds_seed_files():
    """Issue 34: every cell of the seeds-kinds table and every row of seeds-kinds-differences, recomputed with xarray
    and scipy from results/seeds/kinds/<train>__<eval>.nc (each model's mean over its repeats at σval 0 or at the
    file's one other strength; the t-interval across models; paired differences within a training seed)."""
    import xarray as xr
    from scipy import stats

    kinds_dir = SEEDS_DIR / "kinds"
    files = sorted(kinds_dir.glob("*.nc"))
    if not files:
        pytest.skip("no kinds seed files committed yet")
    blocks = _blocks(DOC.read_text(encoding="utf-8"))
    data = {}
    for f in files:
        ds = xr.load_dataset(f)
        if "train_seed" not in ds.dims:  # a file of one training seed: the seed is a per-model variable
            ds = ds.drop_vars("train_seed").expand_dims(train_seed=[int(np.nanmax(ds.train_seed.values))])
        data[(ds.attrs["train_noise"], ds.attrs["eval_noise"])] = ds

    def models(label):
        if label.startswith("conventional"):
            return "additive", 0.0
        kind, st = label.split(",")[0].split(" ")
        return kind, float(st)

    def values(train, st, column):  # {training seed: the model's mean accuracy}; noiseless: σval 0 of any of its files
        out = {}
        for (t, e), ds in data.items():
            if t != train or st not in ds.sigma_train.values:
                continue
            if column == "noiseless":
                at = 0.0
            elif column.split(" ")[0] == e:
                at = float(column.split(" ")[1])
            else:
                continue
            acc = ds.accuracy.isel(arch=0).sel(sigma_train=st, sigma_val=at).mean("seed", skipna=False).round(9)
            for k, v in zip(acc.train_seed.values, acc.values):
                if not np.isnan(v):
                    assert abs(out.setdefault(int(k), float(v)) - float(v)) < 1e-9, (train, st, k)  # one noise-free pass
        return out

    def interval_text(x, signed=False):
        f = (lambda v: f"{v * 100:+.2f}") if signed else (lambda v: f"{v * 100:.2f}")
        if len(x) < 2:
            return f"{f(np.mean(x))}{' pp' if signed else ' %'} (1 model: no interval)", np.nan, np.nan
        low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
        return f"{f(np.mean(x))}{' pp' if signed else ' %'} [{f(low)}, {f(high)}]", low, high

    from dni.paper.kinds_seeds import KIND_DIFFERENCES, KIND_MODELS  # the lists of rows (data), not the computation

    header, _, *rows = blocks["seeds-kinds"].splitlines()
    columns = [c.strip() for c in header.strip().strip("|").split("|")][2:]
    assert columns[0] == "noiseless" and len(rows) >= 3
    strengths = {}  # eval kind → its one strength > 0 (every file of the kind must agree)
    for (_, e), ds in data.items():
        assert strengths.setdefault(e, float(ds.sigma_val.max())) == float(ds.sigma_val.max()), e
    assert columns[1:] == [f"{e} {strengths[e]:g}" for e in ("additive", "output_relative", "programming", "weight_read") if e in strengths]
    expected_rows = [m.label for m in KIND_MODELS if any(values(m.train_noise, m.sigma_train, c) for c in columns)]
    assert [line.strip("|").split("|")[0].strip() for line in rows] == expected_rows
    checked = 0
    for line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        train, st = models(cells[0])
        held = sorted({k for c in columns for k in values(train, st, c)})
        assert cells[1] == f"{len(held)} ({', '.join(map(str, held))})", line
        for column, cell in zip(columns, cells[2:]):
            v = values(train, st, column)
            if not v:
                assert cell == "–", line
                continue
            text = interval_text(np.array(list(v.values())))[0]
            assert cell == (text if len(v) in (1, len(held)) else f"{text} ({len(v)} of {len(held)} models)"), (line, column)
            checked += 1
    under = {None: "noiseless", **{e: c for c in columns[1:] for e in [c.split(" ")[0]]}}
    expected_diffs = [f"{d.a.label} − {d.b.label} | {under[d.eval_noise]}" for d in KIND_DIFFERENCES
                      if d.eval_noise in under and set(values(d.a.train_noise, d.a.sigma_train, under[d.eval_noise]))
                      & set(values(d.b.train_noise, d.b.sigma_train, under[d.eval_noise]))]
    diff_rows = blocks["seeds-kinds-differences"].splitlines()[2:]
    assert [" | ".join(c.strip() for c in line.strip("|").split("|")[:2]) for line in diff_rows] == expected_diffs
    for line in diff_rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        a, b = cells[0].split(" − ")
        va, vb = values(*models(a), cells[1]), values(*models(b), cells[1])
        common = sorted(set(va) & set(vb))
        d = np.array([va[k] - vb[k] for k in common])
        assert cells[3] == ", ".join(f"{v * 100:+.2f} ({k})" for k, v in zip(common, d)), line
        text, low, high = interval_text(d, signed=True)
        assert cells[4] == text and cells[5] == str(len(d)), line
        if len(d) >= 2:
            assert cells[6] == ("A > B" if low > 0 else "A < B" if high < 0 else "not separated (the interval includes 0)"), line
        checked += 1
    assert checked >= 10


@needs_full_mnist
def test_every_noisy_replicate_was_selected_on_the_inference_paths_validation():
    """Each committed model of a training seed ≠ 0 trained with noise kept the epoch whose validation accuracy its
    history records (its best, or its last where it trained without early stopping, as the weight-power control);
    recomputing that accuracy now (grad off, validation's fixed noise seed) must give it exactly.
    A model whose validation ran the training path (the misplaced @torch.no_grad() of one afternoon; other draws)
    would not: this audits every replicate checkpoint, and each one added later."""
    import glob

    from dni.data import load_sequences
    from dni.training.train import split_train_validation, validation_record

    from dni.nn.presets import get_preset

    train = {}  # by sequence kind (image rows, pen strokes)
    paths = sorted({*glob.glob(str(RESULTS / "**" / "*_seed[1-9].pt"), recursive=True),
                    *glob.glob(str(RESULTS / "**" / "*_seed[1-9][0-9].pt"), recursive=True)})
    noisy = [m for m in map(load_checkpoint, paths) if m.sigma_train > 0 and m.config.data == "mnist"]
    assert len(noisy) >= 4, "the committed noisy replicates are missing"
    for m in noisy:
        kind = get_preset(m.arch).data
        train.setdefault(kind, load_sequences("mnist", "train", kind, progress=False))
        _, val = split_train_validation(train[kind], m.config.val_fraction)
        kept = m.meta["best_epoch"] if m.config.patience else m.meta["epochs_run"]  # no early stopping: the last weights
        assert validation_record(m.model, val, m.config)["val_accuracy"] == m.history[kept - 1]["val_accuracy"], m.config


def test_every_interval_the_prose_quotes_is_one_of_the_blocks():
    """Issue 34: an interval quoted by hand in REPRODUCTION.md's prose ("mean [low, high]", possibly rounded to fewer
    decimals) must be one the generated blocks print — which the test above recomputes from the committed files —
    so no hand-written interval can drift from the data."""
    number = r"([+−-]?\d+(?:\.\d+)?)"
    pattern = re.compile(number + r"(?: %| points| pp)? \[" + number + ", " + number + r"\]")
    text = DOC.read_text(encoding="utf-8")
    blocks = _blocks(text)
    prose = re.sub(r"<!-- dni:begin ([\w-]+) -->\n.*?<!-- dni:end \1 -->", "", text, flags=re.S)

    def triples(s):
        return [tuple(m) for m in pattern.findall(s.replace("−", "-"))]

    printed = [t for body in blocks.values() for t in triples(body)]
    quoted = triples(prose)
    assert len(quoted) >= 10, "the prose quotes fewer intervals than expected"
    for q in quoted:
        decimals = [len(v.split(".")[1]) if "." in v else 0 for v in q]
        match = [p for p in printed if all(abs(float(a) - float(b)) <= 0.5 * 10.0 ** -d + 1e-9 for a, b, d in zip(p, q, decimals))]
        assert match, f"the prose quotes {q}, which no block prints"
