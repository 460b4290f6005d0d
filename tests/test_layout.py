"""The run layout (`llc.runs.layout`) and the metrics record (`llc.records`), without running a job."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from llc.records import ERMRecord, Metrics
from llc.runs import layout
from tests.conftest import write_fake_run

DATA = Path(__file__).parent / "data"
# metrics.json written by `llc run --preset quick --set sampler.steps=400` on main at 7771e83 (before typed records)
MAIN_METRICS = DATA / "metrics_main_7771e83.json"


# ------------------------------------------------------------------------------ is_complete


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_fake_run(tmp_path / "sgld-0123456789abcdef")


def test_complete_run_dir(run_dir):
    assert layout.is_complete(run_dir) and layout.incomplete_reason(run_dir) is None
    assert layout.load_metrics(run_dir).run_id == run_dir.name


@pytest.mark.parametrize("name", layout.RUN_FILES)
def test_missing_file_is_incomplete(run_dir, name):
    (run_dir / name).unlink()
    assert not layout.is_complete(run_dir)
    assert name in layout.incomplete_reason(run_dir)
    assert layout.load_metrics(run_dir) is None


@pytest.mark.parametrize("content", ["", '{"run_id": "sgld-01', "{}", "[]", "null", '{"run_id": "sgld-ffffffffffffffff"}'])
def test_bad_metrics_is_incomplete(run_dir, content):
    """Truncated, empty, not an object, no run_id, or another run's ID."""
    (run_dir / layout.METRICS).write_text(content)
    assert not layout.is_complete(run_dir)


@pytest.mark.parametrize(("name", "content"), [
    (layout.CONFIG, b'{"target": '), (layout.ENV, b""), (layout.L0_FILE, b"nan-ish\n"), (layout.TRACE, b"partial"),
])
def test_unparseable_file_is_incomplete(run_dir, name, content):
    (run_dir / name).write_bytes(content)
    assert not layout.is_complete(run_dir)


def test_not_a_directory(tmp_path):
    assert not layout.is_complete(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    assert not layout.is_complete(tmp_path / "file")


# ------------------------------------------------------------------------------ atomic writes


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_writers_leave_no_temp_file_and_respect_umask(tmp_path, umask_027):
    out = tmp_path / "sub"
    layout.write_json_atomic(out / "a.json", {"b": 1, "a": float("nan")})
    layout.write_text_atomic(out / "t.txt", "λ\n")
    layout.write_bytes_atomic(out / "b.bin", b"\x00\x01")
    layout.copy_atomic(out / "b.bin", out / "c.bin")
    with layout.atomic_path(out / "lib.png", suffix=".png") as tmp:
        assert tmp.parent == out and tmp.suffix == ".png"
        tmp.write_bytes(b"png")  # what a library writer (savefig, to_netcdf) would do
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.bin", "c.bin", "lib.png", "t.txt"]
    assert (out / "a.json").read_text() == '{\n  "a": NaN,\n  "b": 1\n}\n'
    assert (out / "t.txt").read_text(encoding="utf-8") == "λ\n"
    assert (out / "c.bin").read_bytes() == b"\x00\x01" and (out / "lib.png").read_bytes() == b"png"
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), layout.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("library failed")
    with pytest.raises(TypeError):
        layout.write_json_atomic(target, {"x": object()})
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


# ------------------------------------------------------------------------------ Metrics


MAIN_KEYS = [
    "L0", "beta", "code_version", "converged", "device", "erm", "ess_bulk", "ess_per_fde", "ess_per_sec", "ess_tail",
    "family_id", "gamma", "lambda_true", "llc_mean", "llc_per_chain", "llc_se", "llc_std", "loss_trace", "n_chains",
    "n_chains_diverged", "n_chains_used", "n_data", "n_draws", "n_params", "nbeta", "precision", "rhat", "rhat_theta",
    "run_id", "sampler", "seed", "target_id", "timing", "versions", "wnv_fde", "wnv_time", "work",
]


def test_main_metrics_round_trip():
    """A metrics.json written before the typed records reads and writes back unchanged."""
    data = json.loads(MAIN_METRICS.read_text())
    assert sorted(data) == MAIN_KEYS
    metrics = Metrics.from_dict(data)
    assert metrics.to_dict() == data
    assert not metrics.extra and not metrics.absent
    # keys added since: written when set (old runs lack them and still read back exactly)
    assert sorted(Metrics.flat_keys()) == sorted([*MAIN_KEYS, "stop_reason", "stopping", "warnings", "basin"])
    assert metrics.estimate.llc_mean == data["llc_mean"] and metrics.erm.tol == data["erm"]["tol"]
    assert metrics.timing.sampling_s == data["timing"]["sampling_s"] and metrics.work.grad_evals == 3360.0
    assert metrics.lambda_true is None and metrics.efficiency.wnv_fde == data["wnv_fde"]


def test_old_and_new_keys_are_tolerated():
    """Unknown keys are kept, missing ones read as None and are not invented on the way back."""
    data = json.loads(MAIN_METRICS.read_text())
    del data["rhat_theta"], data["timing"], data["erm"]["bias_bound"]
    data["future_metric"] = {"x": 1}
    metrics = Metrics.from_dict(data)
    assert metrics.estimate.rhat_theta is None and metrics.timing is None and metrics.erm.bias_bound is None
    assert metrics.extra == {"future_metric": {"x": 1}}
    assert metrics.to_dict() == data


def test_records_write_strict_json():
    """NaN in memory (one chain: no R̂) is null in metrics.json; the quadratic's ERM has no tol or bound."""
    data = json.loads(MAIN_METRICS.read_text())
    est = Metrics.from_dict(data).estimate
    from dataclasses import replace

    assert replace(est, rhat=float("nan"), llc_per_chain=(1.5, None)).to_dict()["rhat"] is None
    erm = ERMRecord(center="minimum", final_loss=0.0, grad_norm=0.0, steps=0, converged=True)
    assert erm.to_dict() == {"center": "minimum", "final_loss": 0.0, "grad_norm": 0.0, "steps": 0, "converged": True}


def test_replaced_run_left_by_a_killed_process_is_removed(tmp_path):
    """`publish_dir(replace=True)` moves the old run aside under a staging name; if the process dies before
    deleting it, the next staging directory of this host removes it (its writer's PID is gone)."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    staging = tmp_path / layout.TMP_DIR
    left = staging / layout.staging_name("sgld-0123456789abcdef-old", pid=dead.pid)
    left.mkdir(parents=True)
    (left / layout.METRICS).write_text("{}")
    fresh = layout.new_staging_dir(tmp_path, "sgld-0123456789abcdef")
    assert not left.exists() and fresh.is_dir()
