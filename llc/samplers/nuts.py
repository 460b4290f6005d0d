"""NUTS with BlackJAX's Stan-style window adaptation (notes §4).

Same machinery as `llc.samplers.hmc` (per-chain `window_adaptation`, standardised
coordinates, loss from the state's log-density); the trajectory length is
chosen by the no-U-turn criterion (at most 2**10 - 1 leapfrog steps), so each
draw's cost is its own `num_integration_steps`, recorded per draw together
with `tree_depth` and the Hamiltonian `energy` (for BFMI).
"""

from __future__ import annotations

from llc.config import SamplerConfig
from llc.posterior import Posterior
from llc.samplers.base import Sampler
from llc.samplers.hmc import build_window_adapted


def build(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    return build_window_adapted(posterior, cfg, "nuts")
