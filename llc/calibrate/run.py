"""`calibrate(...)`: resolve the configuration(s), run each grid, apply the rule."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llc.calibrate.grid import ProgressFn, run_grid
from llc.calibrate.results import Calibration, Curve, Point
from llc.calibrate.rule import choose, plateau_stats
from llc.calibrate.settings import SWEEPS, Settings
from llc.errors import ConfigError, LLCError

if TYPE_CHECKING:
    from llc.config import Config
    from llc.posterior import Posterior
    from llc.samplers.spec import StepControl


def step_control_of(cfg: Config) -> StepControl:
    """The sampler's step-size handles, or exit 2 for a sampler with no step size to calibrate."""
    from llc.samplers.registry import sampler_specs

    specs = sampler_specs()
    control = specs[cfg.sampler.name].step_control
    if control is None:
        able = ", ".join(name for name, spec in specs.items() if spec.step_control is not None)
        raise ConfigError(f"sampler.name: {cfg.sampler.name} has no step size to calibrate (it adapts its own); "
                          f"llc calibrate applies to: {able}")
    return control


def user_keys(overrides: Sequence[str] | dict[str, Any], config_file: str | Path | None,
              sampler: str | None) -> tuple[dict[str, Any], str | None]:
    """The user's dotted keys (config file, then --set, then --sampler) and the file's `preset`."""
    from llc.config.reading import flatten, load_config_file, parse_override

    data = load_config_file(config_file) if config_file is not None else {}
    file_preset = data.pop("preset", None)
    keys = flatten(data)
    keys.update(flatten(overrides) if isinstance(overrides, dict) else dict(parse_override(o) for o in overrides))
    if sampler is not None:
        keys["sampler.name"] = sampler
    return keys, file_preset


def resolve_jobs(preset: str | None, overrides: Sequence[str] | dict[str, Any], config_file: str | Path | None,
                 sampler: str | None, settings: Settings) -> list[tuple[float | None, Config]]:
    """(sweep value, config) per posterior to calibrate: the configured one, or one per swept value."""
    from llc.config import resolve_config

    base = resolve_config(preset=preset, overrides=overrides, config_file=config_file, sampler=sampler)
    step_control_of(base)
    if settings.sweep is None:
        return [(None, base)]
    if settings.sweep == "gamma" and base.posterior.prior_radius is not None:
        raise ConfigError("--sweep gamma: posterior.prior_radius is set and would replace every swept gamma; "
                          "unset it to sweep gamma")
    jobs = []
    for value in settings.values:
        setting = _sweep_setting(settings.sweep, value, base.data.n)
        jobs.append((value, resolve_config(preset=preset, overrides=_as_items(overrides, setting),
                                           config_file=config_file, sampler=sampler)))
    return jobs


def _sweep_setting(sweep: str, value: float, n: int) -> dict[str, float]:
    """The config key and value of one swept point: nβ -> posterior.beta0 = nβ·log n / n."""
    if sweep == "nbeta":
        return {SWEEPS[sweep]: value * math.log(n) / n}
    return {SWEEPS[sweep]: float(value)}


def _as_items(overrides: Sequence[str] | dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    from llc.config.reading import flatten, parse_override

    keys = flatten(overrides) if isinstance(overrides, dict) else dict(parse_override(o) for o in overrides)
    return {**keys, **extra}


def calibrate(
    preset: str | None = None,
    overrides: Sequence[str] | dict[str, Any] = (),
    config_file: str | Path | None = None,
    sampler: str | None = None,
    settings: Settings = Settings(),
    runs_root: str | Path | None = None,
    on_progress: ProgressFn | None = None,
) -> Calibration:
    """Calibrate the step size of the configured SG sampler (see the module docstring).

    Raises ConfigError (exit 2) for bad input and for a sampler with no step size to calibrate, before
    any work. `runs_root` caches the target as `llc run` does (RUNS/_targets/).
    """
    t0 = time.perf_counter()
    jobs = resolve_jobs(preset, overrides, config_file, sampler, settings)
    keys, file_preset = user_keys(overrides, config_file, sampler)
    curves = [calibrate_config(cfg, settings, runs_root, on_progress, sweep_value=value) for value, cfg in jobs]
    cfg = jobs[0][1]
    return Calibration(sampler=cfg.sampler.name, precond=getattr(cfg.sampler, "precond", None),
                       preset=preset or file_preset or "quick", settings=settings, curves=tuple(curves),
                       user_keys=keys, seconds=time.perf_counter() - t0)


def calibrate_config(cfg: Config, settings: Settings = Settings(), runs_root: str | Path | None = None,
                     on_progress: ProgressFn | None = None, sweep_value: float | None = None) -> Curve:
    """The grid for one resolved configuration: build the target, warm up, run the grid, apply the rule."""
    from llc.posterior import build_posterior
    from llc.samplers import build_sampler
    from llc.targets import build_target, problem_keys

    t0 = time.perf_counter()
    control = step_control_of(cfg)
    report = on_progress or (lambda *args, **kwargs: None)
    report("target", 0, 1)
    target = build_target(cfg, runs_root)
    posterior = build_posterior(cfg, target)
    report("target", 1, 1)
    sampler = build_sampler(posterior, cfg.sampler)
    grid = run_grid(sampler, control, posterior, cfg, settings, problem_keys(cfg.seed)["sampler"], report)
    points = _points(grid, posterior, target.n_params)
    ses = np.array([p.llc_se for p in points])
    choice = choose([p.llc_mean for p in points], ses, [p.diverged for p in points])
    if choice.plateau:
        choice = replace(choice, se=plateau_stats(grid["loss"], np.array(choice.plateau), ses, posterior.nbeta,
                                                  posterior.L0)[1])
    points = [replace(p, plateau=i in choice.plateau, recommended=i == choice.recommended)
              for i, p in enumerate(points)]
    return Curve(
        sweep_value=sweep_value, nbeta=posterior.nbeta, gamma=posterior.gamma, beta0=cfg.posterior.beta0,
        lambda_true=posterior.lambda_true,
        n_params=target.n_params, default_step_size=grid["default_step_size"],
        default_langevin_step=grid["default_langevin_step"], relax_steps=grid["relax_steps"],
        run_steps=cfg.sampler.warmup + cfg.sampler.steps, points=tuple(points),
        plateau_mean=choice.mean, plateau_se=choice.se, recommended=choice.recommended,
        seconds=time.perf_counter() - t0, notes=tuple(grid["notes"]),
    )


def _points(grid: dict[str, Any], posterior: Posterior, n_params: int) -> list[Point]:
    from llc.estimator import estimate, finite_chains

    points = []
    for g, size in enumerate(grid["sizes"]):
        loss, theta = grid["loss"][g], grid["theta"][g]
        valid = finite_chains(loss, theta) & np.all(grid["finite"][g], axis=1)
        nan = float("nan")
        stats = dict(llc_mean=nan, llc_se=nan, rhat=nan, rhat_theta=nan, ess_bulk=nan, acceptance=nan)
        if valid.any():
            try:
                est = estimate(loss, posterior.nbeta, posterior.L0, valid, theta, "full", n_params=n_params)
            except LLCError:
                est = None
            if est is not None:
                stats.update(llc_mean=est.llc_mean, llc_se=est.llc_se, rhat=est.rhat, rhat_theta=est.rhat_theta,
                             ess_bulk=est.ess_bulk)
            stats["acceptance"] = float(np.mean(grid["accept"][g][valid]))
        points.append(Point(factor=float(grid["factors"][g]), step_size=float(size),
                            langevin_step=float(grid["langevin"][g]), diverged=float(1.0 - valid.mean()), **stats))
    return points
