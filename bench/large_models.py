"""SGLD on 10^6- and 10^7-parameter MLPs in float32: peak memory and steps/s (issue 19, part 4).

    uv run python bench/large_models.py                      # 1e6 and 1e7 parameters, ~6 min on 2 CPU cores
    uv run python bench/large_models.py --params 1e6 --steps 10   # smoke test
    uv run python bench/large_models.py --find-largest       # then 3e7, 1e8 while the predicted peak fits

Each size runs in a fresh child process (so its peak RSS is its own): llc's own driver
(`llc.samplers.run_chains`, plain SGLD with a fixed h = 1e-9, minibatch 256, loss_trace batch,
stop fixed, no warm-up) on the scaling workload of bench/scaling.py (a teacher-student MLP, in_dim 32,
`--depth` equal ReLU hidden layers sized by `target_params`, n = 20000, centre = teacher, no ERM; when
the 4096-unit width cap of `target_params` cannot reach a size, the depth is raised until it can).
The point is cost, not λ̂: the step is tiny and the run short; λ̂ is only checked to be finite.

The child reports steps/s from the run's `sampling_s` (compilation excluded), CPU seconds per step
(process CPU time between the driver's first and last progress report, so compilation and the first
chunk are excluded), the peak RSS (`ru_maxrss`) after each stage (imports, target, posterior with its
full-data L0 pass, sampling; the
figure reported is the peak after sampling, before λ̂'s estimate imports arviz), and the bytes of the chains' positions (chains x parameters x 4), so that
memory can be compared with chains x parameters. The parent prints one JSON line with every size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

STEP_SIZE = 1e-9
LARGER = (30_000_000, 100_000_000)  # --find-largest tries these after --params
GIB = 2**30


def default_steps(params: int) -> int:
    """Short runs: ~1 min of sampling per size on 2 CPU cores (cost grows linearly with parameters)."""
    if params <= 2_000_000:
        return 100
    return 20 if params <= 20_000_000 else 5


def _rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _config(params: int, chains: int, steps: int, depth: int, n: int):
    """The first depth >= `depth` whose resolved model is within 2% of `params` parameters."""
    from llc.config import count_params

    for d in range(depth, depth + 16):
        cfg = C.mlp_config(params, chains, "float32", steps, STEP_SIZE, depth=d, n=n)
        if abs(count_params(cfg.target) - params) <= 0.02 * params:
            return cfg
    raise SystemExit(f"no depth in [{depth}, {depth + 15}] gives {params} parameters")


def child(params: int, chains: int, steps: int, depth: int, n: int) -> dict:
    """One size in this process; returns its figures."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    from llc.jax_setup import configure_jax

    configure_jax()
    import jax
    import numpy as np

    from llc.config import count_params
    from llc.estimator import estimate, finite_chains
    from llc.posterior import build_posterior
    from llc.samplers import build_sampler, run_chains
    from llc.targets import build_target, problem_keys

    stages: dict[str, dict[str, float]] = {}

    def stage(name: str) -> None:
        stages[name] = {"peak_rss_gib": C.peak_rss_bytes() / GIB, "rss_gib": _rss_now() / GIB,
                        "cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0}
        C.log(f"[large] {params:.0e}: {name}: peak RSS {stages[name]['peak_rss_gib']:.2f} GiB, "
              f"wall {stages[name]['wall_s']:.1f} s")

    stage("imports")
    cfg = _config(params, chains, steps, depth, n)
    target = build_target(cfg, None)
    jax.block_until_ready(target.w_star)
    stage("target")
    post = build_posterior(cfg, target)  # evaluates L0 = L_n(w*) on all n samples
    stage("posterior")

    marks: list[tuple[int, float, float]] = []  # (steps done, process CPU s, wall s) at each progress report

    def progress(phase: str, done: int, total: int, note: str = "") -> None:
        if phase == "sampling":
            marks.append((done, time.process_time(), time.perf_counter()))

    cpu_run0 = time.process_time()
    run = run_chains(build_sampler(post, cfg.sampler), post, cfg.sampler, problem_keys(cfg.seed)["sampler"],
                     on_progress=progress)
    cpu_run = time.process_time() - cpu_run0
    stage("sampling")

    valid = finite_chains(run.loss, run.theta)
    est = estimate(run.loss, post.nbeta, post.L0, valid, theta=run.theta, loss_trace=run.loss_trace,
                   n_params=target.n_params, dist2=run.dist2, gamma=post.gamma)
    (s0, c0, w0), (s1, c1, w1) = marks[0], marks[-1]
    n_params = count_params(cfg.target)
    state_bytes = chains * n_params * 4
    peak = stages["sampling"]["peak_rss_gib"] * GIB  # before the estimate imports arviz/xarray
    before = stages["posterior"]
    return {
        "target_params": params, "n_params": n_params, "hidden": list(cfg.target.hidden), "chains": chains,
        "n": cfg.data.n, "steps": run.steps, "precision": "float32", "step_size": STEP_SIZE,
        "position_bytes": state_bytes, "position_gib": state_bytes / GIB,
        "peak_rss_gib": peak / GIB,
        "peak_rss_with_estimate_gib": C.peak_rss_bytes() / GIB,
        "peak_rss_over_position_bytes": peak / state_bytes,
        # What sampling added: the final peak minus the RSS held just before run_chains.
        "sampling_rss_increase_gib": (peak - before["rss_gib"] * GIB) / GIB,
        "sampling_rss_increase_over_position_bytes": (peak - before["rss_gib"] * GIB) / state_bytes,
        "sampling_s": run.sampling_s, "compile_s": run.compile_s,
        "steps_per_s": run.steps / run.sampling_s,
        "s_per_step": run.sampling_s / run.steps,
        "cpu_s_per_step": (c1 - c0) / (s1 - s0) if s1 > s0 else None,
        "wall_s_per_step_same_window": (w1 - w0) / (s1 - s0) if s1 > s0 else None,
        "cpu_steps_window": [s0, s1],
        "run_chains_cpu_s": cpu_run,
        "process_cpu_s": time.process_time() - cpu0, "process_wall_s": time.perf_counter() - wall0,
        "lambda_hat": est.llc_mean, "lambda_hat_se": est.llc_se,
        "lambda_hat_finite": bool(np.isfinite(est.llc_mean)), "chains_finite": int(valid.sum()),
        "max_dist2": float(np.max(run.dist2)),
        "stages": stages,
    }


def run_child(params: int, args: argparse.Namespace) -> dict:
    steps = args.steps or default_steps(params)
    cmd = [sys.executable, __file__, "--child", str(params), "--chains", str(args.chains), "--steps", str(steps),
           "--depth", str(args.depth), "--n", str(args.n)]
    C.log(f"[large] {params:.0e} parameters, {args.chains} chains, {steps} steps (fresh process)")
    env = {**os.environ, "LLC_JAX_CACHE": "0"}  # compile in full every time; compile time is excluded anyway
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not proc.stdout.strip():
        C.log(f"[large] {params:.0e}: child failed (rc {proc.returncode})")
        return {"target_params": params, "chains": args.chains, "steps": steps, "failed": True,
                "returncode": proc.returncode, "child_wall_s": wall}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["child_wall_s"] = wall
    C.log(f"[large] {params:.0e}: {row['steps_per_s']:.3g} steps/s, {row['cpu_s_per_step']:.3g} CPU s/step, "
          f"peak RSS {row['peak_rss_gib']:.2f} GiB ({row['peak_rss_over_position_bytes']:.1f}x the positions), "
          f"λ̂ = {row['lambda_hat']:.4g}")
    return row


def fit_memory(rows: list[dict]) -> dict | None:
    """Peak RSS ≈ fixed + per_param_byte x (chains x params x 4), from the two largest measured sizes."""
    ok = sorted((r for r in rows if not r.get("failed")), key=lambda r: r["position_bytes"])
    if len(ok) < 2:
        return None
    a, b = ok[-2], ok[-1]
    slope = (b["peak_rss_gib"] - a["peak_rss_gib"]) * GIB / (b["position_bytes"] - a["position_bytes"])
    fixed = b["peak_rss_gib"] * GIB - slope * b["position_bytes"]
    return {"rss_per_position_byte": slope, "fixed_gib": fixed / GIB}


def largest_params(fit: dict, chains: int, budget_gib: float) -> int:
    return int((budget_gib * GIB - fit["fixed_gib"] * GIB) / (fit["rss_per_position_byte"] * chains * 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="1e6,1e7", help="comma-separated parameter counts")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--steps", type=int, default=0, help="steps per size (default: 100 up to 2e6, 20 up to 2e7, else 5)")
    parser.add_argument("--depth", type=int, default=2, help="hidden layers (raised when 4096 units cannot reach a size)")
    parser.add_argument("--n", type=int, default=20000, help="training samples (20000 x 32 float32 inputs = 2.4 MiB)")
    parser.add_argument("--find-largest", action="store_true",
                        help=f"then try {', '.join(f'{p:.0e}' for p in LARGER)} while the predicted peak RSS fits")
    parser.add_argument("--max-rss-gib", type=float, default=20.0, help="memory ceiling for --find-largest and the estimate")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        C.emit(child(int(args.child), args.chains, args.steps, args.depth, args.n))
        return

    t0, cpu0 = time.perf_counter(), time.process_time()
    sizes = [int(float(p)) for p in args.params.split(",")]
    rows = [run_child(p, args) for p in sizes]
    skipped = []
    if args.find_largest:
        for p in LARGER:
            fit = fit_memory(rows)
            predicted = (fit["fixed_gib"] + fit["rss_per_position_byte"] * args.chains * p * 4 / GIB) if fit else None
            if predicted is not None and predicted > args.max_rss_gib:
                C.log(f"[large] {p:.0e}: predicted peak RSS {predicted:.1f} GiB > {args.max_rss_gib} GiB; not run")
                skipped.append({"target_params": p, "predicted_peak_rss_gib": predicted})
                break
            row = run_child(p, args)
            rows.append(row)
            if row.get("failed"):
                break
    fit = fit_memory(rows)
    largest = None
    if fit:
        largest = {"params": largest_params(fit, args.chains, args.max_rss_gib), "chains": args.chains,
                   "rss_budget_gib": args.max_rss_gib, "how": "estimate: linear fit of peak RSS vs chains x params "
                   "through the two largest measured sizes", **fit}
        measured = [r for r in rows if not r.get("failed")]
        largest["largest_measured_params"] = max(r["n_params"] for r in measured)
    child_cpu = sum(r.get("process_cpu_s", 0.0) for r in rows)
    C.emit({
        "benchmark": "large_models", "sizes": rows, "skipped": skipped, "largest": largest,
        "settings": {"chains": args.chains, "depth": args.depth, "n": args.n, "in_dim": 32, "batch_size": 256,
                     "step_size": STEP_SIZE, "warmup": 0, "precision": "float32", "stop": "fixed",
                     "loss_trace": "batch", "max_rss_gib": args.max_rss_gib},
        "total_wall_s": time.perf_counter() - t0,
        "total_cpu_s": time.process_time() - cpu0 + child_cpu,
        "machine": C.machine_info(),
        "command": "uv run python " + " ".join(["bench/large_models.py", *sys.argv[1:]]),
    })


if __name__ == "__main__":
    main()
