"""The one-line summary `llc run` prints on stderr, built from a run's `Metrics` alone.

It shows the diagnostics that decided `converged` (`llc.estimator.estimate_failures`: the
criteria that set the flag) and, when the run did not converge, why. For a minibatch loss trace
(SGLD, SGHMC by default) it leads with R̂ of the θ projections: the loss R̂ and ESS there are those of
minibatch losses and are labelled so.
"""

from __future__ import annotations

from llc.estimator import estimate_failures, is_finite_number
from llc.records import Metrics


def _num(value: float | None, spec: str) -> str | None:
    """`value` formatted with `spec`, or None for a missing or non-finite value."""
    if is_finite_number(value):
        return format(value, spec)
    return None


def _chains_note(metrics: Metrics) -> str:
    """'4 chains', or '3 of 4 chains finite' when some diverged."""
    est = metrics.estimate
    total = metrics.n_chains if isinstance(metrics.n_chains, int) else est.n_chains_used
    used = est.n_chains_used if isinstance(est.n_chains_used, int) else total
    if used != total:
        return f"{used} of {total} chains finite"
    return f"{total} chain" + ("" if total == 1 else "s")


def rhat_text(metrics: Metrics) -> str:
    """'1.004', or why there is no R̂: one chain, one finite chain, or draws that do not vary."""
    value = _num(metrics.estimate.rhat, ".3f")
    if value is not None:
        return value
    used = metrics.estimate.n_chains_used
    if isinstance(used, int) and used < 2:
        return f"n/a ({_chains_note(metrics)})"
    return f"n/a ({_chains_note(metrics)}, draws constant within chains: frozen?)"


def diagnostics(metrics: Metrics) -> list[str]:
    """The diagnostics that decide `converged`, the deciding one first."""
    est = metrics.estimate
    ess = _num(est.ess_bulk, ".0f") or "n/a"
    theta = _num(est.rhat_theta, ".3f")
    if metrics.loss_trace == "batch":
        return [f"R̂(θ) {theta or 'n/a'}", f"minibatch-loss R̂ {rhat_text(metrics)}", f"minibatch-loss ESS {ess}"]
    out = [f"R̂ {rhat_text(metrics)}", f"ESS {ess}"]
    if theta is not None:
        out.append(f"R̂(θ) {theta}")
    return out


def verdict(metrics: Metrics) -> str:
    """'converged', or 'not converged: <each failed criterion>' (the run's own targets when it recorded them)."""
    est = metrics.estimate
    if metrics.stopping is not None:
        failures = list(metrics.stopping.failures)
    else:
        failures = estimate_failures(est, metrics.loss_trace)
    if est.converged:
        return "converged"
    return "not converged: " + ("; ".join(failures) if failures else "see metrics.json")


def stop_text(metrics: Metrics) -> str | None:
    """'stopped at 224 000 steps (converged, 14 969 FDE per chain)' for runs sampled until converged."""
    stop = metrics.stopping
    if stop is None or stop.rule != "converged":
        return None
    why = {"converged": "targets met", "budget": "budget spent", "diverged": "every chain diverged",
           "left_basin": "chains left the basin of w*"}
    return f"stopped at {stop.steps:,} steps ({why.get(stop.reason, stop.reason)}, {stop.fde_per_chain:,.0f} FDE/chain)"


BUDGET_FACTOR = 4  # the suggested rerun's budget, relative to the steps the run used


def budget_hint(metrics: Metrics) -> str | None:
    """What to do when sampling stopped at its budget before the targets were met (None otherwise)."""
    stop = metrics.stopping
    if stop is None or stop.rule != "converged" or stop.reason != "budget":
        return None
    return (f"the budget ran out before the targets were met; λ̂ may still be drifting. For more steps: "
            f"--set sampler.max_steps={BUDGET_FACTOR * stop.steps} (a new run), or a full-batch sampler "
            "(--sampler hmc), which mixes in fewer gradient evaluations on small models (docs/convergence.md)")


def relaxation_warning(metrics: Metrics) -> str | None:
    """An SG run that ran fewer relaxation times 1/(hγ) than the stop rule's default minimum (None otherwise,
    and None when the run's own warnings already say so: `sampler.min_relaxation` was set)."""
    from llc.samplers.sg_params import DEFAULT_MIN_RELAXATION

    stop = metrics.stopping
    times = stop.relaxation_times if stop is not None else None
    if times is None or times >= DEFAULT_MIN_RELAXATION:
        return None
    if stop.min_relaxation is not None:
        warned_by_run = times < stop.min_relaxation  # run_job warned and marked the run not converged
    else:  # runs written before metrics recorded `min_relaxation`: their own warning says "relaxation times"
        warned_by_run = any("relaxation times" in w for w in metrics.estimate.warnings or [])
    if warned_by_run:
        return None
    return (f"the SG chains ran {times:.2g} relaxation times 1/(hγ) of the directions only γ holds (fewer than "
            f"{DEFAULT_MIN_RELAXATION:g}); on singular models λ̂ can still be on a plateau that R̂ does not see "
            "(docs/convergence.md). Check it against a longer run or a full-batch sampler")


def summary_line(metrics: Metrics, cached: bool = False) -> str:
    """'λ̂ = 6.1 ± 0.71  (λ true 6.5)  R̂ 1.006  ESS 1406  R̂(θ) 1.003  converged'."""
    est = metrics.estimate
    mean = _num(est.llc_mean, ".4g") or "n/a"
    se = _num(est.llc_se, ".2g")
    parts = [f"λ̂ = {mean}" + (f" ± {se}" if se is not None else "")]
    truth = _num(metrics.lambda_true, ".4g")
    if truth is not None:
        parts.append(f"(λ true {truth})")
    if est.n_chains_diverged:
        parts.append(_chains_note(metrics))
    parts += diagnostics(metrics)
    parts.append(verdict(metrics))
    stop = stop_text(metrics)
    if stop is not None:
        parts.append(stop)
    return "  ".join(parts) + (" [cached]" if cached else "")
