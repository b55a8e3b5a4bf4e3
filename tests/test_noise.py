import math

import pytest
import torch

from dni.errors import InvalidSigmaError
from dni.models import build_model
from dni.noise import AdditiveGaussian, as_noise_model, validate_sigma


@pytest.mark.parametrize("bad, message", [
    (-0.1, "must be >= 0"), (float("nan"), "finite number"), (float("inf"), "finite number"),
    ("abc", "must be a number"), (None, "must be a number"), (True, "must be a number"),
])
def test_bad_sigma_is_rejected_with_its_reason(bad, message):
    with pytest.raises(InvalidSigmaError, match=message):
        validate_sigma(bad)


def test_sigma_is_rounded_so_grid_points_compare_equal():
    assert validate_sigma(0.1 * 3) == validate_sigma("0.3") == 0.3


def test_sigma_zero_draws_nothing_and_returns_input():
    g = torch.Generator().manual_seed(3)
    before = g.get_state().clone()
    x = torch.randn(4, 8)
    assert AdditiveGaussian(0.0).add(x, g) is x
    assert torch.equal(g.get_state(), before)


def test_per_repeat_generators_fill_their_own_block():
    noise = AdditiveGaussian(1.0)
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    z = noise.add(torch.zeros(6, 3), gens)
    assert torch.equal(z[:3], torch.randn(3, 3, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(z[3:], torch.randn(3, 3, generator=torch.Generator().manual_seed(6)))


def _zero_lstm():
    model = build_model("lstm28")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def test_lstm_gate_preactivations_are_the_noise_when_weights_are_zero():
    """With W = 0 and b = 0, W·[h, x] + b + z = z: check z ~ N(0, σ²), fresh per step and pass."""
    sigma = 0.7
    model = _zero_lstm()
    x = torch.rand(512, 28, 28)
    logits, tr = model.trace(x, noise=sigma, generator=torch.Generator().manual_seed(0))
    _, tr2 = model.trace(x, noise=sigma, generator=torch.Generator().manual_seed(1))
    z = tr.preactivation  # (N, T, 4H)
    n = z.numel()
    assert z.shape == (512, 28, 512)
    assert abs(z.mean().item()) < 5 * sigma / math.sqrt(n)
    assert z.std().item() == pytest.approx(sigma, rel=0.01)
    within_one_sigma = (z.abs() < sigma).double().mean().item()
    assert within_one_sigma == pytest.approx(0.6827, abs=0.005)  # Gaussian, not e.g. uniform
    # independent across steps: correlation of step t with step t+1 is ~0 (and not exactly equal)
    a, b = z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5 / math.sqrt(a.numel())
    # independent across forward passes (repeats)
    c = torch.corrcoef(torch.stack([z.reshape(-1), tr2.preactivation.reshape(-1)]))[0, 1].item()
    assert abs(c) < 5 / math.sqrt(n)
    # the final fully connected layer is noisy too: logits = z with std σ
    assert logits.std().item() == pytest.approx(sigma, rel=0.05)
    # the cell state gets no noise of its own: with zero weights c_t = sum of σ(i)·tanh(g)·Πσ(f) — bounded by t
    assert tr.c.abs().max().item() <= 28


def test_as_noise_model_accepts_numbers_and_models():
    assert as_noise_model(0.5) == AdditiveGaussian(0.5)
    assert as_noise_model(None).is_noiseless
    with pytest.raises(InvalidSigmaError):
        AdditiveGaussian(-1)
