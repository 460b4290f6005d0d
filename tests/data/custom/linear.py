"""A custom target for the tests: one linear layer (no hidden units, no bias) on its own regression data.

Regular model: λ = d/2 with d = in_dim * out_dim. params is the least-squares fit, the exact minimum.
"""

import numpy as np

IN_DIM, OUT_DIM, N, SIGMA = 4, 2, 1000, 0.1


def apply(params, x):
    return x @ params["w"]


def make(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, IN_DIM))
    y = x @ rng.normal(size=(IN_DIM, OUT_DIM)) + SIGMA * rng.normal(size=(N, OUT_DIM))
    w_fit = np.linalg.lstsq(x, y, rcond=None)[0]
    return {"apply": apply, "params": {"w": w_fit}, "x": x, "y": y, "loss": "gaussian", "noise_scale": SIGMA,
            "lambda_true": IN_DIM * OUT_DIM / 2}
