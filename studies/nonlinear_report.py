"""Table and figure of docs/nonlinear.md from the nonlinear study's runs (issue 18).

    uv run llc aggregate RUNS                       # RUNS/llc_aggregate.csv: every run, references joined
    uv run python studies/nonlinear_report.py RUNS/llc_aggregate.csv

It only reads: one row per finished run (problem names are <activation>-<size>-<inputs>, as in
studies/nonlinear.yaml). Prints the markdown tables (per activation x size x sampler, and per family)
and writes docs/img/nonlinear_ref_error.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
REFERENCE_LABEL = "ref-nuts"
ORDER = ["sgld", "sgld-fde20k", "sghmc", "sghmc-fde20k", "hmc", "hmc-fde20k", "nuts", "nuts-fde20k",
         "mclmc", "mclmc-fde20k", "mclmc_adjusted", "mclmc-adjusted-fde20k"]


def _true(col: pd.Series) -> pd.Series:
    return col.astype(str).str.lower().eq("true")


def load(path: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    df = df[df["problem"].str.count("-") == 2].copy()
    df[["activation", "size", "inputs"]] = df["problem"].str.split("-", expand=True)
    df["reference"] = _true(df["is_reference"])
    df["fde_per_chain"] = (df["work.fde_warmup"] + df["work.fde_sampling"]) / df["n_chains"]
    # A run labelled like the reference that is not its family's reference is a former reference: NUTS with the
    # quick preset's trees (depth <= 4), before the study's reference became depth 8. It is compared separately.
    df["former_reference"] = ~df["reference"] & df["sampler"].eq(REFERENCE_LABEL)
    return df


def former_references(df: pd.DataFrame) -> str:
    """The depth-4 references against the depth-8 ones, family by family (a check of the reference itself)."""
    rows = df[df.former_reference].sort_values(["size", "activation", "inputs", "seed"])
    lines = ["| family (seed) | depth 4: λ̂ ± SE | R̂ | converged | FDE/chain | depth 8 (reference) | difference |",
             "|---|---|---:|---|---:|---|---:|"]
    for _, r in rows.iterrows():
        ref = df[df.reference & df.family_id.eq(r.family_id)].iloc[0]
        lines.append(f"| {r.problem} ({r.seed}) | {r.llc_mean:.2f} ± {r.llc_se:.2f} | {r.rhat:.3f} | {r.converged} | "
                     f"{r.fde_per_chain:,.0f} | {ref.llc_mean:.2f} ± {ref.llc_se:.2f} (FDE/chain {ref.fde_per_chain:,.0f}) | "
                     f"{100 * r.ref_error:+.1f}%, {r.ref_z:+.1f} SE |")
    return "\n".join(lines)


def families(df: pd.DataFrame) -> str:
    refs = df[df.reference].sort_values(["size", "activation", "inputs", "seed"])
    lines = ["| family (seed) | reference λ̂ ± SE | status | R̂ | FDE/chain |", "|---|---|---|---:|---:|"]
    for _, r in refs.iterrows():
        lines.append(f"| {r.problem} ({r.seed}) | {r.llc_mean:.2f} ± {r.llc_se:.2f} | {r.ref_status} | {r.rhat:.3f} | "
                     f"{r.fde_per_chain:,.0f} |")
    return "\n".join(lines)


def table(df: pd.DataFrame) -> str:
    rows = df[~df.reference & ~df.former_reference & df["ref_status"].eq("converged")]
    lines = ["| activation | size | sampler | rows | converged | median \\|ref_error\\| | within 3 SE | "
             "median FDE/chain | median WNV/FDE |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (act, size), part in rows.groupby(["activation", "size"]):
        for label in [s for s in ORDER if s in set(part["sampler"])]:
            g = part[part["sampler"] == label]
            within = (g["ref_z"].abs() <= 3).mean()
            lines.append(
                f"| {act} | {size} | {label} | {len(g)} | {_true(g['converged']).sum()} | "
                f"{100 * g['ref_error'].abs().median():.1f}% | {within:.0%} | {g['fde_per_chain'].median():,.0f} | "
                f"{g['wnv_fde'].median():.3g} |")
    return "\n".join(lines)


def per_run(df: pd.DataFrame) -> str:
    rows = df[~df.reference & ~df.former_reference].sort_values(["size", "activation", "inputs", "seed", "sampler"])
    lines = ["| family (seed) | sampler | λ̂ ± SE | λ_ref | ref_error | ref_z | converged | stop | FDE/chain |",
             "|---|---|---|---:|---:|---:|---|---|---:|"]
    for _, r in rows.iterrows():
        err = f"{100 * r.ref_error:+.1f}%" if pd.notna(r.ref_error) else "—"
        z = f"{r.ref_z:+.1f}" if pd.notna(r.ref_z) else "—"
        ref = f"{r.lambda_ref:.2f}" if pd.notna(r.lambda_ref) else f"({r.ref_status})"
        lines.append(f"| {r.problem} ({r.seed}) | {r.sampler} | {r.llc_mean:.2f} ± {r.llc_se:.2f} | {ref} | {err} | "
                     f"{z} | {r.converged} | {r.stop_reason} | {r.fde_per_chain:,.0f} |")
    return "\n".join(lines)


def figure(df: pd.DataFrame, size: str, out: Path) -> None:
    rows = df[~df.reference & ~df.former_reference & df["ref_error"].notna() & df["size"].eq(size)]
    labels = [s for s in ORDER if s in set(rows["sampler"])]
    fams = sorted(set(zip(rows["problem"], rows["seed"], strict=True)))  # families: (problem, seed)
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / max(1, len(fams))
    for j, (problem, seed) in enumerate(fams):
        g = rows[(rows["problem"] == problem) & (rows["seed"] == seed)].set_index("sampler")
        fam = f"{problem} (seed {seed})"
        color = plt.cm.tab20(j % 20)  # up to 20 families without repeating a colour
        labelled = False
        for done in (True, False):  # filled: converged; open: stopped at its budget
            here = [(i, s) for i, s in enumerate(labels) if s in g.index and _true(g.loc[[s], "converged"]).iloc[0] == done]
            if not here:
                continue
            label, labelled = (fam if not labelled else "_nolegend_"), True
            xs = [i + (j - (len(fams) - 1) / 2) * width for i, _ in here]
            ys = [100 * g.loc[s, "ref_error"] for _, s in here]
            es = [100 * 3 * np.hypot(g.loc[s, "llc_se"], g.loc[s, "lambda_ref_se"]) / g.loc[s, "lambda_ref"] for _, s in here]
            ax.errorbar(xs, ys, yerr=es, fmt="o", ms=5, capsize=2, color=color, mfc=color if done else "white",
                        label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("(λ̂ − λ_ref) / λ_ref  [%]")
    ax.set_xlabel("filled: converged · open: stopped at its budget · bars: 3 combined SE")
    power = {"2": "²", "3": "³", "4": "⁴"}.get(size[-1], size[-1])
    ax.set_title(f"Nonlinear MLPs (~10{power} parameters): each sampler against the NUTS reference")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    df = load(sys.argv[1])
    print("## References\n\n" + families(df) + "\n")
    print("## Per activation x size x sampler (families with a converged reference)\n\n" + table(df) + "\n")
    print("## Former (depth-4) references against the reference\n\n" + former_references(df) + "\n")
    print("## Every run\n\n" + per_run(df) + "\n")
    for size in sorted(set(df.loc[~df.reference & ~df.former_reference & df["ref_error"].notna(), "size"])):
        out = DOCS / "img" / ("nonlinear_ref_error.png" if size == "d1e2" else f"nonlinear_ref_error_{size}.png")
        figure(df, size, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
