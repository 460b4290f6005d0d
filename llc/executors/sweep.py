"""Run the jobs of a study on an executor, keeping the manifest up to date.

    plan -> manifest.start -> executor.submit -> for each update: manifest.update -> manifest.finish

Jobs whose run directory is complete are `cached` and never submitted (unless
`force`). Ctrl-C (KeyboardInterrupt) cancels what this process started, marks those
jobs `cancelled`, and re-raises; jobs never started stay `pending`. A rerun of the
same sweep resumes: finished jobs are cached, everything else runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llc.config import config_to_dict
from llc.executors.base import (
    FINAL_STATES,
    ErrorKind,
    Executor,
    InfrastructureError,
    JobStatus,
    JobUpdate,
    Task,
    one_line,
)
from llc.executors.job import make_payload
from llc.executors.manifest import Manifest, count_statuses
from llc.study import Job, is_done, sweep_id

UpdateFn = Callable[[JobUpdate, dict[str, Any]], None]


def plan(jobs: Sequence[Job], runs_root: str | Path, force: bool = False) -> dict[str, JobStatus]:
    """Status of each job before running: `cached` (complete run directory) or `pending`."""
    return {j.key: JobStatus.CACHED if not force and is_done(runs_root, j) else JobStatus.PENDING for j in jobs}


def job_entry(job: Job) -> dict[str, Any]:
    return {
        "key": job.key,
        "problem": job.problem,
        "sampler": job.sampler,
        "sampler_name": job.sampler_name,
        "seed": job.seed,
        "run_id": job.run_id,
        "family_id": job.family_id,
        "reference": job.is_reference,
        "config": config_to_dict(job.config),
    }


def run_sweep(
    jobs: Sequence[Job],
    executor: Executor,
    runs_root: str | Path,
    force: bool = False,
    source: str | None = None,
    on_update: UpdateFn | None = None,
) -> dict[str, Any]:
    """Run every job that is not cached; return the final manifest."""
    runs_root = Path(runs_root)
    sid = sweep_id(jobs)
    manifest = Manifest(runs_root, sid)
    manifest.read()  # a damaged manifest stops the sweep here, before anything is written
    statuses = plan(jobs, runs_root, force)
    meta = {"study": source, "runs_root": str(runs_root.resolve()), "force": force, "executor": executor.describe(),
            "n_jobs": len(jobs)}
    manifest.start([job_entry(j) for j in jobs], statuses, meta)
    tasks = [Task(j.key, make_payload(j.config, j.run_id, runs_root, force))
             for j in jobs if statuses[j.key] == JobStatus.PENDING]
    mine = [t.key for t in tasks]
    started: set[str] = set()
    try:
        if tasks:
            try:
                executor.submit(tasks)
            except InfrastructureError as exc:
                manifest.update_many(mine, {"status": JobStatus.FAILED, "error": one_line(str(exc)),
                                            "error_kind": ErrorKind.INFRA})
                raise
            for update in executor.wait():
                data = manifest.update(update.key, update.fields())
                if update.status == JobStatus.RUNNING:
                    started.add(update.key)
                elif update.status in FINAL_STATES:
                    started.discard(update.key)
                if on_update is not None:
                    on_update(update, data)
            # Every task must end with a final update; anything else is a backend bug.
            manifest.update_many(mine, {"status": JobStatus.FAILED,
                                        "error": f"the {executor.name} backend returned no result",
                                        "error_kind": ErrorKind.INFRA})
    except KeyboardInterrupt:
        executor.cancel()
        manifest.update_many(
            sorted(started),
            {"status": JobStatus.CANCELLED, "error": "interrupted before it finished; rerun the sweep to resume",
             "error_kind": ErrorKind.INTERRUPTED},
            only_if=(JobStatus.RUNNING,),
        )
        raise
    finally:
        executor.close()
    data = manifest.read() or {}
    return manifest.finish(count_statuses(data))
