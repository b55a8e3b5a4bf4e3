"""S models of one preset stacked along a leading model dim, trained in one pass (model-batched training,
:mod:`dni.training.batched`): the stacked weights, their forward pass and their Adam step.
"""

from __future__ import annotations

import torch

from dni.nn.cells import CELLS
from dni.nn.fused import stacked_last_hidden
from dni.nn.models import SequenceClassifier, build_model
from dni.nn.paths import FUSABLE

BATCHABLE_CELLS = tuple(sorted(k for k, cell in CELLS.items() if cell in FUSABLE))  # "lstm", "rnn": the cells with a fused path


class StackedClassifier(torch.nn.Module):
    """S classifiers of one preset, weights stacked: ``weight_hh`` (S, G, H), ``fc_weight`` (S, C, H), ...

    ``forward(x (B, T, I), noise)`` → logits (S, B, C): every model reads the same batch.
    """

    def __init__(self, models: list[SequenceClassifier], sigmas):
        super().__init__()
        cell = models[0].cell
        self.kind = models[0].preset.cell
        self.hidden_size = cell.hidden_size
        stack = lambda get: torch.nn.Parameter(torch.stack([get(m).detach().clone() for m in models]))  # noqa: E731
        self.weight_ih = stack(lambda m: m.cell.weight_ih)  # (S, G, I)
        self.weight_hh = stack(lambda m: m.cell.weight_hh)  # (S, G, H)
        self.bias = stack(lambda m: m.cell.bias)  # (S, G)
        self.fc_weight = stack(lambda m: m.fc.weight)  # (S, C, H)
        self.fc_bias = stack(lambda m: m.fc.bias)  # (S, C)
        self.register_buffer("sigmas", torch.tensor(sigmas, dtype=self.weight_ih.dtype))  # (S,)

    def noise_shapes(self, batch: int, steps: int):
        S, G = self.weight_ih.shape[:2]
        return [(S, steps, batch, G), (S, batch, self.fc_weight.shape[1])]

    def forward(self, x, noise):
        """``noise``: a :class:`PrefetchedGaussian` with per-model σ, or any model adding unit-free z.
        The fused path (:attr:`dni.nn.paths.Path.FUSED`, with the model-stack dim), as model-batched training checks."""
        h = stacked_last_hidden(self.kind, x, self.weight_ih, self.bias, self.weight_hh, noise)  # (S, B, H)
        logits = torch.baddbmm(self.fc_bias.unsqueeze(1), h, self.fc_weight.transpose(1, 2))  # (S, B, C)
        return noise.add(logits)

    def clip_grad_norm_(self, max_norm: float) -> None:
        """``torch.nn.utils.clip_grad_norm_`` applied to each model separately."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        sq = sum(g.pow(2).reshape(g.shape[0], -1).sum(1) for g in grads)  # (S,)
        scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))

    def adam_step(self, optimiser: torch.optim.Optimizer, scale: torch.Tensor | None) -> None:
        """``optimiser.step()`` with model s's update scaled by ``scale[s]`` (its own learning rate)."""
        if scale is None:
            optimiser.step()
            return
        params = list(self.parameters())
        before = [p.detach().clone() for p in params]
        optimiser.step()
        with torch.no_grad():
            for p, b in zip(params, before):  # p = b + scale·(p − b)
                p.sub_(b).mul_(scale.view(-1, *[1] * (p.dim() - 1))).add_(b)

    def unstack(self, configs: list) -> list[SequenceClassifier]:
        return [self.unstack_one(s, config) for s, config in enumerate(configs)]

    def unstack_one(self, s: int, config) -> SequenceClassifier:
        """Model ``s`` as a plain :class:`SequenceClassifier` (a copy of its weights)."""
        m = build_model(config.preset, config.sigma_train)
        with torch.no_grad():
            m.cell.weight_ih.copy_(self.weight_ih[s])
            m.cell.weight_hh.copy_(self.weight_hh[s])
            m.cell.bias.copy_(self.bias[s])
            m.fc.weight.copy_(self.fc_weight[s])
            m.fc.bias.copy_(self.fc_bias[s])
        return m.eval()
