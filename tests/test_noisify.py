"""dni.noisify: torch layers with noise after every product (issue 23)."""

import importlib
import itertools

import pytest
import torch
from torch import nn

import dni
from dni.errors import NoisifyError, NotNoisifiedError
from dni.nn.noisify import noisified_layers
from dni.noise.base import AdditiveGaussian, NoiseModel, ReplayNoise

RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}


class ZeroNoise(NoiseModel):
    """Adds exact zeros but is not noiseless: forces dni's own path (fast additive path, or with
    ``commutes=False`` the readable cells' products) so that it can be compared with torch's layer."""

    is_noiseless = False

    def __init__(self, commutes=True):
        self.commutes_with_recurrence = commutes

    def add(self, preactivation, generator=None):
        return preactivation + 0.0


def grads(module, x, out, *states):
    loss = sum((o * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum() for o in out)  # weights all outputs differently
    inputs = [x, *module.parameters(), *states]
    return [g if g is not None else torch.zeros_like(i) for g, i in zip(torch.autograd.grad(loss, inputs, allow_unused=True), inputs)]


def flat(out):
    return [out] if isinstance(out, torch.Tensor) else [t for o in out for t in ([o] if isinstance(o, torch.Tensor) else o)]


@pytest.mark.parametrize("kind,layers,bidirectional,batch_first,bias",
                         list(itertools.product(RECURRENT, [1, 2], [False, True], [False, True], [True, False])))
def test_recurrent_layer_at_zero_noise_equals_torch(kind, layers, bidirectional, batch_first, bias):
    torch.manual_seed(0)
    original = RECURRENT[kind](5, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    noisy = dni.noisify(original, sigma=0.0)
    x = torch.randn(3, 4, 5, requires_grad=True)  # (B, T, I) or (T, B, I)
    D = 2 if bidirectional else 1
    h0 = torch.randn(layers * D, 4 if not batch_first else 3, 6, requires_grad=True)
    c0 = torch.randn_like(h0).requires_grad_()
    hx = (h0, c0) if kind == "lstm" else h0
    want = flat(original(x, hx))
    want_grads = grads(original, x, want, h0, c0)
    assert [torch.equal(a, b) for a, b in zip(flat(noisy(x, hx)), want)] == [True] * len(want)  # σ = 0: torch's own forward
    for commutes in (True, False):  # dni's fast additive path and the readable cells' products
        with dni.eval_noise(ZeroNoise(commutes)):  # grad on: an LSTM/RNN takes fused BPTT (dni.nn.fused.layer_outputs)
            got = flat(noisy(x, hx))
            got_grads = grads(noisy, x, got, h0, c0)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        for a, b in zip(got_grads, want_grads):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", list(RECURRENT))
def test_default_state_unbatched_input_and_dropout_in_eval(kind):
    torch.manual_seed(1)
    original = RECURRENT[kind](3, 4, num_layers=2, dropout=0.5)
    noisy = dni.noisify(original).eval()
    original.eval()
    for x in (torch.randn(5, 2, 3), torch.randn(5, 3)):  # batched (T, B, I) and unbatched (T, I)
        with dni.eval_noise(ZeroNoise()):
            got = flat(noisy(x))
        for a, b in zip(got, flat(original(x))):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind,bias", list(itertools.product(CELLS, [True, False])))
def test_cells_at_zero_noise_equal_torch(kind, bias):
    torch.manual_seed(2)
    original = CELLS[kind](5, 6, bias=bias)
    noisy = dni.noisify(original)
    x = torch.randn(3, 5, requires_grad=True)
    h = torch.randn(3, 6)
    hx = (h, torch.randn(3, 6)) if kind == "lstm" else h
    want = flat(original(x, hx))
    want_grads = grads(original, x, want)
    for commutes in (True, False):
        with dni.eval_noise(ZeroNoise(commutes)):
            got = flat(noisy(x, hx))
            got_grads = grads(noisy, x, got)
        for a, b in zip([*got, *got_grads], [*want, *want_grads]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with dni.eval_noise(ZeroNoise()):  # no state given, unbatched
        for a, b in zip(flat(noisy(x[0])), flat(original(x[0]))):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_at_zero_noise_equals_torch(bias):
    torch.manual_seed(3)
    original = nn.Linear(5, 3, bias=bias)
    noisy = dni.noisify(original)
    x = torch.randn(2, 4, 5, requires_grad=True)  # any leading dims
    want = original(x)
    want_grads = grads(original, x, [want])
    with dni.eval_noise(ZeroNoise()):
        got = noisy(x)
        got_grads = grads(noisy, x, [got])
    for a, b in zip([got, *got_grads], [want, *want_grads]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


class UserModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 1)
        self.lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(16, 3))

    def forward(self, tokens):
        e = self.conv(self.embed(tokens).transpose(1, 2)).transpose(1, 2)  # (B, T, 4)
        out, _ = self.lstm(e)
        return self.head(out[:, -1])


def test_state_dict_is_torch_s_and_the_report_lists_every_layer():
    torch.manual_seed(4)
    model = UserModel()
    noisy = dni.noisify(model, "weight_read", 0.1)
    assert noisy is not model and isinstance(noisy.lstm, nn.LSTM) and type(model.lstm) is nn.LSTM  # a copy; the original untouched
    assert list(noisy.state_dict()) == list(model.state_dict())  # both torch biases kept, same names
    fresh = UserModel()
    fresh.load_state_dict(noisy.state_dict())  # loads into the original class
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    report = noisy.dni_report
    assert report.noisified == [("conv", "Conv1d"), ("lstm", "LSTM"), ("head.1", "Linear")]
    assert [(p, c) for p, c, _ in report.left_alone] == [("embed", "Embedding"), ("head.0", "Dropout")]
    assert "a table lookup" in dict((p, n) for p, _, n in report.left_alone)["embed"]
    assert "weight_read at sigma 0.1" in str(report)
    same = dni.noisify(model, inplace=True)
    assert same is model and model.lstm.weight_ih_l0 is same.lstm.weight_ih_l0 and type(model.lstm) is not nn.LSTM
    tokens = torch.randint(0, 10, (2, 5))
    model.eval()
    assert torch.equal(noisy.eval()(tokens), model(tokens))  # eval() without eval_noise: the original model


def test_train_mode_injects_the_train_noise_and_eval_mode_is_the_original():
    torch.manual_seed(5)
    original = nn.GRU(3, 4, batch_first=True)
    noisy = dni.noisify(original, sigma=0.5)
    x = torch.randn(2, 6, 3)
    assert not torch.allclose(noisy.train()(x)[0], original(x)[0], atol=1e-2)
    assert torch.equal(noisy.eval()(x)[0], original(x)[0])
    assert torch.equal(dni.noisify(original, sigma=0.0).train()(x)[0], original(x)[0])
    with dni.eval_noise("additive", 0.0):
        assert torch.equal(noisy(x)[0], original(x)[0])
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    with dni.eval_noise("additive", 0.5, gen()):
        a = noisy(x)[0]
    with dni.eval_noise("additive", 0.5, gen()):
        assert torch.equal(noisy(x)[0], a)  # the generator decides the draws


def lstm_reference(module, x, z):
    """2-layer bidirectional nn.LSTM by hand, batch_first, z[(layer, direction)] (T, B, 4H) added to each step's gates."""
    H, inp = module.hidden_size, x
    for layer in range(module.num_layers):
        outs = []
        for d in range(2):
            s = f"_l{layer}" + ("_reverse" if d else "")
            W_ih, W_hh = getattr(module, "weight_ih" + s), getattr(module, "weight_hh" + s)
            b = getattr(module, "bias_ih" + s) + getattr(module, "bias_hh" + s)
            h = c = x.new_zeros(x.shape[0], H)
            out = [None] * x.shape[1]
            for t in (range(x.shape[1] - 1, -1, -1) if d else range(x.shape[1])):
                pre = inp[:, t] @ W_ih.T + h @ W_hh.T + b + z[(layer, d)][t]
                i, f, g, o = pre.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                out[t] = h
            outs.append(torch.stack(out, 1))
        inp = torch.cat(outs, 2)
    return inp


def test_every_product_of_a_two_layer_bidirectional_lstm_gets_its_own_draw_in_its_place():
    torch.manual_seed(6)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    noisy = dni.noisify(lstm)
    x = torch.randn(2, 5, 3)
    T = x.shape[1]
    z = {(layer, d): torch.randn(T, 2, 16) for layer in range(2) for d in range(2)}
    # consumption order: layer 0 forward t = 0…T-1, layer 0 backward t = T-1…0, then layer 1 likewise
    order = [z[(layer, d)][t] for layer in range(2) for d in range(2) for t in (range(T - 1, -1, -1) if d else range(T))]
    with torch.no_grad(), dni.eval_noise(ReplayNoise(order)):
        got = noisy(x)[0]
    torch.testing.assert_close(got, lstm_reference(lstm, x, z), atol=1e-5, rtol=0)

    class Recording(AdditiveGaussian):
        def add(self, preactivation, generator=None):
            out = super().add(preactivation, generator)
            draws.append(out - preactivation)
            return out

    draws, sigma = [], 0.7
    x = torch.randn(500, T, 3)
    with torch.no_grad(), dni.eval_noise(Recording(sigma), generator=torch.Generator().manual_seed(0)):
        noisy(x)
    assert len(draws) == 2 * 2 * T and all(d.shape == (500, 16) for d in draws)  # one draw per product and step
    z = torch.stack(draws)  # (20, 500, 16)
    assert abs(z.mean().item()) < 0.02 and abs(z.var().item() / sigma**2 - 1) < 0.03
    corr = torch.corrcoef(z.reshape(len(draws), -1))  # draws of different products are independent
    assert (corr - torch.eye(len(draws))).abs().max() < 0.05


def test_programming_noise_one_chip_per_layer_fixed_within_the_context():
    torch.manual_seed(8)

    class Twins(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)
            self.b.load_state_dict(self.a.state_dict())

        def forward(self, x):
            return self.a(x), self.b(x)

    model = dni.noisify(Twins())
    x = torch.randn(4, 6)
    with torch.no_grad(), dni.eval_noise("programming", 0.2, torch.Generator().manual_seed(1)):
        a1, b1 = model(x)
        a2, b2 = model(x)
    with torch.no_grad(), dni.eval_noise("programming", 0.2, torch.Generator().manual_seed(2)):
        a3, _ = model(x)
    assert torch.equal(a1, a2) and torch.equal(b1, b2)  # one chip for the whole evaluation
    assert not torch.allclose(a1, b1, atol=1e-3)  # same weights, two layers: two chips
    assert not torch.allclose(a1, a3, atol=1e-3)  # another chip in another session


def test_weight_read_noise_on_a_linear_scales_with_max_w_and_norm_x():
    torch.manual_seed(9)
    layer = nn.Linear(8, 3)
    noisy = dni.noisify(layer)
    x = torch.randn(1, 8).expand(20000, 8) * torch.tensor([1.0, 3.0]).repeat_interleave(10000)[:, None]
    with torch.no_grad(), dni.eval_noise("weight_read", 0.1, torch.Generator().manual_seed(3)):
        dev = noisy(x) - layer(x)  # (20000, 3)
    expect = 0.1 * layer.weight.abs().max() * x.norm(dim=1, keepdim=True)
    ratio = (dev / expect).std(0)  # unit variance for both input scales
    assert torch.all((ratio - 1).abs() < 0.03)


def test_bad_input_says_what_to_fix_in_one_line():
    with pytest.raises(NoisifyError, match=r"nothing to noisify in Sequential.*found: Conv2d, Conv3d, ReLU, Sequential") as err:
        dni.noisify(nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3, groups=2)))
    assert "\n" not in str(err.value)
    from dni.nn.models import build_model

    with pytest.raises(NoisifyError, match="SequenceClassifier is a dni model already"):
        dni.noisify(build_model("rnn28"))
    with pytest.raises(NoisifyError, match="proj_size=2 is not supported"):
        dni.noisify(nn.Sequential(nn.LSTM(3, 4, proj_size=2)))
    with pytest.raises(NoisifyError, match="nonlinearity='relu'"):
        dni.noisify(nn.RNN(3, 4, nonlinearity="relu"))
    noisy = dni.noisify(nn.LSTM(3, 4))
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
    with pytest.raises(NoisifyError, match="packed sequences are not supported"), dni.eval_noise("additive", 0.1):
        noisy(packed)
    with pytest.raises(NotNoisifiedError, match="was not noisified"), dni.eval_noise("additive", 0.1):
        nn.LSTM(3, 4)(torch.randn(5, 2, 3))
    with dni.eval_noise("additive", 0.0):  # noiseless: nothing to reach
        nn.LSTM(3, 4)(torch.randn(5, 2, 3))
    assert [p for p, _ in noisified_layers(noisy)] == [""]


def test_noisifying_a_noisified_model_keeps_its_settings_unless_given():
    trained = dni.noisify(nn.GRU(2, 3), "weight_read", 0.2)
    again = dni.noisify(trained)
    assert (again.dni_train_noise, again.dni_sigma_train) == ("weight_read", 0.2) and again is not trained
    other = dni.noisify(trained, sigma=0.0)
    assert (other.dni_train_noise, other.dni_sigma_train) == ("weight_read", 0.0)
    assert other.dni_noise.is_noiseless and trained.dni_noise.kinds[0].sigma == 0.2


@pytest.mark.parametrize("kind", list(RECURRENT))
def test_a_fine_adc_through_the_general_path_is_the_original_within_its_step(kind):
    """A noise session (dni.noise.kinds) on every named product of a 2-layer bidirectional layer: a 20-bit ADC
    over ±8 moves each product by at most half a step (7.6e-6), so the outputs stay close to torch's."""
    torch.manual_seed(10)
    original = RECURRENT[kind](4, 5, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 6, 4)
    with torch.no_grad(), dni.eval_noise("adc(bits=20,bound=8)") as session:
        got = dni.noisify(original)(x)[0]
    assert not session.is_noiseless
    torch.testing.assert_close(got, original(x)[0], atol=1e-4, rtol=0)
    assert not torch.equal(got, original(x)[0])  # the quantiser did act


def test_training_under_another_kind_draws_per_call_and_back_propagates():
    torch.manual_seed(11)
    model = dni.noisify(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)), "programming", 0.3).train()
    x = torch.randn(8, 4)
    a, b = model(x), model(x)
    assert not torch.allclose(a, b, atol=1e-4)  # training: a new chip for every call (batch)
    a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_fused_layer_functions_match_autograd_in_float64():
    from dni.nn.fused import NoisyLSTM, NoisyRNN

    torch.manual_seed(12)
    T, B, H = 4, 3, 2
    P = torch.randn(T, B, 4 * H, dtype=torch.float64, requires_grad=True)
    W = torch.randn(4 * H, H, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(B, H, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda *a: NoisyLSTM.apply(*a, True), (P, W, h0, c0))
    P = torch.randn(T, B, H, dtype=torch.float64, requires_grad=True)
    W = torch.randn(H, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: NoisyRNN.apply(*a, True), (P, W, h0))


def test_training_a_noisified_lstm_takes_the_fused_path_with_one_draw_per_sequence():
    torch.manual_seed(13)
    noisy = dni.noisify(nn.LSTM(3, 4, bidirectional=True), sigma=0.5).train()
    shapes = []

    class Shapes(AdditiveGaussian):
        def add(self, preactivation, generator=None):
            shapes.append(tuple(preactivation.shape))
            return super().add(preactivation, generator)

    x = torch.randn(6, 2, 3)  # (T, B, I)
    with dni.eval_noise(Shapes(0.5)):
        noisy(x)[0].sum().backward()
    assert shapes == [(6, 2, 16), (6, 2, 16)]  # per direction one (T, B, 4H) draw
    with torch.no_grad(), dni.eval_noise(Shapes(0.5)):
        shapes.clear()
        noisy(x)
    assert shapes == [(2, 16)] * 12  # inference: per step, as dni.nn.recurrence.unroll


@pytest.mark.parametrize("kind,per_step", [("lstm", [(2, 16)]), ("gru", [(2, 12), (2, 4)]), ("rnn", [(2, 4)])])
def test_inference_draws_one_block_per_product_per_step_layer_and_direction(kind, per_step):
    """Under the paper's additive noise every product of every step, layer and direction draws its own z
    (the GRU has two products per step, eq. of dni.nn.cells.NoisyGRUCell), in the shapes of the products."""
    shapes = []

    class Shapes(AdditiveGaussian):
        def add(self, preactivation, generator=None):
            shapes.append(tuple(preactivation.shape))
            return super().add(preactivation, generator)

    noisy = dni.noisify(RECURRENT[kind](3, 4, num_layers=2, bidirectional=True))
    with torch.no_grad(), dni.eval_noise(Shapes(0.3)):
        noisy(torch.randn(5, 2, 3))  # T = 5, B = 2
    assert shapes == per_step * (5 * 2 * 2)


def test_dropout_between_layers_acts_in_training_only():
    torch.manual_seed(14)
    noisy = dni.noisify(nn.LSTM(3, 8, num_layers=2, dropout=0.9))
    x = torch.randn(5, 2, 3)
    with dni.eval_noise(ZeroNoise()):
        train_out = noisy.train()(x)[0]
        eval_out = noisy.eval()(x)[0]
        torch.testing.assert_close(eval_out, noisy(x)[0])
    assert not torch.allclose(train_out, eval_out, atol=1e-3)


CONVS = [(nn.Conv1d, dict(kernel_size=3)), (nn.Conv1d, dict(kernel_size=3, stride=2, dilation=2, padding=2, bias=False)),
         (nn.Conv1d, dict(kernel_size=4, padding="same")),
         (nn.Conv2d, dict(kernel_size=3)), (nn.Conv2d, dict(kernel_size=(3, 2), stride=2, dilation=(1, 2), padding=(1, 0))),
         (nn.Conv2d, dict(kernel_size=3, padding="same", bias=False))]


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own note on asymmetric padding
@pytest.mark.parametrize("cls,options", CONVS)
def test_convolutions_at_zero_noise_equal_torch(cls, options):
    torch.manual_seed(15)
    original = cls(3, 4, **options)
    noisy = dni.noisify(original)
    x = torch.randn(2, 3, *([9] if cls is nn.Conv1d else [7, 8]), requires_grad=True)
    want = original(x)
    want_grads = grads(original, x, [want])
    for commutes in (True, False):  # z after torch's convolution; every output pixel's product (unfolded patches)
        with dni.eval_noise(ZeroNoise(commutes)):
            got = noisy(x)
            got_grads = grads(noisy, x, [got])
        for a, b in zip([got, *got_grads], [want, *want_grads]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with dni.eval_noise(ZeroNoise(False)):  # unbatched
        torch.testing.assert_close(noisy(x[0]), original(x[0]), atol=1e-5, rtol=0)


def test_convolution_noise_per_output_pixel():
    torch.manual_seed(16)
    conv = nn.Conv2d(2, 3, 3)
    noisy = dni.noisify(conv)
    x = torch.full((400, 2, 6, 6), 0.5)  # every patch: 2·3·3 inputs of 0.5, ‖patch‖₂ = 0.5·√18
    with torch.no_grad(), dni.eval_noise("additive", 0.2, torch.Generator().manual_seed(0)):
        dev = noisy(x) - conv(x)  # (400, 3, 4, 4)
    assert abs(dev.std().item() / 0.2 - 1) < 0.02 and abs(dev.mean().item()) < 0.005
    with torch.no_grad(), dni.eval_noise("weight_read", 0.1, torch.Generator().manual_seed(1)):
        dev = noisy(x) - conv(x)
    assert abs(dev.std().item() / (0.1 * conv.weight.abs().max().item() * 0.5 * 18**0.5) - 1) < 0.02
    with torch.no_grad(), dni.eval_noise("programming", 0.1, torch.Generator().manual_seed(2)):
        dev = noisy(x) - conv(x)
    chip = dev[0]  # one chip: the same for every digit and, with a constant input, for every pixel
    assert torch.allclose(dev, chip.expand_as(dev), atol=1e-6) and chip.abs().max() > 1e-3
    grouped = dni.noisify(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Linear(4, 4)))
    assert grouped.dni_report.left_alone[0][:2] == ("0", "Conv2d") and "groups=2" in grouped.dni_report.left_alone[0][2]


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("spec", ["programming+weight_read", "dac(bits=5,bound=1)+output_relative", "pcm(t=600)+adc(bits=6,bound=3)"])
def test_inference_under_other_kinds_splits_products_like_the_readable_cell(kind, spec, monkeypatch):
    """In inference a noisified LSTM/RNN takes dni's split path (dni.nn.recurrence.split_steps); with gradients on,
    the readable cell. Two layers, both directions, 3 repeats as row blocks (one chip each): the same numbers."""
    torch.manual_seed(8)
    layer = RECURRENT[kind](3, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    noisy = dni.noisify(layer)
    x = torch.randn(3 * 4, 6, 3, dtype=torch.float64)  # 3 repeat blocks of 4 rows
    noisify_module = importlib.import_module("dni.nn.noisify")
    calls, split_steps = [], noisify_module.split_steps
    monkeypatch.setattr(noisify_module, "split_steps", lambda *a, **k: calls.append(1) or split_steps(*a, **k))

    def run():
        gens = [torch.Generator().manual_seed(r) for r in range(3)]
        with dni.eval_noise(spec, 0.2, gens):
            return noisy(x)[0]
    with torch.no_grad():
        split = run()
    assert len(calls) == 4  # 2 layers × 2 directions on the split path
    with torch.enable_grad():
        readable = run().detach()
    assert len(calls) == 4
    assert (readable - layer(x)[0]).abs().max() > 1e-3  # the noise is there
    torch.testing.assert_close(split, readable, rtol=0, atol=1e-12)


# --- issue 36 --------------------------------------------------------------------------------------

def test_the_original_of_a_copy_fails_with_a_line_that_names_the_returned_model():
    """Issue 36.10: noisify returns a copy (README, docstring); the original inside eval_noise says what to do."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 4))
    noisy = dni.noisify(model, sigma=0.5)
    assert noisy is not model and type(model[0]) is nn.Linear and noisy[0] is not model[0]  # a copy; the original untouched
    with pytest.raises(NotNoisifiedError, match=r"run the model it returns \(the original stays an ordinary torch model unless inplace=True\)"):
        with dni.eval_noise("additive", sigma=0.5):
            model(torch.zeros(2, 3))
    with dni.eval_noise("additive", sigma=0.5):
        noisy(torch.zeros(2, 3))  # the returned model works


def test_a_nested_eval_noise_context_knows_the_model_ran():
    """Issue 36.12: the outer context of a nested pair reported "the model was not noisified"."""
    torch.manual_seed(4)
    noisy = dni.noisify(nn.Sequential(nn.Linear(3, 4)))
    x = torch.randn(2, 3)
    with dni.eval_noise("additive", sigma=0.5, generator=torch.Generator().manual_seed(0)):
        with dni.eval_noise("additive", sigma=0.1, generator=torch.Generator().manual_seed(1)):
            inner = noisy(x)
    with dni.eval_noise("additive", sigma=0.1, generator=torch.Generator().manual_seed(1)):
        assert torch.equal(noisy(x), inner)  # the inner context's noise applied, as without the outer one
    with pytest.raises(NotNoisifiedError):  # a model that did not run in either: still reported
        with dni.eval_noise("additive", sigma=0.5):
            with dni.eval_noise("additive", sigma=0.1):
                pass


def test_a_strength_for_a_kind_without_one_is_refused():
    """Issue 36.13: noisify(net, "adc(bits=8,bound=10)", sigma=0.5) was accepted and reported "at sigma 0.5"."""
    from dni.errors import InvalidArgumentError

    net = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(InvalidArgumentError, match=r"noise adc\(bits=8,bound=10\) has no strength for sigma to set") as err:
        dni.noisify(net, noise="adc(bits=8,bound=10)", sigma=0.5)
    assert "\n" not in str(err.value)
    report = str(dni.noisify(net, noise="adc(bits=8,bound=10)").dni_report)
    assert report.startswith("noisified under adc(bits=8,bound=10): ") and "sigma" not in report
    assert "additive at sigma 0.5" in str(dni.noisify(net, sigma=0.5).dni_report)
