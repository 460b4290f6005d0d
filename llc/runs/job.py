"""`run_job(config)`: one job = (problem, sampler, seed) -> a complete run directory.

Work happens in a staging directory that is renamed into `runs_root/<run_id>`
at the very end, so a run directory is complete or absent. A finished run is
returned from the cache unless `force` is set.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llc.config import Config, config_to_dict
from llc.estimator import basin_allowance, efficiency, estimate, estimate_failures, finite_chains
from llc.records import Estimate, Metrics, Stopping, Timing, Work
from llc.runs import layout
from llc.runs.ids import family_id, run_id
from llc.stopping import stop_rule, targets_of
from llc.version import code_version

# JAX, BlackJAX and ArviZ (targets, posterior, samplers, trace.nc) are imported by run_job after the
# cache lookup: returning a finished run needs none of them.
if TYPE_CHECKING:
    from llc.posterior import Posterior
    from llc.samplers import ChainRun
    from llc.targets import Target

DEFAULT_RUNS_DIR = "runs"

ProgressFn = Callable[..., None]  # (phase, done, total, note=""): the note is the stop rule's progress


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: Metrics
    cached: bool


def default_runs_root() -> Path:
    return Path(os.environ.get("LLC_RUNS_DIR") or DEFAULT_RUNS_DIR)


def load_cached(run_dir: Path) -> Metrics | None:
    """The metrics of a complete run directory (`layout.is_complete`), or None."""
    return layout.load_metrics(run_dir)


def run_job(
    cfg: Config,
    runs_root: str | Path | None = None,
    force: bool = False,
    on_progress: ProgressFn | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one job (or return its cached result) and return its run directory and metrics.

    A directory at the job's path that is not a finished run of this very config (damaged, or a
    renamed copy of another job) is moved aside to RUNS_ROOT/_damaged/ and the job recomputed;
    `on_notice` (default: a Python warning) gets one line saying so.
    """
    runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
    rid = run_id(cfg)
    final = runs_root / rid
    if not force and final.exists():
        reason = layout.cache_miss_reason(final, config_to_dict(cfg))
        if reason is None and (cached := load_cached(final)) is not None:
            return RunResult(run_dir=final, metrics=cached, cached=True)
        moved = layout.quarantine(final)
        (on_notice or _warn)(f"{final}: damaged run directory ({reason}); moved to {moved}, recomputing")

    from llc.jax_setup import configure_jax
    from llc.posterior import build_posterior
    from llc.runs.metadata import environment
    from llc.samplers import build_sampler, run_chains
    from llc.targets import build_target, problem_keys

    configure_jax()
    _prefetch_late_imports()
    t_start = time.perf_counter()
    if on_progress:
        on_progress("target", 0, 1)
    target = build_target(cfg, runs_root)
    posterior = build_posterior(cfg, target)
    target_s = time.perf_counter() - t_start
    if on_progress:
        on_progress("target", 1, 1)

    sampler = build_sampler(posterior, cfg.sampler)
    allowance = basin_allowance(posterior.nbeta, posterior.gamma, target.erm.grad_norm)
    rule = stop_rule(cfg.sampler, posterior.nbeta, posterior.L0, cfg.sampler.loss_trace or "full", allowance)
    chains = run_chains(sampler, posterior, cfg.sampler, problem_keys(cfg.seed)["sampler"], on_progress, rule,
                        relaxation_floor(cfg, posterior.gamma))
    valid = finite_chains(chains.loss, chains.theta)
    stats = estimate(chains.loss, posterior.nbeta, posterior.L0, valid, chains.theta, chains.loss_trace,
                     targets_of(cfg.sampler), target.n_params, chains.dist2, posterior.gamma, allowance)
    stats = _with_relaxation_warning(cfg, stats, relaxation_times(cfg, chains, posterior.gamma))
    timing = Timing(target_s=target_s, compile_s=chains.compile_s, warmup_s=chains.warmup_s,
                    sampling_s=chains.sampling_s, total_s=time.perf_counter() - t_start)
    env = environment(cfg.precision)
    metrics = _metrics(cfg, target, posterior, chains, stats, timing, env)
    _write_run_dir(runs_root, cfg, posterior, chains, valid, env, metrics, force)
    # Read back, so a fresh result equals a cached one (NaN stored as None, as in the file).
    return RunResult(run_dir=final, metrics=load_cached(final) or metrics, cached=False)


@functools.cache
def _prefetch_late_imports() -> None:
    """Import what estimation and trace.nc need (ArviZ, xarray, h5netcdf: ~1 s) on a background thread.

    The main thread then builds the target, compiles and samples (mostly on one core: XLA runs small
    programs single-threaded) while the second core loads these modules; by the time `estimate` imports
    arviz_stats it is in sys.modules, or the import waits for the thread to finish it (Python's per-module
    import locks). A failure here is ignored: the main thread's own import then reports it.
    """

    def load() -> None:
        try:
            import arviz_stats  # noqa: F401
            import h5netcdf  # noqa: F401

            import llc.runs.trace  # noqa: F401
        except Exception:  # noqa: BLE001 - the main thread's import raises it again, where it belongs
            pass

    threading.Thread(target=load, name="llc-prefetch-imports", daemon=True).start()


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _metrics(cfg: Config, target: Target, posterior: Posterior, chains: ChainRun, stats: Estimate,
             timing: Timing, env: dict[str, Any]) -> Metrics:
    work = Work(
        fde_warmup=chains.fde_warmup,
        fde_sampling=chains.fde_sampling,
        grad_evals=chains.grad_evals_warmup + chains.grad_evals_sampling,
        grad_evals_warmup=chains.grad_evals_warmup,
        grad_evals_sampling=chains.grad_evals_sampling,
    )
    return Metrics(
        run_id=run_id(cfg),
        family_id=family_id(cfg),
        target_id=target.target_id,
        sampler=cfg.sampler.name,
        seed=cfg.seed,
        precision=cfg.precision,
        n_params=target.n_params,
        n_data=posterior.n,
        beta=posterior.beta,
        nbeta=posterior.nbeta,
        gamma=posterior.gamma,
        estimate=stats,
        lambda_true=posterior.lambda_true,
        L0=posterior.L0,
        loss_trace=chains.loss_trace,
        n_chains=cfg.sampler.chains,
        n_draws=int(chains.loss.shape[1]),
        stop_reason=chains.stop_reason,
        stopping=Stopping(
            rule=cfg.sampler.stop, reason=chains.stop_reason, steps=chains.steps, thinning=chains.thinning,
            checks=chains.n_checks, fde_per_chain=chains.fde_sampling / cfg.sampler.chains,
            failures=estimate_failures(stats, chains.loss_trace, targets_of(cfg.sampler)),
            relaxation_times=relaxation_times(cfg, chains, posterior.gamma),
            min_relaxation=cfg.sampler.min_relaxation),
        erm=target.erm,
        timing=timing,
        work=work,
        efficiency=efficiency(stats.ess_bulk, stats.llc_se, chains.sampling_s, chains.fde_sampling),
        versions=env["versions"],
        code_version=code_version(),
        device=env["device"]["kind"],
    )


def relaxation_rates(cfg: Config, gamma: float, params: Any, warmup_info: dict[str, Any]
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per chain: relaxation times 1/(hγ) per sampling step (h·γ), and those the warm-up ran; None if undefined.

    Directions that only the localization holds relax in 1/(hγ) steps (docs/convergence.md, "Plateaus that R̂
    does not see"). h is the Langevin step per sampler step (`StepControl.langevin`: SGLD's step size; SGHMC's
    ε/α times its integration steps); the fast part of a two-speed warm-up counts at its own step, `warmup_speedup`
    times h. None for full-batch samplers, without γ, and with a preconditioner: its metric speeds the flat
    directions by an unknown factor G ≥ 1, so 1/(hγ) would only bound their time from above.
    """
    from llc.samplers.base import FAST_WARMUP_FRACTION
    from llc.samplers.registry import spec_of

    control = spec_of(cfg.sampler.name).step_control  # None for the full-batch samplers
    if control is None or params is None or not gamma or cfg.sampler.precond != "none":
        return None
    import jax

    h, _ = jax.vmap(control.langevin)(params)
    rate = np.asarray(h, dtype=np.float64) * (cfg.sampler.num_integration_steps or 1) * gamma
    warmup = cfg.sampler.warmup
    if "warmup_speedup" in warmup_info:
        base = int(warmup * FAST_WARMUP_FRACTION)
        # the fast phase's own length when it ran until relaxed (`relaxing_warmup`), else three quarters
        n_fast = np.asarray(warmup_info.get("warmup_fast_steps", base), dtype=np.float64)
        warm_steps = n_fast * np.asarray(warmup_info["warmup_speedup"], dtype=np.float64) + (warmup - base)
    else:
        warm_steps = np.full_like(rate, float(warmup))
    return rate, rate * warm_steps


def relaxation_floor(cfg: Config, gamma: float) -> Callable[[Any, dict[str, Any]], int] | None:
    """With `sampler.min_relaxation` R: the sampling steps before which the stop rule is not asked,
    the most any chain needs to reach R relaxation times (warm-up included)."""
    minimum = cfg.sampler.min_relaxation
    if not minimum:
        return None

    def floor(params: Any, warmup_info: dict[str, Any]) -> int:
        rates = relaxation_rates(cfg, gamma, params, warmup_info)
        if rates is None:
            return 0
        rate, warm = rates
        need = np.ceil(np.maximum(minimum - warm, 0.0) / rate)
        return int(np.max(need)) if np.all(np.isfinite(need)) else 0

    return floor


def relaxation_times(cfg: Config, chains: ChainRun, gamma: float) -> float | None:
    """SG samplers: the relaxation times 1/(hγ) the chains ran, warm-up included; the smallest over chains."""
    rates = relaxation_rates(cfg, gamma, chains.params, chains.warmup_info)
    if rates is None:
        return None
    rate, warm = rates
    return float(np.min(warm + chains.steps * rate))


def _with_relaxation_warning(cfg: Config, stats: Estimate, times: float | None) -> Estimate:
    """A run short of `sampler.min_relaxation` (its budget ended first) is not `converged`: one warning says why."""
    minimum = cfg.sampler.min_relaxation
    if not minimum or times is None or times >= minimum:
        return stats
    warning = (f"the SG chains ran {times:.2g} relaxation times 1/(hγ) of the directions only γ holds, fewer than "
               f"sampler.min_relaxation = {minimum:g}: λ̂ may still be on a plateau that R̂ does not see "
               "(raise sampler.max_steps, or use a full-batch sampler; docs/convergence.md)")
    return dataclasses.replace(stats, converged=False, warnings=[*(stats.warnings or []), warning])


def _write_run_dir(runs_root: Path, cfg: Config, posterior: Posterior, chains: ChainRun, valid: np.ndarray,
                   env: dict[str, Any], metrics: Metrics, force: bool) -> None:
    """Write the run's files into a staging directory and rename it to RUNS_ROOT/<run_id>."""
    from llc.runs.trace import build_trace, write_trace

    rid = metrics.run_id
    attrs = {"run_id": rid, "sampler": cfg.sampler.name, "nbeta": posterior.nbeta, "L0": posterior.L0,
             "loss_trace": chains.loss_trace, "lambda_true": posterior.lambda_true}
    tree = build_trace(chains, posterior.nbeta, posterior.L0, valid, attrs)
    staged = layout.new_staging_dir(runs_root, rid)
    try:
        layout.write_json_atomic(staged / layout.CONFIG, config_to_dict(cfg))
        layout.write_text_atomic(staged / layout.L0_FILE, f"{posterior.L0!r}\n")
        layout.write_json_atomic(staged / layout.ENV, env)
        write_trace(tree, staged / layout.TRACE)
        # last: a run directory without metrics.json is never complete
        layout.write_json_atomic(staged / layout.METRICS, metrics.to_dict())
        layout.publish_dir(staged, runs_root / rid, replace=force)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
