"""Inverse temperature of the localized tempered posterior (notes §2), in one place.

    β = β0 / log n,   nβ = n · β

jax-free, so configuration resolution can use it as well as the posterior.
"""

from __future__ import annotations

import math


def beta(n: int, beta0: float) -> float:
    """Per-sample inverse temperature β = β0 / log n (Watanabe's WBIC temperature at β0 = 1)."""
    return beta0 / math.log(n)


def nbeta(n: int, beta0: float) -> float:
    """nβ, the factor multiplying the mean loss L_n in the log-density and in λ̂."""
    return n * beta(n, beta0)


def erm_nbeta(n: int, beta0: float) -> float:
    """nβ evaluated as (n·β0) / log n, the rounding of the ERM tolerance and its bias bound.

    Differs from `nbeta` in the last bit for about a quarter of the n (e.g. 2000): the default
    `target.erm_tol` (part of the run ID) and `erm.bias_bound` in metrics.json were computed this way,
    so switching them to `nbeta` would change run IDs and stored numbers.
    """
    return n * beta0 / math.log(n)
