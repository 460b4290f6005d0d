"""The run directory: its file names, when it counts as complete, and atomic writes and reads.

    RUNS_ROOT/<run_id>/config.json   resolved configuration
                       metrics.json  `llc.records.Metrics`, written last
                       trace.nc      kept draws (ArviZ DataTree, NetCDF-4)
                       L0.txt        L_n(w*), repr of the float
                       env.json      code, package and device versions
                       analysis/     figures of `llc analyze` (optional)

Every file is written to a temporary name in its final directory and renamed into place, so a
reader sees it complete or not at all; a run directory is staged under RUNS_ROOT/_tmp and renamed
into place whole. This module is the one definition of both (runs, study, analysis and promote use
it) and is jax-free, so planning a sweep stays cheap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llc.errors import ConfigError
from llc.hashing import content_hash
from llc.records import Metrics

CONFIG = "config.json"
METRICS = "metrics.json"
TRACE = "trace.nc"
L0_FILE = "L0.txt"
ENV = "env.json"
PLOTS_DIR = "analysis"
RUN_FILES = (CONFIG, METRICS, TRACE, L0_FILE, ENV)
TMP_DIR = "_tmp"
DAMAGED_DIR = "_damaged"  # damaged run directories are moved here, not deleted
RUN_ID_RE = re.compile(r"^[a-z_]+-[0-9a-f]{16}$")  # `<sampler>-<16 hex digits>`; llc.runs.ids re-exports it
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # NetCDF-4 files are HDF5 files


# --------------------------------------------------------------------------------------------
# Completeness
# --------------------------------------------------------------------------------------------


def incomplete_reason(run_dir: str | Path) -> str | None:
    """None for a complete run directory, else why it is not one.

    Complete: every file of RUN_FILES present and parseable (JSON objects, a float in L0.txt, an
    HDF5 trace.nc) and metrics.json's run_id equal to the directory's name.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not a directory"
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in (CONFIG, ENV):
        if try_read_json(run_dir / name) is None:
            return f"{name} is not a JSON object"
    try:
        float((run_dir / L0_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return f"{L0_FILE} does not hold a number"
    try:
        with (run_dir / TRACE).open("rb") as fh:
            if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return f"{TRACE} is not a NetCDF-4 file"
    except OSError:
        return f"{TRACE} cannot be read"
    metrics = try_read_json(run_dir / METRICS)
    if metrics is None:
        return f"{METRICS} is not a JSON object"
    name = run_dir.resolve().name
    if metrics.get("run_id") != name:
        return f"{METRICS} names run {metrics.get('run_id')!r}, not the directory's {name!r}"
    return None


def is_complete(run_dir: str | Path) -> bool:
    return incomplete_reason(run_dir) is None


def cache_miss_reason(run_dir: str | Path, config: dict[str, Any]) -> str | None:
    """None when `run_dir` holds a finished run of exactly `config` (the resolved config as a dict).

    A cache hit needs a complete directory whose config.json is `config`: the directory's name alone
    is not trusted (a copy of another job's run renamed to this job's ID is not its result).
    """
    from llc.runs.ids import hashed_view  # imports the config schema: only needed on this path

    reason = incomplete_reason(run_dir)
    if reason is not None:
        return reason
    stored = try_read_json(Path(run_dir) / CONFIG)
    try:
        same = content_hash(hashed_view(stored)) == content_hash(hashed_view(config))
    except (KeyError, TypeError, AttributeError):
        same = False
    return None if same else f"{CONFIG} is not this job's configuration"


def looks_like_run_dir(path: Path) -> bool:
    """Named like a run directory (`<sampler>-<16 hex digits>`), whatever its contents."""
    return RUN_ID_RE.match(path.name) is not None


def quarantine(run_dir: str | Path) -> Path:
    """Move a damaged run directory aside to RUNS_ROOT/_damaged/<name>.<random> (one rename) and return
    the new path: nothing of it is lost, and its name is free for a fresh run."""
    run_dir = Path(run_dir)
    dest = run_dir.parent / DAMAGED_DIR / f"{run_dir.name}.{uuid.uuid4().hex[:8]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(run_dir, dest)
    return dest


def load_metrics(run_dir: str | Path) -> Metrics | None:
    """The metrics of a complete run directory, or None."""
    if not is_complete(run_dir):
        return None
    data = try_read_json(Path(run_dir) / METRICS)
    return Metrics.from_dict(data) if data is not None else None


def read_metrics(run_dir: str | Path) -> Metrics:
    return Metrics.from_dict(read_json(Path(run_dir) / METRICS))


def read_config(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / CONFIG)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def try_read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from `path`; ConfigError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask is racy in threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode an ordinary open() gives a new file: 0o666 less the umask."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode an ordinary mkdir gives a new directory: 0o777 less the umask."""
    return 0o777 & ~_umask()


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """A temporary path next to `path` to write to; renamed onto `path` when the block succeeds.

    For files written by libraries (matplotlib savefig, xarray to_netcdf); `suffix` keeps the
    extension for libraries that infer the format from it. On failure the temporary file is
    removed and `path` is untouched. The file gets `mode`, by default the mode an ordinary open()
    would give it (0o666 less the umask), not mkstemp's private 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, mode: int | None = None) -> None:
    with atomic_path(path, mode=mode) as tmp, tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


# --------------------------------------------------------------------------------------------
# Staging a whole run directory
# --------------------------------------------------------------------------------------------


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
    path = staging / staging_name(name)
    path.mkdir()
    return path


def staging_name(name: str, pid: int | None = None) -> str:
    """`<name>.<host>.<pid>.<hex>`: what `remove_stale_staging` recognises once `pid` has died."""
    return f"{name}.{_host_tag()}.{os.getpid() if pid is None else pid}.{uuid.uuid4().hex[:8]}"


def publish_dir(staged: Path, final: Path, replace: bool = False) -> bool:
    """Rename a finished staging directory into place.

    Returns False (and discards `staged`) when another process published the same
    directory first and `replace` is False. With `replace`, the old directory is
    moved aside before the rename and deleted afterwards.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if replace and final.exists():
        # named like a staging directory, so a process killed before the rmtree leaves nothing for good
        trash = staged.parent / staging_name(f"{final.name}-old")
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
