"""Every notebook runs under papermill with small parameters; its outputs are checked."""

import json

import numpy as np
import papermill as pm
import pytest
import xarray as xr
from conftest import REPO

from dni.store.results import load_results

NB = REPO / "notebooks"


def run(name, tmp_path, **parameters):
    out = tmp_path / f"{name}.out.ipynb"
    pm.execute_notebook(str(NB / f"{name}.ipynb"), str(out), parameters=parameters, cwd=str(tmp_path), progress_bar=False)
    return json.loads(out.read_text())


def outputs(nb, mime):
    return [o["data"][mime] for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if mime in o.get("data", {})]


def test_notebooks_are_committed_without_outputs_and_with_parameters():
    for path in NB.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), path
        assert pm.inspect_notebook(str(path)), path


def test_quickstart(tmp_path):
    nb = run("quickstart", tmp_path, epochs=1, sigma_train=[0.0, 1.0], sigma_val="0,0.5,1", repeats=2, out="q.nc")
    ds = load_results(tmp_path / "q.nc")
    assert dict(ds.sizes) == {"arch": 1, "sigma_train": 2, "sigma_val": 3, "seed": 2}
    assert "σtrain\\σval" in "".join(o for c in nb["cells"] for o in ("".join(x.get("text", "")) for x in c.get("outputs", [])))
    assert outputs(nb, "application/vnd.bokehjs_exec.v0+json")  # the accuracy figure was shown


def test_train_evaluate_is_parameterised(tmp_path):
    nb = run("train_evaluate", tmp_path, preset="rnn28", sigma_train="0.5", sigma_val="0,1", repeats=2, epochs=1, out="r.nc")
    ds = load_results(tmp_path / "r.nc")
    assert ds.arch.values.tolist() == ["rnn28"] and ds.sigma_train.values.tolist() == [0.5]
    assert ds.sigma_val.values.tolist() == [0.0, 1.0] and ds.sizes["seed"] == 2
    assert nb["metadata"]["papermill"]["parameters"]["preset"] == "rnn28"
    assert (tmp_path / "r_checkpoints" / "rnn28_sigma0.50_seed0.pt").exists()
    # progress under papermill is text that stays readable in the executed notebook, not frozen widget bars
    stderr = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert "rnn28 σtrain=0.5: 100%" in stderr and "evaluate: 100%" in stderr
    assert not outputs(nb, "application/vnd.jupyter.widget-view+json")


def test_progress_bars_are_widgets_only_in_a_live_jupyter_session(monkeypatch):
    from tqdm.notebook import tqdm_notebook

    from dni.util.progress import tqdm, uses_widget_bars

    monkeypatch.delenv("DNI_PROGRESS", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "/x.ipynb")
    assert not uses_widget_bars()  # a session name, but no kernel here (pytest): text
    monkeypatch.setenv("DNI_PROGRESS", "widget")
    assert uses_widget_bars() and isinstance(tqdm(range(2), disable=True), tqdm_notebook)
    monkeypatch.setenv("DNI_PROGRESS", "text")
    assert not uses_widget_bars() and not isinstance(tqdm(range(2), disable=True), tqdm_notebook)


@pytest.mark.parametrize("cluster", [[], ["--workers", "2"]], ids=["in_process", "two_workers"])
def test_notebook_sweep_merges_jobs_into_what_one_sweep_gives(tmp_path, capsys, cluster, monkeypatch):
    """Also with the jobs as tasks of a Dask LocalCluster (issue 20), whose workers, and so their
    kernels, run one torch thread: the sweep to compare with runs with one thread too."""
    import torch

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter_data"))  # the notary's signatures: not the user's

    from dni.cli import main
    from dni.experiments.sweep import run_sweep

    out = tmp_path / "merged.nc"
    args = ["--preset", "rnn28", "--sigma-train", "0,0.5", "--sigma-val", "0,1", "--repeats", "2", "--epochs", "1"]
    assert main(["--quiet", "notebook-sweep", *args, "--out", str(out), *cluster]) == 0
    assert ("dashboard http" in capsys.readouterr().err) == bool(cluster)
    merged = load_results(out)
    assert sorted(p.name for p in (tmp_path / "merged_jobs").glob("*.ipynb")) == ["rnn28_sigma0.00.ipynb", "rnn28_sigma0.50.ipynb"]
    from dni.experiments.notebook_run import is_trusted

    assert all(is_trusted(p) for p in (tmp_path / "merged_jobs").glob("*.ipynb"))  # JupyterLab shows their outputs whole
    assert not is_trusted(NB / "train_evaluate.ipynb")  # (the notary does not trust just any notebook)
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if cluster else threads)
    try:
        single = run_sweep(preset="rnn28", sigma_train=[0.0, 0.5], sigma_val=[0.0, 1.0], repeats=2, epochs=1,
                           out=tmp_path / "single.nc", progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    xr.testing.assert_equal(merged.accuracy, single.accuracy)
    assert main(["--quiet", "notebook-sweep", "--preset", "nope", "--out", str(tmp_path / "x.nc")]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_paper_figures_on_the_shipped_demo(tmp_path):
    nb = run("paper_figures", tmp_path, digits=100)
    shown = outputs(nb, "application/vnd.bokehjs_exec.v0+json")
    # per arch: accuracy + error rate row, state grid (LSTMs and RNN), weights; plus the stroke lengths
    demo = load_results(REPO / "widgets" / "demo" / "demo.nc")
    assert len(shown) == 3 * demo.sizes["arch"] + 1
    text = json.dumps(nb, ensure_ascii=False).replace("\\\\u03c3", "σ").replace("\\u03c3", "σ")  # σ escaped inside bokeh's JSON
    assert "lstm28 h: σtrain 1, σval 1" in text  # the DNI model's state figure (Fig. 3, right column)


def test_explore_displays_the_widget(tmp_path):
    nb = run("explore", tmp_path, digits=32)
    views = outputs(nb, "application/vnd.jupyter.widget-view+json")
    assert len(views) == 1 and views[0]["model_id"]
    assert not np.any([o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", [])])


def test_your_model_trains_and_compares_two_user_models(tmp_path):
    nb = run("your_model", tmp_path, train_digits=256, test_digits=128, hidden=8, epochs=1, sigma_val=[0.0, 1.0],
             adding_steps=8, adding_train=256, adding_test=64, adding_hidden=8, adding_epochs=1, adding_sigma_val=[0.0, 0.3],
             repeats=2, out_prefix="y")
    rows, adding = load_results(tmp_path / "y_lstm_rows.nc"), load_results(tmp_path / "y_gru_adding.nc")
    assert dict(rows.sizes) == {"arch": 1, "sigma_train": 2, "sigma_val": 2, "seed": 2} and rows.arch.values.tolist() == ["lstm2_rows"]
    assert rows.sigma_train.values.tolist() == [0.0, 0.5] and rows.attrs["metric"] == "accuracy" and rows.attrs["test_size"] == 128
    assert adding.sigma_train.values.tolist() == [0.0, 0.1] and adding.attrs["metric"] == "mse"
    clean, noisy = adding.accuracy.sel(sigma_val=0.0).values, adding.accuracy.sel(sigma_val=0.3).values  # (arch, σtrain, seed)
    assert (clean == clean[..., :1]).all() and (noisy[..., 0] != noisy[..., 1]).all()  # one clean pass; noisy repeats differ
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "noisified under additive at sigma 0.5: lstm (LSTM), fc (Linear)" in text
    assert "lstm2_rows: test accuracy (%)" in text and "gru_adding: test mse" in text
    assert len(outputs(nb, "application/vnd.bokehjs_exec.v0+json")) == 2
