"""The sweep manifest: `RUNS/_sweeps/<sweep_id>.json`, one entry per job.

Each entry maps the job (problem / sampler label / seed) to its run ID, status,
backend job ID, error and timings. Every change is a read-modify-write of the whole
file under an exclusive `fcntl` lock on `<sweep_id>.lock`, and the file is replaced
atomically (`write_json_atomic`), so two sweep processes on the same runs root never
lose each other's updates and a reader never sees half a file. Readers do not lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llc.errors import ConfigError
from llc.executors.base import FINAL_STATES, JobStatus
from llc.runs.layout import write_json_atomic

SWEEPS_DIR = "_sweeps"
MANIFEST_VERSION = 1


def sweeps_dir(runs_root: str | Path) -> Path:
    return Path(runs_root) / SWEEPS_DIR


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Manifest:
    def __init__(self, runs_root: str | Path, sweep_id: str) -> None:
        self.runs_root = Path(runs_root)
        self.sweep_id = sweep_id
        self.path = sweeps_dir(runs_root) / f"{sweep_id}.json"
        self.lock_path = sweeps_dir(runs_root) / f"{sweep_id}.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, as for any file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> dict[str, Any] | None:
        """The manifest, or None when there is none; a damaged one is a ConfigError naming the file and the fix."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self._damaged(type(exc).__name__) from None
        if not isinstance(data, dict) or not isinstance(data.get("jobs", {}), dict):
            raise self._damaged("not a JSON object with a `jobs` object")
        return data

    def _damaged(self, why: str) -> ConfigError:
        return ConfigError(
            f"sweep manifest {self.path} is damaged ({why}); delete it and rerun the sweep: finished runs are "
            "found in the runs root again, only this sweep's bookkeeping (attempts, backend IDs) is lost"
        )

    def _modify(self, change) -> dict[str, Any]:
        with self._locked():
            data = self.read() or {"version": MANIFEST_VERSION, "sweep_id": self.sweep_id, "created": _now(), "jobs": {}}
            change(data)
            data["updated"] = _now()
            write_json_atomic(self.path, data)
            return data

    def start(self, jobs: list[Mapping[str, Any]], statuses: Mapping[str, str], meta: Mapping[str, Any]) -> dict[str, Any]:
        """Record a sweep invocation: every job with its status at start (cached or pending).

        Entries of an earlier invocation are kept (attempt counts, backend IDs) but their
        status is reset from what is on disk now, so a rerun after a crash starts consistent.
        """

        def change(data: dict[str, Any]) -> None:
            data.update({k: v for k, v in meta.items()})
            data["order"] = [j["key"] for j in jobs]
            old = data.get("jobs", {})
            new: dict[str, Any] = {}
            for job in jobs:
                entry = dict(old.get(job["key"], {}))
                entry.update(job)
                entry.update(status=statuses[job["key"]], error=None, error_kind=None, traceback=None,
                             state=None, started=None, finished=None, elapsed_s=None)
                entry.setdefault("attempts", 0)
                entry.setdefault("backend_job_id", None)
                entry["run_dir"] = str(self.runs_root.resolve() / job["run_id"])
                new[job["key"]] = entry
            data["jobs"] = new
            data["driver"] = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}

        return self._modify(change)

    def update(self, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        def change(data: dict[str, Any]) -> None:
            entry = data["jobs"][key]
            entry.update(fields)
            if fields.get("status") == JobStatus.RUNNING:
                entry["attempts"] = entry.get("attempts", 0) + 1
                entry["started"] = _now()
            elif fields.get("status") in FINAL_STATES:
                entry["finished"] = _now()

        return self._modify(change)

    def update_many(self, keys: list[str], fields: Mapping[str, Any],
                    only_if: tuple[str, ...] = (JobStatus.PENDING, JobStatus.RUNNING)) -> dict[str, Any]:
        """Set `fields` on every job in `keys` whose status is in `only_if` (e.g. mark cancelled)."""

        def change(data: dict[str, Any]) -> None:
            for key in keys:
                entry = data["jobs"].get(key)
                if entry is not None and entry.get("status") in only_if:
                    entry.update(fields)
                    if fields.get("status") in FINAL_STATES:
                        entry["finished"] = _now()

        return self._modify(change)

    def finish(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        def change(data: dict[str, Any]) -> None:
            data["summary"] = dict(summary)
            data["finished"] = _now()

        return self._modify(change)


def manifest_jobs(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest's job entries in sweep order, each with its `key`."""
    jobs = data.get("jobs", {})
    order = data.get("order") or list(jobs)
    return [{"key": k, **jobs[k]} for k in order if k in jobs]


def count_statuses(data: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in data.get("jobs", {}).values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return counts
