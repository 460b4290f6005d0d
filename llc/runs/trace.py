"""trace.nc: the kept draws of a run as an ArviZ DataTree (readable by `arviz.from_netcdf`).

Groups: `posterior` (loss, llc = nβ(L - L0), theta projections: over `draw`, or with sampler.theta_every
over their own `theta_draw`, whose coordinate is the kept-draw index of each), `sample_stats`
(per-draw sampler diagnostics, e.g. acceptance_rate, diverging, energy_change)
and `adaptation` (per-chain adapted quantities: step size, L, metric summary).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from arviz_base import from_dict

from llc.runs.layout import atomic_path
from llc.samplers import ChainRun


def build_trace(chains: ChainRun, nbeta: float, L0: float, valid: np.ndarray, attrs: dict[str, Any]) -> xr.DataTree:
    posterior = {"loss": chains.loss, "llc": nbeta * (chains.loss - L0)}
    dense_theta = chains.theta_draws is None
    if dense_theta:
        posterior["theta"] = chains.theta
    stats = {k: np.asarray(v) for k, v in chains.diagnostics.items()}
    stats["chain_valid"] = np.broadcast_to(valid[:, None], chains.loss.shape).copy()
    flat_attrs = {k: (json.dumps(v) if isinstance(v, dict | list | bool) or v is None else v) for k, v in attrs.items()}
    tree = from_dict(
        {"posterior": posterior, "sample_stats": stats},
        dims={"theta": ["projection"]},
        attrs={"posterior": flat_attrs},
    )
    if not dense_theta:
        # θ at every k-th kept draw only (sampler.theta_every): its own dimension, whose coordinate is the
        # index of each θ draw among the kept draws.
        sparse = xr.DataArray(chains.theta, dims=("chain", "theta_draw", "projection"),
                              coords={"theta_draw": np.asarray(chains.theta_draws)})
        tree["posterior"] = xr.DataTree(tree["posterior"].to_dataset().assign(theta=sparse))
    adaptation = {}
    for name, value in chains.warmup_info.items():
        value = np.asarray(value)
        dims = ["chain"] + [f"{name}_dim_{i}" for i in range(value.ndim - 1)]
        adaptation[name] = (dims, value)
    tree["adaptation"] = xr.DataTree(xr.Dataset(adaptation, coords={"chain": np.arange(chains.loss.shape[0])}))
    return tree


def write_trace(tree: xr.DataTree, path: Path) -> None:
    with atomic_path(path, suffix=".nc") as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
