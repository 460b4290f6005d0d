"""`llc plot-sweep`: one metric of the sweep CSV against a problem-size column, per sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app
from llc.cli.common import split_commas


@app.command("plot-sweep")
def plot_sweep_command(
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Sweep CSV (default RUNS_ROOT/llc_sweep_results.csv, else the llc_aggregate.csv of `llc aggregate`; "
                 "RUNS_ROOT = $LLC_RUNS_DIR or ./runs).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="PNG to write (default: sweep_<metric>_vs_<size-col>.png next to the CSV).")] = None,
    size_col: Annotated[str, typer.Option(
        "--size-col", help="Numeric column on the x axis, e.g. n_params, n_data, data.n, target.depth.")] = "n_params",
    metric: Annotated[str, typer.Option(
        "--metric", help="llc_mean, rel_error, ref_error, ref_z, wnv_time, wnv_fde, ess_per_sec, ess_per_fde (or any numeric column).")] = "llc_mean",
    samplers: Annotated[list[str] | None, typer.Option(
        "--samplers", callback=split_commas,
        help="Values of the CSV's sampler column, repeatable or comma-separated (default: all).")] = None,
    filters: Annotated[list[str] | None, typer.Option(
        "--filters", help='Keep rows with these column values, repeatable or comma-separated: '
                          '"target.activation=relu,data.x_dist=gauss_iso".')] = None,
    logx: Annotated[bool, typer.Option("--logx", help="Logarithmic x axis.")] = False,
    logy: Annotated[bool, typer.Option("--logy", help="Logarithmic y axis (useful for wnv_* and ess_per_*).")] = False,
) -> None:
    """Plot METRIC against SIZE-COL, one line per sampler, seeds aggregated (docs/plots.md).

    Each point is the mean over the runs of one sampler at one size (normally the seeds); error
    bars are ±1 combined Monte Carlo SE for llc_mean/rel_error, ±1 SE across runs otherwise. The
    true λ is drawn where the CSV has lambda_true. The last line printed is the PNG path.
    """
    from llc.analysis import sweep_plots as sp
    from llc.analysis.aggregate import default_aggregate_path, default_csv_path
    from llc.paths import check_output_file
    from llc.runs import default_runs_root

    path = csv_path
    if path is None:
        root = default_runs_root()
        path = default_csv_path(root)
        if not path.exists() and default_aggregate_path(root).is_file():
            path = default_aggregate_path(root)
    df = sp.load_sweep_csv(path)
    target = check_output_file(out if out is not None else sp.default_out(path, metric, size_col), "--out")
    fig = sp.plot_sweep(df, size_col=size_col, metric=metric, samplers=samplers or None,
                        filters=sp.parse_filters(filters), logx=logx, logy=logy, source=path.name,
                        notify=lambda msg: typer.echo(msg, err=True))
    sp.save_sweep_figure(fig, target)
    typer.echo(str(target))
