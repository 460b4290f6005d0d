"""SGLD, plain and preconditioned (notes §4).

Plain (Welling & Teh 2011, BlackJAX convention, step size h):
    w <- w + h ĝ(w) + sqrt(2h) ξ,   ĝ = -nβ ∇L_B(w) - γ (w - w*).

Preconditioned (RMSProp-style, Li et al. 2016; `adam` uses Adam's bias-corrected
second moment): a diagonal metric G is adapted during warm-up from running
second moments of ĝ and then frozen, so sampling uses the exact fixed-metric update
    w <- w + h G ⊙ ĝ(w) + sqrt(2h G) ⊙ ξ,
which needs no Γ correction term. G is normalised so that its smallest entry is
1: the stiffest direction moves exactly as in plain SGLD, so a step size that is
stable for plain SGLD is stable here, and softer directions take larger steps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from llc.config import SamplerConfig
from llc.posterior import Posterior
from llc.samplers.base import Sampler, scan_warmup


class SGLDState(NamedTuple):
    position: jax.Array
    second_moment: jax.Array  # running E[ĝ²], used during warm-up only
    count: jax.Array


def metric_from_moment(state: SGLDState, precond: str, decay: float, eps: float) -> jax.Array:
    if precond == "none":
        return jnp.ones_like(state.position)
    v = state.second_moment
    if precond == "adam":
        v = v / (1.0 - decay ** jnp.maximum(state.count, 1))
    inv = 1.0 / (jnp.sqrt(v) + eps)
    return inv / jnp.min(inv)


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    h = cfg.step_size
    precond = cfg.precond or "none"
    decay = cfg.precond_decay if cfg.precond_decay is not None else 0.99
    eps = cfg.precond_eps if cfg.precond_eps is not None else 1e-8
    work = {"fde": posterior.batch_fraction, "grad_evals": 1.0}

    def init(position: jax.Array) -> SGLDState:
        return SGLDState(position, jnp.zeros_like(position), jnp.zeros((), jnp.int32))

    def move(key, state: SGLDState, metric: jax.Array):
        k_batch, k_noise = jax.random.split(key)
        loss, grad = posterior.batch_grad(state.position, k_batch)
        noise = jax.random.normal(k_noise, state.position.shape, state.position.dtype)
        dtype = state.position.dtype
        position = state.position + (h * metric * grad + jnp.sqrt(2 * h * metric) * noise).astype(dtype)
        return position, loss, grad

    def step(key, state: SGLDState, metric: jax.Array):
        position, loss, _ = move(key, state, metric)
        info = {"loss": loss, **{k: jnp.asarray(v, jnp.float64) for k, v in work.items()}}
        return state._replace(position=position), info

    def adapt_step(key, state: SGLDState, _params):
        metric = metric_from_moment(state, precond, decay, eps)
        position, loss, grad = move(key, state, metric)
        moment = decay * state.second_moment + (1 - decay) * grad * grad
        info = {"loss": loss, **{k: jnp.asarray(v, jnp.float64) for k, v in work.items()}}
        return SGLDState(position, moment, state.count + 1), info

    def warmup(key, state: SGLDState, num_steps: int):
        if precond == "none":
            metric = jnp.ones_like(state.position)
            state, info = scan_warmup(step, key, state, metric, num_steps)
        else:
            state, info = scan_warmup(adapt_step, key, state, None, num_steps)
            metric = metric_from_moment(state, precond, decay, eps)
        info = {**info, "metric_min": jnp.min(metric), "metric_max": jnp.max(metric),
                "metric_mean": jnp.mean(metric)}
        return state, metric, info

    return Sampler(init=init, warmup=warmup, step=step, position=lambda s: s.position)
