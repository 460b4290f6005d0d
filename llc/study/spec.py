"""A study: a base configuration, a list of problems, a list of samplers and a list of seeds.

Read from a YAML file (`study.yaml`, through `yaml.safe_load` only) and/or from the
`llc sweep` options (`--problem-grid`, `--sampler-grid` as JSON, `--seeds`/`--n-seeds`,
`--preset`, `--set`). Everything is validated here, before anything runs: a mistake raises
`ConfigError` naming where it is, e.g. ``study.yaml: problems[2].set: unknown key 'target.foo'``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llc.config import PRESETS, parse_override
from llc.config.coercion import validate_key_value
from llc.config.reading import MAX_INPUT_BYTES, flatten, load_json, read_input_file, safe_load_file
from llc.config.schema import MAX_SEED
from llc.errors import ConfigError, shown
from llc.samplers.registry import sampler_names

STUDY_KEYS = ("base", "problems", "axes", "samplers", "seeds", "reference", "description")
BASE_KEYS = ("preset", "set")
PROBLEM_KEYS = ("name", "set")
NOTE_NO_PROBLEMS = "no problems given: one problem named 'base' (the base configuration)"
NOTE_NO_SAMPLERS = "no samplers given: sgld with its preset settings"
SAMPLER_ENTRY_KEYS = ("sampler", "name", "set")
# The reference sampler of a study (docs/sweeps.md, "A reference λ"): NUTS until converged with a
# tight SE target, unless the study or `--reference` says otherwise. Its `set` layers on these.
REFERENCE_SAMPLER = "nuts"
REFERENCE_DEFAULTS: Mapping[str, Any] = {"sampler.stop": "converged", "sampler.target_rel_se": 0.01}
# A NUTS reference builds trees up to depth 8 (255 leapfrog steps), not the quick preset's 4: at the default γ
# the flat, γ-held directions need long trajectories, and depth-4 references spent their whole budget
# unconverged where depth 8 converged (docs/nonlinear.md, "The reference's tree depth").
REFERENCE_SAMPLER_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"nuts": {"sampler.max_tree_depth": 8}}
MAX_SEEDS = 10_000  # seeds of one study; `--n-seeds 1000000000` stops here, before anything is built

# Names label jobs in the manifest and the CSV. They never become paths, but they are
# checked as if they could: no separators, no '..', nothing a shell or a CSV reader chokes on.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]{0,63}$")


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    set: Mapping[str, Any]
    where: str  # e.g. "study.yaml: problems[1]"


@dataclass(frozen=True)
class SamplerSpec:
    label: str  # the name used in job keys, the manifest and the CSV
    sampler: str  # the sampler (sampler.name)
    set: Mapping[str, Any]
    where: str


@dataclass(frozen=True)
class ReferenceSpec:
    """The sampler whose λ̂ every other sampler of a family is compared with (its own settings only)."""

    label: str
    sampler: str
    set: Mapping[str, Any]  # REFERENCE_DEFAULTS and REFERENCE_SAMPLER_DEFAULTS, then the entry's sampler.* keys
    where: str


@dataclass(frozen=True)
class Study:
    preset: str
    base: Mapping[str, Any]  # dotted keys -> validated values
    problems: tuple[ProblemSpec, ...]
    samplers: tuple[SamplerSpec, ...]
    seeds: tuple[int, ...]
    source: str = "<options>"
    base_where: str = "base"
    notes: tuple[str, ...] = field(default_factory=tuple)
    reference: ReferenceSpec | None = None


# ---------------------------------------------------------------- reading input


def load_study_file(path: str | Path) -> dict[str, Any]:
    """Read a study YAML file (safe, strict loading); errors name the file and line. An empty study is an error."""
    path = Path(path)
    data = safe_load_file(path, str(path), f"study file not found: {path}")
    if data is None or data == {}:
        raise ConfigError(f"{path}: the study is empty; give at least `problems` or `samplers` (see study.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(STUDY_KEYS)}")
    return data


def parse_grid(text: str, option: str) -> tuple[list[Any], str]:
    """`--problem-grid` / `--sampler-grid`: inline JSON, or the path of a JSON file.

    Returns the list and the location prefix for error messages (`--problem-grid grid.json:`).
    """
    stripped = text.strip()
    source = option
    if stripped[:1] in ("[", "{"):
        if len(stripped) > MAX_INPUT_BYTES:
            raise ConfigError(f"{option}: inline JSON larger than {MAX_INPUT_BYTES} bytes")
        raw = stripped
    else:
        path = Path(text)
        source = f"{option} {path}"
        missing = (f"{option}: {shown(text)} is neither inline JSON (a list like '[{{\"name\": ...}}]') "
                   "nor an existing file")
        raw = read_input_file(path, source, missing)
    value = load_json(raw, source)
    if not isinstance(value, list):
        raise ConfigError(f"{source}: expected a JSON list of objects, got {type(value).__name__}")
    return value, f"{source}:"


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2`."""
    seeds = []
    for item in text.split(","):
        item = item.strip()
        if not (item.isascii() and item.isdigit()) or len(item) > len(str(MAX_SEED)):
            raise ConfigError(f"--seeds: {shown(item)} is not a non-negative integer (at most {MAX_SEED}); use e.g. --seeds 0,1,2")
        seeds.append(int(item))
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: {len(seeds)} seeds; at most {MAX_SEEDS}")
    return seeds


# ---------------------------------------------------------------- validation helpers


def _check_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {shown(value)}")
    if "/" in value or "\\" in value or ".." in value or not NAME_RE.match(value):
        raise ConfigError(
            f"{where}: {shown(value)} is not allowed: names are 1-64 letters, digits and . _ + = - "
            "(no path separators, no '..', not starting with a dot)"
        )
    return value


def _check_keys(entry: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {shown(key)}; allowed: {', '.join(allowed)}")


def _check_set(value: Any, where: str, kind: str) -> dict[str, Any]:
    """Validate a `set` mapping of dotted keys (nested sections are accepted too)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of section.key: value, got {type(value).__name__}")
    try:
        flat = flatten(dict(value), where="")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    out: dict[str, Any] = {}
    for key, raw in flat.items():
        if key == "seed":
            raise ConfigError(f"{where}: 'seed' cannot be set here; list the seeds under `seeds` (or --seeds)")
        if key == "preset":
            raise ConfigError(f"{where}: 'preset' cannot be set here; use base.preset (or --preset)")
        if key == "sampler.name":
            hint = "use the entry's `sampler:`" if kind == "sampler" else "list samplers under `samplers`"
            raise ConfigError(f"{where}: 'sampler.name' cannot be set here; {hint}")
        try:
            out[key] = validate_key_value(key, raw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def _item(where: str, i: int) -> str:
    """`study.yaml: problems` -> `study.yaml: problems[2]`; `--problem-grid:` -> `--problem-grid: [2]`."""
    return f"{where} [{i}]" if where.endswith(":") else f"{where}[{i}]"


def _check_list(value: Any, where: str) -> list[Any]:
    where = where.rstrip(":")
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
    if not value:
        raise ConfigError(f"{where}: empty grid; list at least one entry")
    return value


def _entries(entries: Any, where: str, keys: Sequence[str]) -> Iterator[tuple[int, str, Mapping]]:
    """(index, location, entry) of a list of objects, each checked to have only `keys`."""
    for i, entry in enumerate(_check_list(entries, where)):
        here = _item(where, i)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{here}: expected an object with keys {', '.join(keys)}; got {shown(entry)}")
        _check_keys(entry, keys, here)
        yield i, here, entry


def _problems(entries: Any, where: str) -> tuple[ProblemSpec, ...]:
    seen: dict[str, int] = {}
    out = []
    for i, here, entry in _entries(entries, where, PROBLEM_KEYS):
        if "name" not in entry:
            raise ConfigError(f"{here}: missing 'name'")
        name = _check_name(entry["name"], f"{here}.name")
        if name in seen:
            raise ConfigError(f"{here}.name: duplicate problem name {shown(name)} (also {_item(where, seen[name])})")
        seen[name] = i
        out.append(ProblemSpec(name=name, set=_check_set(entry.get("set"), f"{here}.set", "problem"), where=here))
    return tuple(out)


def _samplers(entries: Any, where: str) -> tuple[SamplerSpec, ...]:
    names = sampler_names()
    raw = []
    for i, here, entry in _entries(entries, where, SAMPLER_ENTRY_KEYS):
        if "sampler" not in entry:
            raise ConfigError(f"{here}: missing 'sampler' (one of {', '.join(names)})")
        sampler = entry["sampler"]
        if sampler not in names:
            raise ConfigError(f"{here}.sampler: {shown(sampler)} is not a sampler; choose one of {', '.join(names)}")
        label = _check_name(entry["name"], f"{here}.name") if "name" in entry else None
        raw.append((i, here, sampler, label, _check_set(entry.get("set"), f"{here}.set", "sampler")))

    # Unnamed entries are labelled by their sampler; a sampler listed several times
    # without names gets -1, -2, ... in list order.
    counts: dict[str, int] = {}
    for _, _, sampler, label, _ in raw:
        if label is None:
            counts[sampler] = counts.get(sampler, 0) + 1
    numbering: dict[str, int] = {}
    seen: dict[str, int] = {}
    out = []
    for i, here, sampler, label, settings in raw:
        if label is None:
            if counts[sampler] > 1:
                numbering[sampler] = numbering.get(sampler, 0) + 1
                label = f"{sampler}-{numbering[sampler]}"
            else:
                label = sampler
        if label in seen:
            raise ConfigError(
                f"{here}: duplicate sampler label {shown(label)} (also {_item(where, seen[label])}); give each entry a distinct `name`"
            )
        seen[label] = i
        out.append(SamplerSpec(label=label, sampler=sampler, set=settings, where=here))
    return tuple(out)


def parse_reference(text: str | None, option: str = "--reference") -> Any:
    """`--reference nuts`, `--reference none` (no reference) or an inline JSON entry
    (`{"sampler": "nuts", "set": {"sampler.target_rel_se": 0.02}}`) -> the value of a study's `reference`."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("{"):
        if len(stripped) > MAX_INPUT_BYTES:
            raise ConfigError(f"{option}: inline JSON larger than {MAX_INPUT_BYTES} bytes")
        return load_json(stripped, option)
    if stripped.lower() in ("none", "off", "false"):
        return False
    return {"sampler": stripped}


def _reference(value: Any, where: str, samplers: Sequence[SamplerSpec]) -> ReferenceSpec | None:
    """A study's `reference`: a sampler name, a `{sampler, name, set}` entry, or false/null for none.

    Its `set` takes `sampler.*` keys only: anything else would change the posterior, and the
    reference must sample the very posterior of the family it is compared with.
    """
    if value is None or value is False:
        return None
    if isinstance(value, str):
        value = {"sampler": value}
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a sampler name or a mapping with keys {', '.join(SAMPLER_ENTRY_KEYS)}, "
                          f"got {shown(value)}")
    _check_keys(value, SAMPLER_ENTRY_KEYS, where)
    names = sampler_names()
    sampler = value.get("sampler", REFERENCE_SAMPLER)
    if sampler not in names:
        raise ConfigError(f"{where}.sampler: {shown(sampler)} is not a sampler; choose one of {', '.join(names)}")
    own = _check_set(value.get("set"), f"{where}.set", "sampler")
    for key in own:
        if not key.startswith("sampler."):
            raise ConfigError(f"{where}.set: {shown(key)} cannot be set for the reference: it would change the "
                              "posterior; only sampler.* keys (set problem keys under problems or base.set)")
    label = _check_name(value["name"], f"{where}.name") if "name" in value else f"ref-{sampler}"
    for s in samplers:
        if s.label == label:
            raise ConfigError(f"{where}: the reference label {shown(label)} is also the label of {s.where}; "
                              "give the reference a distinct `name`")
    # The SE target belongs to stop=converged; a reference given another stop rule gets none of those. The
    # sampler's own defaults (NUTS: the tree depth) apply whatever the stop rule.
    defaults = REFERENCE_DEFAULTS if own.get("sampler.stop", "converged") == "converged" else {}
    defaults = {**defaults, **REFERENCE_SAMPLER_DEFAULTS.get(sampler, {})}
    return ReferenceSpec(label=label, sampler=sampler, set={**defaults, **own}, where=where)


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a list of seeds or a count, got {shown(value)}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise ConfigError(f"{where}: a seed count must be >= 1 and at most {MAX_SEEDS}, got {shown(value)}")
        return tuple(range(value))
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of seeds (e.g. [0, 1, 2]) or a count (e.g. 3), got {shown(value)}")
    if not value:
        raise ConfigError(f"{where}: empty list of seeds")
    if len(value) > MAX_SEEDS:
        raise ConfigError(f"{where}: {len(value)} seeds; at most {MAX_SEEDS}")
    seen: set[int] = set()
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ConfigError(f"{where}[{i}]: expected a non-negative integer seed (at most {MAX_SEED}), got {shown(s)}")
        if s in seen:
            raise ConfigError(f"{where}[{i}]: duplicate seed {s}")
        seen.add(s)
    return tuple(value)


def _axes(value: Any, where: str, problems: tuple[ProblemSpec, ...]) -> tuple[ProblemSpec, ...]:
    """Cross every problem with every combination of the `axes` values (a mapping of dotted key ->
    list of scalars). Problem `p` with `posterior.gamma: [1, 10]` becomes `p+gamma=1` and
    `p+gamma=10`; an axis value wins over the problem's own setting of that key."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: expected a mapping of section.key: [values], e.g. {{posterior.gamma: [1, 10]}}")
    axes: list[tuple[str, str, list[Any]]] = []
    for key, values in value.items():
        here = f"{where}.{key}"
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{here}: expected a non-empty list of values, got {shown(values)}")
        checked = []
        for i, raw in enumerate(values):
            if isinstance(raw, (list, dict)) or raw is None:
                raise ConfigError(f"{here}[{i}]: axis values are numbers or strings, got {shown(raw)}")
            # the name shows the value as written (10, not 10.0); the setting is the validated value
            checked.append((str(raw), _check_set({key: raw}, f"{here}[{i}]", "problem")[key]))
        if len({label for label, _ in checked}) != len(checked):
            raise ConfigError(f"{here}: duplicate values in {shown(values)}")
        axes.append((key, key.rsplit(".", 1)[-1], checked))
    out = list(problems)
    for key, short, values in axes:
        out = [ProblemSpec(name=_check_name(f"{p.name}+{short}={label}", f"{where}.{key}: problem name"),
                           set={**p.set, key: v}, where=f"{p.where} with {key}={label}")
               for p in out for label, v in values]
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two axes share the last key segment; problem names would repeat")
    return tuple(out)


# ---------------------------------------------------------------- building a study


def build_study(
    data: Mapping[str, Any] | None = None,
    source: str = "<options>",
    *,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    problem_grid: list[Any] | None = None,
    problem_grid_source: str = "--problem-grid:",
    sampler_grid: list[Any] | None = None,
    sampler_grid_source: str = "--sampler-grid:",
    seeds: Sequence[int] | None = None,
    n_seeds: int | None = None,
    reference: Any = None,
) -> Study:
    """Validate a study file's contents and the command-line options into a `Study`.

    Options win over the file: `--problem-grid` / `--sampler-grid` replace its lists,
    `--seeds` / `--n-seeds` its seeds, `--preset` its base preset, and `--set` is applied
    on top of its `base.set`, `reference` (what `parse_reference` makes of `--reference`; False
    for none) replaces its `reference`.
    """
    data = dict(data or {})
    prefix = f"{source}: " if data else ""
    _check_keys(data, STUDY_KEYS, source)
    notes = []

    base = data.get("base") or {}
    if not isinstance(base, Mapping):
        raise ConfigError(f"{prefix}base: expected a mapping with keys preset, set")
    _check_keys(base, BASE_KEYS, f"{prefix}base")
    preset_name = preset if preset is not None else base.get("preset", "quick")
    if not isinstance(preset_name, str) or preset_name not in PRESETS:
        where = "--preset" if preset is not None else f"{prefix}base.preset"
        raise ConfigError(f"{where}: {shown(preset_name)} is not a preset; choose one of {', '.join(PRESETS)}")
    base_set = _check_set(base.get("set"), f"{prefix}base.set", "base")
    for item in overrides:
        key, value = parse_override(item)
        base_set.update(_check_set({key: value}, f"--set {item}", "base"))

    if problem_grid is not None:
        problems = _problems(problem_grid, problem_grid_source)
    elif "problems" in data:
        problems = _problems(data["problems"], f"{prefix}problems")
    else:
        problems = (ProblemSpec(name="base", set={}, where="base"),)
        notes.append(NOTE_NO_PROBLEMS)
    if "axes" in data:
        problems = _axes(data["axes"], f"{prefix}axes", problems)

    if sampler_grid is not None:
        samplers = _samplers(sampler_grid, sampler_grid_source)
    elif "samplers" in data:
        samplers = _samplers(data["samplers"], f"{prefix}samplers")
    else:
        samplers = _samplers([{"sampler": "sgld"}], "default samplers")
        notes.append(NOTE_NO_SAMPLERS)

    if seeds is not None and n_seeds is not None:
        raise ConfigError("--seeds and --n-seeds are mutually exclusive; give one")
    if seeds is not None:
        seed_list = _seeds(list(seeds), "--seeds")
    elif n_seeds is not None:
        seed_list = _seeds(n_seeds, "--n-seeds")
    elif "seeds" in data:
        seed_list = _seeds(data["seeds"], f"{prefix}seeds")
    else:
        seed_list = (0,)

    if reference is not None:
        ref = _reference(reference, "--reference", samplers)
    else:
        ref = _reference(data.get("reference"), f"{prefix}reference", samplers)

    return Study(
        preset=preset_name,
        base=base_set,
        problems=problems,
        samplers=samplers,
        seeds=seed_list,
        source=source,
        base_where=f"{prefix}base",
        notes=tuple(notes),
        reference=ref,
    )


def select_problems(study: Study, patterns: Sequence[str]) -> Study:
    """The study with only the problems whose name matches one of `patterns` (shell globs, e.g.
    `relu-*`): `llc sweep --problems` runs a large study in parts. A pattern matching nothing is an error."""
    if not patterns:
        return study
    names = [p.name for p in study.problems]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise ConfigError(f"--problems: {shown(pattern)} matches no problem; problems: {', '.join(names)}")
    kept = tuple(p for p in study.problems if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns))
    return dataclasses.replace(study, problems=kept)
