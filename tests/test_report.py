"""Headline numbers of a result set, checked against a direct computation."""

import pytest

from conftest import REPO
from dni.report import headline, headline_table
from dni.results import load_results


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


def test_report_command_prints_the_table(demo, capsys):
    from dni.cli import main

    assert main(["report", str(REPO / "widgets" / "demo" / "demo.nc")]) == 0
    out = capsys.readouterr().out
    assert out.strip() == headline_table(demo).strip()


def test_training_table_lists_each_checkpoint(capsys):
    from dni.cli import main
    from dni.report import training_table
    from dni.train import load_checkpoint

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
