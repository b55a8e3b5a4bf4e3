"""Noisy recurrent cells and the noisy linear layer — the readable reference implementation.

Every matrix–vector product of the network is followed by analog noise (paper eq. 2):

    f(x) = g(W·x + b + z),   z drawn by a :class:`dni.noise.base.NoiseModel`.

The cells here compute one time step the way the paper writes it, with the concatenated input
``[h_{t-1}, x_t]``; :mod:`dni.nn.recurrence` unrolls whole sequences faster with the same
arithmetic and the same order of noise draws, and the tests compare the two.

Parameter layout follows ``torch.nn`` (gate order of ``nn.LSTM``: i, f, g, o; of ``nn.GRU``:
r, z, n) but with **one bias per gate unit**, as the paper's parameter counts require
(Tables I–III): ``W·[h, x] + b`` is one product with one bias. Loading an ``nn.LSTM`` therefore
maps ``b = b_ih + b_hh`` (see :func:`dni.nn.models.load_torch_recurrent`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dni.noise.base import NoiseModel
from dni.noise.session import as_noise_model, commutes
from dni.noise.spec import NoiseSpec


class _NoisyModule(nn.Module):
    """Holds the default noise model (σtrain); a call may override it (σval)."""

    def __init__(self, noise=None):
        super().__init__()
        self.noise = noise if isinstance(noise, NoiseSpec) else as_noise_model(noise)  # a spec: a fresh session per call

    def _noise(self, noise, generator=None) -> NoiseModel:
        """The noise of this call; a noise spec becomes a session of its own (see :class:`dni.noise.session.NoiseSession`)."""
        return as_noise_model(self.noise if noise is None else noise, generator)


class NoisyLinear(_NoisyModule):
    """``y = W·x + b + z`` — the noisy fully connected layer before the softmax (paper §III-A).

    Shapes: x (..., in_features) → y (..., out_features). Initialised like ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, noise=None):
        super().__init__(noise)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x, *, noise=None, generator=None):
        return self._noise(noise, generator).product("fc", self.weight, self.bias, x, generator)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, noise={self.noise}"


class _NoisyRecurrentCell(_NoisyModule):
    """Common parameters of the cells: ``weight_ih`` (G, I), ``weight_hh`` (G, H), ``bias`` (G,).

    G = ``gates * hidden_size``. All are initialised U(-1/√H, 1/√H) like ``torch.nn`` cells.
    """

    gates: int = 1
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, noise=None):
        super().__init__(noise)
        self.input_size, self.hidden_size = input_size, hidden_size
        G = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.bias = nn.Parameter(torch.empty(G))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch: int, like: torch.Tensor):
        zeros = like.new_zeros(batch, self.hidden_size)
        return (zeros, zeros.clone()) if self.has_cell_state else zeros

    def weight_on_concat(self) -> torch.Tensor:
        """The paper's single matrix W acting on ``[h, x]``: (G, H + I)."""
        return torch.cat([self.weight_hh, self.weight_ih], dim=1)

    def extra_repr(self):
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, noise={self.noise}"


class NoisyRNNCell(_NoisyRecurrentCell):
    """Vanilla RNN step (paper §III-C, Table III): ``h_t = tanh(W·[h_{t-1}, x_t] + b + z)``.

    ``cell(x, h) -> h``; x (B, I), h (B, H). One noise draw of size H per step.
    """

    gates = 1

    def forward(self, x, h=None, *, noise=None, generator=None):
        if h is None:
            h = self.initial_state(x.shape[0], x)
        pre = self._noise(noise, generator).product("cell", self.weight_on_concat(), self.bias, torch.cat([h, x], dim=1), generator)  # (B, H)
        return torch.tanh(pre)


class NoisyLSTMCell(_NoisyRecurrentCell):
    """LSTM step with Deep Noise Injection (paper §III-A, Fig. 1, Table I).

    The four gate pre-activations are the four matrix–vector products ``W·[h_{t-1}, x_t] + b``
    (4H values, order i, f, g, o); each element gets its own noise draw (one z of size 4H per
    step). The cell state is updated element-wise only and gets no noise::

        i, f, g, o = split(W·[h, x] + b + z)
        c' = σ(f)·c + σ(i)·tanh(g)
        h' = σ(o)·tanh(c')

    ``cell(x, (h, c)) -> (h', c')`` like ``nn.LSTMCell``; x (B, I), h and c (B, H).
    """

    gates = 4
    has_cell_state = True

    def forward(self, x, state=None, *, noise=None, generator=None):
        h, c = self.initial_state(x.shape[0], x) if state is None else state
        pre = self._noise(noise, generator).product("cell", self.weight_on_concat(), self.bias, torch.cat([h, x], dim=1), generator)  # (B, 4H)
        i, f, g, o = pre.chunk(4, dim=1)  # each (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class NoisyGRUCell(_NoisyRecurrentCell):
    """GRU step with noise after each matrix–vector product (not in the paper; dni's extension).

    In a GRU the reset gate r multiplies ``W_hn·h`` before it is added to ``W_in·x``, so the
    candidate takes two separate products and each gets its own noise::

        r, z = σ(W_{r,z}·[h, x] + b_{r,z} + z_1[:2H])   # two products on [h, x]
        a    = W_in·x + b_in + z_1[2H:]                  # input part of the candidate
        u    = W_hn·h + b_hn + z_2                       # hidden part, gated by r
        n    = tanh(a + r·u);    h' = (1 - z)·n + z·h

    Noise per step: z_1 of size 3H then z_2 of size H (that order). Parameters: ``weight_ih``
    (3H, I), ``weight_hh`` (3H, H), ``bias`` (3H: b_r, b_z, b_in) and ``bias_hn`` (H) — one bias
    per product unit, matching ``nn.GRU`` with ``b_r = b_ir + b_hr``, ``b_z = b_iz + b_hz``.
    ``cell(x, h) -> h``. As products of an analog tile (:mod:`dni.noise.kinds`): product 1 is
    ``W_1·[h, x]`` with ``W_1 = [[W_hr, W_ir], [W_hz, W_iz], [0, W_in]]`` (3H × (H + I),
    :meth:`gate_weight`), product 2 is ``W_hn·h``.
    """

    gates = 3

    def reset_parameters(self):
        if "bias_hn" not in self._parameters:  # first call, from the base class __init__
            self.bias_hn = nn.Parameter(torch.empty(self.hidden_size))
        super().reset_parameters()

    def gate_weight(self) -> torch.Tensor:
        """``W_1`` of product 1 on ``[h, x]``: (3H, H + I), the candidate's input part with a zero h block."""
        H = self.hidden_size
        top = self.weight_on_concat()[: 2 * H]  # (2H, H + I)
        bottom = torch.cat([self.weight_hh.new_zeros(H, H), self.weight_ih[2 * H :]], dim=1)  # (H, H + I)
        return torch.cat([top, bottom], dim=0)

    def forward(self, x, h=None, *, noise=None, generator=None):
        if h is None:
            h = self.initial_state(x.shape[0], x)
        H = self.hidden_size
        noise = self._noise(noise, generator)
        if commutes(noise):  # the paper's additive noise: the two parts of product 1 computed apart (same values)
            rz = F.linear(torch.cat([h, x], dim=1), self.weight_on_concat()[: 2 * H], self.bias[: 2 * H])
            a = F.linear(x, self.weight_ih[2 * H :], self.bias[2 * H :])
            rz, a = noise.add(torch.cat([rz, a], dim=1), generator).split([2 * H, H], dim=1)
        else:
            rz, a = noise.product("cell", self.gate_weight(), self.bias, torch.cat([h, x], dim=1), generator).split([2 * H, H], dim=1)
        u = noise.product("cell_hn", self.weight_hh[2 * H :], self.bias_hn, h, generator)  # (B, H)
        r, z = torch.sigmoid(rz).chunk(2, dim=1)
        n = torch.tanh(a + r * u)
        return (1 - z) * n + z * h


CELLS = {"rnn": NoisyRNNCell, "lstm": NoisyLSTMCell, "gru": NoisyGRUCell}
