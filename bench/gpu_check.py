"""GPU check: the quick preset at float64 and float32, and SGLD throughput vs chain count on the
full-preset model (10k parameters). Prints one JSON line per measurement; writes $OUT/gpu.json."""

import json
import os
import time
from pathlib import Path

import jax

from llc.config import resolve_config
from llc.jax_setup import configure_jax
from llc.posterior import build_posterior
from llc.runs import run_job
from llc.samplers import build_sampler, run_chains
from llc.targets import build_target, problem_keys

configure_jax()  # float64 and the compilation cache, before any JAX work
out = Path(os.environ.get("OUT", "/tmp"))
result = {"device": str(jax.devices()[0]), "jax": jax.__version__}
for prec in ("float64", "float32"):
    start = time.time()
    m = run_job(resolve_config("quick", [f"precision={prec}"]), out / "runs").metrics.to_dict()
    row = {k: m[k] for k in ("llc_mean", "llc_se", "rhat", "ess_bulk", "timing")} | {"wall": time.time() - start}
    result[f"quick_{prec}"] = row
    print(json.dumps(row), flush=True)
scaling = []
for prec in ("float32", "float64"):
    for chains in (1, 4, 16, 64):
        cfg = resolve_config("full", [f"precision={prec}", f"sampler.chains={chains}", "sampler.steps=2000",
                                     "sampler.warmup=0", "target.center=teacher"])
        post = build_posterior(cfg, build_target(cfg, out / "runs"))
        run = run_chains(build_sampler(post, cfg.sampler), post, cfg.sampler, problem_keys(0)["sampler"])
        row = {"precision": prec, "chains": chains, "s_per_1000_steps": run.sampling_s / 2,
               "compile_s": run.compile_s, "chain_steps_per_s": chains * 2000 / run.sampling_s}
        scaling.append(row)
        print(json.dumps(row), flush=True)
result["scaling_full_preset_10k_params"] = scaling
(out / "gpu.json").write_text(json.dumps(result, indent=1))
