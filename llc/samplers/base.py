"""One shape for every sampler, and the driver that runs any of them over many chains.

A sampler is a `Sampler`: per-chain `init`, `warmup` (adaptation/burn-in, run
for all chains at once with `jax.vmap`) and `step`. Each `step` reports the
loss to record and the work it did (FDE and gradient evaluations), so cost
accounting is done by the code path itself, once, for every sampler.

The driver compiles one warm-up function and one chunk function ahead of time
(so compile time is measured apart from run time), then runs the chunks from
a short Python loop; all steps run inside `lax.scan`. Two schedules:

- fixed (`sampler.stop: fixed`): exactly `steps` steps, `steps // thinning` kept draws;
- until converged (`sampler.stop: converged`): chunks of draws until a `StopRule` (llc.stopping) passes on
  the draws kept so far or the budget (`max_steps`, `max_fde`) would be exceeded by the next chunk. Stored
  draws are bounded: whenever they pass `max_draws` per chain, every other one is dropped and the thinning
  doubles, so the kept draws stay equally spaced in steps.

Step k (counted from the first sampling step) uses the key `fold_in(k_sample, k)`, so the draws do not
depend on how the steps are cut into chunks: a converged run that stopped after N steps has exactly the
draws of a fixed run of N steps at the same thinning.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    step_work: the work of every step ({"fde": ..., "grad_evals": ...} per chain) when it is the same for
               every step (SG samplers, MCLMC); the driver then multiplies instead of carrying the step's
               work arrays through the compiled loop. None (NUTS, HMC's variable trajectories): summed.
    """

    init: Callable[[jax.Array], Any]
    warmup: Callable[[jax.Array, Any, int], tuple[Any, Any, dict[str, jax.Array]]]
    step: Callable[[jax.Array, Any, Any], tuple[Any, StepInfo]]
    position: Callable[[Any], jax.Array]
    step_work: dict[str, float] | None = None


WORK_KEYS = ("fde", "grad_evals")
N_PROJECTIONS = 4
CHUNKS_PER_STORE = 8  # until converged: a chunk is max_draws / 8 draws, so the rule is checked often


@dataclass(frozen=True)
class StopCheck:
    """A stop rule's verdict on the draws kept so far: `done` stops sampling; `note` is progress text."""

    done: bool
    note: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)


StopRule = Callable[[np.ndarray, np.ndarray], StopCheck]  # (loss (C, D), theta (C, D, K)) -> verdict
ProgressFn = Callable[..., None]  # (phase, done, total, note="")


@dataclass
class ChainRun:
    """Everything a sampling run produced, as host numpy arrays (chains first)."""

    loss: np.ndarray  # (C, D) recorded loss at kept draws
    theta: np.ndarray  # (C, Dθ, N_PROJECTIONS) random projections of w - w*
    dist2: np.ndarray  # (C, Dθ) ||w - w*||² (did the chains stay local?)
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
    steps: int = 0  # sampling steps per chain actually run
    thinning: int = 1  # steps between the kept draws (after any doubling)
    stop_reason: str = "fixed"  # fixed | converged | budget | diverged | left_basin
    n_checks: int = 0  # how often the stop rule was evaluated
    stop_diagnostics: dict[str, Any] = field(default_factory=dict)  # the rule's last verdict
    params: Any = None  # the adapted per-chain sampler params (device arrays), for the spec's StepControl
    # (Dθ,) the kept draws (indices into `loss`) that have θ and dist2; None: every kept draw (theta_every 1)
    theta_draws: np.ndarray | None = None


def chain_starts(w_star: jax.Array, n_chains: int, init_jitter: float, key: jax.Array) -> jax.Array:
    """(n_chains, d) starting points: w* plus N(0, init_jitter²) per coordinate.

    Without jitter (the default) no random numbers are drawn: w* + 0·ξ is w* itself, and generating ξ
    would compile one more program per job (docs/benchmarks.md §5b).
    """
    if init_jitter == 0:
        return jnp.broadcast_to(w_star, (n_chains, w_star.shape[0]))
    jitter = init_jitter * jax.random.normal(key, (n_chains, w_star.shape[0]), w_star.dtype)
    return w_star[None, :] + jitter.astype(w_star.dtype)


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
    on_progress: ProgressFn | None = None,
    stop_rule: StopRule | None = None,
    min_steps: Callable[[Any, dict[str, np.ndarray]], int] | None = None,
) -> ChainRun:
    """Warm up and sample `cfg.chains` chains from w* (+ optional jitter); discard warm-up.

    With `cfg.stop == "converged"`, `stop_rule` decides after each chunk whether the kept draws suffice;
    it is first asked after `cfg.steps` steps, or after `min_steps(params, warm-up info)` if that is later
    (the SG samplers' relaxation minimum, computed from the adapted step).
    """
    report = on_progress or (lambda *args, **kwargs: None)
    until_converged = cfg.stop == "converged"
    if until_converged and stop_rule is None:
        raise ValueError("sampler.stop=converged needs a stop rule (llc.stopping.stop_rule)")
    k_init, k_warm, k_sample, k_proj = jax.random.split(key, 4)
    w_star = posterior.w_star
    dim = w_star.shape[0]
    projections = (jax.random.normal(k_proj, (N_PROJECTIONS, dim), w_star.dtype) / jnp.sqrt(dim)).astype(w_star.dtype)

    states = jax.vmap(sampler.init)(chain_starts(w_star, cfg.chains, cfg.init_jitter, k_init))

    def warmup_all(keys, states):
        return jax.vmap(lambda k, s: sampler.warmup(k, s, cfg.warmup))(keys, states)

    warm_keys = jax.random.split(k_warm, cfg.chains)
    t0 = time.perf_counter()
    # The chain states are donated to every compiled call (warm-up, chunks): the caller never reuses the
    # old states, so XLA may update them in place instead of holding an old and a new copy of C × d.
    warm_fn = jax.jit(warmup_all, donate_argnums=1).lower(warm_keys, states).compile()
    compile_s = time.perf_counter() - t0

    report("warmup", 0, cfg.warmup)
    t0 = time.perf_counter()
    states, params, warm_info = warm_fn(warm_keys, states)
    jax.block_until_ready(states)
    warmup_s = time.perf_counter() - t0
    report("warmup", cfg.warmup, cfg.warmup)

    warm_info = jax.device_get(warm_info)
    first_check = max(cfg.steps, min_steps(params, warm_info) if min_steps is not None else 0)
    chunk = _chunk_fn(sampler, posterior, cfg, k_sample, projections)

    def compile_chunk(size: int):
        index = jnp.asarray(0, jnp.uint32)
        return jax.jit(chunk, static_argnums=4, donate_argnums=0).lower(states, params, index, index, size).compile()

    work = functools.partial(_work, sampler.step_work, cfg)
    if until_converged:
        sampled = _sample_until(compile_chunk, work, states, params, cfg, stop_rule, report, first_check)
    else:
        sampled = _sample_fixed(compile_chunk, work, states, params, cfg, report)
    compile_s += sampled.pop("compile_s")
    sampling_s = sampled.pop("sampling_s")

    traces = sampled.pop("traces")
    return ChainRun(
        loss=traces.pop("loss"),
        theta=traces.pop("theta"),
        dist2=traces.pop("dist2"),
        diagnostics=traces,
        warmup_info={k: np.asarray(v) for k, v in warm_info.items() if k not in WORK_KEYS},
        fde_warmup=float(np.sum(warm_info["fde"])),
        grad_evals_warmup=float(np.sum(warm_info["grad_evals"])),
        compile_s=compile_s,
        warmup_s=warmup_s,
        sampling_s=sampling_s,
        loss_trace=cfg.loss_trace or "full",
        params=params,
        **sampled,
    )


def _sample_fixed(compile_chunk, work, states, params, cfg: SamplerConfig, report: ProgressFn) -> dict[str, Any]:
    """Exactly cfg.steps steps, in about 50 compiled chunks of whole draws (for progress)."""
    n_draws = cfg.steps // cfg.thinning
    every = cfg.theta_every or 1
    size = every * _chunk_size(n_draws // every)  # whole θ groups per chunk: θ stays equally spaced
    n_chunks, remainder = divmod(n_draws, size)
    lengths = [size] * n_chunks + ([remainder] if remainder else [])
    t0 = time.perf_counter()
    compiled = {length: compile_chunk(length) for length in {size, remainder} - {0}}
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pieces: list[dict[str, np.ndarray]] = []
    done = 0
    pending = None
    thin = jnp.asarray(cfg.thinning, jnp.uint32)
    # Pipelined: chunk i+1 is dispatched before chunk i's records are copied to the host.
    for length in lengths:
        start = jnp.asarray(done * cfg.thinning, jnp.uint32)
        states, records = compiled[length](states, params, start, thin)
        done += length
        if pending is not None:
            pieces.append(jax.device_get(pending[0]))
            report("sampling", pending[1] * cfg.thinning, n_draws * cfg.thinning)
        pending = (records, done)
    pieces.append(jax.device_get(pending[0]))
    report("sampling", n_draws * cfg.thinning, n_draws * cfg.thinning)
    traces = _to_chains_first({k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]})
    totals = work(traces, n_draws * cfg.thinning, n_draws)
    return {"traces": traces, "fde_sampling": totals["fde"], "grad_evals_sampling": totals["grad_evals"],
            "theta_draws": _theta_draws(every, n_draws - n_draws % every, traces["theta"].shape[1]),
            "steps": n_draws * cfg.thinning, "thinning": cfg.thinning, "stop_reason": "fixed",
            "compile_s": compile_s, "sampling_s": time.perf_counter() - t0}


def _sample_until(compile_chunk, work, states, params, cfg: SamplerConfig, rule: StopRule,
                  report: ProgressFn, first_check: int) -> dict[str, Any]:
    """Chunks of `size` draws until `rule` passes (asked from `first_check` ≥ cfg.steps steps on) or the budget
    ends.

    The budget is never exceeded: sampling stops when the next chunk would pass `max_steps` or
    (at the last chunk's cost per step) `max_fde` per chain.
    """
    size = _until_chunk_size(cfg)
    every = cfg.theta_every or 1
    t0 = time.perf_counter()
    compiled = compile_chunk(size)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    thinning, steps = cfg.thinning, 0
    store: dict[str, np.ndarray] | None = None
    totals = dict.fromkeys(WORK_KEYS, 0.0)
    n_checks, reason, check = 0, "budget", StopCheck(done=False)
    max_steps = cfg.max_steps if cfg.max_steps is not None else float("inf")
    max_fde = cfg.max_fde if cfg.max_fde is not None else float("inf")
    while True:
        chunk_steps = size * thinning
        states, records = compiled(states, params, jnp.asarray(steps, jnp.uint32), jnp.asarray(thinning, jnp.uint32))
        piece = _to_chains_first(jax.device_get(records))
        chunk_work = work(piece, chunk_steps, size)
        chunk_fde = chunk_work["fde"]
        for k in WORK_KEYS:
            totals[k] += chunk_work[k]
        steps += chunk_steps
        store = piece if store is None else {k: np.concatenate([store[k], piece[k]], axis=1) for k in store}
        if store["loss"].shape[1] > cfg.max_draws:
            store = _halve(store, every)
            thinning *= 2
        if steps < first_check:
            relaxing = first_check > cfg.steps  # the relaxation minimum, not just the minimum run, holds it back
            check = StopCheck(done=False, note=f"relaxing: first check at {first_check} steps" if relaxing else "")
        else:
            check = rule(store["loss"], store["theta"])
            n_checks += 1
            if check.done:
                reason = check.diagnostics.get("reason", "converged")
                report("sampling", steps, steps, check.note)
                break
        next_steps = size * thinning
        fde_per_step = chunk_fde / cfg.chains / chunk_steps
        if steps + next_steps > max_steps or totals["fde"] / cfg.chains + fde_per_step * next_steps > max_fde:
            if n_checks == 0:  # the budget ended before the first check: the diagnostics, for the record
                check = rule(store["loss"], store["theta"])
                n_checks += 1
            report("sampling", steps, steps, check.note)
            break
        report("sampling", steps, _progress_total(cfg, steps), check.note)
    return {"traces": store, "fde_sampling": totals["fde"], "grad_evals_sampling": totals["grad_evals"],
            "theta_draws": _theta_draws(every, store["loss"].shape[1], store["theta"].shape[1]),
            "steps": steps, "thinning": thinning, "stop_reason": reason, "n_checks": n_checks,
            "stop_diagnostics": dict(check.diagnostics), "compile_s": compile_s,
            "sampling_s": time.perf_counter() - t0}


def _halve(store: dict[str, np.ndarray], every: int) -> dict[str, np.ndarray]:
    """Every other stored draw, so the rest are equally spaced at twice the thinning.

    With θ at every draw: the draws at even multiples of the old thinning (the odd indices). With θ at every
    `every`-th draw: every array keeps its last draw and every second one before it. Every chunk ends on a θ
    draw, so θ then stays at every `every`-th kept draw counted back from the last (`_theta_draws`).
    """
    if every == 1:
        return {k: v[:, 1::2] for k, v in store.items()}
    return {k: v[:, (v.shape[1] - 1) % 2::2] for k, v in store.items()}


def _theta_draws(every: int, n_draws: int, n_theta: int) -> np.ndarray | None:
    """Indices of the kept draws that have θ: every `every`-th one, the last of them at draw `n_draws` - 1."""
    if every == 1:
        return None
    return n_draws - 1 - every * np.arange(n_theta - 1, -1, -1)


def _work(step_work: dict[str, float] | None, cfg: SamplerConfig, records: dict[str, np.ndarray], n_steps: int,
          n_draws: int) -> dict[str, float]:
    """The work (all chains) of `n_steps` steps with `n_draws` kept draws: popped from `records` where the
    chunk summed it, else the sampler's constant per-step work times the steps (plus one full-data loss
    evaluation per kept draw with `loss_trace: full`, as in `_chunk_fn`)."""
    if step_work is None:
        return {k: float(records.pop(k).sum()) for k in WORK_KEYS}
    full_losses = n_draws if cfg.loss_trace == "full" else 0
    return {"fde": cfg.chains * (n_steps * step_work["fde"] + full_losses),
            "grad_evals": cfg.chains * n_steps * step_work["grad_evals"]}


def _until_chunk_size(cfg: SamplerConfig) -> int:
    """Draws per chunk until converged: the minimum run (`steps`) if that is shorter than max_draws / 8,
    so the first check comes as soon as allowed; even, so that halving the store keeps the spacing."""
    size = min(cfg.max_draws // CHUNKS_PER_STORE, -(-cfg.steps // cfg.thinning))
    every = cfg.theta_every or 1
    if every > 1:  # whole pairs of θ groups (halving keeps the groups whole), at least two pairs
        return max(4 * every, 2 * every * -(-size // (2 * every)))
    return max(2, size + size % 2)


def _progress_total(cfg: SamplerConfig, steps: int) -> int:
    """The progress bar's end: the step budget when there is one, else twice the steps so far."""
    return cfg.max_steps if cfg.max_steps is not None else max(2 * steps, cfg.steps)


def _to_chains_first(records: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(D, C, ...) -> (C, D, ...)."""
    return {k: np.swapaxes(np.asarray(v), 0, 1) for k, v in records.items()}


def _chunk_fn(
    sampler: Sampler, posterior: Posterior, cfg: SamplerConfig, k_sample: jax.Array, projections: jax.Array
) -> Callable[[Any, Any, jax.Array, jax.Array, int], tuple[Any, dict[str, jax.Array]]]:
    """`chunk(states, params, start, thinning, size)`: `size` kept draws, `thinning` steps each, all chains.

    `start` (the index of the chunk's first step) and `thinning` are traced, so one compiled chunk serves
    every thinning level; `size` is static. θ and dist2 are recorded at every `cfg.theta_every`-th draw of
    the chunk (its draws every-1, 2·every-1, ...): an inner scan runs the draws of one θ group.
    """
    n_chains = cfg.chains
    every = cfg.theta_every or 1
    record_full = cfg.loss_trace == "full"
    w_star = posterior.w_star
    # Constant per-step work is counted on the host (`_work`): nothing to carry or output for it.
    carried_work = WORK_KEYS if sampler.step_work is None else ()

    def step_all(states, params, step_index):
        keys = jax.random.split(jax.random.fold_in(k_sample, step_index), n_chains)
        states, info = jax.vmap(sampler.step)(keys, states, params)
        return states, {k: v for k, v in info.items() if k not in WORK_KEYS or k in carried_work}

    def position_record(pos):
        offset = pos - w_star
        return {"theta": offset @ projections.T, "dist2": jnp.sum(offset * offset, axis=-1)}

    def chunk(states, params, start, thinning, size):
        _, info_shape = jax.eval_shape(step_all, states, params, start)
        zero_info = {k: jnp.zeros(v.shape, v.dtype) for k, v in info_shape.items()}

        def one_draw(states, draw, with_position=True):
            first = start + draw * thinning

            def body(i, carry):
                states, info = carry
                states, new = step_all(states, params, first + i)
                new = {k: (info[k] + new[k] if k in carried_work else new[k]) for k in new}
                return states, new

            states, info = jax.lax.fori_loop(jnp.uint32(0), thinning, body, (states, zero_info))
            record = dict(info)
            pos = jax.vmap(sampler.position)(states)
            if record_full:
                record["loss"] = jax.vmap(posterior.full_loss)(pos)
                if carried_work:
                    record["fde"] = record["fde"] + 1.0  # one full-data loss evaluation per kept draw
            if with_position:
                record.update(position_record(pos))
            return states, record

        if every == 1:
            return jax.lax.scan(one_draw, states, jnp.arange(size, dtype=jnp.uint32))
        n_groups, tail = divmod(size, every)

        def draws_only(states, draws):
            return jax.lax.scan(lambda s, d: one_draw(s, d, with_position=False), states, draws)

        def one_group(states, group):
            states, records = draws_only(states, group * every + jnp.arange(every, dtype=jnp.uint32))
            return states, (records, position_record(jax.vmap(sampler.position)(states)))

        states, (records, positions) = jax.lax.scan(one_group, states, jnp.arange(n_groups, dtype=jnp.uint32))
        records = {k: v.reshape(n_groups * every, *v.shape[2:]) for k, v in records.items()}
        if tail:  # the last draws of a fixed-length run that fill no θ group
            states, rest = draws_only(states, n_groups * every + jnp.arange(tail, dtype=jnp.uint32))
            records = {k: jnp.concatenate([records[k], rest[k]]) for k in records}
        return states, {**records, **positions}

    return chunk


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


MAX_FAST_WARMUP_GROWTH = 16  # an adaptive fast phase runs at most this many times its base length


def relaxing_warmup(
    step: Callable[[jax.Array, Any, Any], tuple[Any, StepInfo]], key: jax.Array, state: Any,
    fast_params: Any, params: Any, num_steps: int, fast_rate: jax.Array, target: float,
) -> tuple[Any, dict[str, jax.Array], jax.Array]:
    """`scan_warmup_two_speed` whose fast phase runs until the chain has relaxed `target` times.

    `fast_rate`: relaxation times 1/(hγ) per fast step (traced, per chain). The fast phase runs
    ceil(target / fast_rate) steps, at least the two-speed warm-up's three quarters and at most
    MAX_FAST_WARMUP_GROWTH times that; the last quarter at `params` follows as usual. Step i of the fast
    phase uses fold_in(k_fast, i), so its length need not be known when the program is compiled.
    Returns the state, the summed work, and the fast steps run.
    """
    base = int(num_steps * FAST_WARMUP_FRACTION)
    need = jnp.ceil(target / fast_rate)
    # a chain whose step is not finite (it will be excluded as diverged) keeps the base length
    need = jnp.where(jnp.isfinite(need), need, base)
    n_fast = jnp.clip(need, base, MAX_FAST_WARMUP_GROWTH * base).astype(jnp.int32)
    k_fast, k_rest = jax.random.split(key)
    zero = jnp.zeros((), jnp.float64)

    def body(i, carry):
        state, fde, grads = carry
        state, info = step(jax.random.fold_in(k_fast, i), state, fast_params)
        return state, fde + info["fde"], grads + info["grad_evals"]

    state, fde, grads = jax.lax.fori_loop(0, n_fast, body, (state, zero, zero))
    state, rest = scan_warmup(step, k_rest, state, params, num_steps - base)
    return state, {"fde": fde + rest["fde"], "grad_evals": grads + rest["grad_evals"]}, n_fast


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
