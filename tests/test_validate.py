"""`llc validate`: the tolerance rule and a real run of the quick suite's data cases with SGLD."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest

from llc.errors import ConfigError
from llc.validation import SUITES, WORKED_DLN, tolerance, validate, validate_jobs, validation_jobs
from tests.conftest import run_cli


def test_tolerance_adds_data_fluctuation_of_the_seed_mean():
    lam, n = 6.5, 20000
    expected = 0.10 * lam + 2 * math.sqrt(lam / (2 * math.log(n))) / 2
    assert tolerance("hmc", lam, n, 4, uses_data=True) == pytest.approx(expected)
    assert tolerance("sgld", lam, n, 4, uses_data=False) == pytest.approx(0.15 * lam)


def test_full_suite_holds_every_worked_value():
    # Notes §6, written out here rather than read from the suite, so a dropped case fails this test.
    notes = ["dln_5-3-5_r0", "dln_5-4-5_r0", "dln_4-3-8_r0", "dln_3-8-4_r0", "dln_10-5-10_r5", "dln_3-3-3_r3",
             "dln_4-3-8_r2", "dln_5-5-5-5_r2"]
    names = [c.name for c in SUITES["full"]["cases"]]
    assert [n for n in names if n.startswith("dln_")] == notes
    assert {"quadratic_1to1000", "linear_10x2"} <= set(names) and len(WORKED_DLN) == len(notes)
    assert SUITES["full"]["seeds"] == [0, 1, 2, 3]


def test_validate_sgld_on_linear_and_dln(tmp_path):
    """SGLD at its quick preset: the regular linear layer passes; on DLN [4,3,8] r = 2 λ̂ is within its
    tolerance but the chains have not mixed (R̂ of the exact loss ≈ 1.04 after 4000 steps), and the
    suite must say so. With SGLD's minibatch loss trace this R̂ was ≈ 1.000 and the row passed: a rule
    that could not fail. (If SGLD's quick preset ever mixes on this case, this row passes and the test
    should say what now shows an unmixed run.)"""
    out = tmp_path / "val.csv"
    # Through two local workers (the suite's jobs run as a resumable sweep, then rows are read from the runs).
    proc = run_cli(
        ["validate", "--samplers", "sgld", "--cases", "linear_10x2,dln_4-3-8_r2", "--out", str(out), "--workers", "2"],
        runs_dir=tmp_path / "runs", timeout=900,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 of 2 rows missed" in proc.stderr and "dln_4-3-8_r2 sgld" in proc.stderr and "(missed: R̂)" in proc.stderr
    assert "2 validation jobs, 0 cached, 2 to run on local" in proc.stderr
    assert "[2/2] done      dln_4-3-8_r2/sgld/seed0" in proc.stderr or "[2/2] done      linear_10x2/sgld/seed0" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["case"] for r in rows] == ["linear_10x2", "dln_4-3-8_r2"]
    assert [float(r["lambda_true"]) for r in rows] == [11.0, 11.0]
    for r in rows:
        assert abs(float(r["llc_mean"]) - float(r["lambda_true"])) <= float(r["tolerance"])
        assert r["loss_trace"] == "full"  # exact L_n per draw, not the preset's minibatch losses
    linear, dln = rows
    assert linear["passed"] == "True" and float(linear["rhat_max"]) <= 1.01
    assert dln["passed"] == "False" and dln["missed"] == "R̂" and float(dln["rhat_max"]) > 1.01
    assert len(list((tmp_path / "runs" / "_sweeps").glob("sweep-*.json"))) == 1
    # In-process, the same jobs are cache hits: identical rows, same compute seconds (from the runs' metrics).
    again = validate(["sgld"], "quick", tmp_path / "runs", cases=["linear_10x2", "dln_4-3-8_r2"])
    assert [r["llc_mean"] for r in again] == [float(r["llc_mean"]) for r in rows]
    assert [r["seconds"] for r in again] == pytest.approx([float(r["seconds"]) for r in rows])
    # Rows are grouped from the jobs alone: the DLN case's jobs give just its row.
    only_dln = validate_jobs(validation_jobs(["sgld"], "quick", ["dln_4-3-8_r2"]), tmp_path / "runs")
    assert [(r["case"], r["llc_mean"]) for r in only_dln] == [("dln_4-3-8_r2", float(dln["llc_mean"]))]


def test_validate_jobs_rejects_a_job_that_is_not_a_validation_case(tmp_path):
    job = dataclasses.replace(validation_jobs(["hmc"], "quick", ["linear_10x2"])[0], problem="my_mlp")
    with pytest.raises(ConfigError, match="my_mlp is not a validation case"):
        validate_jobs([job], tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_quick_suite(tmp_path):
    """The whole quick suite (4 cases × 6 samplers) at preset defaults. The four full-batch samplers pass
    every row. SGLD and SGHMC are within their λ tolerance everywhere and mix on the quadratic and the
    linear layer; on the DLNs their exact-loss R̂ is above 1.01 at the quick preset's step counts
    (docs/validation.md), so those rows fail on R̂ alone and the exit status is 1."""
    out = tmp_path / "quick.csv"
    proc = run_cli(["validate", "--preset", "quick", "--out", str(out)], runs_dir=tmp_path / "runs", timeout=1800)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 * 6, proc.stdout + proc.stderr
    for r in rows:
        where = f"{r['case']} {r['sampler']}: {r}"
        if r["sampler"] in ("sgld", "sghmc"):
            assert "λ" not in r["missed"], where
            assert (r["passed"] == "True") == (float(r["rhat_max"]) <= 1.01), where
            if not r["case"].startswith("dln_"):
                assert r["passed"] == "True", where
        else:
            assert r["passed"] == "True", where
    assert proc.returncode == (0 if all(r["passed"] == "True" for r in rows) else 1)


def test_unknown_case_exits_2(tmp_path):
    proc = run_cli(["validate", "--samplers", "sgld", "--cases", "nope"], runs_dir=tmp_path)
    assert proc.returncode == 2 and "--cases: unknown nope" in proc.stderr


def test_dry_run_lists_the_suite_without_running(tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(["validate", "--preset", "full", "--samplers", "hmc,sgld", "--dry-run"], runs_dir=runs)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    # 10 cases x 2 samplers x 4 seeds, each with its run ID, nothing done, nothing written
    assert lines[-1].startswith("sweep sweep-") and "80 jobs, 0 done, 80 to run" in lines[-1]
    assert sum(1 for line in lines if line.startswith("dln_5-5-5-5_r2/sgld/seed")) == 4
    assert not runs.exists() or not any(runs.iterdir())
