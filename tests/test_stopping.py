"""`sampler.stop: converged`: the stop rule on the quadratic (exact finite-nβ λ), its budget, determinism,
and the flag for impossible λ̂ values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llc.config import resolve_config
from llc.errors import ConfigError
from llc.estimator import estimate
from llc.runs import run_job
from tests.conftest import run_cli
from tests.test_samplers import QUADRATIC, exact_lambda

pytestmark = pytest.mark.timeout(600)

# SGLD on the d = 10 quadratic (exact gradients): 500-step chunks (50 draws of 10 steps), first check at 2000.
UNTIL = {"sampler.stop": "converged", "sampler.steps": 2000, "sampler.warmup": 2000, "sampler.thinning": 10,
         "sampler.max_draws": 400, "sampler.precond": "none"}


def sgld_lambda(h: float) -> float:
    """Exact λ of SGLD's stationary law on the test quadratic: on a direction of curvature K = nβe + γ the
    recursion w' = (1 - hK) w + sqrt(2h) ξ has variance 1 / (K (1 - hK/2)) (h = 0: exact_lambda())."""
    nbeta = 1000 / np.log(1000)
    eigs = np.logspace(0.0, -2.0, 10)
    curv = nbeta * eigs + 10.0
    return float(np.sum(0.5 * nbeta * eigs / (curv * (1 - h * curv / 2))))


def test_sgld_lambda_reduces_to_the_exact_lambda():
    assert sgld_lambda(0.0) == pytest.approx(exact_lambda(), rel=1e-12)


def until_converged(**settings):
    overrides = {**QUADRATIC, **UNTIL, **{f"sampler.{k}": v for k, v in settings.items()}}
    return resolve_config(preset="quick", overrides=overrides, sampler="sgld")


def test_smaller_step_stops_later_and_both_find_the_exact_lambda(tmp_path):
    """The slowest direction relaxes in ~1/(h K_min) steps: a 4x smaller h needs several times the steps."""
    runs = {h: run_job(until_converged(step_size=h, max_steps=400_000), runs_root=tmp_path).metrics
            for h in (1e-3, 2.5e-4)}
    for h, m in runs.items():
        assert m.stop_reason == "converged" and m.estimate.converged, (h, m.stopping.failures)
        assert m.stopping.failures == []
        assert m.estimate.rhat <= 1.01 and m.estimate.ess_bulk >= 100 * 4
        # within 3 SE of SGLD's exact stationary value at this h (ESS 400 leaves SE ≈ 4%)
        assert abs(m.estimate.llc_mean - sgld_lambda(h)) < 3 * m.estimate.llc_se + 0.01 * sgld_lambda(h)
    assert runs[2.5e-4].stopping.steps >= 2 * runs[1e-3].stopping.steps
    # the reported work is the work done: one minibatch (here: exact) gradient per step plus 1 FDE per kept draw
    m = runs[1e-3]
    assert m.stopping.fde_per_chain == pytest.approx(m.stopping.steps * (1 + 1 / 10))
    # relaxation times of the γ-held directions: (warm-up + steps) × h × γ, from the config's own numbers
    for h, m in runs.items():
        assert m.stopping.relaxation_times == pytest.approx((2000 + m.stopping.steps) * h * 10.0, rel=1e-12)


def test_exhausted_budget_is_not_converged(tmp_path):
    m = run_job(until_converged(step_size=1e-6, max_steps=4000), runs_root=tmp_path).metrics
    assert m.stop_reason == "budget" and m.stopping.reason == "budget"
    assert m.estimate.converged is False and m.stopping.failures
    assert m.stopping.steps <= 4000 and m.stopping.checks >= 1
    assert m.n_draws == m.stopping.steps // m.stopping.thinning


def test_fde_budget_is_never_exceeded(tmp_path):
    m = run_job(until_converged(step_size=1e-6, max_fde=3000), runs_root=tmp_path).metrics
    assert m.stop_reason == "budget"
    assert m.stopping.fde_per_chain <= 3000
    assert m.work.fde_sampling == pytest.approx(4 * m.stopping.fde_per_chain)


def test_draws_do_not_depend_on_how_sampling_was_chunked(tmp_path):
    """A run that stopped after N steps kept exactly the draws of a fixed run of N steps (same thinning)."""
    until = run_job(until_converged(step_size=1e-3, max_steps=400_000), runs_root=tmp_path).metrics
    assert until.stopping.thinning == 10  # no halving of the store at this length
    settings = {k: v for k, v in UNTIL.items() if k != "sampler.max_draws"}
    fixed = resolve_config(preset="quick", sampler="sgld", overrides={
        **QUADRATIC, **settings, "sampler.stop": "fixed", "sampler.step_size": 1e-3,
        "sampler.steps": until.stopping.steps, "sampler.loss_trace": "full"})
    again = run_job(fixed, runs_root=tmp_path).metrics
    assert again.run_id != until.run_id
    assert again.estimate.llc_per_chain == until.estimate.llc_per_chain  # bit-identical


def test_store_is_halved_past_max_draws(tmp_path):
    m = run_job(until_converged(step_size=2.5e-4, max_steps=400_000, max_draws=40), runs_root=tmp_path).metrics
    assert m.stopping.thinning > 10 and m.n_draws <= 40 + 4  # at most one chunk (max_draws / 8) past the cap
    assert m.n_draws * m.stopping.thinning <= m.stopping.steps


def test_stopping_point_is_identical_across_processes(tmp_path):
    args = ["run", "--preset", "quick", "--sampler", "sgld", "--json", "--no-progress"]
    for key, value in {**QUADRATIC, **UNTIL, "sampler.step_size": 1e-3}.items():
        args += ["--set", f"{key}={value}"]
    outs = []
    for i, hashseed in enumerate(("1", "777")):
        proc = run_cli(args, runs_dir=tmp_path / f"r{i}", env={"PYTHONHASHSEED": hashseed})
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout))
    a, b = outs
    assert a["run_id"] == b["run_id"]
    assert a["stopping"] == b["stopping"] and a["stopping"]["reason"] == "converged"
    for key in ("llc_mean", "llc_se", "llc_per_chain", "rhat", "ess_bulk", "work"):
        assert a[key] == b[key], key


def test_stop_rule_is_part_of_the_run_id():
    from llc.runs import run_id

    base = until_converged(step_size=1e-3)
    assert run_id(base) != run_id(until_converged(step_size=1e-3, target_rhat=1.005))
    assert run_id(base) != run_id(until_converged(step_size=1e-3, target_rel_se=0.01))
    fixed = resolve_config(preset="quick", sampler="sgld", overrides={
        **QUADRATIC, **{k: v for k, v in UNTIL.items() if k != "sampler.max_draws"}, "sampler.stop": "fixed",
        "sampler.step_size": 1e-3})
    assert run_id(base) != run_id(fixed)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"sampler.stop": "fixed", "sampler.max_steps": 10_000},
     "sampler.max_steps: applies only with sampler.stop=converged"),
    ({"sampler.max_steps": 1000, "sampler.steps": 2000}, "sampler.max_steps: 1000 is below sampler.steps = 2000"),
    ({"sampler.stop": "sometimes"}, "sampler.stop"),
])
def test_bad_stop_settings_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("=", "=")):
        resolve_config(preset="quick", overrides={**QUADRATIC, **UNTIL, **overrides}, sampler="sgld")


def test_minibatch_trace_cannot_decide_convergence():
    with pytest.raises(ConfigError, match="sampler.loss_trace: batch cannot decide"):
        resolve_config(preset="quick", overrides={"sampler.loss_trace": "batch"}, sampler="sgld")


def test_bad_stop_value_exits_2_in_one_line(tmp_path):
    proc = run_cli(["run", "--set", "sampler.stop=auto", "--no-progress"], runs_dir=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "sampler.stop" in proc.stderr
    assert "converged" in proc.stderr and "fixed" in proc.stderr
    assert not any(tmp_path.glob("sgld-*"))


# ---------------------------------------------------------------- impossible λ̂


def test_lambda_above_half_the_dimension_is_flagged():
    """λ̂ = nβ (E[L] - L0) = 20 for d = 10 > d/2 = 5 (+3 SE): not a learning coefficient."""
    rng = np.random.default_rng(0)
    loss = 1.0 + 0.2 + 1e-3 * rng.standard_normal((4, 1000))  # nβ = 100 -> λ̂ ≈ 20
    theta = rng.standard_normal((4, 1000, 4))
    est = estimate(loss, 100.0, 1.0, np.ones(4, bool), theta, "full", n_params=10)
    assert est.llc_mean == pytest.approx(20.0, rel=1e-2)
    assert est.converged is False
    assert est.warnings and "step size is likely too large" in est.warnings[0]
    below = estimate(1.0 - 0.05 + 1e-3 * rng.standard_normal((4, 1000)), 100.0, 1.0, np.ones(4, bool), theta,
                     "full", n_params=10)
    assert below.converged is False and "not a local minimum" in below.warnings[0]
    fine = estimate(1.0 + 0.03 + 1e-3 * rng.standard_normal((4, 1000)), 100.0, 1.0, np.ones(4, bool), theta,
                    "full", n_params=10)
    assert fine.converged is True and not fine.warnings


# SGLD at h = 0.0125 on the quadratic: stable (hK = 1.94 < 2 on the stiffest direction) but that direction's
# variance is inflated 1/(1 - hK/2) ≈ 31x, so λ̂ ≈ 17 > d/2 = 5.
TOO_LARGE = {**QUADRATIC, "sampler.stop": "fixed", "sampler.step_size": 0.0125, "sampler.steps": 4000,
             "sampler.warmup": 500, "sampler.thinning": 4, "sampler.precond": "none", "sampler.loss_trace": "full"}


def test_far_too_large_step_is_flagged_in_the_run(tmp_path):
    m = run_job(resolve_config(preset="quick", sampler="sgld", overrides=TOO_LARGE), runs_root=tmp_path).metrics
    assert m.estimate.llc_mean > 10 / 2 + 3 * m.estimate.llc_se
    assert m.estimate.converged is False
    assert m.estimate.warnings and "step size is likely too large" in m.estimate.warnings[0]
    args = [a for k, v in TOO_LARGE.items() for a in ("--set", f"{k}={v}")]
    proc = run_cli(["run", "--preset", "quick", "--sampler", "sgld", "--no-progress", *args], runs_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: impossible LLC" in proc.stderr and "not converged" in proc.stderr


def test_progress_shows_the_diagnostics_against_their_targets(tmp_path):
    seen = []
    cfg = until_converged(step_size=1e-3, max_steps=400_000, target_rel_se=0.5)
    run_job(cfg, runs_root=tmp_path, on_progress=lambda phase, done, total, note="": seen.append((phase, note)))
    notes = [note for phase, note in seen if phase == "sampling" and note]
    assert notes, seen
    assert all("R̂ " in n and "/1.01" in n and "ESS/chain" in n and "/100" in n and "rel SE" in n for n in notes)


def test_relaxation_minimum_delays_the_first_check(tmp_path):
    """Plain SG until converged is not asked before `min_relaxation` relaxation times 1/(hγ), warm-up included.

    h = 2e-4 and γ = 10: 2e-3 relaxation times per step, 4 after the 2000 warm-up steps, so R = 10 needs
    3000 sampling steps (chunks of 500): no check before that, and every 500 steps after it.
    """
    h, gamma, warmup = 2e-4, 10.0, 2000
    notes: list[tuple[int, str]] = []

    def progress(phase, done, total, note=""):
        if phase == "sampling" and done:
            notes.append((done, note))

    m = run_job(until_converged(step_size=h, min_relaxation=10, max_steps=400_000), runs_root=tmp_path,
                on_progress=progress).metrics
    assert (10 - warmup * h * gamma) / (h * gamma) == pytest.approx(3000)
    assert m.stopping.steps >= 3000
    before = [note for done, note in notes if done < 3000]
    after = [note for done, note in notes if done >= 3000]
    assert before and all(note == "relaxing: first check at 3000 steps" for note in before)
    assert after and not any("relaxing" in note for note in after)
    assert m.stopping.checks == len(after)
    assert m.stopping.relaxation_times == pytest.approx((warmup + m.stopping.steps) * h * gamma, rel=1e-12)
    assert m.stopping.relaxation_times >= 10


def test_budget_before_the_relaxation_minimum_is_not_converged(tmp_path):
    m = run_job(until_converged(step_size=2e-4, min_relaxation=10, max_steps=2500), runs_root=tmp_path).metrics
    assert m.stop_reason == "budget" and m.stopping.steps == 2500
    assert m.stopping.relaxation_times == pytest.approx((2000 + 2500) * 2e-4 * 10.0, rel=1e-12)  # 9 < 10
    assert m.estimate.converged is False
    assert any("sampler.min_relaxation = 10" in w for w in m.estimate.warnings)
    assert m.stopping.checks == 1 and m.stopping.failures  # the diagnostics at the stop are still recorded
    assert m.stopping.min_relaxation == 10  # recorded, so `llc run`'s summary knows the run had its own rule


def test_fast_warmup_step_scale_speeds_the_warmup_by_its_ratio_to_the_sampling_scale(tmp_path):
    """On the data-free quadratic (no heating cap) h = step_scale / λ_max, so warmup_step_scale = 4 × step_scale
    runs the first ¾ of the warm-up at 4h; the relaxation count weighs those steps 4×."""
    import xarray as xr

    cfg = until_converged(step_scale=0.05, warmup_step_scale=0.2, max_steps=400_000)
    result = run_job(cfg, runs_root=tmp_path)
    adaptation = xr.open_datatree(result.run_dir / "trace.nc")["adaptation"]
    h = adaptation["step_size"].values
    np.testing.assert_allclose(adaptation["warmup_speedup"].values, 4.0, rtol=1e-12)
    np.testing.assert_allclose(adaptation["warmup_step_size"].values, 4 * h, rtol=1e-12)
    np.testing.assert_allclose(h * adaptation["curvature_max"].values, 0.05, rtol=1e-12)
    m = result.metrics
    assert m.stopping.relaxation_times == pytest.approx(
        float(np.min(h)) * 10.0 * (1500 * 4 + 500 + m.stopping.steps), rel=1e-12)
    np.testing.assert_array_equal(adaptation["warmup_fast_steps"].values, 1500)  # 2 relaxation times need fewer
    # asked for more relaxation than three quarters of the warm-up give, the fast phase runs until it has them:
    # ceil(R / (f h γ)) steps, here 40 / (4 · 0.05/λ_max · 10) with λ_max = nβ + γ ≈ 155 → ~3100
    long = run_job(until_converged(step_scale=0.05, warmup_step_scale=0.2, min_relaxation=40, max_steps=400_000),
                   runs_root=tmp_path)
    adapt = xr.open_datatree(long.run_dir / "trace.nc")["adaptation"]
    h = adapt["step_size"].values
    np.testing.assert_array_equal(adapt["warmup_fast_steps"].values, np.ceil(40 / (4 * h * 10.0)))
    assert np.all(adapt["warmup_fast_steps"].values > 3000)
    times = h * 10.0 * (adapt["warmup_fast_steps"].values * 4 + 500 + long.metrics.stopping.steps)
    assert long.metrics.stopping.relaxation_times == pytest.approx(float(np.min(times)), rel=1e-12)
    # the warm-up's work counts every fast step: one exact gradient each, plus 20 HVPs (2 FDE) per curvature
    assert long.metrics.work.fde_warmup == pytest.approx(
        float(np.sum(adapt["warmup_fast_steps"].values + 500 + 2 * 20)), rel=1e-12)
    # a sampling step the warm-up would not speed up gets no fast phase (factor max(1, ·) = 1)
    slow = run_job(until_converged(step_scale=0.05, warmup_step_scale=0.01, max_steps=400_000),
                   runs_root=tmp_path)
    speed = xr.open_datatree(slow.run_dir / "trace.nc")["adaptation"]["warmup_speedup"].values
    np.testing.assert_array_equal(speed, 1.0)


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"sampler.warmup_step_scale": 1.0, "sampler.step_size": 1e-4}, "combined with sampler.step_size"),
    ({"sampler.warmup_step_scale": 1.0, "sampler.warmup_step_factor": 4.0}, "combined with sampler.warmup_step_factor"),
    ({"sampler.min_relaxation": 2.0, "sampler.precond": "rmsprop"}, "sampler.precond=none"),
    ({"sampler.min_relaxation": 2.0, "sampler.stop": "fixed"}, "sampler.stop=converged"),
])
def test_fast_warmup_and_relaxation_keys_reject_what_they_cannot_mean(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve_config("quick", overrides, sampler="sgld")


def test_relaxation_minimum_defaults_to_plain_sg_until_converged_only():
    assert resolve_config("full", sampler="sghmc").sampler.min_relaxation == 2.0
    assert resolve_config("quick", ["sampler.precond=none"], sampler="sgld").sampler.min_relaxation == 2.0
    assert resolve_config("full", sampler="sgld").sampler.min_relaxation == 8.0  # the preset's own value
    assert resolve_config("quick", sampler="sgld").sampler.min_relaxation is None  # RMSProp metric
    assert resolve_config("full", ["sampler.stop=fixed"], sampler="sgld").sampler.min_relaxation is None
    assert resolve_config("full", sampler="hmc").sampler.min_relaxation is None
    assert resolve_config("full", ["sampler.min_relaxation=0"], sampler="sghmc").sampler.min_relaxation == 0
