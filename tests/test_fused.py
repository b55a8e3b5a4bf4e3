"""The fused training path (dni.nn.fused) against the readable reference cell.

Its noise (per gate, fresh per step and per pass, the FC layer's) is checked against N(0, σ²) with
tolerances from the sample size in tests/test_noise_paths.py."""

import pytest
import torch

from dni.data import load_sequences
from dni.nn.fused import last_hidden
from dni.nn.models import build_model
from dni.noise.base import NOISELESS, PrefetchedGaussian, ReplayNoise
from dni.training.train import train


def reference_last_hidden(cell, x, z):
    """Step the readable cell, adding z[t] (B, G) at step t."""
    noise, state = ReplayNoise(z), None
    for t in range(x.shape[1]):
        state = cell(x[:, t], state, noise=noise)
    return state[0] if isinstance(state, tuple) else state


@pytest.mark.parametrize("name", ["lstm28", "rnn28"])
@pytest.mark.parametrize("sigma", [0.0, 0.8])
def test_fused_equals_reference_with_the_same_noise_tensors(name, sigma):
    """Forward and all gradients, in float64, given identical noise tensors."""
    torch.manual_seed(1)
    model = build_model(name).double()
    x = torch.rand(5, 28, 28, dtype=torch.float64)
    z = torch.randn(28, 5, model.cell.weight_ih.shape[0], dtype=torch.float64) * sigma
    fast = last_hidden(model.cell, x, NOISELESS, noise_tensor=z)
    ref = reference_last_hidden(model.cell, x, z)
    assert torch.allclose(fast, ref, atol=1e-12)
    w = torch.randn_like(ref)
    params = list(model.cell.parameters())
    for a, b in zip(torch.autograd.grad((fast * w).sum(), params), torch.autograd.grad((ref * w).sum(), params)):
        assert torch.allclose(a, b, atol=1e-10)


def test_training_forward_takes_the_fused_path_and_matches_nn_lstm_at_sigma_zero():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(28, 128, batch_first=True)
    model = build_model("lstm28")
    from dni.nn.models import load_torch_recurrent
    load_torch_recurrent(model.cell, ref)
    x = torch.rand(7, 28, 28)
    assert model.uses_fused_training()
    logits = model(x)
    out, _ = ref(x)
    expected = torch.nn.functional.linear(out[:, -1], model.fc.weight, model.fc.bias)
    assert torch.allclose(logits, expected, atol=1e-5)
    g_fast = torch.autograd.grad(logits.sum(), model.cell.weight_hh)[0]
    g_ref = torch.autograd.grad(expected.sum(), ref.weight_hh_l0)[0]
    assert torch.allclose(g_fast, g_ref, atol=1e-4)


def test_prefetched_noise_trains_bit_for_bit_like_inline_noise():
    data = load_sequences("subset", "train").take(slice(0, 500))
    a = train(preset="lstm28", sigma_train=0.6, epochs=2, batch_size=64, progress=False, train_data=data, prefetch_noise=True)
    b = train(preset="lstm28", sigma_train=0.6, epochs=2, batch_size=64, progress=False, train_data=data, prefetch_noise=False)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_prefetched_noise_checks_shapes():
    noise = PrefetchedGaussian(0.5, torch.Generator().manual_seed(0), [(2, 3)])
    with pytest.raises(RuntimeError, match=r"prefetched noise of shape \(2, 3\) where \(4, 3\) was asked for"):
        noise.add(torch.zeros(4, 3))
