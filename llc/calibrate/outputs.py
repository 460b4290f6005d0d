"""The files and lines `llc calibrate` writes: table, CSV, JSON, the YAML config and the figure."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llc.calibrate.grid import RELAX_TIMES
from llc.calibrate.results import Calibration, Curve
from llc.calibrate.rule import Z

CSV_FILE, JSON_FILE, FIGURE_FILE, YAML_FILE = "calibrate.csv", "calibrate.json", "calibrate.png", "calibrate.yaml"
OUTPUT_FILES = (CSV_FILE, JSON_FILE, FIGURE_FILE, YAML_FILE)

COLUMNS = ["step_size", "langevin_step", "factor", "llc_mean", "llc_se", "rhat", "rhat_theta", "ess_bulk",
           "diverged", "acceptance", "plateau", "recommended"]


def rows(cal: Calibration) -> list[dict[str, Any]]:
    """One dict per grid point (and swept value), in table order."""
    out = []
    for curve in cal.curves:
        for p in curve.points:
            row = {cal.settings.sweep: curve.sweep_value} if cal.settings.sweep else {}
            row.update({k: getattr(p, k) for k in COLUMNS})
            out.append(row)
    return out


def csv_text(cal: Calibration) -> str:
    buf = io.StringIO()
    columns = ([cal.settings.sweep] if cal.settings.sweep else []) + COLUMNS
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows(cal):
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return v


def _fmt(v: float, spec: str) -> str:
    return format(v, spec) if math.isfinite(v) else "-"


def table(cal: Calibration) -> str:
    """The table printed by `llc calibrate`: one line per grid point, plateau and recommendation marked."""
    sweep = cal.settings.sweep
    head = ([f"{sweep:>8}"] if sweep else []) + [f"{'step_size':>10}", f"{'h/h0':>9}", f"{'LLC ± SE':>16}",
                                                  f"{'R-hat(θ)':>8}", f"{'diverged':>8}", f"{'accept':>6}", ""]
    lines = ["  ".join(head).rstrip()]
    for curve in cal.curves:
        for p in curve.points:
            mark = " ".join(m for m, on in (("plateau", p.plateau), ("<= recommended", p.recommended)) if on)
            llc = f"{_fmt(p.llc_mean, '.2f')} ± {_fmt(p.llc_se, '.2f')}" if math.isfinite(p.llc_mean) else "-"
            cells = ([f"{curve.sweep_value:>8.4g}"] if sweep else []) + [
                f"{p.step_size:>10.4g}", f"{p.factor:>9.3g}", f"{llc:>16}", f"{_fmt(p.rhat_theta, '.3f'):>8}",
                f"{p.diverged:>8.0%}", f"{_fmt(p.acceptance, '.3f'):>6}", mark]
            lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def summary_lines(cal: Calibration) -> list[str]:
    """Plateau and recommendation per curve, and the `--set` line (or a warning) for each."""
    lines = []
    for curve in cal.curves:
        where = f"{cal.settings.sweep} = {curve.sweep_value:g}: " if cal.settings.sweep else ""
        rec = curve.recommendation
        plateau = (f"small-step plateau λ̂ = {curve.plateau_mean:.3f} ± {curve.plateau_se:.3f}"
                   if math.isfinite(curve.plateau_mean) else "no small-step plateau")
        if rec is None:
            lines.append(f"warning: {where}no step qualifies ({plateau}; the smallest steps diverged or gave no "
                         "estimate): widen the grid downwards (--min-factor) or lengthen the runs (--steps)")
            continue
        truth = f", λ true {curve.lambda_true:.4g}" if curve.lambda_true is not None else ""
        lines.append(f"{where}{plateau}{truth}; recommended step {rec.step_size:.4g} "
                     f"({rec.factor:.3g}x the default {curve.default_step_size:.4g}): λ̂ = {rec.llc_mean:.3f} ± "
                     f"{rec.llc_se:.3f}")
        lines.append("--set sampler.step_size=" + _number(rec.step_size)
                     + (f" --set {cal.sweep_key}={_number(_sweep_value(cal, curve))}" if cal.settings.sweep else ""))
        if rec is curve.points[-1]:
            lines.append(f"note: {where}the largest step of the grid qualifies; a larger one may too (--max-factor)")
        if curve.gamma > 0 and curve.run_steps < RELAX_TIMES / (rec.langevin_step * curve.gamma):
            lines.append(f"note: {where}at this step the gamma-confined directions relax in up to ~1/(h gamma) = "
                         f"{1 / (rec.langevin_step * curve.gamma):.0f} steps; sampler.warmup + steps = {curve.run_steps} "
                         "is shorter than two of those, so a run of that length reads low (R-hat(θ) > 1.01): "
                         "raise sampler.steps / warmup or use sampler.stop=converged")
        for note in curve.notes:
            lines.append(f"note: {where}{note}")
    return lines


def _number(value: float) -> str:
    return f"{value:.6g}"


def _sweep_value(cal: Calibration, curve: Curve) -> float:
    """The config value (posterior.beta0 or gamma) of a curve's swept nβ or γ."""
    return curve.beta0 if cal.settings.sweep == "nbeta" else curve.gamma


def yaml_text(cal: Calibration, curve: Curve) -> str | None:
    """A config file for `llc run --config`: the user's settings with the recommended step size."""
    import yaml

    rec = curve.recommendation
    if rec is None:
        return None
    keys = {k: v for k, v in cal.user_keys.items() if k not in ("sampler.step_size", "sampler.step_scale")}
    keys["sampler.name"] = cal.sampler
    keys["sampler.step_size"] = float(_number(rec.step_size))
    if cal.settings.sweep:
        keys[cal.sweep_key] = float(_number(_sweep_value(cal, curve)))
    nested: dict[str, Any] = {"preset": cal.preset}
    for key, value in keys.items():
        section, dot, sub = key.partition(".")
        if dot:
            nested.setdefault(section, {})[sub] = value
        else:
            nested[key] = value
    where = f" at {cal.settings.sweep} = {curve.sweep_value:g}" if cal.settings.sweep else ""
    header = (f"# llc calibrate: {cal.sampler} step size{where} (λ̂ {rec.llc_mean:.3f} ± {rec.llc_se:.3f}; "
              f"plateau {curve.plateau_mean:.3f} ± {curve.plateau_se:.3f}). Use: llc run --config THIS_FILE\n")
    return header + yaml.safe_dump(nested, sort_keys=False)


def yaml_name(cal: Calibration, curve: Curve) -> str:
    if not cal.settings.sweep:
        return YAML_FILE
    return f"calibrate_{cal.settings.sweep}_{curve.sweep_value:g}.yaml"


def to_json(cal: Calibration) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    curves = []
    for curve in cal.curves:
        data = asdict(curve)
        rec = curve.recommendation
        data["recommended_step_size"] = float(_number(rec.step_size)) if rec else None
        curves.append(data)
    return clean({"sampler": cal.sampler, "precond": cal.precond, "preset": cal.preset,
                  "settings": asdict(cal.settings), "rule": f"largest step within {Z:g} SE of the small-step "
                  "plateau, no diverged chain", "seconds": cal.seconds, "curves": curves})


def write_outputs(cal: Calibration, out: str | Path) -> list[Path]:
    """Write the CSV, JSON, figure and YAML file(s) into `out`, each atomically; returns the paths written.

    A YAML file is written per curve with a recommendation (calibrate.yaml without --sweep); one of ours
    left from an earlier calibration in `out` that this one does not write is removed, so a stale
    recommendation is never left next to a new table.
    """
    from llc.calibrate.figure import save_calibration_figure
    from llc.runs.layout import write_json_atomic, write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / CSV_FILE, out / JSON_FILE, out / FIGURE_FILE]
    write_text_atomic(out / CSV_FILE, csv_text(cal))
    write_json_atomic(out / JSON_FILE, to_json(cal))
    save_calibration_figure(cal, out / FIGURE_FILE)
    yamls = []
    for curve in cal.curves:
        text = yaml_text(cal, curve)
        if text is not None:
            yamls.append(out / yaml_name(cal, curve))
            write_text_atomic(yamls[-1], text)
    for old in [out / YAML_FILE, *out.glob("calibrate_*.yaml")]:
        if old not in yamls and old.is_file():
            old.unlink()
    return written + yamls
