"""`--backend submitit` against a real SLURM cluster (start one with: bash .ci/slurm/start.sh).

A job that succeeds, one that raises, one cancelled with scancel, one that hits the SLURM
time limit: each ends in the manifest with its SLURM job ID, state and error.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llc.errors import ConfigError
from tests.conftest import REPO, run_cli, wait_for

# The same tiny jobs as the local tests.
TINY = ["--set", "sampler.steps=200", "--set", "sampler.warmup=20", "--set", "data.n=500", "--set", "sampler.chains=2"]
# A job that cannot finish inside the 1-minute SLURM limit on any machine: ~270 µs per step on the
# 2-core CI machine, so ~9 minutes of sampling (2M steps of n=500 took only ~50 s once compilation was cached).
LONG = {"sampler.steps": 2_000_000, "sampler.warmup": 0, "data.n": 20_000, "sampler.batch_size": 4096,
        "sampler.thinning": 100, "sampler.chains": 1, "target.hidden": [4]}
PARTITION = "debug"
ACCOUNT = "acct-do-not-print-7f3a"


def _slurm_unavailable() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM is not installed (no sinfo/sbatch on PATH); start the test cluster with bash .ci/slurm/start.sh"
    try:
        out = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%a %D"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed ({exc}); start the test cluster with bash .ci/slurm/start.sh"
    if out.returncode != 0 or not out.stdout.strip().startswith("up"):
        return f"SLURM partition {PARTITION!r} is not up (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


# CI sets LLC_REQUIRE_SLURM=1 after starting the cluster: there a missing cluster fails these tests
# instead of skipping them silently.
REQUIRED = os.environ.get("LLC_REQUIRE_SLURM") == "1"
SKIP = _slurm_unavailable()
if SKIP is not None and REQUIRED:
    SKIP_REASON, SKIP = SKIP, None

    @pytest.fixture(autouse=True)
    def _cluster_required(request):
        if request.node.get_closest_marker("slurm"):
            pytest.fail(f"LLC_REQUIRE_SLURM=1 but {SKIP_REASON}")


def _executor(tmp_path: Path, **kwargs):
    from llc.executors.submitit_backend import SubmititExecutor

    return SubmititExecutor(folder=tmp_path / "slurm-logs", partition=PARTITION, **kwargs)


def _long_task(tmp_path: Path, key: str, seed: int):
    from llc.config import resolve_config
    from llc.executors import Task
    from llc.executors.job import make_payload
    from llc.runs import run_id

    cfg = resolve_config(preset="quick", overrides={**LONG, "seed": seed})
    return Task(key, make_payload(cfg, run_id(cfg), tmp_path / "runs", force=False))


def test_options_are_validated():
    from llc.executors.submitit_backend import SubmititExecutor

    for kwargs, match in [
        ({"time_min": 0}, "--slurm-time"),
        ({"mem": "lots"}, "--slurm-mem"),
        ({"gpu_mode": "parallel"}, "--gpu-mode"),
        ({"gpu_mode": "sequential", "gpus": 1}, "sequential runs on CPUs"),
        ({"gpu_mode": "vectorized", "gpus": 0}, "needs a GPU"),
    ]:
        with pytest.raises(ConfigError, match=match):
            SubmititExecutor(folder="x", **kwargs)
    assert SubmititExecutor(folder="x", gpus=2).gpu_mode == "vectorized"
    ex = SubmititExecutor(folder="x", account=ACCOUNT)
    assert ex.gpu_mode == "sequential" and ACCOUNT not in json.dumps(ex.describe())
    assert ex._mask(f"sbatch: error: invalid account {ACCOUNT}") == "sbatch: error: invalid account ***"


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_success_and_failure_as_a_job_array(tmp_path):
    runs = tmp_path / "runs"
    grid = [{"sampler": "sgld"}, {"sampler": "sgld", "name": "diverging", "set": {"sampler.step_size": 10}}]
    proc = run_cli(["sweep", "--problem-grid", '[{"name": "w4", "set": {"target.hidden": [4]}}]',
                "--sampler-grid", json.dumps(grid), *TINY, "--runs-dir", str(runs), "--backend", "submitit",
                "--slurm-partition", PARTITION, "--slurm-time", "10", "--slurm-cpus", "1", "--slurm-mem", "2G",
                "--slurm-account", ACCOUNT], timeout=900)
    assert proc.returncode == 1, proc.stderr
    (path,) = (runs / "_sweeps").glob("sweep-*.json")
    data = json.loads(path.read_text())
    ok, bad = data["jobs"]["w4/sgld/seed0"], data["jobs"]["w4/diverging/seed0"]
    assert ok["status"] == "done" and ok["state"] == "COMPLETED"
    assert (runs / ok["run_id"] / "metrics.json").is_file()
    # One sbatch, two array tasks: IDs <array>_<index>.
    assert ok["backend_job_id"].split("_")[0] == bad["backend_job_id"].split("_")[0]
    assert {ok["backend_job_id"].split("_")[1], bad["backend_job_id"].split("_")[1]} == {"0", "1"}
    assert bad["status"] == "failed" and bad["state"] == "FAILED" and bad["error_kind"] == "job"
    assert "diverged" in bad["error"]
    assert "Traceback" in bad["traceback"] and "LLCError" in bad["traceback"]
    assert data["executor"]["account"] == "***"
    # The account reaches sbatch but is never printed or written into the manifest or run directories.
    assert ACCOUNT not in proc.stdout + proc.stderr
    assert ACCOUNT not in path.read_text()
    for f in (runs / ok["run_id"]).iterdir():
        assert ACCOUNT.encode() not in f.read_bytes(), f
    rows = (runs / "llc_sweep_results.csv").read_text()
    assert "diverged" in rows and ACCOUNT not in rows


def _sacct(job_id: str) -> tuple[str, str]:
    """SLURM's own record of a job (its allocation line): (State, ExitCode)."""
    out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"], capture_output=True,
                         text=True, timeout=30, check=True)
    state, code = out.stdout.strip().splitlines()[0].split("|")
    return state, code


def _squeue(job_id: str) -> str:
    """The job's state in the queue, '' once it has left it."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip() if out.returncode == 0 else ""


def _manifest_job(runs: Path, key: str) -> dict | None:
    paths = list((runs / "_sweeps").glob("sweep-*.json")) if (runs / "_sweeps").is_dir() else []
    return json.loads(paths[0].read_text())["jobs"].get(key) if paths else None


def _long_sweep(runs: Path, *extra: str) -> list[str]:
    sets = [x for k, v in LONG.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    return [sys.executable, "-m", "llc", "sweep", "--problem-grid", '[{"name": "long"}]', *sets, "--runs-dir",
            str(runs), "--backend", "submitit", "--slurm-partition", PARTITION, "--slurm-cpus", "1", *extra]


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_cancelled_job(tmp_path):
    """scancel of a running job, as SLURM sees it and as the sweep records it: squeue says RUNNING
    (the manifest too), after scancel squeue forgets it and sacct says CANCELLED; the manifest says
    cancelled (infrastructure) with that job's ID and state, no run directory, and the sweep exits 1."""
    runs, log = tmp_path / "runs", tmp_path / "sweep.log"
    with log.open("w") as out:
        proc = subprocess.Popen(_long_sweep(runs, "--slurm-time", "10"), cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    try:
        job = wait_for(lambda: (j := _manifest_job(runs, "long/sgld/seed0")) and j["status"] == "running" and j,
                    300, "the manifest to say running", proc)
        job_id = job["backend_job_id"]
        assert _squeue(job_id) == "RUNNING" and job["state"] == "RUNNING"
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, log.read_text()
    wait_for(lambda: _squeue(job_id) == "", 120, "SLURM to drop the cancelled job from its queue (after COMPLETING)")
    state, _ = _sacct(job_id)
    assert state.startswith("CANCELLED"), state
    job = _manifest_job(runs, "long/sgld/seed0")
    assert job["status"] == "cancelled" and job["error_kind"] == "infrastructure"
    assert job["backend_job_id"] == job_id and job["state"] == "CANCELLED"
    assert not (runs / job["run_id"]).exists()


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_job_over_its_memory_limit_is_killed_and_reported(tmp_path):
    """--slurm-mem 100M for a job whose Python + JAX alone need more: SLURM kills it (sacct:
    OUT_OF_MEMORY where cgroups enforce memory, FAILED by signal 9 where the accounting poll does, as on
    the CI cluster); the manifest records that state, a failed infrastructure job whose message says it
    ran out of memory and names the fix, and no run directory. (On the CI cluster the message used to be
    whichever line of the task's log came last, e.g. "srun: error: vm: task 0: Killed".)"""
    runs, log = tmp_path / "runs", tmp_path / "sweep.log"
    with log.open("w") as out:
        proc = subprocess.run(_long_sweep(runs, "--slurm-time", "10", "--slurm-mem", "100M"), cwd=REPO,
                              stdout=out, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 1, log.read_text()
    job = _manifest_job(runs, "long/sgld/seed0")
    assert job["status"] == "failed" and job["error_kind"] == "infrastructure", job
    state, _ = _sacct(job["backend_job_id"])
    out = subprocess.run(["sacct", "-j", job["backend_job_id"], "-n", "-P", "--noconvert", "-o", "JobID,ExitCode,MaxRSS"],
                         capture_output=True, text=True, timeout=30, check=True)
    steps = [line.split("|") for line in out.stdout.strip().splitlines()]
    # The task's process peaked above its 100 MiB (sacct's own measurement) and was killed by signal 9.
    assert max(int(rss) for _, _, rss in steps if rss) > 100 * 2**20, steps
    assert state == job["state"] and (state == "OUT_OF_MEMORY" or (
        state == "FAILED" and any(code == "0:9" for _, code, _ in steps))), (state, steps)
    assert job["error"] == "SLURM killed the task: out of memory; raise --slurm-mem", job["error"]
    assert not (runs / job["run_id"]).exists()


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
@pytest.mark.parametrize(("option", "refusal"), [
    (["--slurm-partition", "no-such-partition"], "Invalid partition name specified"),
    (["--slurm-mem", "100T"], "Requested node configuration is not available"),
])
def test_sbatch_refusal_fails_every_job_in_one_line(tmp_path, option, refusal):
    """sbatch refuses the submission: exit 1 with one `error: sbatch failed: ...` line quoting SLURM's
    reason, every job failed (infrastructure) with no SLURM job ID, the CSV written, nothing run."""
    runs = tmp_path / "runs"
    args = ["sweep", "--problem-grid", '[{"name": "w4", "set": {"target.hidden": [4]}}]', *TINY,
            "--runs-dir", str(runs), "--backend", "submitit", "--slurm-partition", PARTITION, *option]
    proc = run_cli(args, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: sbatch failed: sbatch: error: Batch job submission failed: {refusal}"
    assert "Traceback" not in proc.stderr
    job = _manifest_job(runs, "w4/sgld/seed0")
    assert job["status"] == "failed" and job["error_kind"] == "infrastructure" and job["backend_job_id"] is None
    assert job["attempts"] == 0 and refusal in job["error"]
    (row,) = list(csv.DictReader((runs / "llc_sweep_results.csv").open()))
    assert row["status"] == "failed" and row["error_kind"] == "infrastructure"
    assert not (runs / job["run_id"]).exists()


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_timed_out_job(tmp_path):
    """SLURM's 1-minute limit ends the job: sacct says TIMEOUT after a full minute of running (its own
    Elapsed clock, not ours), and the update says timeout with the limit named."""
    ex = _executor(tmp_path, time_min=1)
    ex.submit([_long_task(tmp_path, "long/sgld/seed1", 1)])
    final = list(ex.wait())[-1]
    assert final.status == "timeout" and final.state == "TIMEOUT", final
    assert final.error_kind == "timeout" and "time limit" in final.error
    out = subprocess.run(["sacct", "-j", final.backend_job_id, "-X", "-n", "-P", "-o", "State,Elapsed,Timelimit"],
                         capture_output=True, text=True, timeout=30, check=True)
    state, elapsed, limit = out.stdout.strip().splitlines()[0].split("|")
    assert state == "TIMEOUT" and limit == "00:01:00" and elapsed >= "00:01:00", out.stdout
