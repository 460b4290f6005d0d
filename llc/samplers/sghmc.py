"""SGHMC (Chen, Fox & Guestrin 2014) with BlackJAX's update equations (notes §4).

One integration step is `blackjax.sgmcmc.diffusions.sghmc(alpha, beta=0)`, i.e.
with time step ε = `sampler.step_size` and friction α = `sampler.friction`:

    w ← w + ε p
    p ← (1 - αε) p + ε ĝ(w_old) + sqrt(2αε) ξ,   ĝ = -nβ ∇L_B(w) - γ (w - w*),  ξ ~ N(0, I)

(ĝ is evaluated at the position before the move, as in BlackJAX.) One sampler
step is `num_integration_steps` such integration steps, each on a fresh
minibatch, so it costs `num_integration_steps` minibatch gradients
(FDE = num_integration_steps * b/n).

The kernel loop is ours, not `blackjax.sghmc.step`, for two reasons:
  * `blackjax.sghmc.step` returns only the new position: no loss to record.
  * it redraws the momentum on every call and uses one minibatch for all its
    integration steps. With num_integration_steps = 1 a redrawn momentum makes
    the position update `w + ε ξ`, a random walk that never sees the gradient.
    Here the momentum is part of the chain state and persists across steps (the
    friction keeps it at temperature 1); it is drawn from N(0, I) once, at the
    start of warm-up.
Step size: `sampler.step_size` = ε as given, or, with `sampler.step_scale` (the
presets), ε = sqrt(h / 10) with h the curvature-scaled SGLD step size
(llc.samplers.curvature) and, unless `sampler.friction` is set, α = 0.1 / ε. Then
αε = 0.1 (strongly damped, as minibatch noise requires) and one step moves like an
SGLD step of size ε/α = h, with the same minibatch-noise heating bound.
The recorded loss (`loss_trace: batch`) is the mean of the minibatch losses
L_B(w) evaluated by the step's integration steps (one each; no extra work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from llc.fields import opt
from llc.samplers.hmc import blackjax_precision
from llc.samplers.sg_params import SG_QUICK, SGParams
from llc.samplers.spec import SamplerSpec, StepControl

if TYPE_CHECKING:
    import jax

    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler
    from llc.samplers.precond import Moments


class SGHMCState(NamedTuple):
    position: jax.Array
    momentum: jax.Array  # r: the momentum of the whitened coordinates u = G^{-1/2} w, stationary N(0, I)
    moments: Moments  # running E[ĝ²] for the preconditioner, used during warm-up only


FRICTION_TIMES_STEP = 0.1  # default α·ε

# Each SG sampler gets the smallest 2.56 M x 2^k steps at which all its validation runs have R̂ <= 1.01.
# SGHMC needs 5.12 M: its slowest run (DLN [5,4,5] r = 0, seed 0, metastable) has R̂ 1.0115 at 2.56 M,
# 1.0057 at 5.12 M. ≈ 65 000 FDE per chain, 1.6x HMC's work (docs/validation.md, "SG budget").
# Until converged, 640 000 is the minimum and 4x the old fixed budget the most (docs/convergence.md).
# At the default γ (issue 17) the first ¾ of the warm-up runs at κ_w = 0.5 (SGHMC's fast phase must keep
# f·(ε/α)·λ_max < 1, half SGLD's bound), four times as long as before so that the γ-held directions relax
# about as often as SGLD's (docs/samplers.md). With 64 000 warm-up steps (1.5 relaxation times) the validation
# DLNs on seed 0 still sat 7.5–9.5% high.
SGHMC_FULL_BUDGET = {"steps": 640_000, "max_steps": 20_480_000, "warmup": 256_000, "thinning": 320,
                     "warmup_step_scale": 0.5}


@dataclass(frozen=True)
class SGHMCParams(SGParams):
    friction: float | None = opt(None, "friction alpha (default 0.1 / eps).", gt=0)
    num_integration_steps: int = opt(1, "integration steps per draw.", gt=0)


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    # JAX is imported here, not at the top: llc.config reads SPEC below without it (docs/architecture.md).
    import jax
    import jax.numpy as jnp
    from blackjax.sgmcmc.diffusions import sghmc as sghmc_diffusion

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

    n_int = int(cfg.num_integration_steps)
    work = {"fde": n_int * posterior.batch_fraction, "grad_evals": float(n_int)}

    def init(position: jax.Array) -> SGHMCState:
        return SGHMCState(position, jnp.zeros_like(position), init_moments(position))

    def integrate(key, state: SGHMCState, params):
        """One sampler step; returns the new state, the mean minibatch loss, and the last ĝ."""
        eps, alpha, sqrt_metric = params

        def one(carry, k):
            position, momentum, _ = carry
            k_batch, k_noise = jax.random.split(k)
            loss, grad = posterior.batch_grad(position, k_batch)
            dtype = position.dtype
            root = sqrt_metric.astype(dtype)
            with blackjax_precision(dtype):
                integrator = sghmc_diffusion(alpha=alpha.astype(dtype), beta=0.0)
                # SGHMC in u = G^{-1/2} w (gradient G^{1/2} ĝ), mapped back: w' = w + G^{1/2} (ε r).
                # With G = 1 this is BlackJAX's update on w, bit for bit.
                move, momentum = integrator(k_noise, jnp.zeros_like(position), momentum,
                                            (root * grad).astype(dtype), eps.astype(dtype))
            return (position + root * move, momentum.astype(dtype), grad), loss

        zero = jnp.zeros_like(state.position)
        (position, momentum, grad), losses = jax.lax.scan(
            one, (state.position, state.momentum, zero), jax.random.split(key, n_int))
        return state._replace(position=position, momentum=momentum), jnp.mean(losses), grad

    def info_of(loss):
        return {"loss": loss, **{k: jnp.asarray(v, jnp.float64) for k, v in work.items()}}

    def step(key, state: SGHMCState, params):
        state, loss, _ = integrate(key, state, params)
        return state, info_of(loss)

    def adapt_step(key, state: SGHMCState, params):
        # Unpreconditioned steps while the second moments accumulate (a metric that changed during
        # sampling would need the Γ correction); the metric is frozen at the end of warm-up.
        state, loss, grad = integrate(key, state, params)
        return state._replace(moments=update_moments(state.moments, grad, cfg.precond_decay)), info_of(loss)

    def integration_params(size):
        """(ε, α): an explicit step_size is ε itself; a curvature-scaled one is SGLD's h = ε/α with α·ε fixed."""
        eps = size if cfg.step_size is not None else jnp.sqrt(size * FRICTION_TIMES_STEP)
        alpha = jnp.asarray(cfg.friction, jnp.float64) if cfg.friction is not None else FRICTION_TIMES_STEP / eps
        return eps, alpha

    def warmup(key, state: SGHMCState, num_steps: int):
        k_mom, k_step, k_run, k_precond = jax.random.split(key, 4)
        size, tuning = initial_step_size(posterior, cfg, k_step, state.position)
        eps, alpha = integration_params(size)
        momentum = jax.random.normal(k_mom, state.position.shape, state.position.dtype)
        ones = jnp.ones_like(state.position)
        params = (eps, alpha, ones)
        state = state._replace(momentum=momentum)
        burn_in = step if cfg.precond == "none" else adapt_step
        factor, fast = warmup_speedup(cfg, size, tuning), {}
        if factor is None:
            state, info = scan_warmup(burn_in, k_run, state, params, num_steps)
        else:
            # f times the SGLD-equivalent step ε/α: with the default friction α·ε stays 0.1, else α stays as set
            eps_fast = eps * jnp.sqrt(factor) if cfg.friction is None else eps * factor
            alpha_fast = FRICTION_TIMES_STEP / eps_fast if cfg.friction is None else alpha
            relax_to = warmup_relaxation_target(cfg, posterior.gamma)
            if relax_to is not None:
                rate = factor * eps / alpha * n_int * posterior.gamma  # relaxation times per fast step
                state, info, n_fast = relaxing_warmup(burn_in, k_run, state, (eps_fast, alpha_fast, ones), params,
                                                      num_steps, rate, relax_to)
                info = {**info, "warmup_fast_steps": n_fast}
            else:
                state, info = scan_warmup_two_speed(burn_in, k_run, state, (eps_fast, alpha_fast, ones), params,
                                                    num_steps)
            fast = {"warmup_step_size": eps_fast, "warmup_speedup": jnp.asarray(factor, jnp.float64)}
        info = add_work(info, tuning)
        metric = frozen_metric(state.moments, cfg.precond, cfg.precond_decay, cfg.precond_eps)
        if cfg.precond != "none":
            if cfg.step_size is None:
                # As for SGLD: the frozen metric changes the stiffest direction, so h is rescaled to it.
                curvature = max_curvature(posterior, state.position, k_precond, metric)
                eps, alpha = integration_params(scaled_step_size(posterior, cfg.step_scale, curvature))
                info = add_work({**info, "curvature_max_preconditioned": curvature}, tuning_work())
            info = {**info, "metric_min": jnp.min(metric), "metric_max": jnp.max(metric),
                    "metric_mean": jnp.mean(metric)}
        return state, (eps, alpha, jnp.sqrt(metric)), {**info, "step_size": eps, "friction": alpha, **fast}

    return Sampler(init=init, warmup=warmup, step=step, position=lambda s: s.position, step_work=work)


def _with_step_size(params, size, cfg: SamplerConfig):
    """(ε, α, G^½) of a run with sampler.step_size = ε: α = sampler.friction when set, else 0.1 / ε (as
    `warmup`); a frozen metric is kept."""
    import jax.numpy as jnp

    eps = jnp.asarray(size, jnp.float64)
    alpha = jnp.asarray(cfg.friction, jnp.float64) if cfg.friction is not None else FRICTION_TIMES_STEP / eps
    return eps, jnp.broadcast_to(alpha, eps.shape), params[2]


def _step_size_for(h: float, cfg: SamplerConfig) -> float:
    """ε whose overdamped step ε/α is h: sqrt(0.1 h) with the default friction, h·α with a set one."""
    return float(h * cfg.friction) if cfg.friction is not None else float((h * FRICTION_TIMES_STEP) ** 0.5)


# `llc calibrate`: params are (ε, α, G^½); the overdamped limit of the dynamics is SGLD with h = ε/α and
# the same metric G.
STEP_CONTROL = StepControl(
    step_size=lambda params: params[0],
    with_step_size=_with_step_size,
    langevin=lambda params: (params[0] / params[1], params[2] ** 2),
    step_size_for=_step_size_for,
)

SPEC = SamplerSpec(
    name="sghmc",
    summary="stochastic-gradient Hamiltonian Monte Carlo with persistent momentum (strongly damped)",
    params=SGHMCParams,
    build=build,
    minibatch=True,
    rel_tol=0.08,
    presets={
        "quick": {**SG_QUICK, "warmup": 10000},
        # κ half of SGLD's: at the same h, SGHMC's integrator inflates the stiffest direction's
        # variance twice as much (11% vs 5% at hK = 0.1; docs/samplers.md). Only data-free targets
        # see it: with minibatches the heating cap (0.1·b/nβ) is the smaller bound.
        "full": {"step_scale": 0.05, **SGHMC_FULL_BUDGET},
    },
    step_control=STEP_CONTROL,
)
