"""What `llc calibrate` measured: a point per grid step, a curve per posterior, the whole calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llc.calibrate.settings import SWEEPS, Settings


@dataclass(frozen=True)
class Point:
    """One grid point: its step and what the short runs measured there (NaN where undefined)."""

    factor: float  # step / default step (Langevin steps)
    step_size: float  # the value of sampler.step_size at this point
    langevin_step: float  # h of the Langevin step taken (SGLD: step_size; SGHMC: ε/α)
    llc_mean: float
    llc_se: float
    rhat: float
    rhat_theta: float
    ess_bulk: float
    diverged: float  # fraction of chains with a non-finite loss or position
    acceptance: float  # mean MALA-style acceptance over draws and finite chains
    plateau: bool = False
    recommended: bool = False


@dataclass(frozen=True)
class Curve:
    """The grid for one posterior (one value of the swept nβ or γ, or the configured posterior)."""

    sweep_value: float | None
    nbeta: float
    gamma: float
    beta0: float
    lambda_true: float | None
    n_params: int
    default_step_size: float  # sampler.step_size of the curvature-based default (mean over chains)
    default_langevin_step: float
    relax_steps: int
    run_steps: int  # sampler.warmup + sampler.steps of the configured run (for the relaxation note)
    points: tuple[Point, ...]
    plateau_mean: float
    plateau_se: float
    recommended: int | None  # index into points
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def recommendation(self) -> Point | None:
        return None if self.recommended is None else self.points[self.recommended]


@dataclass(frozen=True)
class Calibration:
    sampler: str
    precond: str | None
    preset: str
    settings: Settings
    curves: tuple[Curve, ...]
    user_keys: dict[str, Any] = field(default_factory=dict)  # the user's dotted keys, for the YAML
    seconds: float = 0.0

    @property
    def sweep_key(self) -> str | None:
        return SWEEPS[self.settings.sweep] if self.settings.sweep else None
