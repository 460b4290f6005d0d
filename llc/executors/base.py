"""The executor interface: submit tasks, wait for their updates, cancel.

Every backend runs the same job function (`llc.executors.job.execute`) on the same
payload; they differ only in where it runs. An executor reports progress as a stream
of `JobUpdate`s: `running` when a task starts (with the backend's job ID), then one
final update per task with status done / cached / failed / timeout / cancelled.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llc.errors import LLCError

# Job states in the manifest.
PENDING, RUNNING, DONE, CACHED, FAILED, TIMEOUT, CANCELLED = (
    "pending", "running", "done", "cached", "failed", "timeout", "cancelled",
)
FINAL_STATES = (DONE, CACHED, FAILED, TIMEOUT, CANCELLED)
OK_STATES = (DONE, CACHED)

# What went wrong: the job itself raised, it ran out of time, or the infrastructure
# (scheduler, cloud, worker process) failed around it.
ERROR_JOB, ERROR_TIMEOUT, ERROR_INFRA, ERROR_INTERRUPTED = "job", "timeout", "infrastructure", "interrupted"


class InfrastructureError(LLCError):
    """The backend could not run the jobs at all (scheduler unreachable, cloud error, ...)."""


@dataclass(frozen=True)
class Task:
    key: str  # the job's name in the manifest
    payload: dict[str, Any]  # argument of `execute`: config, run_id, runs_root, force


@dataclass(frozen=True)
class JobUpdate:
    key: str
    status: str
    backend_job_id: str | None = None
    state: str | None = None  # the backend's own state word, e.g. SLURM's FAILED / TIMEOUT
    run_dir: str | None = None
    error: str | None = None  # one line
    error_kind: str | None = None  # job / timeout / infrastructure / interrupted
    traceback: str | None = None
    elapsed_s: float | None = None

    def fields(self) -> dict[str, Any]:
        """The manifest fields this update sets (None values are kept: they clear old errors)."""
        out = asdict(self)
        out.pop("key")
        if self.status in (PENDING, RUNNING):
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
