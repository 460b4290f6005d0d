"""Checks on the places a command will write, done before any work: a bad `--runs-dir`, `--out` or
`--csv` is a one-line ConfigError (exit 2) at once, not a traceback after ERM and sampling have run."""

from __future__ import annotations

import os
from pathlib import Path

from llc.errors import ConfigError


def _nearest_existing(path: Path) -> Path:
    """`path` itself, or the closest ancestor that exists (where `mkdir -p` would start)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_creatable_dir(path: Path, option: str) -> None:
    existing = _nearest_existing(path)
    if not existing.is_dir():
        what = "is not a directory" if existing == path else f"cannot be created: {existing} is not a directory"
        raise ConfigError(f"{option} {path}: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot write into {existing} (read-only or no permission)")


def check_writable_dir(path: str | Path, option: str) -> Path:
    """A folder files will be written into: a directory, or creatable as one, and writable."""
    path = Path(path)
    _check_creatable_dir(path, option)
    return path


def check_runs_root(runs_root: str | Path | None, option: str = "--runs-dir") -> Path:
    """The runs root (default: $LLC_RUNS_DIR or ./runs), checked to be a writable directory or creatable as one."""
    if runs_root is None:
        from llc.runs import default_runs_root

        runs_root = default_runs_root()
    return check_writable_dir(runs_root, option)


def check_output_file(path: str | Path | None, option: str) -> Path | None:
    """An output file (`--out`, `--csv`): not a directory, and its folder writable or creatable."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give the path of a file")
    if os.path.lexists(path) and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: is not writable")
    _check_creatable_dir(path.parent, option)
    return path
