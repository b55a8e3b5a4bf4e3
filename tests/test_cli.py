import subprocess
import sys

import pytest

from dni.cli import main
from dni.store.results import load_results


def run_cli(capsys, *argv):
    code = main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_small_sweep_writes_file_and_prints_table(tmp_path, capsys):
    out = tmp_path / "s.nc"
    code, stdout, _ = run_cli(capsys, "sweep", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,0.5",
                              "--sigma-val", "0:0.4:0.2", "--repeats", "2", "--out", str(out))
    assert code == 0
    ds = load_results(out)
    assert dict(ds.sizes) == {"arch": 1, "sigma_train": 2, "sigma_val": 3, "seed": 2}
    assert ds.sigma_val.values.tolist() == [0.0, 0.2, 0.4]
    assert "σtrain\\σval" in stdout and f"{ds.accuracy.sel(sigma_train=0.5, sigma_val=0.2).mean().item() * 100:.1f}" in stdout
    # a second run reuses the checkpoints and gives the same numbers
    code, _, err = run_cli(capsys, "sweep", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,0.5",
                           "--sigma-val", "0:0.4:0.2", "--repeats", "2", "--out", str(out))
    assert code == 0 and err.count("reusing") == 2
    assert load_results(out).accuracy.equals(ds.accuracy)


def test_train_evaluate_merge_table(tmp_path, capsys):
    ck = tmp_path / "m.pt"
    assert run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0.3", "--out", str(ck))[0] == 0
    r1, r2, merged = tmp_path / "a.nc", tmp_path / "b.nc", tmp_path / "all.nc"
    assert run_cli(capsys, "evaluate", str(ck), "--sigma-val", "0,0.5", "--repeats", "2", "--out", str(r1))[0] == 0
    assert run_cli(capsys, "evaluate", str(ck), "--sigma-val", "1.0", "--repeats", "2", "--out", str(r2))[0] == 0
    assert run_cli(capsys, "merge", str(r1), str(r2), "--out", str(merged))[0] == 0
    assert load_results(merged).sigma_val.values.tolist() == [0.0, 0.5, 1.0]
    code, out, _ = run_cli(capsys, "table", str(merged))
    assert code == 0 and "rnn28" in out


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--preset", "lstm99"], "unknown preset 'lstm99'; choose one of: lstm28, lstm_stroke50, rnn28, gru28"),
    (["sweep", "--sigma-val", "-0.5"], "sigma_val must be >= 0"),
    (["sweep", "--sigma-train", "nan"], "sigma_train must be a finite number"),
    (["sweep", "--sigma-train", "abc"], "sigma_train must be a number"),
    (["sweep", "--sigma-val", ""], "sigma_val list is empty"),
    (["sweep", "--repeats", "0"], "repeats must be an integer >= 1"),
    (["sweep", "--out", "/nonexistent/dir/x.nc"], "directory /nonexistent/dir does not exist"),
    (["evaluate", "missing.pt", "--out", "r.nc"], "checkpoint missing.pt does not exist"),
])
def test_bad_input_is_one_line_with_nonzero_exit_and_no_output(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("dni: error:") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a checkpoint folder


def test_evaluate_refuses_checkpoint_of_another_preset(tmp_path, capsys):
    ck = tmp_path / "m.pt"
    run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--out", str(ck))
    code, _, err = run_cli(capsys, "evaluate", str(ck), "--preset", "lstm28", "--out", str(tmp_path / "r.nc"))
    assert code == 2 and "holds preset 'rnn28', not 'lstm28'" in err
    assert not (tmp_path / "r.nc").exists()


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "dni.cli", "sweep", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--sigma-train" in out and "paper 0:1:0.1" in out


def test_train_only_trains_the_checkpoints_and_evaluates_nothing(tmp_path, capsys):
    out = tmp_path / "grid.nc"
    code, stdout, err = run_cli(capsys, "sweep", "--train-only", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,1",
                                "--out", str(out))
    assert code == 0, err
    folder = tmp_path / "grid_checkpoints"
    assert stdout.startswith(f"rnn28 σtrain 0, 1: trained, in {folder}/ (")
    assert sorted(p.name for p in folder.iterdir()) == ["rnn28_sigma0.00_seed0.pt", "rnn28_sigma1.00_seed0.pt"]
    assert not out.exists()
    assert run_cli(capsys, "sweep", "--train-only", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,1",
                   "--out", str(out))[2].count("reusing") == 2


# --- issue 36.15: loose input ---------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["sweep", "--sigma-val", "0", "--sigma-val", "0.3"], "--sigma-val is given twice; give one list, e.g. --sigma-val 0,0.3"),
    (["sweep", "--sigma-train", "0", "--sigma-train", "1"], "--sigma-train is given twice"),
    (["evaluate", "m.pt", "--out", "r.nc", "--sigma-val", "0", "--sigma-val", "1"], "--sigma-val is given twice"),
    (["sweep", "--seed", "-1"], "--seed -1 is negative; give an integer ≥ 0"),
    (["evaluate", "m.pt", "--out", "r.nc", "--seed", "-3"], "--seed -3 is negative"),
    (["train", "--out", "m.pt", "--seed", "x"], "--seed 'x' is not an integer"),
])
def test_a_flag_given_twice_or_a_negative_seed_is_one_line(tmp_path, monkeypatch, capsys, argv, message):
    from dni.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dni: error:") and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_an_accuracy_outside_0_1_is_not_printed(tmp_path, capsys):
    from conftest import REPO

    from dni.cli import main
    from dni.store.results import load_results, save_results

    ds = load_results(REPO / "widgets" / "demo" / "demo.nc")
    ds["accuracy"][0, 0, 0, 0] = 1.7
    save_results(ds, tmp_path / "bad.nc")
    for command in ("table", "report"):
        assert main([command, str(tmp_path / "bad.nc")]) == 2
        _, err = capsys.readouterr()
        assert "holds 1 accuracies outside [0, 1] (e.g. 1.7)" in err and err.count("\n") == 1, err


def test_checkpoints_lists_the_readable_ones_and_flags_the_unreadable(tmp_path, capsys):
    import shutil

    from conftest import REPO

    from dni.cli import main

    for name in ("rnn28_sigma0.50_seed0.pt", "lstm28_sigma0.00_seed0.pt"):
        shutil.copy(REPO / "widgets" / "demo" / "checkpoints" / name, tmp_path / name)
    (tmp_path / "lstm28_sigma0.00_seed0.pt").write_bytes(b"not a checkpoint")
    assert main(["checkpoints", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "| rnn28 | 0.5 |" in out and "| all 1 |" in out
    assert err.startswith(f"dni: unreadable: {tmp_path / 'lstm28_sigma0.00_seed0.pt'} (") and err.count("\n") == 1, err


def test_ctrl_c_while_the_arguments_are_read_is_one_line(monkeypatch, capsys):
    import dni.noise.spec
    from dni.cli import main

    def interrupted(text):
        raise KeyboardInterrupt

    monkeypatch.setattr(dni.noise.spec, "parse_noise", interrupted)  # the first heavy import of start-up: torch
    assert main(["sweep", "--train-noise", "weight_read"]) == 130
    err = capsys.readouterr().err
    assert err == "dni: interrupted before any work; nothing was written\n"
