"""Runs: IDs, run directories, atomic writes, cache lookup, metadata, and `run_job`."""

from llc.runs.ids import family_id, run_id
from llc.runs.job import RunResult, default_runs_root, load_cached, run_job

__all__ = ["RunResult", "default_runs_root", "family_id", "load_cached", "run_id", "run_job"]
