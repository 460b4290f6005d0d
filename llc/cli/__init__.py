"""The `llc` command line: thin Typer commands that parse, call the library, and print.

Each command lives in its own module and registers itself on `app`.
"""

from __future__ import annotations

import sys

import typer

from llc.errors import LLCError

app = typer.Typer(
    name="llc",
    help=(
        "Estimate the local learning coefficient (LLC) of neural networks and benchmark the samplers "
        "that estimate it. Start with: llc run --preset quick"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """Estimate the local learning coefficient (LLC) and benchmark the samplers that estimate it."""


# Command modules register themselves on import.
from llc.cli import aggregate as _aggregate  # noqa: E402,F401
from llc.cli import analyze as _analyze  # noqa: E402,F401
from llc.cli import calibrate as _calibrate  # noqa: E402,F401
from llc.cli import plot_sweep as _plot_sweep  # noqa: E402,F401
from llc.cli import promote as _promote  # noqa: E402,F401
from llc.cli import run as _run  # noqa: E402,F401
from llc.cli import sweep as _sweep  # noqa: E402,F401
from llc.cli import trajectory as _trajectory  # noqa: E402,F401
from llc.cli import validate as _validate  # noqa: E402,F401


def main() -> None:
    """Console entry point: user errors print one line and exit 2 (bad input) or 1 (run failure)."""
    try:
        app()
    except LLCError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
