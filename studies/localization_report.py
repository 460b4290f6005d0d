"""Tables and figures of docs/localization.md from the localization studies' sweep CSVs.

    uv run python studies/localization_report.py RUNS/localization.csv RUNS/localization_n5000.csv \
        RUNS/localization_nuts.csv RUNS/localization_mlp.csv

Every input row is one cached run (`llc sweep ... --csv`); this script only reads them. It prints the
markdown tables and writes docs/img/localization_*.png and docs/localization_study.csv (one row per
problem, sampler, n and γ: seed mean, combined SE, worst R̂, distances and basin flags).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load(paths: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    df = pd.concat(frames, ignore_index=True).drop_duplicates("run_id")
    df = df[df["status"].isin(["done", "cached"])].copy()
    df["case"] = df["problem"].str.split("+").str[0]
    df["n_data"] = df["n_data"].astype(int)
    for col in ("basin.dist_ratio", "basin.loss_gap_min", "basin.left"):
        if col not in df:
            df[col] = np.nan
    return df


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    def one(g: pd.DataFrame) -> pd.Series:
        lam = g["lambda_true"].iloc[0]
        mean = g["llc_mean"].mean()
        se = math.sqrt((g["llc_se"] ** 2).sum()) / len(g)
        left = g["basin.left"].astype(str).str.lower().eq("true").sum()
        return pd.Series({
            "seeds": len(g), "nbeta": g["nbeta"].iloc[0], "lambda_true": lam, "llc_mean": mean, "llc_se": se,
            "seed_spread": g["llc_mean"].std(ddof=1) if len(g) > 1 else 0.0,
            "ratio": mean / lam if pd.notna(lam) else np.nan,
            "rhat_max": g["rhat"].max(), "converged": int(g["converged"].astype(str).str.lower().eq("true").sum()),
            "dist_ratio": g["basin.dist_ratio"].mean(), "gap_min": g["basin.loss_gap_min"].min(), "left_basin": left,
        })

    keys = ["case", "sampler", "n_data", "gamma"]
    return df.groupby(keys).apply(one, include_groups=False).reset_index().sort_values(keys)


def ratio_table(s: pd.DataFrame, sampler: str, n: int) -> str:
    part = s[(s.sampler == sampler) & (s.n_data == n) & s.lambda_true.notna()]
    gammas = sorted(part.gamma.unique())
    lines = ["| case | λ | " + " | ".join(f"γ = {g:g}" for g in gammas) + " |",
             "|---|---:|" + "---:|" * len(gammas)]
    for case, g in part.groupby("case", sort=False):
        cells = []
        for gamma in gammas:
            row = g[g.gamma == gamma]
            if row.empty:
                cells.append("—")
                continue
            r = row.iloc[0]
            flag = "" if r.converged == r.seeds else f" ({int(r.converged)}/{int(r.seeds)} conv.)"
            cells.append(f"{(r.ratio - 1) * 100:+.1f}%{flag}")
        varies = g.lambda_true.nunique() > 1  # the quadratic's truth is its exact finite-nβ value at each γ
        lam = "exact ½Σ nβa/(nβa+γ)" if varies else f"{g.lambda_true.iloc[0]:.4g}"
        lines.append(f"| {case} | {lam} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mlp_table(s: pd.DataFrame) -> str:
    part = s[s.lambda_true.isna()]
    lines = ["| case | γ | seeds | λ̂ ± SE | seed spread | R̂ max | dist / sqrt(d/γ) | min nβ(L−L0) | left basin |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in part.iterrows():
        spread = f"{r.seed_spread:.2f}" if r.seeds > 1 else "—"
        lines.append(f"| {r.case} | {r.gamma:g} | {int(r.seeds)} | {r.llc_mean:.2f} ± {r.llc_se:.2f} | {spread} | "
                     f"{r.rhat_max:.3f} | {r.dist_ratio:.2f} | {r.gap_min:.2f} | {int(r.left_basin)}/{int(r.seeds)} |")
    return "\n".join(lines)


def plot(s: pd.DataFrame, x: str, out: Path) -> None:
    part = s[(s.sampler == "hmc") & s.lambda_true.notna()]
    ns = sorted(part.n_data.unique())
    fig, axes = plt.subplots(1, len(ns), figsize=(6 * len(ns), 4.5), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], ns, strict=True):
        for case, g in part[part.n_data == n].groupby("case", sort=False):
            g = g.sort_values("gamma")
            xs = g.gamma if x == "gamma" else g.gamma / g.nbeta
            ax.errorbar(xs, g.ratio, yerr=g.llc_se / g.lambda_true, marker="o", ms=3, capsize=2, label=case)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhspan(0.95, 1.05, color="0.9", zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel("γ" if x == "gamma" else "γ / nβ")
        nbeta = part[part.n_data == n].nbeta.iloc[0]
        rule = 0.5 * math.sqrt(nbeta)  # the default γ = sqrt(nβ)/2 (llc.config.localization)
        ax.axvline(rule if x == "gamma" else rule / nbeta, color="k", ls=":", lw=1, label="default γ = sqrt(nβ)/2")
        seeds = int(part[part.n_data == n].seeds.max())
        ax.set_title(f"HMC, n = {n}, {seeds} data seeds")
    axes[0][0].set_ylabel("λ̂ / λ (quadratic: exact finite-nβ value)")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main(paths: list[str]) -> None:
    s = summarise(load(paths))
    s.to_csv(DOCS / "localization_study.csv", index=False, float_format="%.6g")
    img = DOCS / "img"
    img.mkdir(exist_ok=True)
    plot(s, "gamma", img / "localization_gamma.png")
    plot(s, "gamma_nbeta", img / "localization_gamma_nbeta.png")
    for n in sorted(s.n_data.unique()):
        for sampler in sorted(s.sampler.unique()):
            if ((s.sampler == sampler) & (s.n_data == n) & s.lambda_true.notna()).any():
                print(f"\n### {sampler.upper()}, n = {n}: (λ̂ − λ)/λ, mean of the seeds\n")
                print(ratio_table(s, sampler, n))
    if s.lambda_true.isna().any():
        print("\n### Nonlinear MLPs (HMC)\n")
        print(mlp_table(s))


if __name__ == "__main__":
    main(sys.argv[1:])
