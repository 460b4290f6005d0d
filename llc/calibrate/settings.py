"""What `llc calibrate` may be asked: the grid, the short runs, an optional nβ or γ sweep."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llc.config.schema import MAX_CHAINS, MAX_STEPS
from llc.errors import ConfigError, shown

MAX_POINTS = 1000
SWEEPS = {"nbeta": "posterior.beta0", "gamma": "posterior.gamma"}  # --sweep name -> the config key it sets


@dataclass(frozen=True)
class Settings:
    """The calibration grid and the length of its short runs (CLI options of the same names)."""

    points: int = 10
    min_factor: float = 0.125
    max_factor: float = 64.0
    steps: int = 2000  # measured steps per grid point and chain
    burn_in: int = 500  # steps per grid point at its own step before measuring
    thinning: int = 50  # steps between recorded draws (full-data loss, θ, acceptance)
    warmup: int | None = None  # the sampler's own warm-up (h0, metric) length; default: sampler.warmup
    chains: int = 32  # at small steps each chain barely moves, so the number of chains sets the SE
    relax_steps: int | None = None  # default: 2 relaxation times of the softest direction, capped
    max_relax_steps: int = 200_000
    cool_steps: int = 2000  # geometric cool-down from the relaxation step to the smallest grid step
    group: int | None = None  # grid points per compiled call (default: all; lower it when memory is short)
    sweep: str | None = None  # nbeta | gamma
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        checks = [
            (2 <= self.points <= MAX_POINTS, "--points", f"{self.points}; allowed: an integer in 2..{MAX_POINTS}"),
            (0 < self.min_factor < self.max_factor, "--min-factor/--max-factor",
             f"{self.min_factor:g}, {self.max_factor:g}; allowed: 0 < min-factor < max-factor"),
            (1 <= self.steps <= MAX_STEPS, "--steps", f"{self.steps}; allowed: an integer in 1..{MAX_STEPS}"),
            (0 <= self.burn_in <= MAX_STEPS, "--burn-in", f"{self.burn_in}; allowed: an integer in 0..{MAX_STEPS}"),
            (1 <= self.thinning <= MAX_STEPS, "--thinning", f"{self.thinning}; allowed: an integer in 1..{MAX_STEPS}"),
            (self.steps // max(self.thinning, 1) >= 4, "--steps/--thinning",
             f"{self.steps}/{self.thinning}; at least 4 recorded draws are needed for SE and R-hat"),
            (self.warmup is None or 0 <= self.warmup <= MAX_STEPS, "--warmup",
             f"{self.warmup}; allowed: an integer in 0..{MAX_STEPS}"),
            (2 <= self.chains <= MAX_CHAINS, "--chains", f"{self.chains}; allowed: an integer in 2..{MAX_CHAINS}"),
            (self.relax_steps is None or 0 <= self.relax_steps <= MAX_STEPS, "--relax-steps",
             f"{self.relax_steps}; allowed: an integer in 0..{MAX_STEPS}"),
            (0 <= self.cool_steps <= MAX_STEPS, "--cool-steps", f"{self.cool_steps}; allowed: an integer in 0..{MAX_STEPS}"),
            (self.group is None or self.group >= 1, "--group", f"{self.group}; allowed: an integer >= 1"),
        ]
        for ok, option, detail in checks:
            if not ok:
                raise ConfigError(f"{option}: {detail}")
        if self.sweep is not None and self.sweep not in SWEEPS:
            raise ConfigError(f"--sweep: {shown(self.sweep)}; allowed: {', '.join(SWEEPS)}")
        if self.sweep is not None and not self.values:
            raise ConfigError(f"--values: --sweep {self.sweep} needs values, e.g. --values 100,300,1000")
        if self.sweep is None and self.values:
            raise ConfigError("--values: given without --sweep; allowed: --sweep nbeta|gamma --values ...")
        bad = [v for v in self.values if not (math.isfinite(v) and (v > 0 if self.sweep == "nbeta" else v >= 0))]
        if bad:
            allowed = "> 0" if self.sweep == "nbeta" else ">= 0"
            raise ConfigError(f"--values: {shown(bad[0])} is not a valid {self.sweep}; allowed: finite numbers {allowed}")

    def factors(self) -> np.ndarray:
        """Grid factors relative to the default step, log-spaced, smallest first."""
        # 12 significant digits: powers of two stay exact in the table (geomspace leaves 0.49999999999999994)
        return np.array([float(f"{f:.12g}") for f in np.geomspace(self.min_factor, self.max_factor, self.points)])
