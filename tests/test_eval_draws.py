"""Common random numbers across σval (issue 22, dni.noise.draws): the "shared" draw scheme of evaluate().

Each point's distribution must be the per-point scheme's (two-sample tests, tolerances from the
number of repeats); ε is one per (model, repeat, chunk): shared by every σval, independent across
repeats and chunks; results are bit for bit the same for 1 and 2 threads and do not depend on which
σval or how many repeats run together; result files record the scheme and refuse the other one.
"""

import numpy as np
import pytest
import torch
from conftest import REPO
from scipy import stats

import dni.noise.draws
from dni.data import load_sequences
from dni.errors import InvalidArgumentError, ResultConflictError
from dni.evaluation.evaluate import evaluate, evaluate_into
from dni.nn.models import build_model
from dni.noise.base import ReplayNoise
from dni.noise.catalogue import validate_draws
from dni.noise.draws import DIGITS_PER_CHUNK, SharedGaussian, chunk_seed, draw_chunk
from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.recipe import TrainConfig
from dni.store.results import load_results, merge_results, save_results

CHECKPOINTS = REPO / "results" / "dni_paper_checkpoints"



@pytest.fixture(scope="module")
def digits():
    return load_sequences("subset", "test").take(slice(0, DIGITS_PER_CHUNK + 40))  # a full chunk and a short one


def untrained(preset, sigma_train=0.0, seed=0):
    torch.manual_seed(seed)
    return TrainedModel(build_model(preset, sigma_train), TrainConfig(preset=preset, sigma_train=sigma_train))


@pytest.fixture(scope="module")
def lstm():
    return load_checkpoint(CHECKPOINTS / "lstm28_sigma0.50_seed0.pt")


def test_each_repeat_is_a_reference_pass_on_its_own_chunk_draws(digits):
    """Repeat r at σ equals a one-repeat pass whose noise is σ·ε, ε drawn per chunk c from a generator seeded
    chunk_seed(seed, arch, σtrain, r, c) alone, in the order Model.inference_noise_shapes lists (the GRU draws twice per step)."""
    for preset in ["lstm28", "gru28"]:
        m = untrained(preset, 0.2, seed=3)
        ds = evaluate([m], [0.4, 0.8], repeats=3, data=digits, seed=9, progress=False)
        assert ds.attrs["draws"] == "shared"
        for s in [0.4, 0.8]:
            for r in range(3):
                correct, loss = 0, 0.0
                for c, start in enumerate(range(0, len(digits), DIGITS_PER_CHUNK)):
                    x, y = digits.x[start : start + DIGITS_PER_CHUNK], digits.y[start : start + DIGITS_PER_CHUNK]
                    shapes = m.model.inference_noise_shapes(len(y), x.shape[1], 1)
                    g = torch.Generator().manual_seed(chunk_seed(9, preset, 0.2, r, c))
                    eps = torch.randn(sum(int(np.prod(sh)) for sh in shapes), generator=g).split([int(np.prod(sh)) for sh in shapes])
                    with torch.no_grad():
                        logits = m.model(x, noise=ReplayNoise([s * e.view(sh) for e, sh in zip(eps, shapes)]))
                    correct += (logits.argmax(1) == y).sum().item()
                    loss += torch.nn.functional.cross_entropy(logits.double(), y, reduction="sum").item()
                assert ds.accuracy.sel(sigma_val=s, seed=r).item() == pytest.approx(correct / len(digits), abs=1.5 / len(digits))
                assert ds.loss.sel(sigma_val=s, seed=r).item() == pytest.approx(loss / len(digits), rel=1e-4)


def test_eps_is_drawn_once_per_repeat_and_chunk_and_shared_by_every_sigma(digits, monkeypatch):
    """One draw_chunk per chunk for the whole σval grid (σval = 0 draws nothing), and every σ's noise is scaled from that very ε."""
    calls, used = [], []
    real_draw, real_init = dni.noise.draws.draw_chunk, SharedGaussian.__init__
    monkeypatch.setattr(dni.noise.draws, "draw_chunk", lambda seeds, *a, **k: calls.append(list(seeds)) or real_draw(seeds, *a, **k))
    monkeypatch.setattr(SharedGaussian, "__init__", lambda self, sigma, eps, shapes: used.append((sigma, id(eps))) or real_init(self, sigma, eps, shapes))
    m = untrained("rnn28", 0.0)
    evaluate([m], [0.0], repeats=4, data=digits, progress=False)
    assert calls == []  # σval = 0: no draws
    evaluate([m], [0.0, 0.3, 0.6, 0.9], repeats=4, data=digits, seed=2, progress=False)
    chunks = -(-len(digits) // DIGITS_PER_CHUNK)
    assert calls == [[chunk_seed(2, "rnn28", 0.0, r, c) for r in range(4)] for c in range(chunks)]
    assert [s for s, _ in used] == [0.3, 0.6, 0.9] * chunks
    assert [len({e for _, e in used[3 * c : 3 * c + 3]}) for c in range(chunks)] == [1] * chunks  # one ε per chunk, all σ


def test_eps_is_independent_across_repeats_and_chunks():
    """Distinct seeds per (repeat, chunk), none depending on σval; the draws are N(0, 1) and uncorrelated across
    repeats and chunks (|r| < 5/√n for n draws, a 5-σ bound on the sample correlation of independent normals)."""
    seeds = {(r, c): chunk_seed(0, "lstm28", 0.5, r, c) for r in range(40) for c in range(79)}
    assert len(set(seeds.values())) == len(seeds)
    n = 200_000
    eps = {k: draw_chunk([seeds[k]], n)[0].double() for k in [(0, 0), (1, 0), (0, 1), (39, 78)]}
    for k, e in eps.items():
        assert abs(e.mean().item()) < 5 / n ** 0.5, k
        assert abs(e.std().item() - 1) < 5 * (0.5 / n) ** 0.5, k
    for a, b in [((0, 0), (1, 0)), ((0, 0), (0, 1)), ((1, 0), (0, 1)), ((0, 0), (39, 78))]:
        assert abs(np.corrcoef(eps[a].numpy(), eps[b].numpy())[0, 1]) < 5 / n ** 0.5, (a, b)


def test_draw_chunk_is_the_same_for_any_number_of_threads():
    seeds = [chunk_seed(1, "lstm28", 0.0, r, 0) for r in range(5)]
    one = draw_chunk(seeds, 10_001, threads=1)
    for n in [2, 3, 8]:
        assert torch.equal(draw_chunk(seeds, 10_001, threads=n), one)
    for r, s in enumerate(seeds):
        assert torch.equal(one[r], torch.randn(10_001, generator=torch.Generator().manual_seed(s)))


def test_shared_results_are_bit_for_bit_the_same_with_1_and_2_threads_and_any_grouping(lstm, digits, threads, monkeypatch):
    """Same numbers for 1 and 2 torch (and drawing) threads, whichever other σval are evaluated with a point
    (a resumed run evaluates fewer), however many repeats run and in how many passes."""
    runs = {}
    for n in [1, 2]:
        threads(n)
        runs[n] = evaluate(lstm, [0.0, 0.5, 1.0], repeats=3, data=digits, seed=4, progress=False)
    np.testing.assert_array_equal(runs[1].accuracy.values, runs[2].accuracy.values)
    np.testing.assert_array_equal(runs[1].loss.values, runs[2].loss.values)
    assert (runs[1].accuracy.sel(sigma_val=1.0).std("seed") > 0).all()  # noisy repeats differ: there is noise to reproduce
    threads(1)
    alone = evaluate(lstm, [1.0], repeats=2, data=digits, seed=4, progress=False)
    np.testing.assert_array_equal(alone.loss.values[..., 0, :], runs[1].loss.sel(sigma_val=1.0).values[..., :2])
    monkeypatch.setattr(dni.noise.draws, "REPEATS_PER_PASS", 2)  # repeats 0–1, then 2: the same per repeat
    grouped = evaluate(lstm, [0.5, 1.0], repeats=3, data=digits, seed=4, progress=False)
    np.testing.assert_array_equal(grouped.loss.values, runs[1].loss.sel(sigma_val=[0.5, 1.0]).values)


def test_each_point_is_distributed_as_with_per_point_draws_and_neighbours_differ_less(lstm):
    """At each σval the accuracy over 150 repeats of each scheme passes a two-sample Kolmogorov–Smirnov test
    (p > 0.001) and a Welch test on the means (|t| < 4); the difference between neighbouring σval has a
    smaller variance under shared draws (F test of per-point/shared > its 0.999 quantile)."""
    data = load_sequences("subset", "test").take(slice(0, 64))
    n = 150
    shared = evaluate(lstm, [0.9, 1.0], repeats=n, data=data, seed=11, progress=False, draws="shared").accuracy.values[0, 0]
    point = evaluate(lstm, [0.9, 1.0], repeats=n, data=data, seed=11, progress=False, draws="per-point").accuracy.values[0, 0]
    for i, s in enumerate([0.9, 1.0]):
        assert shared[i].std() > 0 and point[i].std() > 0
        assert stats.ks_2samp(shared[i], point[i]).pvalue > 1e-3, s
        t = (shared[i].mean() - point[i].mean()) / np.sqrt(shared[i].var(ddof=1) / n + point[i].var(ddof=1) / n)
        assert abs(t) < 4, s
    ratio = np.diff(point, axis=0).var(ddof=1) / np.diff(shared, axis=0).var(ddof=1)
    assert ratio > stats.f.ppf(0.999, n - 1, n - 1), ratio


def test_result_files_record_the_scheme_and_refuse_the_other(tmp_path, digits):
    m = untrained("rnn28", 0.0)
    out = tmp_path / "r.nc"
    ds = evaluate_into(out, [m], [0.0, 0.5], 2, data=digits, progress=False, log=lambda _: None)
    assert ds.attrs["draws"] == "shared" and load_results(out).attrs["draws"] == "shared"
    with pytest.raises(ResultConflictError, match="draws shared, not per-point"):
        evaluate_into(out, [m], [1.0], 2, data=digits, progress=False, log=lambda _: None, draws="per-point")
    # a file without the attribute (made before issue 22, like results/dni_paper.nc) is per-point
    old = load_results(out).load()
    del old.attrs["draws"]
    save_results(old, out)
    with pytest.raises(ResultConflictError, match="draws per-point, not shared"):
        evaluate_into(out, [m], [1.0], 2, data=digits, progress=False, log=lambda _: None)
    ext = evaluate_into(out, [m], [1.0], 2, data=digits, progress=False, log=lambda _: None, draws="per-point")
    assert ext.attrs["draws"] == "per-point" and ext.sizes["sigma_val"] == 3
    other = evaluate(m, [0.7], 2, data=digits, progress=False)
    with pytest.raises(InvalidArgumentError, match="different draw schemes"):
        merge_results([ext, other])


def test_bad_scheme_is_a_one_line_error_listing_the_choices(digits):
    with pytest.raises(InvalidArgumentError, match="draws must be one of shared, per-point, got 'fresh'"):
        validate_draws("fresh")
    with pytest.raises(InvalidArgumentError, match="shared, per-point"):
        evaluate(untrained("rnn28"), [0.5], 1, data=digits, progress=False, draws="fresh")


def test_other_noise_kinds_draw_per_point_under_either_scheme(digits):
    """The shared scheme covers the additive kind; another kind gives the same numbers with either scheme."""
    kind = "weight_read"
    m = untrained("rnn28", 0.0)
    a = evaluate(m, [0.5], 2, data=digits, progress=False, eval_noise=kind, draws="shared")
    b = evaluate(m, [0.5], 2, data=digits, progress=False, eval_noise=kind, draws="per-point")
    np.testing.assert_array_equal(a.loss.values, b.loss.values)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_shared_scheme_runs_on_cuda_and_agrees_statistically(lstm):
    data = load_sequences("subset", "test").take(slice(0, 64))
    n = 100
    gpu = evaluate(lstm, [1.0], repeats=n, data=data, seed=3, progress=False, device="cuda").accuracy.values.ravel()
    cpu = evaluate(lstm, [1.0], repeats=n, data=data, seed=3, progress=False).accuracy.values.ravel()
    assert stats.ks_2samp(gpu, cpu).pvalue > 1e-3


def test_cli_and_sweep_pass_the_scheme_through(tmp_path, capsys):
    """`dni evaluate --draws` records the scheme; a second run of the other scheme into the file is refused
    (one line naming the flag); SweepConfig validates its draws."""
    from dni.cli import main
    from dni.experiments.config import SweepConfig

    out = tmp_path / "e.nc"
    ckpt = str(CHECKPOINTS / "rnn28_sigma0.50_seed0.pt")
    assert main(["--quiet", "evaluate", ckpt, "--data", "subset", "--sigma-val", "0.5", "--repeats", "1", "--draws", "per-point",
                 "--out", str(out)]) == 0
    assert load_results(out).attrs["draws"] == "per-point"
    assert main(["--quiet", "evaluate", ckpt, "--data", "subset", "--sigma-val", "1", "--repeats", "1", "--out", str(out)]) != 0
    assert "--draws per-point" in capsys.readouterr().err
    assert SweepConfig(out=tmp_path / "s.nc", draws="per-point").draws == "per-point"
    with pytest.raises(InvalidArgumentError, match="shared, per-point"):
        SweepConfig(out=tmp_path / "s.nc", draws="both")
