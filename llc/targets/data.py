"""Input distributions and label-noise models for the teacher-student targets."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from llc.config import DataConfig


def sample_inputs(key: jax.Array, dist: str, n: int, dim: int, dtype: jnp.dtype) -> jax.Array:
    """Draw n inputs of dimension `dim` from the named distribution."""
    k1, k2, k3 = jax.random.split(key, 3)
    if dist == "gauss_iso":
        return jax.random.normal(k1, (n, dim), dtype)
    if dist == "gauss_aniso":
        # Standard deviations log-spaced from 1 down to 0.1 across coordinates.
        scales = jnp.logspace(0.0, -1.0, dim, dtype=dtype)
        return jax.random.normal(k1, (n, dim), dtype) * scales
    if dist == "mixture":
        # Four Gaussian clusters with random centres, each of std 0.5.
        centres = jax.random.normal(k1, (4, dim), dtype)
        which = jax.random.randint(k2, (n,), 0, 4)
        return centres[which] + 0.5 * jax.random.normal(k3, (n, dim), dtype)
    if dist == "lowdim_manifold":
        # A smooth nonlinear embedding of a latent space of dimension max(1, dim // 4).
        latent = max(1, dim // 4)
        z = jax.random.normal(k1, (n, latent), dtype)
        proj = jax.random.normal(k2, (latent, dim), dtype) / latent**0.5
        return jnp.tanh(z @ proj) * 2.0 + 0.01 * jax.random.normal(k3, (n, dim), dtype)
    if dist == "heavy_tailed":
        # Student-t with 3 degrees of freedom, scaled to unit variance.
        return jax.random.t(k1, 3.0, (n, dim), dtype) / jnp.sqrt(3.0).astype(dtype)
    raise ValueError(f"unknown input distribution {dist!r}")


def sample_noise(key: jax.Array, cfg: DataConfig, x: jax.Array, out_dim: int) -> jax.Array:
    """Label noise of scale `cfg.noise_scale` under the named noise model."""
    k1, k2, k3 = jax.random.split(key, 3)
    dtype = x.dtype
    n = x.shape[0]
    sigma = jnp.asarray(cfg.noise_scale, dtype)
    eps = jax.random.normal(k1, (n, out_dim), dtype)
    if cfg.noise == "gauss":
        return sigma * eps
    if cfg.noise == "hetero":
        # Scale grows with the input norm; normalised so that the average scale is about sigma.
        scale = 0.5 + jnp.linalg.norm(x, axis=1, keepdims=True) / jnp.sqrt(jnp.asarray(x.shape[1], dtype))
        return sigma * scale * eps / 1.5
    if cfg.noise == "student_t":
        return sigma * jax.random.t(k2, 3.0, (n, out_dim), dtype) / jnp.sqrt(3.0).astype(dtype)
    if cfg.noise == "outliers":
        # 5% of the labels get an extra error of ten times the noise scale.
        is_outlier = jax.random.bernoulli(k2, 0.05, (n, 1))
        return sigma * eps + is_outlier * 10.0 * sigma * jax.random.normal(k3, (n, out_dim), dtype)
    raise ValueError(f"unknown noise model {cfg.noise!r}")
