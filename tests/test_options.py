"""Every value of the data and target options runs, and does what it says; ERM and stored-target failures.

Five tiny runs cover every `data.x_dist`, `data.noise`, `target.activation` and `target.center` value.
Each asserts a finite λ̂ and checks, on the stored data and teacher, the property the option promises,
with statistics computed here (not by the code that drew the data).
"""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from llc.config import resolve_config
from llc.config.schema import ACTIVATIONS, CENTERS, NOISES, X_DISTS
from llc.errors import LLCError
from tests.conftest import run_cli

TINY = ["data.n=500", "sampler.steps=200", "sampler.warmup=20", "sampler.chains=2", "target.hidden=[4]"]
NOISE_SCALE = 0.1  # the quick preset's data.noise_scale

COMBOS = [  # (x_dist, noise, activation, center): together, every value at least once
    ("gauss_iso", "gauss", "relu", "erm"),
    ("gauss_aniso", "hetero", "tanh", "teacher"),
    ("mixture", "student_t", "gelu", "erm"),
    ("lowdim_manifold", "outliers", "identity", "teacher"),
    ("heavy_tailed", "gauss", "relu", "teacher"),
]


def test_the_combinations_cover_every_value():
    # center=given is custom targets' own (tests/test_custom_target.py)
    for i, values in enumerate((X_DISTS, NOISES, ACTIVATIONS, tuple(c for c in CENTERS if c != "given"))):
        assert {c[i] for c in COMBOS} == set(values)


def _excess_kurtosis(v: np.ndarray) -> float:
    v = v - v.mean()
    return float(np.mean(v**4) / np.mean(v**2) ** 2 - 3)


def _ranks(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(v)).astype(float)


def _check_inputs(x_dist: str, x: np.ndarray) -> None:
    std = x.std(axis=0)
    if x_dist == "gauss_iso":
        assert np.all(np.abs(std - 1) < 0.15) and abs(_excess_kurtosis(x.ravel())) < 0.5, std
    elif x_dist == "gauss_aniso":  # standard deviations from 1 down to 0.1 across the 4 coordinates
        assert np.all(np.diff(std) < 0) and 7 < std[0] / std[-1] < 14, std
    elif x_dist == "mixture":  # 4 clusters of std 0.5 in 4 dimensions: one direction holds only their spread
        smallest = np.linalg.eigvalsh(np.cov(x.T))[0]
        assert 0.15 < smallest < 0.4, smallest
    elif x_dist == "lowdim_manifold":  # every coordinate a monotone function of one latent variable
        ranks = np.stack([_ranks(c) for c in x.T])
        corr = np.corrcoef(ranks)
        assert np.all(np.abs(corr) > 0.95), corr
    elif x_dist == "heavy_tailed":  # Student-t(3), unit variance: far heavier tails than a Gaussian
        assert _excess_kurtosis(x.ravel()) > 2 and np.abs(x).max() > 6, _excess_kurtosis(x.ravel())


def _check_noise(noise: str, x: np.ndarray, r: np.ndarray) -> None:
    r = r.ravel()
    big = float(np.mean(np.abs(r) > 5 * NOISE_SCALE))
    if noise == "gauss":
        assert abs(r.std() / NOISE_SCALE - 1) < 0.1 and abs(_excess_kurtosis(r)) < 0.6 and big == 0
    elif noise == "hetero":  # the scale grows with |x|
        corr = np.corrcoef(np.abs(r), np.linalg.norm(x, axis=1))[0, 1]
        assert corr > 0.2, corr
    elif noise == "student_t":
        assert _excess_kurtosis(r) > 1.5, _excess_kurtosis(r)
    elif noise == "outliers":  # 5% of the labels get an extra error of 10σ
        assert 0.02 < big < 0.08, big


def _check_activation(activation: str, predict, w, x: np.ndarray) -> None:
    """What each activation makes of the teacher, seen from outside: identity is affine in x (least-squares
    residual ~ 0); relu is piecewise linear (zero second difference near a generic point) and the smooth
    ones are not; tanh's output stays bounded far out (10⁶x) where relu and gelu grow without bound."""
    def f(points):
        return np.asarray(predict(w, jnp.asarray(np.atleast_2d(points))))

    out = f(x)
    design = np.hstack([x, np.ones((len(x), 1))])
    coef, *_ = np.linalg.lstsq(design, out, rcond=None)
    rel = np.linalg.norm(design @ coef - out) / np.linalg.norm(out - out.mean())
    assert (rel < 1e-8) == (activation == "identity"), (activation, rel)
    if activation != "identity":
        assert rel > 1e-3, rel
    h, d = 1e-3, np.ones(x.shape[1]) / np.sqrt(x.shape[1])
    curvature = [abs(float((f(p + h * d) - 2 * f(p) + f(p - h * d)).item())) for p in x[:20]]
    assert (max(curvature) < 1e-10) == (activation in ("relu", "identity")), (activation, curvature)
    far = float(np.abs(f(1e6 * x[:20])).max())  # bounded only if every hidden unit saturates
    assert (far < 1e3) == (activation == "tanh"), (activation, far)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("x_dist", "noise", "activation", "center"), COMBOS, ids=["-".join(c) for c in COMBOS])
def test_every_data_and_target_option_runs(tmp_path, x_dist, noise, activation, center):
    from llc.runs import run_job
    from llc.targets import build_target

    cfg = resolve_config("quick", [*TINY, f"data.x_dist={x_dist}", f"data.noise={noise}",
                                   f"target.activation={activation}", f"target.center={center}"])
    result = run_job(cfg, runs_root=tmp_path)
    m = result.metrics
    assert math.isfinite(m.estimate.llc_mean), m.estimate
    assert m.erm.center == center
    target = build_target(cfg, tmp_path)  # the stored target of that run
    x, y = np.asarray(target.x), np.asarray(target.y)
    w_star, teacher = np.asarray(target.w_star), np.asarray(target.w_teacher)
    assert x.shape == (500, 4) and y.shape == (500, 1)
    if center == "teacher":
        assert np.array_equal(w_star, teacher) and m.erm.steps == 0
    else:
        assert not np.array_equal(w_star, teacher) and m.erm.steps > 0 and m.erm.grad_norm <= cfg.target.erm_tol
    _check_inputs(x_dist, x)
    _check_noise(noise, x, y - np.asarray(target.predict(target.w_teacher, target.x)))
    _check_activation(activation, target.predict, target.w_teacher, x)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert (config["data"]["x_dist"], config["data"]["noise"]) == (x_dist, noise)
    assert (config["target"]["activation"], config["target"]["center"]) == (activation, center)


@pytest.mark.timeout(300)
def test_erm_that_does_not_converge_exits_1_with_the_fix(tmp_path):
    """One L-BFGS step cannot reach the ERM tolerance: exit 1, one line naming the gradient norm, the
    tolerance and the fix (raise target.erm_steps), nothing written. With the steps raised, it converges."""
    from llc.targets import build_target

    runs = tmp_path / "runs"
    # data.n=2000: there the preset's ERM converges (test_runs.SMALL); at n <= 1000 it may not, at any step count.
    proc = run_cli(["run", "--set", "target.erm_steps=1", "--set", "data.n=2000", "--no-progress"], runs_dir=runs)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "ERM did not converge: gradient norm" in line and "after 1 L-BFGS steps" in line, line
    assert "raise target.erm_steps" in line and "Traceback" not in proc.stderr
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith("_")]
    fixed = resolve_config("quick", ["data.n=2000", "target.erm_steps=2000"])
    erm = build_target(fixed, None).erm
    assert erm.converged and erm.grad_norm <= fixed.target.erm_tol and erm.steps > 1


@pytest.mark.timeout(300)
def test_stored_target_of_another_precision_is_refused(tmp_path):
    """A stored target whose precision is not the run's (a hand-copied or tampered store) is never used:
    `llc run` exits 1 naming the file, its precision and the fix, and leaves it as it was; arrays of the
    wrong dtype are refused too. Deleting it (the fix) lets the target be rebuilt."""
    from llc.targets import build_target
    from llc.targets.store import target_dir

    runs = tmp_path / "runs"
    overrides = ["data.n=500", "target.hidden=[4]"]
    cfg = resolve_config("quick", overrides)
    built = build_target(cfg, runs)
    stored = target_dir(runs, built.target_id)
    meta = json.loads((stored / "meta.json").read_text())
    assert meta["precision"] == "float64"
    (stored / "meta.json").write_text(json.dumps({**meta, "precision": "float32"}))
    before = {p.name: p.read_bytes() for p in stored.iterdir()}

    args = ["run", *[x for o in overrides for x in ("--set", o)], "--set", "sampler.steps=100", "--no-progress"]
    proc = run_cli(args, runs_dir=runs)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"stored target {stored} was built at precision float32, not float64; delete it or run at its precision" in line
    assert {p.name: p.read_bytes() for p in stored.iterdir()} == before
    assert not [p for p in runs.iterdir() if not p.name.startswith("_")]

    (stored / "meta.json").write_text(json.dumps(meta))  # right label, wrong arrays
    with np.load(stored / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(stored / "arrays.npz", **{**arrays, "w_star": arrays["w_star"].astype(np.float32)})
    with pytest.raises(LLCError, match=f"^stored target {stored} holds float32 arrays, expected float64$"):
        build_target(cfg, runs)

    for p in stored.iterdir():
        p.unlink()
    stored.rmdir()
    rebuilt = build_target(cfg, runs)
    assert np.array_equal(np.asarray(rebuilt.w_star), np.asarray(built.w_star))
    assert json.loads((stored / "meta.json").read_text())["precision"] == "float64"
