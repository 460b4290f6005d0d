"""`llc calibrate`: the step size of a stochastic-gradient sampler, chosen from short runs on a grid.

Steps (docs/calibrate.md):

1. Warm-up: the sampler's own `warmup` for every chain (curvature-scaled default step h0, and with a
   preconditioner its frozen metric), then a relaxation phase at 4·h0 long enough for the γ-confined
   directions to relax (2 relaxation times, 1/(4·h0·γ) steps each). One warmed state per chain is shared
   by every grid point, so even the smallest steps start near equilibrium.
2. Grid: `points` step sizes log-spaced from `min_factor`·h0 to `max_factor`·h0 (h is the sampler's
   Langevin step: SGLD's h, SGHMC's ε/α). Every grid point runs `burn_in` + `steps` steps of the
   sampler's own `step` from the shared state, all grid points and chains vmapped in one compiled
   program, with common random numbers (the same minibatches and noise at every grid point).
3. Every `thinning` steps: the exact full-data loss (λ̂, SE and R̂ via llc.estimator, as every run),
   the θ projections (R̂(θ)) and a MALA-style acceptance estimate of the sampler's Langevin proposal.
4. The rule (`choose`): the small-step plateau is the longest run of the smallest steps that agree
   (each within 2 SE of their inverse-variance weighted mean); the recommendation is the largest step
   such that it and every smaller step lie within 2 SE of the plateau and no chain diverged.
"""

from llc.calibrate.outputs import (
    OUTPUT_FILES,
    csv_text,
    summary_lines,
    table,
    to_json,
    write_outputs,
    yaml_text,
)
from llc.calibrate.results import Calibration, Curve, Point
from llc.calibrate.rule import Choice, choose
from llc.calibrate.run import calibrate, calibrate_config, resolve_jobs, step_control_of
from llc.calibrate.settings import SWEEPS, Settings

__all__ = [
    "OUTPUT_FILES", "SWEEPS", "Calibration", "Choice", "Curve", "Point", "Settings", "calibrate", "calibrate_config",
    "choose", "csv_text", "resolve_jobs", "step_control_of", "summary_lines", "table", "to_json", "write_outputs",
    "yaml_text",
]
