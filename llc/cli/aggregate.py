"""`llc aggregate`: rebuild the results CSV from the run directories of a runs root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.errors import ConfigError


@app.command("aggregate")
def aggregate_command(
    runs_root: Annotated[Path | None, typer.Argument(
        help="Runs root to scan (default: $LLC_RUNS_DIR or ./runs).", show_default=False)] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Output CSV (default RUNS_ROOT/llc_aggregate.csv; the sweep's llc_sweep_results.csv is left alone).")] = None,
    labels: Annotated[bool, typer.Option(
        "--labels/--no-labels",
        help="Take problem and sampler labels, and each family's reference run (the ref_* columns), from the sweep "
             "manifests in RUNS_ROOT/_sweeps when they name a run.")] = True,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace --csv even when it holds rows aggregate cannot rebuild (a sweep's failed jobs).")] = False,
) -> None:
    """One CSV row per complete run directory (config.json + metrics.json), nothing else needed.

    Skips _targets, _tmp, _sweeps and unfinished runs; a damaged run directory is named on stderr. Columns: run_id, family_id, problem,
    sampler, seed, status, error, error_kind, run_dir, the flattened config (dotted keys) and
    every metric (nested ones flattened, lists as JSON). It refuses to replace a CSV with rows of
    unfinished jobs (a sweep's) without --force, and writes nothing when no run is complete. The
    last line printed is the CSV path.
    """
    from llc.analysis.aggregate import (
        collect_rows,
        default_aggregate_path,
        overwrite_problem,
        write_csv,
    )
    from llc.paths import check_output_file
    from llc.runs import default_runs_root

    root = runs_root if runs_root is not None else default_runs_root()
    if not root.is_dir():
        raise ConfigError(f"runs root not found: {root}")
    out = check_output_file(csv_path or default_aggregate_path(root), "--csv")
    problem = None if force else overwrite_problem(out)
    if problem is not None:
        raise ConfigError(f"--csv {out}: not replaced, {problem}; give another --csv, or --force")
    rows = collect_rows(root, use_manifests=labels, on_damaged=lambda path, reason: typer.echo(
        f"warning: {path}: damaged run directory ({reason}); left out", err=True))
    if not rows:
        raise ConfigError(f"no complete run directory under {root}; nothing written")
    write_csv(rows, out)
    typer.echo(f"{len(rows)} runs from {root}", err=True)
    typer.echo(str(out))
