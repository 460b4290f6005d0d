"""Deterministic run and family IDs (notes §7)."""

from __future__ import annotations

import dataclasses
import re

from llc.config import Config, config_to_dict
from llc.errors import ConfigError
from llc.hashing import content_hash
from llc.version import code_version

RUN_ID_RE = re.compile(r"^[a-z_]+-[0-9a-f]{16}$")


# Options added after runs were cached under the IDs of configs that lacked them: while unset they are
# left out of the hash, so adding an option does not orphan every cached run (set, they change the ID).
LATER_OPTIONS = (("sampler", "warmup_step_factor"),)


def run_id(cfg: Config) -> str:
    """`<sampler>-<hash>`: hash of the canonical resolved config plus the code version."""
    config = config_to_dict(cfg)
    for section, key in LATER_OPTIONS:
        if config[section][key] is None:
            del config[section][key]
    return f"{cfg.sampler.name}-{content_hash({'config': config, 'code_version': code_version()})}"


def family_id(cfg: Config) -> str:
    """Hash of the problem only (target, data, posterior, seed, precision): groups samplers."""
    problem = {
        "target": dataclasses.asdict(cfg.target),
        "data": dataclasses.asdict(cfg.data),
        "posterior": dataclasses.asdict(cfg.posterior),
        "seed": cfg.seed,
        "precision": cfg.precision,
        "code_version": code_version(),
    }
    return f"fam-{content_hash(problem)}"


def check_run_id(value: str) -> str:
    """Reject anything that is not a run ID (e.g. `../x`) before it becomes a path."""
    if not RUN_ID_RE.match(value):
        raise ConfigError(f"run id {value!r} is not valid: expected <sampler>-<16 hex digits>")
    return value
