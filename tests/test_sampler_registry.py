"""The sampler registry: a new sampler is one module with a `SPEC` plus one registry line.

The toy sampler below (full-batch unadjusted Langevin) is registered in a fresh process by
appending its module to `llc.samplers.registry.SAMPLER_MODULES` before anything reads the
registry; it then runs through `llc run`, `--print-config` and `llc validate` like a built-in one.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from llc.config import resolve_config
from llc.errors import ConfigError
from llc.runs.ids import run_id
from llc.samplers.registry import sampler_specs
from tests.conftest import REPO

TOY_MODULE = '''
"""Toy: full-batch unadjusted Langevin, w <- w + h grad log p + sqrt(2h) xi, h = step_size / (n beta + gamma)."""

from dataclasses import dataclass

from llc.fields import opt
from llc.samplers.spec import SamplerSpec


@dataclass(frozen=True)
class ToyParams:
    noise_factor: float = opt(1.0, "multiplier of the Langevin noise (1 samples the posterior).", gt=0)


def build(posterior, cfg):
    # JAX inside build, as in every sampler module: llc.config reads SPEC without importing JAX.
    import jax
    import jax.numpy as jnp

    from llc.samplers.base import Sampler, scan_warmup

    h = cfg.step_size / (posterior.nbeta + posterior.gamma)
    one = {"fde": jnp.ones((), jnp.float64), "grad_evals": jnp.ones((), jnp.float64)}

    def step(key, w, params):
        logp, grad = jax.value_and_grad(posterior.logdensity)(w)
        noise = jax.random.normal(key, w.shape, w.dtype)
        w_new = w + (h * grad + cfg.noise_factor * jnp.sqrt(2 * h) * noise).astype(w.dtype)
        return w_new, {"loss": posterior.loss_from_logdensity(w, logp), **one}

    def warmup(key, w, num_steps):
        w, info = scan_warmup(step, key, w, None, num_steps)
        return w, None, info

    return Sampler(init=lambda w: w, warmup=warmup, step=step, position=lambda w: w)


SPEC = SamplerSpec(
    name="toy_langevin",
    summary="a test's toy: full-batch unadjusted Langevin",
    params=ToyParams,
    build=build,
    minibatch=False,
    rel_tol=0.37,
    presets={"quick": {"step_size": 0.05, "steps": 2000, "warmup": 500}},
)
'''

RUNNER = '''
import sys
sys.path.insert(0, sys.argv[1])
from llc.samplers import registry
registry.SAMPLER_MODULES.append("toy_langevin")  # the one registry line
from llc.cli import main
sys.argv = ["llc", *sys.argv[2:]]
main()
'''


def run_with_toy(tmp_path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    (tmp_path / "toy_langevin.py").write_text(textwrap.dedent(TOY_MODULE))
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path), *args], capture_output=True, text=True, cwd=REPO,
        timeout=timeout, env={**os.environ, "LLC_RUNS_DIR": str(tmp_path / "runs")},
    )


@pytest.mark.timeout(900)
def test_toy_sampler_runs_through_run_print_config_and_validate(tmp_path):
    printed = run_with_toy(tmp_path, "run", "--sampler", "toy_langevin", "--set", "sampler.noise_factor=1",
                           "--print-config")
    assert printed.returncode == 0, printed.stderr
    sampler = yaml.safe_load(printed.stdout)["sampler"]
    # its own key with the value set; its preset's values; other samplers' keys dropped
    assert sampler["name"] == "toy_langevin" and sampler["noise_factor"] == 1.0
    assert (sampler["step_size"], sampler["steps"], sampler["warmup"]) == (0.05, 2000, 500)
    assert sampler["batch_size"] is None and sampler["target_accept"] is None

    wrong = run_with_toy(tmp_path, "run", "--sampler", "hmc", "--set", "sampler.noise_factor=2", "--print-config")
    assert wrong.returncode == 2
    assert "sampler.noise_factor does not apply to sampler 'hmc' (it applies to: toy_langevin)" in wrong.stderr

    quad = ["--set", "target.kind=quadratic", "--set", "target.dim=4", "--set", "data.n=1000",
            "--set", "posterior.gamma=10"]
    ran = run_with_toy(tmp_path, "run", "--sampler", "toy_langevin", *quad, "--json", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    metrics = json.loads(ran.stdout)
    # Isotropic quadratic of d = 4: λ = ½ Σ nβa/(nβa + γ) exactly; unadjusted Langevin at h·K = 0.05 is
    # biased by O(h·K), well inside 15% at these 4 × 2000 draws.
    assert metrics["sampler"] == "toy_langevin" and metrics["lambda_true"] is not None
    assert metrics["llc_mean"] == pytest.approx(metrics["lambda_true"], rel=0.15)

    out = tmp_path / "toy.csv"
    validated = run_with_toy(tmp_path, "validate", "--samplers", "toy_langevin", "--cases", "quadratic_1to1000",
                             "--out", str(out))
    assert validated.returncode in (0, 1), validated.stderr
    (row,) = list(csv.DictReader(out.open()))
    assert row["sampler"] == "toy_langevin"
    # the quadratic case has no data term: the tolerance is the spec's 37% of λ
    assert float(row["tolerance"]) == pytest.approx(0.37 * float(row["lambda_true"]), rel=1e-3)


def test_builtin_specs_are_consistent():
    specs = sampler_specs()
    assert list(specs) == ["sgld", "sghmc", "hmc", "nuts", "mclmc", "mclmc_adjusted"]
    assert {name for name, spec in specs.items() if spec.minibatch} == {"sgld", "sghmc"}
    for name, spec in specs.items():
        cfg = resolve_config(preset="quick", sampler=name)
        own = {k for k in spec.keys if getattr(cfg.sampler, k) is not None}
        assert own >= set(spec.required()), name  # every required key has a value from the spec or preset
        assert run_id(cfg).startswith(f"{name}-")


def test_minibatch_checks_come_from_the_spec():
    with pytest.raises(ConfigError, match=r"sampler.batch_size: 600 is larger than data.n = 500; allowed 1..500"):
        resolve_config(overrides={"data.n": 500, "sampler.batch_size": 600}, sampler="sghmc")
    with pytest.raises(ConfigError, match=r"sampler.precond: required for sampler sgld"):
        resolve_config(overrides={"sampler.precond": None}, sampler="sgld")
    with pytest.raises(ConfigError, match=r"does not apply to sampler 'nuts' \(it applies to: sghmc, sgld\)"):
        resolve_config(overrides={"sampler.batch_size": 64}, sampler="nuts")
