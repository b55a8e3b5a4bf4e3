"""The committed reproduction (issue 6): results/dni_paper.nc, its checkpoints, and REPRODUCTION.md.

These tests read committed files only (no training, no full MNIST): the result set must hold the
paper's full grid with no gap, come from the committed checkpoints, and every number in
REPRODUCTION.md must equal one recomputed from it.
"""

import re

import numpy as np
import pytest

from conftest import REPO
from dni.reproduction import document_blocks, load_training_length, render_blocks
from dni.results import load_results, merge_results, model_crc
from dni.sweep import find_checkpoints
from dni.train import load_checkpoint

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


def test_reproduction_md_blocks_equal_the_ones_rendered_from_the_dataset(paper):
    text = DOC.read_text(encoding="utf-8")
    expected = render_blocks(paper, RESULTS / "figures", DOC.parent, load_training_length(RESULTS / "training_length"))
    assert document_blocks(text) == expected
    for link in re.findall(r"\]\((results/figures/[^)]+\.png)\)", text):
        assert (REPO / link).is_file(), f"{link} is linked but missing: run dni reproduction"


def _row(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_reproduction_md_headline_numbers_equal_a_direct_computation(paper):
    """The headline numbers, recomputed with numpy from the raw accuracies (not through dni.report)."""
    text = DOC.read_text(encoding="utf-8")
    st, sv = paper.sigma_train.values, paper.sigma_val.values
    for arch in PRESETS:
        acc = paper.accuracy.sel(arch=arch).values.mean(axis=-1)  # (σtrain, σval)
        clean, at_1 = acc[st == 0, sv == 0].item(), acc[st == 0, sv == 1].item()
        worst = acc.min(axis=1)  # (σtrain,)
        best = int(np.argmax(worst))
        power = paper.weight_power.sel(arch=arch).values  # (σtrain,)
        above = int((acc[:, sv > 0] > clean).sum())
        row = _row(text, f"| {arch} (ours) |")
        assert row.startswith(f"| {arch} (ours) | {clean * 100:.1f} % | {at_1 * 100:.1f} % | "
                              f"σtrain {st[best]:.1f}: {worst[best] * 100:.1f} % | {power[0]:.4f} → {power[-1]:.4f} | "
                              f"{above} of {acc[:, sv > 0].size} |"), row
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
