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
SG_FULL_BUDGET = {"steps": 320_000, "max_steps": 10_240_000, "warmup": 64_000, "thinning": 160}


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
