"""`llc validate`: run the analytic suite and print the table; exit 1 when a case misses its tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import RunsDirOpt, echo_err, split_commas, stderr
from llc.executors.base import Backend


@app.command("validate")
def validate_command(
    samplers: Annotated[list[str] | None, typer.Option(
        "--samplers", callback=split_commas,
        help="Samplers, repeatable or comma-separated: --samplers sgld --samplers hmc, or --samplers sgld,hmc "
             "(default: every implemented sampler).")] = None,
    preset: Annotated[
        str, typer.Option("--preset", help="quick: 4 cases, 1 data seed, n=5000. full: every worked DLN value, 4 seeds, n=20000.")
    ] = "quick",
    cases: Annotated[list[str] | None, typer.Option(
        "--cases", callback=split_commas,
        help="Case names to run, repeatable or comma-separated (default: the whole suite).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table as CSV to this file.")] = None,
    runs_dir: RunsDirOpt = None,
    backend: Annotated[Backend | None, typer.Option(
        "--backend", help="Run the suite's jobs as a resumable sweep on local workers, submitit (SLURM) or modal "
                          "(default: one after another in this process).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1,
                                                help="Local worker processes (implies --backend local).")] = None,
    slurm_partition: Annotated[str | None, typer.Option("--slurm-partition", help="submitit: partition.")] = None,
    slurm_time: Annotated[int, typer.Option("--slurm-time", min=1, help="submitit: time limit per job, minutes.")] = 60,
    modal_gpu: Annotated[str | None, typer.Option("--modal-gpu", help="modal: GPU type, e.g. H100.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the suite's jobs, their run IDs and which are "
                                                            "done; run nothing.")] = False,
) -> None:
    """Validate samplers against exact λ: anisotropic quadratic, single linear layer, deep linear networks.

    Each sampler runs at its preset defaults (not tuned per case). A case passes when the seed-averaged
    λ̂ lies within the sampler's relative tolerance (its spec: 5% full-batch samplers, 8% SGLD/SGHMC) plus the
    data-set fluctuation 2·sqrt(λ/(2 log n))/sqrt(seeds), and every run has R̂ ≤ 1.01 (R̂ of the exact
    loss at each draw: SGLD/SGHMC record it here instead of their minibatch losses). Runs are cached
    in the runs root like any other job; with --backend/--workers the suite's jobs run first as a
    resumable sweep (e.g. `--workers 8`, or `--backend submitit` on a SLURM cluster).
    """
    from llc.validation import row_line, run_validation, validation_plan

    if dry_run:
        typer.echo(validation_plan(samplers, preset, cases, runs_dir))
        return
    report = run_validation(
        samplers, preset, cases, runs_dir, backend=backend, workers=workers, out=out,
        slurm_partition=slurm_partition, slurm_time=slurm_time, modal_gpu=modal_gpu,
        on_row=lambda row: stderr.print(row_line(row)), on_message=stderr.print, on_progress=echo_err,
    )
    typer.echo(report.table())
    if out is not None:
        typer.echo(f"wrote {out}")
    if report.failed:
        typer.echo(report.failure_message(), err=True)
        raise typer.Exit(1)
