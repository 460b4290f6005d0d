"""Sweep results as one CSV: `llc_sweep_results.csv`, one row per job.

Columns: the job's identity (run_id, family_id, problem, sampler, seed, status, error,
error_kind, run_dir), then the flattened resolved config (dotted keys, e.g.
`target.hidden`, `sampler.step_size`), then every metric of metrics.json flattened the
same way (`timing.sampling_s`, `work.fde_sampling`, `erm.converged`, ...). Lists
(`llc_per_chain`, `target.hidden`) are JSON strings; a missing value (null metric, a key
that does not apply to the sampler, metrics of a failed job) is an empty cell, and
nothing else is.

Two sources, same columns:
- `sweep_rows(manifest)`: the jobs of one sweep, including failed ones with their error;
- `collect_rows(runs_root)`: every complete run directory (`llc.runs.layout.is_complete`),
  skipping `_targets`, `_tmp`, `_sweeps` and anything else that is not a run. Problem
  and sampler labels come from sweep manifests when one names the run; otherwise
  `problem` is empty and `sampler` is the sampler's name.

This module reads plain files and dicts only (no JAX), so it is cheap to import.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llc.analysis.reference import join_reference, manifest_references
from llc.records import Metrics
from llc.runs.layout import (
    CONFIG,
    incomplete_reason,
    load_metrics,
    looks_like_run_dir,
    try_read_json,
    write_text_atomic,
)

CSV_NAME = "llc_sweep_results.csv"
AGGREGATE_NAME = "llc_aggregate.csv"
IDENTITY = ("run_id", "family_id", "problem", "sampler", "seed", "status", "error", "error_kind", "run_dir")
SKIP_DIRS = ("_targets", "_tmp", "_sweeps")
CONFIG_SECTIONS = ("target", "data", "posterior", "sampler")


def default_csv_path(runs_root: str | Path) -> Path:
    """Where `llc sweep` writes its results."""
    return Path(runs_root) / CSV_NAME


def default_aggregate_path(runs_root: str | Path) -> Path:
    """Where `llc aggregate` writes: its own file, so it never replaces the sweep's CSV (whose failed
    and timed-out rows it cannot rebuild from run directories)."""
    return Path(runs_root) / AGGREGATE_NAME


def overwrite_problem(path: str | Path) -> str | None:
    """Why replacing the CSV at `path` with `collect_rows` output would lose something, or None.

    Nothing is lost when there is no file, or when it is an llc results CSV whose every row is a
    finished run (`status` done), which aggregate rebuilds. A sweep's failed, timed-out or
    cancelled rows, or a file that is not an llc results CSV, would be lost.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not {"run_id", "status"} <= set(reader.fieldnames or ()):
                return "it is not an llc results CSV"
            lost = sum(1 for row in reader if row.get("status") != "done")
    except (OSError, UnicodeDecodeError, csv.Error):
        return "it is not an llc results CSV"
    return f"its {lost} rows of unfinished jobs (failed, timed out, ...) would be lost" if lost else None


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; lists and other values are kept as they are."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, f"{name}."))
        elif isinstance(item, Mapping):
            out[name] = None
        else:
            out[name] = item
    return out


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """config.json (nested sections + top-level seed/precision) -> dotted keys, sections first."""
    out: dict[str, Any] = {}
    for section in CONFIG_SECTIONS:
        for key, item in (config.get(section) or {}).items():
            out[f"{section}.{key}"] = item
    for key, item in config.items():
        if key not in CONFIG_SECTIONS:
            out[key] = item
    return out


def cell(value: Any) -> str:
    """One CSV cell: '' only for a missing value (None, NaN)."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _row(identity: Mapping[str, Any], config: Mapping[str, Any] | None, metrics: Metrics | None) -> dict[str, Any]:
    row: dict[str, Any] = dict(identity)
    cfg = flat_config(config or {})
    for key, value in cfg.items():
        row.setdefault(key, value)
    for key, value in flatten(metrics.to_dict() if metrics is not None else {}).items():
        if key in IDENTITY or key in cfg:
            continue  # run_id, family_id, seed are identity; seed/precision duplicate the config
        if key == "sampler":
            continue  # the sampler's name is sampler.name; the `sampler` column is the label
        row[key] = value
    return row


def sweep_rows(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per job of a sweep manifest, with metrics read from each finished run directory."""
    jobs = manifest.get("jobs", {})
    order = manifest.get("order") or list(jobs)
    rows = []
    for key in order:
        job = jobs.get(key)
        if job is None:
            continue
        run_dir = Path(job["run_dir"])
        metrics = load_metrics(run_dir)
        identity = {
            "run_id": job["run_id"], "family_id": job.get("family_id"), "problem": job.get("problem"),
            "sampler": job.get("sampler"), "seed": job.get("seed"), "status": job.get("status"),
            "error": job.get("error"), "error_kind": job.get("error_kind"),
            "run_dir": str(run_dir) if metrics is not None else None,
        }
        rows.append(_row(identity, job.get("config") or try_read_json(run_dir / CONFIG), metrics))
    return join_reference(rows, manifest_references(manifest))


def manifest_labels(runs_root: str | Path) -> dict[str, tuple[str, str]]:
    """run_id -> (problem, sampler label) from the sweep manifests in RUNS/_sweeps (latest wins)."""
    labels: dict[str, tuple[str, str, str]] = {}
    for path in sorted((Path(runs_root) / "_sweeps").glob("*.json")):
        data = try_read_json(path)
        if not data:
            continue
        updated = str(data.get("updated", ""))
        for job in (data.get("jobs") or {}).values():
            rid = job.get("run_id")
            if rid and (rid not in labels or updated >= labels[rid][2]):
                labels[rid] = (job.get("problem"), job.get("sampler"), updated)
    return {rid: (p, s) for rid, (p, s, _) in labels.items()}


def references_in(runs_root: str | Path) -> dict[str, str]:
    """family ID -> reference run ID from the sweep manifests in RUNS/_sweeps (the latest sweep that
    names a reference for a family wins)."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted((Path(runs_root) / "_sweeps").glob("*.json")):
        data = try_read_json(path)
        if not data:
            continue
        updated = str(data.get("updated", ""))
        for fam, rid in manifest_references(data).items():
            if fam not in found or updated >= found[fam][1]:
                found[fam] = (rid, updated)
    return {fam: rid for fam, (rid, _) in found.items()}


def run_dirs(runs_root: str | Path, on_damaged: Callable[[Path, str], None] | None = None) -> list[Path]:
    """Complete run directories under the runs root; `on_damaged(path, reason)` hears of each directory
    named like a run that is not complete (it is left out)."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.name in SKIP_DIRS or path.name.startswith((".", "_")):
            continue
        reason = incomplete_reason(path)
        if reason is None:
            out.append(path)
        elif on_damaged is not None and looks_like_run_dir(path):
            on_damaged(path, reason)
    return out


def collect_rows(runs_root: str | Path, use_manifests: bool = True,
                 on_damaged: Callable[[Path, str], None] | None = None) -> list[dict[str, Any]]:
    """One row per complete run directory, rebuilt from config.json + metrics.json alone; with
    `use_manifests`, labels and each family's reference (the reference columns) come from the
    sweep manifests."""
    labels = manifest_labels(runs_root) if use_manifests else {}
    rows = []
    for path in run_dirs(runs_root, on_damaged):
        config, metrics = try_read_json(path / CONFIG), load_metrics(path)
        if config is None or metrics is None:
            continue  # removed or replaced since it was listed
        rid = metrics.run_id
        problem, label = labels.get(rid, (None, None))
        identity = {
            "run_id": rid, "family_id": metrics.family_id, "problem": problem,
            "sampler": label or (config.get("sampler") or {}).get("name"), "seed": config.get("seed"),
            "status": "done", "error": None, "error_kind": None, "run_dir": str(path.resolve()),
        }
        rows.append(_row(identity, config, metrics))
    return join_reference(rows, references_in(runs_root)) if use_manifests else rows


def columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Identity columns, then config keys (in config order), then metric keys (sorted)."""
    config_keys: list[str] = []
    metric_keys: set[str] = set()
    seen: set[str] = set(IDENTITY)
    for row in rows:
        for key in row:
            if key in seen:
                continue
            seen.add(key)
            if key.split(".", 1)[0] in CONFIG_SECTIONS or key == "precision":
                config_keys.append(key)
            else:
                metric_keys.add(key)
    return [*IDENTITY, *config_keys, *sorted(metric_keys)]


def render_csv(rows: Sequence[Mapping[str, Any]], leading: Sequence[str] = ()) -> str:
    """The CSV text of `rows`, the `leading` columns first."""
    cols = [*leading, *[c for c in columns(rows) if c not in leading]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in cols])
    return buf.getvalue()


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the rows as CSV atomically (complete or absent, never half-written)."""
    path = Path(path)
    write_text_atomic(path, render_csv(rows))
    return path
