"""Seconds per 1000 SGLD steps vs parameter count and vs chain count, float32 and float64 (issue 7).

    uv run python bench/scaling.py              # CPU: ~10 min on 2 cores; runs unchanged on a GPU
    uv run python bench/scaling.py --quick      # smoke test: two points per sweep, one repeat

Runs llc's own sampling driver (`llc.samplers.run_chains`, plain SGLD, minibatch 256, loss_trace
batch) on a teacher-student MLP (in_dim 32, two equal hidden layers sized by `target_params`, ReLU,
n = 20000, centre = teacher, γ = 100, h = 1e-7) and reads `sampling_s` (compilation excluded).
The number of steps per measurement is chosen so that one run takes about `--target-s` seconds
(between 10 and 5000 steps; predicted from the previous point's cost per chain x parameter x step,
or a 20-step pilot for the first point), and the time is scaled to seconds per 1000 steps.
Each point is the median of REPEATS runs; float32 and float64 alternate back-to-back.

Sweep 1: parameters 1e3 -> 1e6 at 4 chains. Sweep 2: chains 1 -> 64 at 1e4 parameters.
Plots: docs/img/scaling_params.png and docs/img/scaling_chains.png (on an accelerator the file
names get the backend as a suffix, e.g. scaling_params_gpu.png, so CPU figures are kept).
Prints one JSON line (it records the JAX device) and writes it to bench/results/scaling_<backend>.json.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

PARAMS = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
CHAINS = [1, 2, 4, 8, 16, 32, 64]
PARAMS_AT_CHAINS = 10_000
CHAINS_AT_PARAMS = 4
PRECISIONS = ("float32", "float64")


def config(params: int, chains: int, precision: str, steps: int):
    return C.mlp_config(params, chains, precision, steps, step_size=1e-7)


_problems: dict = {}


def sampling_seconds(params: int, chains: int, precision: str, steps: int) -> tuple[float, float, int]:
    """(sampling_s, compile_s, n_params) of one run_chains call."""
    from llc.posterior import build_posterior
    from llc.samplers import build_sampler, run_chains
    from llc.targets import build_target, problem_keys

    cfg = config(params, chains, precision, steps)
    key = (params, precision)
    if key not in _problems:  # the target does not depend on chains/steps; build it once
        _problems.clear()
        target = build_target(cfg, None)
        _problems[key] = (target, build_posterior(cfg, target))
    target, post = _problems[key]
    run = run_chains(build_sampler(post, cfg.sampler), post, cfg.sampler, problem_keys(cfg.seed)["sampler"])
    return run.sampling_s, run.compile_s, target.n_params


_cost: dict[str, float] = {}  # precision -> last measured seconds per (chain x parameter x step)


def measure(params: int, chains: int, repeats: int, target_s: float) -> dict:
    """Seconds per 1000 steps for both precisions, interleaved, median of `repeats`.

    The step count aims at `target_s` seconds per run, predicted from the previous point's cost per
    chain-parameter-step (a 20-step pilot run for the first point).
    """
    out: dict = {"target_params": params, "chains": chains}
    steps: dict[str, int] = {}
    for precision in PRECISIONS:
        if precision not in _cost:
            pilot_s, _, n_params = sampling_seconds(params, chains, precision, 20)
            _cost[precision] = pilot_s / (20 * chains * n_params)
        d = _n_params(params)
        steps[precision] = int(min(5000, max(10, round(target_s / (_cost[precision] * chains * d), -1))))
    per: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    compile_s: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for _ in range(repeats):
        for precision in PRECISIONS:
            s, c, n_params = sampling_seconds(params, chains, precision, steps[precision])
            per[precision].append(1000 * s / steps[precision])
            compile_s[precision].append(c)
            out["n_params"] = n_params
    for precision in PRECISIONS:
        med = C.median(per[precision])
        _cost[precision] = med / (1000 * chains * out["n_params"])
        out[precision] = {"s_per_1000_steps": med, "all": per[precision], "steps": steps[precision],
                          "compile_s": compile_s[precision][0]}
    out["ratio_f64_over_f32"] = out["float64"]["s_per_1000_steps"] / out["float32"]["s_per_1000_steps"]
    C.log(f"    d={out['n_params']:>9,} C={chains:>2}: f32 {out['float32']['s_per_1000_steps']:.3g} s, "
          f"f64 {out['float64']['s_per_1000_steps']:.3g} s per 1000 steps")
    return out


def _n_params(target_params: int) -> int:
    from llc.config import count_params

    return count_params(config(target_params, 1, "float32", 20).target)


def plot(result: dict, img_dir: Path, suffix: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = result["machine"]["device_label"]
    colors = {"float32": "tab:blue", "float64": "tab:orange"}
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    rows = result["params_sweep"]
    xs = [r["n_params"] for r in rows]
    for p in PRECISIONS:
        ax.plot(xs, [r[p]["s_per_1000_steps"] for r in rows], "o-", color=colors[p], label=p)
    ref = rows[-1]["float32"]["s_per_1000_steps"]
    ax.plot(xs, [ref * x / xs[-1] for x in xs], ":", color="grey", label="∝ parameters (from the largest point)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters d")
    ax.set_ylabel("seconds per 1000 SGLD steps (all chains)")
    ax.set_title(f"SGLD cost vs model size ({CHAINS_AT_PARAMS} chains, batch 256)\n{device}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    path = img_dir / f"scaling_params{suffix}.png"
    fig.savefig(path)
    plt.close(fig)
    paths.append(str(path))

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    rows = result["chains_sweep"]
    xs = [r["chains"] for r in rows]
    for p in PRECISIONS:
        ax.plot(xs, [r[p]["s_per_1000_steps"] for r in rows], "o-", color=colors[p], label=p)
    ref = rows[0]["float32"]["s_per_1000_steps"]
    ax.plot(xs, [ref * x / xs[0] for x in xs], ":", color="grey", label="∝ chains (from 1 chain, float32)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("chains (vmapped)")
    ax.set_ylabel("seconds per 1000 SGLD steps (all chains)")
    n_params = rows[0]["n_params"]
    ax.set_title(f"SGLD cost vs chain count ({n_params:,} parameters, batch 256)\n{device}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    path = img_dir / f"scaling_chains{suffix}.png"
    fig.savefig(path)
    plt.close(fig)
    paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=C.REPEATS)
    parser.add_argument("--target-s", type=float, default=1.0, help="seconds one timed run should take")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 points per sweep, 1 repeat")
    parser.add_argument("--img-dir", default=str(C.REPO / "docs" / "img"))
    parser.add_argument("--results-dir", default=str(C.BENCH_DIR / "results"))
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    from llc.jax_setup import configure_jax

    configure_jax()  # float64 and the compilation cache, before any JAX work
    params = [PARAMS[0], PARAMS[2]] if args.quick else PARAMS
    chains = [1, 4] if args.quick else CHAINS
    repeats = 1 if args.quick else args.repeats

    import jax

    # Repeats compile identical programs: JAX's persistent cache turns the 2nd and 3rd compile into a
    # cache read (compile time is excluded from the figures either way; this only saves wall time).
    cache = tempfile.mkdtemp(prefix="llc-scaling-jax-cache-")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    machine = C.machine_info()
    backend = jax.default_backend()
    dev = jax.devices()[0]
    label = (f"{machine.get('Model name', 'CPU')}, {machine['nproc']} cores" if backend == "cpu"
             else f"{dev.device_kind} ({backend})")
    machine["device_label"] = label
    t0 = time.perf_counter()
    C.log(f"[scaling] device: {label}")
    C.log("[scaling] parameter sweep")
    params_rows = [measure(p, CHAINS_AT_PARAMS, repeats, args.target_s) for p in params]
    C.log("[scaling] chain sweep")
    chain_rows = [measure(PARAMS_AT_CHAINS, c, repeats, args.target_s) for c in chains]

    def slope(rows, xkey):
        # log-log slope between the two largest points (float32): ~1 means linear cost
        a, b = rows[-2], rows[-1]
        return math.log(b["float32"]["s_per_1000_steps"] / a["float32"]["s_per_1000_steps"]) / math.log(b[xkey] / a[xkey])

    result = {
        "benchmark": "scaling", "backend": backend, "device": f"{dev.platform}:{dev.device_kind}",
        "params_sweep": params_rows, "chains_sweep": chain_rows,
        "loglog_slope_params_top": slope(params_rows, "n_params"), "loglog_slope_chains_top": slope(chain_rows, "chains"),
        "settings": {"chains_for_params_sweep": CHAINS_AT_PARAMS, "params_for_chains_sweep": PARAMS_AT_CHAINS,
                     "batch_size": 256, "n": 20000, "in_dim": 32, "depth": 2, "repeats": repeats,
                     "target_s": args.target_s},
        "total_wall_s": time.perf_counter() - t0,
        "machine": machine,
        "command": "uv run python bench/scaling.py" + (" --quick" if args.quick else ""),
    }
    shutil.rmtree(cache, ignore_errors=True)
    if not args.no_plots:
        img_dir = Path(args.img_dir)
        img_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if backend == "cpu" else f"_{backend}"
        if args.quick:
            suffix += "_quick"
        result["plots"] = plot(result, img_dir, suffix)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    import json

    (results_dir / f"scaling_{backend}{'_quick' if args.quick else ''}.json").write_text(
        json.dumps(result, default=str) + "\n")
    C.emit(result)


if __name__ == "__main__":
    main()
