"""Cross-field checks and derived values of a built `Config`: the result is canonical (one spelling per job)."""

from __future__ import annotations

import dataclasses
from typing import Any

from llc.config.layering import applicable_keys
from llc.config.localization import ERM_TOL_GAMMA_FLOOR, default_gamma
from llc.config.schema import (
    MAX_PARAMS,
    MAX_STEPS,
    Config,
    DataConfig,
    PosteriorConfig,
    SamplerConfig,
    TargetConfig,
)
from llc.errors import ConfigError
from llc.samplers.registry import spec_of
from llc.samplers.sg_params import DEFAULT_MIN_RELAXATION
from llc.tempering import erm_nbeta

replace = dataclasses.replace

# The `target.*` keys only some model families read; every other target key applies to every kind.
# A key that does not apply never enters the run ID with a value of its own (see `canonical_target`).
TARGET_KEYS_OF_KINDS: dict[str, tuple[str, ...]] = {
    "dim": ("quadratic",),
    "curvature_ratio": ("quadratic",),
    **{key: ("mlp", "dln") for key in ("in_dim", "out_dim", "hidden", "depth", "target_params", "teacher_scale")},
    **{key: ("mlp", "dln", "custom") for key in ("center", "erm_steps", "erm_tol")},
    "activation": ("mlp",),  # the DLN's is fixed to identity
    "bias": ("mlp",),  # the DLN never has biases
    "rank": ("dln",),
}
# The quadratic has no data: its loss is closed-form, only data.n (through nβ) is read.
DATA_KEYS_OF_KINDS: dict[str, tuple[str, ...]] = {
    "data.x_dist": ("mlp", "dln"), "data.noise": ("mlp", "dln"), "data.noise_scale": ("mlp", "dln"),
    "posterior.loss": ("mlp", "dln"),
}


def inapplicable_target_keys(kind: str) -> frozenset[str]:
    """Dotted keys (`target.*`, and the data-model keys) that the model family `kind` never reads."""
    keys = {f"target.{key}": kinds for key, kinds in TARGET_KEYS_OF_KINDS.items()} | DATA_KEYS_OF_KINDS
    return frozenset(key for key, kinds in keys.items() if kind not in kinds)


def canonical_target(t: TargetConfig) -> TargetConfig:
    """The quadratic's own keys on an MLP or DLN take their schema defaults, so setting them changes no run ID.

    (The other direction, MLP keys on a quadratic, is handled where presets are known: `resolve_config`
    ignores a user's value for them, so they keep the preset's value, as every existing run ID has it.)
    """
    if t.kind in ("quadratic", "custom"):
        return t
    defaults = {f.name: f.default for f in dataclasses.fields(TargetConfig)}
    return replace(t, dim=defaults["dim"], curvature_ratio=defaults["curvature_ratio"])


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
    if target.kind == "custom":
        return target.n_params
    widths = [target.in_dim, *target.hidden, target.out_dim]
    bias = target.bias and target.kind == "mlp"
    return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))


def is_linear_in_x(t: TargetConfig) -> bool:
    """True when f_w(x) = x M(w) + c(w): the full-data loss then has a closed form in the data's moments."""
    return t.kind == "dln" or (t.kind == "mlp" and (not t.hidden or t.activation == "identity"))


def finalize(cfg: Config, user_keys: set[str]) -> Config:
    """Apply every cross-field check and derived value; `user_keys` are the keys the user set."""
    t = canonical_target(finalize_target(cfg.target, user_keys))
    if count_params(t) > MAX_PARAMS:
        raise ConfigError(f"target: {count_params(t)} parameters; at most {MAX_PARAMS} (reduce widths or depth)")
    if cfg.data.n < 2:
        raise ConfigError(f"data.n: must be >= 2 (beta = beta0 / log n), got {cfg.data.n}")
    p = finalize_posterior(cfg.posterior, t, cfg.data.n)
    if t.erm_tol is None:
        # sqrt(γ)/(nβ) bounds the centre's first-order bias (nβ|∇L|)²/γ by 1, but never tighter than at
        # γ = ERM_TOL_GAMMA_FLOOR: L-BFGS stalls at |∇L| ~ 0.01-0.03 on ReLU nets (docs/targets.md), and the
        # bias bound actually reached is in metrics.json (erm.bias_bound).
        t = replace(t, erm_tol=max(p.gamma, ERM_TOL_GAMMA_FLOOR) ** 0.5 / erm_nbeta(cfg.data.n, p.beta0))
    s = finalize_sampler(cfg.sampler, t, cfg.data, user_keys)
    return Config(target=t, data=cfg.data, posterior=p, sampler=s, seed=cfg.seed, precision=cfg.precision)


def finalize_target(t: TargetConfig, user_keys: set[str]) -> TargetConfig:
    """Hidden widths from depth/target_params, DLN rank and its fixed activation and bias."""
    if t.kind == "quadratic":
        return replace(t, hidden=[], depth=None, target_params=None, rank=None)
    if t.kind == "custom":  # canonical already (llc.config.custom.resolve_custom)
        return t
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
        return replace(t, rank=rank, activation="identity", bias=False)
    if t.rank is not None:
        raise ConfigError("target.rank applies only to target.kind=dln")
    return t


def finalize_posterior(p: PosteriorConfig, t: TargetConfig, n: int) -> PosteriorConfig:
    """γ from the prior radius, else the default rule (llc.config.localization) when unset; the closed-form
    full loss only for models linear in x."""
    if p.prior_radius is not None:
        p = replace(p, gamma=count_params(t) / p.prior_radius**2)
    if p.gamma is None:
        p = replace(p, gamma=default_gamma(n, p.beta0))
    if p.full_loss == "moments" and not is_linear_in_x(t):
        raise ConfigError(
            "posterior.full_loss: 'moments' needs a model linear in x (target.kind dln, or mlp with hidden [] or "
            f"activation identity), got target.kind={t.kind}; allowed values here: data"
        )
    return p


def finalize_sampler(s: SamplerConfig, t: TargetConfig, d: DataConfig, user_keys: set[str]) -> SamplerConfig:
    """Step size vs step scale, the sampler's required keys, minibatch bounds, kept draws."""
    spec = spec_of(s.name)
    scaled = "step_scale" in spec.keys
    if scaled:
        s = _step_size_or_scale(s, user_keys)
    if s.step_size is None and not (scaled and s.step_scale is not None):
        raise ConfigError(f"sampler.step_size: no default for sampler {s.name}; set a positive step size")
    for key in spec.required():
        if getattr(s, key) is None:
            raise ConfigError(f"sampler.{key}: required for sampler {s.name} (null given)")
    if spec.minibatch and t.kind != "quadratic" and s.batch_size > d.n:
        raise ConfigError(f"sampler.batch_size: {s.batch_size} is larger than data.n = {d.n}; allowed 1..{d.n}")
    s = _stop_rule(s, spec.minibatch, "loss_trace" in spec.keys, user_keys)
    if "min_relaxation" in spec.keys:
        s = _sg_warmup_and_relaxation(s, user_keys)
    if s.stop == "fixed" and s.thinning > s.steps:
        raise ConfigError(f"sampler.thinning: {s.thinning} exceeds sampler.steps = {s.steps}")
    if s.stop == "fixed" and s.steps // s.thinning < 4:
        raise ConfigError("sampler.steps / sampler.thinning: at least 4 kept draws are needed for ESS and R-hat")
    s = _theta_every(s)
    # Keys that do not apply to this sampler are dropped so they never enter the run ID.
    allowed = applicable_keys(s.name)
    return replace(s, **{f.name: None for f in dataclasses.fields(s) if f.name not in allowed})


MIN_THETA_DRAWS = 4  # split-R̂(θ) needs at least this many draws per chain


def _theta_every(s: SamplerConfig) -> SamplerConfig:
    """θ at every k-th kept draw: 1 is the default (None, so it leaves run IDs alone); enough θ draws must remain."""
    if s.theta_every == 1:
        return replace(s, theta_every=None)
    if s.theta_every is None:
        return s
    if s.stop == "fixed" and (s.steps // s.thinning) // s.theta_every < MIN_THETA_DRAWS:
        allowed = max(1, (s.steps // s.thinning) // MIN_THETA_DRAWS)
        raise ConfigError(f"sampler.theta_every: {s.theta_every} leaves fewer than {MIN_THETA_DRAWS} θ draws of "
                          f"{s.steps // s.thinning} kept draws; allowed 1..{allowed}")
    if s.stop == "converged" and s.theta_every * 4 * MIN_THETA_DRAWS > s.max_draws:
        allowed = s.max_draws // (4 * MIN_THETA_DRAWS)
        raise ConfigError(f"sampler.theta_every: {s.theta_every} is too large for sampler.max_draws = {s.max_draws} "
                          f"(the stored draws must hold at least {MIN_THETA_DRAWS} θ draws after halving); "
                          f"allowed 1..{allowed}")
    return s


# stop=converged defaults; docs/convergence.md explains each.
CONVERGED_DEFAULTS = {"max_draws": 4000, "target_rhat": 1.01, "target_ess": 100.0}
DEFAULT_BUDGET_FACTOR = 64  # max_steps = 64 x steps when neither max_steps nor max_fde is set
CONVERGED_ONLY_KEYS = ("max_steps", "max_fde", "max_draws", "target_rhat", "target_ess", "target_se", "target_rel_se")


def _stop_rule(s: SamplerConfig, minibatch: bool, has_loss_trace: bool, user_keys: set[str]) -> SamplerConfig:
    """Canonical stop-rule keys: None unless stop=converged, where the targets and a budget get defaults."""
    if s.stop == "fixed":
        for key in CONVERGED_ONLY_KEYS:
            if f"sampler.{key}" in user_keys and getattr(s, key) is not None:
                raise ConfigError(f"sampler.{key}: applies only with sampler.stop=converged (stop is fixed)")
        s = replace(s, **dict.fromkeys(CONVERGED_ONLY_KEYS))
        return replace(s, loss_trace=s.loss_trace or "batch") if has_loss_trace else s
    s = replace(s, **{k: v for k, v in CONVERGED_DEFAULTS.items() if getattr(s, k) is None})
    if s.max_steps is None and s.max_fde is None:
        s = replace(s, max_steps=min(DEFAULT_BUDGET_FACTOR * s.steps, MAX_STEPS))
    if s.max_steps is not None and s.max_steps < s.steps:
        raise ConfigError(f"sampler.max_steps: {s.max_steps} is below sampler.steps = {s.steps}, the minimum "
                          "before the first convergence check; allowed >= sampler.steps")
    if has_loss_trace:
        if s.loss_trace == "batch" and minibatch:
            raise ConfigError("sampler.loss_trace: batch cannot decide sampler.stop=converged (a minibatch loss has "
                              "R-hat near 1 whether or not the chains mix); allowed with stop=converged: full")
        s = replace(s, loss_trace="full")
    return s


def _sg_warmup_and_relaxation(s: SamplerConfig, user_keys: set[str]) -> SamplerConfig:
    """SG samplers: the fast warm-up's step scale, and the relaxation minimum of the stop rule (docs/convergence.md)."""
    if s.warmup_step_scale is not None and (s.step_size is not None or s.warmup_step_factor is not None):
        if "sampler.warmup_step_scale" in user_keys:
            other = "sampler.warmup_step_factor" if s.warmup_step_factor is not None else "sampler.step_size"
            raise ConfigError(f"sampler.warmup_step_scale cannot be combined with {other} (it scales the warm-up "
                              "step to the curvature, as step_scale does); set one or the other")
        s = replace(s, warmup_step_scale=None)
    if s.stop == "converged" and s.precond == "none":
        return s if s.min_relaxation is not None else replace(s, min_relaxation=DEFAULT_MIN_RELAXATION)
    if "sampler.min_relaxation" in user_keys and s.min_relaxation is not None:
        why = "sampler.stop=converged" if s.stop != "converged" else "sampler.precond=none (a metric speeds the "\
              "γ-held directions by an unknown factor)"
        raise ConfigError(f"sampler.min_relaxation: applies only with {why}")
    return replace(s, min_relaxation=None)


def _step_size_or_scale(s: SamplerConfig, user_keys: set[str]) -> SamplerConfig:
    """An explicit step size replaces the curvature-scaled default; setting both is an error."""
    if "sampler.step_size" in user_keys:
        if "sampler.step_scale" in user_keys:
            raise ConfigError("sampler.step_scale cannot be combined with sampler.step_size; set one or the other")
        return replace(s, step_scale=None)
    if s.step_scale is not None:
        return replace(s, step_size=None)
    return s
