"""Dataclass fields that carry their own help text and constraints.

Kept apart from `llc.config` (and free of JAX) so that sampler modules can declare their
parameters in the same style as the config schema without importing the config package.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def opt(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with its help text and constraints (choices, min, gt, max, min_each, max_each, max_len)."""
    return field(default=default, metadata={"help": help, **constraints})
