"""Data and a plain training loop for the bring-your-own-model examples (``notebooks/your_model.ipynb``).

* :func:`adding_problem` — the adding problem of Hochreiter & Schmidhuber (1997, "Long short-term memory",
  experiment 4): a sequence of T pairs (value, marker), values U(0, 1), exactly two markers set to 1 (one in
  the first half, one anywhere after it); the target is the sum of the two marked values. Predicting the
  mean (1.0) gives an MSE of 1/6 ≈ 0.167; a network that solves it goes well below.
* :func:`mnist_rows` — MNIST digits as 28 rows of 28 pixels (the presets' data), as DataLoaders.
* :func:`fit` — an ordinary torch training loop (Adam, gradient clipping). A model made with
  :func:`dni.noisify` injects its train noise in it: that is Deep Noise Injection training, nothing else changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dni.errors import InvalidArgumentError
from dni.util.progress import tqdm


def adding_problem(n: int, steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` adding-problem sequences of length ``steps``: x (n, steps, 2) [value, marker], y (n,) the marked sum."""
    if steps < 2:
        raise InvalidArgumentError(f"the adding problem needs at least 2 steps, got {steps}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(n, steps, generator=gen)  # (n, T)
    half = max(steps // 2, 1)
    first = torch.randint(0, half, (n,), generator=gen)  # (n,)
    second = first + 1 + (torch.rand(n, generator=gen) * (steps - 1 - first)).long()  # (n,), in (first, T)
    markers = torch.zeros(n, steps)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]  # (n,)
    return torch.stack([values, markers], dim=2), y


def adding_loaders(steps: int, train: int, test: int, batch_size: int = 64, seed: int = 0):
    """(train loader (shuffled), test loader) of the adding problem; the two sets from different seeds."""
    x, y = adding_problem(train, steps, seed)
    xt, yt = adding_problem(test, steps, seed + 1)
    gen = torch.Generator().manual_seed(seed)
    return (DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen),
            DataLoader(TensorDataset(xt, yt), batch_size=256))


def mnist_rows(data: str = "subset", train: int | None = None, test: int | None = None, batch_size: int = 64, seed: int = 0):
    """(train loader (shuffled), test loader) of MNIST as rows: x (B, 28, 28) in [0, 1], y (B,) digit labels.

    ``data``: "subset" (shipped in the package) or "mnist" (:mod:`dni.data`); ``train``/``test``: first so many digits.
    The test loader has :data:`dni.evaluation.evaluate.DIGITS_PER_PASS` digits per batch, as ``dni evaluate`` cuts them.
    """
    from dni.data import load_sequences
    from dni.evaluation.evaluate import DIGITS_PER_PASS

    tr, te = load_sequences(data, "train"), load_sequences(data, "test")
    tr, te = tr.take(slice(0, train)), te.take(slice(0, test))
    gen = torch.Generator().manual_seed(seed)
    return (DataLoader(TensorDataset(tr.x, tr.y), batch_size=batch_size, shuffle=True, generator=gen),
            DataLoader(TensorDataset(te.x, te.y), batch_size=DIGITS_PER_PASS))


LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def fit(model: torch.nn.Module, loader, loss="cross_entropy", epochs: int = 1, lr: float = 2e-3, clip: float | None = 5.0,
        seed: int = 0, progress: bool = True) -> list[float]:
    """Train ``model`` in place with Adam for ``epochs`` over ``loader``'s (x, y); returns the mean loss per epoch.

    ``loss``: "cross_entropy", "mse" or a function (output, y) → scalar. ``seed`` seeds torch's global generator
    (the train noise of a noisified model and dropout draw from it). The model is left in ``eval()`` mode.
    """
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for _ in tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress):
        total, n = 0.0, 0
        for x, y in loader:
            value = loss_fn(model(x), y)
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimiser.step()
            total, n = total + float(value.detach()) * len(y), n + len(y)
        history.append(total / max(n, 1))
    model.eval()
    return history
