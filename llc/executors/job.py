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

    payload = {
        "config": config_to_dict(config),
        "run_id": run_id,
        "runs_root": str(Path(runs_root).resolve()),
        "force": bool(force),
    }
    if config.target.kind == "custom":
        payload["sources"] = custom_sources(config)
    return payload


def custom_sources(config: Any) -> dict[str, dict[str, Any]]:
    """The custom target's entry file (and checkpoint) as bytes, so that the job can run on a machine
    that does not share this one's files (Modal); checked against the hashes the run ID covers."""
    import hashlib

    from llc.config.custom import parse_entry, source_file

    t = config.target
    ref = parse_entry(t.entry)
    files = {"entry": (source_file(ref), t.entry_sha256)}
    if t.checkpoint is not None:
        files["checkpoint"] = (Path(t.checkpoint), t.checkpoint_sha256)
    out = {}
    for role, (path, sha) in files.items():
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise LLCError(f"target.{role}: {path} changed since the sweep was configured; run the sweep again")
        out[role] = {"name": path.name, "sha256": sha, "data": data}
    return out


def materialize_sources(payload: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """The payload with its custom entry (and checkpoint) written under `folder` and the config pointing
    at them. The run ID hashes their contents, not their paths, so the ID is unchanged."""
    sources = payload.get("sources")
    if not sources:
        return payload
    target = dict(payload["config"]["target"])
    for role, item in sources.items():
        where = Path(folder) / role / item["sha256"][:16]
        where.mkdir(parents=True, exist_ok=True)
        name = Path(item["name"]).name  # a bare file name: nothing from the payload becomes a path elsewhere
        if not name.endswith((".py", ".npz")) or name.startswith("."):
            raise LLCError(f"payload source {role}: unexpected file name {name!r}")
        (where / name).write_bytes(item["data"])
        if role == "entry":
            target["entry"] = f"{where / name}:{target['entry'].rpartition(':')[2]}"
        else:
            target["checkpoint"] = str(where / name)
    config = {**payload["config"], "target": target}
    return {**{k: v for k, v in payload.items() if k != "sources"}, "config": config}


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
