"""Expand a `Study` into jobs: one sampler on one problem with one seed.

Each job is resolved with `llc.config.resolve_config` exactly as `llc run` would
resolve the same settings, so its run ID is the one `llc run` computes and a
finished job is found in the cache by either command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llc.config import Config, config_to_dict, resolve_config
from llc.errors import ConfigError
from llc.hashing import content_hash
from llc.runs import family_id, run_id
from llc.runs.layout import cache_miss_reason
from llc.study.spec import ProblemSpec, SamplerSpec, Study

MAX_JOBS = 20_000  # jobs of one sweep (100 000 resolved jobs peak at ~410 MB): checked before any is resolved


@dataclass(frozen=True)
class Job:
    key: str  # "<problem>/<sampler label>/seed<seed>": the job's name in the manifest
    problem: str
    sampler: str  # sampler label
    seed: int
    config: Config
    run_id: str
    family_id: str

    @property
    def sampler_name(self) -> str:
        return self.config.sampler.name


def job_key(problem: str, sampler: str, seed: int) -> str:
    return f"{problem}/{sampler}/seed{seed}"


def _resolve(study: Study, layers: Sequence[Mapping[str, Any]], sampler: str | None, seed: int | None) -> Config:
    overrides: dict[str, Any] = {}
    for layer in (study.base, *layers):
        overrides.update(layer)
    if seed is not None:
        overrides["seed"] = seed
    return resolve_config(preset=study.preset, overrides=overrides, sampler=sampler)


def _check_parts(study: Study) -> None:
    """Resolve the base, each problem and each sampler alone so an error names its entry."""
    try:
        _resolve(study, [], None, None)
    except ConfigError as exc:
        where = study.base_where if study.base else f"--preset {study.preset}"
        raise ConfigError(f"{where}: {exc}") from None
    for s in study.samplers:
        try:
            _resolve(study, [s.set], s.sampler, None)
        except ConfigError as exc:
            raise ConfigError(f"{s.where}{'.set' if s.set else ''}: {exc}") from None
    for p in study.problems:
        # A problem is at fault when it fails with every sampler (alone, without the sampler's
        # settings); a failure with only some samplers is reported for that combination.
        errors = []
        for s in study.samplers:
            try:
                _resolve(study, [p.set], s.sampler, None)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == len(study.samplers):
            raise ConfigError(f"{p.where}.set: {errors[0]}") from None


def _combo(p: ProblemSpec, s: SamplerSpec, seed: int) -> str:
    """`study.yaml: problems[0] (small) x samplers[1] (sgld-2), seed 0`."""
    p_file, _, _ = p.where.rpartition(": ")
    s_file, _, s_rest = s.where.rpartition(": ")
    s_where = s_rest if p_file == s_file else s.where
    return f"{p.where} ({p.name}) x {s_where} ({s.label}), seed {seed}"


def _resolve_job(study: Study, p: ProblemSpec, s: SamplerSpec, seed: int) -> Config:
    try:
        return _resolve(study, [p.set, s.set], s.sampler, seed)
    except ConfigError as exc:
        raise ConfigError(f"{_combo(p, s, seed)}: {exc}") from None


def expand_jobs(study: Study) -> list[Job]:
    """All jobs of the study, problems outermost, then seeds, then samplers (a family at a time).

    Raises `ConfigError` (naming the entry) if any job cannot be resolved, or if two jobs
    resolve to the same configuration (they would be the same run).
    """
    n_jobs = len(study.problems) * len(study.samplers) * len(study.seeds)
    if n_jobs > MAX_JOBS:
        raise ConfigError(
            f"{study.source}: {len(study.problems)} problems x {len(study.samplers)} samplers x {len(study.seeds)} "
            f"seeds = {n_jobs} jobs; at most {MAX_JOBS} in one sweep (split it into several studies)"
        )
    _check_parts(study)
    jobs: list[Job] = []
    by_run: dict[str, str] = {}
    for p in study.problems:
        for seed in study.seeds:
            for s in study.samplers:
                cfg = _resolve_job(study, p, s, seed)
                key = job_key(p.name, s.label, seed)
                rid = run_id(cfg)
                if rid in by_run:
                    raise ConfigError(
                        f"{_combo(p, s, seed)}: resolves to the same run "
                        f"as job {by_run[rid]} ({rid}); remove one of them or make their settings differ"
                    )
                by_run[rid] = key
                jobs.append(Job(key=key, problem=p.name, sampler=s.label, seed=seed, config=cfg,
                                run_id=rid, family_id=family_id(cfg)))
    return jobs


def sweep_id(jobs: Sequence[Job]) -> str:
    """Deterministic from the job list (job names and their run IDs), independent of order."""
    return f"sweep-{content_hash(sorted([j.key, j.run_id] for j in jobs))}"


def is_done(runs_root: str | Path, job: Job) -> bool:
    """A job is done when its run directory is a complete run of the job's own config
    (`llc.runs.layout.cache_miss_reason`); a damaged one is recomputed (and moved aside) by `run_job`."""
    return cache_miss_reason(Path(runs_root) / job.run_id, config_to_dict(job.config)) is None
