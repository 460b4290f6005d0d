"""`--backend submitit` against a real SLURM cluster (start one with: bash .ci/slurm/start.sh).

A job that succeeds, one that raises, one cancelled with scancel, one that hits the SLURM
time limit: each ends in the manifest with its SLURM job ID, state and error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from llc.errors import ConfigError
from tests.conftest import run_cli

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


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_cancelled_job(tmp_path):
    ex = _executor(tmp_path, time_min=10)
    ex.submit([_long_task(tmp_path, "long/sgld/seed0", 0)])
    updates = []
    for update in ex.wait():
        updates.append(update)
        if update.status == "running":
            subprocess.run(["scancel", update.backend_job_id], check=True, timeout=30)
    final = updates[-1]
    assert final.status == "cancelled" and final.state == "CANCELLED", final
    assert final.backend_job_id and "scancel" in final.error


@pytest.mark.slurm
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_timed_out_job(tmp_path):
    ex = _executor(tmp_path, time_min=1)
    t0 = time.monotonic()
    ex.submit([_long_task(tmp_path, "long/sgld/seed1", 1)])
    final = list(ex.wait())[-1]
    assert final.status == "timeout" and final.state == "TIMEOUT", final
    assert final.error_kind == "timeout" and "time limit" in final.error
    assert time.monotonic() - t0 >= 55  # SLURM's limit, not an early signal
