"""Shared helpers for the benchmarks in bench/: the common workload, timing, machine info.

Every benchmark prints exactly one JSON line on stdout (progress goes to stderr). Timings on a
shared CPU are noisy, so each figure is the median of REPEATS runs, and comparisons are reported
as ratios of runs made back-to-back in the same process (or the same driver run).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPEATS = 3
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

# Plain SGLD for exactly `sampler.steps` steps, every step kept, minibatch loss recorded. The presets
# now sample until converged with an RMSProp metric and thinning 64 (docs/convergence.md), so a
# throughput benchmark must switch all three off explicitly (without sampler.stop=fixed, resolve_config
# rejects loss_trace=batch).
FIXED_PLAIN_SGLD: dict[str, Any] = {
    "sampler.name": "sgld",
    "sampler.stop": "fixed",
    "sampler.thinning": 1,
    "sampler.precond": "none",
    "sampler.warmup": 0,
    "sampler.batch_size": 256,
    "sampler.loss_trace": "batch",
}

# The common teacher-student workload of issue 7 (devinterp comparison and bare loop):
# x ~ N(0, I_32), n = 20000, MLP 32 -> 64 -> 64 -> 1 ReLU (6,337 parameters), centre = teacher,
# nβ = n / log n, γ = 100, MSE loss (devinterp's convention), SGLD h = 5e-6 (devinterp ε = 1e-5),
# batch 256, 4 chains, 2000 steps, no warm-up.
WORKLOAD_OVERRIDES: dict[str, Any] = {
    "target.kind": "mlp",
    "target.in_dim": 32,
    "target.out_dim": 1,
    "target.hidden": [64, 64],
    "target.activation": "relu",
    "target.center": "teacher",
    "data.n": 20000,
    "posterior.gamma": 100.0,
    "posterior.loss": "mse",
    **FIXED_PLAIN_SGLD,
    "sampler.steps": 2000,
    "sampler.chains": 4,
    "sampler.step_size": 5e-6,
}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's one line of output."""
    print(json.dumps(result, sort_keys=False, default=_json_default), flush=True)


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def workload_config(precision: str = "float32", extra: dict[str, Any] | None = None, preset: str = "quick"):
    """The resolved llc Config of the common workload (plus `extra` overrides)."""
    from llc.config import resolve_config

    overrides = {**WORKLOAD_OVERRIDES, "precision": precision, **(extra or {})}
    return resolve_config(preset, overrides)


def mlp_config(target_params: int, chains: int, precision: str, steps: int, step_size: float, *,
               depth: int = 2, n: int = 20000, extra: dict[str, Any] | None = None):
    """Resolved Config of the scaling workload: a teacher-student MLP (in_dim 32, `depth` equal ReLU
    hidden layers sized so the model has about `target_params` parameters, n samples, centre = teacher,
    γ = 100) sampled by plain SGLD with step `step_size` for exactly `steps` steps (FIXED_PLAIN_SGLD)."""
    from llc.config import resolve_config

    return resolve_config("quick", {
        "target.kind": "mlp", "target.in_dim": 32, "target.out_dim": 1, "target.depth": depth,
        "target.target_params": target_params, "target.activation": "relu", "target.center": "teacher",
        "data.n": n, "posterior.gamma": 100.0, **FIXED_PLAIN_SGLD, "sampler.chains": chains,
        "sampler.steps": steps, "sampler.step_size": step_size, "precision": precision, **(extra or {}),
    })


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, load and the JAX device (when JAX is importable)."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
    }
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
        info["loadavg_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    try:
        import jax

        dev = jax.devices()[0]
        info["jax_backend"] = jax.default_backend()
        info["device"] = f"{dev.platform}:{dev.device_kind}"
        info["device_count"] = jax.device_count()
        info["jax"] = jax.__version__
    except Exception as exc:  # pragma: no cover - JAX missing or broken
        info["device"] = f"unavailable ({exc})"
    return info
