"""Localization (issue 17): λ̂ follows the exact finite-nβ value across γ, and the basin-leaving flag.

The quadratic L = ½ (w - w0)ᵀ A (w - w0) under exp(-nβ L - γ/2 |w - w*|²), centred at its minimum, has
E[λ̂] = ½ Σ_k nβ a_k / (nβ a_k + γ) exactly (notes §6); here it is recomputed from A's eigenvalues.
Centred anywhere else, the chains find losses below L(w*): the case built to trip the basin flag.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

from llc.config import resolve_config
from llc.estimator import basin_allowance, basin_check, estimate, estimate_failures, finite_chains
from llc.posterior import build_posterior
from llc.runs import run_job
from llc.samplers import build_sampler, run_chains
from llc.stopping import stop_rule, targets_of
from llc.targets import build_target, problem_keys
from llc.validation import validation_jobs

QUADRATIC = {
    "target.kind": "quadratic", "target.dim": 20, "target.curvature_ratio": 1000.0, "data.n": 1000,
    "sampler.chains": 4, "sampler.stop": "fixed", "sampler.steps": 3000, "sampler.warmup": 500,
}


def quadratic_cfg(gamma: float, **extra):
    return resolve_config(preset="quick", overrides={**QUADRATIC, "posterior.gamma": gamma, **extra}, sampler="hmc")


def curvature(target) -> np.ndarray:
    """The built target's A = Q diag(eigs) Qᵀ."""
    q, eigs = (np.asarray(v, dtype=np.float64) for v in (target.quadratic.basis, target.quadratic.eigs))
    return q @ np.diag(eigs) @ q.T


def exact_finite(cfg) -> float:
    """½ Σ nβa/(nβa + γ) from the eigenvalues of the built target's curvature matrix, computed here."""
    eigs = np.linalg.eigvalsh(curvature(build_target(cfg)))
    nbeta = cfg.data.n / math.log(cfg.data.n)
    return float(0.5 * np.sum(nbeta * eigs / (nbeta * eigs + cfg.posterior.gamma)))


@pytest.mark.timeout(300)
def test_quadratic_follows_exact_finite_nbeta_value_across_gamma(tmp_path):
    exact, measured = {}, {}
    for gamma in (1.0, 10.0, 100.0):
        cfg = quadratic_cfg(gamma)
        exact[gamma] = exact_finite(cfg)
        m = run_job(cfg, runs_root=tmp_path).metrics
        measured[gamma] = m.estimate.llc_mean
        assert abs(m.estimate.llc_mean - exact[gamma]) <= 0.03 * exact[gamma], (gamma, m.estimate.llc_mean, exact[gamma])
        assert m.estimate.basin is not None and not m.estimate.basin.left
    # the test can tell γ apart: the exact values move by far more than the 3% tolerance
    assert exact[1.0] > 1.3 * exact[100.0]
    assert measured[1.0] > measured[10.0] > measured[100.0]


def off_centre_posterior(cfg, energy: float):
    """The quadratic's posterior with w* moved off the minimum along the stiffest direction, so that
    nβ (L(w*) - L(w0)) = `energy`; L0 is the loss at that w*, as a centre's always is."""
    target = build_target(cfg)
    posterior = build_posterior(cfg, target)
    eigs, vecs = np.linalg.eigh(curvature(target))
    step = math.sqrt(2 * energy / (posterior.nbeta * eigs[-1]))
    w_star = posterior.w_star + jnp.asarray(step * vecs[:, -1], posterior.w_star.dtype)
    return dataclasses.replace(posterior, w_star=w_star, L0=float(posterior.full_loss(w_star)))


@pytest.mark.timeout(300)
def test_basin_flag_fires_when_the_centre_is_not_a_minimum():
    cfg = quadratic_cfg(10.0)
    posterior = off_centre_posterior(cfg, energy=50.0)
    chains = run_chains(build_sampler(posterior, cfg.sampler), posterior, cfg.sampler, problem_keys(cfg.seed)["sampler"])
    valid = finite_chains(chains.loss, chains.theta)
    est = estimate(chains.loss, posterior.nbeta, posterior.L0, valid, chains.theta, "full", n_params=20,
                   dist2=chains.dist2, gamma=posterior.gamma)
    # the localized posterior's mean sits γ/(nβa+γ) of the way back from w0, so the draws reach about
    # nβ·½a·|δ|²·(γ/(nβa+γ))² ≈ 0 above L(w0), i.e. ≈ -50 below L0
    assert est.basin.left and est.basin.loss_gap_min < -40
    assert not est.converged
    assert any("left the basin" in w for w in est.warnings)
    assert any("left the basin" in f for f in estimate_failures(est, "full"))


@pytest.mark.timeout(300)
def test_stop_rule_ends_a_run_that_left_the_basin():
    cfg = quadratic_cfg(10.0, **{"sampler.stop": "converged", "sampler.steps": 500, "sampler.max_steps": 64_000})
    posterior = off_centre_posterior(cfg, energy=50.0)
    rule = stop_rule(cfg.sampler, posterior.nbeta, posterior.L0, "full")
    chains = run_chains(build_sampler(posterior, cfg.sampler), posterior, cfg.sampler,
                        problem_keys(cfg.seed)["sampler"], stop_rule=rule)
    assert chains.stop_reason == "left_basin"
    assert chains.steps < 64_000  # stopped at the first check, not at the budget
    assert targets_of(cfg.sampler).rhat == cfg.sampler.target_rhat


def test_basin_check_numbers():
    nbeta, L0 = 100.0, 1.0
    loss = np.array([[1.05, 1.02, 1.03], [1.04, 1.01, 1.06]])
    dist2 = np.array([[4.0, 4.0, 4.0], [1.0, 1.0, 1.0]])
    valid = np.array([True, True])
    record, warning = basin_check(loss, valid, nbeta, L0, 0.5, "full", dist2, gamma=2.0, n_params=8)
    assert record.loss_gap_min == pytest.approx(100 * 0.01)
    assert record.dist_rms == pytest.approx(math.sqrt(2.5))
    assert record.localization_radius == pytest.approx(2.0)  # sqrt(d/γ)
    assert record.dist_ratio == pytest.approx(math.sqrt(2.5) / 2.0)
    assert not record.left and warning is None
    # one draw 0.05 below L0 is nβ·0.05 = 5 below: past 3 + 3·0.5 = 4.5
    low = loss.copy()
    low[1, 2] = 0.95
    record, warning = basin_check(low, valid, nbeta, L0, 0.5, "full")
    assert record.left and record.gap_threshold == pytest.approx(4.5) and "left the basin" in warning
    # ... unless that chain was excluded (non-finite), or the trace is a minibatch one (its own noise dips)
    assert not basin_check(low, np.array([True, False]), nbeta, L0, 0.5, "full")[0].left
    record, warning = basin_check(low, valid, nbeta, L0, 0.5, "batch")
    assert not record.left and record.loss_gap_min is None and warning is None


def test_basin_allowance_follows_the_centres_gradient():
    """A residual gradient g at w* lets the draws go nβ·|g|·3/sqrt(γ) below L0; never less than 3."""
    nbeta, gamma = 587.0, 12.1
    tol_floor = math.sqrt(100) / nbeta  # the ERM tolerance's floor (docs/targets.md): |g| up to sqrt(100)/(nβ)
    assert basin_allowance(nbeta, gamma, tol_floor) == pytest.approx(3 * math.sqrt(100 / gamma))  # 8.6
    assert basin_allowance(nbeta, gamma, math.sqrt(gamma) / nbeta) == pytest.approx(3.0)
    assert basin_allowance(nbeta, gamma, 1e-10) == 3.0  # an exact centre (DLN, quadratic) keeps the 3
    assert basin_allowance(nbeta, gamma, None) == 3.0
    # the estimate uses it: a dip of 5 in nβ·L fires at allowance 3 (+3·0.5), not at 8.6
    loss = np.array([[1.05, 1.02, 0.95], [1.04, 1.01, 1.06]])
    args = (loss, np.array([True, True]), 100.0, 1.0, 0.5, "full")
    assert basin_check(*args)[0].left
    assert not basin_check(*args, allowance=basin_allowance(nbeta, gamma, tol_floor))[0].left


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_basin_flag_quiet_on_the_quick_suite(tmp_path):
    for job in validation_jobs(["hmc", "sgld"], "quick"):
        basin = run_job(job.config, runs_root=tmp_path).metrics.estimate.basin
        assert basin is not None and not basin.left, (job.key, basin)
        assert basin.loss_gap_min > -basin.gap_threshold
        assert 0 < basin.dist_ratio < 1.5, (job.key, basin)  # the chains stay within the localization scale
