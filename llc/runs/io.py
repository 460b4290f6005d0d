"""Atomic file and directory writes: a file or run directory is complete or absent."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

TMP_DIR = "_tmp"


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def new_staging_dir(runs_root: str | Path, name: str) -> Path:
    """A private temporary directory inside the runs root (same filesystem, so rename is atomic)."""
    staging = Path(runs_root) / TMP_DIR
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def publish_dir(staged: Path, final: Path, replace: bool = False) -> bool:
    """Rename a finished staging directory into place.

    Returns False (and discards `staged`) when another process published the same
    directory first and `replace` is False. With `replace`, the old directory is
    moved aside before the rename and deleted afterwards.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if replace and final.exists():
        trash = staged.parent / f"{final.name}.old.{uuid.uuid4().hex[:8]}"
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(staged, final)
        return True
    except OSError:
        if final.exists():
            shutil.rmtree(staged, ignore_errors=True)
            return False
        raise
