"""Configuration: schema, presets, and resolution of user input into a validated Config."""

from llc.config.presets import PRESETS, SAMPLER_KEYS
from llc.config.resolve import (
    config_from_dict,
    config_to_dict,
    count_params,
    flat_config,
    parse_override,
    resolve_config,
)
from llc.config.schema import Config, DataConfig, PosteriorConfig, SamplerConfig, TargetConfig

__all__ = [
    "PRESETS",
    "SAMPLER_KEYS",
    "Config",
    "DataConfig",
    "PosteriorConfig",
    "SamplerConfig",
    "TargetConfig",
    "config_from_dict",
    "config_to_dict",
    "count_params",
    "flat_config",
    "parse_override",
    "resolve_config",
]
