"""`llc validate`: run the analytic suite and print the table; exit 1 when a case misses its tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import RunsDirOpt, stderr


@app.command("validate")
def validate_command(
    samplers: Annotated[
        str | None,
        typer.Option("--samplers", help="Comma-separated samplers (default: every implemented sampler)."),
    ] = None,
    preset: Annotated[
        str, typer.Option("--preset", help="quick: 4 cases, 1 data seed, n=5000. full: every worked DLN value, 4 seeds, n=20000.")
    ] = "quick",
    cases: Annotated[
        str | None, typer.Option("--cases", help="Comma-separated case names to run (default: the whole suite).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table as CSV to this file.")] = None,
    runs_dir: RunsDirOpt = None,
    backend: Annotated[str | None, typer.Option(
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
    λ̂ lies within the sampler's relative tolerance (10% exact samplers, 15% SGLD/SGHMC) plus the
    data-set fluctuation 2·sqrt(λ/(2 log n))/sqrt(seeds), and every run has R̂ ≤ 1.01 (R̂ of the exact
    loss at each draw: SGLD/SGHMC record it here instead of their minibatch losses). Runs are cached
    in the runs root like any other job; with --backend/--workers the suite's jobs run first as a
    resumable sweep (e.g. `--workers 8`, or `--backend submitit` on a SLURM cluster).
    """
    from llc.samplers import REGISTRY
    from llc.validation import (
        check_samplers,
        format_table,
        validate_jobs,
        validation_jobs,
        write_csv,
    )

    names = check_samplers([s.strip() for s in samplers.split(",") if s.strip()] if samplers else list(REGISTRY), list(REGISTRY))

    def show(row):
        flag = "ok " if row["passed"] else "MISS"
        why = f" (missed: {row['missed']})" if row["missed"] else ""
        stderr.print(f"[{flag}] {row['case']} {row['sampler']}: λ̂ {row['llc_mean']:.3f} vs {row['lambda_true']:.3f} "
                     f"({row['rel_error']:+.1%}), R̂ {row['rhat_max']:.3f}, {row['seconds']:.0f}s{why}")

    case_names = [c.strip() for c in cases.split(",") if c.strip()] if cases else None
    jobs = validation_jobs(names, preset, case_names)
    executor, on_job = None, None
    if dry_run or backend is not None or workers is not None:
        from llc.executors import make_executor
        from llc.runs import default_runs_root
        from llc.study import sweep_id

        root = Path(runs_dir) if runs_dir is not None else default_runs_root()
        from llc.cli.sweep import print_plan, progress_printer

        if dry_run:
            print_plan(jobs, root, False, sweep_id(jobs))
            return
        executor = make_executor(backend or "local", runs_root=root, sweep_id=sweep_id(jobs), workers=workers,
                                 slurm_partition=slurm_partition, slurm_time=slurm_time, modal_gpu=modal_gpu)
        executor.preflight()
        from llc.executors import plan

        n_run = sum(1 for status in plan(jobs, root).values() if status == "pending")
        stderr.print(f"{len(jobs)} validation jobs, {len(jobs) - n_run} cached, {n_run} to run on {backend or 'local'}")
        on_job = progress_printer(n_run)
    rows = validate_jobs(jobs, runs_dir, on_row=show, executor=executor, on_job=on_job,
                         source=f"llc validate --preset {preset}")
    typer.echo(format_table(rows))
    if out is not None:
        write_csv(rows, out)
        typer.echo(f"wrote {out}")
    failed = [r for r in rows if not r["passed"]]
    if failed:
        typer.echo(f"{len(failed)} of {len(rows)} rows missed (λ: outside the tolerance; R̂: chains not mixed)", err=True)
        raise typer.Exit(1)
