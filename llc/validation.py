"""`llc validate`: every sampler, at its default settings, against analytic λ (notes §6).

Cases: the anisotropic quadratic (curvature spectrum 1:1000, exact finite-nβ value), a single
linear layer (regular, λ = d/2), and deep linear networks including every worked value of the
notes (Aoyagi's closed form). Data-based cases average over several data seeds; the tolerance is
a relative error plus the data-set fluctuation that no sampler removes, 2·sqrt(λ/(2 log n))/sqrt(seeds).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llc.config import SAMPLER_KEYS, resolve_config
from llc.errors import ConfigError, LLCError
from llc.executors import OK_STATES, Executor, JobUpdate, run_sweep
from llc.records import Metrics
from llc.runs import default_runs_root, family_id, run_id, run_job
from llc.runs.layout import write_text_atomic
from llc.study import Job, job_key

# Relative tolerance per sampler: exact-in-the-limit samplers get 10%, SG samplers 15%.
REL_TOL = {"hmc": 0.10, "nuts": 0.10, "mclmc": 0.10, "mclmc_adjusted": 0.10, "sgld": 0.15, "sghmc": 0.15}
RHAT_MAX = 1.01


@dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    uses_data: bool = True


# Samplers that can record minibatch losses (those with a `loss_trace` key: SGLD, SGHMC) record the
# exact L_n at each kept draw here (`loss_trace: full`) instead of their preset's minibatch losses: a minibatch trace is dominated by its own noise, so its R̂ is ≈ 1.000 whether or not
# the chains have mixed, and the R̂ ≤ 1.01 rule would be one that cannot fail. Here the exact loss costs
# nothing extra in wall time (closed form: moments or the quadratic); it counts 1 FDE per draw.
EXACT_TRACE = "sampler.loss_trace=full"

# The suite's models are linear in x, so full-batch samplers evaluate the exact L_n from the data's
# second moments (posterior.full_loss=moments): same numbers, cost independent of n. Minibatch
# gradients (SGLD, SGHMC) still draw data rows.
MOMENTS = "posterior.full_loss=moments"


def _dln(widths: Sequence[int], rank: int) -> Case:
    w = list(widths)
    return Case(
        name=f"dln_{'-'.join(map(str, w))}_r{rank}",
        overrides=(
            "target.kind=dln", f"target.in_dim={w[0]}", f"target.out_dim={w[-1]}",
            f"target.hidden=[{','.join(map(str, w[1:-1]))}]", f"target.rank={rank}", MOMENTS,
        ),
    )


QUADRATIC = Case("quadratic_1to1000", ("target.kind=quadratic", "target.dim=20", "target.curvature_ratio=1000"), False)
LINEAR = Case("linear_10x2", ("target.kind=mlp", "target.hidden=[]", "target.in_dim=10", "target.out_dim=2", MOMENTS))
# The worked values of notes §6. DLN [8,5,2], r = 1 (Aoyagi 6.5) is deliberately not a case: at this
# suite's generic ERM centre the later factor has full rank, the product map is a submersion and the
# *local* coefficient is 16/2 = 8, which all six samplers measure (7.81-7.97); a centre that realises
# 6.5 there moves the notes' worked values instead. See docs/targets.md and docs/validation.md.
WORKED_DLN = [
    ([5, 3, 5], 0), ([5, 4, 5], 0), ([4, 3, 8], 0), ([3, 8, 4], 0), ([10, 5, 10], 5),
    ([3, 3, 3], 3), ([4, 3, 8], 2), ([5, 5, 5, 5], 2),
]

SUITES: dict[str, dict[str, Any]] = {
    # quick: a handful of cases, one data seed, n = 5000 — minutes on a laptop CPU.
    "quick": {"cases": [QUADRATIC, LINEAR, _dln([5, 3, 5], 0), _dln([4, 3, 8], 2)], "seeds": [0],
              "data": ["data.n=5000"]},
    # full: every worked value, 4 data seeds, n = 20000.
    "full": {"cases": [QUADRATIC, LINEAR, *[_dln(w, r) for w, r in WORKED_DLN]], "seeds": [0, 1, 2, 3],
             "data": ["data.n=20000"]},
}

_CASES = {c.name: c for suite in SUITES.values() for c in suite["cases"]}

COLUMNS = ["case", "sampler", "lambda_true", "llc_mean", "llc_se", "seed_spread", "rel_error", "tolerance",
           "rhat_max", "rhat_theta_max", "ess_min", "loss_trace", "seconds", "n_seeds", "passed", "missed"]


def tolerance(sampler: str, lam: float, n: int, n_seeds: int, uses_data: bool) -> float:
    """Absolute tolerance: rel·λ plus the 2σ data-set fluctuation of a mean over `n_seeds` seeds."""
    tol = REL_TOL.get(sampler, 0.10) * lam
    if uses_data:
        tol += 2 * math.sqrt(lam / (2 * math.log(n))) / math.sqrt(n_seeds)
    return tol


def validation_jobs(samplers: Sequence[str], preset: str = "quick", cases: Sequence[str] | None = None) -> list[Job]:
    """Every (case, sampler, seed) job of the suite, resolved exactly as `llc run` would (same run IDs)."""
    if preset not in SUITES:
        raise ConfigError(f"--preset: {preset!r} is not a validation suite; choose one of {', '.join(SUITES)}")
    suite = SUITES[preset]
    selected = suite["cases"]
    if cases:
        names = [c.name for c in selected]
        unknown = [c for c in cases if c not in names]
        if unknown:
            raise ConfigError(f"--cases: unknown {', '.join(unknown)}; the {preset} suite has {', '.join(names)}")
        selected = [c for c in selected if c.name in cases]
    jobs = []
    for case in selected:
        for sampler in samplers:
            trace = [EXACT_TRACE] if "loss_trace" in SAMPLER_KEYS.get(sampler, ()) else []
            for seed in suite["seeds"]:
                cfg = resolve_config(preset, [*suite["data"], *case.overrides, f"seed={seed}", *trace], sampler=sampler)
                jobs.append(Job(key=job_key(case.name, sampler, seed), problem=case.name, sampler=sampler, seed=seed,
                                config=cfg, run_id=run_id(cfg), family_id=family_id(cfg)))
    return jobs


def validate(
    samplers: Sequence[str],
    preset: str = "quick",
    runs_root: str | Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    cases: Sequence[str] | None = None,
    executor: Executor | None = None,
    on_job: Callable[[JobUpdate], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the suite for `samplers` (optionally only the named `cases`); one row per (case, sampler)."""
    return validate_jobs(validation_jobs(samplers, preset, cases), runs_root, on_row=on_row, executor=executor,
                         on_job=on_job, source=f"llc validate --preset {preset}")


def validate_jobs(
    jobs: Sequence[Job],
    runs_root: str | Path | None = None,
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    executor: Executor | None = None,
    on_job: Callable[[JobUpdate], None] | None = None,
    source: str = "llc validate",
) -> list[dict[str, Any]]:
    """Run validation `jobs` (from `validation_jobs`) and summarise them, one row per (case, sampler).

    Without an executor the jobs run one after another in this process. With one (e.g. a local
    worker pool or SLURM) every job not yet cached is first run there as a sweep, resumably; the
    rows are then read from the cached runs; `on_job` sees each job's status updates.
    """
    jobs = list(jobs)
    unknown = sorted({j.problem for j in jobs} - set(_CASES))
    if unknown:
        raise ConfigError(f"validation jobs: {', '.join(unknown)} is not a validation case")
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    if executor is not None:
        manifest = run_sweep(jobs, executor, root, source=source,
                             on_update=(lambda update, _: on_job(update)) if on_job else None)
        bad = {k: j for k, j in manifest.get("jobs", {}).items() if j.get("status") not in OK_STATES}
        if bad:
            first = next(iter(bad.items()))
            raise LLCError(f"{len(bad)} of {len(jobs)} validation jobs did not finish (first: {first[0]}: "
                           f"{first[1].get('status')}, {first[1].get('error') or 'no error recorded'}); "
                           "rerun to resume, finished jobs are cached")
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.problem, job.sampler), []).append(job)
    rows = []
    for (case, sampler), group in groups.items():
        results = [run_job(j.config, runs_root=root).metrics for j in group]
        rows.append(_summarise(_CASES[case], sampler, results))
        if on_row:
            on_row(rows[-1])
    return rows


def _summarise(case: Case, sampler: str, results: list[Metrics]) -> dict[str, Any]:
    lam = float(results[0].lambda_true)
    means = np.array([r.estimate.llc_mean for r in results])
    ses = np.array([r.estimate.llc_se for r in results])
    mean = float(means.mean())
    tol = tolerance(sampler, lam, int(results[0].n_data), len(results), case.uses_data)
    rhats = [r.estimate.rhat if r.estimate.rhat is not None else math.inf for r in results]
    missed = [name for name, ok in (("λ", abs(mean - lam) <= tol), ("R̂", max(rhats) <= RHAT_MAX)) if not ok]
    return {
        "case": case.name,
        "sampler": sampler,
        "lambda_true": lam,
        "llc_mean": mean,
        "llc_se": float(np.sqrt(np.sum(ses**2)) / len(ses)),
        "seed_spread": float(means.std(ddof=1)) if len(means) > 1 else 0.0,
        "rel_error": (mean - lam) / lam,
        "tolerance": tol,
        "rhat_max": max(rhats),
        # Not part of the pass rule (notes §3 and the issue define R̂ on the loss trace): θ includes the
        # directions along which the loss is exactly flat, where only γ moves the chains.
        "rhat_theta_max": float(np.max([math.nan if r.estimate.rhat_theta is None else r.estimate.rhat_theta
                                         for r in results])),
        "ess_min": min(r.estimate.ess_bulk for r in results),
        "loss_trace": results[0].loss_trace,  # "full" for every sampler here (EXACT_TRACE)
        # compute time of the runs (from their metrics), the same whether they ran now or came from the cache
        "seconds": float(sum(r.timing.total_s for r in results)),
        "n_seeds": len(results),
        "passed": not missed,
        "missed": "+".join(missed),  # which part of the rule failed: λ (tolerance), R̂, or both
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'case':<20} {'sampler':<15} {'λ true':>8} {'λ̂ ± SE':>18} {'spread':>7} {'rel err':>8} " \
             f"{'R̂ max':>6} {'R̂ θ':>6} {'ESS min':>8} {'trace':>5} {'s':>7}  ok"
    lines = [header, "-" * len(header)]
    for r in rows:
        est = f"{r['llc_mean']:.3f} ± {r['llc_se']:.3f}"
        lines.append(
            f"{r['case']:<20} {r['sampler']:<15} {r['lambda_true']:>8.3f} {est:>18} {r['seed_spread']:>7.3f} "
            f"{r['rel_error']:>+8.2%} {r['rhat_max']:>6.3f} {r['rhat_theta_max']:>6.3f} {r['ess_min']:>8.0f} {r['loss_trace']:>5} {r['seconds']:>7.1f}  "
            f"{'yes' if r['passed'] else 'NO ' + r['missed']}"
        )
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def check_samplers(names: Sequence[str], available: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"--samplers: unknown {', '.join(unknown)}; available: {', '.join(available)}")
    if not names:
        raise ConfigError(f"--samplers: empty list; choose from {', '.join(available)}")
    return list(names)
