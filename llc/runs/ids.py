"""Deterministic run and family IDs (notes §7)."""

from __future__ import annotations

import dataclasses

from llc.config import Config, config_to_dict
from llc.config.custom import hashed_target
from llc.errors import ConfigError
from llc.hashing import content_hash
from llc.runs.layout import RUN_ID_RE
from llc.version import code_version

# The `sampler.*` keys that every run ID has hashed since IDs began (None where they do not apply).
# Keys added later (a new option, or a new sampler's own keys) are hashed only when set: adding one
# must not orphan every cached run.
ORIGINAL_SAMPLER_KEYS = frozenset({
    "name", "chains", "steps", "warmup", "step_size", "step_scale", "thinning", "init_jitter", "batch_size",
    "loss_trace", "precond", "precond_decay", "precond_eps", "friction", "num_integration_steps",
    "target_accept", "desired_energy_var",
})


def hashed_view(config: dict) -> dict:
    """The part of a config dict (`config_to_dict`, or a run's config.json) that its run ID hashes."""
    sampler = {k: v for k, v in config["sampler"].items() if k in ORIGINAL_SAMPLER_KEYS or v is not None}
    return {**config, "target": hashed_target(config["target"]), "sampler": sampler}


def run_id(cfg: Config) -> str:
    """`<sampler>-<hash>`: hash of the canonical resolved config plus the code version."""
    config = hashed_view(config_to_dict(cfg))
    return f"{cfg.sampler.name}-{content_hash({'config': config, 'code_version': code_version()})}"


def family_id(cfg: Config) -> str:
    """Hash of the problem only (target, data, posterior, seed, precision): groups samplers."""
    problem = {
        "target": hashed_target(dataclasses.asdict(cfg.target)),
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
