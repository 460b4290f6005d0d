"""Cold start of the README's first command, and what JAX's persistent compilation cache saves (issue 7).

    uv run python bench/cold_start.py

Times `uv run llc run --preset quick --runs-dir DIR` (the README's command plus a fresh, empty
runs directory each time, so neither the run nor its target is cached) as a fresh process, and
splits its wall time using the run's metrics.json and two reference processes:

  uv + interpreter   `uv run python -c pass`
  imports            `uv run python -c "<IMPORTS>"` minus the line above: the CLI and what run_job
                     imports after its cache lookup (jax, blackjax, haiku, optax, xarray, typer, ...;
                     arviz-stats is imported later, by the estimator, and counts under "rest")
  target (data+ERM)  timing.target_s: data generation and the L-BFGS fit to w*, including the
                     compilation of the ERM loop (run_job cannot separate the two)
  sampler compile    timing.compile_s: ahead-of-time compilation of the warm-up and chunk functions
  warm-up, sampling  timing.warmup_s, timing.sampling_s
  rest               estimation (ArviZ), trace.nc/metrics writing, interpreter exit, ...

Then the same command with JAX's persistent compilation cache switched on through the environment
(JAX_COMPILATION_CACHE_DIR=<fresh dir>, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0,
JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0): one run fills the cache ("cache cold"), then
repetitions with the filled cache ("cache warm") alternate back-to-back with repetitions without a
cache. Medians of REPEATS. llc/ is not changed.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

COMMAND = ["uv", "run", "llc", "run", "--preset", "quick"]
# Since the default gamma became sqrt(n beta)/2 (issue 17), the quick SGLD run samples for minutes until
# converged; `--fixed` times the preset's minimum run (16 000 steps) so that the fixed costs stand out.
FIXED = ["--set", "sampler.stop=fixed"]
# `import llc.cli; import llc.runs` imports no JAX since issue 19: run_job imports these when it computes.
IMPORTS = "import llc.cli, llc.runs.job, llc.posterior, llc.runs.metadata, llc.runs.trace, llc.samplers.base"
CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")


def base_env() -> dict[str, str]:
    """The caller's environment without any JAX cache: llc's default persistent cache is switched off
    (LLC_JAX_CACHE=0), and compiled bytecode may be written (as on any machine after a module's first import)."""
    env = {k: v for k, v in os.environ.items()
           if k not in CACHE_ENV and k not in ("LLC_RUNS_DIR", "PYTHONDONTWRITEBYTECODE")}
    env.pop("VIRTUAL_ENV", None)
    env["LLC_JAX_CACHE"] = "0"
    return env


def wall(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, cwd=C.REPO, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0


def run_quick(env: dict[str, str], extra: list[str]) -> dict:
    runs = Path(tempfile.mkdtemp(prefix="llc-cold-"))
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([*COMMAND, *extra, "--runs-dir", str(runs), "--no-progress"], cwd=C.REPO, env=env,
                              capture_output=True, text=True)
        wall_s = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"`{' '.join(COMMAND)}` failed:\n{proc.stderr[-3000:]}")
        run_dir = Path(proc.stdout.strip().splitlines()[-1])
        m = json.loads((run_dir / "metrics.json").read_text())
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    t = m["timing"]
    return {"wall_s": wall_s, "target_s": t["target_s"], "compile_s": t["compile_s"], "warmup_s": t["warmup_s"],
            "sampling_s": t["sampling_s"], "run_job_total_s": t["total_s"], "erm_steps": m["erm"]["steps"],
            "llc_mean": m["llc_mean"], "steps": m["stopping"]["steps"],
            "fixed_costs_s": wall_s - t["warmup_s"] - t["sampling_s"]}


def summarize(rows: list[dict], uv_s: float, imports_s: float) -> dict:
    med = {k: C.median([r[k] for r in rows]) for k in rows[0] if isinstance(rows[0][k], int | float)}
    med["uv_interpreter_s"] = uv_s
    med["imports_s"] = imports_s
    med["rest_s"] = med["wall_s"] - uv_s - imports_s - med["target_s"] - med["compile_s"] - med["warmup_s"] - \
        med["sampling_s"]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=C.REPEATS)
    parser.add_argument("--sampler", default="sgld", help="the sampler of the timed run (default: the preset's)")
    parser.add_argument("--until-converged", action="store_true",
                        help="time the preset as is (sample until converged) instead of its fixed minimum run")
    args = parser.parse_args()
    if shutil.which("uv") is None:
        sys.exit("uv not found on PATH")

    env = base_env()
    extra = ["--sampler", args.sampler, *([] if args.until_converged else FIXED)]
    cache_dir = Path(tempfile.mkdtemp(prefix="llc-jax-cache-"))
    cache_env = {**env, "LLC_JAX_CACHE": "1", "JAX_COMPILATION_CACHE_DIR": str(cache_dir),
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}

    C.log("[cold_start] reference processes (uv + interpreter; imports)")
    subprocess.run(["uv", "sync", "--quiet"], cwd=C.REPO, env=env, check=False)
    uv_runs, import_runs = [], []
    for _ in range(args.repeats):
        uv_runs.append(wall(["uv", "run", "python", "-c", "pass"], env))
        import_runs.append(wall(["uv", "run", "python", "-c", IMPORTS], env))
    uv_s = C.median(uv_runs)
    imports_s = C.median(import_runs) - uv_s

    C.log("[cold_start] filling the persistent cache (first run with an empty cache)")
    cache_cold = run_quick(cache_env, extra)
    entries = sum(1 for p in cache_dir.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())

    plain, warm = [], []
    for rep in range(args.repeats):
        C.log(f"[cold_start] repetition {rep + 1}/{args.repeats}: no cache, then warm cache")
        plain.append(run_quick(env, extra))
        warm.append(run_quick(cache_env, extra))
        C.log(f"    no cache {plain[-1]['wall_s']:.1f} s (compile {plain[-1]['compile_s']:.1f} s), "
              f"warm cache {warm[-1]['wall_s']:.1f} s (compile {warm[-1]['compile_s']:.1f} s)")
    shutil.rmtree(cache_dir, ignore_errors=True)

    no_cache = summarize(plain, uv_s, imports_s)
    with_cache = summarize(warm, uv_s, imports_s)
    C.emit({
        "benchmark": "cold_start",
        "command_timed": " ".join([*COMMAND, *extra]) + " --runs-dir <fresh dir>",
        "repeats": args.repeats,
        "no_cache": no_cache,
        "cache_cold_first_run": cache_cold,
        "cache_warm": with_cache,
        "cache_entries": entries, "cache_bytes": size,
        "ratio_wall_warm_over_no_cache": C.median([w["wall_s"] / p["wall_s"] for w, p in zip(warm, plain, strict=True)]),
        "ratio_compile_warm_over_no_cache": C.median(
            [w["compile_s"] / p["compile_s"] for w, p in zip(warm, plain, strict=True)]),
        "ratio_target_warm_over_no_cache": C.median(
            [w["target_s"] / p["target_s"] for w, p in zip(warm, plain, strict=True)]),
        "saved_s": C.median([p["wall_s"] - w["wall_s"] for w, p in zip(warm, plain, strict=True)]),
        "per_repeat": {"no_cache": plain, "cache_warm": warm, "uv_interpreter_s": uv_runs, "imports_wall_s": import_runs},
        "machine": C.machine_info(),
        "command": "uv run python bench/cold_start.py" + "".join(f" {a}" for a in sys.argv[1:]),
    })


if __name__ == "__main__":
    main()
