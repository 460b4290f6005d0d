"""`llc trajectory`: λ̂ at each checkpoint, one CSV and figure, resumable after SIGKILL (docs/trajectory.md)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llc.errors import ConfigError
from llc.trajectory import list_checkpoints, save_checkpoint
from tests.conftest import REPO, wait_for

DATA = REPO / "tests" / "data" / "custom"
SCALES = {0: 0.9, 10: 0.97, 20: 0.99, 30: 1.0}  # params = scale x the least-squares fit: loss falls with step
FAST = ["--sampler", "sgld", "--set", "sampler.stop=fixed", "--set", "sampler.steps=200", "--set",
        "sampler.thinning=10", "--set", "sampler.chains=2"]


def _checkpoints(folder: Path) -> dict[int, float]:
    """Write the checkpoints; return each step's training loss, computed here with numpy."""
    sys.path.insert(0, str(DATA))
    try:
        from linear import SIGMA, make
    finally:
        sys.path.remove(str(DATA))
    data = make(0)
    x, y, w = data["x"], data["y"], data["params"]["w"]
    losses = {}
    for step, scale in SCALES.items():
        save_checkpoint(folder, step, {"w": scale * w})
        r = y - x @ (scale * w)
        losses[step] = float(np.mean(np.sum(r * r, axis=1)) / (2 * SIGMA**2))
    return losses


def _cmd(ckpts: Path, runs: Path, entry: str = "linear_blocking.py") -> list[str]:
    return [sys.executable, "-m", "llc", "trajectory", str(ckpts), "--set", "target.kind=custom", "--set",
            f"target.entry={DATA / entry}:make", *FAST, "--runs-dir", str(runs), "--workers", "1"]


def test_checkpoint_format(tmp_path):
    save_checkpoint(tmp_path, 5, {"b": np.zeros(2), "a": [np.ones((2, 3))]})
    (tmp_path / "step_x.npz").write_text("ignored")
    (tmp_path / "notes.txt").write_text("ignored")
    save_checkpoint(tmp_path, 40, {"b": np.zeros(2), "a": [np.ones((2, 3))]})
    assert [(s, p.name) for s, p in list_checkpoints(tmp_path)] == [(5, "step_5.npz"), (40, "step_40.npz")]
    with np.load(tmp_path / "step_5.npz") as f:
        # leaves in jax.tree_util order: dict keys sorted, so "a"'s leaf first
        assert f.files == ["arr_0", "arr_1"] and f["arr_0"].shape == (2, 3) and f["arr_1"].shape == (2,)
    with pytest.raises(ConfigError, match=r"^--steps: no checkpoint for step\(s\) 7 in .*; steps found: 5, 40$"):
        list_checkpoints(tmp_path, [5, 7])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"^checkpoints: no step_<N>\.npz files in "):
        list_checkpoints(tmp_path / "empty")


def test_checkpoint_that_does_not_fit_the_entry(tmp_path):
    from llc.config import resolve_config

    save_checkpoint(tmp_path, 0, {"w": np.zeros((3, 2))})
    with pytest.raises(ConfigError, match=r"^target\.checkpoint: leaf arr_0 has shape \(3, 2\); the entry's params "
                                          r"have \(4, 2\)$"):
        resolve_config("quick", ["target.kind=custom", f"target.entry={DATA / 'linear.py'}:make",
                                 f"target.checkpoint={tmp_path / 'step_0.npz'}"])


@pytest.mark.timeout(900)
def test_trajectory_resumes_after_sigkill_without_recomputing(tmp_path):
    ckpts, runs = tmp_path / "ckpts", tmp_path / "runs"
    losses = _checkpoints(ckpts)
    log = tmp_path / "calls.log"
    driver_log = tmp_path / "driver.log"
    env = {**os.environ, "LLC_TEST_CALL_LOG": str(log), "LLC_TEST_BLOCK_AT": "3"}
    with driver_log.open("w") as out:
        proc = subprocess.Popen(_cmd(ckpts, runs), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        # the third job's entry call blocks forever: by then the first two runs are published
        wait_for(lambda: log.is_file() and len(log.read_text().splitlines()) == 3, 600, "the third job to start",
                 proc=proc, log=driver_log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = sorted(p.name for p in runs.iterdir() if p.name.startswith("sgld-"))
    assert len(done) == 2 and not (ckpts / "llc_trajectory.csv").exists()

    log2 = tmp_path / "calls_rerun.log"
    env = {**os.environ, "LLC_TEST_CALL_LOG": str(log2), "LLC_TEST_BLOCK_AT": "0"}
    rerun = subprocess.run(_cmd(ckpts, runs), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert len(log2.read_text().splitlines()) == 2  # only the two missing checkpoints ran
    assert "4 jobs, 2 cached, 2 to run" in rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == str(ckpts / "llc_trajectory.csv")

    with (ckpts / "llc_trajectory.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == sorted(SCALES)
    assert list(rows[0])[:3] == ["step", "run_id", "family_id"]
    assert len({r["run_id"] for r in rows}) == 4 and sorted(r["status"] for r in rows) == ["cached", "cached", "done", "done"]
    assert {r["sampler.name"] for r in rows} == {"sgld"} and len({r["sampler.steps"] for r in rows}) == 1
    for r in rows:  # L0, the full-data loss at the checkpoint, is its training loss
        assert float(r["L0"]) == pytest.approx(losses[int(r["step"])], rel=1e-10)
        assert float(r["llc_se"]) > 0
    assert set(done) <= {r["run_id"] for r in rows}
    png = (ckpts / "llc_trajectory.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    manifest = json.loads(next((runs / "_sweeps").glob("sweep-*.json")).read_text())
    assert sorted(j["status"] for j in manifest["jobs"].values()) == ["cached", "cached", "done", "done"]
