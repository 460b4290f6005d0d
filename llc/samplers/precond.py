"""The diagonal preconditioner both SG samplers share: estimated during warm-up, then frozen.

During warm-up the chains take plain steps while a running second moment v of ĝ accumulates
(RMSProp: v ← ρ v + (1-ρ) ĝ²; Adam additionally divides by 1 - ρ^t). At the end of warm-up the metric
G = 1 / (sqrt(v) + ε), normalised so that its smallest entry is 1, is frozen for all of sampling.
A constant metric needs no Γ correction term (notes §4): sampling targets the same posterior exactly,
only faster along the directions where ĝ is small (the flat ones).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Moments(NamedTuple):
    second_moment: jax.Array  # running E[ĝ²]
    count: jax.Array  # updates so far (Adam's bias correction)


def init_moments(position: jax.Array) -> Moments:
    return Moments(jnp.zeros_like(position), jnp.zeros((), jnp.int32))


def update_moments(moments: Moments, grad: jax.Array, decay: float) -> Moments:
    return Moments(decay * moments.second_moment + (1 - decay) * grad * grad, moments.count + 1)


def frozen_metric(moments: Moments, precond: str, decay: float, eps: float) -> jax.Array:
    """G (diagonal, smallest entry 1) from the warm-up's second moments; all ones for `none`."""
    if precond == "none":
        return jnp.ones_like(moments.second_moment)
    v = moments.second_moment
    if precond == "adam":
        v = v / (1.0 - decay ** jnp.maximum(moments.count, 1))
    inv = 1.0 / (jnp.sqrt(v) + eps)
    return inv / jnp.min(inv)
