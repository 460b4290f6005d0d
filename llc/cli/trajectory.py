"""`llc trajectory`: λ̂ at each checkpoint of a training run, as one resumable sweep."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import (
    ConfigOpt,
    PresetOpt,
    RunsDirOpt,
    SamplerOpt,
    SetOpt,
    echo_err,
    split_commas,
)
from llc.cli.sweep import ModalGpuOpt, ModalLocalOpt, SlurmPartitionOpt, SlurmTimeOpt, WorkersOpt
from llc.errors import ConfigError, LLCError
from llc.executors.base import Backend


@app.command("trajectory")
def trajectory_command(
    checkpoints: Annotated[Path, typer.Argument(help="Directory of step_<N>.npz checkpoints (docs/trajectory.md).",
                                                show_default=False)],
    preset: PresetOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    sampler: SamplerOpt = None,
    steps: Annotated[list[str] | None, typer.Option(
        "--steps", callback=split_commas, help="Only these training steps, e.g. --steps 0,100,1000 (default: all).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for llc_trajectory.csv and llc_trajectory.png (default: the checkpoints folder).")] = None,
    runs_dir: RunsDirOpt = None,
    backend: Annotated[Backend, typer.Option("--backend", help="Where jobs run: local, submitit (SLURM) or modal.")
                       ] = Backend.LOCAL,
    workers: WorkersOpt = None,
    slurm_partition: SlurmPartitionOpt = None,
    slurm_time: SlurmTimeOpt = 60,
    modal_gpu: ModalGpuOpt = None,
    modal_local: ModalLocalOpt = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-job time limit in seconds.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute every checkpoint even if its run exists.")] = False,
) -> None:
    """Estimate λ̂ at every checkpoint with the same settings (a custom target: --set target.kind=custom
    --set target.entry=model.py:make, or a --config file). Each checkpoint is one cached job of a sweep,
    so rerunning after an interruption computes only the missing checkpoints. Writes one CSV (a `step`
    column, then the sweep CSV's columns; L0 is the training loss) and a figure of λ̂ ± SE and the
    training loss against step. The last line printed is the CSV path."""
    from llc.paths import check_runs_root
    from llc.trajectory import run_trajectory, trajectory_jobs

    try:
        wanted = [int(s) for s in steps] if steps else None
    except ValueError:
        raise ConfigError(f"--steps: expected integers, got {', '.join(steps or [])}") from None
    jobs = trajectory_jobs(checkpoints, overrides=set_ or [], preset=preset, config_file=config, sampler=sampler,
                           steps=wanted)
    runs_root = check_runs_root(runs_dir)
    result = run_trajectory(jobs, runs_root, out if out is not None else checkpoints, backend, force=force,
                            echo=echo_err, workers=workers, timeout=timeout, slurm_partition=slurm_partition,
                            slurm_time=slurm_time, modal_gpu=modal_gpu, modal_local=modal_local)
    typer.echo(result.sweep.report(), err=True)
    if result.figure_path is not None:
        typer.echo(f"figure: {result.figure_path}", err=True)
    typer.echo(str(result.csv_path))
    if result.sweep.interrupted:
        typer.echo("interrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    if result.sweep.n_unfinished:
        raise LLCError(result.sweep.failure_message())
