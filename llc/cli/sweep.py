"""`llc sweep`: run a study (problems x samplers x seeds) on a backend, resumably."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import RunsDirOpt, SetOpt, echo_err, split_commas
from llc.errors import LLCError
from llc.executors.base import Backend

PANEL_STUDY = "Study"
PANEL_RUN = "Running"
PANEL_LOCAL = "Backend: local"
PANEL_SLURM = "Backend: submitit (SLURM)"
PANEL_MODAL = "Backend: modal"


# Backend options, passed on to `make_executor` under their parameter names.
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", rich_help_panel=PANEL_LOCAL, help="Worker processes (default: CPU count, at most 4).")]
SlurmPartitionOpt = Annotated[str | None, typer.Option(
    "--slurm-partition", rich_help_panel=PANEL_SLURM, help="Partition (default: the cluster's default).")]
SlurmTimeOpt = Annotated[int, typer.Option(
    "--slurm-time", rich_help_panel=PANEL_SLURM, help="Time limit per task, minutes.")]
SlurmMemOpt = Annotated[str | None, typer.Option(
    "--slurm-mem", rich_help_panel=PANEL_SLURM, help="Memory per task, e.g. 8G.")]
SlurmCpusOpt = Annotated[int | None, typer.Option(
    "--slurm-cpus", rich_help_panel=PANEL_SLURM, help="CPUs per task.")]
SlurmGpusOpt = Annotated[int | None, typer.Option(
    "--slurm-gpus", rich_help_panel=PANEL_SLURM, help="GPUs per task (implies --gpu-mode vectorized).")]
SlurmAccountOpt = Annotated[str | None, typer.Option(
    "--slurm-account", rich_help_panel=PANEL_SLURM, help="Account to charge (never printed or stored).")]
SlurmQosOpt = Annotated[str | None, typer.Option(
    "--slurm-qos", rich_help_panel=PANEL_SLURM, help="Quality of service.")]
SlurmArrayParallelismOpt = Annotated[int | None, typer.Option(
    "--slurm-array-parallelism", rich_help_panel=PANEL_SLURM,
    help="At most this many array tasks at once (default 256).")]
GpuModeOpt = Annotated[str | None, typer.Option(
    "--gpu-mode", rich_help_panel=PANEL_SLURM,
    help="vectorized: one GPU per task runs the job's chains vectorised; sequential: CPU only "
         "(default: vectorized if --slurm-gpus, else sequential).")]
ModalGpuOpt = Annotated[str | None, typer.Option(
    "--modal-gpu", rich_help_panel=PANEL_MODAL,
    help="Modal GPU type: T4, L4, A10G, A100, A100-80GB, L40S, H100, H200, B200 (optionally :N).")]
ModalLocalOpt = Annotated[bool, typer.Option(
    "--modal-local", rich_help_panel=PANEL_MODAL, hidden=True,
    help="Run the Modal function body in this process (no account needed).")]


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
    seeds: Annotated[list[str] | None, typer.Option(
        "--seeds", rich_help_panel=PANEL_STUDY, callback=split_commas,
        help="Seeds, repeatable or comma-separated: --seeds 0 --seeds 1, or --seeds 0,1,2.")] = None,
    n_seeds: Annotated[int | None, typer.Option("--n-seeds", rich_help_panel=PANEL_STUDY,
                                                help="Seeds 0..N-1.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", rich_help_panel=PANEL_STUDY,
                                               help="Base preset (quick or full); default: the study's base.preset, else quick.")] = None,
    set_: SetOpt = None,
    reference: Annotated[str | None, typer.Option(
        "--reference", rich_help_panel=PANEL_STUDY,
        help="Reference sampler run first on every family (problem, seed, ...), e.g. nuts (default settings: until "
             'converged, sampler.target_rel_se 0.01), or a JSON entry {"sampler": "nuts", "set": {...}}, or none. '
             "Replaces the study's reference.")] = None,
    only_problems: Annotated[list[str] | None, typer.Option(
        "--problems", rich_help_panel=PANEL_STUDY, callback=split_commas,
        help="Only the problems whose names match these globs, repeatable or comma-separated: --problems 'relu-s*'.")] = None,
    runs_dir: RunsDirOpt = None,
    backend: Annotated[Backend, typer.Option("--backend", rich_help_panel=PANEL_RUN,
                                             help="Where jobs run: local, submitit (SLURM) or modal.")] = Backend.LOCAL,
    force: Annotated[bool, typer.Option("--force", rich_help_panel=PANEL_RUN,
                                        help="Recompute every job even if its run directory exists.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=PANEL_RUN,
                                          help="List the jobs, their run IDs and which are done; run nothing.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", rich_help_panel=PANEL_RUN,
                                                  help="Results CSV (default RUNS_DIR/llc_sweep_results.csv).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", rich_help_panel=PANEL_RUN,
                                                  help="Per-job time limit in seconds (local: the worker is killed; modal: function timeout).")] = None,
    workers: WorkersOpt = None,
    slurm_partition: SlurmPartitionOpt = None,
    slurm_time: SlurmTimeOpt = 60,
    slurm_mem: SlurmMemOpt = None,
    slurm_cpus: SlurmCpusOpt = None,
    slurm_gpus: SlurmGpusOpt = None,
    slurm_account: SlurmAccountOpt = None,
    slurm_qos: SlurmQosOpt = None,
    slurm_array_parallelism: SlurmArrayParallelismOpt = None,
    gpu_mode: GpuModeOpt = None,
    modal_gpu: ModalGpuOpt = None,
    modal_local: ModalLocalOpt = False,
) -> None:
    """Run every job of a study: each sampler on each problem with each seed.

    Jobs are resolved exactly like `llc run`, so they share its run IDs and cache: finished
    jobs are never recomputed (use --force), and rerunning an interrupted sweep resumes it.
    Progress is kept in RUNS_DIR/_sweeps/<sweep_id>.json; at the end the results CSV is
    written (one row per job). The last line printed is the CSV path. Exit status: 0 when
    every job finished, 1 when some failed / timed out / were cancelled, 130 on Ctrl-C.
    """
    from llc.paths import check_output_file, check_runs_root
    from llc.sweeps import run_study_sweep, study_jobs, sweep_executor, sweep_plan

    jobs = study_jobs(study, problem_grid=problem_grid, sampler_grid=sampler_grid, seeds=seeds, n_seeds=n_seeds,
                      preset=preset, overrides=set_ or [], reference=reference, problems=only_problems or (),
                      on_note=lambda note: echo_err(f"note: {note}"))
    runs_root = check_runs_root(runs_dir)  # before any work: a file or read-only root fails here
    check_output_file(csv_path, "--csv")
    options = dict(
        workers=workers, timeout=timeout, slurm_partition=slurm_partition, slurm_time=slurm_time,
        slurm_mem=slurm_mem, slurm_cpus=slurm_cpus, slurm_gpus=slurm_gpus, slurm_account=slurm_account,
        slurm_qos=slurm_qos, slurm_array_parallelism=slurm_array_parallelism, gpu_mode=gpu_mode,
        modal_gpu=modal_gpu, modal_local=modal_local,
    )
    if dry_run:
        sweep_executor(jobs, runs_root, backend, force, **options)  # bad backend options fail here too
        typer.echo(sweep_plan(jobs, runs_root, force))
        return
    result = run_study_sweep(jobs, runs_root, backend, force=force, csv_path=csv_path,
                             source=str(study) if study else None, echo=echo_err, **options)
    typer.echo(result.report(), err=True)
    typer.echo(str(result.csv_path))
    if result.interrupted:
        typer.echo("interrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    if result.n_unfinished:
        raise LLCError(result.failure_message())
