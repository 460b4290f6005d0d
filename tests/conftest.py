"""Shared fixtures: a subprocess runner for the CLI, with its own runs root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
