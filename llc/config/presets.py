"""Presets: a problem size and the sampler settings every sampler shares there.

A preset's values are layered, later wins: schema defaults < the chosen sampler's own defaults
(its spec's `params`) < the preset's problem and common sampler settings (below) < the chosen
sampler's values for this preset (its spec's `presets[name]`) < `--config` < `--set`.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        # 49 parameters, n = 1000 (issue 16): small enough that every sampler converges in under a minute on
        # a 2-core CPU at the default γ (docs/samplers.md, "The quick preset"); at [8, 8] and n = 5000 (121
        # parameters, γ = 12.1) HMC took 3 minutes and the SG samplers 10-60 M steps. One hidden layer also
        # trains reliably at this n (every seed's ERM gradient ≤ 0.02 against a tolerance of 0.07).
        "target": {"kind": "mlp", "in_dim": 4, "out_dim": 1, "hidden": [8], "activation": "relu",
                   "erm_steps": 2000},
        "data": {"n": 1000},
        # Every preset samples until the diagnostics pass (docs/convergence.md); `steps` is the minimum.
        "sampler": {"chains": 4, "steps": 4000, "warmup": 400, "stop": "converged"},
    },
    "full": {
        "target": {"kind": "mlp", "in_dim": 32, "out_dim": 1, "depth": 3, "target_params": 10000,
                   # A 10k-parameter ReLU net keeps overfitting 20k noisy samples: its gradient norm
                   # stalls near 0.03-0.05 after 1000 L-BFGS steps (docs/targets.md). The tolerance is
                   # explicit here and the resulting bias bound is reported in metrics.json (erm).
                   "activation": "relu", "erm_steps": 1000, "erm_tol": 0.1},
        "data": {"n": 20000},
        # SG samplers get the full-batch samplers' work, not their step count: at the heating-bounded
        # step they need ~2.5 M steps to mix on the validation DLNs (R̂ ≤ 1.01; docs/validation.md),
        # which at b/n = 256/20000 is ≈ 33 000 FDE per chain against HMC's 40 000 (their specs).
        "sampler": {"chains": 4, "steps": 16000, "warmup": 1000, "stop": "converged"},
    },
}
