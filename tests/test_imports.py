"""Commands that do no JAX work import no JAX (issue 19): each runs in a fresh process, which then
reports the heavy packages in its `sys.modules`.

A top-level `import jax` (or blackjax, arviz, ...) anywhere on these paths (the config schema, a
sampler's SPEC module, run IDs, the run layout, the cache lookup, the study, the executors' planning)
makes the matching test fail. The tests assert what is imported, never how long it takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llc.config import config_to_dict, resolve_config
from llc.runs import run_id
from tests.conftest import REPO, write_fake_run

pytestmark = pytest.mark.timeout(120)

# JAX and what only JAX work, estimation or trace.nc needs; a command that does no such work loads none.
JAX_SIDE = ("jax", "jaxlib", "blackjax", "haiku", "optax", "arviz", "arviz_base", "arviz_stats", "xarray", "scipy")
# Tables and figures: allowed where a command draws (plot-sweep), nowhere else.
PLOTTING = ("pandas", "matplotlib")

# Runs the `llc` console entry point in this (fresh) process, then writes its exit code and the heavy
# modules it loaded as JSON to the file named by argv[1]; argv[2:] are the command's arguments.
PROBE = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["llc", *args]
from llc.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
heavy = json.loads(open(out).read())
with open(out, "w") as fh:
    json.dump({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}, fh)
"""


def probe(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """Run `llc ARGS` in a fresh interpreter; its output and {"code", "loaded"}."""
    out = tmp_path / "probe.json"
    out.write_text(json.dumps([*JAX_SIDE, *PLOTTING]))
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=100)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


@pytest.fixture
def finished_run(tmp_path):
    """A runs root holding the finished run of `llc run --preset quick`: its config.json is the job's own
    and its metrics.json a real one (tests/data) under this run's ID, so `llc run` takes it from the cache."""
    runs = tmp_path / "runs"
    cfg = resolve_config(preset="quick", overrides=[])
    rid = run_id(cfg)
    run_dir = write_fake_run(runs / rid, config_to_dict(cfg))
    metrics = json.loads((REPO / "tests" / "data" / "metrics_main_7771e83.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "run_id": rid}))
    return runs, run_dir


def test_cached_run_imports_no_jax(finished_run, tmp_path):
    runs, run_dir = finished_run
    proc, result = probe(["run", "--preset", "quick", "--runs-dir", str(runs), "--no-progress"], tmp_path)
    assert result["code"] == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    assert "[cached]" in proc.stderr  # the cache answered: nothing ran
    assert result["loaded"] == []


def test_dry_sweep_imports_no_jax(finished_run, tmp_path):
    runs, _ = finished_run
    proc, result = probe(["sweep", "study.yaml", "--dry-run", "--runs-dir", str(runs)], tmp_path)
    assert result["code"] == 0, proc.stderr
    assert "18 jobs, 0 done, 18 to run" in proc.stdout.strip().splitlines()[-1]
    assert result["loaded"] == []


@pytest.mark.parametrize("args", [
    ["--help"],
    ["run", "--help"],
    ["trajectory", "--help"],
    ["run", "--print-config", "--sampler", "nuts"],
    ["validate", "--dry-run"],
    ["aggregate"],
], ids=lambda args: " ".join(args))
def test_commands_without_jax_work_import_no_jax(args, finished_run, tmp_path):
    runs, run_dir = finished_run
    if args[0] in ("validate", "aggregate"):
        args = [*args, "--runs-dir", str(runs)] if args[0] == "validate" else [*args, str(runs)]
    proc, result = probe(args, tmp_path)
    assert result["code"] == 0, proc.stderr
    if args[0] == "aggregate":
        assert proc.stdout.strip().splitlines()[-1] == str(runs / "llc_aggregate.csv")
        assert run_dir.name in (runs / "llc_aggregate.csv").read_text()
    assert result["loaded"] == []


def test_plot_sweep_imports_no_jax(finished_run, tmp_path):
    runs, _ = finished_run
    csv = runs / "llc_aggregate.csv"
    assert probe(["aggregate", str(runs)], tmp_path)[1]["code"] == 0
    png = tmp_path / "sweep.png"
    proc, result = probe(["plot-sweep", "--csv", str(csv), "--out", str(png)], tmp_path)
    assert result["code"] == 0, proc.stderr
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not set(result["loaded"]) & set(JAX_SIDE), result["loaded"]
