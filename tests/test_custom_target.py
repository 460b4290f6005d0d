"""Custom targets (`target.kind: custom`): λ̂ against independent truth through the entry path, bad
entries, and cache invalidation when the entry changes (docs/custom.md)."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from llc.config import config_to_dict, resolve_config
from llc.errors import ConfigError, LLCError
from llc.runs import run_id, run_job
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "custom"
LINEAR = f"{DATA / 'linear.py'}:make"


def custom(entry: str, *sets: str, sampler: str | None = None):
    return resolve_config("quick", ["target.kind=custom", f"target.entry={entry}", *sets], sampler=sampler)


# ---------------------------------------------------------------- independent truths


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sampler, sets", [
    ("hmc", ["sampler.stop=fixed", "sampler.steps=2000"]),
    # a smaller step than the default keeps SGLD's minibatch/discretisation bias well inside 5%
    # with the exact loss trace (the minibatch one is unbiased but twice as noisy)
    ("sgld", ["sampler.step_scale=0.02", "sampler.stop=fixed", "sampler.steps=40000", "sampler.thinning=20",
              "sampler.loss_trace=full"]),
])
def test_single_linear_layer_entry_gives_half_d(tmp_path, sampler, sets):
    cfg = custom(LINEAR, *sets, sampler=sampler)
    assert (cfg.target.n_params, cfg.data.n, cfg.target.center, cfg.posterior.loss) == (8, 1000, "given", "gaussian")
    m = run_job(cfg, tmp_path).metrics
    assert m.lambda_true == 4.0 and m.n_params == 8
    assert m.estimate.llc_mean == pytest.approx(4.0, rel=0.05)
    assert m.erm.center == "given" and m.erm.grad_norm < 1e-8  # least squares is the exact minimum


@pytest.mark.timeout(300)
def test_dln_entry_matches_builtin_dln(tmp_path):
    """Same weights, same data, same sampler and seed: the custom path gives the built-in's λ̂."""
    sets = ["sampler.stop=fixed", "sampler.steps=400"]
    builtin = resolve_config("quick", ["target.kind=dln", "target.in_dim=4", "target.hidden=[3]", "target.out_dim=4",
                                       "target.rank=1", "data.n=2000", *sets], sampler="hmc")
    mine = custom(f"{DATA / 'dln_builtin.py'}:make", *sets, sampler="hmc")
    assert mine.data.n == builtin.data.n and mine.target.n_params == 24
    a = run_job(builtin, tmp_path).metrics.estimate
    b = run_job(mine, tmp_path).metrics.estimate
    assert abs(a.llc_mean - b.llc_mean) <= (a.llc_se**2 + b.llc_se**2) ** 0.5
    assert a.llc_mean == pytest.approx(b.llc_mean, rel=1e-6)  # the very same posterior and random stream


def test_module_entry_and_erm_centre(tmp_path):
    cfg = custom("tests.data.custom.linear:make", "target.center=erm", "sampler.stop=fixed", "sampler.steps=200", "sampler.thinning=10",
                 sampler="sgld")
    assert cfg.target.entry == "tests.data.custom.linear:make" and cfg.target.center == "erm"
    assert run_id(cfg) == run_id(custom(LINEAR, "target.center=erm", "sampler.stop=fixed", "sampler.steps=200", "sampler.thinning=10",
                                        sampler="sgld"))  # same function, same content: same job


# ---------------------------------------------------------------- bad entries

GOOD = """
import numpy as np

def make(seed):
    x = np.linspace(-1, 1, 20)[:, None]
    return {RETURN}
"""
REG = '"apply": lambda p, x: x * p, "params": np.ones(1), "x": x, "y": 2 * x, "loss": "mse"'
BAD_ENTRIES = {
    "missing file": (None, "nope.py:make", r"target\.entry: file '.*nope\.py' not found"),
    "missing function": ("{" + REG + "}", "entry.py:other", r"target\.entry: .*entry\.py:other: no function 'other' in the module"),
    "syntax error": ("{", "entry.py:make", r"target\.entry: importing .* failed: SyntaxError"),
    "raises": ("1 / 0", "entry.py:make", r"target\.entry: .*\(0\) raised ZeroDivisionError: division by zero"),
    "wrong return type": ("[x, x]", "entry.py:make", r"target\.entry: returned list; expected a mapping with keys apply"),
    "missing keys": ('{"apply": None, "params": 1}', "entry.py:make", r"target\.entry: returned mapping lacks x, y, loss"),
    "unknown key": ("{" + REG + ', "lr": 1}', "entry.py:make", r"target\.entry: unknown key\(s\) \['lr'\]"),
    "apply not callable": ("{" + REG.replace("lambda p, x: x * p", "3") + "}", "entry.py:make",
                           r"target\.entry: returned apply of type int; expected a callable"),
    "unknown loss": ("{" + REG.replace('"mse"', '"hinge"') + "}", "entry.py:make",
                     r"target\.entry: unknown loss 'hinge'; allowed: gaussian, mse, cross_entropy"),
    "gaussian without sigma": ("{" + REG.replace('"mse"', '"gaussian"') + "}", "entry.py:make",
                               r"target\.entry: loss 'gaussian' needs noise_scale"),
    "labels out of range": (
        '{"apply": lambda p, x: x @ p, "params": np.ones((1, 3)), "x": x, "y": np.arange(20) % 6, '
        '"loss": "cross_entropy"}', "entry.py:make",
        r"target\.entry: labels y span 0\.\.5, out of range for 3 classes \(allowed 0\.\.2\)"),
    "float labels": ('{"apply": lambda p, x: x @ p, "params": np.ones((1, 3)), "x": x, "y": x[:, 0], '
                     '"loss": "cross_entropy"}', "entry.py:make", r"target\.entry: cross_entropy needs y as integer"),
    "wrong output shape": ("{" + REG.replace("2 * x", "np.hstack([x, x])") + "}", "entry.py:make",
                           r"target\.entry: apply\(params, x\) has shape \(20, 1\); y has shape \(20, 2\)"),
    "non-finite loss": ("{" + REG.replace("2 * x", "x * np.nan") + "}", "entry.py:make",
                        r"target\.entry: the loss at params is not finite"),
    "non-finite gradient": ("{" + REG.replace("x * p", "x * np.sqrt(p)").replace("np.ones(1)", "np.zeros(1)")
                            .replace("np.sqrt", "__import__('jax').numpy.sqrt") + "}", "entry.py:make",
                            r"target\.entry: the loss gradient at params is not finite"),
}


def _write_entry(folder: Path, body: str | None) -> None:
    if body is not None:
        (folder / "entry.py").write_text(GOOD.replace("{RETURN}", body))


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_entry_is_one_line_config_error(tmp_path, case):
    body, entry, message = BAD_ENTRIES[case]
    _write_entry(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as info:
        custom(str(tmp_path / entry))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_entry_exits_2_and_writes_nothing(tmp_path, case, monkeypatch, capsys):
    """`llc run` through its console entry point, in this process: exit 2, one line, no runs root."""
    from tests.conftest import run_main

    body, entry, _ = BAD_ENTRIES[case]
    _write_entry(tmp_path, body)
    runs = tmp_path / "runs"
    code = run_main(["run", "--no-progress", "--runs-dir", str(runs), "--set", "target.kind=custom",
                     "--set", f"target.entry={tmp_path / entry}"], monkeypatch)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: target.entry: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["entry.py"] if body is not None else [])


def test_bad_entry_in_a_fresh_process(tmp_path, cli):
    _write_entry(tmp_path, "{" + REG.replace('"mse"', '"hinge"') + "}")
    proc = cli(["run", "--no-progress", "--set", "target.kind=custom", "--set", f"target.entry={tmp_path}/entry.py:make"],
               tmp_path / "runs")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: target.entry: unknown loss 'hinge'; allowed: gaussian, mse, cross_entropy\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.py"]


def test_custom_keys_and_choices_are_errors_on_builtin_kinds():
    with pytest.raises(ConfigError, match=r"^target\.entry: applies only to target\.kind=custom \(kind is mlp\)$"):
        resolve_config("quick", [f"target.entry={LINEAR}"])
    with pytest.raises(ConfigError, match=r"^target\.center: 'given' applies only to target\.kind=custom"):
        resolve_config("quick", ["target.center=given"])
    with pytest.raises(ConfigError, match=r"^posterior\.loss: cross_entropy applies only to target\.kind=custom"):
        resolve_config("quick", ["posterior.loss=cross_entropy"])
    with pytest.raises(ConfigError, match=r"^target\.entry: required for target\.kind=custom"):
        resolve_config("quick", ["target.kind=custom"])
    with pytest.raises(ConfigError, match=r"^target\.center: a custom target has no teacher; allowed: given, erm$"):
        custom(LINEAR, "target.center=teacher")


def test_builtin_run_ids_do_not_see_the_custom_keys():
    """The custom-only keys are None on built-in kinds and left out of the hash: no cached run moved."""
    from llc.hashing import content_hash
    from llc.runs.ids import hashed_view
    from llc.version import code_version

    cfg = resolve_config("quick")
    view = hashed_view(config_to_dict(cfg))
    assert "entry" not in view["target"] and "n_params" not in view["target"]
    old = config_to_dict(cfg)
    for key in ("entry", "entry_sha256", "data_sha256", "n_params", "checkpoint", "checkpoint_sha256"):
        del old["target"][key]  # a config.json written before custom targets existed
    assert hashed_view(old) == view
    assert run_id(cfg) == f"sgld-{content_hash({'config': view, 'code_version': code_version()})}"


# ---------------------------------------------------------------- cache invalidation


def test_editing_the_entry_changes_the_run_id(tmp_path):
    entry = tmp_path / "linear.py"
    shutil.copy(DATA / "linear.py", entry)
    first = custom(f"{entry}:make")
    assert run_id(first) == run_id(custom(LINEAR))  # same content elsewhere: same job
    entry.write_text(entry.read_text() + "\n# an edit that changes nothing the entry returns\n")
    edited = custom(f"{entry}:make")
    assert edited.target.data_sha256 == first.target.data_sha256
    assert edited.target.entry_sha256 != first.target.entry_sha256 and run_id(edited) != run_id(first)
    entry.write_text(entry.read_text().replace("N, SIGMA = 4, 2, 1000, 0.1", "N, SIGMA = 4, 2, 1000, 0.2"))
    data_changed = custom(f"{entry}:make")
    assert data_changed.target.data_sha256 != first.target.data_sha256
    assert len({run_id(first), run_id(edited), run_id(data_changed)}) == 3
    assert data_changed.data.noise_scale == 0.2


def test_a_job_refuses_an_entry_edited_after_it_was_configured(tmp_path):
    entry = tmp_path / "linear.py"
    shutil.copy(DATA / "linear.py", entry)
    cfg = custom(f"{entry}:make", "sampler.stop=fixed", "sampler.steps=200", "sampler.thinning=10")
    entry.write_text(entry.read_text() + "\n# edited\n")
    with pytest.raises(LLCError, match=r"linear\.py:make changed since this job was configured"):
        run_job(cfg, tmp_path / "runs")
    assert not (tmp_path / "runs" / run_id(cfg)).exists()


def test_a_stored_config_rebuilds_without_calling_the_entry(tmp_path):
    """Sweep workers rebuild the config from its dict: same run ID, the entry is not re-resolved."""
    from llc.config import config_from_dict

    cfg = custom(LINEAR)
    again = config_from_dict(json.loads(json.dumps(config_to_dict(cfg))))
    assert again == cfg and run_id(again) == run_id(cfg)


# ---------------------------------------------------------------- executors


def test_entry_travels_with_a_modal_job(tmp_path):
    """The Modal function body gets the entry file's bytes in its payload, not its path: with the original
    file gone it still runs, under the same run ID."""
    pytest.importorskip("modal", reason="modal is not installed: uv sync (it is in the dev group)")
    from llc.executors import modal_backend
    from llc.executors.job import make_payload

    entry = tmp_path / "src" / "linear.py"
    entry.parent.mkdir()
    shutil.copy(DATA / "linear.py", entry)
    cfg = custom(f"{entry}:make", "sampler.stop=fixed", "sampler.steps=200", "sampler.thinning=10", "sampler.chains=2", sampler="sgld")
    payload = make_payload(cfg, run_id(cfg), tmp_path / "runs", force=False)
    shutil.rmtree(entry.parent)
    out = modal_backend.run_remote_job.local(payload)
    assert out["ok"], out.get("traceback")
    assert out["result"]["run_id"] == run_id(cfg)
    metrics = json.loads(out["files"]["metrics.json"])
    assert metrics["n_params"] == 8 and metrics["lambda_true"] == 4.0


@pytest.mark.timeout(600)
def test_sweep_with_custom_problem_runs_locally(tmp_path, cli):
    study = tmp_path / "study.yaml"
    study.write_text(textwrap.dedent(f"""
        base:
          preset: quick
          set: {{sampler.stop: fixed, sampler.steps: 200, sampler.thinning: 10, sampler.chains: 2}}
        problems:
          - name: linear
            set: {{target.kind: custom, target.entry: "{DATA / 'linear.py'}:make"}}
        samplers: [{{sampler: sgld}}]
        seeds: [0, 1]
    """))
    runs = tmp_path / "runs"
    proc = cli(["sweep", str(study), "--workers", "2", "--runs-dir", str(runs)], runs, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    rows = (runs / "llc_sweep_results.csv").read_text().splitlines()
    assert len(rows) == 3


@pytest.mark.slurm
@pytest.mark.timeout(900)
def test_sweep_with_custom_problem_runs_on_slurm(tmp_path, cli):
    """The job resolves its entry from the absolute path in its config, on a SLURM node."""
    from tests.test_submitit import PARTITION, SKIP

    if SKIP is not None:
        pytest.skip(SKIP)
    problem = [{"name": "linear", "set": {"target.kind": "custom", "target.entry": f"{DATA / 'linear.py'}:make"}}]
    runs = tmp_path / "runs"
    proc = cli(["sweep", "--problem-grid", json.dumps(problem), "--sampler-grid", '[{"sampler": "sgld"}]',
                "--set", "sampler.stop=fixed", "--set", "sampler.steps=200", "--set", "sampler.thinning=10",
                "--set", "sampler.chains=2", "--runs-dir", str(runs), "--backend", "submitit",
                "--slurm-partition", PARTITION, "--slurm-time", "10", "--slurm-cpus", "1", "--slurm-mem", "2G"],
               runs, timeout=900)
    assert proc.returncode == 0, proc.stderr
    (path,) = (runs / "_sweeps").glob("sweep-*.json")
    job = json.loads(path.read_text())["jobs"]["linear/sgld/seed0"]
    assert job["status"] == "done" and job["state"] == "COMPLETED"
    metrics = json.loads((runs / job["run_id"] / "metrics.json").read_text())
    assert metrics["n_params"] == 8 and metrics["lambda_true"] == 4.0


@pytest.mark.slow  # ~65 s on 2 cores: six compilations
@pytest.mark.timeout(600)
def test_every_sampler_runs_on_a_custom_target(tmp_path):
    """All registered samplers on the linear entry, short fixed budgets: λ̂ near d/2 = 4 (within 0.5 + 3 SE)."""
    from llc.samplers.registry import sampler_names

    names = sampler_names()
    assert len(names) == 6
    for name in names:
        cfg = custom(LINEAR, "sampler.stop=fixed", "sampler.steps=1000", "sampler.thinning=5", "sampler.chains=2",
                     sampler=name)
        m = run_job(cfg, tmp_path).metrics
        assert m.sampler == name and m.n_params == 8
        est = m.estimate
        assert abs(est.llc_mean - 4.0) < 0.5 + 3 * est.llc_se, (name, est.llc_mean, est.llc_se)


def test_cross_entropy_is_the_categorical_nll(tmp_path):
    """L_n at w* through the posterior = mean of -log softmax(logits)[y], computed here with numpy; minibatches
    draw from the same rows, so their mean over many keys is L_n."""
    import jax

    from llc.posterior import build_posterior
    from llc.targets import build_target

    (tmp_path / "ce.py").write_text(textwrap.dedent("""
        import numpy as np

        def make(seed):
            rng = np.random.default_rng(seed)
            x = rng.normal(size=(300, 5))
            w = rng.normal(size=(5, 3))
            y = rng.integers(0, 3, size=300)
            return {"apply": lambda p, xs: xs @ p, "params": w, "x": x, "y": y, "loss": "cross_entropy"}
    """))
    cfg = custom(f"{tmp_path / 'ce.py'}:make", "sampler.batch_size=50")
    assert (cfg.posterior.loss, cfg.data.n, cfg.target.n_params) == ("cross_entropy", 300, 15)
    target = build_target(cfg)
    post = build_posterior(cfg, target)
    rng = np.random.default_rng(0)
    x, w, y = rng.normal(size=(300, 5)), rng.normal(size=(5, 3)), rng.integers(0, 3, size=300)
    logits = x @ w
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    assert post.L0 == pytest.approx(-np.mean(log_softmax[np.arange(300), y]), rel=1e-12)
    keys = jax.random.split(jax.random.key(1), 4000)
    batch_mean = float(np.mean(jax.vmap(lambda k: post.batch_loss(post.w_star, k))(keys)))
    assert batch_mean == pytest.approx(post.L0, rel=0.01)
