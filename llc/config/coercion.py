"""Checking one `section.key` and its value against the schema: type coercion and constraints."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any

from llc.config.schema import SECTIONS, Config
from llc.errors import ConfigError, shown

TOP_LEVEL_KEYS = ("seed", "precision")


def schema_field(key: str) -> tuple[type, dataclasses.Field]:
    """The dataclass and field behind `key`; unknown keys raise ConfigError listing the allowed ones."""
    section, _, name = key.partition(".")
    if key in TOP_LEVEL_KEYS:
        return Config, {f.name: f for f in dataclasses.fields(Config)}[key]
    cls = SECTIONS.get(section)
    if cls is None or not name:
        raise ConfigError(
            f"unknown key {shown(key)}: sections are {', '.join(SECTIONS)}; top-level keys are {', '.join(TOP_LEVEL_KEYS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ConfigError(f"unknown key {shown(key)}: {section} keys are {', '.join(fields)}")
    return cls, fields[name]


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return {type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _float_text(key: str, value: str) -> float | None:
    """A float written as text (YAML reads `1e-6` as a string): its value; non-finite is an error."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        raise ConfigError(f"{key}: must be a finite number, got {shown(value)}")
    return number


def _coerce(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(value, str) and (tp is float or float in typing.get_args(tp)):
        number = _float_text(key, value)
        value = value if number is None else number
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {shown(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {shown(value)}")
        (inner,) = typing.get_args(tp)
        return [_coerce(key, v, inner) for v in value]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and is_number and (isinstance(value, int) or value.is_integer()):
        return int(value)
    if tp is float and is_number:
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise ConfigError(f"{key}: must be a finite number of reasonable size, got {shown(value)}")
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {shown(value)}")


MAX_INT = 2**53  # no integer key means anything beyond this; an int of hundreds of digits stops here


def _check_constraints(key: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: {shown(value)} is not allowed; choose one of {', '.join(meta['choices'])}")
    if isinstance(value, list) and "max_len" in meta and len(value) > meta["max_len"]:
        raise ConfigError(f"{key}: at most {meta['max_len']} entries, got {len(value)}")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number, got {shown(v)}")
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(f"{key}: must be > {meta['gt']}, got {shown(v)}")
        if "min" in meta and not v >= meta["min"]:
            raise ConfigError(f"{key}: must be >= {meta['min']}, got {shown(v)}")
        if "min_each" in meta and not v >= meta["min_each"]:
            raise ConfigError(f"{key}: every entry must be >= {meta['min_each']}, got {shown(value)}")
        if "max_each" in meta and not v <= meta["max_each"]:
            raise ConfigError(f"{key}: every entry must be <= {meta['max_each']}, got {shown(value)}")
        if "max" in meta and not v <= meta["max"]:
            raise ConfigError(f"{key}: must be <= {meta['max']}, got {shown(v)}")
        if isinstance(v, int) and abs(v) > MAX_INT:
            raise ConfigError(f"{key}: must be at most {MAX_INT} in size, got {shown(v)}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # resolving the string annotations is the costliest part of checking a key (a dry sweep checks thousands)
    return typing.get_type_hints(cls)


def validate_key_value(key: str, value: Any) -> Any:
    """Check one `section.key` and its value; return the value coerced to the field's type."""
    cls, fld = schema_field(key)
    hints = _type_hints(cls)
    coerced = _coerce(key, value, hints[fld.name])
    _check_constraints(key, coerced, fld.metadata)
    return coerced
