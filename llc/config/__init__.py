"""Configuration: schema, presets, and resolution of user input into a validated Config."""

from llc.config.finalize import count_params
from llc.config.layering import sampler_keys
from llc.config.presets import PRESETS
from llc.config.reading import parse_override
from llc.config.resolve import config_from_dict, config_to_dict, resolve_config
from llc.config.schema import Config, DataConfig, PosteriorConfig, SamplerConfig, TargetConfig

__all__ = [
    "PRESETS",
    "Config",
    "DataConfig",
    "PosteriorConfig",
    "SamplerConfig",
    "TargetConfig",
    "config_from_dict",
    "config_to_dict",
    "count_params",
    "parse_override",
    "resolve_config",
    "sampler_keys",
]
