"""Turn user input (preset, YAML file, `--set` overrides) into one validated `Config`.

Validation happens here, once: unknown keys, wrong types, out-of-range values
and inconsistent combinations raise `ConfigError` naming the key and what is
allowed. Everything downstream trusts the `Config` it is given. The steps live
in their own modules: reading (llc.config.reading), type coercion
(llc.config.coercion), preset layering (llc.config.layering) and cross-field
finalisation (llc.config.finalize).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from llc.config.coercion import TOP_LEVEL_KEYS, schema_field, validate_key_value
from llc.config.custom import check_not_custom, resolve_custom
from llc.config.finalize import finalize, inapplicable_target_keys
from llc.config.layering import check_preset, check_sampler_keys, default_sampler, preset_layers
from llc.config.reading import flatten, load_config_file, parse_override
from llc.config.schema import SECTIONS, Config, TargetConfig


def resolve_config(
    preset: str | None = None,
    overrides: typing.Sequence[str] | dict[str, Any] = (),
    config_file: str | Path | None = None,
    sampler: str | None = None,
) -> Config:
    """Build the fully-resolved, validated `Config`.

    Layers, later wins: schema defaults < the sampler's own defaults < preset (problem, then the
    chosen sampler's preset values) < config file < `--set` overrides < `--sampler`.
    """
    user, file_preset = _user_settings(overrides, config_file, sampler)
    preset_name = check_preset(preset or file_preset or "quick")
    sampler_name = user.get("sampler.name") or default_sampler(preset_name)
    check_sampler_keys(user, sampler_name)
    layers = preset_layers(preset_name, sampler_name)
    kind = user.get("target.kind", layers.get("target.kind", TargetConfig.kind))
    # A target key the model family never reads keeps the value it has without the user's setting,
    # so it cannot make a second run ID for the same job (target.rank on an MLP stays an error).
    user = {k: v for k, v in user.items() if k not in inapplicable_target_keys(kind) - {"target.rank"}}
    flat = {**layers, **user, "sampler.name": sampler_name}
    return _build(flat, user_keys=set(user), fresh=True)


def _user_settings(
    overrides: typing.Sequence[str] | dict[str, Any], config_file: str | Path | None, sampler: str | None
) -> tuple[dict[str, Any], Any]:
    """The user's dotted keys, validated one by one, and the config file's `preset` if any."""
    user: dict[str, Any] = {}
    file_preset = None
    if config_file is not None:
        data = load_config_file(config_file)
        file_preset = data.pop("preset", None)
        user.update(flatten(data, where=f"--config {config_file}: "))
    if isinstance(overrides, dict):
        user.update(flatten(overrides))
    else:
        user.update(parse_override(item) for item in overrides)
    if sampler is not None:
        user["sampler.name"] = sampler
    return {key: validate_key_value(key, value) for key, value in user.items()}, file_preset


def _build(flat: dict[str, Any], user_keys: set[str], fresh: bool) -> Config:
    """`fresh`: resolving user input (a custom entry is hashed and called); else rebuilding a stored config."""
    flat = {key: validate_key_value(key, value) for key, value in flat.items()}
    sections = {s: {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith(s + ".")} for s in SECTIONS}
    top = {k: flat[k] for k in TOP_LEVEL_KEYS if k in flat}
    cfg = Config(**{name: cls(**sections[name]) for name, cls in SECTIONS.items()}, **top)
    if cfg.target.kind == "custom":
        cfg = resolve_custom(cfg, user_keys, fresh)
    else:
        check_not_custom(cfg)
    return finalize(cfg, user_keys)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain-dict view (JSON/YAML-ready) of a Config."""
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from `config_to_dict` output (e.g. a run's config.json)."""
    flat = flatten({k: v for k, v in data.items() if k != "preset"})
    for key in flat:
        schema_field(key)
    return _build(flat, user_keys={k for k, v in flat.items() if v is not None}, fresh=False)
