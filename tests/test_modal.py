"""`--backend modal` without a Modal account: preflight, GPU names, error classes, local execution."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llc.errors import ConfigError, LLCError
from tests.conftest import REPO

modal = pytest.importorskip("modal", reason="modal is not installed: uv sync (it is in the dev group)")

TINY = ["--set", "sampler.steps=200", "--set", "sampler.warmup=20", "--set", "data.n=500", "--set", "sampler.chains=2"]
FAKE_TOKEN = "as-FAKE-SECRET-do-not-print-91c2"


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """An environment with no Modal credentials: empty HOME, no token variables, no config file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(home / ".modal.toml"))
    for key in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return home


def _llc(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llc", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout)


def test_gpu_names():
    from llc.executors.modal_executor import validate_gpu

    assert validate_gpu("h100") == "H100"
    assert validate_gpu("A100-80GB:2") == "A100-80GB:2"
    assert validate_gpu("a10g") == "A10G"
    assert validate_gpu(None) is None
    for bad in ("V100", "RTX4090", "H100:0", "H100:two", "", "../H100"):
        with pytest.raises(ConfigError, match="--modal-gpu"):
            validate_gpu(bad)


def test_credentials_are_found_without_reading_them_out(no_credentials, monkeypatch):
    from llc.executors.modal_executor import credentials_source, preflight

    assert credentials_source() is None
    with pytest.raises(LLCError, match="modal token new") as info:
        preflight("H100")
    assert "MODAL_TOKEN_ID" in str(info.value)
    preflight("H100", local=True)  # local execution needs no account

    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-123")
    assert credentials_source() is None  # an id without a secret is not enough
    monkeypatch.setenv("MODAL_TOKEN_SECRET", FAKE_TOKEN)
    assert credentials_source() == "environment"
    preflight("H100")
    monkeypatch.delenv("MODAL_TOKEN_ID")
    monkeypatch.delenv("MODAL_TOKEN_SECRET")

    (no_credentials / ".modal.toml").write_text(
        f'[other]\ntoken_id = "ak-1"\ntoken_secret = "{FAKE_TOKEN}"\n\n[mine]\nactive = true\ntoken_id = "ak-2"\n'
    )
    assert credentials_source() is None  # the active profile has no secret
    monkeypatch.setenv("MODAL_PROFILE", "other")
    assert credentials_source() == str(no_credentials / ".modal.toml")


def test_preflight_fails_before_anything_is_submitted(no_credentials, tmp_path, monkeypatch, capsys):
    from llc.cli import main

    def llc(args: list[str]) -> int:  # the entry point in this process: no job runs here
        monkeypatch.setattr("sys.argv", ["llc", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    runs = tmp_path / "runs"
    monkeypatch.setenv("MODAL_TOKEN_ID", FAKE_TOKEN)  # half the credentials
    code = llc(["sweep", "--problem-grid", '[{"name": "p", "set": {"target.hidden": [4]}}]', *TINY,
                "--runs-dir", str(runs), "--backend", "modal", "--modal-gpu", "T4"])
    out = capsys.readouterr()
    assert code == 1
    (line,) = out.err.strip().splitlines()
    assert line.startswith("error: Modal credentials not found: run `modal token new`")
    assert FAKE_TOKEN not in out.out + out.err
    assert not runs.exists()  # no manifest, no staging, nothing

    assert llc(["sweep", "--runs-dir", str(runs), "--backend", "modal", "--modal-gpu", "V100"]) == 2
    out = capsys.readouterr()
    assert "--modal-gpu: 'V100' is not a Modal GPU type" in out.err
    assert FAKE_TOKEN not in out.out + out.err


def test_modal_errors_are_infrastructure_errors(monkeypatch):
    from modal import exception as mx

    from llc.executors.modal_executor import classify_modal_error

    monkeypatch.setenv("MODAL_TOKEN_SECRET", FAKE_TOKEN)
    status, msg = classify_modal_error(mx.FunctionTimeoutError("Function timed out after 60s"))
    assert status == "timeout" and msg.startswith("Modal infrastructure error: the function hit its timeout")
    status, msg = classify_modal_error(mx.ResourceExhaustedError(f"workspace out of credits {FAKE_TOKEN}"))
    assert status == "failed" and "credits exhausted" in msg and FAKE_TOKEN not in msg
    status, msg = classify_modal_error(mx.ImageBuildError("pip failed", "im-123"))
    assert status == "failed" and "image failed to build" in msg
    status, msg = classify_modal_error(mx.ConnectionError("unreachable"))
    assert status == "failed" and msg.startswith("Modal infrastructure error (ConnectionError)")


def test_bring_back_rejects_unsafe_files(tmp_path):
    from llc.executors.modal_executor import bring_back

    with pytest.raises(LLCError, match="unsafe name"):
        bring_back(tmp_path, "sgld-0123456789abcdef", {"metrics.json": b"{}", "../x": b""})
    with pytest.raises(ConfigError, match="run id"):
        bring_back(tmp_path, "../sgld", {"metrics.json": b"{}"})
    with pytest.raises(LLCError, match="without metrics.json"):
        bring_back(tmp_path, "sgld-0123456789abcdef", {"config.json": b"{}"})
    run_dir = bring_back(tmp_path, "sgld-0123456789abcdef", {"metrics.json": b"{}", "config.json": b"{}"})
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.json"]
    assert not list((tmp_path / "_tmp").iterdir())


def test_job_body_runs_through_modal_local_path(no_credentials, tmp_path):
    """The Modal function's body, called through `Function.local`, returns the run directory's files,
    which land in the local runs root exactly like a local run; a job's own error is a job error."""
    runs = tmp_path / "runs"
    grid = [{"sampler": "sgld"}, {"sampler": "sgld", "name": "diverging", "set": {"sampler.step_size": 10}}]
    proc = _llc(["sweep", "--problem-grid", '[{"name": "p", "set": {"target.hidden": [4]}}]',
                 "--sampler-grid", json.dumps(grid), *TINY, "--runs-dir", str(runs), "--backend", "modal",
                 "--modal-local", "--modal-gpu", "T4"], dict(os.environ))
    assert proc.returncode == 1, proc.stderr
    (path,) = (runs / "_sweeps").glob("sweep-*.json")
    data = json.loads(path.read_text())
    ok, bad = data["jobs"]["p/sgld/seed0"], data["jobs"]["p/diverging/seed0"]
    assert ok["status"] == "done" and ok["backend_job_id"] == "modal-local"
    assert data["executor"] == {"backend": "modal", "gpu": "T4", "timeout_s": None, "local": True}
    run_dir = runs / ok["run_id"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["L0.txt", "config.json", "env.json", "metrics.json", "trace.nc"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run_id"] == ok["run_id"] and metrics["family_id"] == ok["family_id"]
    assert bad["status"] == "failed" and bad["error_kind"] == "job" and "diverged" in bad["error"]
    assert not list((runs / "_tmp").iterdir())
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith("_")) == sorted(
        [ok["run_id"], "llc_sweep_results.csv"])
    # The brought-back run is an ordinary complete run: `llc run` / `llc sweep` find it in the cache.
    from llc.runs import load_cached

    assert load_cached(run_dir).to_dict() == metrics
