import os

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import REPO

from dni.data import load_sequences
from dni.errors import DniError, InvalidArgumentError, OutputPathError
from dni.evaluation.evaluate import evaluate
from dni.nn.models import build_model
from dni.store.checkpoints import TrainedModel
from dni.store.recipe import TrainConfig
from dni.store.results import (
    accuracy_table,
    load_results,
    make_results,
    merge_results,
    save_results,
)


def _ds(preset="rnn28", sigma_train=(0.0,), sigma_val=(0.0, 0.5), repeats=2, seed=0):
    data = load_sequences("subset", "test").take(slice(0, 200))
    models = []
    for s in sigma_train:
        torch.manual_seed(0)
        models.append(TrainedModel(build_model(preset, s), TrainConfig(preset=preset, sigma_train=s)))
    ds = evaluate(models, sigma_val, repeats, data=data, seed=seed, progress=False)
    ds.attrs["dataset"] = "subset"
    return ds


def test_round_trip_keeps_values_coords_and_attrs(tmp_path):
    ds = _ds()
    save_results(ds, tmp_path / "r.nc")
    back = xr.open_dataset(tmp_path / "r.nc")  # plain xarray opens it
    xr.testing.assert_identical(back.load(), ds)
    assert back.attrs["dataset"] == "subset" and back.attrs["dni_version"] and back.attrs["created"]
    assert list(os.listdir(tmp_path)) == ["r.nc"]  # no temporary file left


def test_merge_of_runs_over_other_presets_and_sigmas():
    a = _ds("rnn28", (0.0,))
    b = _ds("rnn28", (0.5,))
    c = _ds("lstm28", (0.0,))
    merged = merge_results([a, b, c])
    assert sorted(merged.arch.values.tolist()) == ["lstm28", "rnn28"]  # every preset once (merge_results promises no order)
    assert merged.sigma_train.values.tolist() == [0.0, 0.5]
    for run, arch, st in ((a, "rnn28", 0.0), (b, "rnn28", 0.5), (c, "lstm28", 0.0)):  # each point holds its own run's values
        for var in ("accuracy", "loss"):
            np.testing.assert_array_equal(merged[var].sel(arch=arch, sigma_train=st).values, run[var].sel(arch=arch, sigma_train=st).values)
    assert not np.array_equal(a.loss.values, c.loss.values)  # lstm28 and rnn28 differ: the check above can tell them apart
    assert np.isnan(merged.accuracy.sel(arch="lstm28", sigma_train=0.5)).all()  # not run: NaN, not invented


def test_merge_refuses_conflicts_and_other_datasets():
    a = _ds(seed=0)
    b = a.copy(deep=True)  # same grid points and evaluation seed, one value other
    b["accuracy"].loc[{"arch": "rnn28", "sigma_train": 0.0, "sigma_val": 0.5, "seed": 1}] += 0.005
    with pytest.raises(InvalidArgumentError, match="disagree where they overlap"):
        merge_results([a, b])
    other = a.copy()
    other.attrs["dataset"] = "mnist"
    with pytest.raises(InvalidArgumentError, match="different data sets"):
        merge_results([a, other])


def test_failed_write_leaves_previous_file_intact_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.nc"
    ds = _ds()
    save_results(ds, path)
    before = path.read_bytes()

    def crash(self, target, **kw):
        with open(target, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_results(ds, path)
    assert path.read_bytes() == before
    assert list(os.listdir(tmp_path)) == ["r.nc"]


def test_unwritable_output_path_is_reported(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist; create it first"):
        save_results(_ds(), tmp_path / "no" / "such" / "dir" / "r.nc")
    with pytest.raises(OutputPathError, match="is a directory"):
        save_results(_ds(), tmp_path)


def test_unreadable_result_file(tmp_path):
    (tmp_path / "x.nc").write_text("nope")
    with pytest.raises(DniError, match="not a readable NetCDF"):
        load_results(tmp_path / "x.nc")


def test_table_has_sigma_train_rows_and_sigma_val_columns():
    ds = _ds("rnn28", (0.0, 0.5), (0.0, 0.5, 1.0))
    table = accuracy_table(ds).splitlines()
    assert table[1].split()[1:] == ["0", "0.5", "1"]
    row = table[3].split()
    assert float(row[0]) == 0.5
    assert float(row[2]) == pytest.approx(ds.accuracy.sel(arch="rnn28", sigma_train=0.5, sigma_val=0.5).mean().item() * 100, abs=0.051)


def test_merging_loaded_files_keeps_long_arch_names(tmp_path):
    """A loaded file's string width ('<U6' for 'rnn28') must not truncate 'lstm_stroke50' on save."""
    dims, grid = ("arch", "sigma_train", "sigma_val", "seed"), {"sigma_train": [0.0], "sigma_val": [0.0], "seed": [0]}
    a = xr.Dataset({"accuracy": (dims, [[[[0.5]]]])}, coords={"arch": ["rnn28"], **grid}, attrs={"dataset": "subset"})
    b = xr.Dataset({"accuracy": (dims, [[[[0.6]]]])}, coords={"arch": ["lstm_stroke50"], **grid}, attrs={"dataset": "subset"})
    save_results(a, tmp_path / "a.nc")
    save_results(b, tmp_path / "b.nc")
    merged = merge_results([load_results(tmp_path / "a.nc"), load_results(tmp_path / "b.nc")])
    save_results(merged, tmp_path / "m.nc")
    assert sorted(load_results(tmp_path / "m.nc").arch.values.tolist()) == ["lstm_stroke50", "rnn28"]


def test_model_variables_say_how_each_model_was_trained():
    import dataclasses

    from dni.store.checkpoints import load_checkpoint
    from dni.store.results import with_model_variables

    path = REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt"
    trained = load_checkpoint(path)
    stopped = dataclasses.replace(trained, meta={**trained.meta, "epochs_run": 7, "best_epoch": 2, "train_seconds": 12.5})
    ds = make_results([(stopped, 0.0, np.ones(2), np.zeros(2))], [0.0], 2, dataset="subset", eval_seed=0, test_size=10)
    row = ds.sel(arch="rnn28", sigma_train=0.5)
    assert (row.epochs.item(), row.best_epoch.item(), row.train_seconds.item()) == (7, 2, 12.5)  # run, not the maximum
    assert row.weight_power.item() == pytest.approx(float((trained.model.weights() ** 2).mean()))
    # models outside the grid are ignored; grid cells without a model are NaN
    other = dataclasses.replace(trained, config=dataclasses.replace(trained.config, sigma_train=1.0))
    wider = with_model_variables(ds.reindex(sigma_train=[0.5, 1.0]), [stopped])
    assert np.isnan(wider.epochs.sel(arch="rnn28", sigma_train=1.0).item())
    assert with_model_variables(ds, [stopped, other]).epochs.sizes == {"arch": 1, "sigma_train": 1}
