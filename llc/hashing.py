"""Canonical JSON and content hashes: the basis of run, family and target IDs.

Never Python's `hash()`: these IDs must agree across processes and machines.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _normalize(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if value.is_integer() and math.isfinite(value):
            return f"{value:.1f}"  # 1.0 and 1 stay distinct from ints but 1.0 == 1.00
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    raise TypeError(f"cannot hash value of type {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, floats by shortest round-trip repr."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"))


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
