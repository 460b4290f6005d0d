"""`llc analyze`: diagnostic figures (PNG) for one or more run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app


@app.command("analyze")
def analyze_command(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories, or runs roots: every complete run directory under a root is analyzed "
             "(_targets, _tmp and other _-prefixed folders are skipped).", show_default=False)],
    plots: Annotated[str | None, typer.Option(
        "--plots",
        help="Comma list of running_llc, rank, ess_evolution, autocorr, energy, theta, acceptance, energy_change "
             "(default: every one that applies to the run's sampler).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (default RUN_DIR/analysis). With several runs: OUT/<run_id>/.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Redraw figures that already exist (default: keep them and say so).")] = False,
) -> None:
    """Draw the diagnostic figures of each run as OUT/<plot>.png (how to read them: docs/plots.md).

    A figure that does not apply to a run (e.g. energy for SGLD, which records no Hamiltonian) is
    skipped with a one-line notice on stderr. Each figure written (or kept) is printed on stdout.
    """
    from llc.analysis.plots import analyze_run, find_run_dirs, parse_kinds

    kinds = parse_kinds(plots)
    dirs = find_run_dirs(run_dirs, on_damaged=lambda path, reason: typer.echo(
        f"warning: {path}: damaged run directory ({reason}); skipped", err=True))
    for run_dir in dirs:
        target = None if out is None else (out if len(dirs) == 1 else out / run_dir.name)
        results = analyze_run(run_dir, kinds=kinds, out=target, overwrite=overwrite,
                              notify=lambda msg: typer.echo(msg, err=True))
        for res in results:
            if res.status in ("written", "kept"):
                typer.echo(str(res.path))
