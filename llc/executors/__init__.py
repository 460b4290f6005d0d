"""Executors: one interface (submit / wait / cancel), backends local, submitit (SLURM) and modal.

All of them run `llc.executors.job.execute(payload)`, which calls `llc.runs.run_job`;
`run_sweep` drives any of them and keeps the sweep manifest up to date.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from llc.errors import ConfigError, shown
from llc.executors.base import (
    FINAL_STATES,
    OK_STATES,
    Backend,
    ErrorKind,
    Executor,
    InfrastructureError,
    JobStatus,
    JobUpdate,
    Task,
)
from llc.executors.manifest import Manifest, manifest_jobs, sweeps_dir
from llc.executors.sweep import plan, run_sweep

BACKENDS = tuple(b.value for b in Backend)


def make_executor(backend: Backend | str, runs_root: str | Path, sweep_id: str, force: bool = False,
                  **options: Any) -> Executor:
    """Build a backend from CLI-style options (unset options are None)."""
    try:
        backend = Backend(backend)
    except ValueError:
        raise ConfigError(f"--backend: {shown(backend)} is not a backend; choose one of {', '.join(BACKENDS)}") from None
    opts = {k: v for k, v in options.items() if v is not None}
    timeout = opts.get("timeout")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"--timeout: must be a finite number of seconds > 0, got {shown(timeout)}")
    if backend == Backend.LOCAL:
        from llc.executors.local import LocalExecutor

        return LocalExecutor(workers=opts.get("workers"), timeout=opts.get("timeout"))
    if backend == Backend.SUBMITIT:
        from llc.executors.submitit_backend import SubmititExecutor, default_log_folder

        return SubmititExecutor(
            folder=opts.get("log_folder") or default_log_folder(runs_root, sweep_id),
            partition=opts.get("slurm_partition"),
            time_min=opts.get("slurm_time", 60),
            mem=opts.get("slurm_mem"),
            cpus=opts.get("slurm_cpus"),
            gpus=opts.get("slurm_gpus"),
            account=opts.get("slurm_account"),
            qos=opts.get("slurm_qos"),
            gpu_mode=opts.get("gpu_mode"),
            array_parallelism=opts.get("slurm_array_parallelism"),
        )
    from llc.executors.modal_executor import ModalExecutor

    return ModalExecutor(runs_root=runs_root, gpu=opts.get("modal_gpu"), timeout=opts.get("timeout"),
                         local=bool(opts.get("modal_local")), force=force)


__all__ = [
    "BACKENDS",
    "FINAL_STATES",
    "OK_STATES",
    "Backend",
    "ErrorKind",
    "Executor",
    "InfrastructureError",
    "JobStatus",
    "JobUpdate",
    "Manifest",
    "Task",
    "make_executor",
    "manifest_jobs",
    "plan",
    "run_sweep",
    "sweeps_dir",
]
