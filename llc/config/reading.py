"""Reading user input: `--set` values, YAML configuration files, nested sections to dotted keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from llc.config.schema import SECTIONS
from llc.errors import ConfigError


def parse_scalar(text: str) -> Any:
    """Parse a `--set` value as a YAML scalar or list; `1e-6` is a float, not a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse value {text!r}: {exc.problem or exc}") from None
    if isinstance(value, str):
        try:
            as_float = float(value)
        except ValueError:
            return value
        if math.isfinite(as_float) or value.strip().lower() in {"inf", "-inf", "nan"}:
            return as_float
    return value


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` -> (`section.key`, parsed value)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. sampler.step_size=1e-5")
    return key, parse_scalar(raw.strip())


def safe_load_file(path: Path, where: str, missing: str) -> Any:
    """`yaml.safe_load` a file; errors say `where` (plus line and column) or `missing`."""
    if not path.is_file():
        raise ConfigError(missing)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: malformed YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a text (UTF-8) file") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML configuration file (nested sections and/or dotted keys, optional `preset`)."""
    path = Path(path)
    data = safe_load_file(path, f"--config {path}", f"--config: file not found: {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of sections (target, data, posterior, sampler)")
    return data


def flatten(nested: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Nested sections -> dotted keys. Dotted keys already present are kept."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}key {key!r}: keys must be strings")
        if key in SECTIONS and isinstance(value, dict):
            for sub, subvalue in value.items():
                flat[f"{key}.{sub}"] = subvalue
        else:
            flat[key] = value
    return flat
