import math

import pytest
import torch

from dni.errors import InvalidSigmaError
from dni.nn.models import build_model
from dni.noise.base import AdditiveGaussian
from dni.noise.session import as_noise_model
from dni.util.validation import validate_sigma


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
    """With W = 0 and b = 0, W·[h, x] + b + z = z: check z ~ N(0, σ²), fresh per step and pass.

    Tolerances: 5 standard errors of each statistic under N(0, σ²) for this sample size.
    """
    sigma = 0.7
    model = _zero_lstm()
    x = torch.rand(512, 28, 28)
    logits, tr = model.trace(x, noise=sigma, generator=torch.Generator().manual_seed(0))
    _, tr2 = model.trace(x, noise=sigma, generator=torch.Generator().manual_seed(1))
    z = tr.preactivation.double()  # (N, T, 4H)
    n = z.numel()
    assert z.shape == (512, 28, 512)
    assert abs(z.mean().item()) < 5 * sigma / math.sqrt(n)
    assert abs(z.var().item() - sigma**2) < 5 * sigma**2 * math.sqrt(2 / (n - 1))
    p = math.erf(1 / math.sqrt(2))  # P(|z| < σ) of a Gaussian: 0.6827 (a uniform of the same σ: 0.577)
    assert abs((z.abs() < sigma).double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # independent across steps: correlation of step t with step t+1 is ~0 (and not exactly equal)
    a, b = z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5 / math.sqrt(a.numel())
    # independent across forward passes (repeats)
    c = torch.corrcoef(torch.stack([z.reshape(-1), tr2.preactivation.double().reshape(-1)]))[0, 1].item()
    assert abs(c) < 5 / math.sqrt(n)
    # the final fully connected layer is noisy too: logits = z with std σ
    m = logits.numel()
    assert abs(logits.double().var().item() - sigma**2) < 5 * sigma**2 * math.sqrt(2 / (m - 1))


def _recompute_lstm_step(pre, c_prev):
    """The cell update of paper Fig. 1 from the noisy gate pre-activations, in float64, adding nothing."""
    i, f, g, o = pre.double().chunk(4, dim=-1)
    c = torch.sigmoid(f) * c_prev.double() + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def test_lstm_cell_state_gets_no_noise_of_its_own_in_the_fast_path():
    """Every step's c and h equal a noiseless recomputation from that step's noisy gate pre-activations
    (the trace of the unrolled fast path, which evaluation uses): noise added to c, or a second draw on
    the gates after they were recorded, would leave a difference of order σ."""
    torch.manual_seed(0)
    model = build_model("lstm28")
    x = torch.rand(64, 28, 28)
    _, tr = model.trace(x, noise=0.8, generator=torch.Generator().manual_seed(0))
    c_prev = torch.zeros(64, 128)
    for t in range(28):
        h, c = _recompute_lstm_step(tr.preactivation[:, t], c_prev)
        assert torch.allclose(tr.c[:, t].double(), c, atol=1e-5), t
        assert torch.allclose(tr.h[:, t].double(), h, atol=1e-5), t
        c_prev = tr.c[:, t]
    # the pre-activations are W·[h_{t-1}, x_t] + b + z with z ~ N(0, 0.8²): the noise is there, on the gates
    W, b = model.cell.weight_on_concat().detach(), model.cell.bias.detach()
    h_prev = torch.cat([torch.zeros(64, 1, 128), tr.h[:, :-1]], dim=1)
    z = (tr.preactivation - torch.nn.functional.linear(torch.cat([h_prev, x], dim=2), W, b)).double()
    assert abs(z.std().item() - 0.8) < 5 * 0.8 / math.sqrt(2 * (z.numel() - 1))


def test_lstm_cell_state_gets_no_noise_of_its_own_in_the_readable_cell():
    """NoisyLSTMCell with given noise tensors: c' and h' equal the noiseless update from W·[h, x] + b + z."""
    from dni.nn.cells import NoisyLSTMCell
    from dni.noise.base import ReplayNoise

    torch.manual_seed(1)
    cell = NoisyLSTMCell(28, 128)
    h, c = torch.zeros(64, 128), torch.zeros(64, 128)
    for t in range(5):
        x = torch.rand(64, 28)
        z = torch.randn(64, 512) * 0.8
        with torch.no_grad():
            h_new, c_new = cell(x, (h, c), noise=ReplayNoise([z]))
            pre = torch.nn.functional.linear(torch.cat([h, x], dim=1), cell.weight_on_concat(), cell.bias) + z
        h_ref, c_ref = _recompute_lstm_step(pre, c)
        assert torch.allclose(c_new.double(), c_ref, atol=1e-5) and torch.allclose(h_new.double(), h_ref, atol=1e-5), t
        h, c = h_new, c_new


def test_as_noise_model_accepts_numbers_and_models():
    assert as_noise_model(0.5) == AdditiveGaussian(0.5)
    assert as_noise_model(None).is_noiseless
    with pytest.raises(InvalidSigmaError):
        AdditiveGaussian(-1)
