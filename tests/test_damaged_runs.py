"""A damaged or foreign run directory is never served from the cache: it is reported, moved aside to
RUNS/_damaged and recomputed (`llc run`, sweeps), or named and left out (`llc aggregate`, `llc analyze`)."""

from __future__ import annotations

import json
import shutil

import pytest

from llc.analysis.aggregate import collect_rows
from llc.analysis.plots import find_run_dirs
from llc.config import resolve_config
from llc.runs import layout, run_job
from llc.runs.ids import run_id
from llc.study import Job, is_done
from tests.conftest import run_cli

QUAD = {"target.kind": "quadratic", "target.dim": 4, "data.n": 1000, "posterior.gamma": 10.0,
        "sampler.steps": 200, "sampler.warmup": 50, "sampler.chains": 2}


def config(seed: int = 0):
    return resolve_config(overrides={**QUAD, "seed": seed}, sampler="hmc")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One finished run (seed 0) and its seed-1 twin, to be copied into each test's runs root."""
    root = tmp_path_factory.mktemp("pristine")
    return {seed: run_job(config(seed), runs_root=root).run_dir for seed in (0, 1)}


def fresh_root(tmp_path, pristine, seeds=(0,)):
    root = tmp_path / "runs"
    for seed in seeds:
        shutil.copytree(pristine[seed], root / pristine[seed].name)
    return root


DAMAGE = {
    "truncated metrics": (layout.METRICS, lambda text: text[: len(text) // 2]),
    "empty object": (layout.METRICS, lambda text: "{}"),
    "list": (layout.METRICS, lambda text: "[]"),
    "corrupt trace": (layout.TRACE, None),
}


def damage(run_dir, how):
    name, edit = DAMAGE[how]
    path = run_dir / name
    if edit is None:
        path.write_bytes(b"not a netcdf file")
    else:
        path.write_text(edit(path.read_text()))


@pytest.mark.parametrize("how", list(DAMAGE))
def test_run_reports_moves_aside_and_recomputes(tmp_path, pristine, how):
    root = fresh_root(tmp_path, pristine)
    cfg = config(0)
    run_dir = root / run_id(cfg)
    damage(run_dir, how)
    job = Job(key="q/hmc/seed0", problem="q", sampler="hmc", seed=0, config=cfg, run_id=run_id(cfg),
              family_id="fam")
    assert not is_done(root, job)  # a sweep does not count it as cached

    notices = []
    result = run_job(cfg, runs_root=root, on_notice=notices.append)
    assert not result.cached and layout.is_complete(run_dir)
    assert len(notices) == 1 and "damaged run directory" in notices[0] and run_dir.name in notices[0]
    (moved,) = (root / layout.DAMAGED_DIR).iterdir()
    assert moved.name.startswith(run_dir.name)  # kept, not deleted
    assert result.metrics.estimate.llc_mean == pytest.approx(json.loads((pristine[0] / layout.METRICS).read_text())["llc_mean"])
    assert run_job(cfg, runs_root=root).cached  # repaired: the next call is a cache hit


def test_renamed_copy_of_another_job_is_not_its_result(tmp_path, pristine):
    """Seed 0's run copied under seed 1's run ID, its metrics edited to name that ID: the config
    check still tells them apart, and seed 1 is computed for real."""
    root = fresh_root(tmp_path, pristine)
    cfg1 = config(1)
    forged = root / run_id(cfg1)
    shutil.copytree(root / run_id(config(0)), forged)
    metrics = json.loads((forged / layout.METRICS).read_text())
    (forged / layout.METRICS).write_text(json.dumps({**metrics, "run_id": forged.name}))
    assert layout.is_complete(forged)  # every file parses and the names agree ...

    notices = []
    result = run_job(cfg1, runs_root=root, on_notice=notices.append)
    assert not result.cached and "config.json is not this job's configuration" in notices[0]
    assert result.metrics.seed == 1
    assert result.metrics.estimate.llc_mean == json.loads((pristine[1] / layout.METRICS).read_text())["llc_mean"]


def test_plain_copy_under_another_name_is_incomplete(tmp_path, pristine):
    root = fresh_root(tmp_path, pristine)
    copy = root / run_id(config(1))
    shutil.copytree(root / run_id(config(0)), copy)
    assert "names run" in layout.incomplete_reason(copy)


def test_aggregate_and_analyze_name_the_damaged_directory(tmp_path, pristine):
    root = fresh_root(tmp_path, pristine, seeds=(0, 1))
    bad = root / run_id(config(1))
    damage(bad, "empty object")
    heard = []
    rows = collect_rows(root, on_damaged=lambda path, reason: heard.append((path, reason)))
    assert [r["seed"] for r in rows] == [0] and heard == [(bad, "metrics.json names run None, not the directory's "
                                                               f"{bad.name!r}")]
    heard.clear()
    assert find_run_dirs([root], on_damaged=lambda path, reason: heard.append(path)) == [
        (root / run_id(config(0))).resolve()]
    assert heard == [bad]

    proc = run_cli(["aggregate", str(root), "--csv", str(tmp_path / "out.csv")])
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {bad}: damaged run directory (metrics.json names run None, not the "
                        f"directory's {bad.name!r}); left out"]
