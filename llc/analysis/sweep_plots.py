"""`llc plot-sweep`: one metric of the sweep CSV against a problem-size column, per sampler.

The CSV (`llc_sweep_results.csv`, written by `llc.analysis.aggregate`) has one row per job:
identity columns (run_id, sampler, seed, status, error, ...), the flattened config
(`target.depth`, `data.n`, ...) and every metric of metrics.json (`llc_mean`, `llc_se`,
`lambda_true`, `n_params`, `wnv_time`, `timing.sampling_s`, ...). Empty cells are missing values.

Aggregation, per (sampler, size value), over the rows that remain after filtering (normally the
seeds of one problem):
- `llc_mean`: the mean of the per-run λ̂; error bar ±1 combined SE = sqrt(Σ llc_se_i²) / k, the
  Monte Carlo standard error of that mean (k runs). It does not include the spread between
  seeds (data sets); each run is also drawn as a faint dot so that spread stays visible.
- `rel_error` = (llc_mean − lambda_true) / lambda_true per run; error bar the combined SE / λ.
- `ref_error`, `ref_z` (against the family's reference run, llc.analysis.reference): the mean over
  runs, ±1 SE across runs; the reference rows themselves have no value and are not drawn.
- every other metric (wnv_time, wnv_fde, ess_per_sec, ess_per_fde, or any numeric column): the
  mean over runs; error bar ±1 standard error across runs, std(ddof=1)/sqrt(k) (none if k = 1).
Rows whose metric is missing (failed jobs) are dropped and counted in the subtitle.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # headless unless the caller chose a backend

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llc.errors import ConfigError
from llc.runs.layout import atomic_path

METRICS: dict[str, str] = {
    "llc_mean": "λ̂ (mean over runs ± combined SE)",
    "rel_error": "relative error (λ̂ − λ) / λ",
    "ref_error": "error against the reference (λ̂ − λ_ref) / λ_ref",
    "ref_z": "(λ̂ − λ_ref) / combined SE √(SE² + SE_ref²)",
    "wnv_time": "work-normalized variance SE(λ̂)² × sampling seconds (lower is better)",
    "wnv_fde": "work-normalized variance SE(λ̂)² × sampling FDE (lower is better)",
    "ess_per_sec": "bulk ESS per sampling second (higher is better)",
    "ess_per_fde": "bulk ESS per FDE (higher is better)",
}
SIZE_LABELS = {
    "n_params": "number of parameters d (n_params)",
    "n_data": "number of samples n (n_data)",
    "data.n": "number of samples n (data.n)",
    "target.depth": "hidden layers (target.depth)",
    "target.target_params": "requested parameter count (target.target_params)",
}
CONFIG_PREFIXES = ("target.", "data.", "posterior.", "sampler.")
REFERENCE_METRICS = ("ref_error", "ref_z")  # columns of llc.analysis.reference
IDENTITY = ("run_id", "family_id", "problem", "sampler", "seed", "status", "error", "error_kind", "run_dir")


def load_sweep_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--csv {path} is a directory; give the CSV written by `llc sweep` or `llc aggregate`")
    if not path.is_file():
        raise ConfigError(f"--csv: {path} not found; write it with `llc sweep` or `llc aggregate RUNS_ROOT`")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--csv: {path} is not a readable CSV: {exc}") from None
    if "sampler" not in df.columns:
        raise ConfigError(f"--csv: {path} has no `sampler` column; is it an llc sweep CSV?")
    return df


# --------------------------------------------------------------------------------------------
# Selecting rows
# --------------------------------------------------------------------------------------------


def parse_filters(spec: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """'target.activation=relu,target.hidden=[8,8]' -> [(col, value), ...].

    Items are separated by commas that start a new `key=`, so list values keep their commas.
    """
    if not spec:
        return []
    text = spec if isinstance(spec, str) else ",".join(spec)
    out = []
    for item in re.split(r",(?=\s*[A-Za-z_][\w.\-]*\s*=)", text):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filters: {item.strip()!r} is not column=value (e.g. target.activation=relu)")
        out.append((key.strip(), value.strip()))
    return out


def _normalize(value: Any) -> str:
    """Canonical text of a cell or filter value: JSON lists without spaces, booleans lower-case."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    text = str(value).strip()
    try:
        parsed = json.loads(text)
    except (ValueError, TypeError):
        return text.lower() if text.lower() in ("true", "false") else text
    if isinstance(parsed, list | dict | bool):
        return json.dumps(parsed, separators=(",", ":"))
    return text


def _match(column: pd.Series, value: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        want = value.strip().lower() in ("true", "1", "yes")
        return column == want
    if pd.api.types.is_numeric_dtype(column):
        try:
            number = float(value)
        except ValueError:
            return pd.Series(False, index=column.index)
        return pd.Series(np.isclose(column.to_numpy(dtype=float), number, rtol=1e-9, atol=0.0), index=column.index)
    want = _normalize(value)
    return column.map(lambda v: not pd.isna(v) and _normalize(v) == want)


def _values_text(column: pd.Series, limit: int = 12) -> str:
    values = sorted({_normalize(v) for v in column.dropna()}, key=_natural_key)
    if not values:
        return "(only missing values)"
    shown = ", ".join(values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _natural_key(text: str) -> tuple:
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def apply_filters(df: pd.DataFrame, filters: Sequence[tuple[str, str]]) -> pd.DataFrame:
    for key, value in filters:
        if key not in df.columns:
            config_cols = [c for c in df.columns if c.startswith(CONFIG_PREFIXES) or c in IDENTITY]
            raise ConfigError(f"--filters: unknown column {key!r}; config columns: {', '.join(config_cols)}")
        mask = _match(df[key], value)
        if not mask.any():
            raise ConfigError(
                f"--filters: no row has {key}={value} (after the filters before it); "
                f"values present: {_values_text(df[key])}"
            )
        df = df[mask]
    return df


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """Columns with at least one numeric value (booleans excluded)."""
    out = []
    for col in df.columns:
        if pd.api.types.is_bool_dtype(df[col]):
            continue
        if pd.to_numeric(df[col], errors="coerce").notna().any():
            out.append(col)
    return out


def _numeric(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce")


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


@dataclass
class SweepSelection:
    """The rows a sweep plot uses and what was dropped or pooled on the way."""

    rows: pd.DataFrame  # columns: sampler, size, value, se (per run), lambda_true, seed
    size_col: str
    metric: str
    dropped: int = 0
    notes: list[str] = field(default_factory=list)


def select(
    df: pd.DataFrame,
    size_col: str,
    metric: str = "llc_mean",
    samplers: Sequence[str] | None = None,
    filters: Sequence[tuple[str, str]] = (),
) -> SweepSelection:
    """Validate the request against the CSV and return one tidy row per usable run."""
    numeric = numeric_columns(df)
    if size_col not in df.columns:
        raise ConfigError(f"--size-col: unknown column {size_col!r}; numeric columns: {', '.join(numeric)}")
    if size_col not in numeric:
        raise ConfigError(f"--size-col: column {size_col!r} is not numeric; numeric columns: {', '.join(numeric)}")
    if metric not in METRICS and metric not in df.columns:
        raise ConfigError(f"--metric: unknown metric {metric!r}; available: {', '.join(METRICS)} or any numeric column")
    if metric in REFERENCE_METRICS and metric not in numeric:
        raise ConfigError(f"--metric {metric}: no row has a {metric} value; it needs a sweep with a reference "
                          "(llc sweep --reference nuts, or `reference:` in the study) whose reference converged")
    if metric != "rel_error" and metric not in numeric:
        if metric in df.columns:
            raise ConfigError(f"--metric: column {metric!r} is not numeric (or empty in every row)")
        raise ConfigError(f"--metric: the CSV has no {metric!r} column; available: {', '.join(m for m in METRICS if m in df.columns or m == 'rel_error')}")

    df = apply_filters(df, filters)
    if samplers:
        present = sorted({str(s) for s in df["sampler"].dropna()})
        unknown = [s for s in samplers if s not in present]
        if unknown:
            raise ConfigError(
                f"--samplers: no row has sampler {', '.join(map(repr, unknown))}"
                f"{' (after --filters)' if filters else ''}; samplers present: {', '.join(present)}"
            )
        df = df[df["sampler"].astype(str).isin(samplers)]

    lam = _numeric(df, "lambda_true") if "lambda_true" in df.columns else pd.Series(np.nan, index=df.index)
    se = _numeric(df, "llc_se") if "llc_se" in df.columns else pd.Series(np.nan, index=df.index)
    if metric == "rel_error":
        if "llc_mean" not in df.columns or not lam.notna().any():
            raise ConfigError("--metric rel_error needs lambda_true, and no selected row has one (use a target with known λ: dln, quadratic, or a single linear layer)")
        value = (_numeric(df, "llc_mean") - lam) / lam
        se = se / lam.abs()
    else:
        value = _numeric(df, metric)
    tidy = pd.DataFrame({
        "sampler": df["sampler"].astype(str),
        "size": _numeric(df, size_col),
        "value": value,
        "se": se if metric in ("llc_mean", "rel_error") else np.nan,
        "lambda_true": lam,
        "seed": df["seed"] if "seed" in df.columns else np.nan,
    }, index=df.index)
    ok = tidy["value"].notna() & np.isfinite(tidy["value"]) & tidy["size"].notna()
    dropped = int((~ok).sum())
    tidy = tidy[ok]
    if tidy.empty:
        raise ConfigError(
            f"no selected row has both {size_col} and {metric} ({dropped} rows without them: failed jobs or a metric that does not apply)"
        )
    selection = SweepSelection(tidy, size_col, metric, dropped=dropped)
    selection.notes = _pooling_notes(df.loc[tidy.index], size_col)
    return selection


def _pooling_notes(df: pd.DataFrame, size_col: str) -> list[str]:
    """Config columns (other than the size column and seed) that vary inside a plotted point."""
    config_cols = [c for c in df.columns if c.startswith(CONFIG_PREFIXES) and c != size_col]
    varying: set[str] = set()
    for _, group in df.groupby([df["sampler"].astype(str), _numeric(df, size_col)]):
        for col in config_cols:
            if group[col].map(_normalize, na_action="ignore").nunique(dropna=True) > 1:
                varying.add(col)
    if not varying:
        return []
    return [f"runs that differ in {', '.join(sorted(varying))} are averaged into one point; "
            f"separate them with --filters"]


def aggregate(selection: SweepSelection) -> pd.DataFrame:
    """One row per (sampler, size): mean, error (see module docstring), number of runs k."""
    rows = []
    for (sampler, size), group in selection.rows.groupby(["sampler", "size"], sort=True):
        values = group["value"].to_numpy(dtype=float)
        k = values.size
        if selection.metric in ("llc_mean", "rel_error"):
            se = group["se"].to_numpy(dtype=float)
            err = math.sqrt(np.nansum(se**2)) / k if np.isfinite(se).all() else float("nan")
        else:
            err = float(np.std(values, ddof=1) / math.sqrt(k)) if k > 1 else float("nan")
        lam = group["lambda_true"].dropna()
        rows.append({"sampler": sampler, "size": float(size), "mean": float(values.mean()), "err": err, "k": k,
                     "lambda_true": float(lam.mean()) if len(lam) and lam.nunique() == 1 else float("nan")})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def plot_sweep(
    df: pd.DataFrame,
    size_col: str = "n_params",
    metric: str = "llc_mean",
    samplers: Sequence[str] | None = None,
    filters: Sequence[tuple[str, str]] = (),
    logx: bool = False,
    logy: bool = False,
    source: str = "",
    notify: Callable[[str], None] | None = None,
):
    """The metric against `size_col`, one errorbar series per sampler (label = sampler).

    Returns the matplotlib Figure; `fig.llc_table` holds the aggregated points (sampler, size,
    mean, err, k, lambda_true) that were drawn.
    """
    from matplotlib.figure import Figure

    selection = select(df, size_col, metric, samplers, filters)
    for note in selection.notes:
        if notify:
            notify(f"note: {note}")
    table = aggregate(selection)
    order = list(samplers) if samplers else sorted(table["sampler"].unique())

    fig = Figure(figsize=(8.5, 5.4), layout="constrained")
    ax = fig.add_subplot()
    _draw_samplers(ax, selection, table, order)
    _draw_reference(ax, selection)
    _format_axes(ax, selection, logx, logy)
    fig.suptitle(_title(selection, filters, source), fontsize=10)
    fig.llc_table = table
    fig.llc_description = (
        f"{metric} vs {size_col} per sampler ({', '.join(order)})"
        + (f", filters {', '.join(f'{k}={v}' for k, v in filters)}" if filters else "")
        + f", {len(selection.rows)} runs" + (f", from {source}" if source else "")
    )
    return fig


def _draw_samplers(ax, selection: SweepSelection, table: pd.DataFrame, order: Sequence[str]) -> None:
    """Per sampler: every run as a faint dot, the aggregated points with error bars."""
    for i, sampler in enumerate(order):
        color = f"C{i % 10}"
        pts = table[table["sampler"] == sampler].sort_values("size")
        if pts.empty:
            continue
        runs = selection.rows[selection.rows["sampler"] == sampler]
        ax.plot(runs["size"].to_numpy(float), runs["value"].to_numpy(float), ls="none", marker=".", ms=5, alpha=0.35, color=color,
                gid=f"runs:{sampler}")
        k = pts["k"]
        seeds = f"{k.min()}" if k.min() == k.max() else f"{k.min()}–{k.max()}"
        yerr = pts["err"].to_numpy()
        ax.errorbar(pts["size"].to_numpy(float), pts["mean"].to_numpy(float), yerr=np.where(np.isfinite(yerr), yerr, 0.0), marker="o", ms=5,
                    capsize=3, lw=1.5, color=color, label=f"{sampler} ({seeds} run{'s' if k.max() > 1 else ''} per point)")


def _draw_reference(ax, selection: SweepSelection) -> None:
    """λ true under λ̂, the zero line under the relative error; nothing for other metrics."""
    if selection.metric == "llc_mean":
        truth = selection.rows.dropna(subset=["lambda_true"])[["size", "lambda_true"]].drop_duplicates().sort_values("size")
        if not truth.empty:
            if truth["size"].is_unique:
                ax.plot(truth["size"].to_numpy(float), truth["lambda_true"].to_numpy(float), color="black", ls="--", marker="x", ms=7, lw=1.2,
                        label="λ true", gid="lambda_true")
            else:  # several true λ per size (e.g. size = n while the architecture varies)
                ax.plot(truth["size"].to_numpy(float), truth["lambda_true"].to_numpy(float), color="black", ls="none", marker="x", ms=7,
                        label="λ true", gid="lambda_true")
    elif selection.metric == "rel_error":
        ax.axhline(0.0, color="black", ls="--", lw=1.2, label="exact (λ̂ = λ)")
    elif selection.metric == "ref_error":
        ax.axhline(0.0, color="black", ls="--", lw=1.2, label="reference (λ̂ = λ_ref)")
    elif selection.metric == "ref_z":
        ax.axhline(0.0, color="black", ls="--", lw=1.2, label="reference (λ̂ = λ_ref)")
        for bound in (-3.0, 3.0):
            ax.axhline(bound, color="grey", ls=":", lw=1.0, gid=f"ref_z:{bound:+g}")


def _format_axes(ax, selection: SweepSelection, logx: bool, logy: bool) -> None:
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    sizes = np.unique(selection.rows["size"].to_numpy(float))
    if sizes.size <= 12:  # label the sizes themselves (log axes would show 1.2×10¹ otherwise)
        from matplotlib.ticker import NullFormatter, NullLocator

        ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(SIZE_LABELS.get(selection.size_col, selection.size_col))
    ax.set_ylabel(METRICS.get(selection.metric, selection.metric))
    ax.grid(alpha=0.3, which="both" if logx or logy else "major")
    ax.legend(fontsize=8, loc="best")


def _title(selection: SweepSelection, filters: Sequence[tuple[str, str]], source: str) -> str:
    """Title line, then what was selected, dropped and what the error bars mean."""
    metric = selection.metric
    title = f"{metric} vs {selection.size_col}" + (f" — {source}" if source else "")
    bits = []
    if filters:
        bits.append("filters: " + ", ".join(f"{k}={v}" for k, v in filters))
    bits.append(f"{len(selection.rows)} runs")
    if selection.dropped:
        bits.append(f"{selection.dropped} rows without {metric} dropped")
    if metric in ("llc_mean", "rel_error"):
        bits.append("bars: ±1 combined SE = √(Σ SEᵢ²)/k; dots: single runs")
    else:
        bits.append("bars: ±1 SE across runs; dots: single runs")
    return title + "\n" + "; ".join(bits)


def save_sweep_figure(fig, path: str | Path) -> Path:
    """Write the PNG atomically, with the figure's description in the PNG metadata."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png",
                    metadata={"Software": None, "Description": getattr(fig, "llc_description", "")})
    return path


def default_out(csv_path: str | Path, metric: str, size_col: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", f"sweep_{metric}_vs_{size_col}")
    return Path(csv_path).parent / f"{safe}.png"
