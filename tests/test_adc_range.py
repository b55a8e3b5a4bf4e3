"""Issue 34: the ADC sweep with each model's own converter range (dni.evaluation.adc_range)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import REPO

from dni.data import load_sequences
from dni.errors import InvalidArgumentError
from dni.evaluation.adc_range import adc_resolution, adc_spec, fewest_bits
from dni.store.checkpoints import load_checkpoint

CHECKPOINTS = REPO / "results" / "dni_paper_checkpoints"


@pytest.fixture(scope="module")
def sweep():
    models = [load_checkpoint(CHECKPOINTS / f"lstm28_sigma{st:.2f}_seed0.pt") for st in (0.0, 1.0)]
    test = load_sequences("subset", "test").take(slice(0, 300))
    calibration = load_sequences("subset", "train").take(slice(0, 200))
    return models, test, calibration, adc_resolution(models, test, calibration, bits=(3, 4, 8), progress=False)


def test_the_own_range_is_the_models_clean_preactivation_quantile_on_the_calibration_digits(sweep):
    models, _, calibration, ds = sweep
    for i, m in enumerate(models):
        # every |W·x + b| of a clean pass, recomputed by hand from the weights: the cell's gate products per step, then the FC layer
        cell, fc = m.model.cell, m.model.fc
        x = calibration.x  # (N, T, I)
        h = torch.zeros(len(x), cell.weight_hh.shape[1])
        c = torch.zeros_like(h)
        values = []
        with torch.no_grad():
            for t in range(x.shape[1]):
                gates = x[:, t] @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias  # (N, 4H)
                values.append(gates.abs().reshape(-1))
                i_, f_, g_, o_ = gates.chunk(4, 1)
                c = torch.sigmoid(f_) * c + torch.sigmoid(i_) * torch.tanh(g_)
                h = torch.sigmoid(o_) * torch.tanh(c)
            values.append((h @ fc.weight.T + fc.bias).abs().reshape(-1))
        expected = np.quantile(torch.cat(values).double().numpy(), 0.999)
        assert float(ds.bound.isel(model=i).sel(range="own")) == float(f"{expected:.4g}")  # recorded as applied: 4 digits
        assert float(ds.bound.isel(model=i).sel(range="fixed")) == 16.0
    assert ds.model.values.tolist() == ["additive 0 seed 0", "additive 1 seed 0"]
    assert ds.train_seed.values.tolist() == [0, 0] and ds.sigma_train.values.tolist() == [0.0, 1.0]


def test_each_accuracy_is_one_pass_of_the_model_under_that_adc(sweep):
    from dni.evaluation.evaluate import evaluate

    models, test, _, ds = sweep
    m = models[1]
    own = float(ds.bound.isel(model=1).sel(range="own"))
    for rng, bound in (("fixed", 16.0), ("own", own)):
        expected = evaluate(m, (0.0,), 1, data=test, progress=False, eval_noise=adc_spec(3, bound)).accuracy.item()
        assert float(ds.accuracy.isel(model=1).sel(range=rng, bits=3)) == expected
    clean = evaluate(m, (0.0,), 1, data=test, progress=False).accuracy.item()
    assert float(ds.noiseless.isel(model=1)) == clean
    assert float(ds.accuracy.isel(model=1).sel(range="own", bits=8)) == pytest.approx(clean, abs=0.01)  # 8 bits: near lossless
    assert adc_spec(4, 7.794312) == "adc(bits=4,bound=7.794)"


def test_fewest_bits_on_a_constructed_sweep():
    acc = np.array([[[0.50, 0.97, 0.985, 0.99], [0.90, 0.985, 0.99, 0.99]],
                    [[0.10, 0.20, 0.30, 0.40], [0.50, 0.60, 0.70, 0.80]]])  # (model, range, bits)
    ds = xr.Dataset({"accuracy": (("model", "range", "bits"), acc), "noiseless": (("model",), [0.99, 0.99])},
                    coords={"model": ["a", "b"], "range": ["fixed", "own"], "bits": [4, 5, 6, 7]})
    need = fewest_bits(ds, within=0.01)
    assert need.sel(model="a").values.tolist() == [6, 5]
    assert np.isnan(need.sel(model="b").values).all()  # never within a point: NaN, shown as "> max"


def test_bad_input_is_refused_in_one_line(sweep):
    models, test, calibration, _ = sweep
    with pytest.raises(InvalidArgumentError, match="no models to evaluate"):
        adc_resolution([], test, calibration)
    with pytest.raises(InvalidArgumentError, match="bits must be positive integers"):
        adc_resolution(models[:1], test, calibration, bits=(0, 4))
    with pytest.raises(InvalidArgumentError, match="share \\(train noise, σtrain, training seed\\)"):
        adc_resolution([models[0], models[0]], test, calibration, bits=(4,))


def test_the_table_quotes_the_sweep_per_setting_with_intervals_across_seeds():
    from scipy import stats

    from dni.paper.seeds import adc_range_table

    labels = ["additive 0 seed 0", "additive 0 seed 1", "additive 0 seed 2", "additive 1 seed 0"]
    acc = np.full((4, 2, 2), 0.99)
    acc[:3, 0, 0] = [0.72, 0.75, 0.70]  # conventional at 4 bits over ±16
    acc[:3, 1, 0] = [0.97, 0.975, 0.968]  # … over its own range
    ds = xr.Dataset({"accuracy": (("model", "range", "bits"), acc), "noiseless": (("model",), [0.991] * 4),
                     "bound": (("model", "range"), [[16, 7.8], [16, 7.5], [16, 8.1], [16, 20.2]])},
                    coords={"model": labels, "range": ["fixed", "own"], "bits": [4, 5],
                            "sigma_train": ("model", [0.0, 0.0, 0.0, 1.0]), "train_seed": ("model", [0, 1, 2, 0]),
                            "train_noise": ("model", ["additive"] * 4)},
                    attrs={"fixed_bound": 16.0})
    table = adc_range_table(ds)
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.strip().strip("|").split("|")] for r in table.splitlines()[2:]}
    conv = rows["conventional (σtrain 0)"]
    assert conv[1] == "3 (seeds 0, 1, 2)" and conv[2] == "7.8, 7.5, 8.1"
    assert conv[3] == "5, 5, 5" and conv[4] == "5, 5, 5"  # within a point only from 5 bits
    low, high = stats.t.interval(0.95, 2, loc=np.mean([0.72, 0.75, 0.70]), scale=stats.sem([0.72, 0.75, 0.70]))
    assert conv[5] == f"{np.mean([0.72, 0.75, 0.70]) * 100:.2f} % [{low * 100:.2f}, {high * 100:.2f}]"
    one = rows["additive 1"]
    assert one[1] == "1 (seeds 0)" and one[6] == "99.00 % (1 model: no interval)" and one[3] == "4"
    assert conv[8] == "–" and one[8] == f"{(0.99 - 0.97) * 100:+.2f} pp (1 model: no interval)"  # vs seed 0's conventional model
    paired = conv[7]  # own − fixed, the same model
    d = np.array([0.97 - 0.72, 0.975 - 0.75, 0.968 - 0.70])
    low, high = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert paired == f"{d.mean() * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}]"
