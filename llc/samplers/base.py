"""One shape for every sampler, and the driver that runs any of them over many chains.

A sampler is a `Sampler`: per-chain `init`, `warmup` (adaptation/burn-in, run
for all chains at once with `jax.vmap`) and `step`. Each `step` reports the
loss to record and the work it did (FDE and gradient evaluations), so cost
accounting is done by the code path itself, once, for every sampler.

The driver compiles one warm-up function and one chunk function ahead of time
(so compile time is measured apart from run time), then runs the chunks from
a short Python loop that only reports progress; all steps run inside
`lax.scan`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.posterior import Posterior

StepInfo = dict[str, jax.Array]  # must hold "loss", "fde", "grad_evals"; other keys are diagnostics


class Sampler(NamedTuple):
    """Per-chain functions; the driver vmaps them over chains.

    init(position) -> state
    warmup(key, state, num_steps) -> (state, params, info)   info holds "fde", "grad_evals" and any
                                                               adapted quantities (step_size, L, ...)
    step(key, state, params) -> (state, StepInfo)
    position(state) -> flat parameter vector
    """

    init: Callable[[jax.Array], Any]
    warmup: Callable[[jax.Array, Any, int], tuple[Any, Any, dict[str, jax.Array]]]
    step: Callable[[jax.Array, Any, Any], tuple[Any, StepInfo]]
    position: Callable[[Any], jax.Array]


WORK_KEYS = ("fde", "grad_evals")
N_PROJECTIONS = 4


@dataclass
class ChainRun:
    """Everything a sampling run produced, as host numpy arrays (chains first)."""

    loss: np.ndarray  # (C, D) recorded loss at kept draws
    theta: np.ndarray  # (C, D, N_PROJECTIONS) random projections of w - w*
    diagnostics: dict[str, np.ndarray]  # (C, D) per-draw sampler diagnostics
    warmup_info: dict[str, np.ndarray]  # (C, ...) adapted quantities per chain
    fde_warmup: float
    fde_sampling: float
    grad_evals_warmup: float
    grad_evals_sampling: float
    compile_s: float
    warmup_s: float
    sampling_s: float
    loss_trace: str


def _chunk_size(n_draws: int, target_chunks: int = 50) -> int:
    """Largest divisor of n_draws not above n_draws / target_chunks (at least 1)."""
    goal = max(1, n_draws // target_chunks)
    for size in range(goal, 0, -1):
        if n_draws % size == 0 and size * 4 >= goal:
            return size
    return goal


def run_chains(
    sampler: Sampler,
    posterior: Posterior,
    cfg: SamplerConfig,
    key: jax.Array,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ChainRun:
    """Warm up and sample `cfg.chains` chains from w* (+ optional jitter); discard warm-up."""
    report = on_progress or (lambda phase, done, total: None)
    n_draws = cfg.steps // cfg.thinning
    k_init, k_warm, k_sample, k_proj = jax.random.split(key, 4)
    w_star = posterior.w_star
    dim = w_star.shape[0]
    projections = (jax.random.normal(k_proj, (N_PROJECTIONS, dim), w_star.dtype) / jnp.sqrt(dim)).astype(w_star.dtype)

    jitter = cfg.init_jitter * jax.random.normal(k_init, (cfg.chains, dim), w_star.dtype)
    states = jax.vmap(sampler.init)(w_star[None, :] + jitter.astype(w_star.dtype))

    def warmup_all(keys, states):
        return jax.vmap(lambda k, s: sampler.warmup(k, s, cfg.warmup))(keys, states)

    warm_keys = jax.random.split(k_warm, cfg.chains)
    t0 = time.perf_counter()
    warm_fn = jax.jit(warmup_all).lower(warm_keys, states).compile()
    compile_s = time.perf_counter() - t0

    report("warmup", 0, cfg.warmup)
    t0 = time.perf_counter()
    states, params, warm_info = warm_fn(warm_keys, states)
    jax.block_until_ready(states)
    warmup_s = time.perf_counter() - t0
    report("warmup", cfg.warmup, cfg.warmup)

    chunk = _chunk_fn(sampler, posterior, cfg, k_sample, projections)
    size = _chunk_size(n_draws)
    n_chunks, remainder = divmod(n_draws, size)
    lengths = [size] * n_chunks + ([remainder] if remainder else [])
    t0 = time.perf_counter()
    compiled = {
        length: jax.jit(chunk, static_argnums=3).lower(states, params, jnp.asarray(0, jnp.uint32), length).compile()
        for length in {size, remainder} - {0}
    }
    compile_s += time.perf_counter() - t0

    t0 = time.perf_counter()
    pieces = _sample_chunks(compiled, lengths, states, params, lambda done: report(
        "sampling", done * cfg.thinning, n_draws * cfg.thinning))
    sampling_s = time.perf_counter() - t0

    # (D, C, ...) -> (C, D, ...)
    traces = {k: np.swapaxes(np.concatenate([p[k] for p in pieces]), 0, 1) for k in pieces[0]}
    warm_info = jax.device_get(warm_info)
    return ChainRun(
        loss=traces.pop("loss"),
        theta=traces.pop("theta"),
        fde_sampling=float(traces.pop("fde").sum()),
        grad_evals_sampling=float(traces.pop("grad_evals").sum()),
        diagnostics=traces,
        warmup_info={k: np.asarray(v) for k, v in warm_info.items() if k not in WORK_KEYS},
        fde_warmup=float(np.sum(warm_info["fde"])),
        grad_evals_warmup=float(np.sum(warm_info["grad_evals"])),
        compile_s=compile_s,
        warmup_s=warmup_s,
        sampling_s=sampling_s,
        loss_trace=cfg.loss_trace or "full",
    )


def _chunk_fn(
    sampler: Sampler, posterior: Posterior, cfg: SamplerConfig, k_sample: jax.Array, projections: jax.Array
) -> Callable[[Any, Any, jax.Array, int], tuple[Any, dict[str, jax.Array]]]:
    """`chunk(states, params, index, size)`: `size` kept draws of `thinning` steps each, for all chains."""
    n_chains, thinning = cfg.chains, cfg.thinning
    record_full = cfg.loss_trace == "full"
    w_star = posterior.w_star

    def one_draw(carry, keys):
        states, params = carry

        def one_step(states, step_keys):
            return jax.vmap(sampler.step)(step_keys, states, params)

        states, infos = jax.lax.scan(one_step, states, keys)  # keys: (thinning, C, 2)
        last = jax.tree_util.tree_map(lambda a: a[-1], infos)
        record = {k: v for k, v in last.items() if k not in WORK_KEYS}
        record.update({k: infos[k].sum(axis=0) for k in WORK_KEYS})
        pos = jax.vmap(sampler.position)(states)
        if record_full:
            record["loss"] = jax.vmap(posterior.full_loss)(pos)
            record["fde"] = record["fde"] + 1.0  # one full-data loss evaluation per kept draw
        record["theta"] = (pos - w_star) @ projections.T
        return (states, params), record

    def chunk(states, params, index, size):
        # The chunk key is derived inside the compiled function: no host-side dispatch per chunk.
        key = jax.random.fold_in(k_sample, index)
        keys = jax.random.split(key, size * thinning * n_chains).reshape(size, thinning, n_chains, -1)
        (states, _), records = jax.lax.scan(one_draw, (states, params), keys)
        return states, records

    return chunk


def _sample_chunks(
    compiled: dict[int, Any], lengths: list[int], states: Any, params: Any, on_done: Callable[[int], None]
) -> list[dict[str, np.ndarray]]:
    """Run the compiled chunks in order; return their records as host arrays.

    Pipelined: chunk i+1 is dispatched before chunk i's records are copied to the host,
    so the accelerator never waits for the host between chunks.
    """
    pieces: list[dict[str, np.ndarray]] = []
    done = 0
    pending = None
    for i, length in enumerate(lengths):
        states, records = compiled[length](states, params, jnp.asarray(i, jnp.uint32))
        if pending is not None:
            pieces.append(jax.device_get(pending[0]))
            done += pending[1]
            on_done(done)
        pending = (records, length)
    pieces.append(jax.device_get(pending[0]))
    on_done(done + pending[1])
    return pieces


FAST_WARMUP_FRACTION = 0.75


def scan_warmup_two_speed(
    step: Callable[[jax.Array, Any, Any], tuple[Any, StepInfo]], key: jax.Array, state: Any,
    fast_params: Any, params: Any, num_steps: int,
) -> tuple[Any, dict[str, jax.Array]]:
    """Burn-in whose first three quarters use `fast_params` (a larger step), the rest `params`.

    The fast part moves the chains along the flat, γ-confined directions sooner; the slow part lets the
    stiff directions settle into the sampling step's own stationary state before draws are kept.
    """
    n_fast = int(num_steps * FAST_WARMUP_FRACTION)
    k_fast, k_rest = jax.random.split(key)
    state, fast = scan_warmup(step, k_fast, state, fast_params, n_fast)
    state, rest = scan_warmup(step, k_rest, state, params, num_steps - n_fast)
    return state, {k: fast[k] + rest[k] for k in WORK_KEYS}


def scan_warmup(
    step: Callable[[jax.Array, Any, Any], tuple[Any, StepInfo]], key: jax.Array, state: Any, params: Any, num_steps: int
) -> tuple[Any, dict[str, jax.Array]]:
    """Run `num_steps` steps with fixed params (burn-in); return the state and summed work."""
    if num_steps == 0:
        zero = jnp.zeros((), jnp.float64)
        return state, {"fde": zero, "grad_evals": zero}

    def body(state, k):
        state, info = step(k, state, params)
        return state, {k2: info[k2] for k2 in WORK_KEYS}

    state, work = jax.lax.scan(body, state, jax.random.split(key, num_steps))
    return state, {k: v.sum() for k, v in work.items()}
