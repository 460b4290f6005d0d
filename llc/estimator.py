"""The LLC estimator and its uncertainty (notes §3), and efficiency metrics (notes §5).

    λ̂ = nβ ( E_p[L_n(w)] - L_n(w*) )

computed from the loss trace of the kept draws of every non-divergent chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llc.errors import LLCError
from llc.records import Basin, Efficiency, Estimate

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
IMPOSSIBLE_SE = 3.0  # a λ̂ beyond [0, d/2] by more than this many SE cannot be a learning coefficient
# Leaving the basin (docs/localization.md): a kept draw with nβ(L_n - L0) below -(BASIN_ALLOWANCE + BASIN_SE·SE).
# At an ERM centre no draw goes lower except through the gradient ERM left behind: |∇L_n(w*)| ≤ erm_tol
# = sqrt(γ)/(nβ), over a displacement of at most ~3/sqrt(γ) along it, lowers nβ·L_n by at most 3.
# The ERM tolerance has a floor (docs/targets.md), so a centre may keep a larger gradient than sqrt(γ)/(nβ):
# `basin_allowance` then scales the 3 with the run's own |∇L_n(w*)|.
BASIN_ALLOWANCE = 3.0
BASIN_SE = 3.0


def basin_allowance(nbeta: float, gamma: float, erm_grad_norm: float | None) -> float:
    """How far below L0 (in nβ·L units) the draws may go at this centre: 3·nβ·|∇L_n(w*)|/sqrt(γ), at least 3.

    A gradient g left at w* lowers nβ·L_n by nβ·|g|·δ along a displacement δ ≲ 3/sqrt(γ) in its direction.
    """
    if not erm_grad_norm or not gamma or not is_finite_number(erm_grad_norm):
        return BASIN_ALLOWANCE
    return max(BASIN_ALLOWANCE, BASIN_ALLOWANCE * nbeta * erm_grad_norm / math.sqrt(gamma))


@dataclass(frozen=True)
class Targets:
    """What `converged` requires (notes §3): the defaults, or a run's `sampler.target_*` keys."""

    rhat: float = RHAT_MAX
    ess_per_chain: float = ESS_PER_CHAIN_MIN
    se: float | None = None  # absolute SE of λ̂
    rel_se: float | None = None  # SE / |λ̂|


def finite_chains(loss: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask (C,) of chains whose every recorded value is finite."""
    ok = np.all(np.isfinite(loss), axis=1)
    if theta is not None:
        ok &= np.all(np.isfinite(theta.reshape(theta.shape[0], -1)), axis=1)
    return ok


def is_finite_number(value: object) -> bool:
    """A real number that is finite (None, NaN and inf are not)."""
    return isinstance(value, int | float) and math.isfinite(value)


def convergence_failures(rhat: float | None, ess_bulk: float | None, n_chains_used: int,
                         rhat_theta: float | None, loss_trace: str, targets: Targets = Targets(),
                         llc_mean: float | None = None, llc_se: float | None = None) -> list[str]:
    """Why a run is not `converged` (empty when it is): the one definition of that flag.

    Converged: the loss R̂ ≤ targets.rhat, bulk ESS ≥ targets.ess_per_chain per finite chain, the SE
    targets (when set) met and, for a minibatch loss trace (whose own noise makes its R̂ ≈ 1 whether or
    not the chains mix), the largest R̂ of the θ projections ≤ targets.rhat too. R̂ needs two chains
    with varying draws. The stop rule of `sampler.stop=converged` (llc.stopping) applies this same test.
    """
    failures = []
    if not is_finite_number(rhat):
        failures.append("loss R̂ undefined" + (" (one finite chain)" if n_chains_used < 2 else ""))
    elif rhat > targets.rhat:
        failures.append(f"loss R̂ {rhat:.3f} > {targets.rhat}")
    need = targets.ess_per_chain * n_chains_used
    if not (is_finite_number(ess_bulk) and ess_bulk >= need):
        ess = f"{ess_bulk:.0f}" if is_finite_number(ess_bulk) else "undefined"
        failures.append(f"ESS {ess} < {need:.0f} ({targets.ess_per_chain:g} per chain)")
    if targets.se is not None and not (is_finite_number(llc_se) and llc_se <= targets.se):
        failures.append(f"SE {llc_se:.3g} > {targets.se:g}")
    if targets.rel_se is not None and not (is_finite_number(llc_se) and is_finite_number(llc_mean)
                                           and llc_se <= targets.rel_se * abs(llc_mean)):
        failures.append(f"relative SE {llc_se / abs(llc_mean) if llc_mean else float('inf'):.3g} > {targets.rel_se:g}")
    if loss_trace == "batch":
        if not is_finite_number(rhat_theta):
            failures.append("R̂(θ) undefined")
        elif rhat_theta > targets.rhat:
            failures.append(f"R̂(θ) {rhat_theta:.3f} > {targets.rhat}")
    return failures


def estimate_failures(est: Estimate, loss_trace: str, targets: Targets = Targets()) -> list[str]:
    """Every reason an estimate is not `converged`: its unmet targets, then its warnings (impossible λ̂)."""
    return convergence_failures(est.rhat, est.ess_bulk, est.n_chains_used or 0, est.rhat_theta, loss_trace,
                                targets, est.llc_mean, est.llc_se) + list(est.warnings or [])


def impossible_reason(llc_mean: float, llc_se: float, n_params: int | None) -> str | None:
    """Why λ̂ cannot be a learning coefficient (0 ≤ λ ≤ d/2), or None when it can.

    A λ̂ above d/2 + 3 SE means the chains sat far above the centre's loss: a step too large for the
    posterior. One below −3 SE means they found lower loss than the centre: w* is not a local minimum.
    """
    se = llc_se if is_finite_number(llc_se) else 0.0
    if n_params is not None and llc_mean > n_params / 2 + IMPOSSIBLE_SE * se:
        return (f"impossible LLC {llc_mean:.4g} > d/2 = {n_params / 2:g} (+{IMPOSSIBLE_SE:g} SE): the step size is "
                "likely too large (reduce sampler.step_size or step_scale)")
    if llc_mean < -IMPOSSIBLE_SE * se:
        return (f"impossible LLC {llc_mean:.4g} < 0 (-{IMPOSSIBLE_SE:g} SE): the chains found lower loss than the "
                "centre, so w* is likely not a local minimum (train longer: target.erm_steps / erm_tol)")
    return None


def basin_check(loss: np.ndarray, valid: np.ndarray, nbeta: float, L0: float, llc_se: float, loss_trace: str,
                dist2: np.ndarray | None = None, gamma: float | None = None,
                n_params: int | None = None, allowance: float = BASIN_ALLOWANCE) -> tuple[Basin, str | None]:
    """Did the chains stay in the basin of w*? The record, and the warning when they did not.

    `dist2` (C, D): ||w - w*||² at the kept draws. Only an exact (full-data) loss trace can show a
    lower basin: a minibatch loss dips below L0 by its own noise.
    """
    gap = threshold = None
    left = False
    if loss_trace == "full":
        gap = float(nbeta * (np.min(loss[valid]) - L0))
        threshold = allowance + BASIN_SE * (llc_se if is_finite_number(llc_se) else 0.0)
        left = gap < -threshold
    dist_rms = radius = ratio = None
    if dist2 is not None:
        dist_rms = float(np.sqrt(np.mean(np.asarray(dist2[valid], dtype=np.float64))))
        if gamma and n_params:
            radius = math.sqrt(n_params / gamma)
            ratio = dist_rms / radius
    record = Basin(dist_rms=dist_rms, localization_radius=radius, dist_ratio=ratio, loss_gap_min=gap,
                   gap_threshold=threshold, left=left)
    if not left:
        return record, None
    return record, (f"chains left the basin of w*: a draw reached nβ(L - L0) = {gap:.3g} < -{threshold:.3g}, "
                    "so λ̂ is not local (raise posterior.gamma, or check that w* is a minimum)")


def running_llc(loss: np.ndarray, nbeta: float, L0: float) -> tuple[np.ndarray, np.ndarray]:
    """Running λ̂ (notes §3): per chain (C, D), nβ·(mean of the loss of draws 1..t − L0), and pooled (D,)."""
    steps = np.arange(1, loss.shape[1] + 1)
    per_chain = nbeta * (np.cumsum(loss, axis=1) / steps - L0)
    pooled = per_chain.mean(axis=0)
    return per_chain, pooled


def estimate(
    loss: np.ndarray,
    nbeta: float,
    L0: float,
    valid: np.ndarray,
    theta: np.ndarray | None = None,
    loss_trace: str = "full",
    targets: Targets = Targets(),
    n_params: int | None = None,
    dist2: np.ndarray | None = None,
    gamma: float | None = None,
    allowance: float = BASIN_ALLOWANCE,
) -> Estimate:
    """λ̂ (pooled and per chain), SE, ESS, R̂ and the `converged` flag from a (C, D) loss trace.

    `theta` (C, D, K): projections of w - w*; their largest split-R̂ is reported as `rhat_theta`.
    With `loss_trace="batch"` (minibatch losses, whose own noise makes the loss R̂ ≈ 1 whether or not
    the chains mix) `converged` also requires rhat_theta ≤ 1.01: the positions must have mixed.
    With `n_params`, a λ̂ outside [0, d/2] by more than 3 SE is flagged (`warnings`) and not `converged`;
    so is a run whose chains left the basin of w* (`basin_check` with `allowance`, see `basin_allowance`;
    `dist2` and `gamma` add the distances).
    """
    import arviz_stats as azs  # slow to import (xarray, scipy); only estimation needs it

    n_chains = loss.shape[0]
    n_bad = int(n_chains - valid.sum())
    if valid.sum() == 0:
        raise LLCError(
            f"all {n_chains} chains diverged (NaN/Inf loss); reduce sampler.step_size (e.g. by 10x) and rerun"
        )
    good = np.asarray(loss[valid], dtype=np.float64)
    per_chain = nbeta * (good.mean(axis=1) - L0)
    llc_mean = float(nbeta * (good.mean() - L0))
    ess_bulk = float(azs.ess(good, method="bulk"))
    ess_tail = float(azs.ess(good, method="tail", prob=(0.05, 0.95)))
    mcse = float(azs.mcse(good, method="mean"))
    rhat = float(azs.rhat(good)) if good.shape[0] > 1 else float("nan")
    llc_se = nbeta * mcse
    rhat_theta = float("nan")
    if theta is not None and good.shape[0] > 1:
        projections = np.asarray(theta[valid], dtype=np.float64)
        rhat_theta = max(float(azs.rhat(projections[..., k])) for k in range(projections.shape[-1]))
    failures = convergence_failures(rhat, ess_bulk, good.shape[0], rhat_theta, loss_trace, targets, llc_mean, llc_se)
    impossible = impossible_reason(llc_mean, llc_se, n_params)
    basin, left = basin_check(loss, valid, nbeta, L0, llc_se, loss_trace, dist2, gamma, n_params, allowance)
    warnings = [w for w in (impossible, left) if w]
    converged = not failures and not warnings
    llc_per_chain = [float(v) if ok else None for v, ok in zip(_expand(per_chain, valid), valid, strict=True)]
    return Estimate(
        llc_mean=llc_mean,
        llc_se=float(llc_se),
        llc_std=float(np.std(per_chain, ddof=1)) if per_chain.size > 1 else 0.0,
        llc_per_chain=llc_per_chain,
        ess_bulk=ess_bulk,
        ess_tail=ess_tail,
        rhat=rhat,
        rhat_theta=rhat_theta,
        converged=converged,
        n_chains_used=int(valid.sum()),
        n_chains_diverged=n_bad,
        warnings=warnings or None,
        basin=basin,
    )


def _expand(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.full(valid.shape, np.nan)
    out[valid] = values
    return out


def efficiency(ess_bulk: float, llc_se: float, sampling_s: float, fde_sampling: float) -> Efficiency:
    """ESS per second / per FDE and work-normalised variance (lower is better)."""
    return Efficiency(
        ess_per_sec=ess_bulk / sampling_s if sampling_s > 0 else float("nan"),
        ess_per_fde=ess_bulk / fde_sampling if fde_sampling > 0 else float("nan"),
        wnv_time=llc_se**2 * sampling_s,
        wnv_fde=llc_se**2 * fde_sampling,
    )
