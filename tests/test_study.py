"""Study files and grids -> jobs: expansion, IDs shared with `llc run`, and located errors."""

from __future__ import annotations

import json
import threading

import pytest
import yaml

from llc.config import config_to_dict, resolve_config
from llc.errors import ConfigError
from llc.runs import family_id, run_id
from llc.study import (
    build_study,
    expand_jobs,
    is_done,
    load_study_file,
    parse_grid,
    parse_seeds,
    sweep_id,
)
from tests.conftest import REPO, run_main, write_fake_run


def _study(data: dict, source: str = "study.yaml", **kwargs):
    return build_study(data, source, **kwargs)


def _error(data: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        expand_jobs(_study(data, **kwargs))
    return str(info.value)


def test_worked_example_expands_to_18_jobs():
    study = build_study(load_study_file(REPO / "study.yaml"), "study.yaml")
    jobs = expand_jobs(study)
    assert len(jobs) == 18
    assert len({j.key for j in jobs}) == len({j.run_id for j in jobs}) == 18
    # A family is one problem with one seed: its 3 samplers share it.
    families: dict[str, set[str]] = {}
    for j in jobs:
        families.setdefault(j.family_id, set()).add(j.sampler)
    assert len(families) == 6 and all(len(s) == 3 for s in families.values())
    assert sweep_id(jobs) == sweep_id(list(reversed(jobs)))  # deterministic, order-free
    assert sweep_id(jobs) == sweep_id(expand_jobs(study))


def test_job_run_id_is_the_llc_run_id():
    """The job resolves exactly like `llc run --preset P --set base... --set problem... --set sampler...`."""
    study = _study({
        "base": {"preset": "quick", "set": {"data.n": 500}},
        "problems": [{"name": "p", "set": {"target.hidden": [4]}}],
        "samplers": [{"sampler": "sgld", "name": "ad", "set": {"sampler.precond": "adam", "sampler.step_size": 1e-4}}],
        "seeds": [3],
    })
    (job,) = expand_jobs(study)
    cfg = resolve_config(
        preset="quick",
        overrides=["data.n=500", "target.hidden=[4]", "sampler.precond=adam", "sampler.step_size=1e-4", "seed=3"],
        sampler="sgld",
    )
    assert job.run_id == run_id(cfg) and job.family_id == family_id(cfg)
    assert job.key == "p/ad/seed3" and job.config == cfg


def test_options_override_the_file():
    data = {"base": {"preset": "quick", "set": {"data.n": 500}}, "problems": [{"name": "a"}],
            "samplers": [{"sampler": "sgld"}], "seeds": 3}
    grid, src = parse_grid('[{"name": "x", "set": {"target.hidden": [3]}}, {"name": "y"}]', "--problem-grid")
    study = _study(data, problem_grid=grid, problem_grid_source=src, seeds=[5], overrides=["data.n=600"])
    jobs = expand_jobs(study)
    assert [j.key for j in jobs] == ["x/sgld/seed5", "y/sgld/seed5"]
    assert all(j.config.data.n == 600 for j in jobs)
    assert jobs[0].config.target.hidden == [3]
    assert [j.seed for j in expand_jobs(_study(data, n_seeds=2))] == [0, 1]


def test_unnamed_duplicate_samplers_are_numbered():
    jobs = expand_jobs(_study({"samplers": [
        {"sampler": "sgld"}, {"sampler": "sgld", "set": {"sampler.precond": "adam"}},
    ]}))
    assert [j.sampler for j in jobs] == ["sgld-1", "sgld-2"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"problems": [{"name": "a"}, {"name": "b"}, {"name": "c", "set": {"target.foo": 1}}]},
         "study.yaml: problems[2].set: unknown key 'target.foo'"),
        ({"problems": []}, "study.yaml: problems: empty grid"),
        ({"samplers": []}, "study.yaml: samplers: empty grid"),
        ({"problems": [{"name": "a"}, {"name": "a"}]}, "study.yaml: problems[1].name: duplicate problem name 'a'"),
        ({"problems": [{"name": "../evil"}]}, "study.yaml: problems[0].name: '../evil' is not allowed"),
        ({"problems": [{"name": "a/b"}]}, "study.yaml: problems[0].name: 'a/b' is not allowed"),
        ({"problems": [{"name": "a\\b"}]}, "is not allowed"),
        ({"problems": [{"name": ".hidden"}]}, "is not allowed"),
        ({"problems": [{"name": "x..y"}]}, "is not allowed"),
        ({"samplers": [{"sampler": "sgld", "name": "../s"}]}, "study.yaml: samplers[0].name: '../s' is not allowed"),
        ({"problems": [{"set": {}}]}, "study.yaml: problems[0]: missing 'name'"),
        ({"problems": [{"name": "a", "sett": {}}]}, "study.yaml: problems[0]: unknown key 'sett'"),
        ({"samplers": [{"sampler": "metropolis"}]}, "study.yaml: samplers[0].sampler: 'metropolis' is not a sampler"),
        ({"samplers": [{"sampler": "sgld", "set": {"sampler.friction": 1.0}}]},
         "study.yaml: samplers[0].set: sampler.friction does not apply to sampler 'sgld'"),
        ({"samplers": [{"sampler": "sgld", "set": {"sampler.step_size": -1}}]},
         "study.yaml: samplers[0].set: sampler.step_size: must be > 0"),
        ({"problems": [{"name": "a", "set": {"data.n": "many"}}]}, "study.yaml: problems[0].set: data.n: expected int"),
        ({"problems": [{"name": "a", "set": {"seed": 1}}]}, "'seed' cannot be set here"),
        ({"samplers": [{"sampler": "sgld", "set": {"sampler.name": "sgld"}}]}, "'sampler.name' cannot be set here"),
        ({"problems": [{"name": "a", "set": {"data.n": 100}}]},
         "study.yaml: problems[0].set: sampler.batch_size: 256 is larger than data.n = 100"),
        ({"seeds": []}, "study.yaml: seeds: empty list of seeds"),
        ({"seeds": [0, 0]}, "study.yaml: seeds[1]: duplicate seed 0"),
        ({"seeds": [-1]}, "study.yaml: seeds[0]: expected a non-negative integer seed"),
        ({"seeds": 0}, "study.yaml: seeds: a seed count must be >= 1"),
        ({"colour": "red"}, "study.yaml: unknown key 'colour'"),
        ({"base": {"preset": "huge"}}, "study.yaml: base.preset: 'huge' is not a preset"),
        ({"base": {"set": {"target.foo": 1}}}, "study.yaml: base.set: unknown key 'target.foo'"),
        ({"problems": [{"name": "a"}, {"name": "b"}], "samplers": [{"sampler": "sgld", "name": "x"}, {"sampler": "sgld", "name": "x"}]},
         "study.yaml: samplers[1]: duplicate sampler label 'x'"),
        ({"problems": [{"name": "a"}, {"name": "b"}]}, "resolves to the same run as job a/sgld/seed0"),
        ({"axes": [1, 2]}, "study.yaml: axes: expected a mapping of section.key: [values]"),
        ({"axes": {"posterior.gamma": 10}}, "study.yaml: axes.posterior.gamma: expected a non-empty list of values"),
        ({"axes": {"posterior.gamma": [1, -1]}}, "study.yaml: axes.posterior.gamma[1]: posterior.gamma: must be >= 0"),
        ({"axes": {"posterior.gamma": [1, 1]}}, "study.yaml: axes.posterior.gamma: duplicate values"),
        ({"axes": {"target.hidden": [[4, 4]]}}, "study.yaml: axes.target.hidden[0]: axis values are numbers or strings"),
        ({"axes": {"target.colour": [1]}}, "unknown key 'target.colour'"),
        ({"axes": {"seed": [1, 2]}}, "'seed' cannot be set here"),
        ({"axes": {"target.activation": ["../x"]}}, "is not allowed"),
    ],
)
def test_study_errors_name_their_location(data, expected):
    assert expected in _error(data)


def test_axes_cross_every_problem_with_every_combination():
    study = _study({
        "base": {"preset": "quick", "set": {"data.n": 500}},
        "problems": [{"name": "a", "set": {"target.hidden": [4], "posterior.gamma": 7}}, {"name": "b"}],
        "axes": {"posterior.gamma": [1, 10.5], "data.n": [500, 1000]},
        "samplers": [{"sampler": "hmc"}],
        "seeds": 1,
    })
    jobs = {j.problem: j for j in expand_jobs(study)}
    assert sorted(jobs) == sorted(f"{p}+gamma={g}+n={n}" for p in "ab" for g in (1, 10.5) for n in (500, 1000))
    job = jobs["a+gamma=10.5+n=1000"]  # the axis value wins over the problem's own gamma
    cfg = resolve_config(preset="quick", overrides=["data.n=1000", "target.hidden=[4]",
                                                    "posterior.gamma=10.5", "seed=0"], sampler="hmc")
    assert job.run_id == run_id(cfg)
    assert jobs["b+gamma=1+n=500"].config.posterior.gamma == 1.0


def test_grid_errors():
    with pytest.raises(ConfigError, match=r"--problem-grid: invalid JSON at line 1, column \d+"):
        parse_grid('[{"name": "a",}]', "--problem-grid")
    with pytest.raises(ConfigError, match="--sampler-grid: expected a JSON list of objects, got dict"):
        parse_grid('{"sampler": "sgld"}', "--sampler-grid")
    with pytest.raises(ConfigError, match="neither inline JSON .* nor an existing file"):
        parse_grid("no-such-grid.json", "--problem-grid")
    grid, src = parse_grid('[{"name": "ok"}, {"name": "x", "set": {"target.foo": 1}}]', "--problem-grid")
    assert "--problem-grid: [1].set: unknown key 'target.foo'" in _error({}, problem_grid=grid, problem_grid_source=src)
    with pytest.raises(ConfigError, match="--seeds: 'x' is not a non-negative integer"):
        parse_seeds("0,x")
    with pytest.raises(ConfigError, match="mutually exclusive"):
        build_study({}, seeds=[0], n_seeds=2)
    with pytest.raises(ConfigError, match=r"--set target.foo=1: unknown key 'target.foo'"):
        build_study({}, overrides=["target.foo=1"])


def test_grid_from_file(tmp_path):
    path = tmp_path / "samplers.json"
    path.write_text(json.dumps([{"sampler": "sgld", "set": {"sampler.step_size": 1e-5}}]))
    grid, src = parse_grid(str(path), "--sampler-grid")
    assert grid[0]["sampler"] == "sgld" and src == f"--sampler-grid {path}:"
    path.write_text("[1, 2")
    with pytest.raises(ConfigError, match=f"--sampler-grid {path}: invalid JSON at line 1"):
        parse_grid(str(path), "--sampler-grid")


def test_study_yaml_is_safe_loaded(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("problems: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="malformed YAML at line 1"):
        load_study_file(evil)
    broken = tmp_path / "broken.yaml"
    broken.write_text("problems:\n  - name: a\n   set: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: malformed YAML at line \d+"):
        load_study_file(broken)
    assert yaml.safe_load((REPO / "study.yaml").read_text())["seeds"] == [0, 1]


def test_manifest_lock_keeps_concurrent_updates(tmp_path):
    """Two writers updating different jobs of one manifest at once lose nothing."""
    from llc.executors.manifest import Manifest

    jobs = [{"key": f"j{i}", "run_id": f"sgld-{i:016x}"} for i in range(2)]
    Manifest(tmp_path, "sweep-test").start(jobs, {"j0": "pending", "j1": "pending"}, {})

    def writer(key: str) -> None:
        m = Manifest(tmp_path, "sweep-test")  # its own file descriptor for the lock
        for n in range(40):
            m.update(key, {"counter": n, "status": "running"})

    threads = [threading.Thread(target=writer, args=(f"j{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = Manifest(tmp_path, "sweep-test").read()
    assert [data["jobs"][f"j{i}"]["counter"] for i in range(2)] == [39, 39]
    assert [data["jobs"][f"j{i}"]["attempts"] for i in range(2)] == [40, 40]
    assert not [p for p in (tmp_path / "_sweeps").iterdir() if p.name.startswith(".")]  # no temp files left



def test_cli_dry_run_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    runs = tmp_path / "runs"
    study = build_study(load_study_file(REPO / "study.yaml"), "study.yaml")
    jobs = expand_jobs(study)
    # Pretend the first job finished (a complete run directory) and the second left a partial one.
    write_fake_run(runs / jobs[0].run_id, config_to_dict(jobs[0].config))
    (runs / jobs[1].run_id).mkdir(parents=True)
    (runs / jobs[1].run_id / "metrics.json").write_text("{}")
    assert is_done(runs, jobs[0]) and not is_done(runs, jobs[1])
    assert run_main(["sweep", "study.yaml", "--dry-run", "--runs-dir", str(runs)], monkeypatch) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 18 + 1
    assert jobs[0].key in lines[1] and jobs[0].run_id in lines[1] and lines[1].endswith("done")
    assert all(line.endswith("to run") for line in lines[2:-1])
    assert f"sweep {sweep_id(jobs)}: 18 jobs, 1 done, 17 to run" in lines[-1]
    assert not (runs / "_sweeps").exists()  # a dry run writes nothing

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"problems": [{"name": "a"}, {"name": "b"}, {"name": "c", "set": {"target.foo": 1}}]}))
    assert run_main(["sweep", str(bad), "--runs-dir", str(runs)], monkeypatch) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {bad}: problems[2].set: unknown key 'target.foo': target keys are kind, in_dim, out_dim, hidden, "
        "depth, target_params, activation, bias, rank, center, teacher_scale, dim, curvature_ratio, erm_steps, erm_tol, "
        "entry, entry_sha256, data_sha256, n_params, checkpoint, checkpoint_sha256"
    ]
    assert not (runs / "_sweeps").exists()

