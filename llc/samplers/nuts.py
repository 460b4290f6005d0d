"""NUTS with BlackJAX's Stan-style window adaptation (notes §4).

Same machinery as `llc.samplers.hmc` (per-chain `window_adaptation`, standardised
coordinates, loss from the state's log-density); the trajectory length is
chosen by the no-U-turn criterion (at most 2**max_tree_depth - 1 leapfrog steps), so each
draw's cost is its own `num_integration_steps`, recorded per draw together
with `tree_depth` and the Hamiltonian `energy` (for BFMI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llc.samplers.hmc import NUTSOnlyParams, build_window_adapted
from llc.samplers.spec import SamplerSpec

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    return build_window_adapted(posterior, cfg, "nuts")


SPEC = SamplerSpec(
    name="nuts",
    summary="the no-U-turn sampler with Stan-style window adaptation",
    params=NUTSOnlyParams,
    build=build,
    minibatch=False,
    rel_tol=0.05,
    presets={
        # Depth 4 (≤ 15 leapfrog steps per draw): on the quick MLP every draw hit depth 7 when allowed (127
        # steps). Until converged, per chain: depth 7 took 76 040 FDE, depth 6 37 800, depth 5 37 200, depth 4
        # 22 500 (ESS 972, 759, 934, 472; docs/convergence.md). Truncation keeps detailed balance.
        "quick": {"step_size": 1e-3, "steps": 300, "warmup": 200, "max_tree_depth": 4},
        "full": {"step_size": 1e-4, "steps": 1000, "warmup": 1000},
    },
)
