"""A reference λ in sweeps: one reference job per family, the join onto the other rows of that family
only, unconverged references, analytic truth kept, and a SIGKILLed sweep that resumes without
running its reference twice (docs/sweeps.md, "A reference λ")."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from llc.analysis.aggregate import collect_rows, sweep_rows
from llc.analysis.reference import join_reference
from llc.config import config_to_dict
from llc.errors import ConfigError
from llc.executors.base import Executor, JobStatus, JobUpdate, Task
from llc.executors.job import execute
from llc.executors.sweep import run_sweep
from llc.study import build_study, expand_jobs
from tests.conftest import REPO
from tests.test_sweep_events import gate_env, held
from tests.test_sweep_local import alive, only_manifest, read_csv, statuses, wait_for, worker_pids

# A 4-parameter quadratic (λ analytic): every run takes a few seconds, mostly compilation.
QUAD = {"target.kind": "quadratic", "target.dim": 4, "target.curvature_ratio": 10.0}
FIXED = {"sampler.stop": "fixed", "sampler.steps": 400, "sampler.warmup": 100, "sampler.chains": 2}
# A reference that converges on the quadratic within a few hundred NUTS steps (targets relaxed for speed).
REF_OK = {"sampler": "nuts", "set": {"sampler.chains": 2, "sampler.steps": 400, "sampler.warmup": 100,
                                     "sampler.target_rel_se": 0.05}}
# A reference that cannot converge: 20 draws per chain are far from ESS 100 per chain.
REF_SHORT = {"sampler": "nuts", "name": "ref-short",
             "set": {"sampler.stop": "fixed", "sampler.steps": 20, "sampler.warmup": 20, "sampler.chains": 2}}


class InlineExecutor(Executor):
    """Runs each task in this process, in order (the tests need no worker processes)."""

    name = "inline"

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.ran: list[str] = []

    def submit(self, tasks: Sequence[Task]) -> None:
        self.tasks = list(tasks)

    def wait(self) -> Iterator[JobUpdate]:
        for task in self.tasks:
            yield JobUpdate(task.key, JobStatus.RUNNING, backend_job_id="inline")
            out = execute(task.payload)
            self.ran.append(task.key)
            yield JobUpdate(task.key, JobStatus.DONE, run_dir=out["run_dir"], elapsed_s=out["elapsed_s"])

    def cancel(self) -> list[str]:
        return []


def study(reference, samplers=({"sampler": "sgld"},), seeds=(0, 1), problems=None, base=None):
    data = {
        "base": {"set": {**QUAD, **FIXED, **(base or {})}},
        "problems": problems or [{"name": "f64", "set": {"precision": "float64"}},
                                 {"name": "f32", "set": {"precision": "float32"}}],
        "samplers": list(samplers),
        "seeds": list(seeds),
        "reference": reference,
    }
    return build_study(data, "test.yaml")


def metrics(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def without_sampler(config) -> dict:
    out = config_to_dict(config)
    out.pop("sampler")
    return out


# ------------------------------------------------------------------ planning (no JAX)


@pytest.mark.timeout(60)
def test_one_reference_job_per_family_first_and_on_the_familys_posterior():
    jobs = expand_jobs(study("nuts", samplers=[{"sampler": "sgld"}, {"sampler": "hmc"}]))
    refs = [j for j in jobs if j.is_reference]
    others = [j for j in jobs if not j.is_reference]
    # 2 problems (precisions) x 2 seeds = 4 families, each with one reference, all of them first
    assert len(refs) == 4 and jobs[:4] == refs and len(others) == 8
    assert len({j.family_id for j in refs}) == 4
    assert sorted(j.key for j in refs) == sorted(f"{p}/ref-nuts/seed{s}" for p in ("f32", "f64") for s in (0, 1))
    for ref in refs:
        family = [j for j in others if j.family_id == ref.family_id]
        assert {j.sampler for j in family} == {"sgld", "hmc"}
        assert {(j.problem, j.seed) for j in family} == {(ref.problem, ref.seed)}
        for job in family:  # the same posterior: everything but the sampler block is equal
            assert without_sampler(job.config) == without_sampler(ref.config)
        # NUTS until converged with the tight SE target; the study's fixed-budget sampler keys stay out
        assert ref.config.sampler.name == "nuts"
        assert ref.config.sampler.stop == "converged" and ref.config.sampler.target_rel_se == 0.01
        assert ref.config.sampler.max_tree_depth == 8  # not the quick preset's 4
    # nothing across seeds or precisions: each reference's family differs from the others in exactly that
    by_family = {j.family_id: without_sampler(j.config) for j in refs}
    pairs = {(c["seed"], c["precision"]) for c in by_family.values()}
    assert pairs == {(0, "float64"), (1, "float64"), (0, "float32"), (1, "float32")}


@pytest.mark.timeout(60)
def test_a_study_sampler_identical_to_the_reference_is_the_reference():
    # the preset samples until converged; a NUTS reference builds trees up to depth 8
    nuts = {"sampler": "nuts", "set": {"sampler.target_rel_se": 0.01, "sampler.max_tree_depth": 8}}
    data = {"base": {"set": QUAD}, "problems": [{"name": "f64", "set": {}}, {"name": "f32", "set": {"precision": "float32"}}],
            "samplers": [{"sampler": "sgld"}, nuts], "reference": "nuts"}
    jobs = expand_jobs(build_study(data, "test.yaml"))
    refs = [j for j in jobs if j.is_reference]
    assert [j.key for j in refs] == ["f64/nuts/seed0", "f32/nuts/seed0"]  # reused, not added
    assert len(jobs) == 4 and jobs[:2] == refs


@pytest.mark.timeout(60)
def test_tree_depth_default_is_nuts_only_and_can_be_overridden():
    def ref_config(reference):
        data = {"base": {"set": QUAD}, "samplers": [{"sampler": "sgld"}], "reference": reference}
        return next(j for j in expand_jobs(build_study(data, "test.yaml")) if j.is_reference).config.sampler

    assert ref_config("nuts").max_tree_depth == 8
    assert ref_config({"sampler": "nuts", "set": {"sampler.max_tree_depth": 5}}).max_tree_depth == 5
    hmc = ref_config("hmc")
    assert hmc.name == "hmc" and hmc.stop == "converged" and hmc.target_rel_se == 0.01
    assert ref_config("mclmc").name == "mclmc"  # no NUTS key forced on a sampler without it


@pytest.mark.timeout(60)
def test_reference_errors_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"test.yaml: reference.set: 'target.dim' cannot be set for the reference"):
        study({"sampler": "nuts", "set": {"target.dim": 3}})
    with pytest.raises(ConfigError, match=r"reference: the reference label 'sgld' is also the label of"):
        study({"sampler": "nuts", "name": "sgld"})
    with pytest.raises(ConfigError, match=r"reference.sampler: 'hmcc' is not a sampler"):
        study({"sampler": "hmcc"})
    from tests.conftest import run_cli

    out = run_cli(["sweep", "--problem-grid", '[{"name": "a", "set": {}}]', "--reference", "nosuch",
                   "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: --reference.sampler: 'nosuch' is not a sampler; choose one of {', '.join(_names())}"]
    assert not (tmp_path / "runs" / "_sweeps").exists()


@pytest.mark.timeout(120)
def test_the_nonlinear_study_resolves_and_runs_in_parts():
    from llc.sweeps import study_jobs

    path = REPO / "studies" / "nonlinear.yaml"
    small = study_jobs(path, problems=["*-d1e2-*"])
    # 3 activations x 2 input distributions x 3 seeds = 18 families; 12 sampler entries + 1 reference each
    assert len(small) == 18 * 13 and sum(j.is_reference for j in small) == 18
    assert {j.config.target.activation for j in small} == {"relu", "tanh", "gelu"}
    assert {j.config.data.x_dist for j in small} == {"gauss_iso", "heavy_tailed"}
    n_params = {sum(a * b + b for a, b in zip(d, d[1:], strict=False))
                for j in small for d in [[j.config.target.in_dim, *j.config.target.hidden, 1]]}
    assert n_params == {121}
    budget = [j for j in small if j.sampler.endswith("-fde20k")]
    assert len(budget) == 18 * 6 and {j.config.sampler.max_fde for j in budget} == {20000.0}
    ref = next(j for j in small if j.is_reference)
    assert (ref.config.sampler.name, ref.config.sampler.stop, ref.config.sampler.target_rel_se) == ("nuts", "converged", 0.01)
    none = study_jobs(path, problems=["relu-d1e2-gauss"], reference="none")
    assert len(none) == 3 * 12 and not any(j.is_reference for j in none)
    with pytest.raises(ConfigError, match=r"--problems: 'x\*' matches no problem; problems: relu-d1e2-gauss, "):
        study_jobs(path, problems=["x*"])


def _names() -> list[str]:
    from llc.samplers.registry import sampler_names

    return list(sampler_names())


# ------------------------------------------------------------------ the join on synthetic rows


@pytest.mark.timeout(60)
def test_join_stays_inside_each_family():
    rows = [
        {"run_id": "r0", "family_id": "fam-a", "llc_mean": 10.0, "llc_se": 0.1, "converged": True},
        {"run_id": "s0", "family_id": "fam-a", "llc_mean": 9.0, "llc_se": 0.2, "converged": True},
        {"run_id": "r1", "family_id": "fam-b", "llc_mean": 20.0, "llc_se": 0.3, "converged": False},
        {"run_id": "s1", "family_id": "fam-b", "llc_mean": 19.0, "llc_se": 0.2, "converged": True},
        {"run_id": "x", "family_id": "fam-c", "llc_mean": 5.0, "llc_se": 0.2, "converged": True},
        {"run_id": "f", "family_id": "fam-d", "llc_mean": None, "llc_se": None, "converged": None},
        {"run_id": "s3", "family_id": "fam-d", "llc_mean": 1.0, "llc_se": 0.1, "converged": True},
    ]
    out = {r["run_id"]: r for r in join_reference(rows, {"fam-a": "r0", "fam-b": "r1", "fam-d": "f"})}
    assert out["s0"]["ref_error"] == pytest.approx(-0.1)
    assert out["s0"]["ref_z"] == pytest.approx(-1.0 / math.sqrt(0.05))
    assert (out["s0"]["lambda_ref"], out["s0"]["lambda_ref_se"], out["s0"]["ref_status"]) == (10.0, 0.1, "converged")
    assert out["r0"]["is_reference"] is True and out["r0"]["ref_error"] is None and out["r0"]["lambda_ref"] is None
    assert out["s1"]["ref_status"] == "unconverged" and out["s1"]["ref_error"] is None and out["s1"]["lambda_ref"] is None
    assert out["s3"]["ref_status"] == "missing" and out["s3"]["ref_z"] is None
    assert out["x"]["ref_status"] is None and out["x"]["lambda_ref"] is None  # no reference for fam-c
    assert join_reference(rows, {}) == rows  # no reference anywhere: no new columns


# ------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep with a converging reference, then the same families with a reference that cannot converge."""
    runs = tmp_path_factory.mktemp("ref") / "runs"
    jobs = expand_jobs(study(REF_OK))
    ex = InlineExecutor()
    good = run_sweep(jobs, ex, runs)
    short_jobs = expand_jobs(study(REF_SHORT))
    ex2 = InlineExecutor()
    short = run_sweep(short_jobs, ex2, runs)
    return runs, jobs, good, ex.ran, short, ex2.ran


@pytest.mark.timeout(600)
def test_ref_error_and_ref_z_recomputed_from_the_two_runs_metrics(swept):
    runs, jobs, manifest, ran, _, _ = swept
    assert ran[:4] == [j.key for j in jobs if j.is_reference]  # the references ran first
    rows = sweep_rows(manifest)
    assert len(rows) == 8
    by_run = {r["run_id"]: r for r in rows}
    refs = {j.family_id: j for j in jobs if j.is_reference}
    checked = 0
    for job in jobs:
        row = by_run[job.run_id]
        ref = refs[job.family_id]
        assert row["ref_run_id"] == ref.run_id and row["is_reference"] is job.is_reference
        m_ref = metrics(runs / ref.run_id)
        assert m_ref["family_id"] == job.family_id and m_ref["converged"] is True
        assert row["ref_status"] == "converged"
        if job.is_reference:
            assert row["ref_error"] is None and row["ref_z"] is None
            continue
        m = metrics(runs / job.run_id)
        lam, se = m["llc_mean"], m["llc_se"]
        lam_ref, se_ref = m_ref["llc_mean"], m_ref["llc_se"]
        assert row["lambda_ref"] == lam_ref and row["lambda_ref_se"] == se_ref
        assert row["ref_error"] == pytest.approx((lam - lam_ref) / lam_ref, rel=1e-12)
        assert row["ref_z"] == pytest.approx((lam - lam_ref) / math.sqrt(se**2 + se_ref**2), rel=1e-12)
        checked += 1
    assert checked == 4
    # never across seeds or precisions: four families, four distinct references and λ_ref values
    compared = [r for r in rows if not r["is_reference"]]
    assert len({r["ref_run_id"] for r in compared}) == 4 and len({r["lambda_ref"] for r in compared}) == 4
    for r in compared:
        ref_cfg = json.loads((runs / r["ref_run_id"] / "config.json").read_text())
        assert (ref_cfg["seed"], ref_cfg["precision"]) == (r["seed"], r["precision"])

    # `llc aggregate` rebuilds the same columns from the run directories and the manifests; the
    # latest sweep (the unconverged reference) names the reference of every family there
    agg = {r["run_id"]: r for r in collect_rows(runs)}
    assert len(agg) == 12  # 4 sgld + 4 converging references + 4 short references
    for job in jobs:
        if not job.is_reference:
            assert agg[job.run_id]["ref_status"] == "unconverged"


@pytest.mark.timeout(600)
def test_analytic_lambda_stays_the_truth_and_checks_the_reference(swept):
    runs, jobs, manifest, _, _, _ = swept
    rows = sweep_rows(manifest)
    for row in rows:
        m = metrics(row["run_dir"])
        truth = m["lambda_true"]
        assert truth is not None and row["lambda_true"] == truth  # unchanged by the join
        ref = metrics(runs / row["ref_run_id"])
        assert ref["lambda_true"] == truth  # one posterior, one truth
        lam_ref = ref["llc_mean"]
        assert row["ref_rel_error"] == pytest.approx((lam_ref - truth) / truth, rel=1e-12)
        if not row["is_reference"]:
            assert row["lambda_ref"] != truth


@pytest.mark.timeout(600)
def test_an_unconverged_reference_marks_its_family(swept):
    runs, jobs, _, _, short, ran = swept
    assert len(ran) == 4 and all("/ref-short/" in k for k in ran)  # the sgld jobs came from the cache
    rows = sweep_rows(short)
    assert len(rows) == 8
    for row in rows:
        m_ref = metrics(runs / row["ref_run_id"])
        assert m_ref["converged"] is False
        assert row["ref_status"] == "unconverged"
        for col in ("lambda_ref", "lambda_ref_se", "ref_error", "ref_z", "ref_rel_error"):
            assert row[col] is None
    assert sum(r["is_reference"] for r in rows) == 4


@pytest.mark.timeout(600)
def test_plot_sweep_ref_metrics(swept, tmp_path):
    from llc.analysis import sweep_plots as sp
    from llc.analysis.aggregate import write_csv

    runs, _, manifest, _, short, _ = swept
    csv_path = write_csv(sweep_rows(manifest), tmp_path / "sweep.csv")
    df = sp.load_sweep_csv(csv_path)
    for metric in ("ref_error", "ref_z"):
        fig = sp.plot_sweep(df, size_col="n_params", metric=metric)
        table = fig.llc_table
        assert list(table["sampler"]) == ["sgld"] and int(table["k"].iloc[0]) == 4  # reference rows not drawn
        values = [float(r[metric]) for r in read_csv(csv_path) if r[metric]]
        assert table["mean"].iloc[0] == pytest.approx(sum(values) / 4)
    bad = write_csv(sweep_rows(short), tmp_path / "short.csv")
    with pytest.raises(ConfigError, match="--metric ref_z: no row has a ref_z value"):
        sp.plot_sweep(sp.load_sweep_csv(bad), size_col="n_params", metric="ref_z")


# ------------------------------------------------------------------ SIGKILL and resume


@pytest.mark.timeout(600)
def test_sigkill_then_resume_does_not_run_the_reference_twice(tmp_path):
    """SIGKILL to the driver once the reference is done and the sgld job is held mid-run (a gate in
    the worker holds every sgld job until it is killed); the resumed sweep takes the reference from
    the cache (one attempt, its run directory untouched) and runs only the sgld job."""
    runs = tmp_path / "runs"
    env, gate = gate_env(tmp_path, sampler="sgld")  # test_sweep_events' gate, holding every sgld job
    sets = [a for k, v in {**QUAD, **FIXED}.items() for a in ("--set", f"{k}={v}")]
    args = [sys.executable, "-m", "llc", "sweep", "--problem-grid", '[{"name": "q", "set": {}}]',
            "--sampler-grid", '[{"sampler": "sgld"}]', "--reference", json.dumps(REF_OK), *sets,
            "--seeds", "0", "--workers", "1", "--runs-dir", str(runs)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: held(gate) and (runs / "_sweeps").is_dir()
                 and statuses(only_manifest(runs)) == {"q/ref-nuts/seed0": "done", "q/sgld/seed0": "running"},
                 300, "the reference done and sgld held mid-run", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = only_manifest(runs)
    wait_for(lambda: not any(alive(p) for p in worker_pids(before)), 20, "workers to die with the driver")
    ref = before["jobs"]["q/ref-nuts/seed0"]
    assert ref["reference"] is True and ref["attempts"] == 1
    stamp = (runs / ref["run_id"] / "metrics.json").stat().st_mtime_ns

    out = subprocess.run(args, cwd=REPO, env={**os.environ}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    after = only_manifest(runs)
    assert after["sweep_id"] == before["sweep_id"]
    assert statuses(after) == {"q/ref-nuts/seed0": "cached", "q/sgld/seed0": "done"}
    assert after["jobs"]["q/ref-nuts/seed0"]["attempts"] == 1  # never started again
    assert (runs / ref["run_id"] / "metrics.json").stat().st_mtime_ns == stamp
    assert len([p for p in runs.iterdir() if p.name.startswith("nuts-")]) == 1
    rows = {r["sampler"]: r for r in read_csv(runs / "llc_sweep_results.csv")}
    assert rows["sgld"]["ref_status"] == "converged" and rows["sgld"]["ref_run_id"] == ref["run_id"]
    assert rows["ref-nuts"]["is_reference"] == "True"
