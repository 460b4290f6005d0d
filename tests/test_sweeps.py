"""`llc sweep` / `llc validate` orchestration called from Python (llc.sweeps, llc.validation),
the list and enum options of the thin commands, and the job-status enum."""

from __future__ import annotations

import csv
import json
import os
import signal
from collections.abc import Iterator, Sequence

import pytest

from llc.errors import ConfigError, LLCError
from llc.executors import (
    Backend,
    ErrorKind,
    Executor,
    InfrastructureError,
    JobStatus,
    JobUpdate,
    Task,
)
from llc.sweeps import SweepResult, run_study_sweep, study_jobs, sweep_plan
from tests.conftest import run_main
from tests.test_sweep_local import BAD, GOOD, TINY, problems

OVERRIDES = TINY[1::2]  # the values of TINY's --set options


def tiny_jobs(*sampler_grid: dict, n_seeds: int = 1):
    return study_jobs(problem_grid=problems(4), sampler_grid=json.dumps(list(sampler_grid)), n_seeds=n_seeds,
                      overrides=OVERRIDES)


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class FakeExecutor(Executor):
    """Starts the first task, then does what `then` says: raise Ctrl-C, send itself SIGTERM, or fail to submit."""

    name = "fake"

    def __init__(self, then: str) -> None:
        self.then = then
        self.tasks: list[Task] = []
        self.cancelled = False

    def submit(self, tasks: Sequence[Task]) -> None:
        if self.then == "refuse":
            raise InfrastructureError("scheduler unreachable")
        self.tasks = list(tasks)

    def wait(self) -> Iterator[JobUpdate]:
        yield JobUpdate(self.tasks[0].key, JobStatus.RUNNING, backend_job_id="fake:1")
        if self.then == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises KeyboardInterrupt right here
        raise KeyboardInterrupt

    def cancel(self) -> list[str]:
        self.cancelled = True
        return [self.tasks[0].key]


@pytest.mark.timeout(600)
def test_run_study_sweep_from_python(tmp_path):
    runs = tmp_path / "runs"
    jobs = tiny_jobs(GOOD, BAD)
    assert [j.key for j in jobs] == ["w4/sgld/seed0", "w4/diverging/seed0"]
    assert sweep_plan(jobs, runs).splitlines()[-1].endswith(f"2 jobs, 0 done, 2 to run; runs root {runs}")

    lines: list[str] = []
    result = run_study_sweep(jobs, runs, Backend.LOCAL, workers=2, echo=lines.append)
    assert isinstance(result, SweepResult) and not result.interrupted
    assert dict(result.counts) == {"done": 1, "failed": 1} and result.n_unfinished == 1
    assert result.summary == "1 done, 1 failed"
    assert result.failure_message().startswith("1 of 2 jobs did not finish (1 done, 1 failed)")
    assert lines[0] == f"sweep {result.sweep_id}: 2 jobs, 0 cached, 2 to run on local"
    assert sorted(line.split()[1] for line in lines[1:]) == ["done", "failed"]
    assert result.csv_path == runs / "llc_sweep_results.csv" and result.manifest_path.is_file()
    assert {r["sampler"]: r["status"] for r in read_csv(result.csv_path)} == {"sgld": "done", "diverging": "failed"}
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["jobs"]["w4/diverging/seed0"]["error_kind"] == ErrorKind.JOB == "job"

    # The finished job is cached now; a sweep of it alone runs nothing.
    good = jobs[:1]
    assert sweep_plan(good, runs).splitlines()[1].endswith("done")
    again = run_study_sweep(good, runs, "local", csv_path=tmp_path / "again.csv")
    assert dict(again.counts) == {"cached": 1} and again.n_unfinished == 0
    assert [r["status"] for r in read_csv(tmp_path / "again.csv")] == ["cached"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("then", ["ctrl-c", "sigterm"])
def test_interrupted_sweep_cancels_and_still_writes_the_csv(tmp_path, monkeypatch, then):
    runs = tmp_path / "runs"
    fake = FakeExecutor(then)
    monkeypatch.setattr("llc.sweeps.sweep_executor", lambda *args, **kwargs: fake)
    before = signal.getsignal(signal.SIGTERM)
    result = run_study_sweep(tiny_jobs(GOOD, n_seeds=2), runs)
    assert signal.getsignal(signal.SIGTERM) == before  # the SIGTERM handler is only there while jobs run
    assert result.interrupted and fake.cancelled
    assert dict(result.counts) == {"cancelled": 1, "pending": 1}
    manifest = json.loads(result.manifest_path.read_text())
    cancelled = manifest["jobs"]["w4/sgld/seed0"]
    assert cancelled["status"] == "cancelled" and cancelled["error_kind"] == "interrupted"
    assert [r["status"] for r in read_csv(result.csv_path)] == ["cancelled", "pending"]


@pytest.mark.timeout(120)
def test_backend_failure_writes_the_csv_then_raises(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setattr("llc.sweeps.sweep_executor", lambda *args, **kwargs: FakeExecutor("refuse"))
    with pytest.raises(InfrastructureError, match="scheduler unreachable"):
        run_study_sweep(tiny_jobs(GOOD), runs)
    (row,) = read_csv(runs / "llc_sweep_results.csv")
    assert row["status"] == "failed" and row["error_kind"] == "infrastructure"


@pytest.mark.timeout(120)
def test_study_jobs_reads_seeds_as_ints_or_comma_lists():
    by_list = study_jobs(problem_grid=problems(4), seeds=[0, 2], overrides=OVERRIDES)
    by_text = study_jobs(problem_grid=problems(4), seeds=["0,2"], overrides=OVERRIDES)
    assert [j.seed for j in by_list] == [0, 2] and [j.run_id for j in by_list] == [j.run_id for j in by_text]
    with pytest.raises(ConfigError, match="--seeds: 'x' is not a non-negative integer"):
        study_jobs(problem_grid=problems(4), seeds=["0,x"])


def test_job_status_serialises_as_its_plain_value():
    assert json.dumps({"status": JobStatus.CANCELLED}) == '{"status": "cancelled"}'
    assert f"{JobStatus.DONE:<6}|" == "done  |" and str(JobStatus.FAILED) == "failed"
    assert [s for s in JobStatus if s.final] == ["done", "cached", "failed", "timeout", "cancelled"]
    assert [s for s in JobStatus if s.ok] == ["done", "cached"]
    assert [b.value for b in Backend] == ["local", "submitit", "modal"]


# ---------------------------------------------------------------- validate from Python


@pytest.mark.timeout(120)
def test_validation_plan_and_errors(tmp_path):
    from llc.validation import suite_jobs, validation_plan

    text = validation_plan(["hmc", "sgld"], "quick", ["linear_10x2"], tmp_path)
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["linear_10x2/hmc/seed0", "linear_10x2/sgld/seed0"]
    assert lines[-1].endswith(f"2 jobs, 0 done, 2 to run; runs root {tmp_path}")
    assert {j.sampler for j in suite_jobs(None, "quick", ["linear_10x2"])} >= {"hmc", "sgld"}
    with pytest.raises(ConfigError, match="--samplers: unknown nope"):
        suite_jobs(["nope"])
    with pytest.raises(ConfigError, match="--cases: unknown nope"):
        suite_jobs(["sgld"], "quick", ["nope"])
    assert not any(tmp_path.iterdir())


@pytest.mark.timeout(900)
def test_run_validation_from_python(tmp_path):
    """One SGLD job on the quadratic, in this process, through the library function `llc validate` calls."""
    from llc.validation import ValidationReport, row_line, run_validation

    seen: list[str] = []
    out = tmp_path / "val.csv"
    report = run_validation(["sgld"], "quick", ["quadratic_1to1000"], tmp_path / "runs", out=out,
                            on_row=lambda row: seen.append(row_line(row)))
    assert isinstance(report, ValidationReport) and report.out == out
    (row,) = report.rows
    assert row["case"] == "quadratic_1to1000" and row["sampler"] == "sgld"
    assert seen == [row_line(row)] and seen[0].startswith(("[ok ] quadratic_1to1000 sgld: λ̂ ",
                                                            "[MISS] quadratic_1to1000 sgld: λ̂ "))
    assert report.table().splitlines()[2].startswith("quadratic_1to1000    sgld")
    assert [r["case"] for r in read_csv(out)] == ["quadratic_1to1000"]
    assert report.failed == ([] if row["passed"] else [row])


# ---------------------------------------------------------------- the thin commands' options



@pytest.mark.timeout(120)
def test_list_options_repeat_or_take_commas(tmp_path, monkeypatch, capsys):
    runs = ["--runs-dir", str(tmp_path)]
    assert run_main(["validate", "--samplers", "hmc,sgld", "--cases", "linear_10x2,quadratic_1to1000",
                  "--dry-run", *runs], monkeypatch) == 0
    commas = capsys.readouterr().out
    assert run_main(["validate", "--samplers", "hmc", "--samplers", "sgld", "--cases", "linear_10x2",
                  "--cases", "quadratic_1to1000", "--dry-run", *runs], monkeypatch) == 0
    assert capsys.readouterr().out == commas
    assert "4 jobs, 0 done, 4 to run" in commas.splitlines()[-1]

    grid = ["--problem-grid", problems(4), *TINY, *runs, "--dry-run"]
    assert run_main(["sweep", *grid, "--seeds", "0,1", "--seeds", "3"], monkeypatch) == 0
    keys = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert keys == ["w4/sgld/seed0", "w4/sgld/seed1", "w4/sgld/seed3"]


@pytest.mark.timeout(120)
def test_backend_is_a_choice(tmp_path, monkeypatch, capsys):
    assert run_main(["sweep", "--problem-grid", problems(4), "--backend", "nope", "--dry-run"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "'nope' is not one of 'local', 'submitit', 'modal'" in " ".join(err.replace("│", " ").split())
    assert run_main(["validate", "--backend", "cloud"], monkeypatch) == 2
    assert run_main(["validate", "--help"], monkeypatch) == 0
    assert "local|submitit|modal" in capsys.readouterr().out


def test_an_unknown_backend_is_a_config_error(tmp_path):
    from llc.executors import make_executor

    with pytest.raises(ConfigError, match="--backend: 'cloud' is not a backend; choose one of local, submitit, modal"):
        make_executor("cloud", tmp_path, "sweep-x")
    assert isinstance(ConfigError("x"), LLCError)


def test_a_study_that_falls_back_to_defaults_says_so(tmp_path):
    """A study naming neither problems nor samplers runs the base problem with SGLD: it is told, on stderr."""
    from typer.testing import CliRunner

    from llc.cli import app

    study = tmp_path / "s.yaml"
    study.write_text("description: only a description\n")
    res = CliRunner().invoke(app, ["sweep", str(study), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    assert "note: no problems given: one problem named 'base' (the base configuration)" in res.stderr
    assert "note: no samplers given: sgld with its preset settings" in res.stderr
    assert not (tmp_path / "runs").exists()
