"""Headline numbers of a result set, checked against a direct computation."""

import re

import pytest
from conftest import REPO

from dni.paper.report import headline, headline_table
from dni.store.results import load_results


@pytest.fixture(scope="module")
def demo():
    return load_results(REPO / "widgets" / "demo" / "demo.nc")


def test_headline_numbers_equal_a_direct_computation(demo):
    h = headline(demo, "lstm28")
    acc = demo.accuracy.sel(arch="lstm28").values.mean(axis=-1)  # (σtrain, σval), by position here on purpose
    st, sv = demo.sigma_train.values, demo.sigma_val.values
    assert h.clean == pytest.approx(acc[st == 0.0, sv == 0.0].item())
    assert h.conventional_at_1 == pytest.approx(acc[st == 0.0, sv == 1.0].item())
    worst = acc.min(axis=1)
    assert h.best_sigma_train == st[worst.argmax()] and h.worst_case == pytest.approx(worst.max())
    assert h.weight_power_1 == pytest.approx(demo.weight_power.sel(arch="lstm28", sigma_train=1.0).item())
    assert h.noisy_beats_clean == int((acc[:, sv > 0] > acc[st == 0.0, sv == 0.0]).sum())
    assert h.points == len(st) * (len(sv) - 1)
    assert h.clean > h.conventional_at_1  # noise hurts the conventional model


def test_table_lists_ours_next_to_the_paper(demo):
    table = headline_table(demo)
    assert "| lstm28 (ours) | " in table and "| lstm28 (paper) | 98.7 %" in table and "| rnn28 (paper) |" in table
    h = headline(demo, "lstm_stroke50")
    assert f"{h.clean * 100:.1f} %" in table.split("lstm_stroke50 (ours)")[1].splitlines()[0]


def test_report_command_prints_the_headline_numbers_of_a_direct_computation(demo, capsys):
    """`dni report`'s rows "(ours)", each number recomputed with numpy from the raw accuracies (not through dni.paper.report)."""
    from dni.cli import main

    assert main(["report", str(REPO / "widgets" / "demo" / "demo.nc")]) == 0
    out = capsys.readouterr().out
    st, sv = demo.sigma_train.values, demo.sigma_val.values
    for arch in demo.arch.values.tolist():
        row = [line for line in out.splitlines() if line.startswith(f"| {arch} (ours) |")]
        assert len(row) == 1, out
        cells = [c.strip() for c in row[0].strip().strip("|").split("|")]
        acc = demo.accuracy.sel(arch=arch).values.mean(axis=-1)  # (σtrain, σval)
        clean = acc[st == 0, sv == 0].item()
        assert cells[1] == f"{clean * 100:.1f} %" and cells[2] == f"{acc[st == 0, sv == sv.max()].item() * 100:.1f} %"
        worst = acc.min(axis=1)
        label, value = re.fullmatch(r"σtrain ([\d.]+): ([\d.]+ %)", cells[3]).groups()
        assert float(label) == st[worst.argmax()] and value == f"{worst.max() * 100:.1f} %"
        power = demo.weight_power.sel(arch=arch).values  # (σtrain,)
        assert cells[4] == f"{power[0]:.4f} → {power[-1]:.4f}"
        noisy = acc[:, sv > 0]
        assert cells[5] == f"{int((noisy > clean).sum())} of {noisy.size}"


def test_training_table_lists_each_checkpoint(capsys):
    from dni.cli import main
    from dni.paper.report import training_table
    from dni.store.checkpoints import load_checkpoint

    paths = sorted((REPO / "widgets" / "demo" / "checkpoints").glob("*.pt"))
    models = [load_checkpoint(p) for p in paths]
    table = training_table(models)
    for m in models:
        best = m.meta.get("best_epoch") or len(m.history)
        acc = m.history[best - 1]["val_accuracy_clean"]
        row = next(r for r in table.splitlines() if r.startswith(f"| {m.arch} | {m.sigma_train:.1f} |"))
        assert f"| {len(m.history)} | {best} |" in row and f"| {acc * 100:.2f} % |" in row
    total = sum(m.meta["train_seconds"] for m in models) / 3600
    assert table.splitlines()[-1] == f"| all {len(models)} | | | | | | {total:.2f} h |"
    assert main(["checkpoints", str(REPO / "widgets" / "demo" / "checkpoints")]) == 0
    assert capsys.readouterr().out.strip() == table
    assert main(["checkpoints", str(REPO / "notebooks")]) == 2
    assert "no checkpoints (*.pt) in" in capsys.readouterr().err


def test_training_table_counts_a_batched_run_once_and_lists_models_in_training(tmp_path, capsys, monkeypatch):
    """Models trained together share their wall time: the sum counts their run once, at its longest.
    `dni checkpoints` also lists the models whose training state (`.pt.partial`) says they are training."""
    from dataclasses import replace

    from dni.cli import main
    from dni.data import load_sequences
    from dni.paper.report import training_table
    from dni.store.checkpoints import TrainedModel, TrainingState, save_checkpoint
    from dni.store.layout import checkpoint_path, training_state_path
    from dni.store.recipe import TrainConfig
    from dni.training.train import train

    data = load_sequences("subset", "train").take(slice(0, 200))
    alone = train(preset="rnn28", sigma_train=0.0, epochs=1, progress=False, train_data=data)
    batch = {"model_batched": 2, "trained_at": "2026-11-28T16:00:00"}
    first = TrainedModel(alone.model, replace(alone.config, sigma_train=0.5, device="cuda"), alone.history,
                         {**alone.meta, **batch, "train_seconds": 600.0})
    second = TrainedModel(alone.model, replace(alone.config, sigma_train=1.0, device="cuda"), alone.history,
                          {**alone.meta, **batch, "train_seconds": 900.0})
    table = training_table([alone, first, second])
    assert table.splitlines()[-1] == f"| all 3 | | | | | | {(alone.meta['train_seconds'] + 900.0) / 3600:.2f} h |"
    assert table.splitlines()[3].endswith("| 10.0 min (2 together, cuda) |")
    assert table.splitlines()[4].endswith("| 15.0 min (2 together, cuda) |")

    for m in (alone, first):
        save_checkpoint(m, checkpoint_path(tmp_path, m.config))
    config = TrainConfig(preset="rnn28", sigma_train=0.3, epochs=7)
    state = training_state_path(checkpoint_path(tmp_path, config))
    real_save = TrainingState.save

    def save_then_die(path, config, model, optimiser, schedule, best, run, history, seconds):
        real_save(path, config, model, optimiser, schedule, best, run, history, seconds)
        if len(history) == 2:
            raise KeyboardInterrupt  # cut off after its second epoch

    monkeypatch.setattr(TrainingState, "save", staticmethod(save_then_die))
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, train_data=data, state_path=state)
    history = TrainingState.peek(state)[1]
    best = max(history, key=lambda r: r["val_accuracy"])
    assert main(["checkpoints", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == (f"in training: rnn28 σtrain 0.3, 2 of at most 7 epochs, "
                       f"best so far {best['val_accuracy'] * 100:.2f} % at epoch {best['epoch']}")
    assert out[:-1] == training_table([alone, first]).splitlines()


def test_checkpoints_name_the_training_noise_kind_and_its_exact_strength(tmp_path, capsys):
    """A model trained under another kind is listed as `KIND σ` with σ unrounded (programming 0.073, not 0.1)."""
    from dataclasses import replace

    from dni.cli import main
    from dni.paper.report import training_noise_label
    from dni.store.checkpoints import TrainedModel, load_checkpoint, save_checkpoint
    from dni.store.recipe import TrainConfig

    model = load_checkpoint(next((REPO / "widgets" / "demo" / "checkpoints").glob("rnn28_*.pt")))
    kinds = [("additive", 0.3), ("programming", 0.073), ("weight_read", 0.15)]
    for kind, sigma in kinds:
        config = replace(model.config, sigma_train=sigma, train_noise=kind)
        save_checkpoint(TrainedModel(model.model, config, model.history, model.meta), tmp_path / f"{kind}.pt")
    assert main(["checkpoints", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:5]
    assert [r.split(" | ")[1] for r in rows] == ["0.3", "programming 0.073", "weight_read 0.15"]
    assert training_noise_label(TrainConfig(preset="rnn28", sigma_train=1.0)) == "1.0"


def test_a_grid_that_stops_before_sigma_val_1_shows_no_number_under_sigma_val_1(demo):
    """Issue 36.3: the σval 0.2 values must not appear in the column headed "σtrain 0 at σval 1"."""
    from dni.paper.report import difference_table

    short = demo.sel(sigma_val=demo.sigma_val.values[demo.sigma_val.values <= 0.2 + 1e-9])
    h = headline(short, "lstm28")
    assert h.conventional_at_1 is None and "σval 1" in " ".join(h.missing())
    at_02 = float(short.accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=0.2).mean())
    row = headline_table(short).split("| lstm28 (ours) |")[1].splitlines()[0]
    assert row.split("|")[1].strip() == "–" and f"{at_02 * 100:.1f} %" not in row.split("|")[1]
    assert "| lstm28 |" in difference_table(short) and "| – |" in difference_table(short)  # no "ours − paper" at σval 1
    assert "our worst cases are over σval 0…0.2, the paper's over 0…1" in headline_table(short)


def test_labels_count_the_repeats_a_file_holds(demo):
    """Issue 36.3 in general: a file extended with fewer repeats at some points says "1 to 5", not "5"."""
    from dni.store.results import accuracy_table, repeats_held

    ragged = demo.copy(deep=True)
    ragged["accuracy"].loc[{"sigma_val": 0.5, "seed": ragged.seed.values[1:]}] = float("nan")
    n = demo.sizes["seed"]
    assert repeats_held(demo.accuracy) == f"{n}" and repeats_held(ragged.accuracy) == f"1 to {n}"
    assert f"mean of 1 to {n} repeat(s)" in accuracy_table(ragged, "lstm28")
