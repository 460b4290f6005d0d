"""`llc sweep` on local workers, driven by events rather than timing: SIGTERM to the driver, a worker
killed mid-job, `--force`, and malformed grids on the command line.

A job is held mid-run by a gate (`gate_env`): a `sitecustomize` on the workers' PYTHONPATH makes the
job of a chosen seed write `held.<pid>` and wait until it is killed, so the test knows, from the
filesystem, that the job is running and in which process, and nothing can finish behind its back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tests.test_sweep_local as local_tests
from tests.conftest import REPO
from tests.test_sweep_local import (
    GOOD,
    alive,
    manifests,
    only_manifest,
    problems,
    read_csv,
    statuses,
    sweep_args,
    wait_for,
)

llc = local_tests.llc  # the in-process `llc` fixture

GATE_SITE = '''
import os
if os.environ.get("LLC_TEST_GATE"):
    import signal
    from pathlib import Path

    import llc.executors.job as _job

    _execute = _job.execute
    _held = {int(s) for s in os.environ.get("LLC_TEST_HOLD_SEEDS", "").split(",") if s}
    _sampler = os.environ.get("LLC_TEST_HOLD_SAMPLER")

    def execute(payload):
        if payload["config"]["seed"] in _held or payload["config"]["sampler"]["name"] == _sampler:
            gate = Path(os.environ["LLC_TEST_GATE"])
            (gate / f"held.{os.getpid()}.tmp").write_text(payload["run_id"])
            os.rename(gate / f"held.{os.getpid()}.tmp", gate / f"held.{os.getpid()}")
            while True:  # until killed
                signal.pause()
        return _execute(payload)

    _job.execute = execute
'''


def gate_env(tmp_path: Path, *seeds: int, sampler: str | None = None) -> tuple[dict[str, str], Path]:
    """Environment for a driver whose workers hold the jobs of `seeds` (and of `sampler`); and the gate
    directory."""
    site, gate = tmp_path / "gate-site", tmp_path / "gate"
    site.mkdir()
    gate.mkdir()
    (site / "sitecustomize.py").write_text(GATE_SITE)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "LLC_TEST_GATE": str(gate),
           "LLC_TEST_HOLD_SEEDS": ",".join(map(str, seeds))}
    if sampler is not None:
        env["LLC_TEST_HOLD_SAMPLER"] = sampler
    return env, gate


def held(gate: Path) -> list[int]:
    """PIDs of the workers holding a job at the gate."""
    return [int(p.name.split(".")[1]) for p in gate.glob("held.*") if not p.name.endswith(".tmp")]


def start_sweep(tmp_path: Path, runs: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "driver.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llc", *sweep_args(runs, problems(4), [GOOD], *extra)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    return proc, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def run_dirs(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.iterdir() if not p.name.startswith("_") and p.is_dir())


@pytest.mark.timeout(300)
def test_sigterm_stops_the_sweep_and_its_workers(tmp_path):
    """SIGTERM to the driver while a job runs: exit 130, the running job cancelled (interrupted), the
    queued one still pending, the worker gone, the CSV written, no run directory."""
    runs = tmp_path / "runs"
    env, gate = gate_env(tmp_path, 0)
    proc, log = start_sweep(tmp_path, runs, env, "--workers", "1", "--n-seeds", "2")
    try:
        (pid,) = wait_for(lambda: held(gate), 240, "the first job to be held mid-run", proc, log)
        wait_for(lambda: (runs / "_sweeps").is_dir() and statuses(only_manifest(runs))["w4/sgld/seed0"] == "running",
                 60, "the manifest to say running", proc, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    out = log.read_text()
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    data = only_manifest(runs)
    assert statuses(data) == {"w4/sgld/seed0": "cancelled", "w4/sgld/seed1": "pending"}
    job = data["jobs"]["w4/sgld/seed0"]
    assert job["error_kind"] == "interrupted" and job["backend_job_id"] == f"pid:{pid}"
    assert wait_for(lambda: not alive(pid), 20, "the held worker to be stopped")
    assert [r["status"] for r in read_csv(runs / "llc_sweep_results.csv")] == ["cancelled", "pending"]
    assert run_dirs(runs) == []


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_job_fails_that_job_and_the_sweep_goes_on(tmp_path):
    """SIGKILL to the worker running seed 0: that job ends failed (infrastructure, WORKER_DIED, a message
    naming the signal), seed 1 on the other worker finishes, the sweep exits 1 with a summary.
    (The driver can see the worker's pipe close before the process is reaped; the message said
    "exit code None" then, about one run in three, until local.py waited for the exit status.)"""
    runs = tmp_path / "runs"
    env, gate = gate_env(tmp_path, 0)
    proc, log = start_sweep(tmp_path, runs, env, "--workers", "2", "--n-seeds", "2")
    try:
        (pid,) = wait_for(lambda: held(gate), 240, "the first job to be held mid-run", proc, log)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=240)
    finally:
        stop(proc)
    out = log.read_text()
    assert proc.returncode == 1, out
    assert "1 of 2 jobs did not finish" in out.strip().splitlines()[-1]
    data = only_manifest(runs)
    assert statuses(data) == {"w4/sgld/seed0": "failed", "w4/sgld/seed1": "done"}
    dead, ok = data["jobs"]["w4/sgld/seed0"], data["jobs"]["w4/sgld/seed1"]
    assert dead["error_kind"] == "infrastructure" and dead["state"] == "WORKER_DIED"
    assert dead["error"] == "worker process died (signal 9 (SIGKILL)) while running the job; out of memory?"
    assert dead["backend_job_id"] == f"pid:{pid}" and ok["backend_job_id"] != f"pid:{pid}"
    assert run_dirs(runs) == [ok["run_id"]]
    rows = {r["seed"]: r for r in read_csv(runs / "llc_sweep_results.csv")}
    assert rows["0"]["status"] == "failed" and "worker process died" in rows["0"]["error"]
    assert rows["1"]["status"] == "done" and rows["1"]["llc_mean"] != ""


def test_force_recomputes_a_cached_job(tmp_path, llc):
    """With --force a finished job (a cache hit otherwise: test_sweep_local) runs again in a worker and
    replaces its run directory (a new directory: new inode, new timings) with the same estimate."""
    runs = tmp_path / "runs"
    first = llc(sweep_args(runs, problems(4), [GOOD], "--workers", "1"))
    assert first.returncode == 0, first.stderr
    (run_id,) = run_dirs(runs)
    metrics = json.loads((runs / run_id / "metrics.json").read_text())
    inode = (runs / run_id).stat().st_ino

    forced = llc(sweep_args(runs, problems(4), [GOOD], "--workers", "1", "--force"))
    assert forced.returncode == 0, forced.stderr
    assert "0 cached, 1 to run" in forced.stderr
    assert [statuses(m) for m in manifests(runs)] == [{"w4/sgld/seed0": "done"}]  # resumed: one sweep
    assert run_dirs(runs) == [run_id] and (runs / run_id).stat().st_ino != inode
    again = json.loads((runs / run_id / "metrics.json").read_text())
    assert again["llc_mean"] == metrics["llc_mean"]  # the same job, recomputed: bit-identical estimate
    assert again["timing"] != metrics["timing"]  # but really recomputed
    (row,) = read_csv(runs / "llc_sweep_results.csv")
    assert row["status"] == "done"


GRID_ERRORS = [
    ("--problem-grid", '[{"name": "a",}]',
     "--problem-grid: invalid JSON at line 1, column 15: Expecting property name enclosed in double quotes"),
    ("--problem-grid", '{"name": "a"}', "--problem-grid: expected a JSON list of objects, got dict"),
    ("--problem-grid", "[1, 2]", "--problem-grid: [0]: expected an object with keys name, set; got 1"),
    ("--problem-grid", '[{"name": 3}]', "--problem-grid: [0].name: expected a non-empty string, got 3"),
    ("--problem-grid", '[{"set": {}}]', "--problem-grid: [0]: missing 'name'"),
    ("--problem-grid", '[{"name": "a", "set": {"sampler.steps": "many"}}]',
     "--problem-grid: [0].set: sampler.steps: expected int, got 'many'"),
    ("--problem-grid", "[]", "--problem-grid: empty grid; list at least one entry"),
    ("--sampler-grid", "not json",
     "--sampler-grid: 'not json' is neither inline JSON (a list like '[{\"name\": ...}]') nor an existing file"),
    ("--sampler-grid", '[{"sampler": 5}]',
     "--sampler-grid: [0].sampler: 5 is not a sampler; choose one of sgld, sghmc, hmc, nuts, mclmc, mclmc_adjusted"),
    ("--sampler-grid", '[{"sampler": "sgld", "set": {"sampler.steps": -1}}]',
     "--sampler-grid: [0].set: sampler.steps: must be > 0, got -1"),
]


@pytest.mark.parametrize(("option", "grid", "message"), GRID_ERRORS, ids=[f"{o}:{g}" for o, g, _ in GRID_ERRORS])
def test_bad_grid_on_the_command_line_exits_2_in_one_line(tmp_path, llc, option, grid, message):
    runs = tmp_path / "runs"
    grids = {"--problem-grid": problems(4), "--sampler-grid": json.dumps([GOOD]), option: grid}
    proc = llc(["sweep", *[x for item in grids.items() for x in item], "--runs-dir", str(runs)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]
    assert proc.stdout == "" and not runs.exists()
