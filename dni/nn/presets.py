"""The paper's named architectures (Tables I–III) and the parameter initialisations, torch-free: what the
command line offers is known without loading torch. The models themselves: :mod:`dni.nn.models`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dni.errors import InvalidArgumentError, UnknownPresetError


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


#: The paper's networks (Tables I–III) and dni's GRU by name: ``lstm28``, ``lstm_stroke50``, ``rnn28``, ``gru28``
#: (:func:`get_preset` looks one up with a clear error).
#:
#: :meta hide-value:
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


INITS = {
    "torch": "every weight and bias U(-1/√H, 1/√H) like torch.nn's LSTM/RNN cells, the FC layer like nn.Linear (dni's default)",
    "glorot": "TF 1.x era: gate kernel W on [h, x] Glorot-uniform U(±√(6/(fan_in+fan_out))) over the whole (H+I)×G matrix "
              "as BasicLSTMCell/BasicRNNCell's default glorot_uniform initializer, biases 0 but the LSTM forget gate's 1.0 "
              "(BasicLSTMCell's forget_bias=1.0); FC layer Glorot-uniform, bias 0 (tf.layers.dense)",
    "tf_example": "'glorot' for the cell, but the FC weights and biases N(0, 1) (tf.random_normal), as TensorFlow-Examples' "
                  "recurrent_network.py (A. Damien, 2017), a common template of LSTM-28 on MNIST rows",
}
"""Parameter initialisations (``dni train --init``), each citing what it reproduces."""


def check_init(init: str, cell: str) -> str:
    """``init`` if :data:`INITS` has it and it fits the ``cell`` kind, else :class:`InvalidArgumentError`."""
    if init not in INITS:
        raise InvalidArgumentError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    if init != "torch" and cell not in ("lstm", "rnn"):
        raise InvalidArgumentError(f"init {init!r} is defined for lstm and rnn cells (TF 1.x BasicLSTMCell/BasicRNNCell), "
                                   f"not {cell}; use init 'torch'")
    return init
