"""The configuration of one job: frozen dataclasses, one per section.

Every field carries its help text and constraints in `metadata`, so validation,
`--print-config` and the documentation all read from one place. The `sampler` section is
built from the sampler registry: each sampler declares its own keys in its module's `SPEC`. Keys are
addressed as `section.key` (e.g. `target.hidden`); `seed` and `precision` are
top-level.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from llc.fields import opt
from llc.samplers.registry import sampler_specs, shared_params
from llc.samplers.spec import admits_none

TARGET_KINDS = ("mlp", "dln", "quadratic", "custom")
ACTIVATIONS = ("relu", "tanh", "gelu", "identity")
CENTERS = ("erm", "teacher", "given")
X_DISTS = ("gauss_iso", "gauss_aniso", "mixture", "lowdim_manifold", "heavy_tailed")
NOISES = ("gauss", "hetero", "student_t", "outliers")
LOSSES = ("gaussian", "mse", "cross_entropy")
PRECISIONS = ("float32", "float64")
FULL_LOSSES = ("data", "moments")

# Bounds on sizes, so that a few characters of input cannot ask for terabytes (checked before anything runs).
MAX_WIDTH = 65_536  # in_dim, out_dim, each hidden width
MAX_DEPTH = 100  # hidden layers
MAX_PARAMS = 100_000_000  # parameters of the resolved model
MAX_QUADRATIC_DIM = 4096  # the quadratic stores a dim x dim rotation
MAX_SAMPLES = 100_000_000  # data.n
MAX_CHAINS = 4096
MAX_STEPS = 1_000_000_000  # steps, warmup, thinning, erm_steps
MAX_SEED = 2**32 - 1
MAX_DRAWS = 1_000_000  # kept draws stored per chain (stop=converged)
STOP_RULES = ("fixed", "converged")


@dataclass(frozen=True)
class TargetConfig:
    kind: str = opt("mlp", "Model family: teacher-student MLP, deep linear network, quadratic, or custom (your own "
                    "model and data from target.entry; docs/custom.md).", choices=TARGET_KINDS)
    in_dim: int = opt(4, "Input dimension (mlp, dln).", gt=0, max=MAX_WIDTH)
    out_dim: int = opt(1, "Output dimension (mlp, dln).", gt=0, max=MAX_WIDTH)
    hidden: list[int] | None = opt(
        None, "Hidden widths, e.g. [64,64]; [] is a single linear layer. Mutually exclusive with depth/target_params.", min_each=1,
        max_each=MAX_WIDTH, max_len=MAX_DEPTH,
    )
    depth: int | None = opt(None, "Number of equal hidden layers; width inferred from target_params.", min=0, max=MAX_DEPTH)
    target_params: int | None = opt(None, "Approximate parameter count used with depth.", gt=0, max=MAX_PARAMS)
    activation: str = opt("relu", "Hidden activation (mlp).", choices=ACTIVATIONS)
    bias: bool = opt(True, "Use biases in the MLP (the DLN never has biases).")
    rank: int | None = opt(None, "dln: rank of the teacher's product matrix (default: smallest width).", min=0, max=MAX_WIDTH)
    center: str = opt("erm", "Centre w* of the localized posterior: ERM solution, the teacher, or (custom: the default) "
                      "the params the entry returns.", choices=CENTERS)
    teacher_scale: float = opt(1.0, "Scale of the teacher's random weights (relative to 1/sqrt(fan_in)).", gt=0)
    dim: int = opt(20, "quadratic: number of parameters d.", gt=0, max=MAX_QUADRATIC_DIM)
    curvature_ratio: float = opt(1000.0, "quadratic: ratio of the largest to smallest curvature eigenvalue.", min=1)
    erm_steps: int = opt(5000, "Maximum optimizer steps when training to w*.", gt=0, max=MAX_STEPS)
    erm_tol: float | None = opt(
        None,
        "Gradient-norm tolerance that declares ERM converged. Default sqrt(max(gamma, 100))/(n beta), which "
        "bounds the first-order bias of the LLC estimate, (n beta)^2 |grad|^2 / gamma, by max(1, 100/gamma) "
        "(metrics.json: erm.bias_bound).",
        gt=0,
    )
    # custom targets (docs/custom.md); None for every built-in kind, so they never enter a built-in's run ID
    entry: str | None = opt(
        None, "custom: 'path/to/file.py:function' or 'package.module:function' returning apply, params, x, y, loss "
        "(runs that code). A file path is resolved to an absolute path.")
    entry_sha256: str | None = opt(None, "custom: sha256 of the entry's source file (set when the config is resolved).")
    data_sha256: str | None = opt(
        None, "custom: hash of the params, data and loss the entry returned (set when the config is resolved).")
    n_params: int | None = opt(None, "custom: number of parameters of the entry's params (derived).", gt=0,
                               max=MAX_PARAMS)
    checkpoint: str | None = opt(
        None, "custom: a step_<N>.npz checkpoint whose arrays replace the entry's params, leaf by leaf (llc trajectory).")
    checkpoint_sha256: str | None = opt(None, "custom: sha256 of the checkpoint file (set when the config is resolved).")


@dataclass(frozen=True)
class DataConfig:
    n: int = opt(1000, "Number of training samples.", gt=0, max=MAX_SAMPLES)
    x_dist: str = opt("gauss_iso", "Input distribution.", choices=X_DISTS)
    noise: str = opt("gauss", "Label-noise model.", choices=NOISES)
    noise_scale: float = opt(0.1, "Noise scale sigma; the likelihood is Gaussian with this sigma.", gt=0)


@dataclass(frozen=True)
class PosteriorConfig:
    beta0: float = opt(1.0, "Inverse temperature numerator: beta = beta0 / log n.", gt=0)
    gamma: float | None = opt(None, "Localization strength gamma (>= 0). Unset: sqrt(n beta)/2, the rule of docs/localization.md. "
                              "Replaced by d / prior_radius^2 when prior_radius is set.", min=0)
    prior_radius: float | None = opt(None, "If set, gamma = d / prior_radius^2.", gt=0)
    loss: str = opt(
        "gaussian", "Per-sample loss: gaussian = ||y-f||^2/(2 sigma^2); mse = ||y-f||^2 (devinterp's convention); "
        "cross_entropy = -log softmax(f)[y] (custom targets only; set by the entry).", choices=LOSSES
    )
    full_loss: str = opt(
        "data",
        "How the full-data loss L_n is evaluated: data = a pass over all n rows (what a real network costs); "
        "moments = exact closed form from the data's second moments, for models linear in x (dln, or mlp with "
        "hidden [] or activation identity): its cost does not grow with n.",
        choices=FULL_LOSSES,
    )


@dataclass(frozen=True)
class CommonSamplerConfig:
    """The `sampler.*` keys every sampler has; each sampler's own keys come from its spec."""

    name: str = opt("sgld", "Sampler.")
    chains: int = opt(4, "Number of chains, vectorised with jax.vmap.", gt=0, max=MAX_CHAINS)
    steps: int = opt(2000, "Sampling steps per chain after warm-up.", gt=0, max=MAX_STEPS)
    warmup: int = opt(200, "Warm-up / adaptation steps per chain (discarded).", min=0, max=MAX_STEPS)
    step_size: float | None = opt(
        None,
        "Step size (SGLD: h in w += h*grad + sqrt(2h)*xi; SGHMC: eps). Default per sampler and preset.",
        gt=0,
    )
    thinning: int = opt(1, "Keep every k-th draw.", gt=0, max=MAX_STEPS)
    theta_every: int | None = opt(
        None,
        "Record the θ projections and ‖w - w*‖² at every k-th kept draw only (default: every draw). They are "
        "per-step work when draws are dense (thinning 1), which shows on a GPU; R-hat(θ) then uses these draws.",
        gt=0, max=MAX_STEPS)
    init_jitter: float = opt(0.0, "Std of Gaussian jitter added to w* to start each chain.", min=0)
    stop: str = opt(
        "fixed",
        "When sampling ends: fixed = after exactly `steps` steps; converged = in compiled chunks until the "
        "loss trace's R-hat, bulk ESS and (if set) SE meet their targets, checked after at least `steps` steps, "
        "or until the budget (max_steps, max_fde) is spent (docs/convergence.md).",
        choices=STOP_RULES,
    )
    max_steps: int | None = opt(
        None, "stop=converged: most sampling steps per chain (default 64 x steps when max_fde is not set either).",
        gt=0, max=MAX_STEPS)
    max_fde: float | None = opt(
        None, "stop=converged: most sampling work per chain, in full-data-equivalent gradient evaluations.", gt=0)
    max_draws: int | None = opt(
        None, "stop=converged: kept draws stored per chain; past it every other draw is dropped and the "
        "thinning doubles (default 4000).", min=16, max=MAX_DRAWS)
    target_rhat: float | None = opt(None, "stop=converged: largest loss R-hat (default 1.01).", gt=1)
    target_ess: float | None = opt(None, "stop=converged: smallest bulk ESS per chain (default 100).", gt=0)
    target_se: float | None = opt(None, "stop=converged: largest standard error of the LLC estimate (absolute).", gt=0)
    target_rel_se: float | None = opt(
        None, "stop=converged: largest standard error relative to |LLC estimate|.", gt=0)


def _sampler_field(key: str, decls: list) -> tuple[str, Any, Any]:
    """One flat `sampler.<key>` field from the samplers that declare it: None unless it applies."""
    names = [name for name, _, _ in decls]
    helps = {f.metadata["help"] for _, f, _ in decls}
    if len(helps) == 1:
        text = f"{', '.join(names)}: {helps.pop()}"
    else:
        text = "; ".join(f"{name}: {f.metadata['help']}" for name, f, _ in decls)
    tp = decls[0][2]
    return key, (tp if admits_none(tp) else tp | None), opt(None, text, **{
        k: v for k, v in decls[0][1].metadata.items() if k != "help"})


def _make_sampler_config() -> type:
    specs = sampler_specs()
    fields = [_sampler_field(key, decls) for key, decls in shared_params(specs).items()]
    fields.append(("name", str, opt("sgld", "Sampler: " + "; ".join(
        f"{s.name} ({s.summary})" for s in specs.values()) + ".", choices=tuple(specs))))
    return make_dataclass("SamplerConfig", fields, bases=(CommonSamplerConfig,), frozen=True, module=__name__)


# Flat: one field per `sampler.*` key of any sampler, so configs, run IDs and config.json keep one
# shape whatever the sampler; keys that do not apply to the chosen sampler are None.
SamplerConfig = _make_sampler_config()


# Top-level keys (not in a section).
TOP_LEVEL_HELP = {
    "seed": "Job seed: determines teacher, data, chain initialisation and sampling noise.",
    "precision": "Floating-point precision: float32 or float64 (part of the run ID).",
}


@dataclass(frozen=True)
class Config:
    target: TargetConfig = field(default_factory=TargetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    seed: int = opt(0, TOP_LEVEL_HELP["seed"], min=0, max=MAX_SEED)
    precision: str = opt("float64", TOP_LEVEL_HELP["precision"], choices=PRECISIONS)


SECTIONS: dict[str, type] = {
    "target": TargetConfig,
    "data": DataConfig,
    "posterior": PosteriorConfig,
    "sampler": SamplerConfig,
}
