"""The quadratic prediction of λ̂(γ) at the MLP centres of localization_mlp.yaml (docs/localization.md).

If the localized posterior of a nonlinear net were Gaussian around w*, λ̂(γ) would be the quadratic's
exact value ½ Σ_k nβ·a_k / (nβ·a_k + γ) over the eigenvalues a_k of the Hessian of L_n at w* (notes §6).
This script computes that Hessian (jax.hessian of the full-data loss, float64) for each MLP of the study
and prints the prediction next to HMC's λ̂ from the study's CSV: where the two agree, the γ-dependence
is the curvature spectrum's; where they part, the chains see beyond the quadratic neighbourhood.

    uv run python studies/localization_hessian.py RUNS/localization_mlp.csv --runs-dir RUNS
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from llc.config import resolve_config
from llc.jax_setup import configure_jax


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--runs-dir", required=True)
    args = parser.parse_args()
    configure_jax()
    import jax

    from llc.posterior import build_posterior
    from llc.targets import build_target

    df = pd.read_csv(args.csv)
    df = df[df["status"].isin(["done", "cached"])]
    print("| activation | γ | HMC λ̂ | quadratic ½Σ nβa/(nβa+γ) | ratio | eigenvalues with nβa > γ |")
    print("|---|---:|---:|---:|---:|---:|")
    spectra: dict[str, np.ndarray] = {}
    for _, row in df.sort_values(["target.activation", "posterior.gamma"]).iterrows():
        act, gamma = row["target.activation"], float(row["posterior.gamma"])
        if act not in spectra:
            cfg = resolve_config("quick", [f"target.activation={act}", f"posterior.gamma={gamma}",
                                           f"target.erm_steps={int(row['target.erm_steps'])}",
                                           f"target.erm_tol={row['target.erm_tol']}", f"seed={int(row['seed'])}"],
                                 sampler="hmc")
            posterior = build_posterior(cfg, build_target(cfg, args.runs_dir))
            hess = np.asarray(jax.hessian(posterior.full_loss)(posterior.w_star), dtype=np.float64)
            spectra[act] = np.clip(np.linalg.eigvalsh(0.5 * (hess + hess.T)), 0.0, None)
        eigs, nbeta = spectra[act], float(row["nbeta"])
        predicted = 0.5 * np.sum(nbeta * eigs / (nbeta * eigs + gamma))
        print(f"| {act} | {gamma:g} | {row['llc_mean']:.2f} | {predicted:.2f} | {row['llc_mean'] / predicted:.2f} | "
              f"{int(np.sum(nbeta * eigs > gamma))} of {eigs.size} |")


if __name__ == "__main__":
    main()
