"""Atomic file and directory writes: a file or run directory is complete or absent."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
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


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_staging(runs_root: str | Path) -> list[Path]:
    """Delete staging directories left by processes of this host that no longer exist (a killed worker).

    Staging names carry the host and PID of their writer (`<name>.<host>.<pid>.<hex>`), so a directory
    written by a job on another node of a shared filesystem, or by a live process, is never touched.
    """
    staging = Path(runs_root) / TMP_DIR
    host, removed = _host_tag(), []
    if not staging.is_dir():
        return removed
    for path in staging.iterdir():
        parts = path.name.rsplit(".", 3)
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit() or _pid_alive(int(parts[2])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def new_staging_dir(runs_root: str | Path, name: str) -> Path:
    """A private temporary directory inside the runs root (same filesystem, so rename is atomic).

    Stale staging directories of dead processes on this host are removed first.
    """
    staging = Path(runs_root) / TMP_DIR
    staging.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(runs_root)
    path = staging / f"{name}.{_host_tag()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
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
