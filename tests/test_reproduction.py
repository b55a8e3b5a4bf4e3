"""REPRODUCTION.md's generator: blocks rewritten in place, numbers from the dataset, figures rendered."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from dni.errors import DniError
from dni.paper.report import PAPER, difference_table, headline
from dni.paper.reproduction import (
    FIGURE_KINDS,
    document_blocks,
    figure_path,
    render_blocks,
    update_document,
)
from dni.store.results import load_results

DEMO = REPO / "widgets" / "demo"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOC = """# Title

Prose with 12.3 % that stays.

<!-- dni:begin headline -->
old table
<!-- dni:end headline -->

More prose.

<!-- dni:begin tables -->
<!-- dni:end tables -->
"""


@pytest.fixture(scope="module")
def demo():
    return load_results(DEMO / "demo.nc")


def test_update_rewrites_only_the_blocks():
    out = update_document(DOC, {"headline": "| new |", "tables": "a\nb"})
    assert document_blocks(out) == {"headline": "| new |", "tables": "a\nb"}
    assert "Prose with 12.3 % that stays." in out and "More prose." in out and "old table" not in out
    assert update_document(out, {"headline": "| new |", "tables": "a\nb"}) == out  # idempotent


def test_missing_or_doubled_blocks_are_refused():
    with pytest.raises(DniError, match="no block for figures: add the lines '<!-- dni:begin NAME -->'"):
        update_document(DOC, {"figures": "x"})
    with pytest.raises(DniError, match="more than one block named headline"):
        update_document(DOC + DOC, {"headline": "x"})


def test_differences_equal_a_direct_computation(demo):
    table = difference_table(demo)
    acc = demo.accuracy.sel(arch="rnn28").values.mean(axis=-1)  # (σtrain, σval)
    st, sv = demo.sigma_train.values, demo.sigma_val.values
    clean, at_1 = acc[st == 0, sv == 0].item(), acc[st == 0, sv == 1.0].item()
    row = next(line for line in table.splitlines() if line.startswith("| rnn28 |"))
    assert f"| {(clean - PAPER['rnn28']['clean']) * 100:+.1f} | {(at_1 - PAPER['rnn28']['conventional_at_1']) * 100:+.1f} |" in row
    met = acc.min(axis=1).max() > 0.94
    assert ("| yes (" if met else "| no (") in row


def test_blocks_cover_every_preset_and_figure(demo, tmp_path):
    blocks = render_blocks(demo, tmp_path / "figs", tmp_path)
    assert set(blocks) >= {"provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures"}
    for arch in demo.arch.values.tolist():
        assert f"| {arch} |" in blocks["spread"] and f"{arch}: test accuracy (%)" in blocks["tables"]
        for kind in FIGURE_KINDS:
            assert f"(figs/{arch}_{kind}.png)" in blocks["figures"]
    assert "missing values in the accuracy grid: 0" in blocks["provenance"]
    std = demo.accuracy.sel(arch="lstm28").std("seed", ddof=1).values * 100
    assert f"| lstm28 | {np.nanmax(std):.2f} |" in blocks["spread"]
    h = headline(demo, "lstm28")
    assert f"{h.noisy_beats_clean} of {h.points}" in blocks["noisy-points"]
    acc = demo.accuracy.sel(arch="lstm28").values.mean(axis=-1)  # (σtrain, σval)
    sv = demo.sigma_val.values
    own = int((acc[:, sv > 0] > acc[:, sv == 0]).sum())  # noisy points above the same model without noise
    row = next(line for line in blocks["noisy-points"].splitlines() if line.startswith("| lstm28 |"))
    assert row.endswith(f"| {h.noisy_beats_clean} of {h.points} | {own} of {h.points} |")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (.ci/run installs it)")
def test_reproduction_command_writes_figures_and_numbers(tmp_path, capsys):
    from PIL import Image

    from dni.cli import main

    doc = tmp_path / "REPRODUCTION.md"
    doc.write_text("\n\n".join(f"<!-- dni:begin {n} -->\n<!-- dni:end {n} -->" for n in
                               ("provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures")) + "\n")
    args = [str(DEMO / "demo.nc"), "--doc", str(doc), "--checkpoint-dir", str(DEMO / "checkpoints"), "--figures-dir", str(tmp_path / "figs")]
    assert main(["--quiet", "reproduction", *args, "--check"]) == 1  # empty blocks are out of date
    assert main(["--quiet", "reproduction", *args]) == 0
    assert main(["--quiet", "reproduction", *args, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    for arch in ("lstm28", "rnn28", "lstm_stroke50"):
        for kind in FIGURE_KINDS:
            image = np.asarray(Image.open(figure_path(tmp_path / "figs", arch, kind)).convert("L"))
            assert image.shape[0] > 200 and image.shape[1] > 300  # a real plot, cropped to its content
            assert (image < 128).mean() > 0.005  # axes, lines and labels drawn, not a blank page
    doc.write_text(doc.read_text().replace("| lstm28 (ours) |", "| lstm28 (ours) | 1 |"))
    assert main(["--quiet", "reproduction", *args, "--check"]) == 1
    assert "out of date: headline" in capsys.readouterr().out


def test_provenance_lists_epochs_and_training_time(demo):
    from dni.paper.reproduction import provenance_block
    from dni.store.checkpoints import load_checkpoint
    from dni.store.results import with_model_variables

    models = [load_checkpoint(p) for p in sorted((DEMO / "checkpoints").glob("*.pt"))]
    block = provenance_block(with_model_variables(demo, models))
    for arch in ("lstm28", "rnn28", "lstm_stroke50"):
        mine = sorted((m for m in models if m.arch == arch), key=lambda m: m.sigma_train)
        hours = sum(m.meta["train_seconds"] for m in mine) / 3600
        epochs = ", ".join(str(len(m.history)) for m in mine)
        assert f"| {arch} | {epochs} | {hours:.2f} h |" in block
    assert "| lstm28 | 10, 10, 10 | – |" in provenance_block(demo.drop_vars("train_seconds", errors="ignore"))


def test_training_length_rows_equal_a_direct_computation(demo, tmp_path):
    from dni.paper.reproduction import load_training_length, training_length_block
    from dni.store.results import save_results

    # two stand-in "fixed-epoch runs": the demo's lstm28 σtrain 0 point, relabelled 3 and 1 epochs
    base = demo.sel(arch=["lstm28"], sigma_train=[0.0], sigma_val=[0.0, 0.5, 1.0])
    for epochs, scale in ((3, 1.0), (1, 0.5)):
        run = base.copy(deep=True)
        run["epochs"][:] = epochs
        run["weight_power"] = run.weight_power * scale
        save_results(run, tmp_path / f"lstm28_epochs{epochs}.nc")
    runs = load_training_length(tmp_path)
    block = training_length_block(runs, demo.drop_vars("best_epoch"))  # as a result set from before best_epoch
    lines = block.splitlines()
    acc = demo.accuracy.sel(arch="lstm28", sigma_train=0.0).mean("seed")  # (sigma_val,)
    cells = " | ".join(f"{acc.sel(sigma_val=v).item() * 100:.1f} %" for v in (0.0, 0.5, 1.0))
    power = demo.weight_power.sel(arch="lstm28", sigma_train=0.0).item()
    assert lines[2] == f"| 1 epoch | {power * 0.5:.4f} | {cells} |"  # sorted by epochs
    assert lines[3] == f"| 3 epochs | {power:.4f} | {cells} |"
    assert lines[4] == f"| convergence (the main grid: 10 epochs) | {power:.4f} | {cells} |"
    assert lines[5] == "| the paper | 0.013 | 98.7 % | – | 12.5 % |"
    assert training_length_block(runs, demo).splitlines()[4].startswith("| convergence (the main grid: best epoch 10 of 10) |")
    with_best = demo.assign(best_epoch=demo.epochs - 4)
    assert training_length_block(runs, with_best).splitlines()[4].startswith("| convergence (the main grid: best epoch 6 of 10) |")
    assert "training-length" in render_blocks(demo, tmp_path, tmp_path, runs)
    assert "training-length" not in render_blocks(demo, tmp_path, tmp_path)
    assert load_training_length(tmp_path / "absent") == []


def test_reproduction_refuses_a_training_length_block_without_runs(tmp_path, capsys):
    from dni.cli import main

    doc = tmp_path / "R.md"
    doc.write_text("<!-- dni:begin training-length -->\n<!-- dni:end training-length -->\n")
    assert main(["--quiet", "reproduction", str(DEMO / "demo.nc"), "--doc", str(doc), "--training-length", str(tmp_path / "none"), "--no-figures"]) == 2
    assert "holds no runs: run results/run_training_length.sh" in capsys.readouterr().err


def _recipe_study(demo, folder, factors, arch="lstm28"):
    """Stand-in factor runs in ``folder``: the demo's ``arch`` σtrain 0 point with its weight power scaled and the
    demo's σtrain 0 model saved with the factor's config changes."""
    from dataclasses import replace

    from dni.store.checkpoints import load_checkpoint, save_checkpoint
    from dni.store.results import save_results

    base = demo.sel(arch=[arch], sigma_train=[0.0], sigma_val=[0.0, 0.5, 1.0])
    demo_model = DEMO / "checkpoints" / f"{arch}_sigma0.00_seed0.pt"
    model = load_checkpoint(demo_model)
    for name, (scale, changes) in factors.items():
        run = base.copy(deep=True)
        run["weight_power"] = run.weight_power * scale
        save_results(run, folder / f"{name}.nc")
        (folder / f"{name}_checkpoints").mkdir()
        model.config = replace(load_checkpoint(demo_model).config, **changes)
        save_checkpoint(model, folder / f"{name}_checkpoints" / f"{arch}_sigma0.00_seed0.pt")
    return model


def test_paper_recipe_rows_name_what_each_factor_changed(demo, tmp_path):
    from dni.paper.reproduction import load_paper_recipe, paper_recipe_block
    from dni.store.checkpoints import load_checkpoint

    _recipe_study(demo, tmp_path, {"wd": (0.5, {"weight_decay": 1e-4}), "sgd": (2.0, {"optimiser": "sgd", "lr": 0.1})})
    runs = load_paper_recipe(tmp_path)
    assert [r.name for r in runs] == ["sgd", "wd"]
    baseline = load_checkpoint(DEMO / "checkpoints" / "lstm28_sigma0.00_seed0.pt").config
    lines = paper_recipe_block(runs, demo, baseline).splitlines()
    point = demo.sel(arch="lstm28", sigma_train=0.0)
    acc = [point.accuracy.sel(sigma_val=v).mean().item() * 100 for v in (0.0, 0.5, 1.0)]
    power = point.weight_power.item()
    cells = " | ".join(f"{a:.1f} %" for a in acc)
    pair = "yes" if acc[0] >= 98.3 and acc[2] <= 25 else "no"
    epochs = f"{int(point.epochs)} ({int(point.best_epoch)})"
    assert lines[2] == f"| lstm28 | baseline | the committed grid's model | {epochs} | {cells} | {power:.4f} | {pair} |"
    assert lines[3] == f"| lstm28 | sgd | optimiser sgd, lr 0.1 | {epochs} | {cells} | {power * 2:.4f} | {pair} |"
    assert lines[4] == f"| lstm28 | wd | weight_decay 0.0001 | {epochs} | {cells} | {power * 0.5:.4f} | {pair} |"
    assert lines[5] == "| lstm28 | the paper | | | 98.7 % | – | 12.5 % | 0.013 | |"
    assert "paper-recipe" in render_blocks(demo, tmp_path, tmp_path, (), runs, baseline)
    assert load_paper_recipe(tmp_path / "absent") == []


def test_paper_recipe_rows_of_another_preset_drop_its_prefix(demo, tmp_path):
    """results/run_paper_recipe.sh rnn28:wd writes rnn28_wd.nc: its row is the factor wd under preset rnn28, after the
    lstm28 rows, judged against the paper's RNN-28 pair (clean ≥ 97.6 %, σval 1 ≤ 25 %) with RNN-28's paper row."""
    from dni.paper.reproduction import (
        PAPER_PAIR,
        load_paper_recipe,
        load_paper_recipe_dni,
        paper_recipe_block,
        paper_recipe_dni_block,
    )
    from dni.store.checkpoints import load_checkpoint

    _recipe_study(demo, tmp_path, {"wd": (0.5, {"weight_decay": 1e-3})})
    _recipe_study(demo, tmp_path, {"rnn28_wd": (0.5, {"weight_decay": 1e-3})}, arch="rnn28")
    runs = load_paper_recipe(tmp_path)
    assert [(r.arch, r.factor) for r in runs] == [("rnn28", "wd"), ("lstm28", "wd")]
    baselines = {arch: load_checkpoint(DEMO / "checkpoints" / f"{arch}_sigma0.00_seed0.pt").config for arch in ("lstm28", "rnn28")}
    lines = paper_recipe_block(runs, demo, baselines).splitlines()
    assert [line.split(" | ")[:2] for line in lines[2:]] == [
        ["| lstm28", "baseline"], ["| lstm28", "wd"], ["| lstm28", "the paper"],
        ["| rnn28", "baseline"], ["| rnn28", "wd"], ["| rnn28", "the paper"]]
    acc = demo.accuracy.sel(arch="rnn28", sigma_train=0.0, sigma_val=[0.0, 0.5, 1.0]).values.mean(axis=-1)  # (3,)
    assert PAPER_PAIR["rnn28"] == (0.976, 0.25)
    assert lines[6].endswith(f"| {'yes' if acc[0] >= 0.976 and acc[2] <= 0.25 else 'no'} |")
    assert lines[6].startswith("| rnn28 | wd | weight_decay 0.001 | ")
    assert lines[7] == "| rnn28 | the paper | | | 98.0 % | – | 15.0 % | – | |"
    # its σtrain 1.0 model (dni:rnn28:wd → dni/rnn28_wd.nc): after lstm28's, beside rnn28_wd's conventional model, judged
    # against the paper's RNN-28 bound (> 94 % at σtrain 0.9)
    _dni_run(demo, tmp_path, "rnn28_wd", 1.0, arch="rnn28")
    _dni_run(demo, tmp_path, "wd", 1.0)
    dni_lines = paper_recipe_dni_block(load_paper_recipe_dni(tmp_path), runs, demo).splitlines()
    assert [line.split(" | ")[:2] for line in dni_lines[2:]] == [
        ["| lstm28", "σtrain 0, wd"], ["| lstm28", "σtrain 1.0, wd"], ["| lstm28", "σtrain 1.0, the committed grid's recipe"],
        ["| lstm28", "σtrain 1, the paper"], ["| rnn28", "σtrain 0, wd"], ["| rnn28", "σtrain 1.0, wd"],
        ["| rnn28", "σtrain 1.0, the committed grid's recipe"], ["| rnn28", "σtrain 0.9, the paper"]]
    worst = demo.accuracy.sel(arch="rnn28", sigma_train=1.0).mean("seed").min().item()
    assert dni_lines[7].endswith(f"| {worst * 100:.1f} % | {'yes' if worst > 0.94 else 'no'} |")
    assert dni_lines[9].endswith("| > 94 % | |")


def test_paper_recipe_without_its_models_or_runs_is_refused(demo, tmp_path, capsys):
    from dni.cli import main
    from dni.paper.reproduction import load_paper_recipe

    _recipe_study(demo, tmp_path, {"wd": (0.5, {"weight_decay": 1e-4})})
    (tmp_path / "wd_checkpoints" / "lstm28_sigma0.00_seed0.pt").unlink()
    with pytest.raises(DniError, match=r"wd.nc has no model at .*wd_checkpoints/lstm28_sigma0.00_seed0.pt: .*run results/run_paper_recipe.sh"):
        load_paper_recipe(tmp_path)
    doc = tmp_path / "R.md"
    doc.write_text("<!-- dni:begin paper-recipe -->\n<!-- dni:end paper-recipe -->\n")
    assert main(["--quiet", "reproduction", str(DEMO / "demo.nc"), "--doc", str(doc), "--paper-recipe", str(tmp_path / "none"), "--no-figures"]) == 2
    assert "holds no factor results: run results/run_paper_recipe.sh" in capsys.readouterr().err


def _dni_run(demo, folder, name, scale, arch="lstm28"):
    """A stand-in σtrain 1.0 model under factor ``name``'s recipe: the demo's ``arch`` σtrain 1.0 row, accuracies × ``scale``."""
    from dni.store.checkpoints import load_checkpoint, save_checkpoint
    from dni.store.results import save_results

    run = demo.sel(arch=[arch], sigma_train=[1.0]).copy(deep=True)
    run["accuracy"] = run.accuracy * scale
    (folder / "dni" / f"{name}_checkpoints").mkdir(parents=True)
    save_results(run, folder / "dni" / f"{name}.nc")
    model = f"{arch}_sigma1.00_seed0.pt"
    save_checkpoint(load_checkpoint(DEMO / "checkpoints" / model), folder / "dni" / f"{name}_checkpoints" / model)
    return run


def test_paper_recipe_dni_rows_equal_a_direct_computation(demo, tmp_path, capsys):
    """σtrain 1.0 under a factor's recipe: every σval's mean, the worst, the verdict against the paper's > 98 %; next to
    the factor's conventional model (its three σval) and the committed σtrain 1.0 model; refused without its model."""
    from dni.cli import main
    from dni.paper.reproduction import (
        load_paper_recipe,
        load_paper_recipe_dni,
        paper_recipe_dni_block,
    )

    _recipe_study(demo, tmp_path, {"wd": (0.5, {"weight_decay": 1e-3})})
    run = _dni_run(demo, tmp_path, "wd", 0.5)
    dni_runs, runs = load_paper_recipe_dni(tmp_path), load_paper_recipe(tmp_path)
    assert [r.name for r in dni_runs] == ["wd"] and dni_runs[0].config.sigma_train == 1.0
    lines = paper_recipe_dni_block(dni_runs, runs, demo).splitlines()
    assert lines[0] == "| preset | model | " + " | ".join(f"σval {v:g}" for v in np.round(np.arange(0, 1.01, 0.1), 1)) + " | worst | above the paper's bound? |"

    def expected(label, acc):  # acc: (σval,) means as fractions, NaN where not evaluated
        cells = ["–" if np.isnan(a) else f"{a * 100:.1f} %" for a in acc]
        worst = np.nanmin(acc)
        return f"| lstm28 | {label} | " + " | ".join(cells) + f" | {worst * 100:.1f} % | {'yes' if worst > 0.98 else 'no'} |"

    under = run.accuracy.sel(arch="lstm28", sigma_train=1.0).values.mean(axis=-1)  # (σval,)
    conventional = np.full(11, np.nan)
    conventional[[0, 5, 10]] = demo.accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=[0.0, 0.5, 1.0]).values.mean(axis=-1)
    committed = demo.accuracy.sel(arch="lstm28", sigma_train=1.0).values.mean(axis=-1)
    assert lines[2] == expected("σtrain 0, wd", conventional)
    assert lines[3] == expected("σtrain 1.0, wd", under)
    assert lines[4] == expected("σtrain 1.0, the committed grid's recipe", committed)
    assert lines[5].startswith("| lstm28 | σtrain 1, the paper |") and lines[5].endswith("| > 98 % | |")
    assert "no" in lines[3].rsplit("|", 2)[1]  # halved accuracies are far below 98 %
    # a document asking for the block without runs, and a run without its model, are refused
    doc = tmp_path / "R.md"
    doc.write_text("<!-- dni:begin paper-recipe-dni -->\n<!-- dni:end paper-recipe-dni -->\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    _recipe_study(demo, empty, {"wd": (0.5, {"weight_decay": 1e-3})})
    assert main(["--quiet", "reproduction", str(DEMO / "demo.nc"), "--doc", str(doc), "--paper-recipe", str(empty), "--no-figures"]) == 2
    assert "holds no σtrain 1.0 runs: run results/run_paper_recipe.sh dni:FACTOR" in capsys.readouterr().err
    (tmp_path / "dni" / "wd_checkpoints" / "lstm28_sigma1.00_seed0.pt").unlink()
    with pytest.raises(DniError, match=r"wd.nc has no model at .*lstm28_sigma1.00_seed0.pt: run results/run_paper_recipe.sh dni:wd"):
        load_paper_recipe_dni(tmp_path)


def test_paper_bounds_parse_and_an_unevaluated_run_shows_dashes(demo, tmp_path):
    """The paper's worst-case bounds as fractions; a σtrain 1.0 run with no evaluated point yet renders '–', not an error."""
    from dni.paper.report import worst_case_bound
    from dni.paper.reproduction import load_paper_recipe_dni, paper_recipe_dni_block

    assert (worst_case_bound("lstm28"), worst_case_bound("lstm_stroke50"), worst_case_bound("rnn28")) == (0.98, 0.92, 0.94)
    assert worst_case_bound("gru28") is None
    _recipe_study(demo, tmp_path, {"wd": (0.5, {"weight_decay": 1e-3})})
    _dni_run(demo, tmp_path, "wd", float("nan"))  # a file whose points are all still to be evaluated
    line = next(x for x in paper_recipe_dni_block(load_paper_recipe_dni(tmp_path), [], demo).splitlines() if "σtrain 1.0, wd" in x)
    assert line == "| lstm28 | σtrain 1.0, wd | " + " | ".join(["–"] * 11) + " | – | – |"
