"""Sampler registry: name -> builder(posterior, sampler_config) -> Sampler."""

from __future__ import annotations

from collections.abc import Callable

from llc.config import SamplerConfig
from llc.posterior import Posterior
from llc.samplers import hmc, mclmc, mclmc_adjusted, nuts, sghmc, sgld
from llc.samplers.base import ChainRun, Sampler, run_chains

REGISTRY: dict[str, Callable[[Posterior, SamplerConfig], Sampler]] = {
    "sgld": sgld.build,
    "sghmc": sghmc.build,
    "hmc": hmc.build,
    "nuts": nuts.build,
    "mclmc": mclmc.build,
    "mclmc_adjusted": mclmc_adjusted.build,
}


def build_sampler(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    from llc.errors import ConfigError

    if cfg.name not in REGISTRY:
        raise ConfigError(f"sampler.name: {cfg.name!r} is not implemented yet; available: {', '.join(REGISTRY)}")
    return REGISTRY[cfg.name](posterior, cfg)


__all__ = ["REGISTRY", "ChainRun", "Sampler", "build_sampler", "run_chains"]
