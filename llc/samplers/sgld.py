"""SGLD, plain and preconditioned (notes §4).

Plain (Welling & Teh 2011, BlackJAX convention, step size h):
    w <- w + h ĝ(w) + sqrt(2h) ξ,   ĝ = -nβ ∇L_B(w) - γ (w - w*).

Preconditioned (RMSProp-style, Li et al. 2016; `adam` uses Adam's bias-corrected
second moment): a diagonal metric G is estimated during warm-up (plain SGLD steps)
from running second moments of ĝ and then frozen, so sampling uses the exact fixed-metric update
    w <- w + h G ⊙ ĝ(w) + sqrt(2h G) ⊙ ξ,
which needs no Γ correction term. G is normalised so that its smallest entry is
1, so softer directions take larger steps. G ≥ 1 can make the preconditioned
stiffest direction stiffer than the plain one, which is why a curvature-scaled h
is recomputed for the frozen metric (below); an explicit step_size is used as is.

Step size: `sampler.step_size` = h as given, or, when only `sampler.step_scale` is
set (the presets), h scaled to the stiffest curvature at the chain's start
(llc.samplers.curvature), computed per chain at the start of warm-up and, with a
preconditioner, again for the frozen metric (largest eigenvalue of G^½ (nβ∇²L_n + γ) G^½).
With `sampler.warmup_step_factor` = f the first three quarters of the warm-up use f·h
(the preconditioned warm-up likewise; its metric is estimated along the way as usual).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from llc.samplers.sg_params import SG_QUICK, SGLD_FULL, SGParams
from llc.samplers.spec import SamplerSpec, StepControl

if TYPE_CHECKING:
    import jax

    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler
    from llc.samplers.precond import Moments


class SGLDState(NamedTuple):
    position: jax.Array
    moments: Moments  # running E[ĝ²], used during warm-up only


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    # JAX is imported here, not at the top: llc.config reads SPEC below without it (docs/architecture.md).
    import jax
    import jax.numpy as jnp

    from llc.samplers.base import Sampler, relaxing_warmup, scan_warmup, scan_warmup_two_speed
    from llc.samplers.curvature import (
        add_work,
        initial_step_size,
        max_curvature,
        scaled_step_size,
        tuning_work,
        warmup_relaxation_target,
        warmup_speedup,
    )
    from llc.samplers.precond import frozen_metric, init_moments, update_moments

    precond, decay, eps = cfg.precond, cfg.precond_decay, cfg.precond_eps
    work = {"fde": posterior.batch_fraction, "grad_evals": 1.0}

    def init(position: jax.Array) -> SGLDState:
        # Without a preconditioner the moments are never updated: a scalar placeholder, not a C × d array.
        return SGLDState(position, init_moments(position if precond != "none" else position[0]))

    def move(key, state: SGLDState, params):
        h, metric = params
        h = h.astype(state.position.dtype)
        k_batch, k_noise = jax.random.split(key)
        loss, grad = posterior.batch_grad(state.position, k_batch)
        noise = jax.random.normal(k_noise, state.position.shape, state.position.dtype)
        dtype = state.position.dtype
        position = state.position + (h * metric * grad + jnp.sqrt(2 * h * metric) * noise).astype(dtype)
        return position, loss, grad

    def step(key, state: SGLDState, params):
        position, loss, _ = move(key, state, params)
        info = {"loss": loss, **{k: jnp.asarray(v, jnp.float64) for k, v in work.items()}}
        return state._replace(position=position), info

    def adapt_step(key, state: SGLDState, h):
        # Plain SGLD steps while the second moments accumulate: a metric that changed during the
        # steps would need the Γ correction, and the curvature-scaled h is not yet known for it.
        position, loss, grad = move(key, state, (h, jnp.ones_like(state.position)))
        info = {"loss": loss, **{k: jnp.asarray(v, jnp.float64) for k, v in work.items()}}
        return SGLDState(position, update_moments(state.moments, grad, decay)), info

    def warmup(key, state: SGLDState, num_steps: int):
        k_step, k_precond, key = jax.random.split(key, 3)
        h, tuning = initial_step_size(posterior, cfg, k_step, state.position)
        factor = warmup_speedup(cfg, h, tuning)
        if precond == "none":
            metric = jnp.ones((), state.position.dtype)  # G = 1: a scalar, broadcast in `move`
            burn_in, params, with_step = step, (h, metric), lambda size: (size, metric)
        else:
            burn_in, params, with_step = adapt_step, h, lambda size: size
        relax_to = warmup_relaxation_target(cfg, posterior.gamma)
        if factor is None:
            state, info = scan_warmup(burn_in, key, state, params, num_steps)
        elif relax_to is not None:
            rate = factor * h * posterior.gamma  # relaxation times per fast step
            state, info, n_fast = relaxing_warmup(burn_in, key, state, with_step(h * factor), params, num_steps,
                                                  rate, relax_to)
            info = {**info, "warmup_fast_steps": n_fast}
        else:
            state, info = scan_warmup_two_speed(burn_in, key, state, with_step(h * factor), params, num_steps)
        if factor is not None:
            info = {**info, "warmup_step_size": h * factor, "warmup_speedup": jnp.asarray(factor, jnp.float64)}
        info = add_work(info, tuning)
        if precond != "none":
            metric = frozen_metric(state.moments, precond, decay, eps)
            if cfg.step_size is None:
                # The frozen metric changes the stiffest direction: rescale h to the preconditioned curvature.
                curvature = max_curvature(posterior, state.position, k_precond, metric)
                h = scaled_step_size(posterior, cfg.step_scale, curvature)
                info = add_work({**info, "curvature_max_preconditioned": curvature}, tuning_work())
        info = {**info, "step_size": h, "metric_min": jnp.min(metric), "metric_max": jnp.max(metric),
                "metric_mean": jnp.mean(metric)}
        return state, (h, metric), info

    return Sampler(init=init, warmup=warmup, step=step, position=lambda s: s.position, step_work=work)


def _with_step_size(params, size, cfg: SamplerConfig):
    """(h, metric) with sampler.step_size = h; a frozen metric is kept."""
    import jax.numpy as jnp

    return jnp.asarray(size, jnp.float64), params[1]


# `llc calibrate`: params are (h, metric); sampler.step_size is h itself.
STEP_CONTROL = StepControl(
    step_size=lambda params: params[0],
    with_step_size=_with_step_size,
    langevin=lambda params: params,
    step_size_for=lambda h, cfg: float(h),
)

SPEC = SamplerSpec(
    name="sgld",
    summary="stochastic-gradient Langevin dynamics, plain or with a frozen diagonal preconditioner",
    params=SGParams,
    build=build,
    minibatch=True,
    rel_tol=0.08,
    presets={"quick": SG_QUICK, "full": SGLD_FULL},
    step_control=STEP_CONTROL,
)
