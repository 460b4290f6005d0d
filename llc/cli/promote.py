"""`llc promote-readme-images`: copy chosen figures into assets/ and rewrite the README gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llc.cli import app


@app.command("promote-readme-images")
def promote_command(
    run_dirs: Annotated[list[Path] | None, typer.Option(
        "--run-dir", "--from",
        help="Run directory whose figures (RUN_DIR/analysis/*.png, from `llc analyze RUN_DIR`) to promote; repeatable.")] = None,
    plots: Annotated[str, typer.Option(
        "--plots", help="Comma list of the run figures to promote (names as in `llc analyze --plots`).")] = "running_llc,rank",
    sweeps: Annotated[list[Path] | None, typer.Option(
        "--sweep", help="A PNG written by `llc plot-sweep`; repeatable.")] = None,
    readme: Annotated[Path, typer.Option("--readme", help="README to rewrite.")] = Path("README.md"),
    assets: Annotated[Path | None, typer.Option(
        "--assets", help="Folder for the copied images (default: assets/ next to the README).")] = None,
) -> None:
    """Copy figures into ASSETS under stable names and rewrite the README gallery section.

    The section between <!-- gallery:start --> and <!-- gallery:end --> is replaced (and created
    at the end of the README if missing) with the images and captions naming each run (run id,
    sampler, preset or problem, λ̂ ± SE). Files are written only when their bytes change, so a
    second identical call changes nothing. Prints one line per file: copied/unchanged/updated.
    """
    from llc.analysis.plots import parse_kinds
    from llc.analysis.promote import promote

    kinds = parse_kinds(plots) or []
    report = promote(run_dirs=run_dirs or [], plots=kinds, sweeps=sweeps or [], readme=readme, assets=assets)
    for line in report.lines():
        typer.echo(line)
