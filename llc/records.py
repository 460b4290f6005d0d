"""Typed records of a run: `Metrics` is metrics.json, field for field (notes §3 and §5).

`to_dict()` gives exactly the keys and values metrics.json has always had: non-finite floats become
None (strict JSON) and the λ̂ estimate and the efficiency figures sit at the top level, not under
their own key. `from_dict` reads a metrics.json back as tolerantly as the string-key readers it
replaced: a key this version does not know is kept in `extra`, a key it expects but the file lacks
reads as None and is remembered in `absent`, so `from_dict(d).to_dict() == d` for run directories
of older or newer code too.

jax- and numpy-free, so cheap to import from the analysis and aggregation code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

_BOOKKEEPING = ("extra", "absent")


def json_value(value: Any) -> Any:
    """NaN/Inf -> None so the value is strict JSON; numpy scalars -> Python; tuples -> lists."""
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Record:
    """Shared (de)serialisation of the records below; a subclass declares its keys as fields."""

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    absent: frozenset[str] = field(default=frozenset(), kw_only=True, repr=False)

    NESTED: ClassVar[Mapping[str, type[Record]]] = {}  # field -> record stored as a JSON object under its key
    FLAT: ClassVar[Mapping[str, type[Record]]] = {}  # field -> record whose keys sit at this level
    OPTIONAL: ClassVar[tuple[str, ...]] = ()  # keys written only when not None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name not in _BOOKKEEPING)

    @classmethod
    def flat_keys(cls) -> tuple[str, ...]:
        """The keys this record occupies at its own level of the JSON object."""
        keys: list[str] = []
        for name in cls.field_names():
            keys.extend(cls.FLAT[name].flat_keys() if name in cls.FLAT else (name,))
        return tuple(keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls._read(data, keep_extra=True)

    @classmethod
    def _read(cls, data: Mapping[str, Any], keep_extra: bool) -> Self:
        values: dict[str, Any] = {}
        absent = set()
        for name in cls.field_names():
            if name in cls.FLAT:
                values[name] = cls.FLAT[name]._read(data, keep_extra=False)
            elif name not in data:
                values[name] = None
                if name not in cls.OPTIONAL:
                    absent.add(name)
            elif name in cls.NESTED and isinstance(data[name], Mapping):
                values[name] = cls.NESTED[name].from_dict(data[name])
            else:
                values[name] = data[name]
        known = set(cls.flat_keys())
        extra = {k: v for k, v in data.items() if k not in known} if keep_extra else {}
        return cls(**values, extra=extra, absent=frozenset(absent))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name in self.FLAT:
                out.update(value.to_dict())
            elif name in self.absent or (name in self.OPTIONAL and value is None):
                continue
            else:
                out[name] = value.to_dict() if isinstance(value, Record) else json_value(value)
        out.update(json_value(self.extra))
        return out


@dataclass(frozen=True)
class Basin(Record):
    """Did the chains stay local? (`llc.estimator.basin_check`): metrics.json's `basin` entry."""

    dist_rms: float | None  # RMS distance ||w - w*|| over the kept draws of the finite chains
    localization_radius: float | None  # sqrt(d / γ): the RMS radius of the localizing Gaussian alone
    dist_ratio: float | None  # dist_rms / localization_radius: ~1 when only γ holds the chains
    loss_gap_min: float | None  # nβ (min L_n over kept draws - L0); None for a minibatch loss trace
    gap_threshold: float | None  # below -this the chains found a lower basin than w*
    left: bool  # the chains found losses below L0 by more than the threshold: λ̂ is not local


@dataclass(frozen=True)
class Estimate(Record):
    """λ̂ and its uncertainty from the kept loss trace (notes §3); see `llc.estimator.estimate`."""

    llc_mean: float
    llc_se: float
    llc_std: float
    llc_per_chain: Sequence[float | None]  # None for an excluded (non-finite) chain
    ess_bulk: float
    ess_tail: float
    rhat: float | None  # None (NaN in memory) with a single chain
    rhat_theta: float | None
    converged: bool
    n_chains_used: int
    n_chains_diverged: int
    warnings: Sequence[str] | None = None  # why a λ̂ cannot be right (impossible value, ...); written when set
    basin: Basin | None = None  # distance from w* and the lowest loss found (absent before issue 17)

    NESTED: ClassVar[Mapping[str, type[Record]]] = {"basin": Basin}
    OPTIONAL: ClassVar[tuple[str, ...]] = ("warnings", "basin")


@dataclass(frozen=True)
class Efficiency(Record):
    """ESS per second / per FDE and work-normalised variance (notes §5)."""

    ess_per_sec: float | None
    ess_per_fde: float | None
    wnv_time: float
    wnv_fde: float


@dataclass(frozen=True)
class ERMRecord(Record):
    """How the centre w* was found: metrics.json's `erm` entry (and the target store's)."""

    center: str  # "erm", "teacher" or "minimum" (the quadratic's exact minimum)
    final_loss: float
    grad_norm: float
    steps: int
    converged: bool
    tol: float | None = None  # not recorded for the quadratic, whose centre is exact
    bias_bound: float | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("tol", "bias_bound")


@dataclass(frozen=True)
class Timing(Record):
    """Wall-clock seconds, measured separately (notes §5)."""

    target_s: float
    compile_s: float
    warmup_s: float
    sampling_s: float
    total_s: float


@dataclass(frozen=True)
class Work(Record):
    """Cost in full-data-equivalent gradient evaluations and raw gradient counts (notes §5)."""

    fde_warmup: float
    fde_sampling: float
    grad_evals: float
    grad_evals_warmup: float
    grad_evals_sampling: float


@dataclass(frozen=True)
class Stopping(Record):
    """How sampling ended (`sampler.stop`; llc.stopping): metrics.json's `stopping` entry."""

    rule: str  # fixed | converged
    reason: str  # fixed (ran `steps`) | converged (targets met) | budget (spent first) | diverged (every chain)
    steps: int  # sampling steps per chain
    thinning: int  # steps between kept draws at the end (doubles whenever the store passes max_draws)
    checks: int  # times the stop rule was evaluated
    fde_per_chain: float  # sampling work per chain, FDE
    failures: Sequence[str]  # the targets still unmet at the stop (empty when converged)
    # SG samplers: (warm-up + sampling steps) × h × γ, how many relaxation times 1/(hγ) of the directions only
    # γ holds the chains ran (llc.runs.job.relaxation_times); None for full-batch samplers and older runs
    relaxation_times: float | None = None
    # plain SG until converged: the stop rule's minimum in relaxation times (`sampler.min_relaxation`); a run that
    # stopped short of it already carries its own warning. None for every other run and for runs before 2026-12-07
    min_relaxation: float | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("relaxation_times", "min_relaxation")


@dataclass(frozen=True)
class Metrics(Record):
    """metrics.json of one run; the fields are in the order run_job has always written them."""

    run_id: str
    family_id: str
    target_id: str
    sampler: str
    seed: int
    precision: str
    n_params: int
    n_data: int
    beta: float
    nbeta: float
    gamma: float
    estimate: Estimate
    lambda_true: float | None
    L0: float
    loss_trace: str
    n_chains: int
    n_draws: int
    stop_reason: str | None
    stopping: Stopping | None
    erm: ERMRecord
    timing: Timing
    work: Work
    efficiency: Efficiency
    versions: Mapping[str, str]
    code_version: str
    device: str

    NESTED: ClassVar[Mapping[str, type[Record]]] = {
        "erm": ERMRecord, "timing": Timing, "work": Work, "stopping": Stopping}
    OPTIONAL: ClassVar[tuple[str, ...]] = ("stop_reason", "stopping")  # absent from runs before issue 16
    FLAT: ClassVar[Mapping[str, type[Record]]] = {"estimate": Estimate, "efficiency": Efficiency}
