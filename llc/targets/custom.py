"""Custom targets: the user's model and data from an entry function (docs/custom.md).

The entry is called with the job's seed and returns a mapping

    {"apply": (params, x) -> outputs, "params": pytree (the centre), "x": array, "y": array,
     "loss": "gaussian" | "mse" | "cross_entropy", "noise_scale": σ (gaussian only),
     "lambda_true": optional known λ}

Everything is checked here, once, with one-line `ConfigError`s naming the problem; the result
becomes the same `Target` the built-in models produce (a `predict(w, x)` over one flat vector, the
data, w* and its ERM record), so the posterior, every sampler and minibatching use it unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from llc.config.custom import EntryRef, _one_line, file_sha256, parse_entry, source_file
from llc.errors import ConfigError, LLCError, shown

ENTRY_LOSSES = ("gaussian", "mse", "cross_entropy")
REQUIRED_KEYS = ("apply", "params", "x", "y", "loss")
OPTIONAL_KEYS = ("noise_scale", "lambda_true")
CHECKPOINT_PREFIX = "arr_"  # np.savez(path, *leaves) names the leaves arr_0, arr_1, ... in order


@dataclass(frozen=True)
class EntryData:
    """An entry's validated output, cast to the job's precision."""

    predict: Callable[[jax.Array, jax.Array], jax.Array]  # (flat w, x) -> outputs
    w: jax.Array  # flat params (the checkpoint's, if one is given)
    x: jax.Array
    y: jax.Array
    loss: str
    noise_scale: float | None
    lambda_true: float | None
    data_sha256: str

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class EntryInfo:
    """What config resolution takes from the entry."""

    n: int
    n_params: int
    loss: str
    noise_scale: float | None
    data_sha256: str


def nll(loss: str, predict: Callable, sigma: float | None) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """ℓ_i(w) per sample (notes §1): gaussian |y - f|²/(2σ²), mse |y - f|², cross_entropy -log softmax(f)[y]."""
    if loss == "cross_entropy":
        def ce(w, x, y):
            logits = predict(w, x)
            picked = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
            return jax.nn.logsumexp(logits, axis=-1) - picked

        return ce
    scale = 1.0 / (2 * sigma**2) if loss == "gaussian" else 1.0

    def sq(w, x, y):
        r = y - predict(w, x)
        return scale * jnp.sum(r * r, axis=-1)

    return sq


def load_function(ref: EntryRef) -> Callable[..., Any]:
    """Import the entry's module (a file by path, or a module by name) and return its function."""
    try:
        if ref.file is not None:
            if not ref.file.is_file():
                raise ConfigError(f"target.entry: file {shown(str(ref.file), 200)} not found")
            name = f"llc_entry_{hashlib.sha256(str(ref.file).encode()).hexdigest()[:12]}"
            module = types.ModuleType(name)
            module.__file__ = str(ref.file)
            sys.modules[name] = module  # dataclasses and pickling inside user code look the module up here
            folder = str(ref.file.parent)
            if folder not in sys.path:  # the entry may import helper modules next to it
                sys.path.insert(0, folder)
            # compiled here, not by the import system, so no __pycache__ is written next to the user's file
            exec(compile(ref.file.read_bytes(), str(ref.file), "exec"), module.__dict__)
        else:
            source_file(ref)
            module = importlib.import_module(ref.module)
    except ConfigError:
        raise
    except BaseException as exc:  # user code: any failure to import it is the entry's problem
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ConfigError(f"target.entry: importing {shown(ref.text(), 200, plain=True)} failed: {_one_line(exc)}") from None
    fn = getattr(module, ref.function, None)
    if fn is None or not callable(fn):
        raise ConfigError(f"target.entry: {shown(ref.text(), 200, plain=True)}: no function {ref.function!r} in the module")
    return fn


def _array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception:
        arr = None
    if arr is None or arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"target.entry: returned {name} of type {type(value).__name__}; expected a numeric array")
    return arr


def _float(name: str, value: Any, positive: bool) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"target.entry: returned {name}={shown(value)}; expected a number") from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise ConfigError(f"target.entry: returned {name}={shown(value)}; expected a finite number > 0")
    return out


def _apply_checkpoint(leaves: list[np.ndarray], checkpoint: str) -> list[np.ndarray]:
    try:
        with np.load(checkpoint) as data:
            stored = {k: data[k] for k in data.files}
    except Exception as exc:
        raise ConfigError(f"target.checkpoint: {shown(checkpoint, 200)} is not a readable .npz ({_one_line(exc)})") from None
    expected = [f"{CHECKPOINT_PREFIX}{i}" for i in range(len(leaves))]
    if sorted(stored) != sorted(expected):
        raise ConfigError(f"target.checkpoint: {shown(checkpoint, 200)} holds arrays {shown(sorted(stored))}; expected "
                          f"{len(leaves)} leaves named arr_0..arr_{len(leaves) - 1} (np.savez(path, *leaves))")
    out = []
    for i, leaf in enumerate(leaves):
        new = stored[expected[i]]
        if new.shape != leaf.shape:
            raise ConfigError(f"target.checkpoint: leaf arr_{i} has shape {new.shape}; the entry's params have {leaf.shape}")
        out.append(new)
    return out


def _hash(treedef: Any, leaves: list[np.ndarray], x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(repr(sorted(meta.items())).encode())
    h.update(str(treedef).encode())
    for arr in (*leaves, x, y):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def call_entry(ref: EntryRef, seed: int, precision: str, checkpoint: str | None) -> EntryData:
    """Call the entry with `seed`, check everything it returns, and cast it to `precision`."""
    fn = load_function(ref)
    try:
        out = fn(seed)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ConfigError(f"target.entry: {shown(ref.text(), 200, plain=True)}({seed}) raised {_one_line(exc)}") from None
    if not isinstance(out, Mapping):
        raise ConfigError(f"target.entry: returned {type(out).__name__}; expected a mapping with keys "
                          f"{', '.join(REQUIRED_KEYS)} (optional: {', '.join(OPTIONAL_KEYS)})")
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise ConfigError(f"target.entry: returned mapping lacks {', '.join(missing)}; required keys: {', '.join(REQUIRED_KEYS)}")
    unknown = sorted(str(k) for k in out if k not in REQUIRED_KEYS + OPTIONAL_KEYS)
    if unknown:
        raise ConfigError(f"target.entry: unknown key(s) {shown(unknown)}; allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}")
    apply = out["apply"]
    if not callable(apply):
        raise ConfigError(f"target.entry: returned apply of type {type(apply).__name__}; expected a callable (params, x) -> outputs")
    loss = out["loss"]
    if loss not in ENTRY_LOSSES:
        raise ConfigError(f"target.entry: unknown loss {shown(loss)}; allowed: {', '.join(ENTRY_LOSSES)}")
    sigma = None
    if loss == "gaussian":
        if "noise_scale" not in out:
            raise ConfigError("target.entry: loss 'gaussian' needs noise_scale (σ > 0)")
        sigma = _float("noise_scale", out["noise_scale"], positive=True)
    elif out.get("noise_scale") is not None:
        raise ConfigError(f"target.entry: noise_scale applies only to loss 'gaussian' (loss is {loss!r})")
    lam = out.get("lambda_true")
    lam = None if lam is None else _float("lambda_true", lam, positive=True)

    dtype = np.float64 if precision == "float64" else np.float32
    try:
        leaves, treedef = jax.tree_util.tree_flatten(out["params"])
    except Exception as exc:
        raise ConfigError(f"target.entry: params is not a pytree ({_one_line(exc)})") from None
    leaves = [_array("a params leaf", leaf) for leaf in leaves]
    if not leaves or not all(np.issubdtype(leaf.dtype, np.floating) for leaf in leaves):
        raise ConfigError("target.entry: params must be a pytree of floating-point arrays with at least one leaf")
    if checkpoint is not None:
        leaves = _apply_checkpoint(leaves, checkpoint)
    leaves = [leaf.astype(dtype) for leaf in leaves]
    x = _array("x", out["x"])
    y = _array("y", out["y"])
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ConfigError(f"target.entry: x has shape {x.shape} and y {y.shape}; expected the same number n >= 2 of rows")
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(dtype)
    if loss == "cross_entropy":
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"target.entry: cross_entropy needs y as integer class labels of shape (n,), got {y.dtype} {y.shape}")
        y = y.astype(np.int32)
    else:
        if y.ndim != 2:
            raise ConfigError(f"target.entry: loss {loss!r} needs y of shape (n, outputs), got {y.shape} "
                              "(reshape a vector with y[:, None])")
        y = y.astype(dtype)
    data_sha = _hash(treedef, leaves, x, y, {"loss": loss, "noise_scale": sigma, "lambda_true": lam})

    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(leaf) for leaf in leaves])
    w, unravel = ravel_pytree(params)

    def predict(w_flat: jax.Array, xs: jax.Array) -> jax.Array:
        return apply(unravel(w_flat), xs)

    data = EntryData(predict=predict, w=w, x=jnp.asarray(x), y=jnp.asarray(y), loss=loss, noise_scale=sigma,
                     lambda_true=lam, data_sha256=data_sha)
    _check_at_params(data)
    return data


def _check_at_params(data: EntryData) -> None:
    """Output shapes, labels in range, and a finite loss and gradient at params."""
    try:
        outputs = jax.eval_shape(data.predict, data.w, data.x)
    except Exception as exc:
        raise ConfigError(f"target.entry: apply(params, x) failed: {_one_line(exc)}") from None
    shape = getattr(outputs, "shape", None)
    if data.loss == "cross_entropy":
        if shape is None or len(shape) != 2 or shape[0] != data.n:
            raise ConfigError(f"target.entry: cross_entropy needs apply(params, x) of shape (n, classes), got {shape}")
        low, high = int(jnp.min(data.y)), int(jnp.max(data.y))
        if low < 0 or high >= shape[1]:
            raise ConfigError(f"target.entry: labels y span {low}..{high}, out of range for {shape[1]} classes "
                              f"(allowed 0..{shape[1] - 1})")
    elif shape != data.y.shape:
        raise ConfigError(f"target.entry: apply(params, x) has shape {shape}; y has shape {data.y.shape}")
    ell = nll(data.loss, data.predict, data.noise_scale)
    value, grad = jax.jit(jax.value_and_grad(lambda w: jnp.mean(ell(w, data.x, data.y))))(data.w)
    if not bool(jnp.isfinite(value)):
        raise ConfigError(f"target.entry: the loss at params is not finite ({float(value)})")
    if not bool(jnp.all(jnp.isfinite(grad))):
        raise ConfigError("target.entry: the loss gradient at params is not finite")


def inspect_entry(ref: EntryRef, seed: int, precision: str, checkpoint: str | None) -> EntryInfo:
    from llc.jax_setup import configure_jax

    configure_jax()  # float64 entries need x64 before their first array
    data = call_entry(ref, seed, precision, checkpoint)
    return EntryInfo(n=data.n, n_params=int(data.w.shape[0]), loss=data.loss, noise_scale=data.noise_scale,
                     data_sha256=data.data_sha256)


def load_for_job(cfg: Any) -> EntryData:
    """The entry's data for a resolved job, after checking that nothing changed since it was resolved."""
    t = cfg.target
    ref = parse_entry(t.entry)
    if file_sha256(source_file(ref)) != t.entry_sha256:
        raise LLCError(f"target.entry: {ref.text()} changed since this job was configured; resolve the job again")
    if t.checkpoint is not None and (not Path(t.checkpoint).is_file() or file_sha256(Path(t.checkpoint)) != t.checkpoint_sha256):
        raise LLCError(f"target.checkpoint: {t.checkpoint} is missing or changed since this job was configured")
    data = call_entry(ref, cfg.seed, cfg.precision, t.checkpoint)
    if data.data_sha256 != t.data_sha256:
        raise LLCError(f"target.entry: {ref.text()} returned other params or data than when this job was configured "
                       "(is it deterministic in its seed?); resolve the job again")
    return data
