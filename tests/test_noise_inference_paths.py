"""Inference under the noise kinds of dni.noise.kinds takes a fast path (issue 19, speed): the input part
of every product precomputed for all steps with the noise applied to the summed product
(dni.nn.recurrence._unroll_split), and the ε drawn ahead in a thread (NoiseSession.prefetch). Both must
give what the readable cell gives with the same generators: the split path to float64 rounding,
the prefetched draws bit for bit."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from dni.data import load_sequences
from dni.evaluation.evaluate import noisy_accuracy
from dni.nn import recurrence
from dni.nn.models import build_model
from dni.noise.base import NOISELESS
from dni.noise.kinds import KINDS, WeightRead
from dni.noise.session import NoiseSession
from dni.noise.spec import NoiseSpec, parse_noise

SPECS = ["output_relative", "weight_read", "programming", "dac(bits=6,bound=1)", "adc(bits=6,bound=2)",
         "programming+weight_read+adc(bits=8,bound=10)", "additive+output_relative", "dac(bits=5,bound=0.5)+weight_read",
         "pcm(t=3600)+weight_read"]


EXAMPLE = {"additive": "additive", "output_relative": "output_relative", "weight_read": "weight_read", "programming": "programming",
           "pcm": "pcm(t=3600)", "dac": "dac(bits=4,bound=0.5)", "adc": "adc(bits=5,bound=2)"}
"""One spec per registered kind: a kind added to dni.noise.kinds must get one here, and so is checked on the split path."""


def generators(repeats, seed=0):
    return [torch.Generator().manual_seed(seed + r) for r in range(repeats)]


@pytest.mark.parametrize("preset", ["lstm28", "rnn28"])
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("repeats", [1, 3])
def test_split_products_equal_the_readable_cell_in_float64(preset, spec, repeats):
    torch.manual_seed(0)
    model = build_model(preset).double().eval()
    x = torch.rand(5, 28, 28, dtype=torch.float64)  # (B, T, I)
    noise = parse_noise(spec).at(0.2)
    runs = {}
    for name, unroll in [("readable", recurrence._unroll_cell), ("split", recurrence.unroll)]:
        gens = generators(repeats)
        session = NoiseSession(noise, gens, repeats)
        with torch.no_grad():
            runs[name] = unroll(model.cell, x, session, gens, repeats, trace=True)
    (h_ref, tr_ref), (h, tr) = runs["readable"], runs["split"]
    with torch.no_grad():
        noiseless = recurrence.unroll(model.cell, x, NOISELESS, None, 1, trace=True)[1]
    assert (tr_ref.preactivation[: len(x)] - noiseless.preactivation).abs().max() > 1e-3  # the noise is there
    torch.testing.assert_close(tr.preactivation, tr_ref.preactivation, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-12)
    if model.cell.has_cell_state:
        torch.testing.assert_close(tr.c, tr_ref.c, rtol=0, atol=1e-12)


def test_every_registered_kind_has_an_example_and_splits_like_the_readable_cell():
    assert set(EXAMPLE) == set(KINDS), "give the new kind an example spec in EXAMPLE"
    torch.manual_seed(0)
    model = build_model("lstm28").double().eval()
    x = torch.rand(4, 28, 28, dtype=torch.float64)
    for name, spec in EXAMPLE.items():
        session = lambda: NoiseSession(parse_noise(spec).at(0.3), generators(2), 2)  # noqa: E731
        if not session().splits_products:
            continue
        with torch.no_grad():
            ref = recurrence._unroll_cell(model.cell, x, session(), None, 2, False)
            got = recurrence.unroll(model.cell, x, session(), None, 2)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12, msg=f"{name}: the split path differs from the readable cell")


def test_evaluation_takes_the_split_path_and_training_the_readable_cell(monkeypatch):
    model = build_model("lstm28").eval()
    x = torch.rand(4, 28, 28)
    calls = []
    readable = recurrence._unroll_cell
    monkeypatch.setattr(recurrence, "_unroll_cell", lambda *a, **k: calls.append(1) or readable(*a, **k))
    with torch.no_grad():
        model(x, noise=parse_noise("weight_read").at(0.1), generator=torch.Generator().manual_seed(0))
    assert calls == []
    model(x, noise=parse_noise("weight_read").at(0.1), generator=torch.Generator().manual_seed(0)).sum().backward()
    assert calls == [1]


@dataclass(frozen=True)
class _RowNormalisedRead(WeightRead):
    """A made-up kind whose output hook reads the whole input (not only its statistics): it may not split."""

    name: ClassVar[str] = "row_normalised_read"
    splits: ClassVar[bool] = False

    def output(self, y, stats, draw):
        return y + self.sigma * stats.x.std(-1, keepdim=True) * draw(y.shape)


def test_a_kind_that_does_not_split_takes_the_readable_cell(monkeypatch):
    model = build_model("rnn28").eval()
    x = torch.rand(4, 28, 28)
    session = NoiseSession(NoiseSpec((_RowNormalisedRead(sigma=0.1),)), torch.Generator().manual_seed(0))
    assert not session.splits_products
    assert NoiseSession(parse_noise("weight_read+adc(bits=8,bound=4)").at(0.1)).splits_products
    calls = []
    readable = recurrence._unroll_cell
    monkeypatch.setattr(recurrence, "_unroll_cell", lambda *a, **k: calls.append(1) or readable(*a, **k))
    with torch.no_grad():
        model(x, noise=session, generator=session.generator)
    assert calls == [1]


@pytest.mark.parametrize("preset", ["lstm28", "gru28"])
@pytest.mark.parametrize("spec", ["weight_read", "programming", "programming+weight_read+adc(bits=8,bound=10)",
                                  "additive+output_relative", "pcm(t=86400)+output_relative"])
def test_prefetched_draws_give_the_inline_result_bit_for_bit(preset, spec, monkeypatch):
    """300 digits = two passes of 256 and 44: the chips drawn once, in the first pass, between its ε."""
    torch.manual_seed(0)
    model = build_model(preset).eval()
    data = load_sequences("subset", "test").take(slice(0, 300))
    prefetched = []
    original = NoiseSession.prefetch
    monkeypatch.setattr(NoiseSession, "prefetch", lambda self, *a, **k: prefetched.append(1) or original(self, *a, **k))
    results = {}
    for choice in ("0", "1"):
        monkeypatch.setenv("DNI_PREFETCH", choice)
        results[choice] = noisy_accuracy(model, data, 0.3, generators(4), 4, eval_noise=spec)
    assert prefetched == [1]  # once, with DNI_PREFETCH=1
    for inline, ahead in zip(results["0"], results["1"]):
        np.testing.assert_array_equal(inline, ahead)
    assert len(set(results["0"][1])) == 4  # four repeats, four different noisy losses


def test_prefetching_in_the_wrong_order_is_refused():
    model = build_model("lstm28").eval()
    session = NoiseSession(parse_noise("weight_read").at(0.1), generators(2), 2)
    session.prefetch(model.inference_products(batch=3, steps=28, repeats=2)[::-1])  # FC first: not what the pass asks
    try:
        with pytest.raises(RuntimeError, match=r"prefetched noise of shape \(6, 10\) where \(6, 512\) was asked for"):
            with torch.no_grad():
                model(torch.rand(3, 28, 28), noise=session, generator=session.generator, repeats=2)
    finally:
        session.close()


def test_prefetched_draws_follow_the_model_dtype(monkeypatch):
    model = build_model("rnn28").double().eval()
    data = load_sequences("subset", "test").take(slice(0, 40))
    data.x = data.x.double()
    runs = []
    for choice in ("0", "1"):
        monkeypatch.setenv("DNI_PREFETCH", choice)
        runs.append(noisy_accuracy(model, data, 0.2, generators(2), 2, eval_noise="weight_read"))
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_prefetch_list_too_short_or_too_long_is_an_error_not_a_hang():
    model = build_model("rnn28").eval()
    x = torch.rand(3, 28, 28)
    products = model.inference_products(batch=3, steps=28, repeats=1)
    short = NoiseSession(parse_noise("weight_read").at(0.1), generators(1), 1)
    short.prefetch(products[:-1])  # no FC draw listed
    with pytest.raises(RuntimeError, match=r"prefetched noise ran out: a draw of shape \(3, 10\) was asked for after the last listed one"):
        with torch.no_grad():
            model(x, noise=short, generator=short.generator)
    short.close()
    long = NoiseSession(parse_noise("weight_read").at(0.1), generators(1), 1)
    long.prefetch(products + products[-1:])
    with torch.no_grad():
        model(x, noise=long, generator=long.generator)
    with pytest.raises(RuntimeError, match=r"prefetched noise left unused: a draw of shape \(3, 10\) was listed but never asked for"):
        long.check_used_up()
    long.close()


def test_programming_after_another_weight_kind_scales_each_chip_by_its_own_max():
    W = torch.randn(16, 12, dtype=torch.float64)
    together = NoiseSession(parse_noise("pcm(t=60)+programming(sigma=0.1)"), generators(3), 3).chip("cell", W)
    alone = NoiseSession(parse_noise("pcm(t=60)+programming(sigma=0.1)"), generators(3)[1:2], 1).chip("cell", W)
    torch.testing.assert_close(alone[0], together[1], rtol=0, atol=0)  # repeat 1's chip does not depend on repeats 0 and 2
