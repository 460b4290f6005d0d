"""Where results are written: file modes follow the umask, and outputs that cannot be written (a
directory named as a file, a read-only root, a sweep's CSV in the way) are one-line errors, exit 2.

One tiny real run (module fixture) is made under umask 022; the rest works on it or on fakes.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import csv
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from llc.analysis import sweep_plots as SP
from llc.analysis.aggregate import collect_rows, default_aggregate_path, default_csv_path, write_csv
from llc.config import resolve_config
from llc.executors.manifest import Manifest
from tests.conftest import REPO, run_cli, write_fake_run

OVERRIDES = ["target.kind=dln", "target.in_dim=3", "target.hidden=[3]", "target.out_dim=3", "target.rank=1",
             "data.n=500", "sampler.chains=2", "sampler.steps=200", "sampler.warmup=100"]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """One finished run, made under umask 022, in a runs root of its own."""
    from llc.runs import run_job

    root = tmp_path_factory.mktemp("runs")
    with umask(0o022):
        return run_job(resolve_config(preset="quick", overrides=OVERRIDES, sampler="sgld"), runs_root=root).run_dir


def _one_line_error(res: subprocess.CompletedProcess, needle: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr


# ------------------------------------------------------------------------------ modes


def test_every_output_follows_umask_022(real_run, tmp_path):
    root = real_run.parent
    for name in ("metrics.json", "config.json", "trace.nc", "L0.txt", "env.json"):
        assert _mode(real_run / name) == 0o644, name
    assert _mode(real_run) == 0o755
    (target,) = [p for p in (root / "_targets").iterdir() if not p.name.startswith(".")]
    assert _mode(target) == 0o755 and all(_mode(p) == 0o644 for p in target.iterdir())
    with umask(0o022):
        manifest = Manifest(tmp_path, "s1")
        manifest.start([{"key": "k", "run_id": real_run.name}], {"k": "pending"}, {})
        csv_path = write_csv(collect_rows(root), tmp_path / "out" / "rows.csv")
        png = SP.save_sweep_figure(SP.plot_sweep(SP.load_sweep_csv(csv_path), "n_params"), tmp_path / "fig.png")
    assert _mode(manifest.path) == 0o644 and _mode(manifest.lock_path) == 0o644
    assert _mode(manifest.path.parent) == 0o755 and _mode(tmp_path / "out") == 0o755
    assert _mode(csv_path) == 0o644 and _mode(png) == 0o644


def test_group_writable_umask_gives_group_writable_outputs(real_run, tmp_path):
    """Under umask 002 (a shared project directory) collaborators can write, so the lock is 0664."""
    from llc.targets import store

    with umask(0o002):
        manifest = Manifest(tmp_path, "s2")
        manifest.start([{"key": "k", "run_id": real_run.name}], {"k": "pending"}, {})
        store.save(tmp_path, "tid", "float64", {"w_star": np.zeros(2)}, {"converged": True})
    assert _mode(manifest.lock_path) == 0o664 and _mode(manifest.path) == 0o664
    assert _mode(tmp_path / "_targets" / "tid") == 0o775
    assert _mode(tmp_path / "_targets" / "tid" / "meta.json") == 0o664


# ------------------------------------------------------------------------------ directories as files


def test_out_or_csv_naming_a_directory(real_run, tmp_path):
    csv_path = write_csv(collect_rows(real_run.parent), tmp_path / "rows.csv")
    folder = tmp_path / "folder"
    folder.mkdir()
    _one_line_error(run_cli(["plot-sweep", "--csv", str(csv_path), "--out", str(folder)]), "is a directory")
    _one_line_error(run_cli(["plot-sweep", "--csv", str(folder)]), "is a directory")
    _one_line_error(run_cli(["aggregate", str(real_run.parent), "--csv", str(folder)]), "is a directory")
    assert list(folder.iterdir()) == []
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    _one_line_error(run_cli(["analyze", str(real_run), "--plots", "rank", "--out", str(a_file)]), "is not a directory")
    assert a_file.read_text() == "x"


# ------------------------------------------------------------------------------ read-only roots


def _copy_root(real_run: Path, dest: Path) -> Path:
    shutil.copytree(real_run.parent, dest, ignore=shutil.ignore_patterns("_targets", "_tmp"))
    return dest


@contextmanager
def _read_only(root: Path) -> Iterator[list[str]]:
    """A command prefix under which `root` is read-only: chmod for a normal user; for root (whom chmod
    does not stop) a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        dirs = [root, *[p for p in root.rglob("*") if p.is_dir()]]
        for d in dirs:
            os.chmod(d, 0o555)
        try:
            yield []
        finally:
            for d in dirs:
                os.chmod(d, 0o755)
        return
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, str(root), "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("running as root without a way to make a read-only mount")
    yield ["unshare", "-m", "sh", "-c", script, str(root)]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["aggregate", "analyze"])
def test_read_only_root_is_a_one_line_error(real_run, tmp_path, command):
    root = _copy_root(real_run, tmp_path / "ro")
    before = _snapshot(root)
    args = [str(root)] if command == "aggregate" else [str(root / real_run.name), "--plots", "running_llc"]
    with _read_only(root) as prefix:
        res = subprocess.run([*prefix, sys.executable, "-m", "llc", command, *args], capture_output=True, text=True,
                             cwd=REPO, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=300)
    _one_line_error(res, "read-only or no permission")
    assert _snapshot(root) == before


# ------------------------------------------------------------------------------ aggregate and the sweep's CSV


def _sweep_csv(root: Path) -> Path:
    """A sweep CSV as `llc sweep` leaves it: one finished row and one failed job."""
    path = default_csv_path(root)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run_id", "status", "error"])
        writer.writerow(["hmc-0000000000000001", "done", ""])
        writer.writerow(["hmc-0000000000000002", "failed", "all chains diverged"])
        writer.writerow(["hmc-0000000000000003", "timeout", "timed out after 60 s"])
    return path


def test_aggregate_leaves_the_sweep_csv_alone(tmp_path):
    root = tmp_path / "runs"
    write_fake_run(root / "hmc-0000000000000001", {"seed": 0, "sampler": {"name": "hmc"}})
    sweep = _sweep_csv(root)
    original = sweep.read_bytes()
    res = run_cli(["aggregate", str(root)])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(default_aggregate_path(root))
    assert sweep.read_bytes() == original
    with default_aggregate_path(root).open() as fh:
        assert [row["run_id"] for row in csv.DictReader(fh)] == ["hmc-0000000000000001"]

    # naming the sweep's CSV explicitly is refused (its failed rows would be lost) unless --force
    _one_line_error(run_cli(["aggregate", str(root), "--csv", str(sweep)]), "2 rows of unfinished jobs")
    assert sweep.read_bytes() == original
    forced = run_cli(["aggregate", str(root), "--csv", str(sweep), "--force"])
    assert forced.returncode == 0, forced.stderr
    assert b"failed" not in sweep.read_bytes()

    # a file that is not an llc results CSV is not replaced either
    notes = tmp_path / "notes.csv"
    notes.write_text("a,b\n1,2\n")
    _one_line_error(run_cli(["aggregate", str(root), "--csv", str(notes)]), "not an llc results CSV")
    assert notes.read_text() == "a,b\n1,2\n"


def test_aggregate_of_an_empty_root_writes_nothing(tmp_path):
    root = tmp_path / "runs"
    (root / "_targets").mkdir(parents=True)
    _one_line_error(run_cli(["aggregate", str(root)]), "no complete run directory")
    assert sorted(p.name for p in root.iterdir()) == ["_targets"]


def test_plot_sweep_falls_back_to_the_aggregate_csv(real_run, tmp_path):
    root = _copy_root(real_run, tmp_path / "runs")
    write_csv(collect_rows(root), default_aggregate_path(root))
    res = run_cli(["plot-sweep"], runs_dir=root)
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip().splitlines()[-1]).parent == root
