"""Model families as pure functions of a flat parameter vector.

Every model is described by `init(key, dtype) -> pytree` (the teacher) and
`apply(params, x) -> y`; `flat_model` turns it into functions of one flat
vector, which is what the posterior and samplers work with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from llc.config import TargetConfig

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "identity": lambda x: x,
}


class FlatModel(NamedTuple):
    """A model over a flat parameter vector: `predict(w, x)`, with the teacher's vector."""

    teacher: jax.Array
    predict: Callable[[jax.Array, jax.Array], jax.Array]


class _MLPSpec(NamedTuple):
    """What the MLP's architecture and teacher draw depend on (hashable, unlike TargetConfig)."""

    in_dim: int
    hidden: tuple[int, ...]
    out_dim: int
    activation: str
    bias: bool
    teacher_scale: float

    @classmethod
    def of(cls, cfg: TargetConfig) -> _MLPSpec:
        return cls(cfg.in_dim, tuple(cfg.hidden), cfg.out_dim, cfg.activation, cfg.bias, cfg.teacher_scale)


def _mlp_fn(cfg: _MLPSpec) -> Callable[[jax.Array], jax.Array]:
    act = ACTIVATION_FNS[cfg.activation]
    widths = [*cfg.hidden, cfg.out_dim]

    def forward(x: jax.Array) -> jax.Array:
        fan_in = cfg.in_dim
        for i, width in enumerate(widths):
            layer = hk.Linear(
                width,
                with_bias=cfg.bias,
                w_init=hk.initializers.RandomNormal(cfg.teacher_scale / fan_in**0.5),
                b_init=hk.initializers.RandomNormal(0.1 * cfg.teacher_scale),
                name=f"layer_{i}",
            )
            x = layer(x)
            if i < len(widths) - 1:
                x = act(x)
            fan_in = width
        return x

    return forward


def _mlp_net(spec: _MLPSpec) -> hk.Transformed:
    return hk.without_apply_rng(hk.transform(_mlp_fn(spec)))


# One compiled program instead of ~25 eager ones (haiku's init also runs the forward pass), compiled once
# per architecture and dtype in a process: the same bits as the eager draws (bench/target_bits.py).
@functools.partial(jax.jit, static_argnums=(1, 2))
def _mlp_teacher(key: jax.Array, spec: _MLPSpec, dtype: jnp.dtype) -> dict:
    params = _mlp_net(spec).init(key, jnp.zeros((1, spec.in_dim), dtype))
    return jax.tree_util.tree_map(lambda a: a.astype(dtype), params)


def mlp_model(cfg: TargetConfig, key: jax.Array, dtype: jnp.dtype) -> FlatModel:
    """Teacher-student MLP (haiku): student and teacher share the architecture."""
    spec = _MLPSpec.of(cfg)
    net = _mlp_net(spec)
    params = _mlp_teacher(key, spec, jnp.dtype(dtype))
    flat, unravel = ravel_pytree(params)
    return FlatModel(teacher=flat, predict=lambda w, x: net.apply(unravel(w), x))


def dln_model(cfg: TargetConfig, key: jax.Array, dtype: jnp.dtype) -> FlatModel:
    """Deep linear network x -> x W_1 ... W_M (no biases); the teacher's product has rank `cfg.rank`.

    Rank r is imposed on the first factor (W_1 = U V with inner dimension r); the
    later factors are generic Gaussian matrices, so the product has rank exactly r.
    """
    widths = [cfg.in_dim, *cfg.hidden, cfg.out_dim]
    keys = jax.random.split(key, len(widths) + 1)
    mats = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        mats.append(jax.random.normal(keys[i], (a, b), dtype) * (cfg.teacher_scale / a**0.5))
    r = cfg.rank
    u_key, v_key = jax.random.split(keys[-1])
    a, b = widths[0], widths[1]
    u = jax.random.normal(u_key, (a, r), dtype) / max(r, 1) ** 0.25
    v = jax.random.normal(v_key, (r, b), dtype) * (cfg.teacher_scale / a**0.5) / max(r, 1) ** 0.25
    mats[0] = u @ v
    flat, unravel = ravel_pytree(mats)

    def predict(w: jax.Array, x: jax.Array) -> jax.Array:
        out = x
        for m in unravel(w):
            out = out @ m
        return out

    return FlatModel(teacher=flat, predict=predict)


class Quadratic(NamedTuple):
    """L(w) = 1/2 (w - w0)^T A (w - w0), A = Q diag(eigs) Q^T."""

    w0: jax.Array
    eigs: jax.Array
    basis: jax.Array


def quadratic_model(cfg: TargetConfig, key: jax.Array, dtype: jnp.dtype) -> Quadratic:
    """Anisotropic quadratic: eigenvalues log-spaced over [1/curvature_ratio, 1], random rotation."""
    k_w, k_q = jax.random.split(key)
    eigs = jnp.logspace(0.0, -jnp.log10(cfg.curvature_ratio), cfg.dim, dtype=dtype)
    q, _ = jnp.linalg.qr(jax.random.normal(k_q, (cfg.dim, cfg.dim), dtype))
    w0 = jax.random.normal(k_w, (cfg.dim,), dtype)
    return Quadratic(w0=w0, eigs=eigs, basis=q)


def quadratic_loss(quad: Quadratic, w: jax.Array) -> jax.Array:
    z = quad.basis.T @ (w - quad.w0)
    return 0.5 * jnp.sum(quad.eigs * z * z)
