"""Environment metadata recorded in every run directory."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from llc.version import code_version

PACKAGES = ("llc", "jax", "jaxlib", "blackjax", "dm-haiku", "optax", "arviz", "arviz-stats", "numpy", "xarray")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(precision: str) -> dict[str, Any]:
    import jax

    device = jax.devices()[0]
    return {
        "code_version": code_version(),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "precision": precision,
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "versions": package_versions(),
    }
