"""Latency of the commands that do no JAX work (issue 19): `--help`, a cached `llc run`, a dry sweep.

    uv run python bench/cli_latency.py                  # the three figures, one JSON line
    uv run python bench/cli_latency.py --fresh-env      # also: a fresh `uv sync` with and without
                                                        # compiled bytecode, then its first commands

Each figure is the wall time of a fresh process running the environment's `llc` entry point (the
script `uv run llc` execs; uv itself adds about 0.1 s), median of REPEATS:

  help_s            `llc --help`
  cached_run_s      `llc run --preset quick --runs-dir DIR --no-progress`, where DIR already holds
                    that run (made once, untimed, before the repetitions): resolve the config, hash
                    it, find and read the finished run
  dry_sweep_100_s   `llc sweep STUDY --dry-run --runs-dir DIR` of a generated study of 100 jobs
                    (5 problems x 5 samplers x 4 seeds): resolve and check every job, print the plan
  python_s          `python -c pass`, the interpreter's own start, for reference

twice: `with_bytecode`, as on any machine after the first run (compiled modules cached; here in a
private PYTHONPYCACHEPREFIX filled by one untimed run of each command), and `without_bytecode`, every
module compiled from source at every start (PYTHONDONTWRITEBYTECODE=1 and an empty
PYTHONPYCACHEPREFIX), as in the first run after `uv sync`, which installs no bytecode by default.
The commands alternate within each repetition, so load on a shared machine affects them alike.

With --fresh-env, `uv sync --locked` and `uv sync --locked --compile-bytecode` each build a new
environment (UV_PROJECT_ENVIRONMENT in a temporary folder; packages come from uv's cache, no
network); in each, `llc --help` runs twice (the first run compiles what it imports, the second finds
it compiled), then the first import of what a real `llc run` needs (JAX, BlackJAX, ArviZ, ...).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

PROBLEMS = [(4, 3, 4, 1), (8, 5, 8, 2), (12, 8, 12, 3), (6, 4, 6, 2), (10, 6, 10, 3)]  # DLN in, hidden, out, rank
SAMPLERS = ["sgld", "sghmc", "hmc", "nuts", "mclmc"]
N_SEEDS = 4
# What `llc run` imports when it computes (the JAX side), for --fresh-env.
RUN_IMPORTS = "import llc.cli, llc.runs.job, llc.posterior, llc.samplers.base, llc.runs.trace, arviz_stats, blackjax"


def study_yaml() -> str:
    """A study of len(PROBLEMS) x len(SAMPLERS) x N_SEEDS = 100 jobs (the format of study.yaml)."""
    lines = ["base:", "  preset: quick", "  set: {data.n: 5000, target.kind: dln}", "problems:"]
    for d_in, hidden, d_out, rank in PROBLEMS:
        lines.append(f"  - name: dln-{d_in}-{hidden}-{d_out}")
        lines.append(f"    set: {{target.in_dim: {d_in}, target.hidden: [{hidden}], target.out_dim: {d_out}, "
                     f"target.rank: {rank}}}")
    lines.append("samplers:")
    lines.extend(f"  - sampler: {name}" for name in SAMPLERS)
    lines.append(f"seeds: {N_SEEDS}")
    return "\n".join(lines) + "\n"


def llc_command(python: str) -> list[str]:
    """The environment's `llc` console script (what `uv run llc` runs), else `python -m llc`."""
    script = Path(python).parent / "llc"
    return [str(script)] if script.is_file() else [python, "-m", "llc"]


def base_env() -> dict[str, str]:
    drop = ("LLC_RUNS_DIR", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    return {k: v for k, v in os.environ.items() if k not in drop}


def bytecode_env(pycache: Path, write: bool) -> dict[str, str]:
    """Modules compiled into (and read from) `pycache` only; with write=False, never written there."""
    env = {**base_env(), "PYTHONPYCACHEPREFIX": str(pycache)}
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def wall(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=C.REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"`{' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def fresh_env_figures(repeats: int) -> dict:
    """`uv sync` into a new environment, with and without --compile-bytecode, then its first commands."""
    out: dict = {}
    for label, extra in (("plain", []), ("compile_bytecode", ["--compile-bytecode"])):
        root = Path(tempfile.mkdtemp(prefix="llc-fresh-env-"))
        env = {**base_env(), "UV_PROJECT_ENVIRONMENT": str(root / "venv")}
        env.pop("VIRTUAL_ENV", None)
        try:
            C.log(f"[cli_latency] fresh environment ({label}): uv sync --locked {' '.join(extra)}")
            sync_s = wall(["uv", "sync", "--locked", "--offline", "--quiet", *extra], env)
            python = str(root / "venv" / "bin" / "python")
            llc = llc_command(python)
            first = wall([*llc, "--help"], env)
            later = C.median([wall([*llc, "--help"], env) for _ in range(repeats)])
            run_imports = wall([python, "-c", RUN_IMPORTS], env)
            out[label] = {"uv_sync_s": sync_s, "first_help_s": first, "later_help_s": later,
                          "first_run_imports_s": run_imports,
                          "sync_plus_first_help_s": sync_s + first,
                          "sync_plus_first_help_plus_run_imports_s": sync_s + first + run_imports}
            C.log(f"    {out[label]}")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    # llc's own modules are not installed (editable install) and are compiled on first use either way.
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fresh-env", action="store_true",
                        help="also time fresh environments with and without compiled bytecode")
    args = parser.parse_args()

    llc = llc_command(sys.executable)
    work = Path(tempfile.mkdtemp(prefix="llc-latency-"))
    try:
        runs = work / "runs"
        study = work / "study100.yaml"
        study.write_text(study_yaml())
        envs = {"with_bytecode": bytecode_env(work / "pycache", write=True),
                "without_bytecode": bytecode_env(work / "empty-pycache", write=False)}
        commands = {
            "python_s": [sys.executable, "-c", "pass"],
            "help_s": [*llc, "--help"],
            "cached_run_s": [*llc, "run", "--preset", "quick", "--runs-dir", str(runs), "--no-progress"],
            "dry_sweep_100_s": [*llc, "sweep", str(study), "--dry-run", "--runs-dir", str(runs)],
        }
        C.log("[cli_latency] making the run that the cached reruns find, and the bytecode cache (untimed)")
        first_run_s = wall(commands["cached_run_s"], envs["with_bytecode"])
        for cmd in commands.values():
            wall(cmd, envs["with_bytecode"])
        plan = subprocess.run(commands["dry_sweep_100_s"], cwd=C.REPO, env=envs["with_bytecode"], capture_output=True,
                              text=True, check=True).stdout
        n_jobs = sum(1 for line in plan.splitlines() if "/seed" in line)

        rows = {mode: {name: [] for name in commands} for mode in envs}
        for rep in range(args.repeats):
            for mode, env in envs.items():
                for name, cmd in commands.items():
                    rows[mode][name].append(wall(cmd, env))
                C.log(f"[cli_latency] {rep + 1}/{args.repeats} {mode}: " +
                      ", ".join(f"{k} {v[-1]:.2f}" for k, v in rows[mode].items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "cli_latency",
        "repeats": args.repeats,
        **{mode: {name: C.median(v) for name, v in figures.items()} for mode, figures in rows.items()},
        "dry_sweep_jobs": n_jobs,
        "first_run_s": first_run_s,
        "per_repeat": rows,
        "entry_point": Path(llc[0]).name if len(llc) == 1 else "python -m llc",
    }
    if args.fresh_env:
        result["fresh_env"] = fresh_env_figures(repeats=min(args.repeats, 3))
    result["machine"] = C.machine_info()
    result["command"] = "uv run python bench/cli_latency.py" + (" --fresh-env" if args.fresh_env else "")
    C.emit(result)


if __name__ == "__main__":
    main()
