"""Every registered sampler on three problem sizes: λ̂ ± SE, ESS/s, ESS/FDE, WNV, compile time (issue 7).

    uv run python bench/sampler_table.py                 # the whole table (< 15 min on a 2-core CPU)
    uv run python bench/sampler_table.py --sizes 1k --samplers sgld,hmc

Samplers: whatever `llc.samplers.REGISTRY` holds when this runs. Problems: teacher-student MLP,
in_dim 16, two equal hidden layers sized by `target.target_params` to ~1k, ~10k, ~100k parameters,
ReLU, n = 500 (small so that full-batch samplers stay within the time budget at 100k parameters),
gaussian loss σ = 0.1, γ = 100, centre = teacher (no ERM: an L-BFGS fit of 100k parameters to 500
points would dominate the budget; see docs/conventions.md for the teacher-centre bias), float64
(llc's default). Sampler settings (`SETTINGS` below) are the same at every size and deliberately
modest; each job runs as `python -m llc run --json` in its own process with a fresh runs directory
and a wall-clock limit (`--timeout`, default 90 s), and every figure is read from its metrics.json.
A job that fails or times out is reported as such in its row.

These are short runs: ESS-based figures are noisy and `converged` is often false; the table compares
the cost of the samplers, not their final accuracy.

Prints one JSON line (`rows`: one per sampler x size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
PROBLEM = {
    "target.kind": "mlp", "target.in_dim": 16, "target.out_dim": 1, "target.depth": 2,
    "target.activation": "relu", "target.center": "teacher", "data.n": 500, "posterior.gamma": 100,
    "precision": "float64", "seed": 0,
}
# Per-sampler settings, the same at every size. Step sizes are the initial values for the adaptive
# samplers (HMC/NUTS window adaptation, MCLMC tuning); SG samplers use them as given.
# SGHMC (time step ε, friction α): with αε = 1 it is SGLD with h = ε², and its minibatch-noise heating
# is that of SGLD with h = ε/α. The preset's ε = 1e-6, α = 1 moves w by ~1e-6 per step (λ̂ ≈ 0 in a
# short run); ε = 1e-3, α = 10 heats like SGLD at h = 1e-4 (λ̂ ~10x too large). The table uses
# ε = 1e-4, α = 100: the same heating as SGLD's h = 1e-6, momentum kept for ~1/(αε) = 100 steps.
SETTINGS: dict[str, dict[str, object]] = {
    "sgld": {"sampler.steps": 1000, "sampler.warmup": 100, "sampler.step_size": 1e-6, "sampler.batch_size": 50},
    "sghmc": {"sampler.steps": 1000, "sampler.warmup": 100, "sampler.step_size": 1e-4, "sampler.friction": 100,
              "sampler.batch_size": 50},
    "hmc": {"sampler.steps": 50, "sampler.warmup": 50, "sampler.num_integration_steps": 5},
    "nuts": {"sampler.steps": 50, "sampler.warmup": 50},
    "mclmc": {"sampler.steps": 300, "sampler.warmup": 200},
    "mclmc_adjusted": {"sampler.steps": 50, "sampler.warmup": 50, "sampler.num_integration_steps": 5},
}
DEFAULT_SETTINGS = {"sampler.steps": 100, "sampler.warmup": 50}  # a sampler registered after this was written
COMMON = {"sampler.chains": 4}

FIELDS = ("llc_mean", "llc_se", "rhat", "ess_bulk", "converged", "ess_per_sec", "ess_per_fde", "wnv_time",
          "wnv_fde", "n_params", "n_chains_diverged")


def run_one(sampler: str, size: str, timeout: float) -> dict:
    overrides = {**PROBLEM, "target.target_params": SIZES[size], **COMMON, **SETTINGS.get(sampler, DEFAULT_SETTINGS)}
    args = [sys.executable, "-m", "llc", "run", "--preset", "quick", "--sampler", sampler, "--json", "--no-progress"]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    row: dict = {"sampler": sampler, "size": size, "settings": SETTINGS.get(sampler, DEFAULT_SETTINGS)}
    with tempfile.TemporaryDirectory(prefix="llc-table-") as runs:
        args += ["--runs-dir", runs]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=C.REPO,
                                  env={**os.environ, "LLC_RUNS_DIR": runs})
        except subprocess.TimeoutExpired:
            row.update(status="timeout", wall_s=time.perf_counter() - t0)
            return row
        row["wall_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            row.update(status=f"failed (exit {proc.returncode})", error=(proc.stderr.strip().splitlines() or [""])[-1])
            return row
        m = json.loads(proc.stdout[proc.stdout.index("{"):])
    row["status"] = "ok"
    row.update({k: m.get(k) for k in FIELDS})
    row.update({"compile_s": m["timing"]["compile_s"], "warmup_s": m["timing"]["warmup_s"],
                "sampling_s": m["timing"]["sampling_s"], "fde_sampling": m["work"]["fde_sampling"],
                "fde_warmup": m["work"]["fde_warmup"], "n_draws": m["n_draws"]})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--samplers", default=None, help="comma-separated (default: all of llc.samplers.REGISTRY)")
    parser.add_argument("--timeout", type=float, default=90.0, help="wall-clock limit per job, seconds")
    args = parser.parse_args()
    from llc.jax_setup import configure_jax

    configure_jax()  # float64 and the compilation cache, before any JAX work

    from llc.samplers import REGISTRY

    samplers = args.samplers.split(",") if args.samplers else list(REGISTRY)
    rows = []
    t0 = time.perf_counter()
    for size in args.sizes.split(","):
        for sampler in samplers:
            C.log(f"[sampler_table] {sampler} @ {size} ...")
            row = run_one(sampler, size, args.timeout)
            C.log(f"    {row['status']}: " + (
                f"λ̂ {row['llc_mean']:.4g} ± {row['llc_se']:.2g}, ESS/s {row['ess_per_sec']:.3g}, "
                f"compile {row['compile_s']:.1f} s, wall {row['wall_s']:.1f} s" if row["status"] == "ok" else
                row.get("error", "")))
            rows.append(row)
    C.emit({
        "benchmark": "sampler_table", "registry": list(REGISTRY), "problem": PROBLEM, "sizes": SIZES,
        "common": COMMON, "rows": rows, "total_wall_s": time.perf_counter() - t0, "machine": C.machine_info(),
        "command": "uv run python bench/sampler_table.py",
    })


if __name__ == "__main__":
    main()
