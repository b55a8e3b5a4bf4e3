"""Every path that draws noise, checked against the paper's noise model by statistics (issue 25, item 2).

Paper eq. 2: each matrix–vector product is followed by z ~ N(0, σ²), element-wise, fresh at every
step, every forward pass and every repeat; the LSTM cell state gets none; the FC layer gets its own.

The noise is read off the network's *outputs*, not off the noise model: the weights are set so that
each hidden unit's last output state h_T is an exactly invertible function of one noise element
(gates saturated at ±40, where σ(·) and tanh(·) are exactly 0 or 1 in float32 even with 6σ of
noise), the input at step t is the one-hot vector e_t (so W_ih's column t is a per-step bias), and
the FC weights are zero (so the logits are the FC noise itself). One group of units per LSTM gate
(and per GRU draw) shows that gate's noise at the last step; a "route" group receives, through
W_hh, another unit's state of the step before, so its value correlates with that unit's last-step
noise if and only if the noise is not fresh per step.

Tolerances are 5 standard errors of each statistic under N(0, σ²), computed from the sample size.
"""

import math

import pytest
import torch

from dni.nn.models import build_model
from dni.nn.stacked import StackedClassifier
from dni.noise.base import NoiseModel, PerModelGaussian, PrefetchedGaussian

BIG = 40.0
T = 28  # steps (= input size: one-hot step inputs)
H = 128
BATCH = 512
P_WITHIN_ONE_SIGMA = math.erf(1 / math.sqrt(2))  # 0.6827 for a Gaussian (0.577 for a uniform of the same σ)


# --- statistics with tolerances from the sample size ------------------------------------------------

def assert_gaussian(z: torch.Tensor, sigma: float, what: str) -> None:
    """z ~ N(0, σ²) i.i.d.: mean, variance and P(|z| < σ) each within 5 standard errors."""
    z = z.double().reshape(-1)
    n = z.numel()
    mean, var = z.mean().item(), z.var().item()
    assert abs(mean) < 5 * sigma / math.sqrt(n), f"{what}: mean {mean:.5f} (n = {n})"
    assert abs(var - sigma**2) < 5 * sigma**2 * math.sqrt(2 / (n - 1)), f"{what}: std {math.sqrt(var):.5f}, not {sigma} (n = {n})"
    p = (z.abs() < sigma).double().mean().item()
    se = math.sqrt(P_WITHIN_ONE_SIGMA * (1 - P_WITHIN_ONE_SIGMA) / n)
    assert abs(p - P_WITHIN_ONE_SIGMA) < 5 * se, f"{what}: P(|z| < σ) = {p:.4f}, not Gaussian (n = {n})"


def assert_uncorrelated(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Pearson correlation of paired samples within 5 standard errors (1/√n) of 0."""
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    assert a.numel() == b.numel()
    r = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    assert abs(r) < 5 / math.sqrt(a.numel()), f"{what}: correlation {r:.4f} (n = {a.numel()})"


def assert_independent_rows_and_units(z: torch.Tensor, what: str) -> None:
    """z (N, U): sample b vs sample b + N/2 (not one draw for the batch), unit j vs unit j + U/2."""
    n, u = z.shape
    assert_uncorrelated(z[: n // 2], z[n // 2 : 2 * (n // 2)], f"{what}, across samples")
    assert_uncorrelated(z[:, : u // 2], z[:, u // 2 : 2 * (u // 2)], f"{what}, across units")


def logit(p):
    return torch.log(p) - torch.log1p(-p)


def step_inputs(batch: int = BATCH) -> torch.Tensor:
    """x (B, T, T): e_t at step t, so that column t of W_ih is a bias of step t only."""
    return torch.eye(T).expand(batch, T, T).clone()


# --- probes: weights that make h_T show the noise ---------------------------------------------------

class LSTMProbe:
    """lstm28 with units in groups: g, o, i, f show that gate's noise at the last step; route shows freshness."""

    groups = {"g": slice(0, 32), "o": slice(32, 56), "i": slice(56, 80), "f": slice(80, 104), "route": slice(104, 128)}
    preset = "lstm28"

    @classmethod
    @torch.no_grad()
    def setup(cls, model):
        cell = model.cell
        for p in model.parameters():
            p.zero_()
        i, f, g, o = (cell.bias[k * H : (k + 1) * H] for k in range(4))  # views into the bias, gate order i, f, g, o
        G = cls.groups
        # g, route: c_t = tanh(z_g) (forget gate closed, input and output gates open), h = tanh(c)
        for s in (G["g"], G["route"]):
            i[s], f[s], g[s], o[s] = BIG, -BIG, 0.0, BIG
        # o: c = 1, h = σ(z_o)·tanh(1)
        i[G["o"]], f[G["o"]], g[G["o"]], o[G["o"]] = BIG, -BIG, BIG, 0.0
        # i: c = σ(z_i), h = tanh(σ(z_i))
        i[G["i"]], f[G["i"]], g[G["i"]], o[G["i"]] = 0.0, -BIG, BIG, BIG
        # f: c = 1 up to step T-1; at step T the input gate closes and the forget gate is free: c = σ(z_f)
        i[G["f"]], f[G["f"]], g[G["f"]], o[G["f"]] = BIG, -BIG, BIG, BIG
        last = T - 1
        rows = torch.arange(H)[G["f"]]
        cell.weight_ih[rows, last] = -2 * BIG  # input gate: +40 → -40 at the last step
        cell.weight_ih[H + rows, last] = BIG  # forget gate: -40 → 0 at the last step
        # route: unit k's g gate adds h_{t-1} of g unit j (the same j for every step)
        for m, k in enumerate(range(H)[G["route"]]):
            cell.weight_hh[2 * H + k, m] = 1.0
        return model

    @classmethod
    def reveal(cls, h):
        """{gate: (z (N, units), std in units of σ)} recovered from h_T (N, H)."""
        h = h.double()
        G = cls.groups
        tanh1 = torch.tanh(torch.tensor(1.0)).double()  # tanh(c = 1), as float32 computes it
        return {"g": (torch.atanh(torch.atanh(h[:, G["g"]])), 1.0),
                "o": (logit(h[:, G["o"]] / tanh1), 1.0),
                "i": (logit(torch.atanh(h[:, G["i"]])), 1.0),
                "f": (logit(torch.atanh(h[:, G["f"]])), 1.0)}

    @classmethod
    def route(cls, h):
        """(route units' value z_T[k] + h_{T-1}[j], g unit j's last-step noise z_T[j]): uncorrelated iff fresh per step."""
        h = h.double()
        y = torch.atanh(torch.atanh(h[:, cls.groups["route"]]))
        n = y.shape[1]
        return y, cls.reveal(h)["g"][0][:, :n]


class RNNProbe:
    """rnn28: h = tanh(z) in group a; route units add h_{T-1} of unit j."""

    groups = {"a": slice(0, 64), "route": slice(64, 128)}
    preset = "rnn28"

    @classmethod
    @torch.no_grad()
    def setup(cls, model):
        for p in model.parameters():
            p.zero_()
        for m, k in enumerate(range(H)[cls.groups["route"]]):
            model.cell.weight_hh[k, m] = 1.0
        return model

    @classmethod
    def reveal(cls, h):
        return {"a": (torch.atanh(h.double()[:, cls.groups["a"]]), 1.0)}

    @classmethod
    def route(cls, h):
        y = torch.atanh(h.double()[:, cls.groups["route"]])
        return y, cls.reveal(h)["a"][0][:, : y.shape[1]]


class GRUProbe:
    """gru28 (noise z_1 of 3H on r, z and the candidate's input part a; z_2 of H on its hidden part u):
    group a: h = tanh(z_1a); au: h = tanh(z_1a + z_2) (std σ√2 only if z_2 is there and independent);
    z: h_{T-1} = 1, candidate -1 at T, so h_T = 2σ(z_1z) - 1; route: adds h_{T-1} of an au unit through W_hn."""

    groups = {"a": slice(0, 32), "au": slice(32, 64), "z": slice(64, 96), "route": slice(96, 128)}
    preset = "gru28"

    @classmethod
    @torch.no_grad()
    def setup(cls, model):
        cell = model.cell
        for p in model.parameters():
            p.zero_()
        r, z, a = (cell.bias[k * H : (k + 1) * H] for k in range(3))
        G = cls.groups
        r[G["a"]], z[G["a"]] = -BIG, -BIG  # h = n = tanh(a)
        for s in (G["au"], G["route"]):
            r[s], z[s] = BIG, -BIG  # h = n = tanh(a + u)
        r[G["z"]], z[G["z"]], a[G["z"]] = -BIG, -BIG, BIG  # h = tanh(40 + z) = 1 up to step T-1
        rows, last = torch.arange(H)[G["z"]], T - 1
        cell.weight_ih[H + rows, last] = BIG  # update gate free at the last step
        cell.weight_ih[2 * H + rows, last] = -2 * BIG  # candidate -1 at the last step
        for m, k in enumerate(range(H)[G["route"]]):
            cell.weight_hh[2 * H + k, G["au"].start + m] = 1.0  # W_hn: u_k = h_{t-1}[au unit m] + z_2
        return model

    @classmethod
    def reveal(cls, h):
        h = h.double()
        G = cls.groups
        return {"a": (torch.atanh(h[:, G["a"]]), 1.0),
                "au": (torch.atanh(h[:, G["au"]]), math.sqrt(2)),
                "z": (logit((h[:, G["z"]] + 1) / 2), 1.0)}

    @classmethod
    def route(cls, h):
        y = torch.atanh(h.double()[:, cls.groups["route"]])
        return y, cls.reveal(h)["au"][0][:, : y.shape[1]]


PROBES = {"lstm": LSTMProbe, "rnn": RNNProbe, "gru": GRUProbe}


def probe_model(kind):
    probe = PROBES[kind]
    return probe, probe.setup(build_model(probe.preset))


def capture_h(model, captured: list):
    """Record h_T as it enters the FC layer (a forward pre-hook on ``model.fc``)."""
    return model.fc.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().clone()))


def check_one_pass(probe, h, logits, sigma, what):
    """The noise one forward pass (one repeat) shows: every gate's, step freshness, the FC's."""
    revealed = probe.reveal(h)
    for gate, (z, scale) in revealed.items():
        assert_gaussian(z, sigma * scale, f"{what}: gate {gate}")
        assert_independent_rows_and_units(z, f"{what}: gate {gate}")
    y, z_last = probe.route(h)
    assert_uncorrelated(y, z_last, f"{what}: step T-1's state against step T's noise of the same unit (fresh per step)")
    assert_gaussian(logits, sigma, f"{what}: FC noise")
    first = next(iter(revealed.values()))[0]
    assert_uncorrelated(logits, first[:, : logits.shape[1]], f"{what}: FC noise against the cell's noise")
    return first


# --- the paths ----------------------------------------------------------------------------------------

SIGMA = 0.6


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_readable_cells_draw_the_paper_noise(kind):
    """The reference path: the readable cells of dni.nn.cells stepped one by one (forward_reference)."""
    probe, model = probe_model(kind)
    x, captured, g = step_inputs(), [], torch.Generator().manual_seed(1)
    capture_h(model, captured)
    with torch.no_grad():
        logits = [model.forward_reference(x, noise=SIGMA, generator=g) for _ in range(2)]  # two passes, one generator
    first = [check_one_pass(probe, h, lg, SIGMA, f"{kind} cells, pass {p}") for p, (h, lg) in enumerate(zip(captured, logits, strict=True))]
    assert_uncorrelated(first[0], first[1], f"{kind} cells: pass 1 against pass 2 (fresh per forward pass)")
    assert_uncorrelated(logits[0], logits[1], f"{kind} cells: FC noise, pass 1 against pass 2")


def run_passes(model, x, passes, noise, **kwargs):
    """(h_T, logits) of each of ``passes`` forward passes, h_T as it enters the FC layer."""
    captured = []
    hook = capture_h(model, captured)
    try:
        logits = [model(x, noise=noise, **kwargs).detach() for _ in range(passes)]
    finally:
        hook.remove()
        if isinstance(noise, PrefetchedGaussian):
            noise.close()
    return captured, logits


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_fused_training_path_draws_the_paper_noise(kind):
    """Training: the fused BPTT path (grad on); drawn ahead in a thread, the same numbers bit for bit."""
    probe, model = probe_model(kind)
    model.train()
    assert model.uses_fused_training()
    x = step_inputs()
    hs, logits = run_passes(model, x, 2, SIGMA, generator=torch.Generator().manual_seed(2))
    first = [check_one_pass(probe, h, lg, SIGMA, f"{kind} fused, pass {p}") for p, (h, lg) in enumerate(zip(hs, logits, strict=True))]
    assert_uncorrelated(first[0], first[1], f"{kind} fused: pass 1 against pass 2 (fresh per forward pass)")
    assert_uncorrelated(logits[0], logits[1], f"{kind} fused: FC noise, pass 1 against pass 2")
    prefetched = PrefetchedGaussian(SIGMA, torch.Generator().manual_seed(2), model.training_noise_shapes(BATCH, T) * 2)
    hs_p, logits_p = run_passes(model, x, 2, prefetched)
    assert all(torch.equal(a, b) for a, b in zip(hs + logits, hs_p + logits_p, strict=True))


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_evaluation_path_with_batched_repeats_draws_the_paper_noise(kind):
    """Evaluation: R repeats of a batch in one pass (no grad), one generator per repeat; drawn ahead
    in a thread (with the GRU's two draws per step), the same numbers bit for bit."""
    R = 3
    probe, model = probe_model(kind)
    x = step_inputs()
    gens = lambda: [torch.Generator().manual_seed(100 + r) for r in range(R)]  # noqa: E731
    with torch.no_grad():
        hs, logits = run_passes(model, x, 2, SIGMA, generator=gens(), repeats=R)
        prefetched = PrefetchedGaussian(SIGMA, gens(), model.inference_noise_shapes(BATCH, T, R) * 2)
        hs_p, logits_p = run_passes(model, x, 2, prefetched, generator=None, repeats=R)
    assert all(torch.equal(a, b) for a, b in zip(hs + logits, hs_p + logits_p, strict=True))
    what = f"{kind} evaluation"
    for p, (h, lg) in enumerate(zip(hs, logits, strict=True)):
        assert h.shape == (R * BATCH, H) and lg.shape == (R * BATCH, 10)
        first = [check_one_pass(probe, h_r, lg_r, SIGMA, f"{what}, pass {p} repeat {r}")
                 for r, (h_r, lg_r) in enumerate(zip(h.chunk(R), lg.chunk(R), strict=True))]
        for r in range(1, R):
            assert_uncorrelated(first[0], first[r], f"{what}: repeat 0 against repeat {r} (independent repeats)")
            assert_uncorrelated(lg.chunk(R)[0], lg.chunk(R)[r], f"{what}: FC noise of repeat 0 against repeat {r}")
    a, b = (probe.reveal(h)[next(iter(probe.groups))][0] for h in hs)
    assert_uncorrelated(a, b, f"{what}: pass 1 against pass 2 (fresh per forward pass)")


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_shared_draws_evaluation_path_draws_the_paper_noise(kind):
    """Evaluation under the default shared draws (dni.noise.draws): one ε per (repeat, chunk) from its own
    counter-seeded generator, scaled by each σval. Every σval sees σval·ε: the same ε (common random
    numbers), and at each σval the paper's noise per gate, fresh per step, independent across repeats."""
    from dni.noise.draws import SharedGaussian, chunk_seed, draw_chunk

    R = 3
    probe, model = probe_model(kind)
    x = step_inputs()
    shapes = model.inference_noise_shapes(BATCH, T, 1)  # one repeat's draws, in order
    eps = draw_chunk([chunk_seed(0, probe.preset, 0.0, r, 0) for r in range(R)], sum(math.prod(s) for s in shapes))
    revealed = {}
    for sigma in (0.3, SIGMA):
        noise = SharedGaussian(sigma, eps, shapes)
        with torch.no_grad():
            (h,), (logits,) = run_passes(model, x, 1, noise, repeats=R)
        assert noise.consumed and h.shape == (R * BATCH, H)
        what = f"{kind} shared draws σ {sigma}"
        first = [check_one_pass(probe, h_r, lg_r, sigma, f"{what}, repeat {r}")
                 for r, (h_r, lg_r) in enumerate(zip(h.chunk(R), logits.chunk(R), strict=True))]
        for r in range(1, R):
            assert_uncorrelated(first[0], first[r], f"{what}: repeat 0 against repeat {r} (independent repeats)")
        revealed[sigma] = (torch.cat(first), logits.double())
    # the same ε behind both σval: the noise read off at σ = 0.6 is twice that at σ = 0.3 (to float rounding)
    torch.testing.assert_close(revealed[SIGMA][0], revealed[0.3][0] * (SIGMA / 0.3), rtol=0, atol=2e-3)
    torch.testing.assert_close(revealed[SIGMA][1], revealed[0.3][1] * (SIGMA / 0.3), rtol=0, atol=1e-5)


class Recording(NoiseModel):
    """Passes every call to ``inner`` and keeps (pre-activation, noisy pre-activation)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    @property
    def is_noiseless(self):
        return False

    def add(self, preactivation, generator=None):
        out = self.inner.add(preactivation, generator)
        self.calls.append((preactivation.detach().clone(), out.detach().clone()))
        return out


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_model_batched_training_draws_each_models_own_noise(kind):
    """dni.training.batched: S stacked models, model s gets σ_s (σ = 0: none at all), fresh per step, independent
    across models; the cell noise reaches each model's h_T (read through the FC input) and the FC noise
    its logits. Drawn ahead in a thread: the same numbers bit for bit."""
    sigmas = [0.0, 0.4, 1.0]
    probe = PROBES[kind]
    gate = next(iter(probe.groups))
    units = torch.arange(10) + probe.groups[gate].start
    models = [probe.setup(build_model(probe.preset, s)) for s in sigmas]
    with torch.no_grad():
        for m in models:  # FC row k reads unit k of the first group: the FC input is h_T there
            m.fc.weight[torch.arange(10), units] = 1.0
    stacked = StackedClassifier(models, sigmas)
    x = step_inputs()
    noise = Recording(PerModelGaussian(stacked.sigmas, torch.Generator().manual_seed(3)))
    logits = stacked(x, noise).detach()  # (S, B, C)
    prefetched = PrefetchedGaussian(stacked.sigmas, torch.Generator().manual_seed(3), stacked.noise_shapes(BATCH, T))
    try:
        assert torch.equal(stacked(x, prefetched).detach(), logits)
    finally:
        prefetched.close()
    (P, noisy_P), (fc_in, noisy_logits) = noise.calls
    assert P.shape == (3, T, BATCH, stacked.weight_ih.shape[1]) and torch.equal(noisy_logits, logits)
    assert torch.equal(noisy_P[0], P[0]) and torch.equal(noisy_logits[0], fc_in[0])  # σ = 0: exactly no noise
    z_cell, z_fc = (noisy_P - P).double(), (noisy_logits - fc_in).double()  # (b + z) − b: z to within ulp(40) = 4e-6
    h_T = torch.zeros(3, BATCH, H)
    h_T[:, :, units] = fc_in
    for s in (1, 2):
        what = f"{kind} batched, model σ {sigmas[s]}"
        assert_gaussian(z_cell[s], sigmas[s], f"{what}: cell noise")
        assert_uncorrelated(z_cell[s, :-1], z_cell[s, 1:], f"{what}: step t against step t+1")
        assert_gaussian(z_fc[s], sigmas[s], f"{what}: FC noise")
        assert_gaussian(probe.reveal(h_T[s])[gate][0][:, units - probe.groups[gate].start], sigmas[s], f"{what}: the noise in h_T")
    assert_uncorrelated(z_cell[1], z_cell[2], f"{kind} batched: model 1 against model 2")
    assert_uncorrelated(z_fc[1], z_fc[2], f"{kind} batched: FC noise of model 1 against model 2")


def test_the_probes_would_see_noise_that_is_not_fresh_per_step():
    """The route groups detect noise repeated over the steps: with one draw for all steps (a broken
    path, simulated here by replaying one z at every step) the correlation is far beyond 5 SE."""
    from dni.noise.base import ReplayNoise

    for kind in ("lstm", "rnn", "gru"):
        probe, model = probe_model(kind)
        captured, x = [], step_inputs(512)
        capture_h(model, captured)
        g = torch.Generator().manual_seed(4)
        G = model.cell.weight_ih.shape[0]
        z = torch.randn(512, G, generator=g) * SIGMA
        draws = [z] * T if kind != "gru" else [d for _ in range(T) for d in (z[:, : 3 * H], z[:, 2 * H :])]
        with torch.no_grad():
            model.forward_reference(x, noise=ReplayNoise(draws + [torch.zeros(512, 10)]))
        y, z_last = probe.route(captured[0])
        r = torch.corrcoef(torch.stack([y.reshape(-1), z_last.reshape(-1)]))[0, 1].item()
        assert r > 20 / math.sqrt(y.numel()), (kind, r)
