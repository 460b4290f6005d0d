"""Runs: IDs, run directories (`llc.runs.layout`), cache lookup, metadata, and `run_job`.

`run_id` and `family_id` are cheap; the rest (`run_job` and friends) pulls in the samplers, the
estimator and ArviZ, so it is imported on first use: planning a sweep (`llc sweep --dry-run`)
needs only the IDs.
"""

from __future__ import annotations

from typing import Any

from llc.runs.ids import family_id, run_id

_FROM_JOB = ("RunResult", "default_runs_root", "load_cached", "run_job")


def __getattr__(name: str) -> Any:
    if name in _FROM_JOB:
        from llc.runs import job

        return getattr(job, name)
    raise AttributeError(f"module 'llc.runs' has no attribute {name!r}")


__all__ = ["RunResult", "default_runs_root", "family_id", "load_cached", "run_id", "run_job"]
