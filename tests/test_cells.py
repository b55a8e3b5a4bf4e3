import pytest
import torch
from torch import nn

from dni.errors import UnknownPresetError
from dni.nn.cells import NoisyGRUCell, NoisyLSTMCell, NoisyRNNCell
from dni.nn.models import build_model, count_parameters, load_torch_recurrent
from dni.nn.presets import PRESETS, get_preset


@pytest.mark.parametrize("name, expected", [("lstm28", 81_674), ("lstm_stroke50", 68_362), ("rnn28", 21_386), ("gru28", 61_706)])
def test_parameter_counts_match_the_paper_tables(name, expected):
    assert count_parameters(build_model(name)) == expected
    if PRESETS[name].paper_parameters:
        assert PRESETS[name].paper_parameters == expected


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UnknownPresetError, match="unknown preset 'lstm99'; choose one of: lstm28, lstm_stroke50, rnn28, gru28"):
        get_preset("lstm99")


TORCH = {"lstm28": nn.LSTM, "rnn28": nn.RNN, "gru28": nn.GRU}


@pytest.mark.parametrize("name", ["lstm28", "rnn28", "gru28"])
def test_sigma_zero_equals_torch_recurrent_layer(name):
    torch.manual_seed(0)
    ref = TORCH[name](28, 128, batch_first=True)
    for p in ref.parameters():  # widen the weights so the gates are not all near their linear range
        nn.init.uniform_(p, -0.3, 0.3)
    model = build_model(name, sigma_train=0.0)
    load_torch_recurrent(model.cell, ref)
    x = torch.rand(16, 28, 28)
    with torch.no_grad():
        expected = ref(x)
        out, state = expected if name != "lstm28" else (expected[0], expected[1])
        _, tr = model.trace(x)
        assert torch.allclose(tr.h, out, atol=1e-5)  # every step's h, fast path
        if name == "lstm28":
            assert torch.allclose(tr.c[:, -1], state[1][0], atol=1e-5)
        # the readable per-step cell agrees too
        st = None
        for t in range(28):
            st = model.cell(x[:, t], st)
            h = st[0] if name == "lstm28" else st
            assert torch.allclose(h, out[:, t], atol=1e-5)
        logits = nn.functional.linear(out[:, -1], model.fc.weight, model.fc.bias)
        assert torch.allclose(model(x), logits, atol=1e-5)


def test_cells_look_like_torch_cells():
    x = torch.rand(3, 5)
    h, c = NoisyLSTMCell(5, 7, noise=0.3)(x, (torch.zeros(3, 7), torch.zeros(3, 7)), generator=torch.Generator().manual_seed(0))
    assert h.shape == c.shape == (3, 7)
    assert NoisyRNNCell(5, 7)(x).shape == (3, 7)
    assert NoisyGRUCell(5, 7)(x, torch.zeros(3, 7)).shape == (3, 7)


@pytest.mark.parametrize("name", ["lstm28", "rnn28", "gru28"])
def test_fast_path_equals_reference_cell_with_the_same_noise(name):
    model = build_model(name)
    x = torch.rand(8, 28, 28)
    with torch.no_grad():
        fast = model(x, noise=0.6, generator=torch.Generator().manual_seed(11))
        ref = model.forward_reference(x, noise=0.6, generator=torch.Generator().manual_seed(11))
        clean = model(x)
    assert torch.allclose(fast, ref, atol=1e-5)
    assert not torch.allclose(fast, clean, atol=1e-2)  # the noise did something


def test_noise_is_fresh_on_every_forward_pass():
    model = build_model("rnn28")
    x = torch.rand(4, 28, 28)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(model(x, noise=0.5, generator=g), model(x, noise=0.5, generator=g))


def test_repeats_are_independent_of_how_many_run_together():
    model = build_model("lstm28")
    x = torch.rand(5, 28, 28)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    with torch.no_grad():
        three = model(x, noise=0.4, generator=gens([1, 2, 3]), repeats=3)  # (15, 10)
        alone = model(x, noise=0.4, generator=gens([2]), repeats=1)
    assert three.shape == (15, 10)
    assert torch.allclose(three[5:10], alone, atol=1e-6)
    assert not torch.allclose(three[:5], three[5:10], atol=1e-3)


def test_model_default_noise_is_sigma_train():
    model = build_model("rnn28", sigma_train=0.5)
    assert model.noise.sigma == 0.5
    x = torch.rand(2, 28, 28)
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(0))
        b = model(x, noise=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
