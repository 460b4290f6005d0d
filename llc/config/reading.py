"""Reading user input: `--set` values, YAML configuration files, nested sections to dotted keys."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from llc.config.schema import SECTIONS
from llc.errors import ConfigError, shown

MAX_INPUT_BYTES = 1_000_000  # a configuration, study or grid file larger than this is refused unread
MAX_DEPTH = 32  # nesting levels of a YAML or JSON document (a study needs about 5)


class Rejected(yaml.constructor.ConstructorError):
    """Well-formed YAML that `StrictLoader` refuses (aliases, duplicate keys, deep nesting)."""


def _reject(problem: str, mark: Any) -> Rejected:
    return Rejected(None, None, problem, mark)


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` without aliases or anchors (a few bytes of them expand to gigabytes), without
    duplicate keys (the last one silently won), and at most MAX_DEPTH levels deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _reject("anchors and aliases (&name, *name) are not allowed; write the values out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _reject(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys: SafeLoader's own error follows
            if key in seen:
                raise _reject(f"duplicate key {shown(key)}; give each key once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML with `StrictLoader` (safe: data only); errors say `where`, line and column."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        kind = "YAML" if isinstance(exc, Rejected) else "malformed YAML"
        raise ConfigError(f"{where}: {kind}{at}: {getattr(exc, 'problem', None) or exc}") from None
    except (ValueError, RecursionError):  # an integer past Python's digit limit; nesting the composer cannot follow
        raise ConfigError(f"{where}: a number has too many digits or the document is nested too deeply") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"duplicate key {shown(key)}; give each key once")
        out[key] = value
    return out


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def load_json(text: str, where: str) -> Any:
    """`json.loads` that rejects duplicate keys, NaN/Infinity, huge integers and deep nesting, naming `where`."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (ValueError, RecursionError):
        raise ConfigError(f"{where}: a number has too many digits or the JSON is nested too deeply") from None
    if _too_deep(value):
        raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not a number JSON allows; give a finite number")


def read_input_file(path: Path, where: str, missing: str) -> str:
    """The text of a user's input file: a directory, a file over MAX_INPUT_BYTES or non-UTF-8 is a ConfigError."""
    if path.is_dir():
        raise ConfigError(f"{where}: is a directory; give a file")
    if not path.exists():
        raise ConfigError(missing)
    if not path.is_file():
        raise ConfigError(f"{where}: not a regular file")
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise ConfigError(f"{where}: larger than {MAX_INPUT_BYTES} bytes; not an input file")
        return path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a text (UTF-8) file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None


def parse_scalar(text: str) -> Any:
    """Parse a `--set` value as a YAML scalar or list; `1e-6` is a float, not a string."""
    if len(text) > MAX_INPUT_BYTES:
        raise ConfigError(f"value of {len(text)} characters: too long (at most {MAX_INPUT_BYTES})")
    value = load_yaml(text, f"cannot parse value {shown(text)}")
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
        raise ConfigError(f"--set {shown(item)}: expected section.key=value, e.g. sampler.step_size=1e-5")
    return key, parse_scalar(raw.strip())


def safe_load_file(path: Path, where: str, missing: str) -> Any:
    """Load a YAML file safely (`StrictLoader`); errors say `where` (plus line and column) or `missing`."""
    return load_yaml(read_input_file(path, where, missing), where)


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
    """Nested sections -> dotted keys. A key given both ways (`sampler.steps` and `sampler: {steps}`) is an error."""
    flat: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in flat:
            raise ConfigError(f"{where}{key} is given twice (as a dotted key and inside its section); give it once")
        flat[key] = value

    for key, value in nested.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}key {shown(key)}: keys must be strings")
        if key in SECTIONS and isinstance(value, dict):
            for sub, subvalue in value.items():
                put(f"{key}.{sub}", subvalue)
        else:
            put(key, value)
    return flat
