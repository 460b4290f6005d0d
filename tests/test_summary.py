"""The one-line run summary (`llc.summary.summary_line`) on Metrics objects: it says what happened."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from llc.estimator import estimate
from llc.records import Metrics, Stopping
from llc.summary import budget_hint, relaxation_warning, summary_line

MAIN_METRICS = Path(__file__).parent / "data" / "metrics_main_7771e83.json"
NAN = float("nan")


def _metrics(loss_trace: str = "full", **estimate_fields) -> Metrics:
    base = Metrics.from_dict(json.loads(MAIN_METRICS.read_text()))
    return replace(base, loss_trace=loss_trace, estimate=replace(base.estimate, **estimate_fields))


def _from_trace(loss: np.ndarray, theta: np.ndarray | None, loss_trace: str) -> Metrics:
    """Metrics whose estimate is what llc.estimator computes from this trace."""
    valid = np.all(np.isfinite(loss), axis=1)
    est = estimate(loss, 100.0, 1.0, valid, theta, loss_trace)
    base = Metrics.from_dict(json.loads(MAIN_METRICS.read_text()))
    return replace(base, loss_trace=loss_trace, n_chains=loss.shape[0], estimate=est)


def test_frozen_chains_are_not_reported_as_one_chain():
    """4 finite chains whose draws never move: R̂ is undefined, and the line says why, not '(1 chain)'."""
    metrics = _from_trace(np.full((4, 500), 1.5), None, "full")
    assert metrics.estimate.n_chains_used == 4 and metrics.estimate.converged is False
    line = summary_line(metrics)
    assert "1 chain" not in line
    assert "R̂ n/a (4 chains, draws constant within chains: frozen?)" in line
    assert line.endswith("not converged: loss R̂ undefined")


def test_one_finite_chain_of_four_is_named():
    rng = np.random.default_rng(0)
    loss = 1.0 + 0.1 * rng.standard_normal((4, 500))
    loss[1:, 10] = np.inf
    line = summary_line(_from_trace(loss, None, "full"))
    assert "R̂ n/a (1 of 4 chains finite)" in line
    assert "not converged: loss R̂ undefined (one finite chain)" in line


def test_one_chain_run_keeps_its_wording():
    line = summary_line(replace(_metrics(rhat=None, n_chains_used=1, n_chains_diverged=0, converged=False), n_chains=1))
    assert "R̂ n/a (1 chain)" in line and "not converged" in line


def test_sg_summary_leads_with_theta_rhat_and_says_why_not_converged():
    """Minibatch trace: the loss R̂ is ≈ 1 whatever happens; the θ R̂ decided `converged` and leads."""
    rng = np.random.default_rng(1)
    loss = 1.0 + 0.1 * rng.standard_normal((4, 2000))
    stuck = rng.standard_normal((4, 2000, 4)) * 0.1 + np.arange(4)[:, None, None]
    metrics = _from_trace(loss, stuck, "batch")
    assert metrics.estimate.rhat < 1.01 and metrics.estimate.converged is False
    line = summary_line(metrics)
    diagnostics = line.split("  ")[1:]
    assert diagnostics[0].startswith("R̂(θ) ") and float(diagnostics[0].split()[1]) > 2
    assert diagnostics[1].startswith("minibatch-loss R̂ ") and diagnostics[2].startswith("minibatch-loss ESS ")
    assert diagnostics[-1].startswith("not converged: R̂(θ) ") and diagnostics[-1].endswith("> 1.01")

    mixed = _from_trace(loss, rng.standard_normal((4, 2000, 4)), "batch")
    assert summary_line(mixed).endswith("  converged") and mixed.estimate.converged


def test_full_trace_summary_names_each_failed_criterion():
    line = summary_line(_metrics(rhat=1.2, ess_bulk=150.0, n_chains_used=4, converged=False), cached=True)
    assert line.startswith("λ̂ = ") and "R̂ 1.200  ESS 150" in line
    assert line.endswith("not converged: loss R̂ 1.200 > 1.01; ESS 150 < 400 (100 per chain) [cached]")
    ok = summary_line(_metrics(rhat=1.001, ess_bulk=1500.0, n_chains_used=4, converged=True))
    assert ok.endswith("  converged") and "R̂ 1.001  ESS 1500" in ok


def test_diverged_chains_and_missing_values_do_not_crash():
    line = summary_line(_metrics(llc_se=None, ess_bulk=None, n_chains_used=3, n_chains_diverged=1, converged=False))
    assert "3 of 4 chains finite" in line and "ESS n/a" in line and "± " not in line.split("  ")[0]


def test_budget_stop_says_how_to_get_more_steps():
    """A run whose budget ran out gets a hint naming the key and a larger value; other stops get none."""
    def stopped(reason: str) -> Metrics:
        stop = Stopping(rule="converged", reason=reason, steps=976_000, thinning=256, checks=30,
                        fde_per_chain=57_971.0, failures=["loss R̂ 1.026 > 1.01"] if reason == "budget" else [])
        return replace(_metrics(converged=reason == "converged"), stopping=stop)

    hint = budget_hint(stopped("budget"))
    assert hint is not None and "--set sampler.max_steps=3904000" in hint
    assert budget_hint(stopped("converged")) is None and budget_hint(stopped("left_basin")) is None
    assert budget_hint(replace(_metrics(), stopping=None)) is None


def test_short_relaxation_is_warned_about():
    """SG runs that covered few relaxation times 1/(hγ) get a warning; full-batch runs (None) and long runs do not."""
    def relaxed(times: float | None) -> Metrics:
        stop = Stopping(rule="converged", reason="converged", steps=320_000, thinning=160, checks=1,
                        fde_per_chain=6096.0, failures=[], relaxation_times=times)
        return replace(_metrics(converged=True), stopping=stop)

    warning = relaxation_warning(relaxed(0.24))
    assert warning is not None and "0.24 relaxation times" in warning
    assert relaxation_warning(relaxed(2.0)) is None  # the stop rule's default minimum (docs/convergence.md)
    assert relaxation_warning(relaxed(None)) is None
    # a run whose own warnings already say it (sampler.min_relaxation was set) is not warned about twice
    own = relaxed(0.24)
    own = replace(own, estimate=replace(own.estimate, warnings=["the SG chains ran 0.24 relaxation times 1/(hγ) ..."]))
    assert relaxation_warning(own) is None
    # a run short of its own recorded minimum was warned about by run_job; one whose minimum was turned down
    # below the default (min_relaxation=0) and met it still gets this warning
    def ruled(minimum: float) -> Metrics:
        short = relaxed(0.24)
        return replace(short, stopping=replace(short.stopping, min_relaxation=minimum))

    assert relaxation_warning(ruled(8.0)) is None
    assert "0.24 relaxation times" in relaxation_warning(ruled(0.0))
    assert relaxation_warning(replace(_metrics(), stopping=None)) is None
