"""The compiled part of `llc calibrate`: warm-up, relaxation, cool-down and the vmapped grid of short runs."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from llc.calibrate.settings import Settings
from llc.errors import LLCError

if TYPE_CHECKING:
    from llc.config import Config
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler
    from llc.samplers.spec import StepControl

ProgressFn = Callable[..., None]  # (phase, done, total, note="")

RELAX_FACTOR = 4.0  # relaxation step / h0: the warm-up factor docs/samplers.md shows stable for both SG samplers
RELAX_TIMES = 2.0  # relaxation phase length, in relaxation times 1/(RELAX_FACTOR·h0·γ) of the softest direction
N_PROJECTIONS = 4  # random projections θ of w - w*, as in run directories
CHUNKS = 10  # progress updates per phase


def relax_steps(h0: float, gamma: float, settings: Settings) -> tuple[int, str | None]:
    """Length of the relaxation phase at RELAX_FACTOR·h0, and a note when it is capped."""
    if settings.relax_steps is not None:
        return settings.relax_steps, None
    if gamma <= 0:
        return settings.max_relax_steps, "gamma = 0: no relaxation time; relaxed for the cap, max_relax_steps"
    wanted = math.ceil(RELAX_TIMES / (RELAX_FACTOR * h0 * gamma))
    if wanted > settings.max_relax_steps:
        return settings.max_relax_steps, (f"relaxation capped at {settings.max_relax_steps} steps "
                                          f"({wanted} wanted): small steps may read low")
    return wanted, None


def mala_acceptance(posterior: Posterior, w, h, metric, key):
    """Metropolis-Hastings acceptance probability of one Langevin proposal from w (docs/calibrate.md).

    Proposal w' = w + h G ∇log p(w) + sqrt(2hG) ξ; acceptance min(1, p(w') q(w|w') / (p(w) q(w'|w))) with
    log p(v) = -nβ L_B(v) - γ/2 |v - w*|² on one fresh minibatch B, used at both w and w' (so minibatch
    noise does not enter the ratio; on data-free targets L_B = L_n and this is exactly MALA).
    """
    import jax
    import jax.numpy as jnp

    k_batch, k_noise = jax.random.split(key)
    dtype = w.dtype
    h = jnp.asarray(h).astype(dtype)
    metric = jnp.broadcast_to(jnp.asarray(metric).astype(dtype), w.shape)

    def logp(v):
        diff = v - posterior.w_star
        return -posterior.nbeta * posterior.batch_loss(v, k_batch) - 0.5 * posterior.gamma * jnp.vdot(diff, diff)

    lp, grad = jax.value_and_grad(logp)(w)
    xi = jax.random.normal(k_noise, w.shape, dtype)
    w_new = w + h * metric * grad + jnp.sqrt(2 * h * metric) * xi
    lp_new, grad_new = jax.value_and_grad(logp)(w_new)
    back = w - w_new - h * metric * grad_new
    log_q_forward = -0.5 * jnp.vdot(xi, xi)  # |w' - w - hGg|²_{(2hG)⁻¹} / 2 with w' - w - hGg = sqrt(2hG) ξ
    log_q_backward = -jnp.sum(back * back / metric) / (4 * h)
    log_ratio = lp_new - lp + log_q_backward - log_q_forward
    return jnp.where(jnp.isfinite(log_ratio), jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)


def run_grid(sampler: Sampler, control: StepControl, posterior: Posterior, cfg: Config, settings: Settings,
              key, report: ProgressFn) -> dict[str, Any]:
    """Warm up, relax, and run every grid point; host arrays (G, C, D) of loss, acceptance and θ."""
    import jax
    import jax.numpy as jnp

    from llc.samplers.base import chain_starts

    s = cfg.sampler
    n_chains = settings.chains
    k_init, k_warm, k_relax, k_cool, k_burn, k_sample, k_accept, k_proj = jax.random.split(key, 8)
    w_star = posterior.w_star
    dim, dtype = w_star.shape[0], w_star.dtype
    projections = (jax.random.normal(k_proj, (N_PROJECTIONS, dim), dtype) / jnp.sqrt(dim)).astype(dtype)
    states = jax.vmap(sampler.init)(chain_starts(w_star, n_chains, s.init_jitter, k_init))
    notes: list[str] = []

    n_warm = s.warmup if settings.warmup is None else settings.warmup
    report("warmup", 0, n_warm)
    warm = jax.jit(jax.vmap(lambda k, st: sampler.warmup(k, st, n_warm)))
    states, params, _ = warm(jax.random.split(k_warm, n_chains), states)
    h_chain, _ = jax.vmap(control.langevin)(params)
    h0 = float(jnp.mean(h_chain))
    default_size = float(jnp.mean(jax.vmap(control.step_size)(params)))
    if not (math.isfinite(h0) and h0 > 0):
        raise LLCError(f"the sampler's default step is {h0!r} after warm-up; set sampler.step_size to calibrate around")
    report("warmup", n_warm, n_warm)

    def step_chains(states, params, key):
        return jax.vmap(sampler.step)(jax.random.split(key, n_chains), states, params)[0]

    def run_steps(step_fn, states, params, key, start, length):
        def body(i, st):
            return step_fn(st, params, jax.random.fold_in(key, start + i))
        return jax.lax.fori_loop(jnp.uint32(0), jnp.asarray(length, jnp.uint32), body, states)

    def with_size(params, size):
        return jax.vmap(lambda p: control.with_step_size(p, size, s))(params)

    n_relax, note = relax_steps(h0, posterior.gamma, settings)
    if note:
        notes.append(note)

    @jax.jit
    def relax(states, params, start, length):
        return run_steps(step_chains, states, params, k_relax, start, length)

    def relax_at(chain_params):
        return lambda st, start, length: relax(st, chain_params, jnp.uint32(start), jnp.uint32(length))

    fast = with_size(params, control.step_size_for(RELAX_FACTOR * h0, s))
    relaxed = _chunked("relax", n_relax, report, states, relax_at(fast))
    if not _all_finite(jax.vmap(sampler.position)(relaxed)):
        # The relaxation step was unstable (a large step_scale): relax at the default step instead.
        notes.append(f"relaxation at {RELAX_FACTOR:g}x the default step diverged; relaxed at the default step")
        relaxed = _chunked("relax", n_relax, report, states, relax_at(params))
    states = relaxed

    factors = settings.factors()
    sizes = np.array([_round(control.step_size_for(f * h0, s)) for f in factors])
    # Cool down geometrically from the relaxation step to the smallest grid step: every direction leaves
    # the schedule near its equilibrium at the smallest step (excess variance ~3/cool_steps, whatever its
    # curvature), so small steps do not read the relaxation step's heat; larger steps warm up in burn-in.
    schedule = np.array([control.step_size_for(h, s) for h in
                         np.geomspace(RELAX_FACTOR * h0, factors[0] * h0, settings.cool_steps)])

    @jax.jit
    def cool(states, sizes, start):
        def body(st, x):
            i, size = x
            return step_chains(st, with_size(params, size), jax.random.fold_in(k_cool, start + i)), None
        return jax.lax.scan(body, states, (jnp.arange(sizes.shape[0], dtype=jnp.uint32), sizes))[0]

    states = _chunked("cool-down", settings.cool_steps, report, states, lambda st, start, length: cool(
        st, jnp.asarray(schedule[start:start + length], jnp.float64), jnp.uint32(start)))
    group = min(settings.group or len(sizes), len(sizes))
    n_draws = settings.steps // settings.thinning

    def step_grid(states, params, key):  # common random numbers: one key for every grid point
        return jax.vmap(step_chains, in_axes=(0, 0, None))(states, params, key)

    def record(states, params, key):
        pos = jax.vmap(jax.vmap(sampler.position))(states)
        h, metric = jax.vmap(jax.vmap(control.langevin))(params)
        keys = jax.random.split(key, n_chains)
        accept = jax.vmap(jax.vmap(lambda w, hh, g, k: mala_acceptance(posterior, w, hh, g, k)),
                          in_axes=(0, 0, 0, None))(pos, h, metric, keys)
        return {"loss": jax.vmap(jax.vmap(posterior.full_loss))(pos), "theta": (pos - w_star) @ projections.T,
                "accept": accept, "finite": jnp.all(jnp.isfinite(pos), axis=-1)}

    @jax.jit
    def burn(states, params, start, length):
        return run_steps(step_grid, states, params, k_burn, start, length)

    @functools.partial(jax.jit, static_argnums=3)
    def measure(states, params, start, size):
        def one_draw(st, d):
            draw = start + d
            st = run_steps(step_grid, st, params, k_sample, draw * settings.thinning, settings.thinning)
            return st, record(st, params, jax.random.fold_in(k_accept, draw))
        return jax.lax.scan(one_draw, states, jnp.arange(size, dtype=jnp.uint32))

    pieces: list[dict[str, np.ndarray]] = []
    for lo in range(0, len(sizes), group):
        chunk_sizes = sizes[lo:lo + group]
        padded = np.concatenate([chunk_sizes, np.repeat(chunk_sizes[-1:], group - len(chunk_sizes))])
        grid_params = jax.vmap(lambda size: with_size(params, size))(jnp.asarray(padded, jnp.float64))
        grid_states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (group, *x.shape)), states)
        label = "grid" if group == len(sizes) else f"grid {lo // group + 1}/{math.ceil(len(sizes) / group)}"
        grid_states = _chunked(f"{label} burn-in", settings.burn_in, report, grid_states,
                               lambda st, start, length, p=grid_params: burn(st, p, jnp.uint32(start),
                                                                             jnp.uint32(length)))
        records = _measure_chunks(label, n_draws, report, grid_states,
                                  lambda st, start, size, p=grid_params: measure(st, p, jnp.uint32(start), size))
        pieces.append({k: v[:, : len(chunk_sizes)] for k, v in records.items()})
    traces = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}  # (D, G, C, ...)
    traces = {k: np.moveaxis(v, 0, 2) for k, v in traces.items()}  # (G, C, D, ...)
    # every chain has the same step at a grid point; chain 0's Langevin step is the point's
    h_points = [float(jax.vmap(control.langevin)(with_size(params, size))[0][0]) for size in sizes]
    return {"sizes": sizes, "factors": factors, "langevin": np.array(h_points), "default_step_size": default_size,
            "default_langevin_step": h0, "relax_steps": n_relax, "notes": notes, **traces}


def _chunked(phase: str, total: int, report: ProgressFn, states, run: Callable[[Any, int, int], Any]):
    """Run `total` steps in about CHUNKS calls of `run(states, start, length)`, reporting progress."""
    import jax

    if total <= 0:
        return states
    size = max(1, math.ceil(total / CHUNKS))
    done = 0
    report(phase, 0, total)
    while done < total:
        length = min(size, total - done)
        states = run(states, done, length)
        jax.block_until_ready(states)
        done += length
        report(phase, done, total)
    return states


def _measure_chunks(label: str, n_draws: int, report: ProgressFn, states, run) -> dict[str, np.ndarray]:
    """Recorded draws in at most CHUNKS calls of equal size (one compiled shape) plus a remainder."""
    import jax

    size = max(1, math.ceil(n_draws / CHUNKS))
    out: list[dict[str, np.ndarray]] = []
    done = 0
    report(label, 0, n_draws)
    while done < n_draws:
        length = min(size, n_draws - done)
        states, records = run(states, done, length)
        out.append(jax.device_get(records))
        done += length
        report(label, done, n_draws)
    return {k: np.concatenate([np.asarray(o[k]) for o in out]) for k in out[0]}


def _all_finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x))))


def _round(value: float, digits: int = 4) -> float:
    """A step size with `digits` significant digits: the grid uses exactly the values it reports."""
    return float(f"{value:.{digits - 1}e}")
