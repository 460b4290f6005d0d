"""Analytic learning coefficients (notes §6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def dln_lambda(widths: Sequence[int], rank: int) -> float:
    """Aoyagi's learning coefficient of a deep linear network.

    `widths` = [H_1 (input), ..., H_{M+1} (output)], `rank` = rank r of the
    teacher's product matrix. With M̄_j = H_j - r, Aoyagi's theorem picks the
    set Σ of the ℓ+1 smallest M̄_j that satisfies
        max_Σ M̄ < min_{not Σ} M̄,  Σ M̄_Σ >= ℓ max_Σ M̄,  Σ M̄_Σ < ℓ min_{not Σ} M̄,
    and then, with S = Σ M̄_Σ, m = ceil(S/ℓ), a = S - (m-1)ℓ,
        λ = (-r² + r(H_1 + H_{M+1}))/2 + a(ℓ-a)/(4ℓ) - ℓ(ℓ-1)/4 (S/ℓ)²
            + 1/2 Σ_{i<j in Σ} M̄_i M̄_j.
    """
    widths = [int(h) for h in widths]
    if len(widths) < 2:
        raise ValueError("a DLN needs at least an input and an output width")
    if not 0 <= rank <= min(widths):
        raise ValueError(f"rank {rank} must lie in 0..{min(widths)}")
    r = rank
    mbar = sorted(h - r for h in widths)
    for size in range(2, len(mbar) + 1):
        subset, rest = mbar[:size], mbar[size:]
        ell = size - 1
        total = sum(subset)
        rest_min = min(rest) if rest else math.inf
        if max(subset) < rest_min and total >= ell * max(subset) and total < ell * rest_min:
            break
    else:  # pragma: no cover - the theorem guarantees a subset exists
        raise ValueError(f"no admissible subset for widths {widths}, rank {rank}")
    m = math.ceil(total / ell)
    a = total - (m - 1) * ell
    pairs = sum(subset[i] * subset[j] for i in range(size) for j in range(i + 1, size))
    lam = (
        (-(r**2) + r * (widths[0] + widths[-1])) / 2
        + a * (ell - a) / (4 * ell)
        - ell * (ell - 1) / 4 * (total / ell) ** 2
        + pairs / 2
    )
    return float(lam)


def quadratic_lambda_finite(eigs: np.ndarray, nbeta: float, gamma: float) -> float:
    """Exact E[λ̂] for L = ½ wᵀAw under exp(-nβL - γ/2|w|²): ½ Σ nβa/(nβa+γ)."""
    eigs = np.asarray(eigs, dtype=np.float64)
    return float(0.5 * np.sum(nbeta * eigs / (nbeta * eigs + gamma)))
