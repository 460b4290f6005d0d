"""Turn user input (preset, YAML file, `--set` overrides) into one validated `Config`.

Validation happens here, once: unknown keys, wrong types, out-of-range values
and inconsistent combinations raise `ConfigError` naming the key and what is
allowed. Everything downstream trusts the `Config` it is given.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from llc.config.presets import COMMON_SAMPLER_KEYS, PRESETS, SAMPLER_KEYS
from llc.config.schema import SECTIONS, Config, TargetConfig
from llc.errors import ConfigError

TOP_LEVEL_KEYS = ("seed", "precision")


# ---------------------------------------------------------------- parsing


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


# ---------------------------------------------------------------- validation helpers


def all_keys() -> list[str]:
    keys = [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    return keys + list(TOP_LEVEL_KEYS)


def _field(key: str) -> tuple[type, dataclasses.Field]:
    section, _, name = key.partition(".")
    if key in TOP_LEVEL_KEYS:
        return Config, {f.name: f for f in dataclasses.fields(Config)}[key]
    cls = SECTIONS.get(section)
    if cls is None or not name:
        raise ConfigError(
            f"unknown key {key!r}: sections are {', '.join(SECTIONS)}; top-level keys are {', '.join(TOP_LEVEL_KEYS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ConfigError(f"unknown key {key!r}: {section} keys are {', '.join(fields)}")
    return cls, fields[name]


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return {type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
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
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_coerce(key, v, inner) for v in value]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and is_number and float(value).is_integer():
        return int(value)
    if tp is float and is_number:
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _check_constraints(key: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(meta['choices'])}")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number, got {v}")
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(f"{key}: must be > {meta['gt']}, got {v}")
        if "min" in meta and not v >= meta["min"]:
            raise ConfigError(f"{key}: must be >= {meta['min']}, got {v}")
        if "min_each" in meta and not v >= meta["min_each"]:
            raise ConfigError(f"{key}: every entry must be >= {meta['min_each']}, got {value}")
        if "max" in meta and not v <= meta["max"]:
            raise ConfigError(f"{key}: must be <= {meta['max']}, got {v}")


def validate_key_value(key: str, value: Any) -> Any:
    """Check one `section.key` and its value; return the value coerced to the field's type."""
    cls, fld = _field(key)
    hints = typing.get_type_hints(cls)
    coerced = _coerce(key, value, hints[fld.name])
    _check_constraints(key, coerced, fld.metadata)
    return coerced


# ---------------------------------------------------------------- resolution


def mlp_widths_for_params(in_dim: int, out_dim: int, depth: int, target_params: int, bias: bool) -> list[int]:
    """Equal hidden widths whose parameter count is closest to `target_params`."""
    if depth == 0:
        return []

    def count(h: int) -> int:
        widths = [in_dim] + [h] * depth + [out_dim]
        return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))

    best = min(range(1, 4097), key=lambda h: abs(count(h) - target_params))
    return [best] * depth


def count_params(target: Any) -> int:
    """Number of parameters d of the (resolved) target."""
    if target.kind == "quadratic":
        return target.dim
    widths = [target.in_dim, *target.hidden, target.out_dim]
    bias = target.bias and target.kind == "mlp"
    return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(layer))
    return out


def _preset_layers(preset: str, sampler: str) -> dict[str, Any]:
    if preset not in PRESETS:
        raise ConfigError(f"--preset: {preset!r} is not a preset; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    flat = flatten(spec["base"])
    for key, value in spec["samplers"][sampler].items():
        flat[f"sampler.{key}"] = value
    return flat


def resolve_config(
    preset: str | None = None,
    overrides: typing.Sequence[str] | dict[str, Any] = (),
    config_file: str | Path | None = None,
    sampler: str | None = None,
) -> Config:
    """Build the fully-resolved, validated `Config`.

    Layers, later wins: schema defaults < preset (problem, then the chosen
    sampler's preset values) < config file < `--set` overrides < `--sampler`.
    """
    user: dict[str, Any] = {}
    file_preset = None
    if config_file is not None:
        data = load_config_file(config_file)
        file_preset = data.pop("preset", None)
        user.update(flatten(data, where=f"--config {config_file}: "))
    if isinstance(overrides, dict):
        user.update(flatten(overrides))
    else:
        for item in overrides:
            key, value = parse_override(item)
            user[key] = value
    if sampler is not None:
        user["sampler.name"] = sampler

    for key in list(user):
        user[key] = validate_key_value(key, user[key])

    preset_name = preset or file_preset or "quick"
    if not isinstance(preset_name, str):
        raise ConfigError(f"preset: expected a preset name, one of {', '.join(PRESETS)}")
    sampler_name = user.get("sampler.name") or PRESETS.get(preset_name, {}).get("base", {}).get(
        "sampler", {}
    ).get("name", "sgld")
    allowed = COMMON_SAMPLER_KEYS | SAMPLER_KEYS[sampler_name]
    for key in user:
        if key.startswith("sampler.") and key.split(".", 1)[1] not in allowed:
            name = key.split(".", 1)[1]
            users = sorted(s for s, keys in SAMPLER_KEYS.items() if name in keys)
            raise ConfigError(
                f"{key} does not apply to sampler {sampler_name!r} (it applies to: {', '.join(users)}); "
                f"{sampler_name} accepts {', '.join(sorted(allowed - {'name'}))}"
            )

    flat = _merge(_preset_layers(preset_name, sampler_name), user)
    flat["sampler.name"] = sampler_name
    return _build(flat, user_keys=set(user))


def _build(flat: dict[str, Any], user_keys: set[str]) -> Config:
    for key in list(flat):
        flat[key] = validate_key_value(key, flat[key])
    sections = {s: {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith(s + ".")} for s in SECTIONS}
    top = {k: flat[k] for k in TOP_LEVEL_KEYS if k in flat}
    target = SECTIONS["target"](**sections["target"])
    data = SECTIONS["data"](**sections["data"])
    posterior = SECTIONS["posterior"](**sections["posterior"])
    sampler = SECTIONS["sampler"](**sections["sampler"])
    cfg = Config(target=target, data=data, posterior=posterior, sampler=sampler, **top)
    return _finalize(cfg, user_keys)


def _finalize(cfg: Config, user_keys: set[str]) -> Config:
    """Cross-field checks and derived values; the result is canonical (one spelling per job)."""
    t, d, p, s = cfg.target, cfg.data, cfg.posterior, cfg.sampler
    replace = dataclasses.replace

    # --- target shape
    if t.kind == "quadratic":
        t = replace(t, hidden=[], depth=None, target_params=None, rank=None)
    else:
        user_hidden = "target.hidden" in user_keys
        user_depth = "target.depth" in user_keys or "target.target_params" in user_keys
        if user_hidden and user_depth:
            raise ConfigError("target.hidden cannot be combined with target.depth/target.target_params; set one or the other")
        if user_hidden or t.depth is None:
            if t.hidden is None:
                raise ConfigError("target.hidden: set hidden widths (e.g. [16,16]) or target.depth with target.target_params")
            t = replace(t, depth=None, target_params=None)
        else:
            if t.target_params is None:
                raise ConfigError("target.target_params: required with target.depth (approximate parameter count)")
            widths = mlp_widths_for_params(t.in_dim, t.out_dim, t.depth, t.target_params, t.bias and t.kind == "mlp")
            t = replace(t, hidden=widths, depth=None, target_params=None)
        if t.kind == "dln":
            widths = [t.in_dim, *t.hidden, t.out_dim]
            smallest = min(widths)
            rank = smallest if t.rank is None else t.rank
            if rank > smallest:
                raise ConfigError(f"target.rank: {rank} exceeds the smallest width {smallest} of {widths}; allowed 0..{smallest}")
            t = replace(t, rank=rank, activation="identity", bias=False)
        elif t.rank is not None:
            raise ConfigError("target.rank applies only to target.kind=dln")

    # --- data
    if d.n < 2:
        raise ConfigError(f"data.n: must be >= 2 (beta = beta0 / log n), got {d.n}")

    # --- posterior: gamma from prior radius
    n_params = count_params(t)
    if p.prior_radius is not None:
        p = replace(p, gamma=n_params / p.prior_radius**2)
    if p.gamma is None:
        raise ConfigError("posterior.gamma: set gamma (>= 0) or posterior.prior_radius")
    if p.full_loss == "moments" and not is_linear_in_x(t):
        raise ConfigError(
            "posterior.full_loss: 'moments' needs a model linear in x (target.kind dln, or mlp with hidden [] or "
            f"activation identity), got target.kind={t.kind}; allowed values here: data"
        )
    if t.erm_tol is None:
        nbeta = d.n * p.beta0 / math.log(d.n)
        t = replace(t, erm_tol=max(p.gamma, 1.0) ** 0.5 / nbeta)

    # --- sampler
    uses_batches = s.name in ("sgld", "sghmc")
    if uses_batches and "sampler.step_size" in user_keys:
        if "sampler.step_scale" in user_keys:
            raise ConfigError("sampler.step_scale cannot be combined with sampler.step_size; set one or the other")
        s = replace(s, step_scale=None)  # an explicit step size replaces the preset's curvature-scaled one
    elif uses_batches and s.step_scale is not None:
        s = replace(s, step_size=None)
    if s.step_size is None and not (uses_batches and s.step_scale is not None):
        raise ConfigError(f"sampler.step_size: no default for sampler {s.name}; set a positive step size")
    if uses_batches:
        if s.batch_size is None:
            raise ConfigError("sampler.batch_size: required for SG samplers")
        if t.kind != "quadratic" and s.batch_size > d.n:
            raise ConfigError(f"sampler.batch_size: {s.batch_size} is larger than data.n = {d.n}; allowed 1..{d.n}")
    if s.thinning > s.steps:
        raise ConfigError(f"sampler.thinning: {s.thinning} exceeds sampler.steps = {s.steps}")
    if s.steps // s.thinning < 4:
        raise ConfigError("sampler.steps / sampler.thinning: at least 4 kept draws are needed for ESS and R-hat")
    # Keys that do not apply to this sampler are dropped so they never enter the run ID.
    allowed = COMMON_SAMPLER_KEYS | SAMPLER_KEYS[s.name]
    s = replace(s, **{f.name: None for f in dataclasses.fields(s) if f.name not in allowed})
    return Config(target=t, data=d, posterior=p, sampler=s, seed=cfg.seed, precision=cfg.precision)


def is_linear_in_x(t: TargetConfig) -> bool:
    """True when f_w(x) = x M(w) + c(w): the full-data loss then has a closed form in the data's moments."""
    return t.kind == "dln" or (t.kind == "mlp" and (not t.hidden or t.activation == "identity"))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain-dict view (JSON/YAML-ready) of a Config."""
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from `config_to_dict` output (e.g. a run's config.json)."""
    flat = flatten({k: v for k, v in data.items() if k != "preset"})
    for key in flat:
        _field(key)
    return _build(flat, user_keys={k for k, v in flat.items() if v is not None})


def flat_config(cfg: Config) -> dict[str, Any]:
    """Dotted-key view, e.g. {'target.hidden': [16, 16], ...}."""
    return flatten(config_to_dict(cfg))
