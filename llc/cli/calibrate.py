"""`llc calibrate`: the step size of an SG sampler from short runs on a grid (docs/calibrate.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llc.calibrate.settings import Settings
from llc.cli import app
from llc.cli.common import (
    ConfigOpt,
    PresetOpt,
    RunsDirOpt,
    SamplerOpt,
    SetOpt,
    echo_err,
    progress_display,
    split_commas,
)
from llc.errors import ConfigError, shown
from llc.paths import check_runs_root, check_writable_dir

_DEFAULT = Settings()


@app.command("calibrate")
def calibrate_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for calibrate.csv, .json, .png and .yaml.")],
    preset: PresetOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    sampler: SamplerOpt = None,
    runs_dir: RunsDirOpt = None,
    points: Annotated[int, typer.Option("--points", help="Grid points (log-spaced).")] = _DEFAULT.points,
    min_factor: Annotated[float, typer.Option("--min-factor", help="Smallest step, as a multiple of the default "
                                                                   "(curvature-based) step.")] = _DEFAULT.min_factor,
    max_factor: Annotated[float, typer.Option("--max-factor", help="Largest step, as a multiple of the default "
                                                                   "step.")] = _DEFAULT.max_factor,
    steps: Annotated[int, typer.Option("--steps", help="Measured steps per grid point and chain.")] = _DEFAULT.steps,
    burn_in: Annotated[int, typer.Option("--burn-in", help="Steps per grid point at its own step before "
                                                           "measuring.")] = _DEFAULT.burn_in,
    thinning: Annotated[int, typer.Option("--thinning", help="Steps between recorded draws (exact full-data "
                                                             "loss, θ, acceptance).")] = _DEFAULT.thinning,
    warmup: Annotated[int | None, typer.Option(
        "--warmup", help="Steps of the sampler's own warm-up (default step, preconditioner) per chain "
                         "(default: sampler.warmup).")] = None,
    chains: Annotated[int, typer.Option("--chains", help="Chains per grid point (at small steps each chain "
                                                         "barely moves, so they set the SE).")] = _DEFAULT.chains,
    relax_steps: Annotated[int | None, typer.Option(
        "--relax-steps", help="Relaxation steps at 4x the default step before the grid (default: two "
                              "relaxation times 1/(4 h gamma) of the softest direction, at most 200000).")] = None,
    group: Annotated[int | None, typer.Option("--group", help="Grid points per compiled call (default: all at "
                                                              "once; lower it if memory runs out).")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Also sweep nbeta (n beta) or gamma over --values: "
                                                              "one grid per value.")] = None,
    values: Annotated[list[str] | None, typer.Option(
        "--values", callback=split_commas, help="Values of the swept quantity, comma-separated or repeated.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress on stderr.")] = True,
) -> None:
    """Calibrate the step size of sgld (any precond) or sghmc: short runs on a log grid around the default.

    Each grid point runs every chain from one shared, relaxed state (all points and chains vmapped in one
    compiled program) and records the exact full-data loss. The table gives λ̂ ± SE, R̂(θ), the fraction of
    diverged chains and a MALA-style acceptance estimate per step. The recommendation is the largest step
    whose λ̂ lies within 2 SE of the small-step plateau (and every smaller step's too) with no diverged
    chain; it is printed as `--set sampler.step_size=...` and written to OUT/calibrate.yaml for
    `llc run --config`. Samplers that adapt their own step (hmc, nuts, mclmc, ...) exit 2.
    """
    from llc.calibrate import calibrate, resolve_jobs, summary_lines, table, write_outputs

    settings = Settings(points=points, min_factor=min_factor, max_factor=max_factor, steps=steps, burn_in=burn_in,
                        thinning=thinning, warmup=warmup, chains=chains, relax_steps=relax_steps, group=group,
                        sweep=sweep, values=tuple(_floats(values or [])))
    resolve_jobs(preset, set_ or [], config, sampler, settings)  # bad input and non-SG samplers: exit 2 now
    check_writable_dir(out, "--out")
    check_runs_root(runs_dir)
    from llc.runs import default_runs_root

    with progress_display(progress and sys.stderr.isatty()) as on_progress:
        cal = calibrate(preset, set_ or [], config, sampler, settings, runs_root=runs_dir or default_runs_root(),
                        on_progress=on_progress)
    typer.echo(table(cal))
    for line in summary_lines(cal):
        if line.startswith(("warning:", "note:")):
            echo_err(line)
        else:
            typer.echo(line)
    for path in write_outputs(cal, out):
        echo_err(f"wrote {path}")
    echo_err(f"calibration took {cal.seconds:.0f} s")


def _floats(items: list[str]) -> list[float]:
    out = []
    for item in items:
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"--values: {shown(item)} is not a number") from None
    return out
