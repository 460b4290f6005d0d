"""Build a target from its configuration, or load it from the store."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from llc.config import Config, count_params
from llc.config.custom import hashed_target
from llc.errors import LLCError
from llc.hashing import content_hash
from llc.jax_setup import configure_jax
from llc.records import ERMRecord
from llc.targets import store
from llc.targets.data import sample_inputs, sample_noise
from llc.targets.erm import ERMResult, minimize
from llc.targets.models import Quadratic, dln_model, mlp_model, quadratic_loss, quadratic_model
from llc.targets.truth import dln_lambda, quadratic_lambda_finite
from llc.tempering import erm_nbeta
from llc.version import code_version

# Sub-streams of the job seed; fixed forever so that data and teachers never change.
TEACHER_STREAM, INPUT_STREAM, NOISE_STREAM, ERM_STREAM, SAMPLER_STREAM = range(5)
ERM_JITTER = 1e-3  # ERM starts at teacher + N(0, ERM_JITTER²): escapes the exact saddle of a rank-0 DLN teacher


@dataclass(frozen=True)
class Target:
    target_id: str
    kind: str
    n_params: int
    w_star: jax.Array
    w_teacher: jax.Array
    x: jax.Array | None
    y: jax.Array | None
    predict: Callable[[jax.Array, jax.Array], jax.Array] | None
    quadratic: Quadratic | None
    erm: ERMRecord
    lambda_true: float | None = None  # custom targets: the entry's own value, if it gave one


def problem_keys(seed: int) -> dict[str, jax.Array]:
    root = jax.random.PRNGKey(seed)
    names = ("teacher", "inputs", "noise", "erm", "sampler")
    streams = (TEACHER_STREAM, INPUT_STREAM, NOISE_STREAM, ERM_STREAM, SAMPLER_STREAM)
    return {name: jax.random.fold_in(root, s) for name, s in zip(names, streams, strict=True)}


def target_id(cfg: Config) -> str:
    spec = {
        "target": hashed_target(dataclasses.asdict(cfg.target)),
        "data": dataclasses.asdict(cfg.data),
        "seed": cfg.seed,
        "precision": cfg.precision,
        "code_version": code_version(),
    }
    return content_hash(spec)


def _model(cfg: Config, dtype: jnp.dtype):
    key = problem_keys(cfg.seed)["teacher"]
    if cfg.target.kind == "mlp":
        return mlp_model(cfg.target, key, dtype)
    if cfg.target.kind == "dln":
        return dln_model(cfg.target, key, dtype)
    return quadratic_model(cfg.target, key, dtype)


def _mean_sq_loss(predict, x, y, sigma):
    """L_n for ERM: mean of ||y - f(x)||²/(2σ²) (the minimiser is the same under the mse loss)."""

    def loss(w):
        r = y - predict(w, x)
        return jnp.mean(jnp.sum(r * r, axis=-1)) / (2 * sigma**2)

    return loss


def build_target(cfg: Config, runs_root: str | Path | None = None) -> Target:
    """Build the target for `cfg`, reusing the stored copy under `runs_root/_targets/` if present."""
    configure_jax()  # a float64 target needs x64 on before its first array
    dtype = jnp.float64 if cfg.precision == "float64" else jnp.float32
    tid = target_id(cfg)
    if cfg.target.kind == "custom":
        return custom_target(cfg, tid)
    model = _model(cfg, dtype)
    stored = store.load(runs_root, tid, cfg.precision) if runs_root is not None else None
    if cfg.target.kind == "quadratic":
        quad = model
        erm = ERMRecord(center="minimum", final_loss=0.0, grad_norm=0.0, steps=0, converged=True)
        return Target(
            target_id=tid, kind="quadratic", n_params=cfg.target.dim, w_star=quad.w0, w_teacher=quad.w0,
            x=None, y=None, predict=None, quadratic=quad, erm=erm,
        )
    if stored is not None:
        arrays, erm_dict = stored
        return Target(
            target_id=tid, kind=cfg.target.kind, n_params=count_params(cfg.target),
            w_star=jnp.asarray(arrays["w_star"]), w_teacher=jnp.asarray(arrays["w_teacher"]),
            x=jnp.asarray(arrays["x"]), y=jnp.asarray(arrays["y"]), predict=model.predict, quadratic=None,
            erm=ERMRecord.from_dict(erm_dict),
        )

    keys = problem_keys(cfg.seed)
    x = sample_inputs(keys["inputs"], cfg.data.x_dist, cfg.data.n, cfg.target.in_dim, dtype)
    y = model.predict(model.teacher, x) + sample_noise(keys["noise"], cfg.data, x, cfg.target.out_dim)
    w_star, erm = _centre(cfg, model.teacher, _mean_sq_loss(model.predict, x, y, cfg.data.noise_scale), keys["erm"],
                          dtype)
    if runs_root is not None:
        store.save(
            runs_root, tid, cfg.precision,
            {"w_star": np.asarray(w_star), "w_teacher": np.asarray(model.teacher), "x": np.asarray(x), "y": np.asarray(y)},
            erm.to_dict(),
        )
    return Target(
        target_id=tid, kind=cfg.target.kind, n_params=count_params(cfg.target), w_star=w_star,
        w_teacher=model.teacher, x=x, y=y, predict=model.predict, quadratic=None, erm=erm,
    )


def custom_target(cfg: Config, tid: str) -> Target:
    """The user's model and data (llc.targets.custom), centred at its params or at the ERM started there."""
    from llc.targets.custom import load_for_job, nll

    data = load_for_job(cfg)
    ell = nll(data.loss, data.predict, data.noise_scale)

    def loss(w):
        return jnp.mean(ell(w, data.x, data.y))

    if cfg.target.center == "erm":
        result = minimize(loss, data.w, cfg.target.erm_tol, cfg.target.erm_steps)
        if not result.converged:
            raise LLCError(
                f"ERM did not converge: gradient norm {result.grad_norm:.3g} > target.erm_tol={cfg.target.erm_tol:g} "
                f"after {result.steps} L-BFGS steps (final loss {result.final_loss:.6g}); raise target.erm_steps, "
                "loosen target.erm_tol, or centre at the entry's params (target.center=given)")
        w_star, steps, final_loss, grad_norm = result.w, result.steps, result.final_loss, result.grad_norm
    else:
        w_star, steps = data.w, 0
        final_loss, grad_norm = float(loss(w_star)), float(jnp.linalg.norm(jax.grad(loss)(w_star)))
    erm = ERMRecord(center=cfg.target.center, final_loss=final_loss, grad_norm=grad_norm, steps=steps, converged=True,
                    tol=cfg.target.erm_tol, bias_bound=erm_bias_bound(cfg, grad_norm))
    return Target(target_id=tid, kind="custom", n_params=int(data.w.shape[0]), w_star=w_star, w_teacher=data.w,
                  x=data.x, y=data.y, predict=data.predict, quadratic=None, erm=erm, lambda_true=data.lambda_true)


def _centre(cfg: Config, teacher: jax.Array, loss: Callable[[jax.Array], jax.Array], key: jax.Array,
            dtype: jnp.dtype) -> tuple[jax.Array, ERMRecord]:
    """w* (the teacher, or the ERM trained from a jittered teacher) and its record; raises if ERM fails."""
    if cfg.target.center == "teacher":
        w_star, steps = teacher, 0
        final_loss, grad_norm = float(loss(w_star)), float(jnp.linalg.norm(jax.grad(loss)(w_star)))
    else:
        jitter = ERM_JITTER * jax.random.normal(key, teacher.shape, dtype)
        result = minimize(loss, teacher + jitter, cfg.target.erm_tol, cfg.target.erm_steps)
        if not result.converged:
            raise LLCError(erm_failure(cfg, result))
        w_star, steps, final_loss, grad_norm = result.w, result.steps, result.final_loss, result.grad_norm
    erm = ERMRecord(center=cfg.target.center, final_loss=final_loss, grad_norm=grad_norm, steps=steps, converged=True,
                    tol=cfg.target.erm_tol, bias_bound=erm_bias_bound(cfg, grad_norm))
    return w_star, erm


def erm_failure(cfg: Config, result: ERMResult) -> str:
    """The message of an ERM that did not reach its tolerance: only fixes that apply to this run."""
    fixes = ["raise target.erm_steps", "loosen target.erm_tol"]
    if cfg.precision != "float64":
        fixes.append("use precision=float64")
    fixes.append("or centre the posterior at the teacher (target.center=teacher)")
    return (
        f"ERM did not converge: gradient norm {result.grad_norm:.3g} > target.erm_tol={cfg.target.erm_tol:g} "
        f"after {result.steps} L-BFGS steps (final loss {result.final_loss:.6g}); {', '.join(fixes)}"
    )


def erm_bias_bound(cfg: Config, grad_norm: float) -> float:
    """Worst-case first-order bias of λ̂ from a non-zero gradient g at w*: (nβ)² |g|² / γ."""
    nbeta = erm_nbeta(cfg.data.n, cfg.posterior.beta0)
    return float(nbeta**2 * grad_norm**2 / max(cfg.posterior.gamma, 1e-12))


def lambda_true(cfg: Config, target: Target, nbeta: float, gamma: float) -> float | None:
    """The known λ for this target, or None (nonlinear MLPs).

    Quadratic: the exact finite-nβ expectation (notes §6); DLN: Aoyagi's value;
    an MLP without hidden layers is a regular linear model: d/2.
    """
    if target.kind == "quadratic":
        return quadratic_lambda_finite(np.asarray(target.quadratic.eigs), nbeta, gamma)
    if target.kind == "custom":
        return target.lambda_true
    if target.kind == "dln":
        return dln_lambda([cfg.target.in_dim, *cfg.target.hidden, cfg.target.out_dim], cfg.target.rank)
    if not cfg.target.hidden:
        return target.n_params / 2
    return None


def quadratic_loss_fn(target: Target) -> Callable[[jax.Array], jax.Array]:
    return lambda w: quadratic_loss(target.quadratic, w)
