"""The reference join: every row of a family compared with that family's reference run.

A sweep with a reference (docs/sweeps.md, "A reference λ") runs one reference job per family
(everything but the sampler: problem, seed, precision, n, γ, β, ...). This module adds to each row
of a results table, given which run is the reference of which family:

- `is_reference`: the row is its family's reference;
- `ref_run_id`, `ref_status`: the reference run and whether it can serve: `converged`, `unconverged`
  (it finished but its own diagnostics failed) or `missing` (it failed or has not run);
- `lambda_ref`, `lambda_ref_se`: its λ̂ and SE, only when `ref_status` is `converged`;
- `ref_error` = (λ̂ − λ_ref) / λ_ref and `ref_z` = (λ̂ − λ_ref) / sqrt(SE² + SE_ref²), on the other
  rows of the family only (never across families, hence never across seeds or precisions);
- `ref_rel_error` = (λ_ref − lambda_true) / lambda_true, on every row of the family where λ is
  analytic: the reference checked against the truth.

`lambda_true` is untouched: where λ is analytic it stays the truth (`llc plot-sweep --metric
rel_error` compares with it); the reference never replaces it. Plain dicts, no JAX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

REF_COLUMNS = ("is_reference", "ref_run_id", "ref_status", "lambda_ref", "lambda_ref_se", "ref_error", "ref_z",
               "ref_rel_error")
CONVERGED, UNCONVERGED, MISSING = "converged", "unconverged", "missing"


def _number(value: Any) -> float | None:
    """A finite float, or None (missing cell, NaN, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _converged(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def reference_status(ref_row: Mapping[str, Any] | None) -> str:
    """`converged` when the reference finished with `converged` true and a finite λ̂ and SE."""
    if ref_row is None or _number(ref_row.get("llc_mean")) is None:
        return MISSING
    if not _converged(ref_row.get("converged")) or _number(ref_row.get("llc_se")) is None:
        return UNCONVERGED
    return CONVERGED


def comparison(llc_mean: Any, llc_se: Any, lambda_ref: float, lambda_ref_se: float) -> tuple[float | None, float | None]:
    """(ref_error, ref_z) of one estimate against the reference; None where undefined."""
    lam, se = _number(llc_mean), _number(llc_se)
    if lam is None:
        return None, None
    error = (lam - lambda_ref) / lambda_ref if lambda_ref != 0 else None
    combined = math.sqrt(se**2 + lambda_ref_se**2) if se is not None else None
    z = (lam - lambda_ref) / combined if combined else None
    return error, z


def join_reference(rows: Sequence[Mapping[str, Any]], references: Mapping[str, str]) -> list[dict[str, Any]]:
    """`rows` (each with run_id, family_id, llc_mean, llc_se, converged) with the reference columns.

    `references` maps a family ID to its reference run ID. Rows of families without one are
    returned unchanged; when no row has a reference, no column is added at all.
    """
    by_run = {row.get("run_id"): row for row in rows if _number(row.get("llc_mean")) is not None}
    out = []
    for row in rows:
        row = dict(row)
        ref_id = references.get(row.get("family_id") or "")
        if ref_id is None:
            out.append(row)
            continue
        ref_row = by_run.get(ref_id)
        status = reference_status(ref_row)
        own = row.get("run_id") == ref_id
        row.update(dict.fromkeys(REF_COLUMNS), is_reference=own, ref_run_id=ref_id, ref_status=status)
        if status != CONVERGED:
            out.append(row)
            continue
        lam_ref, se_ref = float(ref_row["llc_mean"]), float(ref_row["llc_se"])
        truth = _number(ref_row.get("lambda_true"))
        if truth:
            row["ref_rel_error"] = (lam_ref - truth) / truth
        if not own:
            error, z = comparison(row.get("llc_mean"), row.get("llc_se"), lam_ref, se_ref)
            row.update(lambda_ref=lam_ref, lambda_ref_se=se_ref, ref_error=error, ref_z=z)
        out.append(row)
    if any("ref_status" in row for row in out):  # one schema for every row of the table
        for row in out:
            if "ref_status" not in row:
                row.update(dict.fromkeys(REF_COLUMNS))
    return out


def manifest_references(manifest: Mapping[str, Any]) -> dict[str, str]:
    """family ID -> reference run ID of one sweep manifest (jobs marked `reference`)."""
    out = {}
    for job in (manifest.get("jobs") or {}).values():
        if job.get("reference") and job.get("family_id") and job.get("run_id"):
            out[job["family_id"]] = job["run_id"]
    return out
