"""The executor interface: submit tasks, wait for their updates, cancel.

Every backend runs the same job function (`llc.executors.job.execute`) on the same
payload; they differ only in where it runs. An executor reports progress as a stream
of `JobUpdate`s: `running` when a task starts (with the backend's job ID), then one
final update per task with status done / cached / failed / timeout / cancelled.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llc.errors import LLCError


class Backend(enum.StrEnum):
    """Where a sweep's jobs run (`--backend`)."""

    LOCAL = "local"  # worker processes on this machine
    SUBMITIT = "submitit"  # SLURM tasks through submitit
    MODAL = "modal"  # Modal containers


class JobStatus(enum.StrEnum):
    """A job's state in the manifest. A `StrEnum`: manifests and CSVs hold the plain values."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CACHED = "cached"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """The job has ended (well or not); no more updates follow."""
        return self not in (JobStatus.PENDING, JobStatus.RUNNING)

    @property
    def ok(self) -> bool:
        """The job has a complete run directory: it ran now or was found in the cache."""
        return self in (JobStatus.DONE, JobStatus.CACHED)


FINAL_STATES = tuple(s for s in JobStatus if s.final)
OK_STATES = tuple(s for s in JobStatus if s.ok)


class ErrorKind(enum.StrEnum):
    """What went wrong: the job itself raised, it ran out of time, the infrastructure (scheduler,
    cloud, worker process) failed around it, or the sweep was interrupted."""

    JOB = "job"
    TIMEOUT = "timeout"
    INFRA = "infrastructure"
    INTERRUPTED = "interrupted"


class InfrastructureError(LLCError):
    """The backend could not run the jobs at all (scheduler unreachable, cloud error, ...)."""


@dataclass(frozen=True)
class Task:
    key: str  # the job's name in the manifest
    payload: dict[str, Any]  # argument of `execute`: config, run_id, runs_root, force


@dataclass(frozen=True)
class JobUpdate:
    key: str
    status: JobStatus
    backend_job_id: str | None = None
    state: str | None = None  # the backend's own state word, e.g. SLURM's FAILED / TIMEOUT
    run_dir: str | None = None
    error: str | None = None  # one line
    error_kind: ErrorKind | None = None
    traceback: str | None = None
    elapsed_s: float | None = None

    def fields(self) -> dict[str, Any]:
        """The manifest fields this update sets (None values are kept: they clear old errors)."""
        out = asdict(self)
        out.pop("key")
        if not JobStatus(self.status).final:
            # A start says nothing about errors or results; keep only what it knows.
            return {k: v for k, v in out.items() if v is not None}
        # The run directory's location and the backend ID are known before the job ends;
        # an update that does not know them must not erase them.
        for key in ("run_dir", "backend_job_id", "state"):
            if out[key] is None:
                del out[key]
        return out


class Executor(abc.ABC):
    """Runs tasks somewhere; reports `JobUpdate`s as they happen."""

    name: str = "executor"

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Check, before anything is submitted, that this backend can run (raise LLCError if not)."""

    def describe(self) -> dict[str, Any]:
        """Non-secret settings recorded in the manifest (never accounts or tokens)."""
        return {"backend": self.name}

    @abc.abstractmethod
    def submit(self, tasks: Sequence[Task]) -> None:
        """Queue or submit the tasks. Raise InfrastructureError if the backend refuses them."""

    @abc.abstractmethod
    def wait(self) -> Iterator[JobUpdate]:
        """Yield updates until every submitted task has a final update."""

    @abc.abstractmethod
    def cancel(self) -> list[str]:
        """Stop everything still queued or running; return the keys that were stopped."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (worker processes, connections)."""


def one_line(text: str, limit: int = 500) -> str:
    """The last non-empty line of a message or traceback, shortened."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
