"""The one job function every backend runs: a payload in, `run_job` called, a summary out.

The payload is plain data (picklable, JSON-able) so it crosses process, SLURM and
Modal boundaries unchanged:

    {"config": config_to_dict(cfg), "run_id": "...", "runs_root": "/abs/path", "force": false}

The worker re-derives the run ID from the config and refuses to run if it differs
(e.g. a remote machine running another code version), so a job can never publish
its results under the wrong ID.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llc.errors import LLCError


def make_payload(config: Any, run_id: str, runs_root: str | Path, force: bool) -> dict[str, Any]:
    from llc.config import config_to_dict

    return {
        "config": config_to_dict(config),
        "run_id": run_id,
        "runs_root": str(Path(runs_root).resolve()),
        "force": bool(force),
    }


def prepare() -> None:
    """Import what a job computes with (JAX, the targets, samplers and trace writer) and apply the
    process-wide JAX settings. A local worker calls this before it reports a job started, so a job's
    clock (and `--timeout`) does not count the imports; `execute` works without it."""
    from llc.jax_setup import configure_jax

    configure_jax()
    import llc.posterior  # noqa: F401
    import llc.runs.trace  # noqa: F401
    import llc.samplers.base  # noqa: F401


def execute(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job (or find it in the cache). Raises whatever `run_job` raises."""
    from llc.config import config_from_dict
    from llc.runs import run_id, run_job

    t0 = time.perf_counter()
    cfg = config_from_dict(payload["config"])
    rid = run_id(cfg)
    if rid != payload["run_id"]:
        raise LLCError(
            f"run ID mismatch: the sweep expects {payload['run_id']} but this worker computes {rid} "
            "(is it running a different llc code version?)"
        )
    result = run_job(cfg, runs_root=payload["runs_root"], force=payload.get("force", False))
    return {
        "run_id": rid,
        "run_dir": str(result.run_dir),
        "cached": bool(result.cached),
        "elapsed_s": time.perf_counter() - t0,
    }
