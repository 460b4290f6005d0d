"""Samplers: one module per sampler, each declaring a `SPEC` (llc.samplers.spec) listed in
`llc.samplers.registry`; `build_sampler` turns a resolved config into a `Sampler` and `run_chains`
runs it over vmapped chains.

Attributes are imported on first use: `llc.config` reads the registry while it is being imported,
so this package must not import the config (or JAX-heavy modules) eagerly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import ChainRun, Sampler, run_chains  # noqa: F401


def build_sampler(posterior: Posterior, cfg: SamplerConfig) -> Sampler:
    from llc.errors import ConfigError, shown
    from llc.jax_setup import configure_jax
    from llc.samplers.registry import sampler_specs

    configure_jax()  # where a job's JAX work starts when llc is used as a library (run_job does it too)
    specs = sampler_specs()
    if cfg.name not in specs:
        raise ConfigError(f"sampler.name: {shown(cfg.name)} is not implemented; available: {', '.join(specs)}")
    return specs[cfg.name].build(posterior, cfg)


def __getattr__(name: str) -> Any:
    if name in ("ChainRun", "Sampler", "run_chains"):
        from llc.samplers import base

        return getattr(base, name)
    if name == "REGISTRY":  # name -> spec, in registry order
        from llc.samplers.registry import sampler_specs

        return sampler_specs()
    raise AttributeError(f"module 'llc.samplers' has no attribute {name!r}")


__all__ = ["REGISTRY", "ChainRun", "Sampler", "build_sampler", "run_chains"]
