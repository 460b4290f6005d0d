"""The recommendation rule of `llc calibrate` (docs/calibrate.md): pure functions of the grid's numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z = 2.0  # "within 2 SE"


@dataclass(frozen=True)
class Choice:
    plateau: tuple[int, ...]
    mean: float
    se: float
    recommended: int | None


def choose(llc: Sequence[float], se: Sequence[float], diverged: Sequence[float], z: float = Z) -> Choice:
    """Plateau and recommendation from grid points given smallest step first (docs/calibrate.md).

    "Within 2 SE" means |λ̂_i - plateau| <= 2·SE_i with the point's own SE, the error bar of the table and
    the figure. Only the run of smallest steps with no diverged chain and a finite λ̂ and SE > 0 counts.
    The plateau grows from the smallest step: the next step joins while its λ̂ lies within 2 SE of the
    inverse-variance weighted mean of the steps already in it. The recommendation is the largest step up
    to which every point of the run lies within 2 SE of the plateau's mean: a larger step that comes back
    within 2 SE after one that does not is not taken.
    """
    llc, se, div = (np.asarray(a, dtype=np.float64) for a in (llc, se, diverged))
    run = 0
    while run < len(llc) and div[run] == 0 and np.isfinite(llc[run]) and np.isfinite(se[run]) and se[run] > 0:
        run += 1
    if run == 0:
        return Choice((), float("nan"), float("nan"), None)

    def weighted_mean(size: int) -> float:
        return float(np.sum(llc[:size] / se[:size] ** 2) / np.sum(1.0 / se[:size] ** 2))

    size = 1
    while size < run and abs(llc[size] - weighted_mean(size)) <= z * se[size]:
        size += 1
    mean = weighted_mean(size)
    ok = np.abs(llc[:run] - mean) <= z * se[:run]
    last = run - 1 if ok.all() else int(np.argmin(ok)) - 1
    return Choice(tuple(range(size)), mean, float("nan"), last if last >= 0 else None)


def plateau_stats(loss: np.ndarray, indices: np.ndarray, se: np.ndarray, nbeta: float, L0: float) -> tuple[float, float]:
    """Inverse-variance weighted mean of the λ̂ of grid points `indices` and its SE.

    The SE is nβ·MCSE of the weighted loss trace Σ w_j L_j (chain by chain, draw by draw): the grid points
    share their chains' starting states and random numbers, so averaging them gains less than the
    independent-points formula 1/sqrt(Σ 1/SE_j²) would claim. `loss` is (G, C, D) with finite values
    at `indices` (the plateau never includes a point with a diverged chain).
    """
    import arviz_stats as azs

    weights = 1.0 / se[indices] ** 2
    weights = weights / weights.sum()
    trace = np.tensordot(weights, np.asarray(loss[indices], dtype=np.float64), axes=1)  # (C, D)
    return float(nbeta * (trace.mean() - L0)), float(nbeta * azs.mcse(trace, method="mean"))
