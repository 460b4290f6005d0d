"""The stop rule of `sampler.stop: converged`: sample until the estimator's own diagnostics pass.

After each compiled chunk the driver (llc.samplers.base) hands the kept draws to the rule, which runs
the very estimate the run will report (llc.estimator) and passes when that estimate would be
`converged` against the run's targets: loss R̂ ≤ target_rhat, bulk ESS ≥ target_ess per chain, and the
SE targets when set. The trace it reads is the exact full-data loss for every sampler (SG samplers
evaluate L_n at each kept draw under this rule): a minibatch-loss R̂ is ≈ 1 whether or not the chains
mix, and R̂ of the θ projections need not reach 1 in a singular model while λ̂ does, so neither decides.
R̂(θ) is still reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from llc.errors import LLCError
from llc.estimator import BASIN_ALLOWANCE, Targets, estimate, estimate_failures, finite_chains

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.samplers.base import StopCheck, StopRule


def targets_of(cfg: SamplerConfig) -> Targets:
    """The convergence targets a run is held to: its `target_*` keys under stop=converged, else the defaults."""
    if cfg.stop != "converged":
        return Targets()
    return Targets(rhat=cfg.target_rhat, ess_per_chain=cfg.target_ess, se=cfg.target_se, rel_se=cfg.target_rel_se)


def stop_rule(cfg: SamplerConfig, nbeta: float, L0: float, loss_trace: str,
              allowance: float = BASIN_ALLOWANCE) -> StopRule:
    """`rule(loss, theta) -> StopCheck` for the driver; `done` when the run's estimate would be converged.

    `allowance`: the basin check's (llc.estimator.basin_allowance), as the run's final estimate uses it."""
    from llc.samplers.base import StopCheck

    targets = targets_of(cfg)

    def rule(loss: np.ndarray, theta: np.ndarray) -> StopCheck:
        valid = finite_chains(loss, theta)
        if not valid.any():
            return StopCheck(done=True, note="every chain diverged", diagnostics={"reason": "diverged"})
        try:
            est = estimate(loss, nbeta, L0, valid, theta, loss_trace, targets, allowance=allowance)
        except LLCError as exc:
            return StopCheck(done=True, note=str(exc), diagnostics={"reason": "diverged"})
        failures = estimate_failures(est, loss_trace, targets)
        if est.basin is not None and est.basin.left:  # a lower basin stays found: more draws cannot make λ̂ local
            return StopCheck(done=True, note=failures[-1], diagnostics={"reason": "left_basin", "failures": failures})
        return StopCheck(done=not failures, note=progress_note(est.rhat, est.ess_bulk / est.n_chains_used,
                                                               est.llc_mean, est.llc_se, targets),
                         diagnostics={"llc_mean": est.llc_mean, "llc_se": est.llc_se, "rhat": est.rhat,
                                      "ess_bulk": est.ess_bulk, "failures": failures})

    return rule


def progress_note(rhat: float, ess_per_chain: float, llc_mean: float, llc_se: float, targets: Targets) -> str:
    """`λ̂ 21.1 ± 0.4 · R̂ 1.023/1.01 · ESS 87/100 · SE 0.41/0.5` for the progress bar."""
    parts = [f"λ̂ {llc_mean:.4g} ± {llc_se:.2g}", f"R̂ {rhat:.3f}/{targets.rhat:g}",
             f"ESS/chain {ess_per_chain:.0f}/{targets.ess_per_chain:g}"]
    if targets.se is not None:
        parts.append(f"SE {llc_se:.2g}/{targets.se:g}")
    if targets.rel_se is not None:
        parts.append(f"rel SE {llc_se / abs(llc_mean) if llc_mean else float('inf'):.2g}/{targets.rel_se:g}")
    return " · ".join(parts)
