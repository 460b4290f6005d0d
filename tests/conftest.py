"""Shared fixtures: a subprocess runner for the CLI, with its own runs root."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llc.jax_setup import configure_jax

# float64 and the compilation cache for every test, as run_job does for every job (`import llc`
# itself no longer touches JAX).
configure_jax()

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], runs_dir: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """Run `python -m llc ARGS` in a fresh process; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    if runs_dir is not None:
        full_env["LLC_RUNS_DIR"] = str(runs_dir)
    return subprocess.run(
        [sys.executable, "-m", "llc", *args], capture_output=True, text=True, env=full_env, cwd=REPO, timeout=timeout
    )


@pytest.fixture
def cli():
    return run_cli


def write_fake_run(run_dir: Path, config: dict | None = None) -> Path:
    """A run directory that passes `llc.runs.layout.is_complete` without running anything: every file
    present and parseable (trace.nc only carries the HDF5 signature), metrics naming the directory;
    config.json is `config` (a job's `config_to_dict`, so the run counts as that job's cache hit)."""
    import json

    from llc.runs import layout

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / layout.CONFIG).write_text(json.dumps(config or {}))
    (run_dir / layout.ENV).write_text("{}")
    (run_dir / layout.L0_FILE).write_text("0.5\n")
    (run_dir / layout.TRACE).write_bytes(layout.HDF5_SIGNATURE + b"\0" * 8)
    (run_dir / layout.METRICS).write_text(json.dumps({"run_id": run_dir.name}))
    return run_dir


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
             log: Path | None = None):
    """Poll a condition until `predicate()` is truthy and return it (waits on state, never on a fixed
    delay); fail at the deadline, or at once if `proc` exits first, quoting its output or `log`."""
    def output() -> str:
        if log is not None:
            return log.read_text()
        return proc.stderr.read() if proc is not None and proc.stderr is not None else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) while waiting for {what}: {output()}")
        time.sleep(0.1)
    tail = output()[-4000:] if log is not None else ""
    raise AssertionError(f"timed out waiting for {what}" + (f"; driver log:\n{tail}" if tail else ""))


def run_main(args: list[str], monkeypatch) -> int:
    """Run the `llc` console entry point in this process (for commands that run no jobs); its exit code."""
    from llc.cli import main

    monkeypatch.setattr("sys.argv", ["llc", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
