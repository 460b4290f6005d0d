"""Layering presets and the chosen sampler's own values under the user's settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llc.config.presets import PRESETS
from llc.config.reading import flatten
from llc.config.schema import CommonSamplerConfig
from llc.errors import ConfigError, shown
from llc.samplers.registry import sampler_specs

COMMON_SAMPLER_KEYS = frozenset(f for f in CommonSamplerConfig.__dataclass_fields__)


def sampler_keys() -> dict[str, frozenset[str]]:
    """sampler name -> the `sampler.*` keys that are its own (the common keys apply to every sampler)."""
    return {name: frozenset(spec.keys) for name, spec in sampler_specs().items()}


def applicable_keys(sampler: str) -> frozenset[str]:
    return COMMON_SAMPLER_KEYS | sampler_keys()[sampler]


def check_preset(name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"preset: expected a preset name, one of {', '.join(PRESETS)}")
    if name not in PRESETS:
        raise ConfigError(f"--preset: {shown(name)} is not a preset; choose one of {', '.join(PRESETS)}")
    return name


def default_sampler(preset: str) -> str:
    return PRESETS[preset].get("sampler", {}).get("name") or CommonSamplerConfig.name


def preset_layers(preset: str, sampler: str) -> dict[str, Any]:
    """Dotted keys from the sampler's defaults, the preset's problem, then the sampler's preset values."""
    spec = sampler_specs()[sampler]
    flat = {f"sampler.{k}": v for k, v in spec.defaults().items()}
    flat.update(flatten(PRESETS[check_preset(preset)]))
    flat.update({f"sampler.{k}": v for k, v in spec.presets.get(preset, {}).items()})
    return flat


def check_sampler_keys(user: Mapping[str, Any], sampler: str) -> None:
    """A user's `sampler.*` key that the chosen sampler does not have is an error naming who has it."""
    allowed = applicable_keys(sampler)
    for key in user:
        name = key.split(".", 1)[1] if key.startswith("sampler.") else None
        if name is not None and name not in allowed:
            users = sorted(s for s, keys in sampler_keys().items() if name in keys)
            raise ConfigError(
                f"{key} does not apply to sampler {shown(sampler)} (it applies to: {', '.join(users)}); "
                f"{sampler} accepts {', '.join(sorted(allowed - {'name'}))}"
            )


def check_spec_presets() -> None:
    """Every preset a sampler names exists, and every key it sets there is one of its keys."""
    for name, spec in sampler_specs().items():
        for preset, values in spec.presets.items():
            if preset not in PRESETS:
                raise TypeError(f"sampler {name}: preset {preset!r} does not exist ({', '.join(PRESETS)})")
            unknown = set(values) - applicable_keys(name)
            if unknown:
                raise TypeError(f"sampler {name}: preset {preset} sets keys it does not have: {sorted(unknown)}")


check_spec_presets()
