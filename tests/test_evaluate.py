import numpy as np
import pytest
import torch

from dni.data import load_sequences
from dni.errors import InvalidArgumentError, InvalidSigmaError
from dni.evaluation.evaluate import evaluate, noisy_accuracy, repeat_seed
from dni.nn.models import build_model
from dni.store.checkpoints import TrainedModel
from dni.store.recipe import TrainConfig


def untrained(preset="rnn28", sigma_train=0.0, seed=0):
    torch.manual_seed(seed)
    return TrainedModel(build_model(preset, sigma_train), TrainConfig(preset=preset, sigma_train=sigma_train))


@pytest.fixture(scope="module")
def test_digits():
    return load_sequences("subset", "test").take(slice(0, 300))


def test_schema_and_sigma_zero_evaluated_once(test_digits):
    ds = evaluate([untrained("rnn28", 0.0), untrained("rnn28", 0.5)], [0.0, 0.3], repeats=3, data=test_digits, progress=False)
    assert ds.accuracy.dims == ("arch", "sigma_train", "sigma_val", "seed")
    assert ds.sigma_train.values.tolist() == [0.0, 0.5] and ds.sigma_val.values.tolist() == [0.0, 0.3]
    assert ds.sigma_val.dtype == np.float64 and ds.seed.values.tolist() == [0, 1, 2]
    clean = ds.accuracy.sel(sigma_val=0.0).values
    assert np.all(clean == clean[..., :1])  # σval = 0: one noiseless pass fills every repeat
    noisy = ds.accuracy.sel(sigma_val=0.3, sigma_train=0.0).values.ravel()
    assert len(set(noisy.tolist())) > 1  # repeats differ
    assert not np.isnan(ds.accuracy.values).any()


def test_same_seed_same_result_other_seed_other_draws(test_digits):
    models = [untrained("lstm28")]
    a = evaluate(models, [0.5, 1.0], repeats=2, data=test_digits, seed=1, progress=False)
    b = evaluate(models, [0.5, 1.0], repeats=2, data=test_digits, seed=1, progress=False)
    c = evaluate(models, [0.5, 1.0], repeats=2, data=test_digits, seed=2, progress=False)
    assert np.array_equal(a.accuracy.values, b.accuracy.values)
    assert not np.array_equal(a.loss.values, c.loss.values)


def test_a_repeat_does_not_depend_on_the_number_of_repeats():
    from dni.evaluation.evaluate import DIGITS_PER_PASS

    digits = load_sequences("subset", "test")  # 2000 digits: several passes, however they are cut
    assert len(digits) > 2 * DIGITS_PER_PASS
    model = [untrained("rnn28")]
    two = evaluate(model, [0.7], repeats=2, data=digits, progress=False)
    five = evaluate(model, [0.7], repeats=5, data=digits, progress=False)
    assert np.array_equal(two.loss.values, five.loss.sel(seed=[0, 1]).values)


def test_one_repeat_matches_an_independent_reference_pass(test_digits):
    """Repeat r's accuracy equals passes of the readable cell with generator seeded repeat_seed(...)."""
    from dni.evaluation.evaluate import DIGITS_PER_PASS

    m = untrained("lstm28", 0.0, seed=5)
    ds = evaluate([m], [0.4], repeats=2, data=test_digits, seed=9, progress=False, draws="per-point")
    g = torch.Generator().manual_seed(repeat_seed(9, "lstm28", 0.0, 0.4, 1))
    with torch.no_grad():  # the same digits per pass, drawing from repeat 1's generator in order
        logits = torch.cat([m.model.forward_reference(test_digits.x[i : i + DIGITS_PER_PASS], noise=0.4, generator=g)
                            for i in range(0, len(test_digits), DIGITS_PER_PASS)])
    expected = (logits.argmax(1) == test_digits.y).double().mean().item()
    assert ds.accuracy.sel(seed=1).item() == pytest.approx(expected)


def test_accuracy_and_loss_of_batched_repeats(test_digits):
    m = untrained("rnn28")
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    acc, loss = noisy_accuracy(m.model, test_digits, 0.2, gens, 3)
    assert acc.shape == loss.shape == (3,) and np.all((acc >= 0) & (acc <= 1)) and np.all(loss > 0)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sigma_val": []}, InvalidArgumentError, "sigma_val list is empty"),
    ({"sigma_val": [0.1, -0.2]}, InvalidSigmaError, ">= 0"),
    ({"sigma_val": ["x"]}, InvalidSigmaError, "must be a number"),
    ({"repeats": 0}, InvalidArgumentError, "repeats must be an integer >= 1"),
])
def test_bad_evaluation_arguments(kwargs, error, message, test_digits):
    args = {"sigma_val": [0.0], "repeats": 1, **kwargs}
    with pytest.raises(error, match=message):
        evaluate([untrained()], data=test_digits, progress=False, **args)
