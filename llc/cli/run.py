"""`llc run`: one job (problem, sampler, seed) -> a run directory."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
import yaml

from llc.cli import app
from llc.cli.common import ConfigOpt, PresetOpt, RunsDirOpt, SamplerOpt, SetOpt, progress_display
from llc.config import config_to_dict, resolve_config
from llc.paths import check_runs_root


@app.command("run")
def run_command(
    preset: PresetOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    sampler: SamplerOpt = None,
    runs_dir: RunsDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute even if this job's run directory exists.")] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the fully-resolved configuration as YAML and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json instead of the run directory.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")] = True,
) -> None:
    """Run one job: build the target, train to w*, sample the localized posterior, estimate the LLC.

    The run directory RUNS_DIR/<run_id>/ holds config.json, metrics.json, trace.nc (ArviZ NetCDF),
    L0.txt and env.json. The run ID is a hash of the resolved configuration, so a finished job is
    returned from the cache at once (use --force to recompute). The last line printed is the run
    directory (or, with --json, the metrics).
    """
    cfg = resolve_config(preset=preset, overrides=set_ or [], config_file=config, sampler=sampler)
    if print_config:
        typer.echo(yaml.safe_dump(config_to_dict(cfg), sort_keys=False).rstrip())
        return
    check_runs_root(runs_dir)
    from llc.runs import run_job

    with progress_display(progress and sys.stderr.isatty()) as on_progress:
        result = run_job(cfg, runs_root=runs_dir, force=force, on_progress=on_progress)
    m = result.metrics
    if not as_json:
        truth = f"  (λ true {m['lambda_true']:.4g})" if m.get("lambda_true") is not None else ""
        cached = " [cached]" if result.cached else ""
        theta = f"  R̂(θ) {m['rhat_theta']:.3f}" if m.get("rhat_theta") is not None else ""
        # R̂ needs two chains: a one-chain run reports none rather than crashing the summary line.
        rhat = f"{m['rhat']:.3f}" if m.get("rhat") is not None else "n/a (1 chain)"
        typer.echo(
            f"λ̂ = {m['llc_mean']:.4g} ± {m['llc_se']:.2g}{truth}  R̂ {rhat}{theta}  ESS {m['ess_bulk']:.0f}"
            f"  converged={m['converged']}{cached}",
            err=True,
        )
        typer.echo(str(result.run_dir))
    else:
        typer.echo(json.dumps(m, indent=2))
