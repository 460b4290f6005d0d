"""Unadjusted MCLMC (Robnik et al.) with BlackJAX's tuner (notes §4).

Per chain (the driver vmaps `warmup`): `blackjax.mcmc.mclmc.init` (1 gradient),
then `blackjax.mclmc_find_L_and_step_size` tunes the step size (energy-error
variance per dimension → `desired_energy_var`), a diagonal inverse mass matrix
and the momentum decoherence length L; sampling runs the unadjusted kernel
(`isokinetic_mclachlan`: 2 gradients per step) with the tuned values on the
full-data posterior.

Warm-up budget. `sampler.warmup` = W is the number of tuning steps: the tuner is
called with num_steps = W and frac_tune1 = frac_tune2 = frac_tune3 = 0.3, so it
runs 0.3W (step size) + 0.3W (+0.1W after the mass matrix update) (variance,
mass matrix) + 0.3W (L from the autocorrelation) ≈ W integrator steps.
Tuning starts from step size `sampler.step_size`, L = 4 × step size (BlackJAX's
default ratio) and the identity mass matrix.

Cost: warm-up gradients = 1 (init) + 2 × (tuning integrator steps); sampling = 2 per
step. The tuning steps are counted from the tuner's schedule (`tuning_integrator_steps`):
the count BlackJAX returns is one step short when round(0.3W) % 3 == 2. The loss is recovered from the step's
log-density. `energy_change` is recorded per draw.

Blow-ups. BlackJAX's kernel silently reverts a step that produced NaN/Inf and
redraws the momentum, and an isokinetic step (unit-norm velocity) cannot
overflow however large the step size is, it only becomes wildly inaccurate.
Here a *divergent* step, one that produced NaN/Inf or whose energy error
exceeds DIVERGENCE_THRESHOLD = 1000 (BlackJAX's HMC divergence threshold; a
tuned step has |ΔE| ≈ sqrt(d · desired_energy_var)), turns the chain's state
into NaN and it stays NaN, so the estimator flags and excludes that chain
instead of averaging a chain that was quietly held in place or thrown around.
Each draw records `diverging`. (During tuning, BlackJAX's own handling applies:
it shrinks the step size.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llc.fields import opt
from llc.samplers.hmc import blackjax_precision, mass_matrix_summary
from llc.samplers.spec import SamplerSpec

if TYPE_CHECKING:
    import jax
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler

# JAX and BlackJAX are imported inside the functions that use them: llc.config reads SPEC (and
# mclmc_adjusted's, which imports from here) without them.

TUNE_FRACTION = 0.3  # each of BlackJAX's three tuning phases, as a fraction of sampler.warmup


@dataclass(frozen=True)
class MCLMCParams:
    desired_energy_var: float = opt(1e-4, "desired energy variance per dimension for tuning.", gt=0)

DIVERGENCE_THRESHOLD = 1000.0
GRADS_PER_STEP = 2.0  # isokinetic_mclachlan: two gradient evaluations (full data) per step


def tuning_integrator_steps(num_steps: int, frac: float = TUNE_FRACTION) -> int:
    """Integrator steps `mclmc_find_L_and_step_size(num_steps, frac, frac, frac, diagonal_preconditioning=True)` runs.

    Counted from the tuner's code rather than taken from its return value, which adds
    `n2 // 3` for the post-metric re-tuning while the tuner runs `round(n2 / 3)` steps
    (one step per chain short whenever n2 % 3 == 2; measured with a host-callback counter).
    """
    n1 = n2 = n3 = round(num_steps * frac)
    extra = round(n2 / 3) if n2 > 1 else 0
    return n1 + n2 + extra + (n3 if n3 >= 2 else 0)


def initial_state(init_fn, position, logdensity, key, step_size: float, length_in_steps: float):
    """BlackJAX's initial state (it draws the momentum, or the trajectory-length key) and the tuner's
    starting point: the preset's step size, L = length_in_steps steps, identity metric; plus the tuning key."""
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    k_init, k_tune = jax.random.split(key)
    state = init_fn(position, logdensity, k_init)
    step0 = jnp.asarray(step_size, position.dtype)
    metric = jnp.ones(position.shape, position.dtype)
    return state, MCLMCAdaptationState(L=length_in_steps * step0, step_size=step0, inverse_mass_matrix=metric), k_tune


def tune_fractions(frac: float, last: float) -> dict[str, float]:
    """The tuners' three phases as fractions of the warm-up: `frac` each, the third (metric re-tuning) `last`."""
    return {"frac_tune1": frac, "frac_tune2": frac, "frac_tune3": last}


def _f64(x) -> jax.Array:
    import jax.numpy as jnp

    return jnp.asarray(x, jnp.float64)


def tuned(state, params: MCLMCAdaptationState, n_tune, dtype) -> tuple:
    """Warm-up result shared by both MCLMC tuners: params in the chain's dtype, and the work and
    adapted values to report (init's value_and_grad + 2 gradients per McLachlan tuning step)."""
    import jax.numpy as jnp
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    params = MCLMCAdaptationState(
        L=jnp.asarray(params.L, dtype),
        step_size=jnp.asarray(params.step_size, dtype),
        inverse_mass_matrix=jnp.asarray(params.inverse_mass_matrix, dtype),
    )
    summary = {"step_size": params.step_size, "L": params.L, **mass_matrix_summary(params.inverse_mass_matrix)}
    grads = 1.0 + 2.0 * _f64(n_tune)
    info = {"fde": grads, "grad_evals": grads, "tuning_integrator_steps": _f64(n_tune), **summary}
    return state, params, info


def nan_like(tree):
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda x: jnp.full_like(x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.inexact) else x, tree)


def poison_if(bad: jax.Array, state):
    """Return `state` with every float leaf NaN where `bad` (a scalar bool) holds."""
    import jax
    import jax.numpy as jnp

    poisoned = nan_like(state)
    return jax.tree_util.tree_map(lambda p, x: jnp.where(bad, p, x), poisoned, state)


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    import blackjax
    import jax.numpy as jnp

    from llc.samplers.base import Sampler

    w_star = posterior.w_star
    dtype = w_star.dtype
    energy_var = cfg.desired_energy_var
    logdensity = posterior.logdensity
    kernel = blackjax.mcmc.mclmc.build_kernel(desired_energy_var=energy_var)

    def init(position: jax.Array) -> jax.Array:
        return position  # BlackJAX's init needs a key (random unit momentum): done in `warmup`

    def warmup(key, position, num_steps: int):
        with blackjax_precision(dtype):
            state, params, k_tune = initial_state(blackjax.mcmc.mclmc.init, position, logdensity, key, cfg.step_size, 4.0)
            n_tune = 0
            if num_steps > 0:
                n_tune = tuning_integrator_steps(num_steps)
                state, params, _ = blackjax.mclmc_find_L_and_step_size(
                    mclmc_kernel=kernel, num_steps=num_steps, state=state, rng_key=k_tune, logdensity_fn=logdensity,
                    **tune_fractions(TUNE_FRACTION, TUNE_FRACTION), desired_energy_var=energy_var, diagonal_preconditioning=True,
                    params=params,
                )
        return tuned(state, params, n_tune, dtype)

    def step(key, state, params: MCLMCAdaptationState):
        with blackjax_precision(dtype):
            new, info = kernel(key, state, logdensity, params.inverse_mass_matrix, params.L, params.step_size)
            diverging = jnp.logical_not(info.nonans) | (jnp.abs(info.energy_change) > DIVERGENCE_THRESHOLD)
            new = poison_if(diverging, new)
            record = {
                "loss": posterior.loss_from_logdensity(new.position, new.logdensity),
                "energy_change": jnp.where(info.nonans, info.energy_change, jnp.nan),
                "diverging": diverging,
            }
        two = _f64(GRADS_PER_STEP)
        return new, {**record, "fde": two, "grad_evals": two}

    return Sampler(init=init, warmup=warmup, step=step, position=lambda state: state.position,
                   step_work={"fde": GRADS_PER_STEP, "grad_evals": GRADS_PER_STEP})


SPEC = SamplerSpec(
    name="mclmc",
    summary="microcanonical Langevin Monte Carlo, unadjusted (BlackJAX's tuning of L and step size)",
    params=MCLMCParams,
    build=build,
    minibatch=False,
    rel_tol=0.05,
    presets={
        "quick": {"step_size": 1e-2, "steps": 4000, "warmup": 1000},
        "full": {"step_size": 1e-3, "steps": 8000, "warmup": 2000},
    },
)
