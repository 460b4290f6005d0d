"""Run directories: contents, cache, deterministic IDs across processes, crash safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import arviz as az
import pytest

from tests.conftest import REPO, run_cli, wait_for

# data.n=2000: at n=1000 the quick preset's ERM stops at gradient norm 0.0865 > erm_tol 0.069 with the
# installed jax/optax (main at 7771e83 fails the same way), so no run directory would be written.
# stop=fixed, thinning 1: these tests are about run directories, so the step count is pinned (the quick
# preset's default samples until converged; tests/test_stopping.py covers that).
SMALL = ["--set", "sampler.steps=400", "--set", "sampler.warmup=40", "--set", "data.n=2000",
         "--set", "sampler.stop=fixed", "--set", "sampler.thinning=1", "--no-progress"]
METRIC_KEYS = {
    "run_id", "family_id", "sampler", "seed", "n_params", "n_data", "beta", "gamma", "llc_mean", "llc_se",
    "llc_std", "llc_per_chain", "ess_bulk", "ess_tail", "rhat", "rhat_theta", "converged", "lambda_true", "L0", "timing",
    "work", "ess_per_sec", "ess_per_fde", "wnv_time", "wnv_fde", "versions", "code_version",
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    proc = run_cli(["run", *SMALL], runs_dir=runs)
    assert proc.returncode == 0, proc.stderr
    return runs, Path(proc.stdout.strip().splitlines()[-1])


def test_run_directory_is_complete(small_run):
    runs, run_dir = small_run
    assert run_dir.parent == runs
    for name in ("config.json", "metrics.json", "trace.nc", "L0.txt", "env.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert set(metrics["timing"]) >= {"target_s", "compile_s", "warmup_s", "sampling_s", "total_s"}
    assert set(metrics["work"]) >= {"fde_warmup", "fde_sampling", "grad_evals"}
    assert metrics["run_id"] == run_dir.name
    # SGLD: one minibatch gradient per step per chain, b/n FDE each, plus (warm-up) the step-size
    # power iteration: 20 Hessian-vector products at 2 gradients each = 40 per chain (docs/samplers.md's
    # cost table; test_sgld_truth counts the products the power iteration really does).
    cfg = json.loads((run_dir / "config.json").read_text())
    s = cfg["sampler"]
    assert s["step_scale"] is not None
    # with a preconditioner (the quick preset's RMSProp) the power iteration runs again for the frozen metric
    power = 40 * (2 if s["precond"] != "none" else 1)
    assert metrics["work"]["grad_evals"] == s["chains"] * (s["steps"] + s["warmup"] + power)
    assert metrics["work"]["fde_sampling"] == pytest.approx(s["chains"] * s["steps"] * s["batch_size"] / cfg["data"]["n"])
    assert float((run_dir / "L0.txt").read_text()) == metrics["L0"]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["precision"] == "float64" and "jax" in env["versions"]


def test_metrics_json_keys_unchanged(small_run):
    """The typed records write exactly the keys main wrote before them, and read back to the same file."""
    from llc.records import Metrics
    from llc.runs import layout, load_cached
    from tests.test_layout import MAIN_KEYS, MAIN_METRICS

    _, run_dir = small_run
    assert layout.is_complete(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    main = json.loads(MAIN_METRICS.read_text())
    assert sorted(metrics) == sorted([*MAIN_KEYS, "stop_reason", "stopping", "basin"])  # + since issues 16, 17
    for section in ("erm", "timing", "work"):
        assert sorted(metrics[section]) == sorted(main[section]), section
    assert Metrics.from_dict(metrics).to_dict() == metrics
    assert load_cached(run_dir).to_dict() == metrics


def test_trace_is_arviz_netcdf(small_run):
    _, run_dir = small_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with az.from_netcdf(run_dir / "trace.nc") as tree:
        loss = tree["posterior"]["loss"].values
        llc = tree["posterior"]["llc"].values
    assert loss.shape == (4, metrics["n_draws"])
    assert llc.mean() == pytest.approx(metrics["llc_mean"], rel=1e-9)


def test_rerun_is_cached_and_force_recomputes(small_run):
    runs, run_dir = small_run
    before = (run_dir / "metrics.json").stat().st_mtime_ns
    proc = run_cli(["run", *SMALL, "--json"], runs_dir=runs)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["run_id"] == run_dir.name
    assert (run_dir / "metrics.json").stat().st_mtime_ns == before
    proc = run_cli(["run", *SMALL, "--force"], runs_dir=runs)
    assert proc.returncode == 0
    assert (run_dir / "metrics.json").stat().st_mtime_ns != before


def test_same_job_in_two_processes_is_bit_identical(tmp_path):
    outs = []
    for i, hashseed in enumerate(("1", "4242")):
        proc = run_cli(["run", *SMALL, "--json"], runs_dir=tmp_path / f"r{i}", env={"PYTHONHASHSEED": hashseed})
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout))
    assert outs[0]["run_id"] == outs[1]["run_id"]
    assert outs[0]["family_id"] == outs[1]["family_id"]
    assert outs[0]["llc_mean"] == outs[1]["llc_mean"]  # bit-identical, not approximately equal
    assert outs[0]["llc_per_chain"] == outs[1]["llc_per_chain"]


# Runs `llc ARGS` in a child that stops at one point of run_job (LLC_TEST_HOLD) until it is killed, so a
# SIGKILL lands there for certain; the test sees the child arrive by the state it leaves on disk.
#   sampling: no hold; every progress report of the chains goes to the file LLC_TEST_PROGRESS
#   trace:    the staging directory has config.json, L0.txt and env.json; trace.nc is about to be written
#   publish:  the staging directory is complete; the rename to RUNS/<run_id> is next
#   replace:  --force: the old run directory was renamed aside to _tmp/<id>-old.*; the new one is not in place
# run_job imports its JAX-side functions when it runs (after the cache lookup), so the hooks replace them
# in the modules that define them.
HELD_CHILD = """
import os, shutil, signal, sys
import llc.runs.layout as layout, llc.runs.trace as trace, llc.samplers.base as base
mode = os.environ["LLC_TEST_HOLD"]
def hold(*args, **kwargs):
    signal.pause()
if mode == "sampling":
    real_chains = base.run_chains
    def report(phase, done, total, note=""):
        with open(os.environ["LLC_TEST_PROGRESS"], "a") as fh:
            fh.write(f"{phase} {done} {total}\\n")
    base.run_chains = lambda sampler, posterior, cfg, key, on_progress=None, stop_rule=None, min_steps=None: (
        real_chains(sampler, posterior, cfg, key, report, stop_rule, min_steps))
elif mode == "trace":
    trace.write_trace = hold
elif mode == "publish":
    layout.publish_dir = hold
elif mode == "replace":
    real_rmtree = shutil.rmtree
    def rmtree(path, *args, **kwargs):
        if "-old." in os.path.basename(str(path)):
            hold()
        return real_rmtree(path, *args, **kwargs)
    shutil.rmtree = rmtree
sys.argv = ["llc", *sys.argv[1:]]
from llc.cli import main
main()
"""


def staged(runs: Path, *names: str) -> list[Path]:
    """Staging directories under RUNS/_tmp holding exactly the files `names` (no atomic-write leftovers)."""
    tmp = runs / "_tmp"
    dirs = [d for d in tmp.iterdir() if d.is_dir() and "-old." not in d.name] if tmp.is_dir() else []
    return [d for d in dirs if sorted(p.name for p in d.iterdir()) == sorted(names)]


def run_dirs(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if not p.name.startswith("_")]


# ~25-45 s each on 2 cores (the killed run, then the rerun): the rename window and sampling run by default.
@pytest.mark.parametrize("hold", ["sampling", pytest.param("trace", marks=pytest.mark.slow), "publish",
                                  pytest.param("replace", marks=pytest.mark.slow)])
def test_sigkill_leaves_the_run_directory_absent_or_complete(tmp_path, small_run, hold):
    """SIGKILL while sampling, while the staging directory is half written, just before the rename into
    place, and (--force) between moving the old run aside and renaming the new one in: RUNS/<run_id> is
    then absent or a complete run, never partial, and rerunning the job finishes normally."""
    from llc.runs import layout

    runs = tmp_path / "runs"
    shutil.copytree(small_run[0], runs)  # the stored target and SMALL's finished run
    old = small_run[1].name
    progress = tmp_path / "progress.txt"
    if hold == "replace":
        args = [*SMALL, "--force"]  # recompute SMALL's run over the finished one
    else:  # another job of the same target: no ERM, a new run ID
        steps = "200000" if hold == "sampling" else "300"
        args = [*SMALL, "--set", f"sampler.steps={steps}"]
    env = {**os.environ, "LLC_RUNS_DIR": str(runs), "LLC_TEST_HOLD": hold, "LLC_TEST_PROGRESS": str(progress)}
    proc = subprocess.Popen([sys.executable, "-c", HELD_CHILD, "run", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if hold == "sampling":  # a chunk of draws is done and more are to come
            wait_for(lambda: progress.is_file() and any(
                line.split()[0] == "sampling" and 0 < int(line.split()[1]) < int(line.split()[2])
                for line in progress.read_text().splitlines()), 300, "sampling to be under way", proc)
        elif hold == "trace":
            wait_for(lambda: staged(runs, "config.json", "L0.txt", "env.json"), 300, "a half-written staging dir", proc)
        elif hold == "publish":
            wait_for(lambda: staged(runs, *layout.RUN_FILES), 300, "a complete staging dir", proc)
        else:
            wait_for(lambda: list((runs / "_tmp").glob(f"{old}-old.*")) and staged(runs, *layout.RUN_FILES),
                     300, "the old run moved aside", proc)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for run_dir in run_dirs(runs):  # never partial: each run directory present is a complete run
        assert layout.is_complete(run_dir), (run_dir, layout.incomplete_reason(run_dir))
    names = {p.name for p in run_dirs(runs)}
    assert names == ({old} if hold in ("sampling", "trace", "publish") else set())
    dead = list((runs / "_tmp").glob(f"*.{proc.pid}.*"))
    assert hold == "sampling" or dead, "the killed run had a staging directory"

    # The rerun (the same job, or SMALL itself for a shorter sampling one) finishes normally.
    rerun = [*SMALL] if hold in ("sampling", "replace") else args
    done = run_cli(["run", *rerun, "--json"], runs_dir=runs)
    assert done.returncode == 0, done.stderr
    new = runs / json.loads(done.stdout)["run_id"]
    assert layout.is_complete(new)
    assert not list((runs / "_tmp").glob(f"*.{proc.pid}.*")), "the dead run's staging is cleared"


def test_minibatch_trace_needs_mixed_positions_to_count_as_converged():
    """White-noise minibatch losses give R̂ ≈ 1 even when chains sit in different places: θ decides."""
    import numpy as np

    from llc.estimator import estimate

    rng = np.random.default_rng(0)
    # above L0 = 1 at every draw, as an exact trace at a minimum is (one below it by far would leave the basin)
    loss = 1.5 + 0.1 * rng.standard_normal((4, 2000))
    valid = np.ones(4, bool)
    stuck = rng.standard_normal((4, 2000, 4)) * 0.1 + np.arange(4)[:, None, None]  # each chain in its own place
    mixed = rng.standard_normal((4, 2000, 4))
    for trace, theta, expected in [("batch", stuck, False), ("batch", mixed, True), ("full", stuck, True)]:
        stats = estimate(loss, 100.0, 1.0, valid, theta, trace)
        assert stats.rhat < 1.01
        assert (stats.rhat_theta > 2) == (theta is stuck)
        assert stats.converged is expected, (trace, stats.rhat_theta)


def test_one_chain_run_reports_no_rhat(tmp_path):
    """R̂ needs two chains: a one-chain run still finishes, says so, and is never called converged."""
    proc = run_cli(["run", *SMALL, "--set", "sampler.chains=1"], runs_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "R̂ n/a (1 chain)" in proc.stderr
    metrics = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    assert metrics["n_chains"] == 1 and metrics["rhat"] is None and metrics["converged"] is False


def test_stale_staging_of_dead_processes_is_removed(tmp_path):
    """A worker killed while writing leaves `_tmp/<name>.<host>.<pid>.<hex>`; the next staging call on the
    same host removes it when that PID is gone, and never touches a live writer's or another host's."""
    from llc.runs.layout import _host_tag, new_staging_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = tmp_path / "_tmp"
    tmp.mkdir()
    host = _host_tag()
    stale = tmp / f"sgld-0123.{host}.{dead.pid}.deadbeef"
    live = tmp / f"sgld-4567.{host}.{os.getpid()}.cafecafe"
    other_host = tmp / f"sgld-89ab.some-other-node.{dead.pid}.feedfeed"
    for d in (stale, live, other_host):
        (d / "trace.nc").parent.mkdir()
        (d / "trace.nc").write_bytes(b"partial")
    fresh = new_staging_dir(tmp_path, "sgld-cdef")
    assert not stale.exists()
    assert live.exists() and other_host.exists() and fresh.is_dir()
    assert fresh.name.startswith(f"sgld-cdef.{host}.{os.getpid()}.")
