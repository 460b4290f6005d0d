"""Runs: IDs, run directories (`llc.runs.layout`), cache lookup, metadata, and `run_job`.

`run_id` and `family_id` are cheap; `run_job` and friends are imported on first use. None of it
imports JAX: `run_job` imports the JAX side (targets, samplers, trace.nc) only when it computes, so
planning a sweep and returning a cached run stay fast (tests/test_imports.py).
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
