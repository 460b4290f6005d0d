"""What a sampler declares about itself: the one place a new sampler is described.

Each sampler module defines `SPEC = SamplerSpec(...)`; `llc.samplers.registry` lists the modules.
Everything else derives from the specs: the `sampler.*` config keys and which apply to which
sampler, the per-sampler preset values, the minibatch checks of config resolution, the
validation tolerance, the CLI help and the tests' parametrisation.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llc.config import SamplerConfig
    from llc.posterior import Posterior
    from llc.samplers.base import Sampler


@dataclass(frozen=True)
class StepControl:
    """The step-size handles of a sampler whose step is an overdamped Langevin step (sgld, sghmc).

    `params` is what the sampler's `warmup` returns for one chain (traced inside `llc calibrate`).

    step_size(params): the value `sampler.step_size` has in a run that uses these params.
    with_step_size(params, step_size, cfg): the params `warmup` would return with `sampler.step_size` set
        to `step_size` (anything else it adapted, such as a frozen metric, kept).
    langevin(params): `(h, metric)` of the Langevin step the sampler takes, w += h G ĝ + sqrt(2hG) ξ
        (SGHMC: its overdamped limit h = ε/α, metric 1); used for relaxation times and the MALA-style
        acceptance estimate.
    step_size_for(h, cfg): the `sampler.step_size` whose Langevin step is h (host floats).
    """

    step_size: Callable[[Any], Any]
    with_step_size: Callable[[Any, Any, SamplerConfig], Any]
    langevin: Callable[[Any], tuple[Any, Any]]
    step_size_for: Callable[[float, SamplerConfig], float]


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler's declaration.

    name: the value of `sampler.name`.
    summary: one line for `--help` and the docs.
    params: a frozen dataclass of the sampler's own `sampler.*` keys, each declared with
        `llc.fields.opt(default, help, **constraints)`. The default is this sampler's value when
        neither a preset nor the user sets one; a key typed without `None` is required.
        Keys shared by several samplers must agree on type and constraints.
    build: `(posterior, sampler_config) -> Sampler`.
    minibatch: the sampler follows minibatch gradients (needs `batch_size` ≤ n, and its exact-loss
        trace is what validation and convergence checks read).
    rel_tol: relative tolerance of `llc validate` (before the data-set fluctuation term).
    presets: per preset name, the `sampler.*` values this sampler uses there (steps, step size, ...),
        layered over the preset's problem and over `params`' defaults.
    step_control: how `llc calibrate` moves the sampler's step size (`StepControl`); None for samplers
        with no step size to calibrate (they adapt their own).
    """

    name: str
    summary: str
    params: type
    build: Callable[[Posterior, SamplerConfig], Sampler]
    minibatch: bool
    rel_tol: float
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    step_control: StepControl | None = None

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.params) and self.params.__dataclass_params__.frozen):
            raise TypeError(f"sampler {self.name}: params must be a frozen dataclass")
        if not 0 < self.rel_tol < 1:
            raise TypeError(f"sampler {self.name}: rel_tol must lie in (0, 1), got {self.rel_tol}")

    @property
    def keys(self) -> tuple[str, ...]:
        """This sampler's own `sampler.*` keys (common keys such as steps apply to every sampler)."""
        return tuple(f.name for f in dataclasses.fields(self.params))

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.params)}

    def required(self) -> tuple[str, ...]:
        """Keys whose declared type does not admit None."""
        hints = typing.get_type_hints(self.params)
        return tuple(k for k in self.keys if not admits_none(hints[k]))


def admits_none(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)
