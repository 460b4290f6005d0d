"""Options shared by several commands, and the progress display."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from llc.samplers.registry import sampler_names

stderr = Console(stderr=True)

PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Preset: quick (small MLP, under a minute) or full (~10k-parameter MLP, n=20000). "
        "Default: the --config file's `preset:`, else quick.",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override one key, repeatable: --set section.key=value (YAML scalars/lists: 1e-6, [8,8]). "
        "See --print-config for every key.",
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file with configuration sections (and optionally `preset`).")]
SamplerOpt = Annotated[
    str | None,
    typer.Option("--sampler", help=f"Shorthand for --set sampler.name=NAME ({', '.join(sampler_names())})."),
]
RunsDirOpt = Annotated[
    Path | None,
    typer.Option("--runs-dir", help="Runs root (default: $LLC_RUNS_DIR or ./runs). Targets are cached in RUNS_DIR/_targets."),
]


def split_commas(values: list[str] | None) -> list[str] | None:
    """Callback of a repeatable list option that also takes the comma form: `--x a,b --x c` -> [a, b, c]."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def echo_err(message: str) -> None:
    """One line to stderr."""
    typer.echo(message, err=True)


@contextmanager
def progress_display(enabled: bool = True):
    """A rich progress bar on stderr; yields a callback `(phase, done, total, note="")`.

    The note (under stop=converged: λ̂, R̂, ESS and SE against their targets) is shown after the bar.
    """
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=stderr,
        transient=False,
    ) as progress:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int, note: str = "") -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=max(total, 1), note=note)
            progress.update(tasks[phase], completed=done, total=max(total, 1), note=note)

        yield update
