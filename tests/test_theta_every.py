"""`sampler.theta_every`: θ and ||w - w*||² at every k-th kept draw only (issue 19).

The truth here is the dense recording: a run with θ at every draw, on the same steps, must have the same
losses, and its θ at the sparse run's `theta_draw` indices must be the sparse run's θ, bit for bit, also
after the until-converged store has been halved several times.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from llc.analysis import plots as P
from llc.config import resolve_config
from llc.errors import ConfigError
from llc.runs import run_id, run_job
from tests.test_samplers import QUADRATIC

pytestmark = pytest.mark.timeout(600)

BASE = {**QUADRATIC, "sampler.warmup": 500, "sampler.precond": "none", "sampler.loss_trace": "full"}


def config(**settings):
    return resolve_config(preset="quick", sampler="sgld",
                          overrides={**BASE, **{f"sampler.{k}": v for k, v in settings.items()}})


def posterior_of(run_dir) -> xr.Dataset:
    with xr.open_datatree(run_dir / "trace.nc", engine="h5netcdf") as tree:
        return tree["posterior"].to_dataset().load()


def test_fixed_run_keeps_the_dense_runs_theta_at_every_kth_draw(tmp_path):
    # 1003 / 2 = 501 kept draws: 167 θ groups of 3, none left over; 5 = 100 groups and a tail of 1 draw
    for every in (3, 5):
        settings = {"stop": "fixed", "steps": 1003, "thinning": 2, "step_size": 1e-3}
        dense = run_job(config(**settings), runs_root=tmp_path)
        sparse = run_job(config(**settings, theta_every=every), runs_root=tmp_path)
        d, s = posterior_of(dense.run_dir), posterior_of(sparse.run_dir)
        assert np.array_equal(d["loss"].values, s["loss"].values)
        draws = s["theta_draw"].values
        assert np.array_equal(draws, np.arange(every - 1, 501, every))
        assert np.array_equal(s["theta"].values, d["theta"].values[:, draws])
        assert sparse.metrics.estimate.llc_per_chain == dense.metrics.estimate.llc_per_chain
        # R̂(θ) from the θ draws alone, recomputed here from the dense θ
        import arviz_stats as azs

        theta = d["theta"].values[:, draws]
        expected = max(float(azs.rhat(theta[..., k])) for k in range(theta.shape[-1]))
        assert sparse.metrics.estimate.rhat_theta == pytest.approx(expected, rel=1e-12)


def test_halved_store_keeps_theta_on_kept_draws_equally_spaced(tmp_path):
    """Until converged with a tiny store: the draws kept after several halvings are the dense run's draws at the
    final thinning counted back from the last step, and θ sits on every `every`-th of them."""
    every = 3
    until = run_job(config(stop="converged", steps=200, thinning=10, step_size=1e-6, max_steps=20_000,
                           max_draws=48, theta_every=every), runs_root=tmp_path)
    m = until.metrics
    assert m.stop_reason == "budget" and m.stopping.thinning >= 80  # halved at least three times
    steps, thin = m.stopping.steps, m.stopping.thinning
    dense = run_job(config(stop="fixed", steps=steps, thinning=1, step_size=1e-6), runs_root=tmp_path)
    d, u = posterior_of(dense.run_dir), posterior_of(until.run_dir)
    n_kept = u.sizes["draw"]
    # kept draw j was recorded after step steps - thin * (n_kept - 1 - j); dense draw i after step i + 1
    dense_index = steps - thin * (n_kept - 1 - np.arange(n_kept)) - 1
    assert dense_index[0] >= 0
    assert np.array_equal(u["loss"].values, d["loss"].values[:, dense_index])
    draws = u["theta_draw"].values
    assert draws[-1] == n_kept - 1 and np.all(np.diff(draws) == every)
    assert np.array_equal(u["theta"].values, d["theta"].values[:, dense_index[draws]])


def test_theta_every_one_is_the_default_run_id_and_other_values_are_not():
    assert run_id(config(theta_every=1)) == run_id(config())
    assert config(theta_every=1).sampler.theta_every is None
    assert run_id(config(theta_every=4)) != run_id(config())


@pytest.mark.parametrize(("settings", "message"), [
    ({"stop": "fixed", "steps": 100, "thinning": 1, "theta_every": 30},
     "sampler.theta_every: 30 leaves fewer than 4 θ draws of 100 kept draws; allowed 1..25"),
    ({"stop": "converged", "max_draws": 400, "theta_every": 26},
     "sampler.theta_every: 26 is too large for sampler.max_draws = 400"),
    ({"theta_every": 0}, "sampler.theta_every"),
])
def test_bad_theta_every_names_the_field_and_the_range(settings, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        config(**settings)


def test_theta_figure_places_sparse_theta_at_its_draws(tmp_path):
    run = run_job(config(stop="fixed", steps=400, thinning=1, step_size=1e-3, theta_every=4), runs_root=tmp_path)
    data = P.load_run(run.run_dir)
    assert data.theta.shape[1] == 100 and data.loss.shape[1] == 400
    fig = P.fig_theta(data)
    first_line = fig.axes[0].lines[0]
    assert np.array_equal(first_line.get_xdata()[:3], [4, 8, 12])  # 1-based draw numbers of θ draws 3, 7, 11
    results = P.analyze_run(run.run_dir, out=tmp_path / "fig", kinds=["theta", "rank"])
    assert {r.kind for r in results if r.status == "written"} == {"theta", "rank"}
