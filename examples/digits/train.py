"""Train the digits MLP with optax (full-batch Adam) and save checkpoints in llc's format.

    uv run --extra examples python examples/digits/train.py --out runs/digits/ckpts

Checkpoints: OUT/step_<N>.npz (llc.trajectory.save_checkpoint) at roughly log-spaced steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import apply, data, init_params  # noqa: E402

from llc.trajectory import save_checkpoint  # noqa: E402

SAVE_AT = (0, 10, 20, 40, 80, 150, 300, 600, 1200, 2500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    x, y = data()
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), init_params(args.seed))
    opt = optax.adam(args.lr)
    state = opt.init(params)

    def loss_fn(p):
        logits = apply(p, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    for t in range(max(SAVE_AT) + 1):
        if t in SAVE_AT:
            save_checkpoint(args.out, t, params)
            acc = float(jnp.mean(jnp.argmax(apply(params, x), axis=1) == y))
            print(f"step {t:5d}  loss {float(loss_fn(params)):.4f}  accuracy {acc:.3f}")
        params, state, _ = step(params, state)


if __name__ == "__main__":
    main()
