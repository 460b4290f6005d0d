"""SGLD against analytic truth (notes §6): the anisotropic quadratic and a single linear layer."""

from __future__ import annotations

import pytest

from llc.config import resolve_config
from llc.runs import run_job


def test_quadratic_within_5_percent_of_exact_finite_value(tmp_path):
    cfg = resolve_config(
        "quick",
        ["target.kind=quadratic", "sampler.steps=20000", "sampler.warmup=1000", "sampler.step_size=5e-5"],
    )
    m = run_job(cfg, tmp_path).metrics
    exact = m["lambda_true"]
    # exact = 1/2 sum nβa/(nβa+γ) over the spectrum: not d/2 at this nβ and γ.
    assert exact < cfg.target.dim / 2
    assert m["llc_mean"] == pytest.approx(exact, rel=0.05)
    assert m["rhat"] < 1.01


def test_single_linear_layer_within_5_percent_of_half_d(tmp_path):
    cfg = resolve_config(
        "quick",
        [
            "target.hidden=[]", "target.in_dim=10", "target.out_dim=2", "sampler.steps=20000",
            "sampler.warmup=1000", "sampler.step_size=1e-7",
        ],
    )
    m = run_job(cfg, tmp_path).metrics
    d = 10 * 2 + 2
    assert m["n_params"] == d and m["lambda_true"] == d / 2
    assert m["llc_mean"] == pytest.approx(d / 2, rel=0.05)


def test_minibatch_loss_baseline_is_full_data_loss(tmp_path):
    """L0 is the full-data loss at w* (never a minibatch value): check against a direct evaluation."""
    import jax.numpy as jnp

    from llc.posterior import build_posterior
    from llc.targets import build_target

    cfg = resolve_config("quick", ["sampler.steps=100", "sampler.warmup=0"])
    target = build_target(cfg, tmp_path)
    post = build_posterior(cfg, target)
    r = target.y - target.predict(target.w_star, target.x)
    direct = float(jnp.mean(jnp.sum(r * r, axis=-1)) / (2 * cfg.data.noise_scale**2))
    assert post.L0 == pytest.approx(direct, rel=1e-12)
    assert post.nbeta == pytest.approx(cfg.data.n / jnp.log(cfg.data.n))
