"""`submitit` backend: each job is a SLURM task submitted through submitit.

Several jobs are submitted as one SLURM job array (`executor.batch()`), with at most
`array_parallelism` tasks running at once. Every task runs `execute(payload)` on a
node that sees the same runs root (a shared filesystem), so results land in the
runs root exactly as with the local backend.

GPU modes:
- `vectorized`: each task gets `gpus` GPUs (default 1) and JAX runs all chains of the
  job vectorised (`jax.vmap`, as `run_job` always does) on the first GPU.
- `sequential`: no GPU is requested; `JAX_PLATFORMS=cpu` is exported in the task and
  the job runs on the task's CPUs exactly as `llc run` would on a CPU machine. One job
  per task; tasks of the array run side by side as SLURM allows.

Final states: a task whose Python raised is SLURM `FAILED` with the remote traceback
(read from submitit's result file); `CANCELLED`, `TIMEOUT`, `OUT_OF_MEMORY`,
`NODE_FAIL`, ... come from `sacct`. The account (`--slurm-account`) is passed to
sbatch and nowhere else: it is not stored in the manifest and is masked in messages.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
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

GPU_MODES = ("vectorized", "sequential")
POLL_S = 2.0
SACCT_EVERY_S = 4.0
FINAL_STATE_WAIT_S = 60.0  # after a result file appears, how long to wait for sacct's final word
MEM_RE = re.compile(r"^[1-9][0-9]*[KMGT]?B?$", re.IGNORECASE)
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "RESIZING", "SUSPENDED",
                 "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "UNKNOWN", "READY", "PREEMPTED"}


def _slurm_entry(payload: dict[str, Any]) -> dict[str, Any]:
    """What each SLURM task runs. Jobs are not checkpointable: submitit's pre-timeout USR2 (which
    its handler turns into a FAILED job) is ignored, so SLURM's own time limit (TIMEOUT) applies."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    from llc.executors.job import execute

    return execute(payload)


def _base_state(state: str | None) -> str:
    return (state or "UNKNOWN").split()[0].rstrip("+").upper()


class SubmititExecutor(Executor):
    name = "submitit"

    def __init__(
        self,
        folder: str | Path,
        partition: str | None = None,
        time_min: int = 60,
        mem: str | None = None,
        cpus: int | None = None,
        gpus: int | None = None,
        account: str | None = None,
        qos: str | None = None,
        gpu_mode: str | None = None,
        array_parallelism: int | None = None,
    ) -> None:
        if time_min < 1:
            raise ConfigError(f"--slurm-time: minutes must be >= 1, got {time_min}")
        if mem is not None and not MEM_RE.match(mem):
            raise ConfigError(f"--slurm-mem: {shown(mem)} is not a SLURM memory size; use e.g. 4G or 8000M")
        if cpus is not None and cpus < 1:
            raise ConfigError(f"--slurm-cpus: must be >= 1, got {cpus}")
        if gpus is not None and gpus < 0:
            raise ConfigError(f"--slurm-gpus: must be >= 0, got {gpus}")
        if gpu_mode is None:
            gpu_mode = "vectorized" if gpus else "sequential"
        if gpu_mode not in GPU_MODES:
            raise ConfigError(f"--gpu-mode: {shown(gpu_mode)} is not allowed; choose one of {', '.join(GPU_MODES)}")
        if gpu_mode == "sequential" and gpus:
            raise ConfigError("--gpu-mode sequential runs on CPUs; drop --slurm-gpus or use --gpu-mode vectorized")
        if gpu_mode == "vectorized" and gpus is None:
            gpus = 1
        if gpu_mode == "vectorized" and gpus == 0:
            raise ConfigError("--gpu-mode vectorized needs a GPU; set --slurm-gpus >= 1")
        if array_parallelism is not None and array_parallelism < 1:
            raise ConfigError(f"--slurm-array-parallelism: must be >= 1, got {array_parallelism}")
        self.folder = Path(folder)
        self.partition, self.time_min, self.mem, self.cpus = partition, time_min, mem, cpus
        self.gpus, self.qos, self.gpu_mode, self.array_parallelism = gpus, qos, gpu_mode, array_parallelism
        self._account = account
        self._jobs: dict[str, Any] = {}  # key -> submitit job
        self._seen_running: set[str] = set()
        self._last_sacct = 0.0

    # -- helpers

    def _mask(self, text: str) -> str:
        """Never print or store the account name."""
        if self._account:
            text = text.replace(self._account, "***")
        return text

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name, "partition": self.partition, "time_min": self.time_min, "mem": self.mem,
            "cpus": self.cpus, "gpus": self.gpus, "gpu_mode": self.gpu_mode, "qos": self.qos,
            "account": "***" if self._account else None, "array_parallelism": self.array_parallelism,
            "log_folder": str(self.folder),
        }

    def preflight(self) -> None:
        missing = [cmd for cmd in ("sbatch", "sacct", "scancel") if shutil.which(cmd) is None]
        if missing:
            raise LLCError(
                f"--backend submitit needs SLURM's {', '.join(missing)} on PATH; run this on a SLURM login node "
                "(or start the local test cluster: bash .ci/slurm/start.sh)"
            )
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise LLCError("--backend submitit needs the submitit package: uv sync (it is a dependency of llc)") from None

    def _executor(self):
        import submitit

        ex = submitit.SlurmExecutor(folder=self.folder / "%j")
        # signal_delay_s=0: no USR2 before SLURM's kill. With the default (90 s) a limit of a few
        # minutes gets USR2 at once and submitit ends the (non-checkpointable) job as FAILED.
        params: dict[str, Any] = {"time": self.time_min, "job_name": "llc-sweep", "signal_delay_s": 0}
        if self.partition:
            params["partition"] = self.partition
        if self.mem:
            params["mem"] = self.mem.upper()
        if self.cpus:
            params["cpus_per_task"] = self.cpus
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self._account:
            params["account"] = self._account
        if self.qos:
            params["qos"] = self.qos
        if self.array_parallelism:
            params["array_parallelism"] = self.array_parallelism
        if self.gpu_mode == "sequential":
            params["setup"] = ["export JAX_PLATFORMS=cpu"]
        ex.update_parameters(**params)
        return ex

    # -- interface

    def submit(self, tasks: Sequence[Task]) -> None:
        ex = self._executor()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with ex.batch():
                jobs = [ex.submit(_slurm_entry, t.payload) for t in tasks]
        except Exception as exc:  # sbatch refused (bad partition, account, qos, ...)
            raise InfrastructureError(self._mask(f"sbatch failed: {one_line(str(exc))}")) from None
        for task, job in zip(tasks, jobs, strict=True):
            self._jobs[task.key] = job

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._jobs and (force or now - self._last_sacct >= SACCT_EVERY_S):
            next(iter(self._jobs.values())).watcher.update()  # one sacct call for every job
            self._last_sacct = now

    def _state(self, job) -> str:
        return _base_state(job.watcher.get_state(job.job_id, mode="cache"))

    def wait(self) -> Iterator[JobUpdate]:
        for key, job in self._jobs.items():
            yield JobUpdate(key, JobStatus.PENDING, backend_job_id=str(job.job_id), state="PENDING")
        pending = dict(self._jobs)
        while pending:
            self._refresh()
            for key, job in list(pending.items()):
                state = self._state(job)
                has_result = job.paths.result_pickle.exists()
                if not has_result and state in ACTIVE_STATES:
                    if state == "RUNNING" and key not in self._seen_running:
                        self._seen_running.add(key)
                        yield JobUpdate(key, JobStatus.RUNNING, backend_job_id=str(job.job_id), state=state)
                    continue
                del pending[key]
                yield self._outcome(key, job)
            if pending:
                time.sleep(POLL_S)

    def _final_state(self, job, expect_active_end: bool) -> str:
        """sacct's state once it has settled (a result file can appear before SLURM records the end)."""
        deadline = time.monotonic() + (FINAL_STATE_WAIT_S if expect_active_end else 0)
        state = self._state(job)
        while state in ACTIVE_STATES and time.monotonic() < deadline:
            time.sleep(1.0)
            self._refresh(force=True)
            state = self._state(job)
        return state

    def _outcome(self, key: str, job) -> JobUpdate:
        from submitit.core.utils import pickle_load

        job_id = str(job.job_id)
        if job.paths.result_pickle.exists():
            try:
                outcome, value = pickle_load(job.paths.result_pickle)
            except Exception as exc:
                return JobUpdate(key, JobStatus.FAILED, backend_job_id=job_id, state=self._state(job), error_kind=ErrorKind.INFRA,
                                 error=self._mask(f"cannot read the job's result file: {exc}"))
            if outcome == "success":
                return JobUpdate(key, JobStatus.CACHED if value["cached"] else JobStatus.DONE, backend_job_id=job_id,
                                 state="COMPLETED", run_dir=value["run_dir"], elapsed_s=value.get("elapsed_s"))
            trace = self._mask(str(value))
            state = self._final_state(job, expect_active_end=True)
            if "timed-out" in trace and "UncompletedJobError" in trace:
                return JobUpdate(key, JobStatus.TIMEOUT, backend_job_id=job_id, state=state, error_kind=ErrorKind.TIMEOUT,
                                 error=f"SLURM time limit reached ({self.time_min} min, --slurm-time)", traceback=trace)
            return JobUpdate(key, JobStatus.FAILED, backend_job_id=job_id, state=state, error=one_line(trace),
                             error_kind=ErrorKind.JOB, traceback=trace)
        # No result file: SLURM ended the task from outside (cancel, time limit, memory, node failure).
        state = self._final_state(job, expect_active_end=False)
        log = self._mask(self._tail(job))
        if state == "TIMEOUT":
            return JobUpdate(key, JobStatus.TIMEOUT, backend_job_id=job_id, state=state, error_kind=ErrorKind.TIMEOUT,
                             error=f"SLURM time limit reached ({self.time_min} min, --slurm-time); the task was killed",
                             traceback=log or None)
        if state == "CANCELLED":
            return JobUpdate(key, JobStatus.CANCELLED, backend_job_id=job_id, state=state, error_kind=ErrorKind.INFRA,
                             error="cancelled in SLURM (scancel or an administrator) before it finished",
                             traceback=log or None)
        # OUT_OF_MEMORY where cgroups enforce --mem; where the accounting poll does (JobAcctGatherParams=
        # OverMemoryKill) the state is FAILED and only slurmstepd's line in the task's log says why.
        if state == "OUT_OF_MEMORY" or "exceeded memory limit" in log.lower():
            return JobUpdate(key, JobStatus.FAILED, backend_job_id=job_id, state=state, error_kind=ErrorKind.INFRA,
                             error="SLURM killed the task: out of memory; raise --slurm-mem", traceback=log or None)
        return JobUpdate(key, JobStatus.FAILED, backend_job_id=job_id, state=state, error_kind=ErrorKind.INFRA,
                         error=f"SLURM task ended in state {state} without a result"
                         + (f": {one_line(log)}" if log else ""), traceback=log or None)

    @staticmethod
    def _tail(job, lines: int = 40) -> str:
        try:
            text = job.paths.stderr.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def cancel(self) -> list[str]:
        active = [k for k, j in self._jobs.items() if not j.paths.result_pickle.exists()]
        ids = sorted({str(self._jobs[k].job_id) for k in active})
        if ids:
            subprocess.run(["scancel", *ids], check=False, capture_output=True, timeout=60)
        return active

    def close(self) -> None:
        self._jobs.clear()


def default_log_folder(runs_root: str | Path, sweep_id: str) -> Path:
    return Path(runs_root) / "_sweeps" / f"{sweep_id}.submitit"
