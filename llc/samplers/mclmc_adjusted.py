"""Metropolis-adjusted MCLMC (`blackjax.adjusted_mclmc_dynamic`) with its own tuner (notes §4).

Per chain (the driver vmaps `warmup`): `adjusted_mclmc_dynamic.init` (1 gradient),
then `blackjax.adjusted_mclmc_find_L_and_step_size` with target acceptance rate
`sampler.target_accept`: two dual-averaging passes for the step size and a
diagonal inverse mass matrix from the variances seen in between. The tuner
keeps the mean trajectory length at `sampler.num_integration_steps` integrator
steps (its `target_num_integration_steps`: L = num_integration_steps × step size).
Each draw then integrates a random number of isokinetic McLachlan steps (mean
L/step_size, `make_random_trajectory_length_fn(True)`) and is accepted or
rejected by Metropolis-Hastings, so the chain is exact (no discretisation bias).

Warm-up budget: the tuner is called with num_steps = W = `sampler.warmup` and
frac_tune1 = frac_tune2 = 1/3 (frac_tune3 = 0), i.e. W/3 + W/3 + W/3 ≈ W MH steps.
Tuning starts from step size `sampler.step_size` and the identity mass matrix.

Cost: warm-up gradients = 1 (init) + 2 × (tuning integrator steps returned by the
tuner); a draw costs 2 × its `num_integration_steps` (recorded per draw, with
`acceptance_rate` and `diverging`). The loss is recovered from the state's
log-density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llc.fields import opt
from llc.samplers.hmc import TARGET_ACCEPT_HELP, blackjax_precision
from llc.samplers.mclmc import _f64, initial_state, tune_fractions, tuned
from llc.samplers.spec import SamplerSpec

if TYPE_CHECKING:
    import jax
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler

TUNE_FRACTION = 1.0 / 3.0


@dataclass(frozen=True)
class AdjustedMCLMCParams:
    target_accept: float = opt(0.9, TARGET_ACCEPT_HELP, gt=0, max=1)
    num_integration_steps: int = opt(10, "integration steps per draw.", gt=0)



def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    # JAX and BlackJAX are imported here, not at the top: llc.config reads SPEC below without them.
    import blackjax
    from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn

    from llc.samplers.base import Sampler

    w_star = posterior.w_star
    dtype = w_star.dtype
    target = cfg.target_accept
    avg_steps = float(cfg.num_integration_steps)
    logdensity = posterior.logdensity
    steps_fn = make_random_trajectory_length_fn(True)
    kernel = blackjax.adjusted_mclmc_dynamic.build_kernel(integration_steps_fn=steps_fn)

    def init(position: jax.Array) -> jax.Array:
        return position  # BlackJAX's init takes the trajectory-length key: done in `warmup`

    def warmup(key, position, num_steps: int):
        with blackjax_precision(dtype):
            state, params, k_tune = initial_state(
                blackjax.adjusted_mclmc_dynamic.init, position, logdensity, key, cfg.step_size, avg_steps)
            n_tune = 0
            if num_steps > 0:
                state, params, n_tune = blackjax.adjusted_mclmc_find_L_and_step_size(
                    mclmc_kernel=kernel, logdensity_fn=logdensity, num_steps=num_steps, state=state, rng_key=k_tune,
                    target=target, **tune_fractions(TUNE_FRACTION, 0.0), diagonal_preconditioning=True, params=params,
                    target_num_integration_steps=avg_steps,
                )
        return tuned(state, params, n_tune, dtype)

    def step(key, state, params: MCLMCAdaptationState):
        with blackjax_precision(dtype):
            new, info = kernel(
                key, state, logdensity, params.step_size,
                inverse_mass_matrix=params.inverse_mass_matrix,
                integration_steps_params=(params.L / params.step_size,),
            )
            record = {
                "loss": posterior.loss_from_logdensity(new.position, new.logdensity),
                "acceptance_rate": info.acceptance_rate,
                "diverging": info.is_divergent,
                "num_integration_steps": info.num_integration_steps,
            }
        grads = 2.0 * _f64(info.num_integration_steps)
        return new, {**record, "fde": grads, "grad_evals": grads}

    return Sampler(init=init, warmup=warmup, step=step, position=lambda state: state.position)


SPEC = SamplerSpec(
    name="mclmc_adjusted",
    summary="microcanonical Langevin Monte Carlo with a Metropolis adjustment and random trajectory lengths",
    params=AdjustedMCLMCParams,
    build=build,
    minibatch=False,
    rel_tol=0.05,
    presets={
        "quick": {"step_size": 1e-2, "steps": 1000, "warmup": 500},
        "full": {"step_size": 1e-3, "steps": 1000, "warmup": 1000, "num_integration_steps": 20},
    },
)
