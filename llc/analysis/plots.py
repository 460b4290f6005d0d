"""Diagnostic figures of one run directory (`llc analyze`); how to read them: docs/plots.md.

Figures (one PNG each, `<kind>.png`):

- running_llc    running λ̂ per chain and pooled, ±1 SE band, λ true when known (matplotlib)
- rank           rank ECDF-difference plot of λ̂ and the θ projections (arviz_plots.plot_rank)
- ess_evolution  bulk/tail ESS of λ̂ against the number of draws (arviz_plots.plot_ess_evolution)
- autocorr       autocorrelation of the λ̂ draws per chain (arviz_plots.plot_autocorr)
- energy         HMC energy: marginal vs transition, BFMI (arviz_plots.plot_energy); needs
                 sample_stats/energy
- theta          the recorded random projections θ_k = <w - w*, u_k> against draw (matplotlib)
- acceptance     histogram of per-draw acceptance rates (matplotlib); needs sample_stats/acceptance_rate
- energy_change  histogram of MCLMC per-step energy changes (matplotlib); needs sample_stats/energy_change

A figure applies to a run when the data it needs is in trace.nc; `why_not` says why it does
not. Chains flagged invalid (non-finite values, sample_stats/chain_valid) are left out of every
figure and named in its title. Long traces are thinned for drawing only (every k-th draw, the
stride stated on the figure); statistics (SE, ESS, autocorrelation) use every draw, except the
rank plot, whose multi-chain uniformity test costs superlinear time and runs on at most
RANK_MAX_DRAWS draws per chain (every k-th draw).
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # headless unless the caller chose a backend

import math
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llc.errors import ConfigError
from llc.estimator import ESS_PER_CHAIN_MIN, running_llc
from llc.paths import check_writable_dir
from llc.records import Metrics
from llc.runs import layout

PLOT_KINDS = ("running_llc", "rank", "ess_evolution", "autocorr", "energy", "theta", "acceptance", "energy_change")
DEFAULT_OUT = layout.PLOTS_DIR

LINE_MAX_POINTS = 2000  # per chain, for trace-like line plots (drawing only)
RANK_MAX_DRAWS = 1000  # per chain, for the rank plot's uniformity test
SE_CHECKPOINTS = 60  # draws t at which the running SE band is evaluated
DPI = 110

CHAIN_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")


# --------------------------------------------------------------------------------------------
# Loading a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunData:
    """What the figures need from a run directory, as numpy arrays (chains first)."""

    run_dir: Path
    run_id: str
    sampler: str
    config: dict[str, Any]
    metrics: Metrics
    loss: np.ndarray  # (C, D) L_n (or the minibatch loss, see metrics.loss_trace) at each kept draw
    llc: np.ndarray  # (C, D) nβ (L - L0) at each kept draw
    theta: np.ndarray | None  # (C, Dθ, P) random projections of w - w*
    theta_draws: np.ndarray | None  # (Dθ,) kept-draw index of each θ draw; None: θ at every draw
    stats: dict[str, np.ndarray]  # (C, D) per-draw sampler diagnostics (chain_valid removed)
    valid: np.ndarray  # (C,) bool

    @property
    def chains(self) -> np.ndarray:
        """Indices of the valid chains (the ones every figure shows)."""
        return np.flatnonzero(self.valid)

    @property
    def n_draws(self) -> int:
        return int(self.llc.shape[1])

    @property
    def thinning(self) -> int:
        return int((self.config.get("sampler") or {}).get("thinning") or 1)

    @property
    def lambda_true(self) -> float | None:
        value = self.metrics.lambda_true
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def label(self) -> str:
        """`<sampler> · run <run id>` for titles."""
        return f"{self.sampler} · run {self.run_id}"

    def excluded_note(self) -> str:
        bad = np.flatnonzero(~self.valid)
        if bad.size == 0:
            return ""
        return f"; chain{'s' if bad.size > 1 else ''} {', '.join(map(str, bad))} excluded (non-finite)"


def find_run_dirs(paths: Iterable[str | Path], on_damaged: Callable[[Path, str], None] | None = None) -> list[Path]:
    """Run directories named directly, or every complete run directory under a runs root.

    Directories whose name starts with `_` or `.` (`_targets`, `_tmp`, `_sweeps`) and
    `analysis` output folders are not searched; incomplete run directories are skipped, and
    `on_damaged(path, reason)` hears of each one named like a run directory.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such run directory or runs root")
        if layout.is_complete(path):
            found.append(path)
            continue
        if not path.is_dir():
            raise ConfigError(f"{path}: not a run directory")
        under = []
        for root, dirs, _files in os.walk(path):
            here = Path(root)
            reason = layout.incomplete_reason(here) if here != path else "root"
            if reason is None:
                under.append(here)
                dirs[:] = []
                continue
            if here != path and on_damaged is not None and layout.looks_like_run_dir(here):
                on_damaged(here, reason)
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")) and d != DEFAULT_OUT)
        if not under:
            raise ConfigError(
                f"{path}: not a complete run directory ({layout.incomplete_reason(path)}) "
                "and no complete run directories under it"
            )
        found.extend(sorted(under))
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


def load_run(run_dir: str | Path) -> RunData:
    """Read config.json, metrics.json and trace.nc of a complete run directory into memory."""
    import xarray as xr

    run_dir = Path(run_dir)
    reason = layout.incomplete_reason(run_dir)
    if reason is not None:
        raise ConfigError(f"{run_dir}: not a complete run directory ({reason})")
    config = layout.read_config(run_dir)
    metrics = layout.read_metrics(run_dir)
    with xr.open_datatree(run_dir / layout.TRACE, engine="h5netcdf") as tree:
        post = tree["posterior"]
        loss = np.asarray(post["loss"].values, dtype=np.float64)
        llc = np.asarray(post["llc"].values, dtype=np.float64)
        theta = np.asarray(post["theta"].values, dtype=np.float64) if "theta" in post.data_vars else None
        theta_draws = np.asarray(post["theta_draw"].values) if "theta_draw" in post.coords else None
        stats: dict[str, np.ndarray] = {}
        if "sample_stats" in tree.children:
            for name, var in tree["sample_stats"].data_vars.items():
                if var.dims[:2] == ("chain", "draw"):
                    stats[str(name)] = np.asarray(var.values)
    valid_draws = stats.pop("chain_valid", None)
    if valid_draws is not None:
        valid = np.asarray(valid_draws, dtype=bool).all(axis=tuple(range(1, valid_draws.ndim)))
    else:
        valid = np.all(np.isfinite(llc), axis=1)
    if theta is not None and theta.ndim == 2:
        theta = theta[..., None]
    return RunData(
        run_dir=run_dir,
        run_id=metrics.run_id,
        sampler=str(metrics.sampler or (config.get("sampler") or {}).get("name") or "?"),
        config=config,
        metrics=metrics,
        loss=loss,
        llc=llc,
        theta=theta,
        theta_draws=theta_draws,
        stats=stats,
        valid=valid,
    )


# --------------------------------------------------------------------------------------------
# Applicability
# --------------------------------------------------------------------------------------------

NEEDS_STAT = {  # figure -> (sample_stats variable, who records it)
    "energy": ("energy", "HMC-family samplers that store the Hamiltonian, e.g. NUTS"),
    "acceptance": ("acceptance_rate", "Metropolis-adjusted samplers: HMC, NUTS, adjusted MCLMC"),
    "energy_change": ("energy_change", "unadjusted MCLMC"),
}
MIN_DRAWS = {"running_llc": 4, "rank": 4, "ess_evolution": 20, "autocorr": 4, "theta": 2}


def why_not(run: RunData, kind: str) -> str | None:
    """None if figure `kind` applies to the run, else a short reason."""
    if kind not in PLOT_KINDS:
        raise ConfigError(f"unknown plot {kind!r}; available: {', '.join(PLOT_KINDS)}")
    if run.chains.size == 0:
        return "no valid chain (every chain has non-finite values)"
    if kind in NEEDS_STAT:
        name, who = NEEDS_STAT[kind]
        values = run.stats.get(name)
        if values is None:
            return f"needs sample_stats/{name} (recorded by {who}); this {run.sampler} run has none"
        if not np.isfinite(np.asarray(values, dtype=np.float64)[run.valid]).any():
            return f"sample_stats/{name} has no finite value"
    if kind == "rank" and run.chains.size < 2:
        return "compares chains: needs at least 2 valid chains"
    if kind == "theta" and (run.theta is None or run.theta.shape[-1] == 0):
        return "trace.nc has no theta projections"
    if run.n_draws < MIN_DRAWS.get(kind, 1):
        return f"needs at least {MIN_DRAWS[kind]} draws per chain, the run has {run.n_draws}"
    return None


def applicable_kinds(run: RunData) -> list[str]:
    return [k for k in PLOT_KINDS if why_not(run, k) is None]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def stride_for(n: int, max_points: int) -> int:
    """Keep every k-th point so that at most `max_points` remain."""
    return max(1, math.ceil(n / max_points))


def _thin_index(n: int, max_points: int) -> np.ndarray:
    """Every k-th index, always including the last one."""
    idx = np.arange(0, n, stride_for(n, max_points))
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def _draw_label(run: RunData) -> str:
    extra = f", every {run.thinning}-th step kept" if run.thinning > 1 else ""
    return f"draw (after warm-up{extra})"


def _new_figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _chain_color(i: int) -> str:
    return CHAIN_COLORS[i % len(CHAIN_COLORS)]


def _suptitle(fig, what: str, run: RunData, detail: str = "") -> None:
    """Title line naming the figure, sampler and run; detail lines wrapped to the figure width."""
    text = f"{what} — {run.label()}"
    detail = (detail + run.excluded_note()).lstrip("; ")
    if detail:
        width = max(40, int(fig.get_figwidth() * 11))  # characters per line at fontsize 11
        text += "\n" + "\n".join(textwrap.fill(line, width) for line in detail.split("\n"))
    fig.suptitle(text, fontsize=11)


def running_se(llc: np.ndarray, checkpoints: np.ndarray) -> np.ndarray:
    """SE of the pooled running λ̂ at each checkpoint t: nβ·MCSE of the loss draws 1..t.

    `llc` is already nβ(L - L0), so MCSE of its mean is nβ·MCSE(mean L), the estimator of
    metrics.json (arviz_stats.mcse, method "mean", all chains) applied to the first t draws;
    at t = D it equals `llc_se`.
    """
    import arviz_stats as azs

    return np.array([float(azs.mcse(np.ascontiguousarray(llc[:, :t]), method="mean")) for t in checkpoints])


def se_checkpoints(n_draws: int, count: int = SE_CHECKPOINTS) -> np.ndarray:
    """Draw counts t (≥ 10 when possible, always ending at n_draws) where the SE band is evaluated."""
    start = min(10, n_draws)
    return np.unique(np.r_[np.linspace(start, n_draws, count).round().astype(int), n_draws])


# --------------------------------------------------------------------------------------------
# Figures drawn with matplotlib
# --------------------------------------------------------------------------------------------


def fig_running_llc(run: RunData):
    llc = run.llc[run.valid]
    n_chains, n_draws = llc.shape
    t = np.arange(1, n_draws + 1)
    per_chain, pooled = running_llc(run.loss[run.valid], run.metrics.nbeta, run.metrics.L0)
    ts = se_checkpoints(n_draws)
    se = running_se(llc, ts)
    idx = _thin_index(n_draws, LINE_MAX_POINTS)

    fig = _new_figure((9, 5.2))
    ax = fig.add_subplot()
    for row, chain in zip(per_chain, run.chains, strict=True):
        ax.plot(t[idx], row[idx], lw=1.0, alpha=0.75, color=_chain_color(chain), label=f"chain {chain}: {row[-1]:.4g}")
    ax.fill_between(ts, pooled[ts - 1] - se, pooled[ts - 1] + se, color="0.55", alpha=0.3, lw=0,
                    label="pooled ±1 SE (nβ·MCSE of draws 1..t)")
    ax.plot(t[idx], pooled[idx], color="black", lw=2.0, label=f"pooled: {pooled[-1]:.4g} ± {se[-1]:.2g}")
    lam = run.lambda_true
    if lam is not None:
        ax.axhline(lam, color="crimson", ls="--", lw=1.5, label=f"λ true = {lam:.4g}")

    # y-range: everything after the first few draws (the first running means are single draws)
    start = min(n_draws - 1, max(9, n_draws // 50))
    lo = min(per_chain[:, start:].min(), (pooled[ts - 1] - se)[ts > start].min(initial=np.inf))
    hi = max(per_chain[:, start:].max(), (pooled[ts - 1] + se)[ts > start].max(initial=-np.inf))
    if lam is not None:
        lo, hi = min(lo, lam), max(hi, lam)
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(1, n_draws)
    ax.set_xlabel(_draw_label(run))
    ax.set_ylabel("running λ̂ = nβ·(mean loss of draws 1..t − L0)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncols=2 if n_chains > 4 else 1, framealpha=0.85)
    stride = stride_for(n_draws, LINE_MAX_POINTS)
    detail = (f"{n_chains} chains × {n_draws} draws, nβ = {run.metrics.nbeta:.4g}, "
              f"loss trace: {run.metrics.loss_trace or '?'}")
    if stride > 1:
        detail += f"; lines drawn at 1 in {stride} draws"
    _suptitle(fig, "Running λ̂", run, detail)
    return fig


def fig_theta(run: RunData):
    theta = run.theta[run.valid]
    n_chains, n_draws, n_proj = theta.shape
    idx = _thin_index(n_draws, LINE_MAX_POINTS)
    draw = np.arange(n_draws) if run.theta_draws is None else run.theta_draws  # θ's kept-draw indices
    fig = _new_figure((9, 1.2 + 1.6 * n_proj))
    axes = fig.subplots(n_proj, 1, sharex=True, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        for c, chain in enumerate(run.chains):
            ax.plot(draw[idx] + 1, theta[c, idx, k], lw=0.7, alpha=0.8, color=_chain_color(chain),
                    label=f"chain {chain}")
        ax.axhline(0.0, color="0.3", lw=0.8, ls=":")
        ax.set_ylabel(f"θ{_sub(k)}")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(_draw_label(run))
    axes[-1].set_xlim(1, run.n_draws)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=min(8, n_chains))
    stride = stride_for(n_draws, LINE_MAX_POINTS)
    detail = "θₖ = ⟨w − w*, uₖ⟩ for fixed random directions uₖ (‖uₖ‖ ≈ 1); 0 is the centre w*"
    if run.theta_draws is not None and n_draws > 1:
        detail += f"; recorded at every {int(run.theta_draws[1] - run.theta_draws[0])}-th draw"
    if stride > 1:
        detail += f"; drawn at 1 in {stride} {'θ ' if run.theta_draws is not None else ''}draws"
    _suptitle(fig, "Parameter projections", run, detail)
    return fig


def fig_acceptance(run: RunData):
    acc = np.asarray(run.stats["acceptance_rate"], dtype=np.float64)[run.valid]
    fig = _new_figure((8, 4.8))
    ax = fig.add_subplot()
    bins = np.linspace(0.0, 1.0, 41)
    for row, chain in zip(acc, run.chains, strict=True):
        row = row[np.isfinite(row)]
        ax.hist(np.clip(row, 0, 1), bins=bins, histtype="step", lw=1.5, color=_chain_color(chain),
                label=f"chain {chain}: mean {row.mean():.2f}")
    target = (run.config.get("sampler") or {}).get("target_accept")
    if isinstance(target, int | float):
        ax.axvline(target, color="black", ls="--", lw=1.2, label=f"target_accept = {target:g}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("acceptance probability of the draw's proposal")
    ax.set_ylabel("number of draws")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    detail = f"{acc.shape[0]} chains × {acc.shape[1]} draws"
    if "diverging" in run.stats:
        div = np.asarray(run.stats["diverging"], dtype=bool)[run.valid]
        detail += f"; divergent transitions: {int(div.sum())} of {div.size}"
    _suptitle(fig, "Acceptance rate", run, detail)
    return fig


def fig_energy_change(run: RunData):
    de = np.asarray(run.stats["energy_change"], dtype=np.float64)[run.valid]
    finite = de[np.isfinite(de)]
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 61)
    n_params = run.metrics.n_params
    fig = _new_figure((8, 4.8))
    ax = fig.add_subplot()
    for row, chain in zip(de, run.chains, strict=True):
        row = row[np.isfinite(row)]
        label = f"chain {chain}"
        if isinstance(n_params, int) and n_params > 0 and row.size > 1:
            label += f": Var(ΔE)/d = {row.var() / n_params:.2g}"
        ax.hist(np.clip(row, lo, hi), bins=bins, histtype="step", lw=1.5, color=_chain_color(chain), label=label)
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    ax.set_xlabel("energy change ΔE of one step (nats)")
    ax.set_ylabel("number of draws")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    outside = int(np.sum((finite < lo) | (finite > hi)))
    detail = f"{de.shape[0]} chains × {de.shape[1]} draws, d = {n_params} parameters"
    target = (run.config.get("sampler") or {}).get("desired_energy_var")
    if isinstance(target, int | float):
        detail += f"; tuner target Var(ΔE)/d = {target:g}"
    detail += f"\nx range: 0.5–99.5 % quantiles of ΔE; the {outside} draws outside it are counted in the edge bins"
    _suptitle(fig, "MCLMC energy change", run, detail)
    return fig


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(k: int) -> str:
    return str(k).translate(_SUBSCRIPTS)


# --------------------------------------------------------------------------------------------
# Figures drawn with arviz_plots
# --------------------------------------------------------------------------------------------


def _arviz_tree(run: RunData, stride: int = 1, with_theta: bool = False, with_energy: bool = False):
    """An in-memory DataTree of the valid chains (original chain numbers), every `stride`-th draw."""
    import arviz as az

    sl = (run.valid, slice(None, None, stride))
    llc, theta = run.llc, run.theta
    if with_theta and theta is not None and run.theta_draws is not None:
        # θ only at every k-th draw (sampler.theta_every): λ̂ at the same draws, so every variable has the
        # same draws in one tree.
        llc = llc[:, run.theta_draws]
    posterior = {"λ̂": llc[sl]}
    if with_theta and theta is not None:
        for k in range(theta.shape[-1]):
            posterior[f"θ{_sub(k)}"] = theta[sl][..., k]
    groups: dict[str, dict[str, np.ndarray]] = {"posterior": posterior}
    if with_energy:
        groups["sample_stats"] = {"energy": np.asarray(run.stats["energy"], dtype=np.float64)[sl]}
    return az.from_dict(groups, coords={"chain": run.chains})


def _figure_of(pc):
    return pc.viz["figure"].item()


def _visual(pc, visual: str, var: str):
    """The artist(s) arviz_plots drew for `visual` of variable `var`, as a flat list (or [])."""
    try:
        node = pc.viz[visual]
    except KeyError:
        return []
    if var not in node.data_vars:
        return []
    return [a for a in np.ravel(node[var].values) if a is not None]


def _chain_legend(fig, pc, visual: str, var: str, chains: Sequence[int], **kwargs) -> None:
    """Label the per-chain artists arviz_plots drew and add one legend for them."""
    from matplotlib.lines import Line2D

    arts = _visual(pc, visual, var)
    handles = []
    for art, chain in zip(arts, chains, strict=False):
        color = art.get_color() if hasattr(art, "get_color") else None
        handles.append(Line2D([], [], color=color, lw=1.5, label=f"chain {chain}"))
    if handles:
        fig.legend(handles=handles, fontsize=8, **kwargs)


def fig_rank(run: RunData):
    import arviz_plots as azp
    from matplotlib.collections import PathCollection

    stride = stride_for(run.n_draws, RANK_MAX_DRAWS)
    tree = _arviz_tree(run, stride=stride, with_theta=True)
    n_vars = len(tree["posterior"].data_vars)
    cols = min(n_vars, 3)
    rows = math.ceil(n_vars / cols)
    pc = azp.plot_rank(
        tree,
        backend="matplotlib",
        col_wrap=cols,
        figure_kwargs={"figsize": (3.6 * cols, 2.2 + 2.5 * rows), "layout": "constrained"},
    )
    fig = _figure_of(pc)
    for ax in fig.axes:
        if ax.get_visible() and ax.has_data():
            ax.set_xlabel("fractional rank (pooled over chains)")
        for coll in ax.collections:  # arviz's suspicious-rank markers are large; keep the lines visible
            if isinstance(coll, PathCollection):
                coll.set_sizes([6.0])
        # arviz writes "p=0.12(α=0.01)" inside the panel, where the ECDF lines run over it:
        # move the p-value into the panel title instead
        for text in list(ax.texts):
            match = re.match(r"\s*p=([0-9.eE+-]+)", text.get_text())
            if match:
                text.remove()
                ax.set_title(f"{ax.get_title()}   (p = {float(match.group(1)):.2f})")
    _chain_legend(fig, pc, "ecdf_lines", "λ̂", run.chains, loc="outside lower center", ncols=min(8, run.chains.size))
    detail = ("ECDF of each chain's ranks minus uniform; p: multi-chain uniformity test; "
              "black dots: chains disagree (α = 0.01)")
    if stride > 1:
        detail += f"\nthinned to 1 in {stride} draws ({math.ceil(run.n_draws / stride)} per chain) for the test"
    _suptitle(fig, "Rank plot", run, detail)
    return fig


def fig_ess_evolution(run: RunData):
    import arviz_plots as azp
    from matplotlib.lines import Line2D

    tree = _arviz_tree(run)
    n_chains = int(run.chains.size)
    min_ess = ESS_PER_CHAIN_MIN * n_chains
    pc = azp.plot_ess_evolution(
        tree, var_names=["λ̂"], backend="matplotlib", min_ess=min_ess,
        figure_kwargs={"figsize": (8, 4.8), "layout": "constrained"},
    )
    fig = _figure_of(pc)
    ax = fig.axes[0]
    ax.set_title("")
    ax.set_xlabel(f"total draws used (all {n_chains} chains, first t of each)")
    ax.set_ylabel("effective sample size of λ̂")
    ax.grid(alpha=0.3)
    handles = []
    for visual, label in (("ess_bulk_line", "bulk ESS"), ("ess_tail_line", "tail ESS (5 %/95 %)")):
        arts = _visual(pc, visual, "λ̂")
        if arts:
            handles.append(Line2D([], [], color=arts[0].get_color(), marker="o", label=label))
    arts = _visual(pc, "min_ess", "λ̂")
    if arts:
        handles.append(Line2D([], [], color=arts[0].get_color(), ls=arts[0].get_linestyle(),
                              label=f"{ESS_PER_CHAIN_MIN} per chain = {min_ess} (convergence threshold)"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    _suptitle(fig, "ESS evolution of λ̂", run,
              "ESS should grow linearly with draws; a plateau or drop means non-stationary or stuck chains")
    return fig


def autocorr_max_lag(run: RunData) -> int:
    """About 5 integrated autocorrelation times (from metrics' bulk ESS), within [50, D/2]."""
    n_draws = run.n_draws
    ess = run.metrics.estimate.ess_bulk
    total = n_draws * int(run.chains.size)
    tau = total / ess if isinstance(ess, int | float) and ess > 0 else 10.0
    return int(max(1, min(n_draws // 2, max(50, round(5 * tau)))))


def fig_autocorr(run: RunData):
    import arviz_plots as azp

    tree = _arviz_tree(run)
    max_lag = autocorr_max_lag(run)
    pc = azp.plot_autocorr(tree, var_names=["λ̂"], backend="matplotlib", max_lag=max_lag,
                           figure_kwargs={"figsize": (8, 4.8), "layout": "constrained"})
    fig = _figure_of(pc)
    ax = fig.axes[0]
    ax.set_title("")
    ax.set_xlabel("lag (draws)")
    ax.set_ylabel("autocorrelation of λ̂ draws")
    ax.grid(alpha=0.3)
    _chain_legend(fig, pc, "lines", "λ̂", run.chains, loc="outside lower center", ncols=min(8, run.chains.size))
    ess = run.metrics.estimate.ess_bulk
    detail = "grey: ±1.96/√(draws per chain), 95 % band of white noise"
    if isinstance(ess, int | float) and ess > 0:
        detail += f"; all draws / bulk ESS ≈ {run.n_draws * run.chains.size / ess:.3g}"
    _suptitle(fig, "Autocorrelation of λ̂", run, detail)
    return fig


def fig_energy(run: RunData):
    import arviz_plots as azp

    tree = _arviz_tree(run, with_energy=True)
    pc = azp.plot_energy(tree, backend="matplotlib",
                         figure_kwargs={"figsize": (10, 4.2), "layout": "constrained"})
    fig = _figure_of(pc)
    for ax in fig.axes:
        if ax.get_title() == "BFMI":
            ax.set_xlabel("BFMI (below the dashed 0.3 line: poor)")
            ax.set_ylabel("chain")
            ax.set_title("")
            ax.set_yticks(np.arange(run.chains.size), [str(c) for c in run.chains])
        elif ax.has_data():
            ax.set_xlabel("energy − mean energy (nats)")
    _suptitle(fig, "HMC energy", run, "marginal vs transition energy distributions; BFMI per chain")
    return fig


FIGURES: dict[str, Callable[[RunData], Any]] = {
    "running_llc": fig_running_llc,
    "rank": fig_rank,
    "ess_evolution": fig_ess_evolution,
    "autocorr": fig_autocorr,
    "energy": fig_energy,
    "theta": fig_theta,
    "acceptance": fig_acceptance,
    "energy_change": fig_energy_change,
}


def save_figure(fig, path: Path) -> None:
    """Write the PNG atomically (complete or absent) and release the figure."""
    import matplotlib.pyplot as plt

    try:
        with layout.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------
# One run, many runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureResult:
    kind: str
    path: Path | None
    status: str  # "written", "kept" (existed, no --overwrite) or "skipped" (does not apply)
    note: str = ""


def parse_kinds(spec: str | Sequence[str] | None) -> list[str] | None:
    """'rank, theta' -> ['rank', 'theta']; None/'' -> None (all that apply)."""
    if spec is None:
        return None
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    if not items:
        return None
    unknown = [s for s in items if s not in PLOT_KINDS]
    if unknown:
        raise ConfigError(f"--plots: unknown plot {', '.join(map(repr, unknown))}; available: {', '.join(PLOT_KINDS)}")
    return list(dict.fromkeys(items))


def analyze_run(
    run_dir: str | Path,
    kinds: Sequence[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    notify: Callable[[str], None] | None = None,
) -> list[FigureResult]:
    """Draw the figures of one run into `out` (default RUN_DIR/analysis) as `<kind>.png`.

    kinds None: every figure that applies to the run; requested figures that do not apply are
    skipped with a one-line notice (via `notify`, default stderr), as are existing files unless
    `overwrite`.
    """
    if notify is None:
        def notify(msg: str) -> None:
            print(msg, file=sys.stderr)

    run = load_run(run_dir)
    out_dir = Path(out) if out is not None else run.run_dir / DEFAULT_OUT
    requested = list(PLOT_KINDS) if kinds is None else list(kinds)
    results: list[FigureResult] = []
    for kind in requested:
        reason = why_not(run, kind)
        if reason is not None:
            notify(f"skip {kind} for {run.run_id} ({run.sampler}): {reason}")
            results.append(FigureResult(kind, None, "skipped", reason))
            continue
        path = out_dir / f"{kind}.png"
        if path.exists() and not overwrite:
            notify(f"kept {path} (exists; --overwrite to redraw)")
            results.append(FigureResult(kind, path, "kept"))
            continue
        if not any(r.status == "written" for r in results):  # before the first figure: fail at once, in one line
            check_writable_dir(out_dir, "--out" if out is not None else "figures folder (choose one with --out)")
        save_figure(FIGURES[kind](run), path)
        results.append(FigureResult(kind, path, "written"))
    return results
