"""`llc analyze`, `llc plot-sweep` and `llc promote-readme-images` on small real runs.

One tiny deep-linear-network problem (known λ) is run once per module for every registered
sampler, plus a 2 samplers × 2 sizes × 2 seeds sweep whose CSV is written by `llc aggregate`.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llc.analysis import plots as P
from llc.analysis import promote as PR
from llc.analysis import sweep_plots as SP
from llc.config import resolve_config
from llc.errors import ConfigError
from llc.runs import run_job
from llc.samplers import REGISTRY

SAMPLERS = sorted(REGISTRY)
SWEEP_SAMPLERS = [s for s in ("sgld", "hmc") if s in REGISTRY] or SAMPLERS[:1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _overrides(hidden: int, seed: int) -> list[str]:
    return ["target.kind=dln", "target.in_dim=3", f"target.hidden=[{hidden}]", "target.out_dim=3", "target.rank=1",
            "data.n=500", "sampler.chains=2", "sampler.steps=200", "sampler.warmup=100", f"seed={seed}"]


def _run(root: Path, sampler: str, hidden: int = 3, seed: int = 0) -> Path:
    cfg = resolve_config(preset="quick", overrides=_overrides(hidden, seed), sampler=sampler)
    return run_job(cfg, runs_root=root).run_dir


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def sampler_runs(runs_root) -> dict[str, Path]:
    """One tiny run per registered sampler (hidden width 3, seed 0)."""
    return {name: _run(runs_root, name) for name in SAMPLERS}


@pytest.fixture(scope="module")
def sweep_dirs(runs_root, sampler_runs) -> list[Path]:
    """2 samplers × 2 sizes (dln hidden 2, 3) × 2 seeds; (hidden 3, seed 0) is shared with sampler_runs."""
    return [_run(runs_root, s, h, seed) for s in SWEEP_SAMPLERS for h in (2, 3) for seed in (0, 1)]


@pytest.fixture(scope="module")
def sweep_csv(sweep_dirs, tmp_path_factory) -> Path:
    """The sweep CSV as `llc aggregate` writes it, from a runs root holding copies of the sweep's runs only."""
    root = tmp_path_factory.mktemp("sweep_root")
    for d in sweep_dirs:
        shutil.copytree(d, root / d.name)
    path = root / "llc_sweep_results.csv"
    res = _cli("aggregate", str(root), "--csv", str(path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(path)
    return path


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 5000 and path.read_bytes()[:8] == PNG_MAGIC


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "llc", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


# ------------------------------------------------------------------------------ llc analyze


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_applicable_figure_per_sampler(sampler, sampler_runs, tmp_path):
    run_dir = sampler_runs[sampler]
    notices: list[str] = []
    results = P.analyze_run(run_dir, out=tmp_path, notify=notices.append)
    written = {r.kind for r in results if r.status == "written"}

    # what applies follows from what each sampler records (docs/plots.md): the Metropolis-adjusted ones an
    # acceptance rate, NUTS also the Hamiltonian, unadjusted MCLMC its energy changes, SG samplers neither
    recorded = {"sgld": set(), "sghmc": set(), "hmc": {"acceptance"}, "nuts": {"acceptance", "energy"},
                "mclmc": {"energy_change"}, "mclmc_adjusted": {"acceptance"}}
    expected = {"running_llc", "rank", "ess_evolution", "autocorr", "theta"} | recorded[sampler]
    assert written == expected
    for kind in written:
        assert _is_png(tmp_path / f"{kind}.png"), kind
    # the others are skipped with one one-line notice each, not an exception
    skipped = set(P.PLOT_KINDS) - expected
    assert {r.kind for r in results if r.status == "skipped"} == skipped
    assert len(notices) == len(skipped) and all("\n" not in n and n.startswith("skip ") for n in notices)


def test_sampler_specific_figures_where_expected(sampler_runs):
    """MCLMC records energy changes; the Metropolis-adjusted samplers record acceptance rates."""
    applies = {s: set(P.applicable_kinds(P.load_run(d))) for s, d in sampler_runs.items()}
    for name in ("hmc", "nuts", "mclmc_adjusted"):
        if name in applies:
            assert "acceptance" in applies[name]
    if "mclmc" in applies:
        assert "energy_change" in applies["mclmc"]
    for name in ("sgld", "sghmc"):
        if name in applies:
            assert not applies[name] & {"acceptance", "energy", "energy_change"}
    if set(SAMPLERS) >= {"sgld", "sghmc", "hmc", "nuts", "mclmc", "mclmc_adjusted"}:
        assert set().union(*applies.values()) == set(P.PLOT_KINDS)  # every figure is drawn for some sampler


def test_running_llc_matches_metrics(sampler_runs):
    run_dir = sampler_runs[SWEEP_SAMPLERS[-1]]
    run = P.load_run(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    fig = P.fig_running_llc(run)
    ax = fig.axes[0]
    lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
    assert lines["pooled"].get_ydata()[-1] == pytest.approx(metrics["llc_mean"], rel=1e-9)
    for c, value in enumerate(metrics["llc_per_chain"]):
        assert lines[f"chain {c}"].get_ydata()[-1] == pytest.approx(value, rel=1e-9)
    # the band's last half-width is the llc_se of metrics.json (same estimator, all draws)
    se = P.running_se(run.llc[run.valid], np.array([run.n_draws]))[0]
    assert se == pytest.approx(metrics["llc_se"], rel=1e-9)
    band = ax.collections[0].get_paths()[0].vertices
    at_end = np.sort(band[band[:, 0] == run.n_draws, 1])
    np.testing.assert_allclose([at_end[0], at_end[-1]], [metrics["llc_mean"] - se, metrics["llc_mean"] + se], rtol=1e-9)
    truth = [line for line in ax.get_lines() if line.get_label().startswith("λ true")]
    assert metrics["lambda_true"] is not None and len(truth) == 1
    assert truth[0].get_ydata()[0] == pytest.approx(metrics["lambda_true"])
    assert "run " + run.run_id in fig.get_suptitle() and run.sampler in fig.get_suptitle()


def test_overwrite_keeps_existing(sampler_runs, tmp_path):
    run_dir = sampler_runs[SAMPLERS[0]]
    first = P.analyze_run(run_dir, kinds=["running_llc"], out=tmp_path, notify=lambda m: None)
    path = first[0].path
    os.utime(path, (1, 1))
    notes: list[str] = []
    again = P.analyze_run(run_dir, kinds=["running_llc"], out=tmp_path, notify=notes.append)
    assert again[0].status == "kept" and path.stat().st_mtime == 1 and notes and "kept" in notes[0]
    redrawn = P.analyze_run(run_dir, kinds=["running_llc"], out=tmp_path, overwrite=True, notify=lambda m: None)
    assert redrawn[0].status == "written" and path.stat().st_mtime > 1


def test_find_run_dirs_skips_private_and_incomplete(runs_root, sampler_runs):
    (runs_root / "_tmp" / "x-0000000000000000").mkdir(parents=True, exist_ok=True)
    half = runs_root / "sgld-ffffffffffffffff"
    half.mkdir(exist_ok=True)
    (half / "config.json").write_text("{}")
    found = P.find_run_dirs([runs_root])
    assert half.resolve() not in found
    assert all(not part.startswith("_") for p in found for part in p.relative_to(runs_root.resolve()).parts)
    assert {d.resolve() for d in sampler_runs.values()} <= set(found)
    assert (runs_root / "_targets").is_dir()
    with pytest.raises(ConfigError):
        P.find_run_dirs([half])
    with pytest.raises(ConfigError):
        P.parse_kinds("rank,bogus")


def test_analyze_cli(sampler_runs, tmp_path):
    sampler = "sgld" if "sgld" in sampler_runs else SAMPLERS[0]
    out = tmp_path / "figs"
    res = _cli("analyze", str(sampler_runs[sampler]), "--plots", "running_llc,energy", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines() == [str(out / "running_llc.png")]
    assert _is_png(out / "running_llc.png")
    if sampler == "sgld":  # energy does not apply to SGLD: one-line notice, no figure, exit 0
        notices = [line for line in res.stderr.splitlines() if line.startswith("skip energy")]
        assert len(notices) == 1 and not (out / "energy.png").exists()
    assert "Traceback" not in res.stderr


# ------------------------------------------------------------------------------ llc plot-sweep


def _expected_points(df: pd.DataFrame, sampler: str) -> pd.DataFrame:
    sub = df[df["sampler"] == sampler]
    g = sub.groupby("n_params")
    return pd.DataFrame({
        "mean": g["llc_mean"].mean(),
        "err": g["llc_se"].apply(lambda s: math.sqrt((s**2).sum()) / len(s)),
        "k": g.size(),
    })


def test_plot_sweep_data_match_csv(sweep_csv, tmp_path):
    df = pd.read_csv(sweep_csv)
    assert len(df) == 4 * len(SWEEP_SAMPLERS)
    fig = SP.plot_sweep(SP.load_sweep_csv(sweep_csv), size_col="n_params", metric="llc_mean")
    ax = fig.axes[0]
    containers = {c.get_label().split(" (")[0]: c for c in ax.containers}
    assert set(containers) == set(SWEEP_SAMPLERS)
    for sampler, cont in containers.items():
        want = _expected_points(df, sampler)
        data_line, _caps, (bars,) = cont.lines[0], cont.lines[1], cont.lines[2]
        np.testing.assert_allclose(data_line.get_xdata(), want.index.to_numpy(dtype=float))
        np.testing.assert_allclose(data_line.get_ydata(), want["mean"].to_numpy(), rtol=1e-12)
        half = np.array([abs(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()])
        np.testing.assert_allclose(half, want["err"].to_numpy(), rtol=1e-9)
        assert (want["k"] == 2).all()
        # the faint dots are the single runs
        dots = next(line for line in ax.get_lines() if line.get_gid() == f"runs:{sampler}")
        sub = df[df["sampler"] == sampler]
        assert sorted(zip(dots.get_xdata(), dots.get_ydata(), strict=True)) == sorted(
            zip(sub["n_params"].astype(float), sub["llc_mean"], strict=True))
    truth = next(line for line in ax.get_lines() if line.get_gid() == "lambda_true")
    want_truth = df.groupby("n_params")["lambda_true"].first()
    np.testing.assert_allclose(truth.get_xdata(), want_truth.index.to_numpy(dtype=float))
    np.testing.assert_allclose(truth.get_ydata(), want_truth.to_numpy())
    out = SP.save_sweep_figure(fig, tmp_path / "sweep.png")
    assert _is_png(out)


def test_plot_sweep_metrics_and_filters(sweep_csv):
    df = SP.load_sweep_csv(sweep_csv)
    raw = pd.read_csv(sweep_csv)
    sampler = SWEEP_SAMPLERS[0]
    fig = SP.plot_sweep(df, "n_params", "rel_error", samplers=[sampler])
    (cont,) = fig.axes[0].containers
    sub = raw[raw["sampler"] == sampler]
    want = ((sub["llc_mean"] - sub["lambda_true"]) / sub["lambda_true"]).groupby(sub["n_params"]).mean()
    np.testing.assert_allclose(cont.lines[0].get_ydata(), want.to_numpy(), rtol=1e-12)

    fig = SP.plot_sweep(df, "n_params", "wnv_time", logy=True)
    for cont in fig.axes[0].containers:
        s = cont.get_label().split(" (")[0]
        sub = raw[raw["sampler"] == s]
        np.testing.assert_allclose(cont.lines[0].get_ydata(), sub.groupby("n_params")["wnv_time"].mean().to_numpy())

    # list-valued filter (commas inside the value) keeps one size
    filters = SP.parse_filters("target.hidden=[3],data.x_dist=gauss_iso")
    assert filters == [("target.hidden", "[3]"), ("data.x_dist", "gauss_iso")]
    fig = SP.plot_sweep(df, "seed", "llc_mean", filters=filters)
    for cont in fig.axes[0].containers:
        np.testing.assert_allclose(cont.lines[0].get_xdata(), [0.0, 1.0])
    with pytest.raises(ConfigError, match="values present: gauss_iso"):
        SP.plot_sweep(df, "n_params", filters=[("data.x_dist", "mixture")])
    with pytest.raises(ConfigError, match="numeric columns"):
        SP.plot_sweep(df, "no_such_column")


def test_plot_sweep_cli_writes_png_and_bad_input_exits_2(sweep_csv, tmp_path):
    out = tmp_path / "s.png"
    ok = _cli("plot-sweep", "--csv", str(sweep_csv), "--out", str(out), "--size-col", "n_params", "--logx")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == str(out) and _is_png(out)
    assert "llc_mean vs n_params" in PR.png_description(out)
    for args, needle in (
        (["--size-col", "no_such_column"], "--size-col"),
        (["--filters", "target.activation=tanh"], "--filters"),
    ):
        bad = _cli("plot-sweep", "--csv", str(sweep_csv), "--out", str(tmp_path / "x.png"), *args)
        assert bad.returncode == 2, bad.stderr
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
        assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_plot_sweep_reads_aggregate_csv(sweep_dirs, runs_root, tmp_path):
    """The CSV written by `llc aggregate` (llc.analysis.aggregate) plots the same points."""
    from llc.analysis.aggregate import collect_rows, write_csv

    path = write_csv(collect_rows(runs_root), tmp_path / "agg.csv")
    df = SP.load_sweep_csv(path)
    ids = {json.loads((d / "metrics.json").read_text())["run_id"] for d in sweep_dirs}
    df = df[df["run_id"].isin(ids)]
    fig = SP.plot_sweep(df, "n_params", "llc_mean")
    assert {c.get_label().split(" (")[0] for c in fig.axes[0].containers} == set(SWEEP_SAMPLERS)


# ------------------------------------------------------------------------------ promotion


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_promote_is_idempotent(sampler_runs, sweep_csv, tmp_path):
    run_dir = sampler_runs[SAMPLERS[0]]
    P.analyze_run(run_dir, kinds=["running_llc", "rank"], overwrite=True, notify=lambda m: None)
    sweep_png = SP.save_sweep_figure(SP.plot_sweep(SP.load_sweep_csv(sweep_csv), "n_params"), tmp_path / "src" / "llc_vs_d.png")
    site = tmp_path / "site"
    site.mkdir()
    readme = site / "README.md"
    readme.write_text("# project\n\nIntro text.\n")

    first = PR.promote([run_dir], ["running_llc", "rank"], [sweep_png], readme=readme)
    assert first.readme_status == "created section" and first.changed
    text = readme.read_text()
    assert text.startswith("# project\n\nIntro text.\n\n" + PR.START) and text.endswith(PR.END + "\n")
    run_id = run_dir.name
    for name in (f"{run_id}_running_llc.png", f"{run_id}_rank.png", "sweep_llc_vs_d.png"):
        assert _is_png(site / "assets" / name)
        assert f"](assets/{name})" in text
    assert f"Run `{run_id}`" in text and "Problem: dln" in text and "llc_mean vs n_params" in text
    before = _hashes(site)
    mtimes = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}

    second = PR.promote([run_dir], ["running_llc", "rank"], [sweep_png], readme=readme)
    assert not second.changed and set(second.assets.values()) == {"unchanged"}
    assert _hashes(site) == before
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()} == mtimes

    # text outside the markers survives a rewrite with a different selection
    readme.write_text(text + "\n## After\n")
    PR.promote([run_dir], ["running_llc"], readme=readme)
    new = readme.read_text()
    assert new.startswith("# project\n\nIntro text.\n\n") and new.endswith(PR.END + "\n\n## After\n")
    assert f"{run_id}_rank.png" not in new

    # the CLI repeating the last selection changes nothing and says so
    before = _hashes(site)
    res = _cli("promote-readme-images", "--from", str(run_dir), "--plots", "running_llc", "--readme", str(readme))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("unchanged") for line in lines)
    assert _hashes(site) == before


def test_promote_errors(sampler_runs, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{PR.START}\nno end\n")
    with pytest.raises(ConfigError, match="unbalanced"):
        PR.splice_readme(readme.read_text(), "G")
    with pytest.raises(ConfigError, match="nothing to promote"):
        PR.promote([], readme=readme)
    with pytest.raises(ConfigError, match="llc analyze"):
        PR.promote([sampler_runs[SAMPLERS[0]]], ["acceptance_missing"], readme=readme)
