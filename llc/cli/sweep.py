"""`llc sweep`: run a study (problems x samplers x seeds) on a backend, resumably."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import RunsDirOpt, SetOpt
from llc.errors import LLCError

PANEL_STUDY = "Study"
PANEL_RUN = "Running"
PANEL_LOCAL = "Backend: local"
PANEL_SLURM = "Backend: submitit (SLURM)"
PANEL_MODAL = "Backend: modal"


def _raise_interrupt(signum, frame):  # SIGTERM -> the same clean stop as Ctrl-C
    raise KeyboardInterrupt


@app.command("sweep")
def sweep_command(
    study: Annotated[Path | None, typer.Argument(help="Study YAML file (see study.yaml). Optional if grids are given.",
                                                 show_default=False)] = None,
    problem_grid: Annotated[str | None, typer.Option(
        "--problem-grid", rich_help_panel=PANEL_STUDY,
        help='Problems as JSON (inline or a file path): [{"name": "small", "set": {"target.hidden": [8, 8]}}, ...]. '
             "Replaces the study file's problems.")] = None,
    sampler_grid: Annotated[str | None, typer.Option(
        "--sampler-grid", rich_help_panel=PANEL_STUDY,
        help='Samplers as JSON (inline or a file path): [{"sampler": "sgld", "set": {"sampler.step_size": 1e-5}}, ...]; '
             'optional "name" labels an entry. Replaces the study file\'s samplers.')] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", rich_help_panel=PANEL_STUDY,
                                              help="Seeds, comma-separated: --seeds 0,1,2.")] = None,
    n_seeds: Annotated[int | None, typer.Option("--n-seeds", rich_help_panel=PANEL_STUDY,
                                                help="Seeds 0..N-1.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", rich_help_panel=PANEL_STUDY,
                                               help="Base preset (quick or full); default: the study's base.preset, else quick.")] = None,
    set_: SetOpt = None,
    runs_dir: RunsDirOpt = None,
    backend: Annotated[str, typer.Option("--backend", rich_help_panel=PANEL_RUN,
                                         help="Where jobs run: local, submitit (SLURM) or modal.")] = "local",
    force: Annotated[bool, typer.Option("--force", rich_help_panel=PANEL_RUN,
                                        help="Recompute every job even if its run directory exists.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=PANEL_RUN,
                                          help="List the jobs, their run IDs and which are done; run nothing.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", rich_help_panel=PANEL_RUN,
                                                  help="Results CSV (default RUNS_DIR/llc_sweep_results.csv).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", rich_help_panel=PANEL_RUN,
                                                  help="Per-job time limit in seconds (local: the worker is killed; modal: function timeout).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", rich_help_panel=PANEL_LOCAL,
                                                help="Worker processes (default: CPU count, at most 4).")] = None,
    slurm_partition: Annotated[str | None, typer.Option("--slurm-partition", rich_help_panel=PANEL_SLURM,
                                                        help="Partition (default: the cluster's default).")] = None,
    slurm_time: Annotated[int, typer.Option("--slurm-time", rich_help_panel=PANEL_SLURM,
                                            help="Time limit per task, minutes.")] = 60,
    slurm_mem: Annotated[str | None, typer.Option("--slurm-mem", rich_help_panel=PANEL_SLURM,
                                                  help="Memory per task, e.g. 8G.")] = None,
    slurm_cpus: Annotated[int | None, typer.Option("--slurm-cpus", rich_help_panel=PANEL_SLURM,
                                                   help="CPUs per task.")] = None,
    slurm_gpus: Annotated[int | None, typer.Option("--slurm-gpus", rich_help_panel=PANEL_SLURM,
                                                   help="GPUs per task (implies --gpu-mode vectorized).")] = None,
    slurm_account: Annotated[str | None, typer.Option("--slurm-account", rich_help_panel=PANEL_SLURM,
                                                      help="Account to charge (never printed or stored).")] = None,
    slurm_qos: Annotated[str | None, typer.Option("--slurm-qos", rich_help_panel=PANEL_SLURM,
                                                  help="Quality of service.")] = None,
    slurm_array_parallelism: Annotated[int | None, typer.Option(
        "--slurm-array-parallelism", rich_help_panel=PANEL_SLURM,
        help="At most this many array tasks at once (default 256).")] = None,
    gpu_mode: Annotated[str | None, typer.Option(
        "--gpu-mode", rich_help_panel=PANEL_SLURM,
        help="vectorized: one GPU per task runs the job's chains vectorised; sequential: CPU only "
             "(default: vectorized if --slurm-gpus, else sequential).")] = None,
    modal_gpu: Annotated[str | None, typer.Option("--modal-gpu", rich_help_panel=PANEL_MODAL,
                                                  help="Modal GPU type: T4, L4, A10G, A100, A100-80GB, L40S, H100, H200, B200 (optionally :N).")] = None,
    modal_local: Annotated[bool, typer.Option("--modal-local", rich_help_panel=PANEL_MODAL, hidden=True,
                                              help="Run the Modal function body in this process (no account needed).")] = False,
) -> None:
    """Run every job of a study: each sampler on each problem with each seed.

    Jobs are resolved exactly like `llc run`, so they share its run IDs and cache: finished
    jobs are never recomputed (use --force), and rerunning an interrupted sweep resumes it.
    Progress is kept in RUNS_DIR/_sweeps/<sweep_id>.json; at the end the results CSV is
    written (one row per job). The last line printed is the CSV path. Exit status: 0 when
    every job finished, 1 when some failed / timed out / were cancelled, 130 on Ctrl-C.
    """
    from llc.analysis.aggregate import default_csv_path, sweep_rows, write_csv
    from llc.executors import OK_STATES, InfrastructureError, make_executor, run_sweep
    from llc.executors.manifest import count_statuses
    from llc.runs import default_runs_root
    from llc.study import (
        build_study,
        expand_jobs,
        load_study_file,
        parse_grid,
        parse_seeds,
        sweep_id,
    )

    data = load_study_file(study) if study is not None else None
    pgrid, psrc = parse_grid(problem_grid, "--problem-grid") if problem_grid is not None else (None, "")
    sgrid, ssrc = parse_grid(sampler_grid, "--sampler-grid") if sampler_grid is not None else (None, "")
    spec = build_study(
        data, str(study) if study is not None else "<options>", preset=preset, overrides=set_ or [],
        problem_grid=pgrid, problem_grid_source=psrc or "--problem-grid:",
        sampler_grid=sgrid, sampler_grid_source=ssrc or "--sampler-grid:",
        seeds=parse_seeds(seeds) if seeds is not None else None, n_seeds=n_seeds,
    )
    jobs = expand_jobs(spec)
    runs_root = Path(runs_dir) if runs_dir is not None else default_runs_root()
    sid = sweep_id(jobs)
    out_csv = csv_path or default_csv_path(runs_root)
    executor = make_executor(
        backend, runs_root=runs_root, sweep_id=sid, force=force, workers=workers, timeout=timeout,
        slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_mem=slurm_mem, slurm_cpus=slurm_cpus,
        slurm_gpus=slurm_gpus, slurm_account=slurm_account, slurm_qos=slurm_qos,
        slurm_array_parallelism=slurm_array_parallelism, gpu_mode=gpu_mode, modal_gpu=modal_gpu,
        modal_local=modal_local,
    )

    if dry_run:
        print_plan(jobs, runs_root, force, sid)
        return

    executor.preflight()  # before the manifest or anything else is written
    total = len(jobs)
    from llc.executors import plan

    statuses = plan(jobs, runs_root, force)
    n_run = sum(1 for s in statuses.values() if s == "pending")
    report = progress_printer(n_run)

    def on_update(update, manifest):
        report(update)
    typer.echo(f"sweep {sid}: {total} jobs, {total - n_run} cached, {n_run} to run on {backend}", err=True)

    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    interrupted = False
    try:
        manifest = run_sweep(jobs, executor, runs_root, force=force, source=str(study) if study else None,
                             on_update=on_update)
    except KeyboardInterrupt:
        interrupted = True
        from llc.executors import Manifest

        manifest = Manifest(runs_root, sid).read() or {}
    except InfrastructureError:
        from llc.executors import Manifest

        manifest = Manifest(runs_root, sid).read() or {}
        write_csv(sweep_rows(manifest), out_csv)
        raise
    finally:
        signal.signal(signal.SIGTERM, old)

    write_csv(sweep_rows(manifest), out_csv)
    counts = count_statuses(manifest)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    typer.echo(f"sweep {sid}: {summary}; manifest {Path(runs_root) / '_sweeps' / (sid + '.json')}", err=True)
    typer.echo(str(out_csv))
    if interrupted:
        typer.echo("interrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    bad = sum(n for s, n in counts.items() if s not in OK_STATES)
    if bad:
        raise LLCError(f"{bad} of {total} jobs did not finish ({summary}); errors are in {out_csv}")


def progress_printer(n_run: int):
    """A callback that prints one line per job that reaches a final state: `[k/n_run] status key 12.3s`."""
    finished = [0]

    def report(update) -> None:
        if update.status in ("pending", "running"):
            return
        finished[0] += 1
        took = f" {update.elapsed_s:.1f}s" if update.elapsed_s is not None else ""
        err = f"  {update.error}" if update.error else ""
        typer.echo(f"[{finished[0]}/{n_run}] {update.status:<9} {update.key}{took}{err}", err=True)

    return report


def print_plan(jobs, runs_root: Path, force: bool, sid: str) -> None:
    from llc.executors import plan

    statuses = plan(jobs, runs_root, force)
    width = max(len(j.key) for j in jobs)
    typer.echo(f"{'job':<{width}}  {'run_id':<22}  {'family_id':<20}  status")
    for job in jobs:
        status = "done" if statuses[job.key] == "cached" else ("to run (forced)" if force else "to run")
        typer.echo(f"{job.key:<{width}}  {job.run_id:<22}  {job.family_id:<20}  {status}")
    done = sum(1 for s in statuses.values() if s == "cached")
    typer.echo(f"sweep {sid}: {len(jobs)} jobs, {done} done, {len(jobs) - done} to run; runs root {runs_root}")
