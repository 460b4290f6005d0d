"""Run a study as a sweep, from Python: what `llc sweep` does, one function per step.

    jobs = study_jobs("study.yaml", seeds=[0, 1])
    print(sweep_plan(jobs, "runs"))                      # `--dry-run`: the jobs, run IDs, done or not
    result = run_study_sweep(jobs, "runs", Backend.LOCAL, workers=4, echo=print)
    result.counts, result.csv_path, result.interrupted

`run_study_sweep` drives an executor through `llc.executors.run_sweep` (which keeps the
manifest), stops cleanly on Ctrl-C or SIGTERM (the result says `interrupted`; rerunning
the same sweep resumes it) and writes the results CSV in every case, also when the backend
fails. Messages (the start line, one line per finished job) go to `echo`; nothing is printed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llc.analysis.aggregate import default_csv_path, sweep_rows, write_csv
from llc.executors import (
    OK_STATES,
    Backend,
    Executor,
    InfrastructureError,
    JobStatus,
    JobUpdate,
    Manifest,
    make_executor,
    plan,
    run_sweep,
    sweeps_dir,
)
from llc.executors.manifest import count_statuses
from llc.paths import check_output_file, check_runs_root
from llc.study import (
    Job,
    build_study,
    expand_jobs,
    load_study_file,
    parse_grid,
    parse_reference,
    parse_seeds,
    select_problems,
    sweep_id,
)
from llc.study.spec import NOTE_NO_PROBLEMS, NOTE_NO_SAMPLERS

Echo = Callable[[str], None]


def study_jobs(
    study: str | Path | None = None,
    *,
    problem_grid: str | None = None,
    sampler_grid: str | None = None,
    seeds: Sequence[int | str] | None = None,
    n_seeds: int | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    reference: str | None = None,
    problems: Sequence[str] = (),
    on_note: Callable[[str], None] | None = None,
) -> list[Job]:
    """The jobs of a study file and/or grids, as `llc sweep` resolves them (same run IDs).

    `problem_grid` / `sampler_grid` are JSON, inline or a file path; `seeds` items may be
    ints or comma-separated strings ("0,1"); options win over the file (see `build_study`).
    `reference` is `--reference` (a sampler, `none`, or an inline JSON entry); `problems` keeps the
    problems whose names match these globs (`--problems`).
    `on_note` hears the defaults a study fell back to when it named neither problems nor samplers
    (it then runs only the default job, which a user may not have meant).
    """
    data = load_study_file(study) if study is not None else None
    pgrid, psrc = parse_grid(problem_grid, "--problem-grid") if problem_grid is not None else (None, "")
    sgrid, ssrc = parse_grid(sampler_grid, "--sampler-grid") if sampler_grid is not None else (None, "")
    spec = build_study(
        data, str(study) if study is not None else "<options>", preset=preset, overrides=list(overrides),
        problem_grid=pgrid, problem_grid_source=psrc or "--problem-grid:",
        sampler_grid=sgrid, sampler_grid_source=ssrc or "--sampler-grid:",
        seeds=parse_seeds(",".join(str(s) for s in seeds)) if seeds else None, n_seeds=n_seeds,
        reference=parse_reference(reference),
    )
    spec = select_problems(spec, problems)
    if on_note is not None and {NOTE_NO_PROBLEMS, NOTE_NO_SAMPLERS} <= set(spec.notes):
        for note in spec.notes:
            on_note(note)
    return expand_jobs(spec)


def sweep_plan(jobs: Sequence[Job], runs_root: str | Path, force: bool = False) -> str:
    """The dry-run listing: one line per job (key, run ID, family ID, done or to run), then a summary."""
    statuses = plan(jobs, runs_root, force)
    width = max(len(j.key) for j in jobs)
    lines = [f"{'job':<{width}}  {'run_id':<22}  {'family_id':<20}  status"]
    for job in jobs:
        status = "done" if statuses[job.key] == JobStatus.CACHED else ("to run (forced)" if force else "to run")
        role = "  (reference)" if job.is_reference else ""
        lines.append(f"{job.key:<{width}}  {job.run_id:<22}  {job.family_id:<20}  {status}{role}")
    done = sum(1 for s in statuses.values() if s == JobStatus.CACHED)
    lines.append(f"sweep {sweep_id(jobs)}: {len(jobs)} jobs, {done} done, {len(jobs) - done} to run; "
                 f"runs root {runs_root}")
    return "\n".join(lines)


def count_to_run(jobs: Sequence[Job], runs_root: str | Path, force: bool = False) -> int:
    """How many of `jobs` would run now (the others are cached)."""
    return sum(1 for s in plan(jobs, runs_root, force).values() if s == JobStatus.PENDING)


def progress_reporter(n_run: int, echo: Echo) -> Callable[[JobUpdate], None]:
    """A callback that echoes one line per job that reaches a final state: `[k/n_run] status key 12.3s`."""
    finished = [0]

    def report(update: JobUpdate) -> None:
        if not JobStatus(update.status).final:
            return
        finished[0] += 1
        took = f" {update.elapsed_s:.1f}s" if update.elapsed_s is not None else ""
        err = f"  {update.error}" if update.error else ""
        echo(f"[{finished[0]}/{n_run}] {update.status:<9} {update.key}{took}{err}")

    return report


def sweep_executor(jobs: Sequence[Job], runs_root: str | Path, backend: Backend | str = Backend.LOCAL,
                   force: bool = False, **options: Any) -> Executor:
    """The executor a sweep of `jobs` runs on; `options` are `make_executor`'s (workers, timeout, slurm_*, modal_*)."""
    return make_executor(backend, runs_root=runs_root, sweep_id=sweep_id(jobs), force=force, **options)


@dataclass(frozen=True)
class SweepResult:
    """How a sweep ended: job counts by status, where the manifest and the results CSV are."""

    sweep_id: str
    runs_root: Path
    csv_path: Path
    counts: Mapping[str, int]
    n_jobs: int
    interrupted: bool = False

    @property
    def manifest_path(self) -> Path:
        return sweeps_dir(self.runs_root) / f"{self.sweep_id}.json"

    @property
    def summary(self) -> str:
        """Counts by status, e.g. `1 cached, 2 done`."""
        return ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))

    @property
    def n_unfinished(self) -> int:
        """Jobs that failed, timed out, were cancelled or never ran."""
        return sum(n for s, n in self.counts.items() if s not in OK_STATES)

    def report(self) -> str:
        return f"sweep {self.sweep_id}: {self.summary}; manifest {self.manifest_path}"

    def failure_message(self) -> str:
        return (f"{self.n_unfinished} of {self.n_jobs} jobs did not finish ({self.summary}); "
                f"errors are in {self.csv_path}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM stops like Ctrl-C (KeyboardInterrupt); only the main thread can install it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_study_sweep(
    jobs: Sequence[Job],
    runs_root: str | Path,
    backend: Backend | str = Backend.LOCAL,
    *,
    force: bool = False,
    csv_path: str | Path | None = None,
    source: str | None = None,
    echo: Echo | None = None,
    **options: Any,
) -> SweepResult:
    """Run every job of `jobs` that is not cached on `backend`; write the results CSV; return the counts.

    Ctrl-C / SIGTERM cancel what is running and return a result with `interrupted=True` (rerun
    to resume). An `InfrastructureError` (the backend cannot run the jobs) is raised after the CSV
    is written. `options` go to `make_executor` (workers, timeout, slurm_*, modal_*).
    """
    runs_root = check_runs_root(runs_root)
    check_output_file(csv_path, "--csv")
    sid = sweep_id(jobs)
    executor = sweep_executor(jobs, runs_root, backend, force, **options)
    out_csv = Path(csv_path) if csv_path is not None else default_csv_path(runs_root)
    executor.preflight()  # before the manifest or anything else is written
    Manifest(runs_root, sid).read()  # a damaged manifest is reported before anything starts
    say = echo or (lambda _: None)
    n_run = count_to_run(jobs, runs_root, force)
    say(f"sweep {sid}: {len(jobs)} jobs, {len(jobs) - n_run} cached, {n_run} to run on {Backend(backend)}")
    report = progress_reporter(n_run, say)
    interrupted = False
    try:
        with sigterm_as_interrupt():
            manifest = run_sweep(jobs, executor, runs_root, force=force, source=source,
                                 on_update=lambda update, _: report(update))
    except KeyboardInterrupt:
        interrupted = True
        manifest = Manifest(runs_root, sid).read() or {}
    except InfrastructureError:
        write_csv(sweep_rows(Manifest(runs_root, sid).read() or {}), out_csv)
        raise
    write_csv(sweep_rows(manifest), out_csv)
    return SweepResult(sweep_id=sid, runs_root=runs_root, csv_path=out_csv, counts=count_statuses(manifest),
                       n_jobs=len(jobs), interrupted=interrupted)
