"""Curvature-scaled step sizes for the SG samplers (docs/samplers.md, "Step sizes").

An absolute SGLD step size cannot suit every target: the stiffest curvature of
nβ L_n + γ|w - w*|²/2 is ~10³ on the validation quadratic and ~10⁵–10⁶ on data-based
networks. `sampler.step_scale` = κ instead sets

    h = min(κ, HEATING_CAP · b / (nβ)) / λ_max,    λ_max = largest eigenvalue of nβ ∇²L_n(w) + γ I,

with λ_max found by power iteration on Hessian-vector products of the full-data loss
at the chain's starting point. κ bounds the discretization error (h λ_max / 2 ≤ κ / 2
in the stiffest direction); the cap bounds minibatch-noise heating: a minibatch gradient
adds variance ≈ h² (nβ)² F / b per step (F the per-sample Fisher ≈ Hessian at w*), which
relative to the injected 2h is h nβ λ_max / (2b) ≤ HEATING_CAP / 2 = 5% in the stiffest
direction (in a regular model every direction is that stiff, so λ̂ is then up to ~5% high).
Data-free targets (batch fraction 1) have no minibatch noise and no cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.posterior import Posterior

POWER_ITERATIONS = 20
HEATING_CAP = 0.1
HVP_FDE = 2.0  # one Hessian-vector product (forward-over-reverse) costs about two full-data gradients


def max_curvature(posterior: Posterior, w: jax.Array, key: jax.Array, metric: jax.Array | None = None) -> jax.Array:
    """Largest eigenvalue of nβ ∇²L_n(w) + γ I, or of G^½ (nβ ∇²L_n(w) + γ I) G^½ for a diagonal metric G.

    Rayleigh quotient after power iteration on Hessian-vector products.
    """
    root = jnp.ones_like(w) if metric is None else jnp.sqrt(metric)

    def hvp(v):
        u = root * v
        hu = jax.jvp(jax.grad(posterior.full_loss), (w,), (u,))[1]
        return root * (posterior.nbeta * hu + posterior.gamma * u)

    def body(v, _):
        hv = hvp(v)
        return hv / jnp.linalg.norm(hv), jnp.vdot(v, hv)

    # The last iteration's Rayleigh quotient is the estimate: one copy of the Hessian-vector product in the
    # compiled program, not a second one after the loop (less to compile; the same numbers, bit for bit).
    v0 = jax.random.normal(key, w.shape, w.dtype)
    _, quotients = jax.lax.scan(body, v0 / jnp.linalg.norm(v0), None, length=POWER_ITERATIONS)
    return quotients[-1]


def scaled_step_size(posterior: Posterior, step_scale: float, curvature: jax.Array) -> jax.Array:
    """SGLD step size h for `sampler.step_scale` = κ at stiffest curvature λ_max (module docstring)."""
    scale = step_scale
    if posterior.batch_fraction < 1.0:
        scale = min(scale, HEATING_CAP * posterior.batch_size / posterior.nbeta)
    return scale / curvature


def tuning_work() -> dict[str, jax.Array]:
    """Work of one `max_curvature` call, in the units every sampler reports."""
    return {"fde": jnp.asarray(POWER_ITERATIONS * HVP_FDE, jnp.float64),
            "grad_evals": jnp.asarray(POWER_ITERATIONS * HVP_FDE, jnp.float64)}


def initial_step_size(posterior: Posterior, cfg: SamplerConfig, key: jax.Array, position: jax.Array):
    """(h, info): the configured step size, or the curvature-scaled one (with its tuning work)."""
    if cfg.step_size is not None:
        zero = jnp.zeros((), jnp.float64)
        return jnp.asarray(cfg.step_size, jnp.float64), {"fde": zero, "grad_evals": zero}
    curvature = max_curvature(posterior, position, key)
    return scaled_step_size(posterior, cfg.step_scale, curvature), {"curvature_max": curvature, **tuning_work()}


def add_work(info: dict[str, jax.Array], extra: dict[str, jax.Array]) -> dict[str, jax.Array]:
    out = {**extra, **info}
    for k in ("fde", "grad_evals"):
        out[k] = info[k] + extra[k]
    return out


def warmup_speedup(cfg: SamplerConfig, h: jax.Array, tuning: dict[str, jax.Array]) -> float | jax.Array | None:
    """The fast warm-up's step over the sampling step h, or None for a one-speed warm-up.

    `sampler.warmup_step_factor` as set; else, with `sampler.warmup_step_scale` κ_w and a curvature-scaled h,
    max(1, κ_w / (h λ_max)): the warm-up step κ_w / λ_max, free of the minibatch-heating cap that bounds h.
    """
    if cfg.warmup_step_factor is not None:
        return cfg.warmup_step_factor
    if cfg.warmup_step_scale is None or "curvature_max" not in tuning:
        return None
    return jnp.maximum(1.0, cfg.warmup_step_scale / (h * tuning["curvature_max"]))


def warmup_relaxation_target(cfg: SamplerConfig, gamma: float) -> float | None:
    """How many relaxation times 1/(hγ) the fast warm-up runs (`base.relaxing_warmup`), or None for the fixed
    two-speed schedule: with `warmup_step_scale` and a stop rule that asks for `min_relaxation` of them."""
    if cfg.warmup_step_scale is None or cfg.warmup_step_factor is not None or not cfg.min_relaxation or gamma <= 0:
        return None
    return float(cfg.min_relaxation)
