"""Samplers: accuracy against the exact finite-nβ λ of a quadratic, cost accounting, blow-ups, precision.

The quadratic used throughout: d = 10, curvature eigenvalues log-spaced over [1e-2, 1] in a random
basis, n = 1000 (nβ = 144.8), γ = 10, so the posterior curvatures nβ·a + γ span 11.4..154.8 and the
exact value is λ = ½ Σ nβa/(nβa + γ) = 2.809. Settings below keep the discretisation bias of the
unadjusted samplers well under 1% and the standard error under ~0.8%.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from llc.config import resolve_config
from llc.errors import LLCError
from llc.posterior import build_posterior
from llc.runs import run_job
from llc.samplers import build_sampler, run_chains
from llc.samplers.registry import sampler_names, spec_of
from llc.targets import build_target, problem_keys

QUADRATIC = {
    "target.kind": "quadratic",
    "target.dim": 10,
    "target.curvature_ratio": 100.0,
    "data.n": 1000,
    "posterior.gamma": 10.0,
    "sampler.chains": 4,
    "sampler.stop": "fixed",  # the step counts below are the budgets under test (test_stopping.py: until converged)
}

# (sampler, settings) per accuracy case. SG samplers on a quadratic see the exact gradient.
ACCURACY = {
    "sgld": ("sgld", {"sampler.step_size": 1e-4, "sampler.steps": 240_000, "sampler.warmup": 10_000,
                      "sampler.thinning": 10, "sampler.precond": "none"}),
    "sgld_rmsprop": ("sgld", {"sampler.step_size": 1e-4, "sampler.steps": 240_000, "sampler.warmup": 10_000,
                              "sampler.thinning": 10, "sampler.precond": "rmsprop"}),
    "sgld_adam": ("sgld", {"sampler.step_size": 1e-4, "sampler.steps": 240_000, "sampler.warmup": 10_000,
                           "sampler.thinning": 10, "sampler.precond": "adam"}),
    # overdamped-equivalent step ε/α = 1e-4, momentum retention 1 - αε = 0.91
    "sghmc": ("sghmc", {"sampler.step_size": 3e-3, "sampler.friction": 30.0, "sampler.steps": 300_000,
                        "sampler.warmup": 10_000, "sampler.thinning": 10, "sampler.precond": "none"}),
    # the frozen RMSProp metric (the quick preset's SGHMC) at the plain case's ε and α
    "sghmc_rmsprop": ("sghmc", {"sampler.step_size": 3e-3, "sampler.friction": 30.0, "sampler.steps": 300_000,
                                "sampler.warmup": 10_000, "sampler.thinning": 10, "sampler.precond": "rmsprop"}),
    "hmc": ("hmc", {"sampler.steps": 4000, "sampler.warmup": 500, "sampler.num_integration_steps": 10}),
    "nuts": ("nuts", {"sampler.steps": 3000, "sampler.warmup": 500}),
    "mclmc": ("mclmc", {"sampler.steps": 8000, "sampler.warmup": 1000, "sampler.desired_energy_var": 1e-4}),
    "mclmc_adjusted": ("mclmc_adjusted", {"sampler.steps": 3000, "sampler.warmup": 600}),
}

ALL_SAMPLERS = sampler_names()  # a newly registered sampler must add its SMOKE_SAMPLER and ACCURACY entries


def quadratic_config(sampler: str, settings: dict, **extra):
    return resolve_config(preset="quick", overrides={**QUADRATIC, **settings, **extra}, sampler=sampler)


def exact_lambda() -> float:
    nbeta = 1000 / math.log(1000)
    eigs = np.logspace(0.0, -2.0, 10)
    return float(0.5 * np.sum(nbeta * eigs / (nbeta * eigs + 10.0)))


def open_trace(run_dir) -> xr.DataTree:
    return xr.open_datatree(run_dir / "trace.nc", engine="h5netcdf")


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize("case", list(ACCURACY))
def test_quadratic_accuracy(case, tmp_path):
    sampler, settings = ACCURACY[case]
    metrics = run_job(quadratic_config(sampler, settings), runs_root=tmp_path).metrics.to_dict()
    assert metrics["precision"] == "float64"
    assert metrics["lambda_true"] == pytest.approx(exact_lambda(), rel=1e-9)
    assert metrics["n_chains_diverged"] == 0
    rel = metrics["llc_mean"] / metrics["lambda_true"] - 1
    assert abs(rel) < 0.03, f"{case}: λ̂ = {metrics['llc_mean']:.4f} vs exact {metrics['lambda_true']:.4f} ({rel:+.2%})"
    # the reported uncertainty must be honest too: the error is within a few standard errors
    assert abs(metrics["llc_mean"] - metrics["lambda_true"]) < 4 * metrics["llc_se"] + 0.01 * metrics["lambda_true"]


# ---------------------------------------------------------------- cost accounting


def test_hmc_cost_is_draws_times_chains_times_leapfrog_steps(tmp_path):
    draws, chains, leapfrog, warmup = 60, 3, 7, 40
    cfg = quadratic_config("hmc", {"sampler.steps": draws, "sampler.warmup": warmup, "sampler.chains": chains,
                                   "sampler.num_integration_steps": leapfrog, "sampler.thinning": 1})
    work = run_job(cfg, runs_root=tmp_path).metrics.to_dict()["work"]
    assert work["grad_evals_sampling"] == draws * chains * leapfrog
    assert work["fde_sampling"] == work["grad_evals_sampling"]  # full batch: one gradient = one FDE
    # warm-up separately: per chain, BlackJAX's initial value_and_grad + L per adaptation step
    assert work["grad_evals_warmup"] == chains * (1 + warmup * leapfrog)
    assert work["fde_warmup"] == work["grad_evals_warmup"]
    assert work["grad_evals"] == work["grad_evals_warmup"] + work["grad_evals_sampling"]


@pytest.mark.parametrize(
    ("sampler", "settings"),
    [
        ("hmc", {"sampler.num_integration_steps": 3, "sampler.warmup": 25}),
        # round(0.3·57) = 17: BlackJAX's own count is one step short here
        pytest.param("mclmc", {"sampler.warmup": 57}, marks=pytest.mark.slow),
        # explicit step size: the curvature power iteration's work is checked in test_sgld_truth.py
        ("sghmc", {"sampler.num_integration_steps": 2, "sampler.warmup": 10, "sampler.step_size": 3e-3}),
        # sgld, sghmc and mclmc declare constant per-step work (Sampler.step_work): counted on the host
        ("sgld", {"sampler.warmup": 10, "sampler.step_size": 3e-3}),
        # one chain: under vmap, BlackJAX's masked while_loop also evaluates finished chains (not work)
        pytest.param("nuts", {"sampler.warmup": 30, "sampler.chains": 1}, marks=pytest.mark.slow),
        pytest.param("mclmc_adjusted", {"sampler.warmup": 50, "sampler.chains": 1}, marks=pytest.mark.slow),
    ],
)
def test_reported_gradients_match_actual_evaluations(sampler, settings):
    """Count real loss evaluations with a host callback and compare with the bookkeeping."""
    import dataclasses

    cfg = quadratic_config(sampler, {"sampler.steps": 12, "sampler.chains": 2, "sampler.thinning": 1, **settings})
    posterior = build_posterior(cfg, build_target(cfg))
    calls = [0]

    def bump(_):
        calls[0] += 1

    def counted_loss(w):
        jax.debug.callback(bump, w[0])
        return posterior.full_loss(w)

    counted = dataclasses.replace(posterior, full_loss=counted_loss, batch_loss=lambda w, key: counted_loss(w))
    run = run_chains(build_sampler(counted, cfg.sampler), counted, cfg.sampler, problem_keys(cfg.seed)["sampler"])
    jax.effects_barrier()
    if sampler == "hmc":
        assert run.grad_evals_warmup == 2 * (1 + 25 * 3)
        assert run.grad_evals_sampling == 2 * 12 * 3
    assert calls[0] == run.grad_evals_warmup + run.grad_evals_sampling


# ---------------------------------------------------------------- blow-ups


@pytest.mark.parametrize(
    ("sampler", "settings"),
    [
        ("sgld", {"sampler.step_size": 1.0}),
        ("sghmc", {"sampler.step_size": 1.0, "sampler.friction": 30.0}),
        ("mclmc", {"sampler.step_size": 1e4, "sampler.warmup": 0}),  # no tuning: the huge step is used as is
    ],
)
def test_huge_step_size_is_flagged_not_silently_wrong(sampler, settings, tmp_path):
    cfg = quadratic_config(sampler, {"sampler.steps": 400, "sampler.warmup": 20, **settings})
    try:
        metrics = run_job(cfg, runs_root=tmp_path).metrics.to_dict()
    except LLCError as exc:
        assert "step_size" in str(exc) and "reduce" in str(exc)
    else:
        assert metrics["n_chains_diverged"] > 0


def test_adaptation_recovers_from_a_huge_initial_step_size(tmp_path):
    """HMC adapts its step size in warm-up: a huge initial value must not give a wrong λ̂."""
    cfg = quadratic_config("hmc", {"sampler.step_size": 100.0, "sampler.steps": 1500, "sampler.warmup": 300,
                                   "sampler.num_integration_steps": 20})
    result = run_job(cfg, runs_root=tmp_path)
    metrics = result.metrics.to_dict()
    # The window adaptation shrinks the step from 100 to below the leapfrog stability limit of the stiffest
    # posterior direction, 2/sqrt(nβ·1 + γ) ≈ 0.16 (unit mass), by orders of magnitude ...
    adapted = open_trace(result.run_dir)["adaptation"]["step_size"].values
    assert adapted.shape == (4,) and np.all(adapted < 1.0)
    # ... so the run is not a blow-up: no chain diverges, it is converged, and λ̂ is right. (The old test
    # also passed for any λ̂ once the run was flagged; a regression to a real blow-up now fails.)
    assert metrics["n_chains_diverged"] == 0
    assert metrics["converged"] and metrics["rhat"] < 1.01
    assert abs(metrics["llc_mean"] / metrics["lambda_true"] - 1) < 0.03


def expected_transient_lambda(h: float, factor: float | None, warmup: int, draws: int) -> float:
    """Exact mean of nβ·E[L(w_t)] over the first `draws` recorded steps of SGLD started at w* = 0.

    Per eigendirection (posterior curvature K = nβa + γ) SGLD is x ← (1 − hK)x + sqrt(2h)ξ, so
    Var(t) = ρ^{2t}Var(0) + 2h(1 − ρ^{2t})/(1 − ρ²), ρ = 1 − hK. With a warm-up factor f the first
    int(0.75·W) steps use f·h. Step s records the loss before its move (after W + s − 1 steps).
    """
    nbeta = 1000 / math.log(1000)
    a = np.logspace(0.0, -2.0, 10)
    k = nbeta * a + 10.0

    def advance(var, step, m):
        rho2 = (1 - step * k) ** 2
        return rho2**m * var + 2 * step * (1 - rho2**m) / (1 - rho2)

    n_fast = int(warmup * 0.75) if factor else 0
    var = advance(np.zeros_like(a), h * (factor or 1.0), n_fast)
    var = advance(var, h, warmup - n_fast)
    total = 0.0
    for _ in range(draws):
        total += 0.5 * np.sum(nbeta * a * var)
        var = advance(var, h, 1)
    return total / draws


# 256 chains of 20 draws, on purpose: arviz's shape warning is expected here
@pytest.mark.filterwarnings("ignore:Found chain dimension to be longer than draw dimension")
@pytest.mark.parametrize("factor", [None, 4.0])
def test_fast_warmup_relaxes_as_documented(factor, tmp_path):
    """sampler.warmup_step_factor: 3/4 of the warm-up at f·h, then h. Checked against the exact transient of
    the chains' loss on the quadratic (256 chains, a warm-up too short for h alone to reach the soft directions)."""
    h, warmup, draws = 1e-4, 100, 20
    extra = {} if factor is None else {"sampler.warmup_step_factor": factor}
    cfg = quadratic_config("sgld", {"sampler.step_size": h, "sampler.steps": draws, "sampler.warmup": warmup,
                                    "sampler.thinning": 1, "sampler.precond": "none", "sampler.chains": 256, **extra})
    run = run_job(cfg, runs_root=tmp_path)
    with open_trace(run.run_dir) as tree:
        per_chain = np.asarray(tree["posterior"]["llc"]).mean(axis=1)
    expected = expected_transient_lambda(h, factor, warmup, draws)
    se = per_chain.std(ddof=1) / math.sqrt(per_chain.size)
    assert abs(per_chain.mean() - expected) < 4 * se, (per_chain.mean(), expected, se)
    # the two settings are far apart at this warm-up, so the check above tells them apart
    other = expected_transient_lambda(h, None if factor else 4.0, warmup, draws)
    assert abs(other - expected) > 5 * se
    # by design: 4× the step in 3/4 of the warm-up closes most of the gap to the stationary λ
    plain, fast = (expected_transient_lambda(h, f, warmup, draws) for f in (None, 4.0))
    assert exact_lambda() - fast < 0.5 * (exact_lambda() - plain)


def test_sghmc_fast_warmup_scales_eps_over_alpha():
    cfg = quadratic_config("sghmc", {"sampler.step_scale": 0.05, "sampler.steps": 40, "sampler.warmup": 40,
                                     "sampler.thinning": 1, "sampler.warmup_step_factor": 4.0,
                                     "sampler.precond": "none"})
    posterior = build_posterior(cfg, build_target(cfg))
    chains = run_chains(build_sampler(posterior, cfg.sampler), posterior, cfg.sampler, problem_keys(cfg.seed)["sampler"])
    eps, fast, alpha = (np.asarray(chains.warmup_info[k]) for k in ("step_size", "warmup_step_size", "friction"))
    np.testing.assert_allclose(fast, 2.0 * eps, rtol=1e-12)  # ε/α ∝ ε² at α·ε = 0.1: ×4 means ε × 2
    np.testing.assert_allclose(alpha * eps, 0.1, rtol=1e-12)


# ---------------------------------------------------------------- precision smoke + cost formulas

SMOKE_TARGET = {
    "target.kind": "dln",
    "target.in_dim": 3,
    "target.hidden": [3],
    "target.out_dim": 2,
    "target.rank": 1,
    "data.n": 200,
    "sampler.chains": 2,
    "sampler.steps": 40,
    "sampler.warmup": 30,
    "sampler.thinning": 1,
    "sampler.stop": "fixed",  # the cost formulas below count exactly `steps`
}
SMOKE_SAMPLER = {
    "sgld": {"sampler.batch_size": 50, "sampler.step_size": 1e-4},
    "sghmc": {"sampler.batch_size": 50, "sampler.step_size": 3e-3, "sampler.friction": 30.0,
              "sampler.num_integration_steps": 2},
    "hmc": {"sampler.num_integration_steps": 4},
    "nuts": {},
    "mclmc": {},
    "mclmc_adjusted": {"sampler.num_integration_steps": 3},
}


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke")  # shared: the DLN target is trained once per precision


@pytest.mark.parametrize(
    "precision", ["float32", pytest.param("float64", marks=pytest.mark.slow)]  # float64: covered by accuracy
)
@pytest.mark.parametrize("sampler", ALL_SAMPLERS)
def test_precision_smoke_and_cost_formulas(sampler, precision, smoke_root):
    cfg = resolve_config(preset="quick", overrides={**SMOKE_TARGET, **SMOKE_SAMPLER[sampler], "precision": precision},
                         sampler=sampler)
    result = run_job(cfg, runs_root=smoke_root)
    m, s = result.metrics.to_dict(), cfg.sampler
    assert m["precision"] == precision
    assert m["n_chains_diverged"] == 0 and math.isfinite(m["llc_mean"])
    tree = open_trace(result.run_dir)
    assert tree["posterior"]["loss"].dtype == np.dtype(precision)
    stats, adapt = tree["sample_stats"], tree["adaptation"]

    work, C, D, W = m["work"], s.chains, s.steps, s.warmup
    full_batch = not spec_of(sampler).minibatch
    if full_batch:
        assert work["fde_sampling"] == work["grad_evals_sampling"]
        assert work["fde_warmup"] == work["grad_evals_warmup"]
        assert np.all(np.isfinite(tree["posterior"]["loss"].values))
    if not full_batch:
        per_step = s.num_integration_steps or 1
        frac = s.batch_size / cfg.data.n
        assert work["grad_evals_sampling"] == D * C * per_step
        assert work["grad_evals_warmup"] == W * C * per_step
        assert work["fde_sampling"] == pytest.approx(D * C * per_step * frac, rel=1e-12)
        assert work["fde_warmup"] == pytest.approx(W * C * per_step * frac, rel=1e-12)
    elif sampler == "hmc":
        assert work["grad_evals_sampling"] == D * C * s.num_integration_steps
        assert work["grad_evals_warmup"] == C * (1 + W * s.num_integration_steps)
    elif sampler == "nuts":
        assert work["grad_evals_sampling"] == int(stats["num_integration_steps"].sum())
        assert work["grad_evals_warmup"] >= C * (1 + W)
        assert {"acceptance_rate", "diverging", "tree_depth", "energy"} <= set(stats.data_vars)
    elif sampler == "mclmc":
        assert work["grad_evals_sampling"] == 2 * D * C
        assert work["grad_evals_warmup"] == C + 2 * float(adapt["tuning_integrator_steps"].sum())
        assert {"energy_change", "diverging"} <= set(stats.data_vars)
    elif sampler == "mclmc_adjusted":
        assert work["grad_evals_sampling"] == 2 * int(stats["num_integration_steps"].sum())
        assert work["grad_evals_warmup"] == C + 2 * float(adapt["tuning_integrator_steps"].sum())
        assert {"acceptance_rate", "diverging"} <= set(stats.data_vars)
    if sampler in ("hmc", "nuts", "mclmc", "mclmc_adjusted"):
        for key in ("step_size", "inverse_mass_matrix_min", "inverse_mass_matrix_max", "inverse_mass_matrix_mean"):
            values = adapt[key].values
            assert values.shape == (C,) and np.all(np.isfinite(values)) and np.all(values > 0)
        lo, mid, hi = (adapt[f"inverse_mass_matrix_{k}"].values for k in ("min", "mean", "max"))
        assert np.all(lo <= mid) and np.all(mid <= hi)
    if sampler in ("mclmc", "mclmc_adjusted"):
        assert np.all(adapt["L"].values > 0)


def test_sghmc_momentum_persists_and_loss_is_minibatch_mean():
    cfg = resolve_config(preset="quick", overrides={**QUADRATIC, "sampler.num_integration_steps": 3}, sampler="sghmc")
    posterior = build_posterior(cfg, build_target(cfg))
    sampler = build_sampler(posterior, cfg.sampler)
    state = sampler.init(posterior.w_star)
    state, params, _ = sampler.warmup(jax.random.PRNGKey(0), state, 0)
    assert jnp.any(state.momentum != 0)  # drawn at the start of warm-up
    new, info = sampler.step(jax.random.PRNGKey(1), state, params)
    assert not jnp.allclose(new.momentum, state.momentum)
    assert float(info["grad_evals"]) == 3.0 and info["fde"].dtype == jnp.float64
    assert np.isfinite(float(info["loss"]))
