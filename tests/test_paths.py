"""One answer to "which code ran my step?" (issue 35): dni.nn.choose_path decides, every caller runs what it
answers, and every path equals the readable cell (dni.nn.cells), the fused ones in their gradients too."""

import importlib

import pytest
import torch
from torch import nn

import dni
from dni.errors import InvalidArgumentError
from dni.nn import fused, recurrence
from dni.nn.cells import NoisyGRUCell, NoisyLSTMCell, NoisyRNNCell
from dni.nn.models import build_model
from dni.nn.paths import Path, choose_path
from dni.nn.stacked import StackedClassifier
from dni.noise.base import AdditiveGaussian, NoiseModel, ReplayNoise
from dni.noise.session import NoiseSession
from dni.noise.spec import parse_noise

noisify_module = importlib.import_module("dni.nn.noisify")


class _Unsplittable(NoiseModel):
    """A noise that neither commutes with h·W_hhᵀ nor splits its products: only the readable cell can run it."""

    commutes_with_recurrence = False
    splits_products = False
    is_noiseless = False

    def product(self, name, weight, bias, x, generator=None):
        return nn.functional.linear(x, weight, bias) * 1.01


ADDITIVE = AdditiveGaussian(0.5)
SPLITTING = NoiseSession(parse_noise("weight_read").at(0.1))
UNSPLITTABLE = _Unsplittable()
GENERATORS = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]


# --- the decision --------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, noise, grad, kw, expected", [
    (NoisyLSTMCell, ADDITIVE, True, {}, Path.FUSED),
    (NoisyRNNCell, ADDITIVE, True, {"generator": torch.Generator()}, Path.FUSED),
    (NoisyGRUCell, ADDITIVE, True, {}, Path.UNROLLED),  # no fused GRU
    (NoisyLSTMCell, ADDITIVE, False, {}, Path.UNROLLED),  # inference
    (NoisyLSTMCell, ADDITIVE, True, {"repeats": 2}, Path.UNROLLED),  # repeats
    (NoisyRNNCell, ADDITIVE, True, {"generator": GENERATORS}, Path.UNROLLED),  # one generator per repeat block
    (NoisyLSTMCell, ADDITIVE, True, {"trace": True}, Path.UNROLLED),  # the per-step internals wanted
    (NoisyLSTMCell, SPLITTING, False, {}, Path.SPLIT),
    (NoisyRNNCell, SPLITTING, False, {"repeats": 2, "generator": GENERATORS}, Path.SPLIT),
    (NoisyLSTMCell, SPLITTING, True, {}, Path.READABLE),  # training under other kinds
    (NoisyGRUCell, SPLITTING, False, {}, Path.READABLE),  # the GRU's two products do not split
    (NoisyRNNCell, UNSPLITTABLE, False, {}, Path.READABLE),
])
def test_choose_path_answers_as_documented(cell, noise, grad, kw, expected):
    assert choose_path(cell, noise, grad=grad, **kw) is expected
    assert choose_path(cell(3, 4), noise, grad=grad, **kw) is expected  # a cell or its class


def test_choose_path_is_public_and_light():
    import subprocess
    import sys

    assert dni.nn.choose_path is choose_path and dni.nn.Path is Path
    code = "import sys, dni.nn\nprint('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# --- every caller runs the chosen path -----------------------------------------------------------

@pytest.fixture
def ran(monkeypatch):
    """The set of paths that ran since the last clear(), from spies on the code of each path."""
    seen = set()

    def spy(owner, name, path):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, **k: seen.add(path) or real(*a, **k))

    for name in ("last_hidden", "layer_outputs"):
        spy(fused, name, Path.FUSED)
    spy(importlib.import_module("dni.nn.stacked"), "stacked_last_hidden", Path.FUSED)
    spy(recurrence, "split_steps", Path.SPLIT)
    spy(noisify_module, "split_steps", Path.SPLIT)
    for cls, step in list(recurrence._STEPS.items()):  # noisify shares this dict
        monkeypatch.setitem(recurrence._STEPS, cls, lambda *a, _step=step, **k: seen.add(Path.UNROLLED) or _step(*a, **k))
    for cls in (NoisyLSTMCell, NoisyRNNCell, NoisyGRUCell):
        spy(cls, "forward", Path.READABLE)
    return seen


CASES = [(ADDITIVE, True, 1), (ADDITIVE, False, 1), (ADDITIVE, True, 2), (ADDITIVE, False, 3),
         (SPLITTING, False, 1), (SPLITTING, True, 1), (SPLITTING, False, 2), (UNSPLITTABLE, False, 1)]


@pytest.mark.parametrize("preset", ["lstm28", "rnn28", "gru28"])
@pytest.mark.parametrize("noise, grad, repeats", CASES)
def test_the_classifier_runs_the_chosen_path(preset, noise, grad, repeats, ran):
    model = build_model(preset)
    x = torch.rand(3, 28, 28)
    gens = [torch.Generator().manual_seed(r) for r in range(repeats)] if repeats > 1 else torch.Generator().manual_seed(0)
    session = NoiseSession(parse_noise("weight_read").at(0.1), gens, repeats) if noise is SPLITTING else noise
    expected = choose_path(model.cell, session, grad=grad, generator=gens, repeats=repeats)
    with torch.set_grad_enabled(grad):
        model(x, noise=session, generator=gens, repeats=repeats)
        assert model.uses_fused_training(repeats, session) == (expected is Path.FUSED)
    assert ran == {expected}


@pytest.mark.parametrize("kind", ["LSTM", "RNN", "GRU"])
@pytest.mark.parametrize("how", ["train", "additive", "additive_grad_repeats", "weight_read", "weight_read_grad"])
def test_a_noisified_layer_runs_the_chosen_path(kind, how, ran):
    torch.manual_seed(0)
    layer = dni.noisify(getattr(nn, kind)(3, 4, bidirectional=True, batch_first=True), sigma=0.5)
    x = torch.randn(4, 5, 3)
    cell = {"LSTM": NoisyLSTMCell, "RNN": NoisyRNNCell, "GRU": NoisyGRUCell}[kind]
    if how == "train":
        layer.train()
        layer(x)
        expected = choose_path(cell, ADDITIVE, grad=True)
    else:
        spec = "weight_read" if how.startswith("weight_read") else "additive"
        grad = how.endswith(("grad", "repeats"))
        gens = GENERATORS if how.endswith("repeats") else torch.Generator().manual_seed(0)
        noise = noisify_module.inference_noise(spec, 0.1, gens, 2 if how.endswith("repeats") else 1)
        expected = choose_path(cell, noise, grad=grad, generator=gens)
        with torch.set_grad_enabled(grad), dni.eval_noise(spec, 0.1, gens):
            layer.eval()(x)
    assert ran == {expected}


def test_model_batched_training_runs_the_fused_path_and_asks_choose_path(ran, monkeypatch):
    models = [build_model("rnn28", s) for s in (0.0, 0.5)]
    StackedClassifier(models, [0.0, 0.5])(torch.rand(3, 28, 28), AdditiveGaussian(0.0))
    assert ran == {Path.FUSED}
    batched = importlib.import_module("dni.training.batched")
    from dni.store.recipe import TrainConfig

    monkeypatch.setattr(batched, "choose_path", lambda *a, **k: Path.UNROLLED)
    with pytest.raises(InvalidArgumentError, match="model-batched training supports"):
        batched.train_batched([TrainConfig(preset="lstm28", sigma_train=s) for s in (0.0, 0.5)], progress=False)


# --- every fused path equals the readable cell: outputs and gradients ----------------------------

def _cell(kind: str, seed: int):
    torch.manual_seed(seed)
    cell = {"lstm": NoisyLSTMCell, "rnn": NoisyRNNCell}[kind](3, 5).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(3)  # away from the linear regime
    return cell


def _readable(cell, x, z, state):
    """Every h and the final state of the readable cell stepped over x (B, T, I), adding z[t] (B, G) at step t."""
    noise, outs = ReplayNoise(list(z)), []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state, noise=noise)
        outs.append(state[0] if cell.has_cell_state else state)
    return torch.stack(outs), state  # (T, B, H)


def _function(cell, x, z, state, all_outputs, stack: bool):
    """The fused Function on P = x·W_ihᵀ + b + z in its gate order, with or without a model-stack dim of one."""
    lstm = cell.has_cell_state
    rows = fused.gate_order(cell.hidden_size, "cpu") if lstm else torch.arange(cell.hidden_size)
    P = nn.functional.linear(x.transpose(0, 1), cell.weight_ih[rows], cell.bias[rows]) + z[..., rows]  # (T, B, G)
    W = cell.weight_hh[rows]
    lead = (lambda v: None if v is None else v.unsqueeze(0)) if stack else (lambda v: v)
    unlead = (lambda v: v[0]) if stack else (lambda v: v)
    if lstm:
        h0, c0 = (None, None) if state is None else state
        out, c = fused.NoisyLSTM.apply(lead(P), lead(W), lead(h0), lead(c0), all_outputs)
        return unlead(out), unlead(c)
    return unlead(fused.NoisyRNN.apply(lead(P), lead(W), lead(state), all_outputs)), None


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize("all_outputs", [False, True])
@pytest.mark.parametrize("stack", [False, True])
def test_the_fused_function_equals_the_readable_cell(kind, initial, all_outputs, stack):
    """Float64, the same noise tensors: outputs, final c, and the gradients of every weight and the initial state."""
    cell = _cell(kind, 1)
    B, T, H = 4, 6, cell.hidden_size
    x = torch.randn(B, T, 3, dtype=torch.float64)
    z = torch.randn(T, B, cell.weight_ih.shape[0], dtype=torch.float64)
    state = None
    if initial:
        state = tuple(torch.randn(B, H, dtype=torch.float64, requires_grad=True) for _ in range(2 if kind == "lstm" else 1))
        state = state if kind == "lstm" else state[0]
    ref_out, ref_state = _readable(cell, x, z, state)
    out, c = _function(cell, x, z, state, all_outputs, stack)
    ref = ref_out if all_outputs else ref_out[-1]
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    if kind == "lstm":
        torch.testing.assert_close(c, ref_state[1], rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    wc = torch.randn(B, H, dtype=torch.float64)
    inputs = list(cell.parameters()) + ([] if state is None else list(state) if kind == "lstm" else [state])
    loss = lambda o, c_: (o * w).sum() + (0 if c_ is None else (c_ * wc).sum())
    got = torch.autograd.grad(loss(out, c), inputs)
    want = torch.autograd.grad(loss(ref, ref_state[1] if kind == "lstm" else None), inputs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("preset", ["lstm28", "rnn28"])
def test_stacked_models_equal_their_readable_cells_in_outputs_and_gradients(preset):
    """The model-stack dim (model-batched training): S = 3 models, each against its own readable classifier."""
    torch.manual_seed(2)
    models = [build_model(preset, s).double() for s in (0.0, 0.5, 1.0)]
    with torch.no_grad():
        for i, m in enumerate(models):
            m.cell.weight_hh.mul_(1 + i)
    stacked = StackedClassifier(models, [0.0, 0.5, 1.0]).double()
    x = torch.rand(4, 28, 28, dtype=torch.float64)
    G = models[0].cell.weight_ih.shape[0]
    z_cell, z_fc = torch.randn(3, 28, 4, G, dtype=torch.float64), torch.randn(3, 4, 10, dtype=torch.float64)
    rows = fused.gate_order(128, "cpu") if preset == "lstm28" else torch.arange(G)
    logits = stacked(x, ReplayNoise([z_cell[..., rows], z_fc]))  # the stack's noise in its gate order
    w = torch.randn_like(logits)
    grads = dict(zip([n for n, _ in stacked.named_parameters()], torch.autograd.grad((logits * w).sum(), list(stacked.parameters()))))
    names = {"weight_ih": "cell.weight_ih", "weight_hh": "cell.weight_hh", "bias": "cell.bias", "fc_weight": "fc.weight", "fc_bias": "fc.bias"}
    for s, m in enumerate(models):
        ref = m.forward_reference(x, noise=ReplayNoise([z_cell[s, t] for t in range(28)] + [z_fc[s]]))
        torch.testing.assert_close(logits[s], ref, rtol=0, atol=1e-10)
        ref_grads = dict(zip([n for n, _ in m.named_parameters()], torch.autograd.grad((ref * w[s]).sum(), list(m.parameters()))))
        for mine, theirs in names.items():
            torch.testing.assert_close(grads[mine][s], ref_grads[theirs], rtol=0, atol=1e-9)


@pytest.mark.parametrize("preset", ["lstm28", "rnn28"])
def test_one_training_step_equals_the_readable_cells_autograd_in_float32(preset):
    """A float32 training step at the committed settings (batch 64, σtrain 0.5, torch init, seed 0): the classifier's
    forward takes the fused path, and its loss and every gradient equal the readable cell's autograd on the same noise
    to float32 rounding. (That the fused numbers are bit for bit those the committed checkpoints were trained with is
    what tests/test_resume.py and tests/test_committed_numbers.py pin.)"""
    torch.manual_seed(0)
    model = build_model(preset, 0.5)
    x, y = torch.rand(64, 28, 28), torch.randint(0, 10, (64,))
    G = model.cell.weight_ih.shape[0]
    z_cell, z_fc = torch.randn(28, 64, G) * 0.5, torch.randn(64, 10) * 0.5
    rows = fused.gate_order(128, "cpu") if preset == "lstm28" else torch.arange(G)
    assert model.uses_fused_training()
    loss = nn.functional.cross_entropy(model(x, noise=ReplayNoise([z_cell[..., rows], z_fc])), y)
    ref = nn.functional.cross_entropy(model.forward_reference(x, noise=ReplayNoise(list(z_cell) + [z_fc])), y)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    for (name, p), a, b in zip(model.named_parameters(), torch.autograd.grad(loss, list(model.parameters())),
                               torch.autograd.grad(ref, list(model.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-6, msg=lambda m, name=name: f"{name}: {m}")
        assert a.abs().max() > 1e-4, name  # a real gradient, not zeros on both sides
