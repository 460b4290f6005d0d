"""A custom target for the tests: a deep linear network with exactly the weights (w*) and data of the
built-in `dln` target below, written as a list of matrices and its own forward pass."""

import numpy as np

from llc.config import resolve_config
from llc.targets import build_target

WIDTHS = [4, 3, 4]
BUILTIN = ["target.kind=dln", "target.in_dim=4", "target.hidden=[3]", "target.out_dim=4", "target.rank=1",
           "data.n=2000"]


def apply(mats, x):
    out = x
    for m in mats:
        out = out @ m
    return out


def make(seed):
    cfg = resolve_config("quick", [*BUILTIN, f"seed={seed}"])
    target = build_target(cfg)
    flat, mats, start = np.asarray(target.w_star), [], 0
    for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True):
        mats.append(flat[start:start + a * b].reshape(a, b))
        start += a * b
    return {"apply": apply, "params": mats, "x": np.asarray(target.x), "y": np.asarray(target.y),
            "loss": "gaussian", "noise_scale": cfg.data.noise_scale}
