"""Config-time handling of `target.kind: custom` (docs/custom.md).

`resolve_custom` turns the user's `target.entry` into a job that can be hashed and shipped: a
file entry becomes an absolute path, the entry's source file and the optional checkpoint are
hashed, and the entry is called once (with the job's seed) so that a bad entry is a one-line
`ConfigError` before anything is written, and so that the run ID covers the params and data it
returns (`target.data_sha256`). Rebuilding a config from a stored dict (`fresh=False`, e.g. a
sweep worker) trusts these fields; the job checks them again when it builds its target.

Only what the user names in `target.entry` is ever imported: nothing here turns other input
(grid or problem names) into a path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any

from llc.errors import ConfigError, shown

# target.* keys that only custom targets have: None for built-ins, and then left out of every hash,
# so adding them changed no existing run, family or target ID.
CUSTOM_ONLY_KEYS = ("entry", "entry_sha256", "data_sha256", "n_params", "checkpoint", "checkpoint_sha256")
# The target keys a custom target reads; every other target key takes its schema default.
CUSTOM_KEYS = ("kind", "center", "erm_steps", "erm_tol", *CUSTOM_ONLY_KEYS)
# What an entry returned, per (entry, its content, seed, precision, checkpoint): a study resolves each job
# several times, and the entry is called once per process for each.
_INSPECTED: dict[tuple, Any] = {}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True)
class EntryRef:
    """A parsed `target.entry`: a source file or an importable module, and a function name."""

    file: Path | None  # absolute path of a file entry
    module: str | None  # dotted name of a module entry
    function: str

    def text(self) -> str:
        return f"{self.file if self.file is not None else self.module}:{self.function}"


def parse_entry(entry: str) -> EntryRef:
    """`path/file.py:fn` (a path, resolved to absolute) or `pkg.mod:fn`; anything else is a ConfigError."""
    where, sep, function = entry.rpartition(":")
    if not sep or not where or not _IDENT.match(function):
        raise ConfigError(f"target.entry: {shown(entry)} is not 'path/to/file.py:function' or 'package.module:function'")
    if where.endswith(".py") or "/" in where or "\\" in where:
        return EntryRef(file=Path(where).expanduser().resolve(), module=None, function=function)
    if not _MODULE.match(where):
        raise ConfigError(f"target.entry: {shown(where)} is neither a .py file nor a dotted module name")
    return EntryRef(file=None, module=where, function=function)


def source_file(ref: EntryRef) -> Path:
    """The file whose content the run ID hashes: the entry file, or the module's source file."""
    if ref.file is not None:
        if not ref.file.is_file():
            raise ConfigError(f"target.entry: file {shown(str(ref.file), 200)} not found")
        return ref.file
    try:
        spec = importlib.util.find_spec(ref.module)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"target.entry: module {shown(ref.module)} cannot be found ({_one_line(exc)})") from None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise ConfigError(f"target.entry: module {shown(ref.module)} not found (is it installed or on PYTHONPATH?)")
    return Path(spec.origin)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {shown(text, 200, plain=True)}" if text else type(exc).__name__


def check_not_custom(cfg: Any) -> None:
    """Built-in kinds: the custom-only keys and choices are errors, not silently ignored."""
    t = cfg.target
    for key in CUSTOM_ONLY_KEYS:
        if getattr(t, key) is not None:
            raise ConfigError(f"target.{key}: applies only to target.kind=custom (kind is {t.kind})")
    if t.center == "given":
        raise ConfigError(f"target.center: 'given' applies only to target.kind=custom; allowed for {t.kind}: erm, teacher")
    if cfg.posterior.loss == "cross_entropy":
        raise ConfigError(f"posterior.loss: cross_entropy applies only to target.kind=custom; allowed for {t.kind}: "
                          "gaussian, mse")


def resolve_custom(cfg: Any, user_keys: set[str], fresh: bool) -> Any:
    """The custom target's canonical config: absolute entry, hashes, n, loss and σ from the entry."""
    from llc.config.schema import DataConfig, TargetConfig

    t = cfg.target
    if t.entry is None:
        raise ConfigError("target.entry: required for target.kind=custom ('path/to/file.py:function' or "
                          "'package.module:function')")
    if t.center == "teacher":
        raise ConfigError("target.center: a custom target has no teacher; allowed: given, erm")
    defaults = {f.name: f.default for f in dataclasses.fields(TargetConfig)}
    center = t.center if "target.center" in user_keys or not fresh else "given"
    kept = {k: getattr(t, k) for k in CUSTOM_KEYS}
    t = TargetConfig(**{**defaults, **kept, "center": center, "hidden": []})
    if not fresh:  # rebuilt from a stored config: the job verifies the hashes when it builds the target
        return dataclasses.replace(cfg, target=t)
    ref = parse_entry(t.entry)
    entry_sha = file_sha256(source_file(ref))
    checkpoint, checkpoint_sha = None, None
    if t.checkpoint is not None:
        path = Path(t.checkpoint).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"target.checkpoint: file {shown(str(path), 200)} not found")
        checkpoint, checkpoint_sha = str(path), file_sha256(path)
    key = (ref.text(), entry_sha, cfg.seed, cfg.precision, checkpoint, checkpoint_sha)
    info = _INSPECTED.get(key)
    if info is None:
        from llc.targets.custom import (
            inspect_entry,  # JAX: only custom targets pay for it at config time
        )

        info = _INSPECTED[key] = inspect_entry(ref, cfg.seed, cfg.precision, checkpoint)
    t = dataclasses.replace(t, entry=ref.text(), entry_sha256=entry_sha, data_sha256=info.data_sha256,
                            n_params=info.n_params, checkpoint=checkpoint, checkpoint_sha256=checkpoint_sha)
    data_defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    data = DataConfig(**{**data_defaults, "n": info.n,
                         "noise_scale": info.noise_scale if info.noise_scale is not None else data_defaults["noise_scale"]})
    posterior = dataclasses.replace(cfg.posterior, loss=info.loss)
    return dataclasses.replace(cfg, target=t, data=data, posterior=posterior)


def hashed_target(target: dict[str, Any]) -> dict[str, Any]:
    """The part of a target dict the IDs hash: custom-only keys when set, and never the entry's folder
    or the checkpoint's path (their content hashes stand for them), so a moved file, or a job shipped
    to another machine, keeps its ID."""
    out = {k: v for k, v in target.items() if k not in CUSTOM_ONLY_KEYS or v is not None}
    if out.get("entry") is not None:
        out["entry"] = out["entry"].rpartition(":")[2]
    out.pop("checkpoint", None)
    return out
