"""Training to the centre w*: full-batch L-BFGS until the gradient norm is below a tolerance."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu


class ERMResult(NamedTuple):
    w: jax.Array
    final_loss: float
    grad_norm: float
    steps: int
    converged: bool


def minimize(loss_fn: Callable[[jax.Array], jax.Array], w0: jax.Array, tol: float, max_steps: int) -> ERMResult:
    """Minimise `loss_fn` from `w0` with optax L-BFGS (zoom line search), in one jitted while-loop.

    Iterates until the gradient norm is below `tol / 10` (or `max_steps`); the
    result counts as converged when the gradient norm is below `tol`.
    """
    solver = optax.lbfgs(memory_size=20)
    stop_tol = tol / 10
    value_and_grad = optax.value_and_grad_from_state(loss_fn)
    grad_fn = jax.grad(loss_fn)

    def accepted_grad_norm(state):
        # The zoom line search stores the gradient at the point it accepted: the next step's
        # value_and_grad reads it from there, and so does the stopping test (no third gradient per step).
        return jnp.linalg.norm(otu.tree_get(state, "grad"))

    def cond(carry):
        _, _, step, gnorm = carry
        return (step < max_steps) & (gnorm > stop_tol) & jnp.isfinite(gnorm)

    def body(carry):
        w, state, step, _ = carry
        value, grad = value_and_grad(w, state=state)
        updates, state = solver.update(grad, state, w, value=value, grad=grad, value_fn=loss_fn)
        w = optax.apply_updates(w, updates)
        return w, state, step + 1, accepted_grad_norm(state)

    @jax.jit
    def run(w0):
        init = (w0, solver.init(w0), jnp.asarray(0), jnp.linalg.norm(grad_fn(w0)))
        w, _, steps, gnorm = jax.lax.while_loop(cond, body, init)
        return w, loss_fn(w), gnorm, steps

    w, loss, gnorm, steps = run(w0)
    gnorm = float(gnorm)
    return ERMResult(
        w=w,
        final_loss=float(loss),
        grad_norm=gnorm,
        steps=int(steps),
        converged=bool(gnorm <= tol),
    )
