"""posterior.full_loss=moments: the exact closed-form L_n of models linear in x equals the pass over the data."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from llc.config import resolve_config
from llc.errors import ConfigError
from llc.posterior import build_posterior
from llc.targets import build_target

LINEAR_MODELS = {
    "dln": ["target.kind=dln", "target.in_dim=5", "target.out_dim=4", "target.hidden=[3,6]", "target.rank=2"],
    "affine": ["target.kind=mlp", "target.hidden=[]", "target.in_dim=6", "target.out_dim=2"],
    "identity_mlp": ["target.kind=mlp", "target.hidden=[4]", "target.activation=identity", "target.in_dim=3"],
}


@pytest.mark.parametrize("model", list(LINEAR_MODELS))
@pytest.mark.parametrize("loss", ["gaussian", "mse"])
def test_moments_loss_and_gradient_equal_the_data_pass(model, loss, tmp_path):
    common = [*LINEAR_MODELS[model], "data.n=700", f"posterior.loss={loss}", "target.erm_steps=3000"]
    by_data = resolve_config("quick", common, sampler="hmc")
    by_moments = resolve_config("quick", [*common, "posterior.full_loss=moments"], sampler="hmc")
    target = build_target(by_data, tmp_path)
    data, moments = build_posterior(by_data, target), build_posterior(by_moments, target)
    assert moments.L0 == pytest.approx(data.L0, rel=1e-13)
    for i, scale in enumerate((1e-3, 0.1, 1.0)):
        w = target.w_star + scale * jax.random.normal(jax.random.key(i), target.w_star.shape, target.w_star.dtype)
        assert float(moments.full_loss(w)) == pytest.approx(float(data.full_loss(w)), rel=1e-11)
        np.testing.assert_allclose(jax.grad(moments.full_loss)(w), jax.grad(data.full_loss)(w), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("overrides", [
    ["target.kind=mlp", "target.hidden=[4]", "target.activation=relu"],
    ["target.kind=quadratic"],
])
def test_moments_rejected_for_models_not_linear_in_x(overrides):
    with pytest.raises(ConfigError, match=r"posterior\.full_loss: 'moments' needs a model linear in x"):
        resolve_config("quick", [*overrides, "posterior.full_loss=moments"])
