"""Keys shared by the stochastic-gradient samplers (sgld, sghmc): step scaling, minibatches, loss trace."""

from __future__ import annotations

from dataclasses import dataclass

from llc.fields import opt

LOSS_TRACES = ("batch", "full")
PRECONDS = ("none", "rmsprop", "adam")

# Both SG samplers sample until converged (docs/convergence.md). Quick: the RMSProp metric (frozen after
# warm-up) mixes λ̂ about 10x faster per step than plain SGLD on the quick MLP (ESS 424 vs 42 at 232 000
# steps), so the quick preset uses it; thinning 64 keeps the exact-loss evaluations (1 FDE per kept draw)
# near a third of the work while the loss autocorrelation time is ~2000 steps.
SG_QUICK = {"precond": "rmsprop", "steps": 16_000, "thinning": 64}
# Full: the fixed budget used to be 2.56 M steps, the smallest 2.56 M x 2^k at which all of SGLD's validation
# runs had R̂ <= 1.01 (docs/validation.md, "SG budget"); now 320 000 steps is the minimum and 4x the old
# budget the most.
# SGLD at the default γ (issue 17): the first ¾ of the warm-up at κ_w = 1 (hλ_max = 1 at w*, half SGLD's stability
# bound; 79x the heating-capped step at n = 20 000), twice as long, so that the γ-held directions have relaxed
# ≥ 2 times before the first check. Measured on the validation cases, seed 0 (docs/validation.md): without it
# λ̂ sat 16–18% above HMC on two DLNs at R̂ ≤ 1.001; with it (64 000 warm-up steps) those two came within 1.5%
# of HMC on the same data, and all eleven cases within 7% of λ.
# min_relaxation 8 (not the default 2): at 2, one chain of dln_8-5-2_r1 seed 1 held λ̂ ≈ 8.0 (the others 6.9) for
# 9 M steps and the run spent its budget at R̂ 1.020; with the fast phase run until 8 relaxation times (239 000
# fast steps there) the same seed converged at the first check, 6.86 ± 0.08, R̂ 1.003, and seed 0 was unchanged
# (6.76 vs 6.78). A fast step costs what a sampling step costs and relaxes 79x more (docs/convergence.md).
SGLD_FULL = {"steps": 320_000, "max_steps": 10_240_000, "warmup": 128_000, "thinning": 160, "warmup_step_scale": 1.0,
             "min_relaxation": 8.0}

# The stop rule's default minimum for plain SG runs until converged, in relaxation times 1/(hγ) (docs/convergence.md,
# "Plateaus that R̂ does not see"): measured on the validation DLNs at γ = 22.5, 0.24 of them left λ̂ 16–18% high
# with R̂ ≤ 1.001, 1.1 left it 8–11% high, and 2.5–3 (with the fast warm-up) within 4% of Aoyagi's λ.
DEFAULT_MIN_RELAXATION = 2.0


@dataclass(frozen=True)
class SGParams:
    step_scale: float | None = opt(
        0.1,
        "step size relative to the posterior's stiffest curvature at the chain's start, used when "
        "step_size is not set: h = min(step_scale, 0.1 b / (n beta)) / lambda_max(n beta Hessian + gamma) "
        "(the cap keeps minibatch-noise heating below 5%); sghmc uses eps = sqrt(h / 10) with friction 0.1 / eps "
        "(docs/samplers.md).",
        gt=0,
    )
    warmup_step_factor: float | None = opt(
        None,
        "run the first three quarters of the warm-up at this multiple of the sampling step size "
        "(h, or eps/alpha for sghmc), the last quarter at the sampling step. Warm-up draws are discarded, so the "
        "larger step only speeds the chains' relaxation from w* along flat directions (docs/samplers.md).",
        min=1,
    )
    warmup_step_scale: float | None = opt(
        None,
        "the first three quarters of the warm-up use h_w = warmup_step_scale / lambda_max, without the minibatch-"
        "heating cap (warm-up draws are discarded), when that is larger than the sampling step; the last quarter "
        "uses the sampling step. Needs the curvature-scaled step (step_scale); warmup_step_factor overrides it. "
        "It moves the chains along the directions only gamma holds up to ~1/cap times sooner (docs/samplers.md).",
        gt=0,
    )
    min_relaxation: float | None = opt(
        None,
        "with stop=converged and no preconditioner: do not stop before the chains ran this many relaxation times "
        "1/(h gamma) of the directions only gamma holds (warm-up included, fast warm-up steps at their own h); "
        "R-hat cannot see a plateau the chains all share (docs/convergence.md). Default 2 there; 0 turns it off.",
        min=0,
    )
    batch_size: int = opt(256, "minibatch size.", gt=0)
    loss_trace: str | None = opt(
        None,
        "record the minibatch loss of each kept step (batch) or the full-data loss (full). Default: full with "
        "stop=converged (a minibatch trace's R-hat is about 1 whether or not the chains mix, so it cannot "
        "decide convergence), batch with stop=fixed.",
        choices=LOSS_TRACES,
    )
    precond: str = opt("none", "diagonal preconditioner adapted during warm-up, then frozen (llc.samplers.precond).",
                       choices=PRECONDS)
    precond_decay: float = opt(0.99, "decay of the running second moment (rmsprop/adam).", gt=0, max=1)
    precond_eps: float = opt(1e-8, "epsilon added to sqrt of the second moment.", gt=0)
