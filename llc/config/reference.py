"""The key reference of docs/configuration.md, generated from the schema's field metadata."""

from __future__ import annotations

import dataclasses

from llc.config.schema import SECTIONS, TOP_LEVEL_HELP, Config
from llc.samplers.registry import sampler_specs


def _allowed(meta: dict) -> str:
    if "choices" in meta:
        return ", ".join(meta["choices"])
    parts = []
    for name, sign in (("gt", ">"), ("min", ">="), ("max", "<="), ("min_each", "each >="),
                       ("max_each", "each <="), ("max_len", "length <=")):
        if name in meta:
            parts.append(f"{sign} {meta[name]}")
    return ", ".join(parts)


def _row(key: str, f: dataclasses.Field) -> str:
    return f"| `{key}` | `{f.default}` | {_allowed(f.metadata)} | {f.metadata['help']} |"


def keys_markdown() -> str:
    """Markdown tables: every key with default, allowed values and meaning; then each sampler's spec."""
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        lines += [_row(f"{section}.{f.name}", f) for f in dataclasses.fields(cls)]
    top = {f.name: f for f in dataclasses.fields(Config)}
    lines += [_row(name, top[name]) for name in TOP_LEVEL_HELP]
    lines += ["", "| sampler | what it is | its own keys (default) | minibatches | validation tolerance |",
              "|---|---|---|---|---|"]
    for name, spec in sampler_specs().items():
        own = ", ".join(f"{key} (`{value}`)" for key, value in sorted(spec.defaults().items()))
        batches = "yes" if spec.minibatch else "no"
        lines.append(f"| `{name}` | {spec.summary} | {own} | {batches} | {spec.rel_tol:.0%} |")
    return "\n".join(lines) + "\n"
