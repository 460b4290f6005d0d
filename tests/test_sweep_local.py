"""`llc sweep` on the local backend: cache, failures, timeouts, Ctrl-C, SIGKILL + resume, concurrency, CSV."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, wait_for

# Tiny jobs: compile time dominates; each takes ~10 s on an idle CPU.
TINY = ["--set", "sampler.steps=200", "--set", "sampler.warmup=20", "--set", "data.n=500", "--set", "sampler.chains=2"]
GOOD = {"sampler": "sgld"}
# A job that cannot finish within the tests' patience (tiny jobs take ~2 s once compilation is cached).
LONG = {"sampler": "sgld", "name": "long", "set": {"sampler.steps": 5_000_000}}
BAD = {"sampler": "sgld", "name": "diverging", "set": {"sampler.step_size": 10}}


def problems(*widths: int) -> str:
    return json.dumps([{"name": f"w{w}", "set": {"target.hidden": [w]}} for w in widths])


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def llc(monkeypatch, capsys):
    """Run the `llc` entry point in this process (the driver only; jobs still run in spawned workers),
    which saves a JAX import per call. Returns a function args -> Result."""
    from llc.cli import main

    def call(args: list[str]) -> Result:
        capsys.readouterr()
        monkeypatch.setattr("sys.argv", ["llc", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    monkeypatch.chdir(REPO)
    return call


def sweep_args(runs: Path, problem_grid: str, sampler_grid: list[dict], *extra: str) -> list[str]:
    return ["sweep", "--problem-grid", problem_grid, "--sampler-grid", json.dumps(sampler_grid),
            *TINY, "--runs-dir", str(runs), *extra]


def sweep_popen(runs: Path, problem_grid: str, sampler_grid: list[dict], *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "llc", *sweep_args(runs, problem_grid, sampler_grid, *extra)]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def manifests(runs: Path) -> list[dict]:
    out = []
    for path in sorted((runs / "_sweeps").glob("sweep-*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError:  # pragma: no cover - writes are atomic; this would be a bug
            raise AssertionError(f"half-written manifest {path}") from None
    return out


def only_manifest(runs: Path) -> dict:
    (data,) = manifests(runs)
    return data


def statuses(data: dict) -> dict[str, str]:
    return {k: v["status"] for k, v in data["jobs"].items()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))




def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def worker_pids(data: dict) -> list[int]:
    return [int(v["backend_job_id"].split(":")[1]) for v in data["jobs"].values()
            if (v.get("backend_job_id") or "").startswith("pid:")]


def flat_metrics(metrics: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(flat_metrics(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def assert_complete_row(row: dict[str, str]) -> None:
    """Every value that exists in the run directory has a non-empty cell."""
    run_dir = Path(row["run_dir"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    for key, value in flat_metrics(metrics).items():
        if value is None or key == "sampler":
            continue
        assert row.get(key, "") != "", f"{row['run_id']}: empty column {key}"
    for section in ("target", "data", "posterior", "sampler"):
        for key, value in config[section].items():
            if value is not None:
                assert row[f"{section}.{key}"] != "", f"{row['run_id']}: empty column {section}.{key}"
    for key in ("run_id", "family_id", "problem", "sampler", "seed", "status", "run_dir"):
        assert row[key] != "", key
    assert json.loads(row["llc_per_chain"]) == metrics["llc_per_chain"]
    assert float(row["timing.sampling_s"]) == metrics["timing"]["sampling_s"]
    assert float(row["work.fde_sampling"]) == metrics["work"]["fde_sampling"]
    assert row["run_id"] == run_dir.name == metrics["run_id"]


def three_samplers() -> list[dict]:
    """Three registered samplers if there are, else SGLD with three preconditioners."""
    from llc.samplers import REGISTRY

    others = [n for n in ("sghmc", "hmc", "nuts", "mclmc") if n in REGISTRY]
    if len(others) >= 2:
        return [{"sampler": "sgld"}] + [{"sampler": n} for n in others[:2]]
    return [
        {"sampler": "sgld", "name": "sgld-plain"},
        {"sampler": "sgld", "name": "sgld-rmsprop", "set": {"sampler.precond": "rmsprop", "sampler.step_size": 1e-5}},
        {"sampler": "sgld", "name": "sgld-adam", "set": {"sampler.precond": "adam", "sampler.step_size": 1e-5}},
    ]


# ---------------------------------------------------------------- tests


def test_failing_job_does_not_stop_the_others_and_cache(tmp_path, llc):
    runs = tmp_path / "runs"
    proc = llc(sweep_args(runs, problems(4), [GOOD, BAD], "--workers", "2"))
    assert proc.returncode == 1, proc.stderr  # some job failed
    assert "1 of 2 jobs did not finish" in proc.stderr.splitlines()[-1]
    csv_path = Path(proc.stdout.strip().splitlines()[-1])
    assert csv_path == runs / "llc_sweep_results.csv"

    data = only_manifest(runs)
    assert statuses(data) == {"w4/sgld/seed0": "done", "w4/diverging/seed0": "failed"}
    bad = data["jobs"]["w4/diverging/seed0"]
    assert bad["error_kind"] == "job" and "diverged" in bad["error"]
    assert "Traceback" in bad["traceback"] and "LLCError" in bad["traceback"]
    assert bad["backend_job_id"].startswith("pid:")

    rows = {r["sampler"]: r for r in read_csv(csv_path)}
    assert rows["diverging"]["status"] == "failed" and "diverged" in rows["diverging"]["error"]
    assert rows["diverging"]["sampler.step_size"] == "10.0" and rows["diverging"]["llc_mean"] == ""
    assert rows["diverging"]["run_dir"] == ""
    assert rows["sgld"]["status"] == "done"
    assert_complete_row(rows["sgld"])
    assert not (runs / bad["run_id"]).exists()  # a failed job leaves no run directory
    assert not list((runs / "_tmp").iterdir())

    # The same job in another sweep comes straight from the cache; no worker starts.
    t0 = time.perf_counter()
    proc = llc(sweep_args(runs, problems(4), [GOOD], "--workers", "2", "--csv", str(tmp_path / "again.csv")))
    assert proc.returncode == 0, proc.stderr
    assert "1 cached, 0 to run" in proc.stderr
    (row,) = read_csv(tmp_path / "again.csv")
    assert row["status"] == "cached" and row["run_id"] == rows["sgld"]["run_id"]
    assert {k: v for k, v in row.items() if k != "status"} == {k: v for k, v in rows["sgld"].items() if k != "status"}
    again = [m for m in manifests(runs) if m["sweep_id"] != data["sweep_id"]][0]
    assert all(j["attempts"] == 0 for j in again["jobs"].values())
    print(f"cached rerun: {time.perf_counter() - t0:.1f}s")

    # `llc aggregate` rebuilds the same row from the run directory alone.
    proc = llc(["aggregate", str(runs), "--csv", str(tmp_path / "agg.csv")])
    assert proc.returncode == 0, proc.stderr
    (agg,) = read_csv(tmp_path / "agg.csv")
    assert agg["status"] == "done"
    assert {k: v for k, v in agg.items() if k not in ("status", "error_kind")} == {
        k: v for k, v in rows["sgld"].items() if k not in ("status", "error_kind")
    }


def test_timeout_kills_the_job(tmp_path, llc):
    runs = tmp_path / "runs"
    proc = llc(sweep_args(runs, problems(4), [LONG], "--workers", "1", "--timeout", "2"))
    assert proc.returncode == 1, proc.stderr
    job = only_manifest(runs)["jobs"]["w4/long/seed0"]
    assert job["status"] == "timeout" and job["error_kind"] == "timeout"
    assert "timed out after 2 s" in job["error"]
    assert not alive(int(job["backend_job_id"].split(":")[1]))
    (row,) = read_csv(runs / "llc_sweep_results.csv")
    assert row["status"] == "timeout" and "timed out" in row["error"]


def test_ctrl_c_stops_cleanly(tmp_path):
    """Ctrl-C while seed 0 is mid-run (held there by test_sweep_events' gate) and seed 1 is queued."""
    from tests.test_sweep_events import gate_env, held

    runs = tmp_path / "runs"
    env, gate = gate_env(tmp_path, 0)
    # Output to files, not pipes: waiting on the driver then cannot hang on a pipe that some other
    # process inherited, and a worker that outlived the driver is reported by the check below.
    # A disposition of SIG_IGN is inherited across exec, and Python installs no KeyboardInterrupt
    # handler when it starts with SIGINT ignored: the driver gets Python's handler, as from a shell.
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'llc'; runpy.run_module('llc', run_name='__main__')")
    args = [sys.executable, "-c", start,
            *sweep_args(runs, problems(4), [GOOD], "--workers", "1", "--n-seeds", "2")]
    log = tmp_path / "driver.log"
    parent_sigint = signal.getsignal(signal.SIGINT)
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**env, "PYTHONFAULTHANDLER": "1"})
    try:
        wait_for(lambda: held(gate) and (runs / "_sweeps").is_dir()
                 and statuses(only_manifest(runs)) == {"w4/sgld/seed0": "running", "w4/sgld/seed1": "pending"},
                 240, "seed 0 held mid-run", proc, log)
        pids = worker_pids(only_manifest(runs))
        assert pids == held(gate)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler writes the driver's stacks to the log
            proc.wait(timeout=30)
            raise AssertionError(f"driver still running 60 s after SIGINT (pytest's SIGINT: {parent_sigint}); "
                                 f"log:\n{log.read_text()}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    data = only_manifest(runs)
    found = statuses(data)
    assert "running" not in found.values()
    assert found == {"w4/sgld/seed0": "cancelled", "w4/sgld/seed1": "pending"}
    cancelled = [v for v in data["jobs"].values() if v["status"] == "cancelled"]
    assert all(v["error_kind"] == "interrupted" for v in cancelled)
    # the driver has exited; a terminated worker may need a moment to be reaped
    assert pids and wait_for(lambda: not any(alive(p) for p in pids), 20, "workers to stop after Ctrl-C")
    assert len(read_csv(runs / "llc_sweep_results.csv")) == 2


def test_sigkill_then_resume_runs_only_missing_jobs(tmp_path, llc):
    """SIGKILL to the driver once seed 0 is done and seed 1 is mid-run (held there by the gate of
    test_sweep_events, so it cannot finish first): the workers die with the driver, and the resumed
    sweep (same sweep ID) takes seed 0 from the cache and runs only seed 1."""
    from tests.test_sweep_events import gate_env, held

    runs = tmp_path / "runs"
    args = (problems(4), [GOOD], "--workers", "1", "--n-seeds", "2")
    env, gate = gate_env(tmp_path, 1)
    proc = subprocess.Popen([sys.executable, "-m", "llc", *sweep_args(runs, *args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: held(gate) and (runs / "_sweeps").is_dir()
                 and statuses(only_manifest(runs)) == {"w4/sgld/seed0": "done", "w4/sgld/seed1": "running"},
                 300, "seed 0 done and seed 1 held mid-run", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = only_manifest(runs)
    pids = worker_pids(before)
    assert set(pids) == set(held(gate))  # one worker ran seed 0, then took seed 1
    wait_for(lambda: not any(alive(p) for p in pids), 20, "workers to die with the driver")
    done_before = {k for k, s in statuses(before).items() if s == "done"}
    complete = {p.name for p in runs.iterdir() if (p / "metrics.json").is_file()}
    assert done_before == {"w4/sgld/seed0"}
    assert {before["jobs"][k]["run_id"] for k in done_before} == complete

    proc = llc(sweep_args(runs, *args))
    assert proc.returncode == 0, proc.stderr
    after = only_manifest(runs)
    assert after["sweep_id"] == before["sweep_id"]
    assert statuses(after) == {"w4/sgld/seed0": "cached", "w4/sgld/seed1": "done"}
    rows = read_csv(runs / "llc_sweep_results.csv")
    assert len(rows) == 2 and len({r["run_id"] for r in rows}) == 2
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith("sgld-")) == sorted(r["run_id"] for r in rows)
    for row in rows:
        assert_complete_row(row)


def test_two_sweeps_at_once_on_one_runs_root(tmp_path, llc):
    """Overlapping sweeps (seeds 0,1 and 1,2 of one problem) started together both finish intact."""
    runs = tmp_path / "runs"
    a = sweep_popen(runs, problems(4), [GOOD], "--workers", "1", "--seeds", "0,1", "--csv", str(tmp_path / "a.csv"))
    b = sweep_popen(runs, problems(4), [GOOD], "--workers", "1", "--seeds", "1,2", "--csv", str(tmp_path / "b.csv"))
    try:
        outs = [p.communicate(timeout=600) for p in (a, b)]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    assert a.returncode == 0 and b.returncode == 0, outs
    found = manifests(runs)
    assert len(found) == 2
    for data in found:
        assert set(statuses(data).values()) <= {"done", "cached"}
    rows_a, rows_b = read_csv(tmp_path / "a.csv"), read_csv(tmp_path / "b.csv")
    assert [r["seed"] for r in rows_a] == ["0", "1"] and [r["seed"] for r in rows_b] == ["1", "2"]
    assert rows_a[1]["run_id"] == rows_b[0]["run_id"]
    for row in rows_a + rows_b:
        assert_complete_row(row)
    assert len([p for p in runs.iterdir() if p.name.startswith("sgld-")]) == 3
    assert not list((runs / "_tmp").iterdir())
    proc = llc(["aggregate", str(runs)])
    assert proc.returncode == 0, proc.stderr
    assert len(read_csv(runs / "llc_aggregate.csv")) == 3  # aggregate leaves the sweeps' CSVs alone


@pytest.mark.slow
def test_three_by_three_by_two_sweep_then_cache(tmp_path, llc):
    runs = tmp_path / "runs"
    grid = three_samplers()
    t0 = time.perf_counter()
    proc = llc(sweep_args(runs, problems(3, 4, 5), grid, "--workers", "2", "--n-seeds", "2"))
    first = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(runs / "llc_sweep_results.csv")
    assert len(rows) == 18 and len({r["run_id"] for r in rows}) == 18
    assert {r["status"] for r in rows} == {"done"}
    for row in rows:
        assert_complete_row(row)
    assert len({r["family_id"] for r in rows}) == 6

    # The rerun is served from the cache: no job is attempted (no worker runs anything), no run directory
    # is rewritten. (Said by the manifest and the files, not by comparing wall-clock times.)
    stamps = {p.name: (p.stat().st_ino, (p / "metrics.json").stat().st_mtime_ns) for p in runs.iterdir()
              if p.name.startswith(tuple(f"{g['sampler']}-" for g in grid))}
    attempts = {k: v["attempts"] for k, v in only_manifest(runs)["jobs"].items()}
    t0 = time.perf_counter()
    proc = llc(sweep_args(runs, problems(3, 4, 5), grid, "--workers", "2", "--n-seeds", "2"))
    second = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "18 cached, 0 to run" in proc.stderr
    again = read_csv(runs / "llc_sweep_results.csv")
    assert {r["status"] for r in again} == {"cached"}
    assert [r["run_id"] for r in again] == [r["run_id"] for r in rows]
    data = only_manifest(runs)
    assert set(statuses(data).values()) == {"cached"}
    assert {k: v["attempts"] for k, v in data["jobs"].items()} == attempts  # nothing started again
    assert all(v["started"] is None for v in data["jobs"].values())
    assert len(stamps) == 18 and stamps == {
        name: (p.stat().st_ino, (p / "metrics.json").stat().st_mtime_ns)
        for name, p in ((name, runs / name) for name in stamps)}
    print(f"18 jobs: {first:.0f}s; cached rerun: {second:.1f}s")
