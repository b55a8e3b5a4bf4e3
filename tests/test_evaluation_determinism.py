"""Evaluation across execution choices (issue 25, item 3), and every cell kind through evaluate().

Under per-point draws (how the committed numbers were made) evaluate() computes a noisy point on one
thread fewer than torch has, and draws its noise ahead in a thread when a core is spare
(dni.noise.base.prefetch_pays_off); under the default shared draws (dni.noise.draws) a thread pool of torch's
size draws each (repeat, chunk)'s ε. So the same command runs differently on different machines.
README "Reproducibility" promises the same numbers bit for bit with 1, 2 or 3 torch threads, and with
the noise drawn inline or ahead; these tests hold it to that.
"""

import numpy as np
import pytest
import torch
from conftest import REPO

import dni.evaluation.evaluate
from dni.data import load_sequences
from dni.evaluation.evaluate import DIGITS_PER_PASS, evaluate, repeat_seed
from dni.nn.models import build_model
from dni.noise.base import PrefetchedGaussian
from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.recipe import TrainConfig

CHECKPOINTS = REPO / "results" / "dni_paper_checkpoints"



@pytest.fixture(scope="module")
def digits():
    data = load_sequences("subset", "test")
    return data.take(slice(0, DIGITS_PER_PASS + 88))  # a full pass and a short one


def untrained(preset, sigma_train=0.0, seed=0):
    torch.manual_seed(seed)
    return TrainedModel(build_model(preset, sigma_train), TrainConfig(preset=preset, sigma_train=sigma_train))


def test_evaluation_is_bit_for_bit_the_same_with_1_2_3_threads_and_inline_or_prefetched_noise(digits, threads, monkeypatch):
    models = [load_checkpoint(CHECKPOINTS / "lstm28_sigma0.50_seed0.pt"), load_checkpoint(CHECKPOINTS / "rnn28_sigma0.50_seed0.pt"),
              untrained("gru28", 0.5)]
    made = []

    class Counting(PrefetchedGaussian):
        def __init__(self, *args, **kwargs):
            made.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(dni.evaluation.evaluate, "PrefetchedGaussian", Counting)
    runs = {}
    for n, prefetch in [(1, False), (1, True), (2, False), (2, True), (3, True)]:  # 3: a noisy point computes on 2
        threads(n)
        monkeypatch.setattr(dni.evaluation.evaluate, "prefetch_pays_off", lambda prefetch=prefetch: prefetch)
        made.clear()
        runs[n, prefetch] = evaluate(models, [0.0, 0.7], repeats=2, data=digits, seed=5, progress=False, draws="per-point")
        assert made == ([0.7] * 3 if prefetch else [])  # the noisy points took the path asked for, the clean ones drew nothing
        assert torch.get_num_threads() == n  # evaluation gives back the threads it borrowed
    base = runs[1, False]
    assert not np.isnan(base.accuracy.values).any()
    assert (base.accuracy.sel(sigma_val=0.7).std("seed") > 0).all()  # noisy repeats differ: there is noise to reproduce
    for key, ds in runs.items():
        np.testing.assert_array_equal(ds.accuracy.values, base.accuracy.values, err_msg=str(key))
        np.testing.assert_array_equal(ds.loss.values, base.loss.values, err_msg=str(key))


def test_shared_draws_evaluation_is_bit_for_bit_the_same_with_1_2_3_threads(digits, threads):
    """The default scheme (dni.noise.draws, ε per (repeat, chunk) drawn on a thread pool): the same numbers with
    1, 2 or 3 torch threads, for the three cell kinds; and other numbers than the per-point scheme's."""
    models = [load_checkpoint(CHECKPOINTS / "lstm28_sigma0.50_seed0.pt"), load_checkpoint(CHECKPOINTS / "rnn28_sigma0.50_seed0.pt"),
              untrained("gru28", 0.5)]
    runs = {}
    for n in (1, 2, 3):
        threads(n)
        runs[n] = evaluate(models, [0.0, 0.7], repeats=2, data=digits, seed=5, progress=False, draws="shared")
        assert runs[n].attrs["draws"] == "shared" and torch.get_num_threads() == n
    assert (runs[1].accuracy.sel(sigma_val=0.7).std("seed") > 0).all()
    for n in (2, 3):
        np.testing.assert_array_equal(runs[n].accuracy.values, runs[1].accuracy.values, err_msg=str(n))
        np.testing.assert_array_equal(runs[n].loss.values, runs[1].loss.values, err_msg=str(n))
    per_point = evaluate(models, [0.0, 0.7], repeats=2, data=digits, seed=5, progress=False, draws="per-point")
    np.testing.assert_array_equal(per_point.loss.sel(sigma_val=0.0).values, runs[1].loss.sel(sigma_val=0.0).values)  # no draws
    assert not np.array_equal(per_point.loss.sel(sigma_val=0.7).values, runs[1].loss.sel(sigma_val=0.7).values)


def reference_repeat(model, data, sigma_val, seed):
    """Accuracy and mean loss of one noisy pass over ``data`` with the readable cells, drawing from a
    generator seeded ``seed`` in evaluate()'s passes of DIGITS_PER_PASS digits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        logits = torch.cat([model.forward_reference(data.x[i : i + DIGITS_PER_PASS], noise=sigma_val, generator=g)
                            for i in range(0, len(data), DIGITS_PER_PASS)])
    loss = torch.nn.functional.cross_entropy(logits.double(), data.y, reduction="mean").item()
    return (logits.argmax(1) == data.y).double().mean().item(), loss


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("preset", ["lstm28", "rnn28", "gru28"])
def test_each_repeat_of_evaluate_is_an_independent_reference_pass(preset, prefetch, digits, monkeypatch):
    """Repeat r of evaluate() (R repeats batched, one generator each; the GRU draws twice per step), with its
    noise drawn inline or ahead, equals a pass of the readable cells drawing from a generator seeded
    repeat_seed(seed, arch, σtrain, σval, r); a repeat does not depend on how many run together, and the repeats differ."""
    monkeypatch.setattr(dni.evaluation.evaluate, "prefetch_pays_off", lambda: prefetch)
    m = untrained(preset, 0.2, seed=3)
    three = evaluate([m], [0.6], repeats=3, data=digits, seed=9, progress=False, draws="per-point")
    one = evaluate([m], [0.6], repeats=1, data=digits, seed=9, progress=False, draws="per-point")
    for r in range(3):
        acc, loss = reference_repeat(m.model, digits, 0.6, repeat_seed(9, preset, 0.2, 0.6, r))
        assert three.accuracy.sel(seed=r).item() == acc, r
        assert three.loss.sel(seed=r).item() == pytest.approx(loss, rel=1e-5), r
    assert one.accuracy.sel(seed=0).item() == three.accuracy.sel(seed=0).item()
    assert one.loss.sel(seed=0).item() == three.loss.sel(seed=0).item()
    assert len(set(three.loss.values.ravel().tolist())) == 3
