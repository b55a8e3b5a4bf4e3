"""Sequence classifiers and the paper's named presets (Tables I–III).

A classifier reads a sequence x (B, T, I) with a noisy recurrent cell, takes the last output
state h_T (B, H) and maps it through the noisy fully connected layer to logits (B, 10); the
softmax belongs to the loss. Noise defaults to the model's σtrain; evaluation passes σval.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import fused
from .cells import CELLS, NoisyGRUCell, NoisyLinear, NoisyLSTMCell, NoisyRNNCell
from .errors import UnknownPresetError
from .noise import as_noise_model
from .recurrence import Trace, unroll


@dataclass(frozen=True)
class Preset:
    """A named architecture. ``paper_parameters`` is the count the paper's table states."""

    name: str
    cell: str  # "lstm" | "rnn" | "gru"
    input_size: int
    steps: int
    hidden_size: int
    data: str  # "rows" (image rows, (B, 28, 28)) | "strokes" (pen strokes, (B, 50, 2))
    num_classes: int = 10
    paper_parameters: int | None = None
    source: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("lstm28", "lstm", 28, 28, 128, "rows", paper_parameters=81_674, source="Table I"),
        Preset("lstm_stroke50", "lstm", 2, 50, 128, "strokes", paper_parameters=68_362, source="Table II"),
        Preset("rnn28", "rnn", 28, 28, 128, "rows", paper_parameters=21_386, source="Table III"),
        Preset("gru28", "gru", 28, 28, 128, "rows", source="dni extension (GRU on image rows)"),
    ]
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or :class:`UnknownPresetError` listing those that exist."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UnknownPresetError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


class SequenceClassifier(nn.Module):
    """Noisy recurrent cell over T steps → last h → noisy FC → logits (paper Fig. 1, §III).

    ``model(x)`` with x (B, T, I) returns logits (B, C). Keyword ``noise`` (a σ or a
    :class:`dni.noise.NoiseModel`) overrides the training noise for this call, ``generator`` is
    the noise generator (or one per repeat), ``repeats=R`` returns (R·B, C): R independent noisy
    passes of the batch, repeat r in rows r·B … (r+1)·B - 1.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int = 10, noise=None):
        super().__init__()
        self.noise = as_noise_model(noise)
        self.cell = CELLS[cell](input_size, hidden_size)
        self.fc = NoisyLinear(hidden_size, num_classes)
        self.preset: Preset | None = None

    def _noise(self, noise):
        return self.noise if noise is None else as_noise_model(noise)

    def forward(self, x, *, noise=None, generator=None, repeats: int = 1):
        noise = self._noise(noise)
        if self.uses_fused_training(repeats):
            h_last = _FUSED[type(self.cell)](self.cell, x, noise, generator)  # (B, H)
        else:
            h_last = unroll(self.cell, x, noise, generator, repeats)  # (R·B, H)
        return self.fc(h_last, noise=noise, generator=generator)  # (R·B, C)

    def uses_fused_training(self, repeats: int = 1) -> bool:
        """True when ``forward`` takes the fused BPTT path (:mod:`dni.fused`): LSTM/RNN with grad on.

        That path draws each batch's cell noise as one (T, B, G) block, then the FC noise (B, C).
        Inference (no grad) takes :func:`dni.recurrence.unroll`, drawing per step.
        """
        return torch.is_grad_enabled() and repeats == 1 and type(self.cell) in _FUSED

    def inference_noise_shapes(self, batch: int, steps: int, repeats: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the noise draws of one :func:`dni.recurrence.unroll` pass (R repeats of B sequences), in order."""
        G, H, rows = self.cell.weight_ih.shape[0], self.cell.hidden_size, repeats * batch
        step_input = (repeats, batch, G) if repeats > 1 else (batch, G)
        per_step = [step_input, (rows, H)] if isinstance(self.cell, NoisyGRUCell) else [step_input]
        return per_step * steps + [(rows, self.fc.out_features)]

    def training_noise_shapes(self, batch: int, steps: int) -> list[tuple[int, ...]]:
        """Shapes of the noise draws of one fused training forward pass, in order."""
        return [(steps, batch, self.cell.weight_ih.shape[0]), (batch, self.fc.out_features)]

    def forward_reference(self, x, *, noise=None, generator=None):
        """Same as ``forward`` (repeats = 1) but stepping the readable cell; for tests."""
        noise = self._noise(noise)
        state = None
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state, noise=noise, generator=generator)
        h_last = state[0] if self.cell.has_cell_state else state
        return self.fc(h_last, noise=noise, generator=generator)

    @torch.no_grad()
    def trace(self, x, *, noise=None, generator=None) -> tuple[torch.Tensor, Trace]:
        """Logits (B, C) and the per-step :class:`Trace` (h, c, pre-activations)."""
        noise = self._noise(noise)
        h_last, tr = unroll(self.cell, x, noise, generator, trace=True)
        return self.fc(h_last, noise=noise, generator=generator), tr

    def weights(self) -> torch.Tensor:
        """All trainable values (weights and biases, paper §I) as one flat tensor, for Figs 5, 9."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])


_FUSED = {NoisyLSTMCell: fused.lstm_last_hidden, NoisyRNNCell: fused.rnn_last_hidden}


def build_model(preset: str | Preset, sigma_train: float = 0.0) -> SequenceClassifier:
    """A freshly initialised classifier for ``preset`` whose training noise is σtrain."""
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    model = SequenceClassifier(p.cell, p.input_size, p.hidden_size, p.num_classes, noise=sigma_train)
    model.preset = p
    return model


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
