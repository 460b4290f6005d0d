"""The default localization strength γ (docs/localization.md, issue 17).

    γ = GAMMA_PER_SQRT_NBETA · sqrt(nβ)

Why sqrt(nβ): along a direction where the loss rises like t⁴ (the flat directions of a singular model,
e.g. a deep linear network near a rank drop) the tempered posterior's width is ~(nβ)^(-1/4), while the
localizing Gaussian's is 1/sqrt(γ). The localization leaves such directions alone only while
1/sqrt(γ) ≫ (nβ)^(-1/4), i.e. γ ≪ sqrt(nβ); a fixed γ that is harmless at one n cuts them off at a
smaller one. Along regular directions (curvature a, width 1/sqrt(nβa)) the relative bias is
γ/(nβa + γ), which this rule keeps ~sqrt(nβ)/(nβa) and falling with n. The constant is the measured
one: docs/localization.md has the study (HMC on every validation DLN, γ from 1 to 300, n = 5 000 and
20 000) that picked it. `posterior.gamma` and `posterior.prior_radius` override the rule.
"""

from __future__ import annotations

import math

from llc import tempering

GAMMA_PER_SQRT_NBETA = 0.5
# The default ERM tolerance is sqrt(max(γ, this))/(nβ): the former default γ = 100's. A smaller γ does not
# tighten it, because L-BFGS cannot reach that on ReLU nets (docs/targets.md, "The centre w*").
ERM_TOL_GAMMA_FLOOR = 100.0


def default_gamma(n: int, beta0: float) -> float:
    """γ for a run that sets neither posterior.gamma nor posterior.prior_radius."""
    return GAMMA_PER_SQRT_NBETA * math.sqrt(tempering.nbeta(n, beta0))
