"""`modal` backend: each job runs in a Modal container (`llc/executors/modal_backend.py`).

The preflight runs before anything is submitted (and before the manifest is written):
modal importable, credentials configured (MODAL_TOKEN_ID + MODAL_TOKEN_SECRET, or a
profile with a token in ~/.modal.toml / $MODAL_CONFIG_PATH), GPU type valid. Token
values are never read into messages: only their presence is checked.

Each finished job returns its run directory's files, which are written into the local
runs root with the layout of a local run (`RUNS/<run_id>/...`, staged and renamed).
With `local=True` the function body runs in this process through Modal's local
execution path (`Function.local`), which needs no account: used by the tests and to
check a sweep before paying for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llc.errors import ConfigError, LLCError, shown
from llc.executors.base import (
    ErrorKind,
    Executor,
    InfrastructureError,
    JobStatus,
    JobUpdate,
    Task,
    one_line,
)
from llc.runs.layout import new_staging_dir, publish_dir

# Modal's GPU types (https://modal.com/docs/guide/gpu); an optional ":N" asks for N of them.
MODAL_GPUS = ("T4", "L4", "A10", "A10G", "A100", "A100-40GB", "A100-80GB", "L40S", "H100", "H100!", "H200", "B200", "ANY")
GPU_RE = re.compile(r"^(?P<type>[A-Za-z0-9!-]+?)(?::(?P<count>[0-9]+))?$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
POLL_S = 2.0
TOKEN_ENV = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")


def validate_gpu(value: str | None) -> str | None:
    """`--modal-gpu`: a Modal GPU type, optionally with a count (`H100:2`); returned upper-case."""
    if value is None:
        return None
    match = GPU_RE.match(value.strip())
    gpu = match.group("type").upper() if match else value
    if not match or gpu not in MODAL_GPUS:
        raise ConfigError(f"--modal-gpu: {shown(value)} is not a Modal GPU type; choose one of {', '.join(MODAL_GPUS)} "
                          "(optionally with a count, e.g. H100:2)")
    count = match.group("count")
    if count is not None and not 1 <= int(count) <= 8:
        raise ConfigError(f"--modal-gpu: count must be 1..8, got {count}")
    return f"{gpu}:{int(count)}" if count else gpu


def modal_config_path() -> Path:
    return Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")


def credentials_source() -> str | None:
    """Where Modal credentials are configured ("environment" or the config path), or None."""
    if all(os.environ.get(k) for k in TOKEN_ENV):
        return "environment"
    path = modal_config_path()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    profiles = {k: v for k, v in data.items() if isinstance(v, dict)}
    wanted = os.environ.get("MODAL_PROFILE")
    if wanted:
        chosen = profiles.get(wanted)
    else:
        active = [p for p in profiles.values() if p.get("active")]
        chosen = active[0] if active else (next(iter(profiles.values())) if len(profiles) == 1 else None)
    if chosen and chosen.get("token_id") and chosen.get("token_secret"):
        return str(path)
    return None


def preflight(gpu: str | None, local: bool = False) -> None:
    """Fail before submitting anything, saying what to do."""
    validate_gpu(gpu)
    try:
        import modal  # noqa: F401
    except ImportError:
        raise LLCError(
            "--backend modal needs the modal package: install it with `uv sync --extra modal` "
            "(or `pip install 'llc[modal]'`)"
        ) from None
    if local:
        return
    if credentials_source() is None:
        raise LLCError(
            "Modal credentials not found: run `modal token new` (writes ~/.modal.toml) or set MODAL_TOKEN_ID and "
            "MODAL_TOKEN_SECRET; checked the environment and "
            f"{modal_config_path()}"
        )


def _mask(text: str) -> str:
    for key in TOKEN_ENV:
        secret = os.environ.get(key)
        if secret:
            text = text.replace(secret, "***")
    return text


def classify_modal_error(exc: BaseException) -> tuple[JobStatus, str]:
    """(status, one-line message) for an exception raised by Modal around a job: infrastructure."""
    from modal import exception as mx

    name = type(exc).__name__
    detail = _mask(one_line(str(exc)) or name)
    if isinstance(exc, mx.FunctionTimeoutError):
        return JobStatus.TIMEOUT, f"Modal infrastructure error: the function hit its timeout ({name}: {detail}); raise --timeout"
    if isinstance(exc, mx.ImageBuildError):
        return JobStatus.FAILED, f"Modal infrastructure error: the image failed to build ({detail})"
    if isinstance(exc, mx.ResourceExhaustedError):
        return JobStatus.FAILED, f"Modal infrastructure error: resources or credits exhausted ({detail})"
    if isinstance(exc, mx.AuthError | mx.PermissionDeniedError):
        return JobStatus.FAILED, f"Modal infrastructure error: not authorised ({detail}); check `modal token new`"
    return JobStatus.FAILED, f"Modal infrastructure error ({name}): {detail}"


def bring_back(runs_root: str | Path, run_id: str, files: dict[str, bytes], replace: bool = False) -> Path:
    """Write a remote run's files as `runs_root/<run_id>/` (staged, metrics.json last, renamed into place)."""
    from llc.runs.ids import check_run_id

    check_run_id(run_id)
    if "metrics.json" not in files:
        raise LLCError(f"Modal returned run {run_id} without metrics.json")
    for name in files:
        if not FILE_RE.match(name) or ".." in name:
            raise LLCError(f"Modal returned a file with an unsafe name: {shown(name)}")
    final = Path(runs_root) / run_id
    staged = new_staging_dir(runs_root, run_id)
    try:
        for name in sorted(files, key=lambda n: n == "metrics.json"):
            (staged / name).write_bytes(files[name])
        publish_dir(staged, final, replace=replace)
    finally:
        if staged.exists():
            import shutil

            shutil.rmtree(staged, ignore_errors=True)
    return final


class ModalExecutor(Executor):
    name = "modal"

    def __init__(self, runs_root: str | Path, gpu: str | None = None, timeout: float | None = None,
                 local: bool = False, force: bool = False) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout: must be > 0 seconds, got {timeout}")
        self.runs_root = Path(runs_root)
        self.gpu = validate_gpu(gpu)
        self.timeout = timeout
        self.local = local
        self.force = force
        self._tasks: list[Task] = []
        self._calls: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "gpu": self.gpu, "timeout_s": self.timeout, "local": self.local}

    def preflight(self) -> None:
        preflight(self.gpu, local=self.local)

    def _function(self):
        from llc.executors import modal_backend

        fn = modal_backend.run_remote_job
        options: dict[str, Any] = {}
        if self.gpu:
            options["gpu"] = self.gpu
        if self.timeout:
            options["timeout"] = int(max(1, round(self.timeout)))
        return fn.with_options(**options) if options and not self.local else fn

    def submit(self, tasks: Sequence[Task]) -> None:
        self._tasks = list(tasks)
        if self.local:
            return
        import modal

        from llc.executors import modal_backend

        try:
            self._stack.enter_context(modal.enable_output())
            self._stack.enter_context(modal_backend.app.run())
            fn = self._function()
            for task in self._tasks:
                self._calls[task.key] = fn.spawn(task.payload)
        except Exception as exc:
            self._stack.close()
            _, message = classify_modal_error(exc)
            raise InfrastructureError(message) from None

    def _finish(self, task: Task, out: dict[str, Any], job_id: str, elapsed: float) -> JobUpdate:
        if not out.get("ok"):
            return JobUpdate(task.key, JobStatus.FAILED, backend_job_id=job_id, state="FAILED", error=one_line(out["error"]),
                             error_kind=ErrorKind.JOB, traceback=out.get("traceback"), elapsed_s=elapsed)
        try:
            run_dir = bring_back(self.runs_root, out["result"]["run_id"], out["files"], replace=self.force)
        except (LLCError, OSError) as exc:
            return JobUpdate(task.key, JobStatus.FAILED, backend_job_id=job_id, state="COMPLETED", error_kind=ErrorKind.INFRA,
                             error=f"could not bring the run directory back: {one_line(str(exc))}", elapsed_s=elapsed)
        return JobUpdate(task.key, JobStatus.DONE, backend_job_id=job_id, state="COMPLETED", run_dir=str(run_dir),
                         elapsed_s=elapsed)

    def wait(self) -> Iterator[JobUpdate]:
        if self.local:
            fn = self._function()
            for task in self._tasks:
                yield JobUpdate(task.key, JobStatus.RUNNING, backend_job_id="modal-local")
                t0 = time.perf_counter()
                out = fn.local(task.payload)
                yield self._finish(task, out, "modal-local", time.perf_counter() - t0)
            return
        from modal import exception as mx

        started = time.perf_counter()
        for task in self._tasks:
            yield JobUpdate(task.key, JobStatus.RUNNING, backend_job_id=self._calls[task.key].object_id)
        pending = {t.key: t for t in self._tasks}
        while pending:
            for key, task in list(pending.items()):
                call = self._calls[key]
                try:
                    out = call.get(timeout=0)
                except TimeoutError as exc:
                    if isinstance(exc, mx.Error):  # a Modal timeout, not "not ready yet"
                        raise  # pragma: no cover - modal's TimeoutError is not the builtin one
                    continue
                except Exception as exc:
                    del pending[key]
                    status, message = classify_modal_error(exc)
                    yield JobUpdate(key, status, backend_job_id=call.object_id, state=type(exc).__name__,
                                    error=message, error_kind=ErrorKind.INFRA, elapsed_s=time.perf_counter() - started)
                    continue
                del pending[key]
                yield self._finish(task, out, call.object_id, time.perf_counter() - started)
            if pending:
                time.sleep(POLL_S)

    def cancel(self) -> list[str]:
        stopped = []
        for key, call in self._calls.items():
            with contextlib.suppress(Exception):
                call.cancel(terminate_containers=True)
                stopped.append(key)
        return stopped

    def close(self) -> None:
        self._stack.close()
