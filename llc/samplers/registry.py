"""The sampler registry: one line per sampler module, each defining `SPEC` (llc.samplers.spec).

Adding a sampler = a new module with its `SPEC` plus one line here (docs/architecture.md). The
specs are read once, when `llc.config` first builds its `SamplerConfig`; a module appended to
`SAMPLER_MODULES` before that (as tests do for a toy sampler) is registered like a built-in one.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import typing

from llc.samplers.spec import SamplerSpec, admits_none

SAMPLER_MODULES: list[str] = [
    "llc.samplers.sgld",
    "llc.samplers.sghmc",
    "llc.samplers.hmc",
    "llc.samplers.nuts",
    "llc.samplers.mclmc",
    "llc.samplers.mclmc_adjusted",
]


@functools.cache
def sampler_specs() -> dict[str, SamplerSpec]:
    """name -> spec, in registry order; checks that keys shared by several samplers agree."""
    specs: dict[str, SamplerSpec] = {}
    for module in SAMPLER_MODULES:
        spec = getattr(importlib.import_module(module), "SPEC", None)
        if not isinstance(spec, SamplerSpec):
            raise TypeError(f"sampler module {module} defines no SPEC = SamplerSpec(...)")
        if spec.name in specs:
            raise TypeError(f"sampler {spec.name!r} is registered twice ({module})")
        specs[spec.name] = spec
    shared_params(specs)
    return specs


def spec_of(name: str) -> SamplerSpec:
    return sampler_specs()[name]


def sampler_names() -> tuple[str, ...]:
    return tuple(sampler_specs())


def shared_params(specs: dict[str, SamplerSpec]) -> dict[str, list[tuple[str, dataclasses.Field, object]]]:
    """key -> [(sampler, field, type), ...] over every sampler that declares it.

    Raises TypeError when two samplers give one key different types or constraints: the flat
    `sampler.*` namespace has one type and one set of constraints per key.
    """
    by_key: dict[str, list[tuple[str, dataclasses.Field, object]]] = {}
    for name, spec in specs.items():
        hints = typing.get_type_hints(spec.params)
        for f in dataclasses.fields(spec.params):
            by_key.setdefault(f.name, []).append((name, f, hints[f.name]))
    for key, decls in by_key.items():
        first_name, first, first_tp = decls[0]
        for name, f, tp in decls[1:]:
            constraints = {k: v for k, v in f.metadata.items() if k != "help"}
            first_constraints = {k: v for k, v in first.metadata.items() if k != "help"}
            if _strip_none(tp) != _strip_none(first_tp) or constraints != first_constraints:
                raise TypeError(
                    f"sampler.{key}: {name} declares it differently from {first_name} (type or constraints)"
                )
    return by_key


def _strip_none(tp: object) -> object:
    if not admits_none(tp):
        return tp
    args = tuple(a for a in typing.get_args(tp) if a is not type(None))
    return typing.Union[args]  # noqa: UP007 (a union built at run time from a tuple)
