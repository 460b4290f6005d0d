"""λ̂ over training: one job per checkpoint of a training run, identical sampler settings for all.

Checkpoint format (docs/trajectory.md): a directory of `step_<N>.npz` files, one per training step N,
each holding the leaves of the params pytree in `jax.tree_util.tree_leaves` order, saved as
`np.savez(path, *leaves)` (arrays `arr_0`, `arr_1`, ...); `save_checkpoint` writes one. The model,
data and loss come from a custom target's entry (`target.kind: custom`), whose params fix the tree
structure; each checkpoint's leaves replace them (`target.checkpoint`).

    jobs = trajectory_jobs("ckpts/", overrides=["target.kind=custom", "target.entry=model.py:make"])
    result = run_trajectory(jobs, "runs", out="ckpts/", workers=2)

Jobs are ordinary sweep jobs (`llc.sweeps.run_study_sweep`): cached per checkpoint under their run
IDs (which hash the checkpoint's content), so a rerun after a kill computes only the missing ones.
The outputs are one CSV (`step` then the sweep CSV's columns; `L0`, the full-data loss at the
checkpoint, is its training loss) and a figure of λ̂ ± SE and the training loss against step.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llc.analysis.aggregate import render_csv, sweep_rows
from llc.errors import ConfigError
from llc.runs.layout import atomic_path, write_text_atomic

CHECKPOINT_RE = re.compile(r"^step_(\d{1,12})\.npz$")
CSV_NAME = "llc_trajectory.csv"
FIGURE_NAME = "llc_trajectory.png"


def checkpoint_name(step: int) -> str:
    return f"step_{int(step)}.npz"


def save_checkpoint(folder: str | Path, step: int, params: Any) -> Path:
    """Write `params`' leaves as FOLDER/step_<step>.npz (atomically: a checkpoint is complete or absent)."""
    import jax
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.npz"
    try:
        np.savez(tmp, *[np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(params)])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: str | Path, steps: Sequence[int] | None = None) -> list[tuple[int, Path]]:
    """(step, path) of every FOLDER/step_<N>.npz, by step; `steps` keeps only those (each must exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"checkpoints: {folder} is not a directory")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_file())
    if not found:
        raise ConfigError(f"checkpoints: no step_<N>.npz files in {folder}")
    if steps is not None:
        have = dict(found)
        missing = sorted(set(steps) - set(have))
        if missing:
            raise ConfigError(f"--steps: no checkpoint for step(s) {', '.join(map(str, missing))} in {folder}; "
                              f"steps found: {', '.join(str(s) for s, _ in found)}")
        found = [(s, have[s]) for s in sorted(set(steps))]
    return found


def trajectory_jobs(folder: str | Path, *, overrides: Sequence[str] | dict[str, Any] = (), preset: str | None = None,
                    config_file: str | Path | None = None, sampler: str | None = None,
                    steps: Sequence[int] | None = None) -> list:
    """One job per checkpoint: the same resolved settings, `target.checkpoint` set to each file."""
    from llc.config import resolve_config
    from llc.runs import family_id, run_id
    from llc.study import Job

    jobs = []
    for step, path in list_checkpoints(folder, steps):
        where = str(path.resolve())
        sets = ({**overrides, "target.checkpoint": where} if isinstance(overrides, dict)
                else [*overrides, f"target.checkpoint={where}"])
        cfg = resolve_config(preset=preset, overrides=sets, config_file=config_file, sampler=sampler)
        if cfg.target.kind != "custom":
            raise ConfigError("target.kind: llc trajectory needs a custom target (target.kind=custom with target.entry)")
        jobs.append(Job(key=f"step_{step}/{cfg.sampler.name}/seed{cfg.seed}", problem=f"step_{step}",
                        sampler=cfg.sampler.name, seed=cfg.seed, config=cfg, run_id=run_id(cfg),
                        family_id=family_id(cfg)))
    return jobs


@dataclass(frozen=True)
class TrajectoryResult:
    sweep: Any  # llc.sweeps.SweepResult
    csv_path: Path
    figure_path: Path | None
    rows: list[dict[str, Any]]


def step_of(job_or_row: Any) -> int:
    problem = job_or_row["problem"] if isinstance(job_or_row, dict) else job_or_row.problem
    return int(problem.removeprefix("step_"))


def trajectory_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep CSV's rows, each with its training `step` first, ordered by step."""
    rows = [{"step": step_of(row), **row} for row in sweep_rows(manifest)]
    return sorted(rows, key=lambda r: r["step"])


def render_trajectory_csv(rows: Sequence[dict[str, Any]]) -> str:
    return render_csv(rows, leading=["step"])


def plot_trajectory(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "", symlog: bool = False,
                    logx: bool = False) -> Path | None:
    """λ̂ ± SE against step (one series per sampler) above the training loss L_n(w_t); None if no run finished.

    `rows` as `trajectory_rows` gives them (or read back from the CSV: numbers may be strings). `symlog`
    draws λ̂ on a symmetric log scale: early checkpoints, far from a critical point, can have large
    negative λ̂ that would flatten the rest."""
    rows = [_numeric(r) for r in rows]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("llc_mean") is not None]
    if not done:
        return None
    fig, (ax_llc, ax_loss) = plt.subplots(2, 1, sharex=True, figsize=(7, 5.5), height_ratios=[3, 2])
    by_sampler: dict[str, list[dict[str, Any]]] = {}
    for r in done:
        by_sampler.setdefault(str(r["sampler"]), []).append(r)
    for name, items in by_sampler.items():
        items = sorted(items, key=lambda r: r["step"])
        ax_llc.errorbar([r["step"] for r in items], [r["llc_mean"] for r in items],
                        yerr=[r.get("llc_se") or 0.0 for r in items], marker="o", ms=3, capsize=3, label=name)
    losses = sorted({(r["step"], r["L0"]) for r in done if r.get("L0") is not None})
    ax_loss.plot([s for s, _ in losses], [v for _, v in losses], color="k", marker=".")
    if symlog:
        from matplotlib.ticker import FixedLocator, FuncFormatter

        ax_llc.set_yscale("symlog", linthresh=5.0, linscale=2.0)
        low, high = ax_llc.get_ylim()
        ticks = [v for v in (-1000, -300, -100, -30, -10, -5, 0, 1, 2, 3, 4, 5, 10, 30, 100, 300, 1000) if low <= v <= high]
        ax_llc.yaxis.set_major_locator(FixedLocator(ticks))
        ax_llc.yaxis.set_minor_locator(FixedLocator([]))
        ax_llc.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if logx:
        ax_loss.set_xscale("symlog", linthresh=10.0)
    all_steps = [r["step"] for r in done]
    ax_loss.set_xlim(min(all_steps), max(all_steps) * 1.2 + 1)
    ax_llc.axhline(0.0, color="0.6", lw=0.8)
    ax_llc.set_ylabel("λ̂ (± 1 SE)")
    ax_loss.set_ylabel("training loss L_n(w_t)")
    ax_loss.set_xlabel("training step")
    if all(v > 0 for _, v in losses):
        ax_loss.set_yscale("log")
    ax_llc.legend(title="sampler")
    ax_llc.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    if title:
        ax_llc.set_title(title)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def _numeric(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["step"] = int(out["step"])
    for key in ("llc_mean", "llc_se", "L0"):
        value = out.get(key)
        out[key] = float(value) if value not in (None, "") else None
    return out


def run_trajectory(jobs: Sequence[Any], runs_root: str | Path, out: str | Path, backend: str = "local", *,
                   force: bool = False, echo=None, **options: Any) -> TrajectoryResult:
    """Run (or find cached) every checkpoint's job as a sweep; write the CSV and figure under `out`."""
    from llc.executors import Manifest
    from llc.study import sweep_id
    from llc.sweeps import run_study_sweep

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = run_study_sweep(jobs, runs_root, backend, force=force, csv_path=out / "llc_trajectory_runs.csv",
                             source="llc trajectory", echo=echo, **options)
    manifest = Manifest(runs_root, sweep_id(jobs)).read() or {}
    rows = trajectory_rows(manifest)
    csv_path = out / CSV_NAME
    write_text_atomic(csv_path, render_trajectory_csv(rows))
    figure = plot_trajectory(rows, out / FIGURE_NAME)
    return TrajectoryResult(sweep=result, csv_path=csv_path, figure_path=figure, rows=rows)
