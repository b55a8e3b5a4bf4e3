"""Nothing lost, nothing silently wrong (issue 21): trained models and results are never replaced
unasked, every output path is checked before the work, bad files and devices fail as one line,
and a failed write leaves the previous file intact.

Each test asserts the message, the exit status, and that no file was created or changed.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from dni.cli import main
from dni.store.results import load_results, save_results

REPO = Path(__file__).resolve().parent.parent
SWEEP = ["sweep", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0", "--sigma-val", "0,0.5", "--repeats", "2"]


def run_cli(capsys, *argv):
    code = main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict:
    """{relative path: (bytes hash, mtime_ns)} of every file under ``folder``: any change shows."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(err: str, message: str) -> None:
    assert err.startswith("dni: error:") and len(err.strip().splitlines()) == 1, err
    assert message in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 1-model sweep (rnn28, 1 epoch on the subset): result file and checkpoint folder."""
    folder = tmp_path_factory.mktemp("trained")
    assert main(["--quiet", *SWEEP, "--out", str(folder / "r.nc")]) == 0
    return folder


@pytest.fixture
def work(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    return tmp_path


# --- 1. never overwrite a trained model or a result with different content ----------------------

def test_sweep_refuses_to_replace_a_checkpoint_of_other_settings(work, capsys):
    checkpoint = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt"
    before = snapshot(work)
    code, _, err = run_cli(capsys, *SWEEP[:4], "2", *SWEEP[5:], "--out", str(work / "r.nc"))  # --epochs 2
    assert code == 2
    one_line_error(err, f"{checkpoint} holds a model trained with other settings (epochs 1 → 2); it is not replaced: "
                        "use another --checkpoint-dir, or pass --retrain")
    assert snapshot(work) == before  # the checkpoint byte-identical, the result file untouched, nothing new


def test_retrain_keeps_the_old_checkpoint_and_result_as_backups(work, capsys):
    checkpoint = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt"
    old_checkpoint, old_result = checkpoint.read_bytes(), (work / "r.nc").read_bytes()
    code, _, err = run_cli(capsys, *SWEEP[:4], "2", *SWEEP[5:], "--out", str(work / "r.nc"), "--retrain")
    assert code == 0, err
    [backup] = list(checkpoint.parent.glob(checkpoint.name + ".bak-*"))
    assert backup.read_bytes() == old_checkpoint
    [result_backup] = list(work.glob("r.nc.bak-*"))
    assert result_backup.read_bytes() == old_result
    assert torch.load(checkpoint, weights_only=True)["config"]["epochs"] == 2
    assert load_results(work / "r.nc").epochs.item() == 2  # the retrained model's points, not the old ones


def test_train_reuses_or_refuses_an_existing_checkpoint(work, capsys):
    checkpoint = work / "m.pt"
    shutil.copy(work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", checkpoint)
    before = snapshot(work)
    code, out, _ = run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--out", str(checkpoint))
    assert code == 0 and "already holds this model" in out and snapshot(work) == before  # not retrained
    code, _, err = run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--lr", "0.01", "--out", str(checkpoint))
    assert code == 2
    one_line_error(err, f"{checkpoint} holds a model trained with other settings (lr 0.002 → 0.01); it is not replaced: use another --out")
    assert snapshot(work) == before


def test_a_training_state_of_other_settings_is_not_overwritten(work, capsys):
    from dni.store.recipe import TrainConfig
    from dni.training.train import train

    partial = work / "m.pt.partial"
    train(TrainConfig(preset="rnn28", epochs=1, lr=0.01), progress=False, state_path=partial)
    before = snapshot(work)
    code, _, err = run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--out", str(work / "m.pt"))
    assert code == 2
    one_line_error(err, f"{partial} is the training state of other settings (lr 0.01 → 0.002); it is not replaced")
    assert snapshot(work) == before


def test_an_unreadable_checkpoint_is_not_replaced(work, capsys):
    checkpoint = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # cut off (e.g. copied by hand, interrupted)
    before = snapshot(work)
    code, _, err = run_cli(capsys, *SWEEP, "--out", str(work / "r.nc"))
    assert code == 2
    one_line_error(err, f"{checkpoint} cannot be read as a checkpoint of rnn28")
    assert snapshot(work) == before


def test_evaluate_extends_an_existing_result_file(work, capsys):
    checkpoint, out = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", work / "e.nc"
    assert run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "0,0.5", "--repeats", "2", "--out", str(out))[0] == 0
    first = load_results(out)
    code, _, err = run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "1", "--repeats", "2", "--out", str(out))
    assert code == 0 and "resuming" not in err
    both = load_results(out)
    assert both.sigma_val.values.tolist() == [0.0, 0.5, 1.0]  # the first run's points are kept ...
    xr.testing.assert_equal(both.accuracy.sel(sigma_val=[0.0, 0.5]), first.accuracy)  # ... exactly
    # the same σval again: resumed, nothing recomputed, the numbers the same
    code, _, err = run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "0.5,1", "--repeats", "2", "--out", str(out))
    assert code == 0 and "2 of 2 points already evaluated" in err
    xr.testing.assert_equal(load_results(out).accuracy, both.accuracy)


def test_evaluate_refuses_a_result_file_of_another_eval_seed_or_other_weights(work, capsys):
    checkpoint, out = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", work / "r.nc"
    before = snapshot(work)
    code, _, err = run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "1", "--repeats", "2", "--seed", "3", "--out", str(out))
    assert code == 2
    one_line_error(err, f"{out} holds other results (eval seed 0, not 3); it is not replaced: write to another --out")
    other = work / "other.pt"
    assert run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--seed", "5", "--out", str(other))[0] == 0
    before = snapshot(work)
    code, _, err = run_cli(capsys, "evaluate", str(other), "--sigma-val", "1", "--repeats", "2", "--out", str(out))
    assert code == 2
    one_line_error(err, "holds other results (rnn28 σtrain 0 evaluated with other weights)")
    assert snapshot(work) == before


def test_a_sweep_keeps_points_outside_its_grid(work, capsys):
    """Another σval list must not drop the file's other points (or repeats)."""
    before = load_results(work / "r.nc")
    code, _, err = run_cli(capsys, *SWEEP[:8], "1", *SWEEP[9:], "--out", str(work / "r.nc"))  # --sigma-val 1
    assert code == 0, err
    after = load_results(work / "r.nc")
    assert after.sigma_val.values.tolist() == [0.0, 0.5, 1.0]
    xr.testing.assert_equal(after.accuracy.sel(sigma_val=[0.0, 0.5]), before.accuracy)


def test_a_sweep_refuses_a_foreign_or_unjoinable_result_file(work, capsys):
    foreign = work / "notes.nc"
    foreign.write_text("my notes, not NetCDF")
    before = snapshot(work)
    code, _, err = run_cli(capsys, *SWEEP, "--out", str(foreign), "--checkpoint-dir", str(work / "r_checkpoints"))
    assert code == 2
    one_line_error(err, f"{foreign} exists but is not a dni result file")
    code, _, err = run_cli(capsys, *SWEEP, "--seed", "1", "--out", str(work / "r.nc"), "--checkpoint-dir", str(work / "r_checkpoints"))
    assert code == 2
    one_line_error(err, "holds other results (eval seed 0, not 1); it is not replaced")
    assert snapshot(work) == before


def test_merge_does_not_replace_a_file_that_is_not_an_input(work, capsys):
    ds = load_results(work / "r.nc")
    save_results(ds.sel(sigma_val=[0.0]), work / "a.nc")
    save_results(ds.sel(sigma_val=[0.5]), work / "b.nc")
    before = snapshot(work)
    code, _, err = run_cli(capsys, "merge", str(work / "a.nc"), str(work / "b.nc"), "--out", str(work / "r.nc"))
    assert code == 2
    one_line_error(err, f"{work / 'r.nc'} exists and is not one of the inputs; it is not replaced")
    assert snapshot(work) == before
    # listed among the inputs it is extended
    assert run_cli(capsys, "merge", str(work / "a.nc"), str(work / "b.nc"), "--out", str(work / "a.nc"))[0] == 0
    assert load_results(work / "a.nc").sigma_val.values.tolist() == [0.0, 0.5]


# --- 2. every output path checked before the work ------------------------------------------------

@pytest.fixture
def readonly_dir(tmp_path):
    """A read-only folder. Root ignores permission bits, so it is a read-only tmpfs mount where the
    test may mount (CI runs as root), else a folder with write permission removed (non-root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    assert mounted, "as root the test needs `mount` for a read-only folder"
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--out", "/proc/dni/r.nc"], "directory /proc/dni does not exist"),
    (["sweep", "--out", "/proc/r.nc"], "cannot write /proc/r.nc: /proc is not writable"),
    (["sweep", "--out", "FILE/r.nc"], "cannot write FILE/r.nc: FILE is a file, not a directory"),
    (["sweep", "--checkpoint-dir", "FILE/ck"], "cannot create folder FILE/ck: FILE is a file, not a directory"),
    (["sweep", "--checkpoint-dir", "/proc/ck"], "cannot write /proc/ck: /proc is not writable"),
    (["sweep", "--out", "RO/r.nc"], "cannot write RO/r.nc: RO is not writable"),
    (["sweep", "--checkpoint-dir", "RO/ck"], "cannot write RO/ck: RO is not writable"),
    (["train", "--out", "RO/m.pt"], "cannot write RO/m.pt: RO is not writable"),
    (["evaluate", "CKPT", "--out", "RO/e.nc"], "cannot write RO/e.nc: RO is not writable"),
    (["notebook-sweep", "--out", "RO/n.nc"], "cannot write RO/n.nc: RO is not writable"),
    (["notebook-sweep", "--out", "FILE/n.nc"], "FILE is a file, not a directory"),
    (["merge", "CKPT_RESULT", "--out", "RO/m.nc"], "cannot write RO/m.nc: RO is not writable"),
    (["figures", "CKPT_RESULT", "-o", "RO/f.html"], "cannot write RO/f.html: RO is not writable"),
    (["reproduction", "CKPT_RESULT", "--doc", "DOC", "--figures-dir", "RO/fig"], "cannot write RO/fig: RO is not writable"),
])
def test_output_paths_are_checked_before_any_work(trained, tmp_path, readonly_dir, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a file")
    (tmp_path / "DOC").write_text("# doc\n")
    names = {"RO": str(readonly_dir.relative_to(tmp_path)), "CKPT": str(trained / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt"),
             "CKPT_RESULT": str(trained / "r.nc")}
    argv = [names.get(a, a).replace("RO/", names["RO"] + "/") for a in argv]
    message = message.replace("RO", names["RO"])
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_line_error(err, message)
    assert snapshot(tmp_path) == before  # nothing created: no result, no empty checkpoint folder, no probe left


def test_bad_input_leaves_no_checkpoint_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "sweep", "--lr", "-1")
    assert code == 2
    one_line_error(err, "lr must be a positive number, got -1.0")
    assert list(tmp_path.iterdir()) == []


# --- 3. every file dni wrote works with every command -------------------------------------------

def test_report_on_a_result_without_a_conventional_model(work, capsys):
    checkpoint = work / "s.pt"
    assert run_cli(capsys, "train", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0.5", "--out", str(checkpoint))[0] == 0
    assert run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "0,0.5", "--repeats", "2", "--out", str(work / "e.nc"))[0] == 0
    code, out, err = run_cli(capsys, "report", str(work / "e.nc"))
    assert code == 0, err
    ds = load_results(work / "e.nc")
    worst = ds.accuracy.sel(arch="rnn28", sigma_train=0.5).mean("seed").min().item()
    row = next(line for line in out.splitlines() if line.startswith("| rnn28 (ours)"))
    assert row.split("|")[2].strip() == "–" and f"σtrain 0.5: {worst * 100:.1f} %" in row
    assert "rnn28: the result lacks the clean baseline (σtrain = σval = 0)" in out


@pytest.mark.parametrize("command", ["table", "report", "merge"])
def test_a_netcdf_of_another_schema_names_what_is_missing(tmp_path, capsys, command):
    other = tmp_path / "other.nc"
    xr.Dataset({"temperature": ("time", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    argv = [command, str(other)] + (["--out", str(tmp_path / "m.nc")] if command == "merge" else [])
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_line_error(err, "is not a dni result file: it lacks dims arch, sigma_train, sigma_val, seed; variables accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.nc"]


def test_merge_refuses_different_eval_seeds_unless_told(work, capsys):
    ds = load_results(work / "r.nc")
    a, b = ds.sel(sigma_val=[0.0]), ds.sel(sigma_val=[0.5]).assign_attrs(eval_seed=7)
    save_results(a, work / "a.nc")
    save_results(b, work / "b.nc")
    code, _, err = run_cli(capsys, "merge", str(work / "a.nc"), str(work / "b.nc"), "--out", str(work / "m.nc"))
    assert code == 2
    one_line_error(err, "cannot merge results of different evaluation seeds ['0', '7']")
    assert not (work / "m.nc").exists()
    code, _, _ = run_cli(capsys, "merge", str(work / "a.nc"), str(work / "b.nc"), "--out", str(work / "m.nc"), "--allow-different-eval-seeds")
    assert code == 0 and load_results(work / "m.nc").attrs["eval_seed"] == "mixed: 0, 7"


# --- 4. data integrity -------------------------------------------------------------------------

@pytest.fixture
def test_split_copy(tmp_path, monkeypatch):
    """A data folder with real MNIST (linked; the test labels copied, to be damaged) and its MD5SUMS;
    the verdict cache in a fresh user cache."""
    from conftest import FULL_MNIST

    if not FULL_MNIST.is_file():
        pytest.skip("full MNIST not found: set DNI_DATA_DIR (CI sets ../shared/data)")
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = FULL_MNIST.parent
    for name in ("t10k-images-idx3-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # torchvision wants all four
        os.symlink(src / name, raw / name)
    shutil.copy(src / "t10k-labels-idx1-ubyte", raw / "t10k-labels-idx1-ubyte")
    shutil.copy(src / "MD5SUMS", raw / "MD5SUMS")
    monkeypatch.setenv("DNI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return raw


def _flip_label(raw: Path, index: int, value: int) -> None:
    labels = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    labels[8 + index] = value
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))


def test_md5_mismatch_names_the_file(test_split_copy, monkeypatch):
    from dni.data import integrity
    from dni.data.mnist import load_mnist_images
    from dni.errors import DataNotFoundError

    images, labels = load_mnist_images("test")  # verified once ...
    assert labels.shape == (10_000,)
    monkeypatch.setattr(integrity, "md5_of", lambda f: pytest.fail(f"hashed {f} again"))
    load_mnist_images("test")  # ... then the cached verdict serves
    monkeypatch.undo()
    monkeypatch.setenv("DNI_DATA_DIR", str(test_split_copy.parent.parent))
    _flip_label(test_split_copy, 0, (int(labels[0]) + 1) % 10)  # a plausible label: only the checksum can tell
    with pytest.raises(DataNotFoundError, match=r"t10k-labels-idx1-ubyte is corrupt: its MD5 is [0-9a-f]{32}, .*MD5SUMS says 27ae3e4e"):
        load_mnist_images("test")


def test_without_checksums_headers_and_labels_are_checked(test_split_copy, capsys):
    from dni.data.mnist import load_mnist_images
    from dni.errors import DataNotFoundError

    (test_split_copy / "MD5SUMS").unlink()
    _flip_label(test_split_copy, 5, 11)
    with pytest.raises(DataNotFoundError, match="MNIST test data in .* is corrupt"):
        load_mnist_images("test")
    labels = test_split_copy / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])  # truncated
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte is corrupt: its header says 10000 labels but it holds 9998 bytes"):
        load_mnist_images("test")
    code, _, err = run_cli(capsys, "evaluate", str(REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt"),
                           "--data", "mnist", "--out", str(test_split_copy / "e.nc"))
    assert code == 2
    one_line_error(err, "its header says 10000 labels but it holds 9998 bytes")


# --- 5. devices ----------------------------------------------------------------------------------

@pytest.mark.parametrize("device, message", [
    ("cuda:99", "device 'cuda:99'"),
    ("tpu", "device 'tpu' is not a torch device; available here: cpu"),
])
@pytest.mark.parametrize("command", ["sweep", "train", "evaluate"])
def test_an_unavailable_device_fails_before_any_work(tmp_path, monkeypatch, capsys, command, device, message):
    monkeypatch.chdir(tmp_path)
    argv = {"sweep": ["sweep"], "train": ["train", "--out", "m.pt"],
            "evaluate": ["evaluate", str(REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt"), "--out", "e.nc"]}[command]
    code, _, err = run_cli(capsys, *argv, "--device", device)
    assert code == 2
    one_line_error(err, message)
    assert "available here: cpu" in err
    assert list(tmp_path.iterdir()) == []


# --- 6. papercuts ----------------------------------------------------------------------------------

def test_global_flags_after_the_command(tmp_path, capsys):
    code = main(["presets", "--quiet"])
    assert code == 0 and "lstm28" in capsys.readouterr().out
    from dni.cli import build_parser

    assert build_parser().parse_args(["sweep", "--quiet"]).quiet is True
    assert build_parser().parse_args(["--quiet", "sweep"]).quiet is True
    assert build_parser().parse_args(["sweep"]).quiet is False


def test_help_texts():
    def help_of(*argv):
        return subprocess.run([sys.executable, "-m", "dni.cli", *argv, "--help"], capture_output=True, text=True, check=True).stdout

    assert "Train one model of --preset with Gaussian noise" in help_of("train")
    nb = " ".join(help_of("notebook-sweep").split())
    for default in ("(default 0,0.5,1)", "(default 0:1:0.1)", "(default 5; paper 40)", "(default 10)", "(default 0)"):
        assert default in nb
    # the top-level example of the paper's grid is the README's command
    readme = " ".join((REPO / "README.md").read_text().replace("\\\n", " ").split())
    top = " ".join(help_of().replace("\\\n", " ").split())
    example = top[top.index("dni sweep --data mnist"):top.index("# the paper's grid")].replace("--out lstm28.nc", "").strip()
    assert example in readme.replace("--out results/sweeps/lstm28.nc", "")


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--sigma-val", "0:1:0.00001"], "sigma_val range '0:1:0.00001' has 100,001 points, more than dni's limit of 10,000"),
    (["sweep", "--sigma-train", "0,0.0000001"], "sigma_train 1e-07 is below dni's σ precision of 1e-6 (it would be stored as 0)"),
    (["train", "--sigma-train", "0.0000004", "--out", "m.pt"], "sigma_train 4e-07 is below dni's σ precision"),
])
def test_absurd_sigma_grids_are_refused(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_line_error(err, message)
    assert list(tmp_path.iterdir()) == []


def test_sigmas_that_differ_below_two_decimals_get_their_own_checkpoints():
    from dni.store.layout import checkpoint_path
    from dni.store.recipe import TrainConfig

    names = {checkpoint_path(Path("."), TrainConfig(preset="rnn28", sigma_train=s)).name for s in (0.0, 0.001, 0.125, 0.5)}
    assert names == {"rnn28_sigma0.00_seed0.pt", "rnn28_sigma0.001_seed0.pt", "rnn28_sigma0.125_seed0.pt", "rnn28_sigma0.50_seed0.pt"}


# --- 7. faults while writing ---------------------------------------------------------------------

@contextlib.contextmanager
def small_disk(folder: Path, size: str = "256k"):
    """A tiny tmpfs at ``folder`` (root), to fill up for real."""
    folder.mkdir()
    assert subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0, \
        "the full-disk test needs `mount` (root)"
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as fh:
        with contextlib.suppress(OSError):
            fh.write(b"x" * (1 << 22))


@pytest.mark.skipif(os.geteuid() != 0, reason="a real full disk needs a tmpfs mount (root)")
def test_a_full_disk_keeps_the_previous_result_and_checkpoint(trained, tmp_path):
    from dni.errors import OutputPathError
    from dni.store.checkpoints import load_checkpoint, save_checkpoint

    with small_disk(tmp_path / "disk") as disk:
        shutil.copy(trained / "r.nc", disk / "r.nc")
        shutil.copy(trained / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", disk / "m.pt")
        before = snapshot(disk)
        _fill(disk)
        ds = load_results(disk / "r.nc")
        with pytest.raises(OutputPathError, match=r"^could not write .*r\.nc \(No space left on device\); the previous file is unchanged$"):
            save_results(ds.assign(accuracy=ds.accuracy * 0.5), disk / "r.nc")
        model = load_checkpoint(disk / "m.pt")
        model.model.fc.weight.data.zero_()
        with pytest.raises(OutputPathError, match=r"^could not write .*m\.pt \(No space left on device\); the previous file is unchanged$"):
            save_checkpoint(model, disk / "m.pt")
        (disk / "filler").unlink()
        assert snapshot(disk) == before  # both intact, no temporary file left


def test_a_save_cut_off_midway_never_replaces_the_good_checkpoint(trained, tmp_path, monkeypatch):
    """A crash (here: an interrupt) while torch writes leaves the old checkpoint, never a stub."""
    from dni.store.checkpoints import load_checkpoint, save_checkpoint

    path = tmp_path / "m.pt"
    shutil.copy(trained / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", path)
    good = path.read_bytes()
    model = load_checkpoint(path)
    real_save = torch.save

    def crash_midway(obj, target, *a, **kw):
        real_save(obj, target, *a, **kw)
        with open(target, "r+b") as fh:
            fh.truncate(os.path.getsize(target) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, path)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_the_data_is_on_disk_before_the_rename(tmp_path, monkeypatch):
    """atomic_path flushes the new file (fsync) before it replaces the old one: a power cut leaves old or new."""
    from dni.util import io

    events = []
    monkeypatch.setattr(io.os, "fsync", lambda fd: events.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(io.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    with io.atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("new")
    assert events == ["fsync", "replace"] and (tmp_path / "x.txt").read_text() == "new"


# --- issue 36: extending a file with another repeat count keeps its other points ----------------

def test_evaluate_with_more_repeats_keeps_the_points_outside_its_grid(work, capsys):
    """Issue 36.1: σval 0.3 evaluated with 1 repeat must survive a 3-repeat run at σval 0 only."""
    checkpoint, out = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt", work / "x.nc"
    assert run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "0,0.3", "--repeats", "1", "--out", str(out))[0] == 0
    first = load_results(out)
    code, out_text, err = run_cli(capsys, "evaluate", str(checkpoint), "--sigma-val", "0", "--repeats", "3", "--out", str(out))
    assert code == 0, err
    after = load_results(out)
    # the 1-repeat point outside this run's grid: kept as it was, its other repeats absent (NaN)
    xr.testing.assert_equal(after.accuracy.sel(sigma_val=0.3, seed=0), first.accuracy.sel(sigma_val=0.3, seed=0))
    assert after.accuracy.sel(sigma_val=0.3, seed=[1, 2]).isnull().all()
    assert after.accuracy.sel(sigma_val=0.0).notnull().all()  # the run's own point: all 3 repeats
    assert "1 to 3 repeat(s)" in out_text  # the table says how many repeats its means hold


def test_a_sweep_with_more_repeats_keeps_the_points_outside_its_grid(work, capsys):
    """Issue 36.2: the same through `dni sweep`."""
    out = work / "s.nc"
    base = [*SWEEP[:7], "--out", str(out), "--checkpoint-dir", str(work / "r_checkpoints")]  # sweep --preset rnn28 --epochs 1 --sigma-train 0
    assert run_cli(capsys, *base, "--sigma-val", "0,0.3", "--repeats", "1")[0] == 0
    first = load_results(out)
    code, _, err = run_cli(capsys, *base, "--sigma-val", "0", "--repeats", "2")
    assert code == 0, err
    after = load_results(out)
    xr.testing.assert_equal(after.accuracy.sel(sigma_val=0.3, seed=0), first.accuracy.sel(sigma_val=0.3, seed=0))
    assert after.accuracy.sel(sigma_val=0.0).notnull().all()


def test_a_noise_kinds_grid_file_is_refused_by_a_one_pair_run_in_one_line(work, capsys):
    """Issue 36.7: `dni evaluate/sweep --out GRID.nc` (dims train_noise, eval_noise) was a ValueError traceback."""
    from dni.store.results import with_noise_dims

    grid = work / "grid.nc"
    save_results(with_noise_dims(load_results(work / "r.nc")), grid)
    before = snapshot(work)
    checkpoint = work / "r_checkpoints" / "rnn28_sigma0.00_seed0.pt"
    for argv in (["evaluate", str(checkpoint), "--sigma-val", "1", "--repeats", "2"], SWEEP):
        code, _, err = run_cli(capsys, *argv, "--out", str(grid))
        assert code == 2
        one_line_error(err, f"{grid} holds other results (a grid of noise pairs (dims train_noise, eval_noise), which a run of one "
                            "pair cannot extend; `dni merge` the two files afterwards); it is not replaced: write to another --out")
        assert snapshot(work) == before


def test_merge_of_two_identical_runs_that_took_different_times(work, capsys):
    """Issue 36.9: train_seconds is metadata; bit-identical results merge, keeping the first file's time."""
    a = load_results(work / "r.nc")
    b = a.copy(deep=True)
    b["train_seconds"] = b.train_seconds + 7.0
    save_results(b, work / "b.nc")
    code, _, err = run_cli(capsys, "merge", str(work / "r.nc"), str(work / "b.nc"), "--out", str(work / "m.nc"))
    assert code == 0, err
    merged = load_results(work / "m.nc")
    xr.testing.assert_equal(merged.accuracy, a.accuracy)
    xr.testing.assert_equal(merged.train_seconds, a.train_seconds)
    b["accuracy"] = b.accuracy + 0.001  # a result that differs is still refused
    save_results(b, work / "b.nc")
    code, _, err = run_cli(capsys, "merge", str(work / "r.nc"), str(work / "b.nc"), "--out", str(work / "m2.nc"))
    assert code == 2 and "results disagree where they overlap" in err
