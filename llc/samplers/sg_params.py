"""Keys shared by the stochastic-gradient samplers (sgld, sghmc): step scaling, minibatches, loss trace."""

from __future__ import annotations

from dataclasses import dataclass

from llc.fields import opt

LOSS_TRACES = ("batch", "full")

# Both SG samplers' full preset: the smallest 2.56 M x 2^k steps at which all of SGLD's validation runs
# have R̂ <= 1.01 (docs/validation.md, "SG budget"); thinning keeps 16 000 stored draws.
SG_FULL_BUDGET = {"steps": 2_560_000, "warmup": 64_000, "thinning": 160}


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
    loss_trace: str = opt(
        "batch", "record the minibatch loss of each kept step (batch) or the full-data loss (full).", choices=LOSS_TRACES
    )
