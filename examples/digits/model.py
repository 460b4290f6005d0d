"""The digits example's custom target (docs/custom.md): a small MLP classifier on scikit-learn's
bundled 8x8 digits (1797 images, 10 classes; no download).

`entry(seed)` returns the model, its initial params and the training data; `llc trajectory`
replaces the params by each checkpoint that train.py saved.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

HIDDEN = 16  # 64 -> 16 -> 10: 1210 parameters


def apply(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]  # logits


def init_params(seed: int) -> dict[str, np.ndarray]:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {
        "w1": np.asarray(jax.random.normal(k1, (64, HIDDEN)) / 8.0),
        "b1": np.zeros(HIDDEN),
        "w2": np.asarray(jax.random.normal(k2, (HIDDEN, 10)) / HIDDEN**0.5),
        "b2": np.zeros(10),
    }


def data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities 0..16 -> [0, 1]
    return x - x.mean(axis=0), digits.target.astype(np.int32)


def entry(seed: int) -> dict:
    x, y = data()
    return {"apply": apply, "params": init_params(seed), "x": x, "y": y, "loss": "cross_entropy"}
