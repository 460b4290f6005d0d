"""The localized tempered posterior (notes §2):

    p(w) ∝ exp( -nβ L_n(w) - γ/2 |w - w*|² ),   β = β0 / log n.

`Posterior` bundles the full-data loss, an on-device minibatch estimator, and
the log-density the full-batch samplers use. β is per-sample: nβ multiplies
the *mean* loss, never the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from llc import tempering
from llc.config import Config
from llc.targets import Target, lambda_true
from llc.targets.build import quadratic_loss_fn


@dataclass(frozen=True)
class Posterior:
    n: int
    beta: float
    nbeta: float
    gamma: float
    w_star: jax.Array
    L0: float
    batch_size: int
    batch_fraction: float  # b / n: the FDE cost of one minibatch gradient (1 for data-free targets)
    lambda_true: float | None
    full_loss: Callable[[jax.Array], jax.Array]
    batch_loss: Callable[[jax.Array, jax.Array], jax.Array]  # (w, key) -> L_B(w) on a fresh minibatch

    def logdensity(self, w: jax.Array) -> jax.Array:
        return self.logdensity_from_loss(w, self.full_loss(w))

    def logdensity_from_loss(self, w: jax.Array, loss: jax.Array) -> jax.Array:
        diff = w - self.w_star
        return -self.nbeta * loss - 0.5 * self.gamma * jnp.vdot(diff, diff)

    def loss_from_logdensity(self, w: jax.Array, logdensity: jax.Array) -> jax.Array:
        """Recover L_n(w) from a sampler state's log-density, without another data pass."""
        diff = w - self.w_star
        return -(logdensity + 0.5 * self.gamma * jnp.vdot(diff, diff)) / self.nbeta

    def batch_grad(self, w: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(L_B(w), ĝ(w)) with ĝ = -nβ ∇L_B(w) - γ (w - w*), an unbiased estimate of ∇ log p."""
        loss, grad = jax.value_and_grad(self.batch_loss)(w, key)
        return loss, -self.nbeta * grad - self.gamma * (w - self.w_star)


def loss_scale(cfg: Config, sigma: float) -> float:
    """The factor s in ℓ_i = s·|y - f(x)|²: 1/(2σ²) for gaussian, 1 for mse."""
    return 1.0 / (2 * sigma**2) if cfg.posterior.loss == "gaussian" else 1.0


def per_sample_loss(cfg: Config, predict, sigma: float):
    """ℓ_i(w): gaussian = |y - f(x)|²/(2σ²); mse = |y - f(x)|² (devinterp's convention)."""
    if cfg.posterior.loss == "cross_entropy":  # custom targets only: -log softmax(f(x))[y]
        from llc.targets.custom import nll

        return nll("cross_entropy", predict, None)
    scale = loss_scale(cfg, sigma)

    def loss(w, x, y):
        r = y - predict(w, x)
        return scale * jnp.sum(r * r, axis=-1)

    return loss


def moments_loss(cfg: Config, target: Target) -> Callable[[jax.Array], jax.Array]:
    """Exact L_n for a model linear in x, f_w(x) = x M(w) + c(w), from the data's second moments.

    With B = [M; c], x̃ = [x, 1] and the residuals r* = y - x̃ B* at the centre,
        L_n(w) = L_n(w*) + s·( tr(ΔBᵀ S_xx ΔB) - 2 tr(ΔBᵀ S_xr) ),   ΔB = B(w) - B*,
    where S_xx = X̃ᵀX̃/n, S_xr = X̃ᵀR*/n and s is the loss scale (1/(2σ²) or 1). The expansion is exact
    (the loss is quadratic in B) and is written around w*, so no large terms cancel: it is as accurate
    as the pass over the data, and its cost does not depend on n.
    """
    ell = per_sample_loss(cfg, target.predict, cfg.data.noise_scale)
    x, y, predict = target.x, target.y, target.predict
    in_dim = x.shape[1]
    eye = jnp.eye(in_dim, dtype=x.dtype)
    zero = jnp.zeros((1, in_dim), x.dtype)

    def coefficients(w):
        c = predict(w, zero)
        return jnp.concatenate([predict(w, eye) - c, c], axis=0)  # (in + 1, out)

    w_star = target.w_star
    b_star = coefficients(w_star)
    x_aug = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    n = x.shape[0]
    s_xx = x_aug.T @ x_aug / n
    s_xr = x_aug.T @ (y - x_aug @ b_star) / n
    scale = loss_scale(cfg, cfg.data.noise_scale)
    loss_star = jnp.mean(ell(w_star, x, y))

    def full(w):
        delta = coefficients(w) - b_star
        return loss_star + scale * (jnp.sum(delta * (s_xx @ delta)) - 2 * jnp.sum(delta * s_xr))

    return full


def build_posterior(cfg: Config, target: Target) -> Posterior:
    n = cfg.data.n
    beta = tempering.beta(n, cfg.posterior.beta0)
    nbeta = tempering.nbeta(n, cfg.posterior.beta0)
    gamma = float(cfg.posterior.gamma)
    batch_size = cfg.sampler.batch_size or n

    if target.kind == "quadratic":
        full = quadratic_loss_fn(target)

        def batch(w, key):
            return full(w)

        fraction = 1.0
    else:
        ell = per_sample_loss(cfg, target.predict, cfg.data.noise_scale)
        x, y = target.x, target.y
        if cfg.posterior.full_loss == "moments":
            full = moments_loss(cfg, target)
        else:

            def full(w):
                return jnp.mean(ell(w, x, y))

        def batch(w, key):
            # Minibatch indices drawn on device, uniformly with replacement: L_B is unbiased for L_n.
            idx = jax.random.randint(key, (batch_size,), 0, n)
            return jnp.mean(ell(w, x[idx], y[idx]))

        fraction = batch_size / n

    L0 = float(jax.jit(full)(target.w_star))
    return Posterior(
        n=n, beta=beta, nbeta=nbeta, gamma=gamma, w_star=target.w_star, L0=L0, batch_size=batch_size,
        batch_fraction=fraction, lambda_true=lambda_true(cfg, target, nbeta, gamma), full_loss=full, batch_loss=batch,
    )
