"""Expand a `Study` into jobs: one sampler on one problem with one seed.

Each job is resolved with `llc.config.resolve_config` exactly as `llc run` would
resolve the same settings, so its run ID is the one `llc run` computes and a
finished job is found in the cache by either command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llc.config import Config, config_to_dict, resolve_config
from llc.errors import ConfigError
from llc.hashing import content_hash
from llc.runs import family_id, run_id
from llc.runs.layout import cache_miss_reason
from llc.study.spec import ProblemSpec, ReferenceSpec, SamplerSpec, Study

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
    is_reference: bool = False  # the family's reference run (docs/sweeps.md, "A reference λ")

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

    With a reference (`study.reference`), each family's reference job comes first, all of them
    before the other jobs (`reference_jobs`). Raises `ConfigError` (naming the entry) if any job cannot be resolved, or if two jobs
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
    if study.reference is not None:
        jobs = reference_jobs(study, study.reference, jobs)
    return jobs


def _non_sampler(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in layer.items() if not k.startswith("sampler.")}


def _resolve_reference(study: Study, ref: ReferenceSpec, p: ProblemSpec, s: SamplerSpec, job: Job) -> Config:
    """The reference sampler on the job's posterior: every non-sampler setting of the job's layers, then
    the preset's settings for the reference sampler and the reference's own `sampler.*` keys. The
    compared samplers' `sampler.*` settings (in base.set, a problem or an entry) do not reach it."""
    overrides: dict[str, Any] = {}
    for layer in (study.base, p.set, s.set):
        overrides.update(_non_sampler(layer))
    overrides.update(ref.set)
    overrides["seed"] = job.seed
    where = f"{ref.where} on {_combo(p, s, job.seed)}"
    try:
        cfg = resolve_config(preset=study.preset, overrides=overrides, sampler=ref.sampler)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if family_id(cfg) != job.family_id:  # the resolver derived a problem key from sampler settings
        raise ConfigError(f"{where}: the reference does not sample the job's posterior (family "
                          f"{family_id(cfg)} against {job.family_id}); report this as a bug")
    return cfg


def reference_jobs(study: Study, ref: ReferenceSpec, jobs: Sequence[Job]) -> list[Job]:
    """The jobs with one reference per family (problem, seed, precision, ...: everything but the
    sampler) in front. A study job whose config is the reference's is that family's reference
    (it runs once); otherwise a job `<problem>/<reference label>/seed<seed>` is added."""
    problems = {p.name: p for p in study.problems}
    samplers = {s.label: s for s in study.samplers}
    by_run = {j.run_id: j for j in jobs}
    keys = {j.key for j in jobs}
    refs: dict[str, Job] = {}  # family_id -> its reference job
    for job in jobs:
        if job.family_id in refs:
            continue
        cfg = _resolve_reference(study, ref, problems[job.problem], samplers[job.sampler], job)
        rid = run_id(cfg)
        same = by_run.get(rid)
        if same is not None:
            refs[job.family_id] = dataclasses.replace(same, is_reference=True)
            continue
        key = job_key(job.problem, ref.label, job.seed)
        if key in keys:  # a second family on this problem and seed (an entry set a problem key)
            key = job_key(job.problem, f"{ref.label}-{job.family_id.removeprefix('fam-')[:8]}", job.seed)
        keys.add(key)
        refs[job.family_id] = Job(key=key, problem=job.problem, sampler=ref.label, seed=job.seed, config=cfg,
                                  run_id=rid, family_id=job.family_id, is_reference=True)
    reused = {j.run_id for j in refs.values()}
    return [*refs.values(), *(j for j in jobs if j.run_id not in reused)]


def sweep_id(jobs: Sequence[Job]) -> str:
    """Deterministic from the job list (job names, their run IDs and which are references), independent of order."""
    return f"sweep-{content_hash(sorted([j.key, j.run_id, *(['reference'] if j.is_reference else [])] for j in jobs))}"


def is_done(runs_root: str | Path, job: Job) -> bool:
    """A job is done when its run directory is a complete run of the job's own config
    (`llc.runs.layout.cache_miss_reason`); a damaged one is recomputed (and moved aside) by `run_job`."""
    return cache_miss_reason(Path(runs_root) / job.run_id, config_to_dict(job.config)) is None
