"""The PCM kind of dni.noise.kinds (issue 19, stretch): aihwkit's PCMLikeNoiseModel and global drift
compensation, checked against the same equations written out in numpy with the same ε; per-chip draws;
drift over t; the spec's settings and errors."""

import numpy as np
import pytest
import torch
from conftest import REPO

from dni.errors import InvalidNoiseSpecError
from dni.evaluation.evaluate import evaluate
from dni.noise.kinds import PCM
from dni.noise.session import NoiseSession
from dni.noise.spec import parse_noise
from dni.store.checkpoints import load_checkpoint


def aihwkit_pcm_numpy(W, eps, t, compensation=True):
    """aihwkit 0.9 PCMLikeNoiseModel (single-pair converter, g_max 25 µS, t0 20 s, t_read 250 ns) + GlobalDriftCompensation,
    in numpy. ``eps``: six standard-normal arrays shaped like W, in dni's order (prog, drift of g+; prog, drift of g-; read g+, g-)."""
    g_max, t0, t_read = 25.0, 20.0, 250e-9
    scale = g_max / np.abs(W).max()
    gp, gm = np.clip(W * scale, 0, g_max), np.clip(-W * scale, 0, g_max)
    progs, nus = [], []
    for g, e_prog, e_nu in ((gp, eps[0], eps[1]), (gm, eps[2], eps[3])):
        sig_prog = 0.26348 + 1.9650 * (g / g_max) - 1.1731 * (g / g_max) ** 2
        progs.append(np.maximum(g + sig_prog * e_prog, 0))
        rel = np.maximum(np.abs(g / g_max), 1e-7)
        mu = np.clip(-0.0155 * np.log(rel) + 0.0244, 0.049, 0.1)
        sd = np.clip(-0.0125 * np.log(rel) - 0.0059, 0.008, 0.045)
        nus.append(np.abs(mu + sd * e_nu))
    tt = t + t0
    finals = []
    for g_prog, nu, e_read in zip(progs, nus, (eps[4], eps[5])):
        g_drift = g_prog * (tt / t0) ** (-nu) if tt > t0 else g_prog
        q_s = np.minimum(0.0088 / np.maximum((np.abs(g_prog) / g_max) ** 0.65, 1e-3), 0.2)
        sig_noise = q_s * np.sqrt(np.log((tt + t_read) / (2 * t_read)))
        finals.append(np.maximum(g_drift + np.abs(g_drift) * sig_noise * e_read, 0))
    W_t = (finals[0] - finals[1]) / scale
    if compensation:
        W_p = (progs[0] - progs[1]) / scale
        W_t = W_t * np.abs(W_p).mean() / np.abs(W_t).mean()
    return W_t


@pytest.mark.parametrize("t", [0.0, 1.0, 3600.0, 1e7])
@pytest.mark.parametrize("compensation", [1, 0])
def test_pcm_weights_follow_aihwkit_equations(t, compensation):
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.3, (64, 40))
    W[0, 0] = 0.0  # a zero weight: both devices at 0 conductance
    eps = [rng.standard_normal(W.shape) for _ in range(6)]
    draws = iter(torch.from_numpy(e) for e in eps)
    kind = PCM(t=t, compensation=compensation)
    got = kind.weight(torch.from_numpy(W), lambda shape: next(draws)).numpy()
    np.testing.assert_allclose(got, aihwkit_pcm_numpy(W, eps, t, bool(compensation)), rtol=1e-10, atol=1e-12)
    assert next(draws, None) is None  # exactly six draws


def test_drift_shrinks_weights_and_compensation_restores_their_scale():
    torch.manual_seed(0)
    W = torch.randn(512, 156, dtype=torch.float64) * 0.2  # an lstm28 cell's shape
    scale = {}
    for t in (1.0, 1e3, 1e6):
        for comp in (0, 1):
            chip = NoiseSession(parse_noise(f"pcm(t={t:g},compensation={comp})"), torch.Generator().manual_seed(1)).chip("cell", W)
            scale[t, comp] = (chip.abs().mean() / W.abs().mean()).item()
    # uncompensated: the devices' drift exponents ν ≈ 0.05–0.1 shrink |W| as ((t + 20)/20)^(−ν)
    assert scale[1.0, 0] > scale[1e3, 0] > scale[1e6, 0]
    assert (1e6 / 20) ** -0.1 < scale[1e6, 0] / scale[1.0, 0] < (1e6 / 20) ** -0.049
    # compensated: the mean magnitude read right after programming, the same chip at every t (same ε)
    assert scale[1.0, 1] == pytest.approx(scale[1e3, 1], rel=1e-12) == pytest.approx(scale[1e6, 1], rel=1e-12)


def test_each_repeat_is_its_own_chip_fixed_for_the_evaluation():
    W = torch.randn(32, 20, dtype=torch.float64) * 0.3
    gens = [torch.Generator().manual_seed(r) for r in range(3)]
    session = NoiseSession(parse_noise("pcm(t=3600)"), gens, 3)
    chips = session.chip("cell", W)  # (3, 32, 20)
    assert chips.shape == (3, 32, 20)
    assert torch.equal(session.chip("cell", W), chips)  # drawn once
    assert not torch.equal(chips[0], chips[1])
    alone = NoiseSession(parse_noise("pcm(t=3600)"), [torch.Generator().manual_seed(1)], 1).chip("cell", W)
    torch.testing.assert_close(alone[0], chips[1], rtol=0, atol=0)  # repeat 1's chip does not depend on the others


@pytest.mark.parametrize("text,message", [
    ("pcm", "noise kind 'pcm' needs t, the seconds since programming, e.g. pcm(t=3600)"),
    ("pcm(t=-5)", "pcm t must be a number of seconds >= 0 since programming, got -5"),
    ("pcm(t=1,compensation=3)", "pcm compensation must be 1 (global drift compensation, the default) or 0, got 3"),
])
def test_bad_pcm_settings_are_one_line_errors(text, message):
    with pytest.raises(InvalidNoiseSpecError) as err:
        parse_noise(text)
    assert str(err.value) == message


def test_pcm_labels_round_trip_with_large_times():
    spec = parse_noise("pcm(t=1e+07)+adc(bits=8,bound=10)")  # "+" inside the parentheses is the number's
    assert spec.label == "pcm(t=1e07)+adc(bits=8,bound=10)"
    assert parse_noise(spec.label) == spec and parse_noise(spec.to_json()) == spec


def test_accuracy_over_inference_time_is_the_eval_noise_dim():
    """On the demo's rnn28: uncompensated drift over 3 years (1e8 s) costs most of the accuracy; global drift
    compensation recovers nearly all of it (measured: 77 % at 1 s, 26 % at 1e8 s, 76 % compensated; clean 78 %)."""
    from dni.store.results import merge_results

    model = load_checkpoint(REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt")
    specs = ["pcm(t=1,compensation=0)", "pcm(t=1e08,compensation=0)", "pcm(t=1e08)"]
    ds = merge_results([evaluate(model, [0.0], 3, data="subset", eval_noise=spec, progress=False) for spec in specs])
    assert sorted(ds.eval_noise.values) == sorted(specs)
    acc = ds.accuracy.sel(arch="rnn28", sigma_val=0.0).squeeze().mean("seed")  # (eval_noise,)
    assert float(ds.accuracy.std("seed").max()) > 0  # each repeat its own chip
    early, late, compensated = (float(acc.sel(eval_noise=s)) for s in specs)
    clean = evaluate(model, [0.0], 1, data="subset", progress=False).accuracy.item()
    assert late < early - 0.2 and compensated > late + 0.2
    assert early <= clean + 0.01 and compensated <= clean + 0.01
