"""`local` backend: a pool of worker processes on this machine.

Workers are started with the `spawn` method (JAX is not fork-safe) and reused for
several jobs (JAX is imported once per worker). Each worker has its own pipe, so
the driver always knows which job a worker is running and can kill exactly that
worker when its job exceeds `timeout`. A killed or crashed worker is replaced.

Workers ignore SIGINT (Ctrl-C reaches the whole foreground process group; the
driver decides what to stop) and, on Linux, die with the driver even when it is
SIGKILLed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from typing import Any

from llc.errors import ConfigError
from llc.executors.base import (
    ErrorKind,
    Executor,
    JobStatus,
    JobUpdate,
    Task,
    one_line,
)

PR_SET_PDEATHSIG = 1
POLL_S = 5.0


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: workers notice the closed pipe after their current job instead
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(1)


def _worker_main(conn: Connection, parent_pid: int) -> None:
    """Worker loop: receive (key, payload), run it, send ("ok", result) or ("error", info)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    from llc.executors.job import execute, prepare

    prepare()  # before the first job's "start": imports are not the job's time
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _key, payload = msg
        try:
            conn.send(("start", None))  # the job's clock starts now, not while the worker imports JAX
        except (OSError, ValueError):
            return
        try:
            out: tuple[str, Any] = ("ok", execute(payload))
        except Exception as exc:  # the job's own failure: report it, keep the worker
            out = ("error", {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        try:
            conn.send(out)
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    proc: Any  # multiprocessing.Process (spawn context)
    conn: Connection
    task: Task | None = None
    started: float | None = None  # when the worker acknowledged the task

    @property
    def job_id(self) -> str:
        return f"pid:{self.proc.pid}"

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)
        self.conn.close()


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int | None = None, timeout: float | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers: must be >= 1, got {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout: must be > 0 seconds, got {timeout}")
        self.workers = workers or default_workers()
        self.timeout = timeout
        self._ctx = mp.get_context("spawn")
        self._queue: deque[Task] = deque()
        self._pool: list[_Worker] = []

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "workers": self.workers, "timeout_s": self.timeout}

    def submit(self, tasks: Sequence[Task]) -> None:
        self._queue.extend(tasks)

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child, os.getpid()), name="llc-worker", daemon=True)
        proc.start()
        child.close()
        worker = _Worker(proc=proc, conn=parent)
        self._pool.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._pool.remove(worker)

    def _start_tasks(self) -> None:
        while self._queue:
            idle = [w for w in self._pool if w.task is None]
            if idle:
                worker = idle[0]
            elif len(self._pool) < self.workers:
                worker = self._spawn()
            else:
                return
            task = self._queue.popleft()
            worker.task, worker.started = task, None
            try:
                worker.conn.send((task.key, task.payload))
            except (OSError, ValueError):  # the idle worker died meanwhile: retry on a fresh one
                worker.task = None
                self._queue.appendleft(task)
                self._retire(worker)
                continue

    def wait(self) -> Iterator[JobUpdate]:
        while True:
            self._start_tasks()
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                return
            now = time.monotonic()
            wait_s = POLL_S
            clocks = [w.started for w in busy if w.started is not None]
            if self.timeout is not None and clocks:
                wait_s = min(wait_s, max(0.0, min(clocks) + self.timeout - now))
            ready = set(wait_any([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=wait_s))
            for worker in busy:
                yield from self._check(worker, ready)

    def _check(self, worker: _Worker, ready: set[Any]) -> Iterator[JobUpdate]:
        task = worker.task
        assert task is not None
        if worker.conn in ready or worker.proc.sentinel in ready:
            try:
                kind, data = worker.conn.recv() if worker.conn.poll() else (None, None)
            except (EOFError, OSError):
                kind, data = None, None
            if kind == "start":
                worker.started = time.monotonic()
                yield JobUpdate(task.key, JobStatus.RUNNING, backend_job_id=worker.job_id)
                if not worker.conn.poll():
                    return
                try:
                    kind, data = worker.conn.recv()
                except (EOFError, OSError):
                    kind, data = None, None
            elapsed = time.monotonic() - worker.started if worker.started is not None else None
            if kind is None:  # died without an answer (killed, out of memory, segfault)
                worker.proc.join(timeout=10)  # its pipe can close before it is reaped: wait for the exit status
                code = worker.proc.exitcode
                job_id = worker.job_id
                self._retire(worker)
                how = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit code {code}"
                yield JobUpdate(task.key, JobStatus.FAILED, backend_job_id=job_id, state="WORKER_DIED",
                                 error=f"worker process died ({how}) while running the job; out of memory?",
                                 error_kind=ErrorKind.INFRA, elapsed_s=elapsed)
                return
            worker.task = worker.started = None
            if kind == "ok":
                status = JobStatus.CACHED if data["cached"] else JobStatus.DONE
                yield JobUpdate(task.key, status, backend_job_id=worker.job_id,
                                state="COMPLETED", run_dir=data["run_dir"], elapsed_s=elapsed)
            else:
                yield JobUpdate(task.key, JobStatus.FAILED, backend_job_id=worker.job_id, state="FAILED",
                                error=one_line(data["error"]), error_kind=ErrorKind.JOB,
                                traceback=data["traceback"], elapsed_s=elapsed)
            return
        if self.timeout is not None and worker.started is not None:
            elapsed = time.monotonic() - worker.started
            if elapsed >= self.timeout:
                job_id = worker.job_id
                self._retire(worker)
                yield JobUpdate(task.key, JobStatus.TIMEOUT, backend_job_id=job_id, state="TIMEOUT",
                                error=f"timed out after {self.timeout:g} s (--timeout); the worker was killed",
                                error_kind=ErrorKind.TIMEOUT, elapsed_s=elapsed)

    def cancel(self) -> list[str]:
        stopped = [w.task.key for w in self._pool if w.task is not None]
        self._queue.clear()
        for worker in list(self._pool):
            self._retire(worker)
        return stopped

    def close(self) -> None:
        for worker in self._pool:
            if worker.task is None:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        deadline = time.monotonic() + 5
        for worker in list(self._pool):
            worker.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            self._retire(worker)
