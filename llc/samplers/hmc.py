"""HMC with BlackJAX's Stan-style window adaptation (notes §4); shared with NUTS.

Per chain (the driver vmaps `warmup` over chains), `blackjax.window_adaptation`
adapts the step size (dual averaging towards `target_accept`) and a diagonal
inverse mass matrix; sampling starts from the adapted state with the adapted
step size and mass matrix. The target is the full-data posterior
`posterior.logdensity`, so every gradient is a full-data gradient (FDE = grads).

Coordinates. BlackJAX regularises every adapted diagonal inverse mass matrix
towards the *absolute* value 1e-3 (Stan's `(n/(n+5)) var + 1e-3 * 5/(n+5)`).
Localized posteriors have variances of 1e-8..1e-2, so in the raw parameters
that constant would swamp the estimate. The chains therefore run in the
standardised coordinates

    u = (w - w*) / s,   s = 1 / sqrt(nβ + γ)

(the posterior std of a direction of unit loss curvature). This is an exact,
linear change of variables: HMC on u with inverse mass matrix M_u and step size
ε is the same algorithm as HMC on w with M_w = s² M_u and the same ε, and the
Jacobian is a constant. Step sizes and mass matrices are reported in w units
(`inverse_mass_matrix` ~ posterior variances of w), and `sampler.step_size` is
the initial leapfrog step in w units with the identity mass matrix.

HMC sampling jitters the step size by ±20% per transition (HMC_STEP_JITTER); see
docs/samplers.md for why.

Cost (measured, docs/blackjax.md): warm-up gradients = 1 (the initial
`value_and_grad`) + Σ num_integration_steps over the adaptation steps; each
sampling step costs `info.num_integration_steps` gradients (L for HMC). The
loss is recovered from the state's log-density (no extra data pass).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llc.fields import opt
from llc.samplers.spec import SamplerSpec

if TYPE_CHECKING:
    import jax

    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler

# JAX and BlackJAX are imported inside the functions that use them: llc.config reads the SPECs of
# this module and of nuts, mclmc and mclmc_adjusted (which import from it) without them.

TARGET_ACCEPT_HELP = "target acceptance rate for step-size adaptation."


@dataclass(frozen=True)
class NUTSParams:
    target_accept: float = opt(0.8, TARGET_ACCEPT_HELP, gt=0, max=1)


@dataclass(frozen=True)
class NUTSOnlyParams(NUTSParams):
    max_tree_depth: int = opt(
        10, "most trajectory doublings per draw (at most 2^depth - 1 leapfrog steps; Stan's default 10). "
        "Truncating keeps detailed balance and bounds the cost of each draw, warm-up included.", gt=0, max=15)


@dataclass(frozen=True)
class HMCParams(NUTSParams):
    num_integration_steps: int = opt(20, "integration steps per draw.", gt=0)

# HMC only: each sampling transition uses step size ε·U(1 - J, 1 + J) around the adapted ε (Neal
# 2011, §5.4.4). With a fixed number of leapfrog steps and a fixed ε, near-Gaussian directions whose
# trajectory angle ω·L·ε sits near a multiple of π barely change their energy from one draw to the
# next, and the loss trace (hence λ̂) mixes erratically. The jitter keeps detailed balance (it is
# drawn independently of the state) and leaves the cost at exactly L gradients per draw.
HMC_STEP_JITTER = 0.2


def coordinate_scale(posterior: Posterior) -> float:
    """s = 1/sqrt(nβ + γ): the standardised coordinates are u = (w - w*)/s."""
    return 1.0 / math.sqrt(posterior.nbeta + posterior.gamma)


def _f64(x) -> jax.Array:
    import jax.numpy as jnp

    return jnp.asarray(x, jnp.float64)


def blackjax_precision(dtype) -> contextlib.AbstractContextManager:
    """Context in which BlackJAX code is traced at the chain's precision.

    `llc` enables x64 process-wide, but BlackJAX 1.7.1 is only float32-safe with x64 *off*:
    its NUTS proposals, dual averaging and Welford state mix Python/NumPy float64 constants
    into float32 carries and fail on mismatched scan/cond types. For float32 chains the
    BlackJAX calls are therefore traced under `jax.enable_x64(False)`, so every log-density,
    gradient, integrator step and adaptation update runs in float32, as BlackJAX intends.
    Work counts (float64) are computed outside this context.
    """
    import jax
    import jax.numpy as jnp

    return jax.enable_x64(False) if jnp.dtype(dtype) == jnp.float32 else contextlib.nullcontext()


def mass_matrix_summary(imm: jax.Array) -> dict[str, jax.Array]:
    import jax.numpy as jnp

    return {
        "inverse_mass_matrix_min": jnp.min(imm),
        "inverse_mass_matrix_max": jnp.max(imm),
        "inverse_mass_matrix_mean": jnp.mean(imm),
    }


def window_warmup(algorithm, logdensity_u, key, u, num_steps: int, cfg: SamplerConfig, s: float, extra: dict):
    """Stan-style window adaptation of step size and diagonal mass matrix, in standardised coordinates u."""
    import blackjax
    import jax.numpy as jnp
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    dtype, dim = u.dtype, u.shape[0]
    # Initial metric = identity in w units, i.e. 1/s² in u units; so the initial
    # step size means the same as an HMC step on w with the identity metric.
    with blackjax_precision(dtype):
        imm0 = jnp.full((dim,), 1.0 / s**2, dtype)
        step0 = jnp.asarray(cfg.step_size, dtype)
        if num_steps == 0:
            state = algorithm.init(u, logdensity_u)
            step_size, imm = step0, imm0
            n_steps = jnp.zeros((0,), jnp.int32)
            accept = jnp.full((), jnp.nan, dtype)
        else:
            adaptation = blackjax.window_adaptation(
                algorithm,
                logdensity_u,
                is_mass_matrix_diagonal=True,
                initial_inverse_mass_matrix=imm0,
                initial_step_size=step0,
                target_acceptance_rate=cfg.target_accept,
                adaptation_info_fn=get_filter_adapt_info_fn(info_keys={"num_integration_steps", "acceptance_rate"}),
                **extra,
            )
            (state, params), info = adaptation.run(key, u, num_steps=num_steps)
            step_size = params["step_size"].astype(dtype)
            imm = params["inverse_mass_matrix"].astype(dtype)
            n_steps = info.info.num_integration_steps
            accept = jnp.mean(info.info.acceptance_rate)
        imm_w = imm * jnp.asarray(s**2, dtype)
        summary = {"step_size": step_size, "warmup_acceptance_rate": accept, **mass_matrix_summary(imm_w)}
    grads = 1.0 + jnp.sum(n_steps.astype(jnp.float64))  # BlackJAX's initial value_and_grad + the steps
    warm_info = {"fde": grads, "grad_evals": grads, **summary}
    return state, {"step_size": step_size, "inverse_mass_matrix": imm}, warm_info


def build_window_adapted(posterior: Posterior, cfg: SamplerConfig, kind: str) -> Sampler:
    """HMC (`kind="hmc"`, fixed L = num_integration_steps) or NUTS (`kind="nuts"`)."""
    import blackjax
    import jax
    import jax.numpy as jnp

    from llc.samplers.base import Sampler

    w_star = posterior.w_star
    dtype = w_star.dtype
    s = coordinate_scale(posterior)
    if kind == "hmc":
        algorithm = blackjax.hmc
        n_leapfrog = int(cfg.num_integration_steps)
        extra = {"num_integration_steps": n_leapfrog}
        kernel = blackjax.hmc.build_kernel()
    else:
        algorithm = blackjax.nuts
        extra = {"max_num_doublings": int(cfg.max_tree_depth)}
        kernel = blackjax.nuts.build_kernel()

    def to_w(u: jax.Array) -> jax.Array:
        return w_star + jnp.asarray(s, dtype) * u

    def logdensity_u(u: jax.Array) -> jax.Array:
        return posterior.logdensity(to_w(u))

    def init(position: jax.Array) -> jax.Array:
        # Only a change of variables; BlackJAX's own init (1 gradient) runs in `warmup`.
        return ((position - w_star) / jnp.asarray(s, dtype)).astype(dtype)

    def warmup(key, u, num_steps: int):
        return window_warmup(algorithm, logdensity_u, key, u, num_steps, cfg, s, extra)

    def step(key, state, params):
        with blackjax_precision(dtype):
            if kind == "hmc":
                k_jitter, key = jax.random.split(key)
                jitter = jax.random.uniform(k_jitter, (), dtype, 1.0 - HMC_STEP_JITTER, 1.0 + HMC_STEP_JITTER)
                new, info = kernel(key, state, logdensity_u, params["step_size"] * jitter,
                                   params["inverse_mass_matrix"], n_leapfrog)
            else:
                new, info = kernel(key, state, logdensity_u, params["step_size"], params["inverse_mass_matrix"],
                                   extra["max_num_doublings"])
            record = {
                "loss": posterior.loss_from_logdensity(to_w(new.position), new.logdensity),
                "acceptance_rate": info.acceptance_rate,
                "diverging": info.is_divergent,
            }
            if kind == "nuts":
                record["num_integration_steps"] = info.num_integration_steps
                record["tree_depth"] = info.num_trajectory_expansions
                record["energy"] = info.energy
        n_grads = _f64(info.num_integration_steps)
        return new, {**record, "fde": n_grads, "grad_evals": n_grads}

    return Sampler(init=init, warmup=warmup, step=step, position=lambda state: to_w(state.position))


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    return build_window_adapted(posterior, cfg, "hmc")


SPEC = SamplerSpec(
    name="hmc",
    summary="Hamiltonian Monte Carlo with Stan-style window adaptation (step size, diagonal mass matrix)",
    params=HMCParams,
    build=build,
    minibatch=False,
    rel_tol=0.05,
    presets={
        "quick": {"step_size": 1e-3, "steps": 500, "warmup": 300},
        "full": {"step_size": 1e-4, "steps": 1000, "warmup": 1000, "num_integration_steps": 40},
    },
)
