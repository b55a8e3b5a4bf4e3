"""Bring your own model: :func:`noisify` puts analog noise after every matrix–vector product of a torch model.

``dni.noisify(model, noise="additive", sigma=0.5)`` returns a copy of ``model`` (or ``model`` itself
with ``inplace=True``) in which every ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, ``nn.LSTMCell``,
``nn.GRUCell``, ``nn.RNNCell``, ``nn.Linear`` and ``nn.Conv1d``/``Conv2d`` computes as dni's noisy cells do (paper eq. 2:
``g(W·x + b + z)`` after every product, or any noise kind of :mod:`dni.noise.kinds`).

**The layers stay themselves.** With ``inplace=True`` each supported layer keeps its object, its parameters (the same
``Parameter`` tensors, the same names) and its hooks; only its class becomes a noisy subclass of the
original one (``isinstance(layer, nn.LSTM)`` still holds). By default (``inplace=False``) that happens to
the layers of a deep copy, which is returned: ``model`` itself stays an ordinary torch model, and running
it inside :func:`eval_noise` raises :class:`NotNoisifiedError` saying to use the returned model (issue 36). So the state dict is exactly torch's and
loads into the original class and back. **Biases**: torch keeps two per gate (``b_ih``, ``b_hh``),
dni one per product unit (:mod:`dni.nn.cells`); the noisy layer keeps both torch parameters and sums them
when it computes, ``b = b_ih + b_hh`` (the GRU candidate's ``b_hn`` stays apart: it is the bias of the
product ``W_hn·h``, which the reset gate multiplies) — as :func:`dni.nn.models.load_torch_recurrent` maps them.
``bias=False`` computes with zero biases.

**Noise control.** In ``train()`` mode every noisified layer injects the train noise (``noise`` at
strength ``sigma``). In ``eval()`` mode it is the original layer (no noise, torch's own forward), unless
inference noise is set for all noisified layers at once with :func:`eval_noise`::

    with dni.eval_noise("additive", sigma=0.5, generator=torch.Generator().manual_seed(0)):
        logits = model(x)

Inside the context the given noise applies in either mode. σ = 0 (or a kind that is off) is exactly the
original model: the layer then runs torch's own forward. Programming noise (one chip per weight) is drawn
once per context and repeat in evaluation; in training once per layer call (per batch for a sequence
layer, per step for a cell that your loop steps).

**Which path.** Under the paper's additive noise a recurrent layer precomputes the input part of every
product for all steps and adds the noise there (:mod:`dni.nn.recurrence`'s fast path, the same arithmetic
and draws as the presets' inference); other kinds step the readable cells of :mod:`dni.nn.cells` (autograd).
In training an LSTM or RNN layer direction takes fused BPTT (:func:`dni.nn.fused.layer_outputs`: every step's
output and the final states, with gradients for all; one noise draw per sequence). Repeats are batched by :func:`dni.robustness`
(the batch tiled R times, repeat r's rows drawn from generator r) where the model allows it.

``nn.Conv1d`` / ``nn.Conv2d`` (groups = 1, zero padding) are noisified too: each output pixel is one product
``W·patch + b`` (:class:`_NoisyConvBase`). Not supported (one-line errors): ``nn.LSTM(proj_size>0)``,
``nonlinearity="relu"`` RNNs, packed sequences. Every other layer (Conv3d, transposed or grouped convolutions,
attention, ...) is left alone and listed in ``model.dni_report``.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from dni.errors import InvalidArgumentError, NoisifyError, NotNoisifiedError
from dni.nn import fused
from dni.nn.cells import NoisyGRUCell, NoisyLSTMCell, NoisyRNNCell, _NoisyModule
from dni.nn.paths import Path, choose_path
from dni.nn.recurrence import _STEPS, split_steps
from dni.noise.base import NOISELESS, NoiseModel
from dni.noise.session import NoiseSession, commutes, noise_for
from dni.noise.spec import NoiseSpec, parse_noise
from dni.util.validation import validate_sigma

# ---------------------------------------------------------------------------------------------
# noise control


@dataclass
class _EvalNoise:
    """The inference noise of a :func:`eval_noise` context: one noise model shared by every layer."""

    noise: NoiseModel
    generator: object
    rows: int | None = None  # the batch rows every product must see (batched repeats), None: any
    calls: int = 0


_ACTIVE: contextvars.ContextVar[_EvalNoise | None] = contextvars.ContextVar("dni_eval_noise", default=None)


class _NotBatchable(Exception):
    """A product saw other batch rows than batched repeats need (:func:`dni.robustness` then loops)."""


def inference_noise(noise="additive", sigma=None, generator=None, repeats: int = 1) -> NoiseModel:
    """The noise model of ``noise`` (a spec, :mod:`dni.noise.kinds`, or a :class:`dni.noise.base.NoiseModel`) at
    strength ``sigma``: the paper's :class:`AdditiveGaussian`, else one :class:`NoiseSession` (one chip per
    repeat for the session's life)."""
    if isinstance(noise, NoiseModel):
        return noise
    spec = parse_noise(noise)
    if sigma is None and spec.scaled:
        raise InvalidArgumentError(f"eval noise {spec.label} needs a strength: give sigma=…")
    model = noise_for(spec, 0.0 if sigma is None else sigma)
    if isinstance(model, NoiseSpec):
        return NoiseSession(model, generator, repeats)
    return model


@contextlib.contextmanager
def eval_noise(noise="additive", sigma=None, generator=None, *, repeats: int | None = None):
    """Set the inference noise of every noisified layer (:func:`noisify`) for the ``with`` block; yields the noise model.

    ``noise``: a spec (``"additive"``, ``"weight_read"``, ``"programming+adc(bits=8,bound=10)"``, a dict,
    a :class:`dni.noise.spec.NoiseSpec`) at strength ``sigma``, or a :class:`dni.noise.base.NoiseModel`.
    ``generator``: a ``torch.Generator``, None (torch's global one), or a list of R generators: the batch
    is then R equal blocks of rows, block r drawn from generator r (R repeats of a batch, as
    :func:`dni.robustness` runs them). Programming noise is one chip per repeat for the whole block.
    A noisy block in which no noisified layer ran raises :class:`NotNoisifiedError` (the model was not
    noisified). σ = 0 runs every layer as the original.
    """
    if repeats is None:
        repeats = len(generator) if isinstance(generator, (list, tuple)) else 1
    with noise_scope(inference_noise(noise, sigma, generator, repeats), generator) as state:
        yield state.noise


@contextlib.contextmanager
def noise_scope(noise: NoiseModel, generator=None, rows: int | None = None):
    """:func:`eval_noise` with a noise model; yields its :class:`_EvalNoise` state (``rows`` may be set per batch)."""
    state = _EvalNoise(noise, generator, rows)
    outer = _ACTIVE.get()
    token = _ACTIVE.set(state)
    failed = False
    try:
        yield state
    except BaseException:
        failed = True
        raise
    finally:
        _ACTIVE.reset(token)
        if outer is not None:  # a nested context: the layers that ran in it ran inside the outer one too (issue 36)
            outer.calls += state.calls
        if not failed and state.calls == 0 and not state.noise.is_noiseless:
            raise NotNoisifiedError("no noisified layer ran inside dni.eval_noise(...): the model was not noisified; "
                                    "call model = dni.noisify(model) first and run the model it returns "
                                    "(the original stays an ordinary torch model unless inplace=True)")


class _Named(NoiseModel):
    """``inner`` with the layer's name before every product name: each product of each layer (and
    direction) keeps its own chip in a shared :class:`NoiseSession`."""

    commutes_with_recurrence = False

    def __init__(self, inner: NoiseModel, prefix: str):
        self.inner, self.prefix = inner, prefix

    @property
    def is_noiseless(self):
        return self.inner.is_noiseless

    def product(self, name, weight, bias, x, generator=None):
        return self.inner.product(f"{self.prefix}.{name}", weight, bias, x, generator)

    def add(self, preactivation, generator=None):
        return self.inner.add(preactivation, generator)

    # the split path of inference (dni.nn.recurrence.split_steps), with the layer's chip names
    @property
    def splits_products(self):
        return getattr(self.inner, "splits_products", False)

    def chip(self, name, weight):
        return self.inner.chip(f"{self.prefix}.{name}", weight)

    def process_input(self, x):
        return self.inner.process_input(x)

    def perturb(self, y, stats):
        return self.inner.perturb(y, stats)


class _NoisyLayer:
    """Mixin of every noisified layer: ``dni_noise`` (the train noise), ``dni_name`` (its path in the model)."""

    dni_noise: object = NOISELESS
    dni_name: str = ""

    def _dni_noise(self, rows: int | None):
        """(noise model, generator) of this call: the :func:`eval_noise` context's, else the train noise in
        training, else none. ``rows``: the batch rows this layer's products see (checked for batched repeats)."""
        active = _ACTIVE.get()
        if active is not None:
            active.calls += 1
            if active.rows is not None and rows != active.rows:
                raise _NotBatchable(f"{self.dni_name} sees {rows} rows, not {active.rows}")
            noise, generator = active.noise, active.generator
        elif self.training:
            noise, generator = self.dni_noise, None
            if isinstance(noise, NoiseSpec):  # a fresh session per call: programming chips redrawn per batch
                noise = NoiseSession(noise)
        else:
            return NOISELESS, None
        if not commutes(noise):
            noise = _Named(noise, self.dni_name)
        return noise, generator


def _view(cls, input_size: int, hidden_size: int, weight_ih, weight_hh, bias, bias_hn=None):
    """A dni cell of class ``cls`` computing with the given tensors (not its own parameters): the torch
    layer's weights and its summed bias. Built per call (cheap: no parameters are allocated)."""
    cell = cls.__new__(cls)
    nn.Module.__init__(cell)
    cell.input_size, cell.hidden_size, cell.noise = input_size, hidden_size, NOISELESS
    for name, value in (("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias", bias), ("bias_hn", bias_hn)):
        if value is not None:
            object.__setattr__(cell, name, value)
    return cell


def _dni_biases(kind: str, H: int, b_ih, b_hh, like):
    """dni's one bias per product unit from torch's two: (bias (G,), bias_hn (H,) or None)."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind] * H
    if b_ih is None:
        zeros = like.new_zeros(G)
        return zeros, (like.new_zeros(H) if kind == "gru" else None)
    if kind == "gru":  # b_r = b_ir + b_hr, b_z = b_iz + b_hz, b_in; the candidate's b_hn apart
        return torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]), b_hh[2 * H :]
    return b_ih + b_hh, None


_CELL_CLASS = {"lstm": NoisyLSTMCell, "gru": NoisyGRUCell, "rnn": NoisyRNNCell}


def _run_direction(cell, x, state, noise: NoiseModel, generator, reverse: bool):
    """One layer direction over x (B, T, I) from ``state``: (outputs (B, T, H), final state).

    On the path of :func:`dni.nn.paths.choose_path`: additive noise in training (grad on), an LSTM or RNN takes the
    fused BPTT of :func:`dni.nn.fused.layer_outputs` (one autograd node, the sequence's noise one (T, B, G) draw);
    otherwise additive noise takes the unrolled path (the input part of all T products one matmul, the noise
    added per step, as :func:`dni.nn.recurrence.unroll`, its draws per step). Other kinds: in inference an LSTM
    or RNN takes the split path of :func:`dni.nn.recurrence.split_steps` (what ``dni evaluate`` computes), else
    the readable cell is stepped (autograd)."""
    T = x.shape[1]
    outputs = [None] * T
    steps = range(T - 1, -1, -1) if reverse else range(T)
    path = choose_path(cell, noise, grad=torch.is_grad_enabled(), generator=generator)
    if path is Path.FUSED:  # training: fused BPTT (dni.nn.fused), the whole sequence's noise one draw
        out, state = fused.layer_outputs(cell, x.flip(1) if reverse else x, state, noise, generator)
        return (out.flip(1) if reverse else out), state
    if path is Path.SPLIT:  # inference under other kinds: the input part precomputed (dni.nn.recurrence.split_steps)
        for t, state, _ in split_steps(cell, x, noise, state, reverse=reverse):
            outputs[t] = state[0] if cell.has_cell_state else state  # (B, H)
    elif path is Path.UNROLLED:
        proj = F.linear(x, cell.weight_ih, cell.bias)  # (B, T, G)
        step = _STEPS[type(cell)]
        for t in steps:
            state, _ = step(cell, noise.add(proj[:, t], generator), state, noise, generator, False)
            outputs[t] = state[0] if cell.has_cell_state else state  # (B, H)
    else:
        for t in steps:
            state = cell(x[:, t], state, noise=noise, generator=generator)
            outputs[t] = state[0] if cell.has_cell_state else state
    return torch.stack(outputs, dim=1), state  # (B, T, H)


class _NoisyRNNBase(_NoisyLayer):
    """``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with noise after every product of every layer and direction."""

    dni_kind = ""

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            raise NoisifyError(f"{self.dni_name or type(self).__name__}: packed sequences are not supported by dni.noisify; "
                               "pass the padded tensor (torch.nn.utils.rnn.pad_packed_sequence)")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(0 if self.batch_first else 1)
        x = x if self.batch_first else x.transpose(0, 1)  # (B, T, I)
        noise, generator = self._dni_noise(x.shape[0])
        if noise.is_noiseless:
            return super().forward(input, hx)  # exactly the original layer
        B, H, D, L = x.shape[0], self.hidden_size, 2 if self.bidirectional else 1, self.num_layers
        lstm = self.dni_kind == "lstm"
        if hx is None:
            zeros = x.new_zeros(L * D, B, H)
            hx = (zeros, zeros) if lstm else zeros
        elif not batched:
            hx = tuple(s.unsqueeze(1) for s in hx) if lstm else hx.unsqueeze(1)
        h_n, c_n, layer_input = [], [], x
        for layer in range(L):
            outputs = []
            for d in range(D):
                k = layer * D + d
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                W_ih, W_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
                bias, bias_hn = _dni_biases(self.dni_kind, H, getattr(self, "bias_ih" + suffix, None) if self.bias else None,
                                            getattr(self, "bias_hh" + suffix, None) if self.bias else None, W_ih)
                cell = _view(_CELL_CLASS[self.dni_kind], W_ih.shape[1], H, W_ih, W_hh, bias, bias_hn)
                named = _Named(noise.inner, f"{self.dni_name}{suffix}") if isinstance(noise, _Named) else noise
                state = (hx[0][k], hx[1][k]) if lstm else hx[k]  # (B, H)
                out, state = _run_direction(cell, layer_input, state, named, generator, reverse=bool(d))
                outputs.append(out)
                h_n.append(state[0] if lstm else state)
                if lstm:
                    c_n.append(state[1])
            layer_input = torch.cat(outputs, dim=2) if D == 2 else outputs[0]  # (B, T, D·H)
            if self.dropout and self.training and layer < L - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input if self.batch_first else layer_input.transpose(0, 1)
        h_n = torch.stack(h_n)  # (L·D, B, H)
        hidden = (h_n, torch.stack(c_n)) if lstm else h_n
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            hidden = tuple(s.squeeze(1) for s in hidden) if lstm else hidden.squeeze(1)
        return output, hidden


class NoisyLSTM(_NoisyRNNBase, nn.LSTM):
    """``nn.LSTM`` with noise after every gate product ``W·[h, x] + b`` (paper eq. 2, Fig. 1), per layer and direction."""

    dni_kind = "lstm"


class NoisyGRU(_NoisyRNNBase, nn.GRU):
    """``nn.GRU`` with noise after each of its two products per step (:class:`dni.nn.cells.NoisyGRUCell`)."""

    dni_kind = "gru"


class NoisyRNN(_NoisyRNNBase, nn.RNN):
    """``nn.RNN`` (tanh) with noise after ``W·[h, x] + b`` per step (paper §III-C)."""

    dni_kind = "rnn"


class _NoisyCellBase(_NoisyLayer):
    """``nn.LSTMCell`` / ``nn.GRUCell`` / ``nn.RNNCell``: one noisy step per call."""

    dni_kind = ""

    def forward(self, input, hx=None):
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        noise, generator = self._dni_noise(x.shape[0])
        if noise.is_noiseless:
            return super().forward(input, hx)
        lstm = self.dni_kind == "lstm"
        if hx is not None and not batched:
            hx = tuple(s.unsqueeze(0) for s in hx) if lstm else hx.unsqueeze(0)
        bias, bias_hn = _dni_biases(self.dni_kind, self.hidden_size, self.bias_ih, self.bias_hh, self.weight_ih)
        cell = _view(_CELL_CLASS[self.dni_kind], self.input_size, self.hidden_size, self.weight_ih, self.weight_hh, bias, bias_hn)
        out = cell(x, hx, noise=noise, generator=generator)  # LSTM: (h, c); else h, each (B, H)
        if not batched:
            out = tuple(s.squeeze(0) for s in out) if lstm else out.squeeze(0)
        return out


class NoisyLSTMCellLayer(_NoisyCellBase, nn.LSTMCell):
    """``nn.LSTMCell`` with noise after its gate product (:class:`dni.nn.cells.NoisyLSTMCell`)."""

    dni_kind = "lstm"


class NoisyGRUCellLayer(_NoisyCellBase, nn.GRUCell):
    """``nn.GRUCell`` with noise after its two products (:class:`dni.nn.cells.NoisyGRUCell`)."""

    dni_kind = "gru"


class NoisyRNNCellLayer(_NoisyCellBase, nn.RNNCell):
    """``nn.RNNCell`` (tanh) with noise after its product (:class:`dni.nn.cells.NoisyRNNCell`)."""

    dni_kind = "rnn"


class NoisyLinearLayer(_NoisyLayer, nn.Linear):
    """``nn.Linear`` with noise after its product, ``W·x + b + z`` per input vector (paper §III-A's FC layer)."""

    def forward(self, input):
        rows = input.shape[0] if input.dim() > 1 else None
        noise, generator = self._dni_noise(rows)
        if noise.is_noiseless:
            return super().forward(input)
        x = input.reshape(-1, self.in_features)  # (N, in): every vector one product; batch blocks stay in order
        y = noise.product("fc", self.weight, self.bias, x, generator)  # (N, out)
        return y.reshape(*input.shape[:-1], self.out_features)


class _NoisyConvBase(_NoisyLayer):
    """``nn.Conv1d`` / ``nn.Conv2d``: every output pixel is one matrix–vector product, ``W·patch + b``
    (W: C_out × C_in·k, the patch the C_in·k inputs under the kernel), and gets its noise.

    Additive noise: torch's convolution, then z per output element. Other kinds: the patches as rows
    (``F.unfold``: (B·L, C_in·k), batch-major, so R repeats stay R blocks of rows) through the noise's
    product, so max|x|, ‖x‖₂ and the chips are per patch and per layer exactly as for a Linear.
    groups = 1 and padding_mode "zeros" only (others are left alone by :func:`noisify`)."""

    def forward(self, input):
        batched = input.dim() == self.dni_dims + 2
        x = input if batched else input.unsqueeze(0)  # (B, C_in, *spatial)
        noise, generator = self._dni_noise(x.shape[0])
        if noise.is_noiseless:
            return super().forward(input)
        if commutes(noise):
            y = noise.add(super().forward(x), generator)  # (B, C_out, *spatial'): z per output element
        else:
            y = self._patch_products(x, noise, generator)
        return y if batched else y.squeeze(0)

    def _patch_products(self, x, noise, generator):
        one_d = self.dni_dims == 1
        x2 = F.pad(x.unsqueeze(2) if one_d else x, self._reversed_padding_repeated_twice)  # (B, C_in, H, W), padded
        pair = lambda v: (1, v[0]) if one_d else tuple(v)  # noqa: E731 — Conv1d as a 2-d convolution of height 1
        kernel, dilation, stride = pair(self.kernel_size), pair(self.dilation), pair(self.stride)
        cols = F.unfold(x2, kernel, dilation=dilation, stride=stride)  # (B, C_in·kh·kw, L)
        B, M, L = cols.shape
        rows = cols.transpose(1, 2).reshape(B * L, M)  # (B·L, M): one product per output pixel
        y = noise.product("conv", self.weight.reshape(self.out_channels, M), self.bias, rows, generator)  # (B·L, C_out)
        spatial = [(n - d * (k - 1) - 1) // s + 1 for n, k, d, s in zip(x2.shape[2:], kernel, dilation, stride)]
        y = y.view(B, L, self.out_channels).transpose(1, 2).reshape(B, self.out_channels, *spatial)
        return y.squeeze(2) if one_d else y


class NoisyConv1d(_NoisyConvBase, nn.Conv1d):
    """``nn.Conv1d`` with noise after every output pixel's product (:class:`_NoisyConvBase`)."""

    dni_dims = 1


class NoisyConv2d(_NoisyConvBase, nn.Conv2d):
    """``nn.Conv2d`` with noise after every output pixel's product (:class:`_NoisyConvBase`)."""

    dni_dims = 2


NOISY = {nn.Conv1d: NoisyConv1d, nn.Conv2d: NoisyConv2d, nn.LSTM: NoisyLSTM, nn.GRU: NoisyGRU, nn.RNN: NoisyRNN, nn.LSTMCell: NoisyLSTMCellLayer,
         nn.GRUCell: NoisyGRUCellLayer, nn.RNNCell: NoisyRNNCellLayer, nn.Linear: NoisyLinearLayer}
"""torch layer class → its noisy subclass."""
_ORIGINAL = {v: k for k, v in NOISY.items()}

_NOTES = {"Conv": "not yet supported (left noiseless)", "Embedding": "a table lookup, no product",
          "Bilinear": "not supported (left noiseless)", "MultiheadAttention": "not supported (left noiseless)"}


@dataclass
class NoisifyReport:
    """What :func:`noisify` did: ``noisified`` and ``left_alone`` as (path, class, note) rows."""

    noise: str
    sigma: float
    noisified: list[tuple[str, str]] = field(default_factory=list)
    left_alone: list[tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        at = f" at sigma {self.sigma:g}" if parse_noise(self.noise).scaled else ""  # a fixed kind has no strength to report
        lines = [f"noisified under {self.noise}{at}: " + ", ".join(f"{p} ({c})" for p, c in self.noisified)]
        if self.left_alone:
            lines.append("left alone: " + ", ".join(f"{p} ({c}{': ' + n if n else ''})" for p, c, n in self.left_alone))
        return "\n".join(lines)


def _conv_note(module: nn.Module) -> str:
    """Why a convolution is left alone ("" if it is noisified)."""
    if not isinstance(module, nn.modules.conv._ConvNd):
        return ""
    if module.groups != 1:
        return f"groups={module.groups}: not yet supported (left noiseless)"
    if module.padding_mode != "zeros":
        return f"padding_mode={module.padding_mode!r}: not yet supported (left noiseless)"
    return ""


def _check_supported(path: str, module: nn.Module) -> None:
    where = path or "the model"
    if isinstance(module, nn.LSTM) and getattr(module, "proj_size", 0):
        raise NoisifyError(f"{where}: nn.LSTM with proj_size={module.proj_size} is not supported by dni.noisify; use proj_size=0")
    if getattr(module, "nonlinearity", "tanh") != "tanh":
        raise NoisifyError(f"{where}: {type(module).__name__}(nonlinearity={module.nonlinearity!r}) is not supported by "
                           "dni.noisify (dni's RNN cell is tanh); use nonlinearity='tanh'")


def noisify(model: nn.Module, noise=None, sigma=None, *, inplace: bool = False) -> nn.Module:
    """``model`` with analog noise after every matrix–vector product of its recurrent and linear layers.

    ``noise``: the train noise spec (:mod:`dni.noise.kinds`; the paper's ``"additive"`` by default) at
    strength ``sigma`` (σtrain), injected in ``train()`` mode; inference noise comes from :func:`eval_noise`.
    Returns a deep copy (``inplace=False``) or ``model`` itself, its supported layers turned into their noisy
    subclasses (:data:`NOISY`) with the same parameters; ``model.dni_report`` lists what was noisified and
    what was left alone. ``noise`` and ``sigma`` not given: the paper's additive noise at σ = 0 for a new model,
    the settings it has for a noisified one (``dni.noisify(trained)`` is then a copy that keeps its σtrain).
    """
    if not isinstance(model, nn.Module):
        raise NoisifyError(f"dni.noisify needs a torch.nn.Module, got {type(model).__name__}")
    spec = parse_noise(getattr(model, "dni_train_noise", "additive") if noise is None else noise)
    if sigma is not None and not spec.scaled and float(sigma) != 0:  # issue 36: a strength the spec has no use for
        raise InvalidArgumentError(f"noise {spec.label} has no strength for sigma to set (its kinds fix their own); "
                                   "leave sigma out, or use a σ-kind without its own sigma (e.g. weight_read)")
    sigma = validate_sigma(getattr(model, "dni_sigma_train", 0.0) if sigma is None else sigma, "sigma")
    train_noise = noise_for(spec, sigma)
    found = [(path, m) for path, m in model.named_modules()]
    for path, m in found:
        if type(m) in NOISY:
            _check_supported(path, m)
    if not any((type(m) in NOISY and not _conv_note(m)) or isinstance(m, _NoisyLayer) for _, m in found):
        kinds = sorted({type(m).__name__ for _, m in found})
        if any(isinstance(m, _NoisyModule) for _, m in found):
            raise NoisifyError(f"{type(model).__name__} is a dni model already (its cells are noisy: give noise= to the model "
                               f"or to dni evaluate); dni.noisify takes torch layers (found: {', '.join(kinds)})")
        raise NoisifyError(f"nothing to noisify in {type(model).__name__}: no nn.LSTM/GRU/RNN, their cells, nn.Linear or nn.Conv1d/2d "
                           f"(found: {', '.join(kinds)})")
    target = model if inplace else copy.deepcopy(model)
    report = NoisifyReport(spec.label, sigma)
    for path, m in target.named_modules():
        if type(m) in NOISY and _conv_note(m):
            report.left_alone.append((path or "model", type(m).__name__, _conv_note(m)))
            continue
        if type(m) in NOISY:
            m.__class__ = NOISY[type(m)]
        if isinstance(m, _NoisyLayer):
            m.dni_noise, m.dni_name = train_noise, path or "model"
            report.noisified.append((path or "model", _ORIGINAL[type(m)].__name__))
        elif not list(m.children()):
            note = next((n for prefix, n in _NOTES.items() if type(m).__name__.startswith(prefix)), "")
            report.left_alone.append((path or "model", type(m).__name__, note))
    target.dni_report = report
    target.dni_train_noise, target.dni_sigma_train = spec.label, sigma
    return target


def noisified_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (path, layer) of every noisified layer of ``model``."""
    return [(p, m) for p, m in model.named_modules() if isinstance(m, _NoisyLayer)]
