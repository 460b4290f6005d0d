"""SGLD throughput and λ̂ of llc vs devinterp on one teacher-student workload (issue 7).

    bash bench/setup_devinterp.sh            # once: bench/.venv-devinterp (Python 3.11, torch 2.13.0 CPU)
    uv run python bench/devinterp_compare.py

Workload (bench/_common.py WORKLOAD_OVERRIDES): x ~ N(0, I_32), n = 20000, MLP 32-64-64-1 ReLU
(6,337 parameters), y = teacher(x) + N(0, 0.1²), centre = teacher, nβ = n / log n, γ = 100, MSE
loss, batch 256, 4 chains x 2000 steps, no warm-up; SGLD step h = 5e-6 here = devinterp lr ε = 1e-5
(ε = 2h, docs/conventions.md). llc generates the data (float32) and the teacher; devinterp loads the
same arrays (.npy) and the teacher exported in PyTorch layout, so both sample the same posterior.

Each repetition runs llc (float32, in this process; timing.sampling_s excludes compilation) and
then devinterp (a subprocess in its own venv; the seconds spent in its per-chain sampling loop)
back-to-back; the ratio is taken per repetition and the median over REPEATS is reported. λ̂ of
both is computed by llc's estimator (same L0 = L_n(teacher), same ArviZ MCSE) from each side's
per-step minibatch-loss trace; devinterp's own llc_mean (with its own init_loss) is reported too.
llc at float64 (its default precision) is timed in the same repetition for reference.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

VENV_PY = C.BENCH_DIR / ".venv-devinterp" / "bin" / "python"


def teacher_torch_layout(cfg, flat):
    """Flat llc teacher vector -> {layer{i}.weight (out, in), layer{i}.bias} as float32 numpy."""
    import haiku as hk
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from llc.targets.models import _mlp_fn

    net = hk.without_apply_rng(hk.transform(_mlp_fn(cfg.target)))
    params = net.init(__import__("jax").random.PRNGKey(0), jnp.zeros((1, cfg.target.in_dim), flat.dtype))
    _, unravel = ravel_pytree(params)
    tree = unravel(flat)
    out = {}
    for i in range(len(cfg.target.hidden) + 1):
        layer = tree[f"layer_{i}"]
        out[f"layer{i}.weight"] = np.asarray(layer["w"], np.float32).T.copy()  # haiku (in, out) -> torch (out, in)
        out[f"layer{i}.bias"] = np.asarray(layer["b"], np.float32)
    return out


def llc_once(cfg):
    """One llc sampling run through the library path run_job uses; returns (ChainRun, posterior)."""
    from llc.posterior import build_posterior
    from llc.samplers import build_sampler, run_chains
    from llc.targets import build_target, problem_keys

    target = build_target(cfg, None)
    post = build_posterior(cfg, target)
    sampler = build_sampler(post, cfg.sampler)
    chains = run_chains(sampler, post, cfg.sampler, problem_keys(cfg.seed)["sampler"])
    return chains, post, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=C.REPEATS)
    parser.add_argument("--steps", type=int, default=None, help="override sampler.steps (default 2000)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for devinterp (default 1: on a shared 2-core machine torch's "
                             "OpenMP pool with 2 threads spin-waits and runs ~100x slower on these tiny matmuls)")
    args = parser.parse_args()
    from llc.jax_setup import configure_jax

    configure_jax()  # float64 and the compilation cache, before any JAX work
    if not VENV_PY.exists():
        sys.exit(f"{VENV_PY} not found: run `bash bench/setup_devinterp.sh` first")

    import numpy as np

    from llc.estimator import estimate, finite_chains

    extra = {"sampler.steps": args.steps} if args.steps else {}
    cfg32 = C.workload_config("float32", extra)
    cfg64 = C.workload_config("float64", extra)
    chains_n, steps = cfg32.sampler.chains, cfg32.sampler.steps

    from llc.posterior import build_posterior
    from llc.targets import build_target

    target = build_target(cfg32, None)
    post = build_posterior(cfg32, target)
    widths = [cfg32.target.in_dim, *cfg32.target.hidden, cfg32.target.out_dim]

    workdir = Path(tempfile.mkdtemp(prefix="llc-devinterp-"))
    np.save(workdir / "x.npy", np.asarray(target.x, np.float32))
    np.save(workdir / "y.npy", np.asarray(target.y, np.float32))
    np.savez(workdir / "teacher.npz", **teacher_torch_layout(cfg32, target.w_teacher))
    spec = {
        "nbeta": post.nbeta, "lr": 2 * cfg32.sampler.step_size, "gamma": post.gamma,
        "batch_size": cfg32.sampler.batch_size, "chains": chains_n, "steps": steps, "seed": 100,
        "widths": widths, "torch_threads": args.torch_threads,
    }
    (workdir / "spec.json").write_text(json.dumps(spec))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    env["TQDM_DISABLE"] = "1"
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.torch_threads)
    reps = []
    llc_chains = dev = None
    for r in range(args.repeats):
        C.log(f"[devinterp_compare] repetition {r + 1}/{args.repeats}: llc float32")
        llc_chains, post, _ = llc_once(cfg32)
        C.log(f"[devinterp_compare] repetition {r + 1}/{args.repeats}: devinterp")
        proc = subprocess.run([str(VENV_PY), str(C.BENCH_DIR / "devinterp_side.py"), str(workdir)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"devinterp_side.py failed:\n{proc.stderr[-4000:]}")
        dev = json.loads((workdir / "devinterp_result.json").read_text())
        C.log(f"[devinterp_compare] repetition {r + 1}/{args.repeats}: llc float64")
        llc64, post64, _ = llc_once(cfg64)
        llc_sps = chains_n * steps / llc_chains.sampling_s
        dev_sps = chains_n * steps / dev["sampling_s"]
        llc64_sps = chains_n * steps / llc64.sampling_s
        reps.append({
            "llc_f32_sampling_s": llc_chains.sampling_s, "llc_f32_compile_s": llc_chains.compile_s,
            "llc_f64_sampling_s": llc64.sampling_s,
            "devinterp_sampling_s": dev["sampling_s"], "devinterp_call_s": dev["call_s"],
            "llc_f32_steps_per_s": llc_sps, "llc_f64_steps_per_s": llc64_sps, "devinterp_steps_per_s": dev_sps,
            "ratio_llc_f32_over_devinterp": llc_sps / dev_sps, "ratio_llc_f64_over_devinterp": llc64_sps / dev_sps,
        })
        C.log(f"    llc f32 {llc_sps:,.0f} steps/s, llc f64 {llc64_sps:,.0f} steps/s, devinterp {dev_sps:,.0f} steps/s")

    # λ̂ of both with llc's estimator: same nβ, same L0 = L_n(teacher) on the float32 data.
    ours = estimate(llc_chains.loss, post.nbeta, post.L0, finite_chains(llc_chains.loss))
    dev_trace = np.load(workdir / "devinterp_loss_trace.npy")
    theirs = estimate(dev_trace, post.nbeta, post.L0, finite_chains(dev_trace))
    diff = ours.llc_mean - theirs.llc_mean
    z = diff / math.hypot(ours.llc_se, theirs.llc_se)

    med = {k: C.median([r[k] for r in reps]) for k in reps[0]}
    C.emit({
        "benchmark": "devinterp_compare",
        "workload": {"n": cfg32.data.n, "widths": widths, "n_params": target.n_params, "nbeta": post.nbeta,
                     "gamma": post.gamma, "loss": "mse", "center": "teacher", "step_size_h": cfg32.sampler.step_size,
                     "devinterp_lr_eps": spec["lr"], "batch_size": cfg32.sampler.batch_size, "chains": chains_n,
                     "steps": steps},
        "repeats": args.repeats,
        "llc_steps_per_s": med["llc_f32_steps_per_s"],
        "llc_f64_steps_per_s": med["llc_f64_steps_per_s"],
        "devinterp_steps_per_s": med["devinterp_steps_per_s"],
        "ratio_llc_over_devinterp": C.median([r["ratio_llc_f32_over_devinterp"] for r in reps]),
        "ratio_llc_f64_over_devinterp": C.median([r["ratio_llc_f64_over_devinterp"] for r in reps]),
        "llc_compile_s": med["llc_f32_compile_s"],
        "devinterp_call_s": med["devinterp_call_s"],
        "llc_lambda": ours.llc_mean, "llc_lambda_se": ours.llc_se, "llc_rhat": ours.rhat,
        "llc_ess_bulk": ours.ess_bulk, "llc_lambda_per_chain": ours.llc_per_chain,
        "devinterp_lambda": theirs.llc_mean, "devinterp_lambda_se": theirs.llc_se,
        "devinterp_rhat": theirs.rhat, "devinterp_ess_bulk": theirs.ess_bulk,
        "devinterp_lambda_per_chain": theirs.llc_per_chain,
        "devinterp_own_llc_mean": dev["llc_mean"], "devinterp_own_llc_std": dev["llc_std"],
        "devinterp_init_loss": dev["init_loss"], "L0_llc": post.L0, "L0_torch": dev["full_loss_at_teacher"],
        "lambda_diff": diff, "lambda_diff_z": z,
        "versions": {"devinterp": dev["devinterp"], "torch": dev["torch"], "torch_threads": dev["torch_threads"],
                     "devinterp_api": dev["api"]},
        "per_repeat": reps,
        "machine": C.machine_info(),
        "command": "uv run python bench/devinterp_compare.py"
                   + (f" --torch-threads {args.torch_threads}" if args.torch_threads != 1 else ""),
    })


if __name__ == "__main__":
    main()
