"""Sequence classifiers and the paper's named presets (Tables I–III).

A classifier reads a sequence x (B, T, I) with a noisy recurrent cell, takes the last output
state h_T (B, H) and maps it through the noisy fully connected layer to logits (B, 10); the
softmax belongs to the loss. Noise defaults to the model's σtrain; evaluation passes σval.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dni.nn.cells import CELLS, NoisyGRUCell, NoisyLinear
from dni.nn.paths import Path, choose_path
from dni.nn.presets import Preset, check_init, get_preset
from dni.nn.recurrence import Trace, unroll
from dni.noise.session import as_noise_model, noise_for
from dni.noise.spec import NoiseSpec


class SequenceClassifier(nn.Module):
    """Noisy recurrent cell over T steps → last h → noisy FC → logits (paper Fig. 1, §III).

    ``model(x)`` with x (B, T, I) returns logits (B, C). Keyword ``noise`` (a σ or a
    :class:`dni.noise.base.NoiseModel`) overrides the training noise for this call, ``generator`` is
    the noise generator (or one per repeat), ``repeats=R`` returns (R·B, C): R independent noisy
    passes of the batch, repeat r in rows r·B … (r+1)·B - 1.

    ``input_scale``: every call multiplies x by it first (training, evaluation, probes alike), e.g.
    255 for raw 0–255 pixels from dni's [0, 1] images (issue 26's recipe factor). Not a weight:
    it comes from the training config (:func:`build_model`), not the state dict.

    ``dropout``: dropout on the output (issue 26's recipe factor): in training mode (``model.train()``)
    each unit of h_T is zeroed with this probability before the FC layer and the others are scaled by
    1/(1 − p) (inverted dropout, as torch's ``nn.Dropout`` and TF's ``tf.nn.dropout``). The mask is
    drawn from keyword ``dropout_generator`` (torch's global generator if None); training passes its
    batch-order generator, not the noise one, so that noise drawn ahead in a thread
    (:class:`dni.noise.base.PrefetchedGaussian`) stays the same draws and a run resumes bit for bit.
    Evaluation (``model.eval()``) drops nothing.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int = 10, noise=None,
                 input_scale: float = 1.0, dropout: float = 0.0):
        super().__init__()
        self.noise = noise if isinstance(noise, NoiseSpec) else as_noise_model(noise)  # a spec: a fresh session per pass
        self.cell = CELLS[cell](input_size, hidden_size)
        self.fc = NoisyLinear(hidden_size, num_classes)
        self.preset: Preset | None = None
        self.input_scale = float(input_scale)
        self.dropout = float(dropout)

    def _scaled(self, x):
        return x if self.input_scale == 1.0 else x * self.input_scale  # (B, T, I)

    def _dropped(self, h_last, generator=None):
        """h_T (B, H) with dropout applied in training mode (see the class docstring); unchanged otherwise."""
        if not self.training or self.dropout == 0.0:
            return h_last
        where = generator.device if generator is not None else h_last.device  # a generator draws on its own device
        kept = torch.rand(h_last.shape, generator=generator, device=where).to(h_last.device) >= self.dropout  # (B, H)
        return h_last * kept / (1.0 - self.dropout)

    def _noise(self, noise, generator=None, repeats: int = 1):
        """The noise of one forward pass: a σ or noise model as given, a noise spec as a fresh
        session (:class:`dni.noise.session.NoiseSession`: one chip per pass, or per repeat)."""
        return as_noise_model(self.noise if noise is None else noise, generator, repeats)

    def forward(self, x, *, noise=None, generator=None, repeats: int = 1, dropout_generator=None):
        noise, x = self._noise(noise, generator, repeats), self._scaled(x)
        h_last = unroll(self.cell, x, noise, generator, repeats)  # (R·B, H), on the path of dni.nn.paths.choose_path
        return self.fc(self._dropped(h_last, dropout_generator), noise=noise, generator=generator)  # (R·B, C)

    def uses_fused_training(self, repeats: int = 1, noise=None) -> bool:
        """True when ``forward`` takes the fused BPTT path (:attr:`dni.nn.paths.Path.FUSED`, as
        :func:`dni.nn.paths.choose_path` decides): LSTM/RNN with grad on, under the paper's additive noise
        (other kinds take the readable step with autograd).

        That path draws each batch's cell noise as one (T, B, G) block, then the FC noise (B, C).
        Inference (no grad) takes :func:`dni.nn.recurrence.unroll`'s other paths, drawing per step.
        """
        noise = as_noise_model(self.noise if noise is None else noise)
        return choose_path(self.cell, noise, grad=torch.is_grad_enabled(), repeats=repeats) is Path.FUSED

    def inference_noise_shapes(self, batch: int, steps: int, repeats: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the noise draws of one :func:`dni.nn.recurrence.unroll` pass (R repeats of B sequences), in order."""
        G, H, rows = self.cell.weight_ih.shape[0], self.cell.hidden_size, repeats * batch
        step_input = (repeats, batch, G) if repeats > 1 else (batch, G)
        per_step = [step_input, (rows, H)] if isinstance(self.cell, NoisyGRUCell) else [step_input]
        return per_step * steps + [(rows, self.fc.out_features)]

    def inference_products(self, batch: int, steps: int, repeats: int = 1) -> list[tuple[str, tuple, tuple]]:
        """The products of one inference pass (R repeats of B sequences) in call order, as
        (name, weight shape, output shape): what a noise session draws for (:meth:`dni.noise.session.NoiseSession.draw_shapes`)."""
        H, I, rows = self.cell.hidden_size, self.cell.input_size, repeats * batch
        G = self.cell.weight_ih.shape[0]
        if isinstance(self.cell, NoisyGRUCell):
            per_step = [("cell", (G, H + I), (rows, G)), ("cell_hn", (H, H), (rows, H))]
        else:
            per_step = [("cell", (G, H + I), (rows, G))]
        C = self.fc.out_features
        return per_step * steps + [("fc", (C, H), (rows, C))]

    def training_noise_shapes(self, batch: int, steps: int) -> list[tuple[int, ...]]:
        """Shapes of the noise draws of one fused training forward pass, in order."""
        return [(steps, batch, self.cell.weight_ih.shape[0]), (batch, self.fc.out_features)]

    def forward_reference(self, x, *, noise=None, generator=None, dropout_generator=None):
        """Same as ``forward`` (repeats = 1) but stepping the readable cell; for tests."""
        noise, x = self._noise(noise, generator), self._scaled(x)
        state = None
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state, noise=noise, generator=generator)
        h_last = state[0] if self.cell.has_cell_state else state
        return self.fc(self._dropped(h_last, dropout_generator), noise=noise, generator=generator)

    @torch.no_grad()
    def trace(self, x, *, noise=None, generator=None) -> tuple[torch.Tensor, Trace]:
        """Logits (B, C) and the per-step :class:`Trace` (h, c, pre-activations)."""
        noise, x = self._noise(noise, generator), self._scaled(x)
        h_last, tr = unroll(self.cell, x, noise, generator, trace=True)
        return self.fc(h_last, noise=noise, generator=generator), tr

    def weights(self) -> torch.Tensor:
        """All trainable values (weights and biases, paper §I) as one flat tensor, for Figs 5, 9."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])


@torch.no_grad()
def initialise(model: SequenceClassifier, init: str) -> SequenceClassifier:
    """Re-initialise ``model``'s parameters as :data:`INITS` ``[init]`` says (``"torch"``: left as built).

    Glorot & Bengio (2010) uniform: U(-a, a), a = √(6 / (fan_in + fan_out)); TF 1.x's
    BasicLSTMCell holds one kernel of shape (I + H, 4H) on [x, h], so fan_in = I + H, fan_out = G = 4H
    (BasicRNNCell: G = H). dni's ``weight_ih`` and ``weight_hh`` are the two column blocks of that one
    matrix, so both are drawn with the same a. Gate order in dni is i, f, g, o (:mod:`dni.nn.cells`), so
    the forget gate's bias is ``bias[H:2H]``. TF adds its forget_bias as a constant in the cell; here it
    is the trainable bias's starting value, which computes the same function at initialisation.
    """
    check_init(init, next(k for k, c in CELLS.items() if type(model.cell) is c))
    if init == "torch":
        return model
    cell, fc = model.cell, model.fc
    G, H = cell.weight_ih.shape[0], cell.hidden_size
    a = math.sqrt(6.0 / (cell.input_size + H + G))  # fan_in = I + H, fan_out = G
    nn.init.uniform_(cell.weight_ih, -a, a)
    nn.init.uniform_(cell.weight_hh, -a, a)
    nn.init.zeros_(cell.bias)
    if cell.has_cell_state:  # LSTM: i, f, g, o
        cell.bias[H : 2 * H] = 1.0
    if init == "glorot":
        nn.init.xavier_uniform_(fc.weight)  # fan_in H, fan_out C
        nn.init.zeros_(fc.bias)
    else:  # tf_example: tf.Variable(tf.random_normal([num_hidden, num_classes])), likewise the bias
        nn.init.normal_(fc.weight)
        nn.init.normal_(fc.bias)
    return model


def build_model(preset: str | Preset, sigma_train: float = 0.0, *, init: str = "torch", input_scale: float = 1.0,
                train_noise: str = "additive", dropout: float = 0.0) -> SequenceClassifier:
    """A freshly initialised classifier for ``preset`` whose training noise is ``train_noise`` (a
    noise spec, :mod:`dni.noise.kinds`; the paper's additive by default) at strength σtrain.

    ``init``: one of :data:`INITS` (drawn from torch's global generator; ``"torch"`` draws exactly
    what it always did). ``input_scale``, ``dropout``: :class:`SequenceClassifier`'s factor on x and
    dropout probability on h_T in training.
    """
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    model = SequenceClassifier(p.cell, p.input_size, p.hidden_size, p.num_classes, noise=noise_for(train_noise, sigma_train),
                               input_scale=input_scale, dropout=dropout)
    model.preset = p
    return initialise(model, init)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def load_torch_recurrent(cell, module: nn.RNNBase) -> None:
    """Copy the weights of a one-layer ``nn.LSTM`` / ``nn.RNN`` / ``nn.GRU`` into a noisy cell.

    torch keeps two biases per gate (b_ih, b_hh); dni keeps one per product unit, so
    ``b = b_ih + b_hh`` — except the GRU candidate, whose hidden bias stays apart (``bias_hn``).
    """
    cell.weight_ih.copy_(module.weight_ih_l0)
    cell.weight_hh.copy_(module.weight_hh_l0)
    b_ih, b_hh = module.bias_ih_l0, module.bias_hh_l0
    if hasattr(cell, "bias_hn"):
        H = cell.hidden_size
        cell.bias.copy_(torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]))
        cell.bias_hn.copy_(b_hh[2 * H :])
    else:
        cell.bias.copy_(b_ih + b_hh)
