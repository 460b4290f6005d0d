"""The figure of `llc calibrate`: λ̂ ± SE against the step size, plateau and recommendation marked.

Top: λ̂ ± 1 SE per grid point (log x), the small-step plateau (its mean and ±2 SE of the recommended
point's test drawn as the band the recommendation had to reach), the recommended step (star and
vertical line), the default step (dotted), λ true when known. Points far above the plateau (more than
twice it) are drawn as triangles on the top edge with their value, so the plateau stays readable;
grid points where every chain diverged are crosses on the bottom edge. Bottom: the MALA-style
acceptance estimate and R̂(θ) per grid point.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from llc.calibrate.results import Calibration, Curve
from llc.calibrate.rule import Z

COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")


def calibration_figure(cal: Calibration):
    """A matplotlib Figure (not attached to pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6.8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    twin = bottom.twinx()
    for i, curve in enumerate(cal.curves):
        color = COLORS[i % len(COLORS)]
        label = f"{cal.settings.sweep} = {curve.sweep_value:g}" if cal.settings.sweep else "λ̂ ± SE"
        _draw_curve(top, curve, color, label)
        steps = np.array([p.step_size for p in curve.points])
        accept = np.array([p.acceptance for p in curve.points])
        rhat = np.array([p.rhat_theta for p in curve.points])
        bottom.plot(steps, accept, "o-", color=color, ms=4, label="acceptance" if i == 0 else None)
        twin.plot(steps, rhat, "s--", color=color, ms=3, alpha=0.6, label="R̂(θ)" if i == 0 else None)
        top.axvline(curve.default_step_size, color=color, ls=":", lw=1,
                    label="default step" if i == 0 else None)
    truths = {c.lambda_true for c in cal.curves if c.lambda_true is not None}
    for j, truth in enumerate(sorted(truths)):
        top.axhline(truth, color="k", ls="--", lw=1, label="λ true" if j == 0 else None)
    top.set_xscale("log")
    top.set_ylabel("λ̂ (short runs)")
    top.legend(fontsize=8, loc="upper left")
    bottom.set_xlabel(f"sampler.step_size ({_step_meaning(cal)})")
    bottom.set_ylabel("MALA acceptance")
    bottom.set_ylim(-0.02, 1.02)
    twin.set_ylabel("R̂(θ)")
    twin.set_yscale("log")
    handles = bottom.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    bottom.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower left")
    fig.suptitle(_title(cal), fontsize=11)
    return fig


def _draw_curve(ax, curve: Curve, color: str, label: str) -> None:
    steps = np.array([p.step_size for p in curve.points])
    llc = np.array([p.llc_mean for p in curve.points])
    se = np.array([p.llc_se for p in curve.points])
    finite = np.isfinite(llc)
    ceiling = 2 * curve.plateau_mean if math.isfinite(curve.plateau_mean) and curve.plateau_mean > 0 else np.inf
    shown = finite & (llc <= ceiling)
    ax.errorbar(steps[shown], llc[shown], yerr=np.where(np.isfinite(se), se, 0)[shown], fmt="o-", color=color,
                ms=4, capsize=3, label=label)
    if math.isfinite(curve.plateau_mean):
        plateau = np.array([p.plateau for p in curve.points])
        ax.hlines(curve.plateau_mean, steps[plateau].min(), steps[plateau].max(), color=color, lw=3, alpha=0.5,
                  label="small-step plateau")
    rec = curve.recommendation
    if rec is not None:
        ax.errorbar([rec.step_size], [curve.plateau_mean], yerr=[Z * rec.llc_se], fmt="none", ecolor=color,
                    alpha=0.35, elinewidth=6, label=f"plateau ± {Z:g} SE of the recommended point")
        ax.plot([rec.step_size], [rec.llc_mean], "*", color=color, ms=16, mec="k",
                label=f"recommended {rec.step_size:.4g}")
        ax.axvline(rec.step_size, color=color, lw=1)
    if np.any(shown):
        low, high = np.nanmin((llc - np.nan_to_num(se))[shown]), np.nanmax((llc + np.nan_to_num(se))[shown])
        pad = 0.08 * max(high - low, 1e-9)
        ax.set_ylim(low - pad, high + 3 * pad)
    for step, value in zip(steps[finite & ~shown], llc[finite & ~shown], strict=True):
        ax.plot([step], [1.0], "^", color=color, ms=8, transform=ax.get_xaxis_transform(), clip_on=False)
        ax.annotate(f"{value:.3g}", (step, 0.97), xycoords=("data", "axes fraction"), ha="center", va="top",
                    fontsize=7, color=color)
    for step in steps[~finite]:
        ax.plot([step], [0.0], "x", color="C3", ms=9, mew=2, transform=ax.get_xaxis_transform(), clip_on=False)


def _step_meaning(cal: Calibration) -> str:
    return "SGLD h" if cal.sampler == "sgld" else "time step ε, Langevin step ε/α" if cal.sampler == "sghmc" else "h"


def _title(cal: Calibration) -> str:
    curve = cal.curves[0]
    precond = f", precond {cal.precond}" if cal.precond not in (None, "none") else ""
    s = cal.settings
    return (f"λ̂ against step size — {cal.sampler}{precond}, {cal.preset} preset, d = {curve.n_params}\n"
            f"{s.chains} chains × ({s.burn_in} burn-in + {s.steps} steps) per point; × = all chains diverged, "
            f"▲ = far above the plateau")


def save_calibration_figure(cal: Calibration, path: str | Path) -> None:
    """Write the PNG atomically (llc.analysis.plots.save_figure)."""
    from llc.analysis.plots import save_figure

    save_figure(calibration_figure(cal), Path(path))
