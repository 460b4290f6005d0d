"""Hostile input (issue 20): every case exits 2 with a short one-line error, no traceback, nothing written.

The commands run in-process through `llc.cli.main` (the console entry point, so `LLCError` handling is
the real one); each case fails before any JAX work starts. The memory test runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIG = "9" * 300  # an integer of hundreds of digits
HUGE = "9" * 5000  # past Python's 4300-digit limit for int(str)


def alias_bomb(levels: int = 7) -> str:
    """A few hundred bytes of nested YAML aliases under a list key (9**levels strings once expanded)."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nproblems: [*a{levels - 1}]\n"


# Files a case can name with {name}; written fresh under tmp_path for every case.
FILES = {
    "bomb.yaml": alias_bomb(),
    "bomb_config.yaml": alias_bomb().replace("problems:", "target:"),
    "deep.yaml": "problems: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "dup.yaml": "problems:\n  - name: a\nproblems:\n  - name: b\n",
    "dup_config.yaml": "sampler:\n  steps: 10\n  steps: 20\n",
    "flat_and_nested.yaml": "sampler.steps: 10\nsampler:\n  steps: 20\n",
    "empty.yaml": "",
    "comment_only.yaml": "# nothing here\n",
    "dup.json": '[{"name": "a", "name": "b"}]',
    "nan.json": '[{"name": "a", "set": {"posterior.gamma": NaN}}]',
    "bigint.json": '[{"name": "a", "set": {"sampler.steps": ' + HUGE + "}}]",
    "long_name.yaml": "problems:\n  - name: " + "x" * 100_000 + "\n",
    "long_value.yaml": "problems:\n  - name: a\n    set: {target.hidden: '" + "x" * 100_000 + "'}\n",
    "too_big.yaml": "# " + "x" * 1_100_000 + "\n",
    "too_many_jobs.yaml": "problems:\n" + "".join(
        f"  - {{name: p{i}, set: {{target.in_dim: {i + 1}}}}}\n" for i in range(11)) + "seeds: 10000\n",
    "big_seed.yaml": f"problems: [{{name: a}}]\nseeds: [{BIG}]\n",
    "huge_int.yaml": f"sampler:\n  steps: {HUGE}\n",
    "a_file": "not a directory\n",
    "not_a.png": "plain text, not an image\n",
    "not_a.csv": "\x00\x01 binary, not a CSV\n",
    "latin1_readme.md": "caf\xe9 <!-- gallery -->\n",
}

GRID = '[{"name": "p", "set": {"target.hidden": [2]}}]'

CASES = {
    # llc run: resolved and rejected before anything is built
    "run steps of 300 digits": ["run", "--set", f"sampler.steps={BIG}"],
    "run seed of 300 digits": ["run", "--set", f"seed={BIG}"],
    "run seed of 5000 digits": ["run", "--set", f"seed={HUGE}"],
    "run step_size 1e400": ["run", "--set", "sampler.step_size=1e400"],
    "run step_size as a 400-digit int": ["run", "--set", f"sampler.step_size={'9' * 400}"],
    "run width too large": ["run", "--set", "target.hidden=[100000000]"],
    "run too many layers": ["run", "--set", f"target.hidden=[{','.join(['2'] * 500)}]"],
    "run depth too large": ["run", "--set", "target.depth=100000", "--set", "target.target_params=1000"],
    "run too many parameters": ["run", "--set", "target.hidden=[60000,60000]"],
    "run data.n too large": ["run", "--set", "data.n=1000000000000"],
    "run chains too many": ["run", "--set", "sampler.chains=1000000"],
    "run quadratic dim too large": ["run", "--set", "target.kind=quadratic", "--set", "target.dim=1000000"],
    "run deeply nested --set": ["run", "--set", "target.hidden=" + "[" * 5000 + "]" * 5000],
    "run --set with an alias": ["run", "--set", "target.hidden=[&a 1, *a]"],
    "run --config alias bomb": ["run", "--config", "{bomb_config.yaml}"],
    "run --config duplicate key": ["run", "--config", "{dup_config.yaml}"],
    "run --config flat and nested key": ["run", "--config", "{flat_and_nested.yaml}"],
    "run --config 5000-digit int": ["run", "--config", "{huge_int.yaml}"],
    "run --config a directory": ["run", "--config", "{dir}"],
    "run --config /dev/null": ["run", "--config", "/dev/null"],
    "run --config over 1 MB": ["run", "--config", "{too_big.yaml}"],
    "run --runs-dir is a file": ["run", "--runs-dir", "{a_file}"],
    "run --runs-dir under a file": ["run", "--runs-dir", "{a_file}/runs"],
    # llc sweep
    "sweep --n-seeds 1e9": ["sweep", "--problem-grid", GRID, "--n-seeds", "1000000000", "--dry-run"],
    "sweep --n-seeds 300 digits": ["sweep", "--problem-grid", GRID, "--n-seeds", BIG, "--dry-run"],
    "sweep --seeds superscript two": ["sweep", "--problem-grid", GRID, "--seeds", "²", "--dry-run"],
    "sweep --seeds 300 digits": ["sweep", "--problem-grid", GRID, "--seeds", BIG, "--dry-run"],
    "sweep --seeds 5000 digits": ["sweep", "--problem-grid", GRID, "--seeds", HUGE, "--dry-run"],
    "sweep study seed of 300 digits": ["sweep", "{big_seed.yaml}", "--dry-run"],
    "sweep alias bomb": ["sweep", "{bomb.yaml}", "--dry-run"],
    "sweep deeply nested YAML": ["sweep", "{deep.yaml}", "--dry-run"],
    "sweep duplicate YAML key": ["sweep", "{dup.yaml}", "--dry-run"],
    "sweep empty study": ["sweep", "{empty.yaml}", "--dry-run"],
    "sweep comment-only study": ["sweep", "{comment_only.yaml}", "--dry-run"],
    "sweep study is a directory": ["sweep", "{dir}", "--dry-run"],
    "sweep study over 1 MB": ["sweep", "{too_big.yaml}", "--dry-run"],
    "sweep name of 100k chars": ["sweep", "{long_name.yaml}", "--dry-run"],
    "sweep value of 100k chars": ["sweep", "{long_value.yaml}", "--dry-run"],
    "sweep too many jobs": ["sweep", "{too_many_jobs.yaml}", "--dry-run"],
    "sweep deeply nested JSON grid": ["sweep", "--problem-grid", "{deep.json}", "--dry-run"],
    "sweep inline deeply nested JSON": ["sweep", "--problem-grid", "[" * 100_000, "--dry-run"],
    "sweep duplicate JSON key": ["sweep", "--problem-grid", "{dup.json}", "--dry-run"],
    "sweep NaN in JSON": ["sweep", "--problem-grid", "{nan.json}", "--dry-run"],
    "sweep 5000-digit int in JSON": ["sweep", "--problem-grid", "{bigint.json}", "--dry-run"],
    "sweep grid is a directory": ["sweep", "--problem-grid", "{dir}", "--dry-run"],
    "sweep --timeout nan": ["sweep", "--problem-grid", GRID, "--timeout", "nan", "--dry-run"],
    "sweep --timeout inf": ["sweep", "--problem-grid", GRID, "--timeout", "inf", "--dry-run"],
    "sweep --runs-dir is a file": ["sweep", "--problem-grid", GRID, "--runs-dir", "{a_file}"],
    "sweep --runs-dir is a file, dry run": ["sweep", "--problem-grid", GRID, "--runs-dir", "{a_file}", "--dry-run"],
    "sweep --csv is a directory": ["sweep", "--problem-grid", GRID, "--csv", "{dir}"],
    "sweep --csv under a file": ["sweep", "--problem-grid", GRID, "--csv", "{a_file}/x.csv"],
    # llc validate: checked before the first case runs
    "validate --out is a directory": ["validate", "--cases", "linear_10x2", "--samplers", "hmc", "--out", "{dir}"],
    "validate --out under a file": ["validate", "--cases", "linear_10x2", "--samplers", "hmc", "--out", "{a_file}/t.csv"],
    "validate --runs-dir is a file": ["validate", "--cases", "linear_10x2", "--samplers", "hmc", "--runs-dir", "{a_file}"],
    "validate long preset": ["validate", "--preset", "q" * 100_000, "--dry-run"],
    "validate long case": ["validate", "--cases", "c" * 100_000, "--dry-run"],
    # llc analyze: nothing to analyze, or a bad figure list
    "analyze a missing path": ["analyze", "{dir}/missing"],
    "analyze a file": ["analyze", "{a_file}"],
    "analyze an empty folder": ["analyze", "{dir}"],
    "analyze an unknown figure": ["analyze", "{dir}", "--plots", "rank,bogus"],
    # llc aggregate
    "aggregate a missing root": ["aggregate", "{dir}/missing"],
    "aggregate a root with no runs": ["aggregate", "{dir}"],
    "aggregate --csv is a directory": ["aggregate", "{dir}", "--csv", "{dir}"],
    # llc plot-sweep
    "plot-sweep a missing CSV": ["plot-sweep", "--csv", "{dir}/missing.csv"],
    "plot-sweep --csv is a directory": ["plot-sweep", "--csv", "{dir}"],
    "plot-sweep a CSV that is not one": ["plot-sweep", "--csv", "{not_a.csv}"],
    # llc promote-readme-images
    "promote a non-PNG sweep figure": ["promote-readme-images", "--sweep", "{not_a.png}", "--readme",
                                       "{latin1_readme.md}", "--assets", "{dir}/assets"],
    "promote a missing run dir": ["promote-readme-images", "--run-dir", "{dir}/missing", "--assets", "{dir}/assets"],
}

# What each message must say (a few; the rest are checked for shape only).
SAYS = {
    "run step_size 1e400": "finite",
    "run --config a directory": "is a directory",
    "sweep study is a directory": "is a directory",
    "run --config flat and nested key": "given twice",
    "run --config duplicate key": "duplicate key",
    "sweep duplicate JSON key": "duplicate key",
    "sweep alias bomb": "aliases",
    "sweep --n-seeds 1e9": "at most 10000",
    "sweep --timeout nan": "--timeout",
    "sweep empty study": "empty",
    "run --runs-dir is a file": "not a directory",
    "sweep --csv is a directory": "--csv",
    "validate --out is a directory": "--out",
    "sweep too many jobs": "110000 jobs",
}


def fill(args: list[str], paths: dict[str, object]) -> list[str]:
    """Replace `{name}` placeholders by paths."""
    out = []
    for arg in args:
        for key, path in paths.items():
            arg = arg.replace("{" + key + "}", str(path))
        out.append(arg)
    return out


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_in_process(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """`llc ARGS` through the console entry point, in this process: (exit code, stdout, stderr)."""
    from llc.cli import main

    monkeypatch.setattr(sys, "argv", ["llc", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "keep.txt").write_text("untouched\n")
    files = tmp_path / "in"
    files.mkdir()
    for name, text in FILES.items():
        (files / name).write_bytes(text.encode("latin-1" if name.startswith("latin1") else "utf-8"))
    (files / "a_dir").mkdir()
    monkeypatch.setenv("LLC_RUNS_DIR", str(runs))
    monkeypatch.chdir(tmp_path)
    return runs, files


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_exits_2_with_one_short_line(name, workdir, monkeypatch, capsys):
    runs, files = workdir
    paths = {**{n: str(files / n) for n in FILES}, "dir": str(files / "a_dir")}
    args = fill(CASES[name], paths)
    before = tree(runs)
    code, out, err = run_in_process(args, monkeypatch, capsys)
    assert code == 2, (code, out[-500:], err[-500:])
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3 and len(err) <= 500, err[:1000]
    assert name not in SAYS or SAYS[name] in err, err
    assert tree(runs) == before, "something was written under the runs dir"
    assert sorted(p.name for p in runs.iterdir()) == ["keep.txt"]


def test_a_corrupt_sweep_manifest_is_named_with_its_fix(workdir, monkeypatch, capsys):
    """A damaged RUNS/_sweeps/<id>.json: exit 2 naming the file and what to do; the file is left as it was."""
    from llc.study import sweep_id
    from llc.sweeps import study_jobs

    runs, _ = workdir
    sid = sweep_id(study_jobs(problem_grid=GRID))
    sweeps = runs / "_sweeps"
    sweeps.mkdir()
    for damage in ('{"jobs": {"p/sgld/seed0": ', "[]", '{"jobs": []}', "\xff\xfe"):
        manifest = sweeps / f"{sid}.json"
        manifest.write_text(damage)
        before = tree(runs)
        code, _, err = run_in_process(["sweep", "--problem-grid", GRID], monkeypatch, capsys)
        assert code == 2, err
        assert str(manifest) in err and "delete it" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert tree(runs) == before


def test_erm_failure_suggests_float64_only_to_a_float32_run():
    """The ERM failure names fixes that apply: no 'use float64' to a run that is float64 already."""
    from types import SimpleNamespace

    from llc.config import resolve_config
    from llc.targets.build import erm_failure

    result = SimpleNamespace(grad_norm=0.5, steps=2000, final_loss=1.25)
    for precision, suggests in (("float64", False), ("float32", True)):
        cfg = resolve_config("quick", [f"precision={precision}", "posterior.gamma=0"])
        message = erm_failure(cfg, result)
        assert ("precision=float64" in message) is suggests, message
        assert "target.erm_steps" in message and "gradient norm 0.5" in message


@pytest.mark.parametrize("kind, extra", [
    ("mlp", ["target.dim=7", "target.curvature_ratio=3"]),
    ("dln", ["target.dim=7", "target.curvature_ratio=3", "target.activation=tanh", "target.bias=false"]),
    ("quadratic", ["target.in_dim=9", "target.out_dim=3", "target.hidden=[5]", "target.activation=tanh",
                   "target.center=teacher", "target.teacher_scale=2", "target.erm_steps=7", "target.erm_tol=0.5",
                   "data.x_dist=heavy_tailed", "data.noise=outliers", "data.noise_scale=3", "posterior.loss=mse"]),
])
@pytest.mark.parametrize("preset", ["quick", "full"])
def test_target_keys_a_kind_never_reads_do_not_change_the_run_id(kind, extra, preset):
    """Issue 20 item 9: the same job spelled with keys its model family ignores has one run ID."""
    from llc.config import resolve_config
    from llc.runs import run_id

    base = [f"target.kind={kind}"] + (["target.hidden=[3]", "target.in_dim=4", "target.out_dim=4"]
                                       if kind == "dln" else [])
    plain = resolve_config(preset, base)
    spelled = resolve_config(preset, base + extra)
    assert run_id(spelled) == run_id(plain)
    assert spelled == plain
    # ... while a key the kind does read still makes a different job
    reads = {"mlp": "target.in_dim=9", "dln": "target.rank=1", "quadratic": "target.dim=7"}[kind]
    assert run_id(resolve_config(preset, base + [reads])) != run_id(plain)


def test_a_sweep_of_two_problems_that_differ_only_in_ignored_keys_is_one_job_twice():
    """The sweep's duplicate-job check sees through keys that do not apply (it was defeated before)."""
    from llc.errors import ConfigError
    from llc.sweeps import study_jobs

    grid = json.dumps([{"name": "a", "set": {"target.hidden": [2]}},
                       {"name": "b", "set": {"target.hidden": [2], "target.dim": 5}}])
    with pytest.raises(ConfigError, match="resolves to the same run as job a/sgld/seed0"):
        study_jobs(problem_grid=grid)


def test_shown_cuts_long_values_and_survives_what_repr_cannot_print():
    from llc.errors import shown

    assert shown("abc") == "'abc'"
    long = shown("x" * 10_000)
    assert len(long) <= 80 and long.endswith("(10002 chars)")
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert shown(nested) == "<deeply nested list>"
    assert shown(10**5000) == "<int too large to show>"


MEMORY_CASES = {
    "alias-bomb study": ["sweep", "{bomb}", "--dry-run"],
    "alias-bomb study, one level more": ["sweep", "{bomb8}", "--dry-run"],
    "alias-bomb config": ["run", "--config", "{bomb_config}", "--print-config"],
    "n-seeds 1e9": ["sweep", "--problem-grid", GRID, "--n-seeds", "1000000000", "--dry-run"],
    "deep JSON grid of 1 MB": ["sweep", "--problem-grid", "{deep}", "--dry-run"],
    "a study at the job bound, 20 000 jobs": ["sweep", "{many}", "--dry-run"],
}
SLOW_MEMORY_CASES = {"a study at the job bound, 20 000 jobs"}  # resolves every job: about a minute
MEMORY_LIMIT_MB = 500


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_MEMORY_CASES else [])
                                  for n in MEMORY_CASES])
def test_peak_memory_of_hostile_input_under_1_mb_stays_under_500_mb(name, tmp_path):
    """Issue 20 item 5: the input is under 1 MB; the whole `llc` process peaks under 500 MB and exits 2.

    Measured in a fresh wrapper process, so RUSAGE_CHILDREN covers `llc` alone, not earlier tests' children.
    """
    files = {"bomb": alias_bomb(), "bomb8": alias_bomb(8), "bomb_config": FILES["bomb_config.yaml"],
             "deep": "[" * 500_000 + "]" * 500_000,
             "many": "problems:\n" + "".join(f"  - {{name: p{i}, set: {{target.in_dim: {i + 1}}}}}\n" for i in range(10))
             + "seeds: 2000\n"}
    paths = {}
    for key, text in files.items():
        assert len(text.encode()) < 1_000_001
        paths[key] = tmp_path / f"{key}.txt"
        paths[key].write_text(text)
    args = fill(MEMORY_CASES[name], paths)
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'llc', *sys.argv[1:]], capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    env = {**os.environ, "LLC_RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=540)
    code, max_rss_kb = (int(x) for x in done.stdout.split())
    assert code == (0 if name in SLOW_MEMORY_CASES else 2), done.stderr[-1000:]
    assert len(done.stderr) <= 500 and "Traceback" not in done.stderr
    assert max_rss_kb / 1024 < MEMORY_LIMIT_MB, f"{name}: peak RSS {max_rss_kb / 1024:.0f} MB"
    assert not (tmp_path / "runs").exists()
