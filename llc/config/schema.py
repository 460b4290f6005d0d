"""The configuration of one job: frozen dataclasses, one per section.

Every field carries its help text and constraints in `metadata`, so validation,
`--print-config` and the documentation all read from one place. Keys are
addressed as `section.key` (e.g. `target.hidden`); `seed` and `precision` are
top-level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TARGET_KINDS = ("mlp", "dln", "quadratic")
ACTIVATIONS = ("relu", "tanh", "gelu", "identity")
CENTERS = ("erm", "teacher")
X_DISTS = ("gauss_iso", "gauss_aniso", "mixture", "lowdim_manifold", "heavy_tailed")
NOISES = ("gauss", "hetero", "student_t", "outliers")
LOSSES = ("gaussian", "mse")
PRECISIONS = ("float32", "float64")
SAMPLERS = ("sgld", "sghmc", "hmc", "nuts", "mclmc", "mclmc_adjusted")
PRECONDS = ("none", "rmsprop", "adam")
LOSS_TRACES = ("batch", "full")
FULL_LOSSES = ("data", "moments")


def opt(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with its help text and constraints (choices, min, gt, max)."""
    return field(default=default, metadata={"help": help, **constraints})


@dataclass(frozen=True)
class TargetConfig:
    kind: str = opt("mlp", "Model family: teacher-student MLP, deep linear network, or quadratic.", choices=TARGET_KINDS)
    in_dim: int = opt(4, "Input dimension (mlp, dln).", gt=0)
    out_dim: int = opt(1, "Output dimension (mlp, dln).", gt=0)
    hidden: list[int] | None = opt(
        None, "Hidden widths, e.g. [64,64]; [] is a single linear layer. Mutually exclusive with depth/target_params.", min_each=1
    )
    depth: int | None = opt(None, "Number of equal hidden layers; width inferred from target_params.", min=0)
    target_params: int | None = opt(None, "Approximate parameter count used with depth.", gt=0)
    activation: str = opt("relu", "Hidden activation (mlp).", choices=ACTIVATIONS)
    bias: bool = opt(True, "Use biases in the MLP (the DLN never has biases).")
    rank: int | None = opt(None, "dln: rank of the teacher's product matrix (default: smallest width).", min=0)
    center: str = opt("erm", "Centre w* of the localized posterior: ERM solution or the teacher.", choices=CENTERS)
    teacher_scale: float = opt(1.0, "Scale of the teacher's random weights (relative to 1/sqrt(fan_in)).", gt=0)
    dim: int = opt(20, "quadratic: number of parameters d.", gt=0)
    curvature_ratio: float = opt(1000.0, "quadratic: ratio of the largest to smallest curvature eigenvalue.", min=1)
    erm_steps: int = opt(5000, "Maximum optimizer steps when training to w*.", gt=0)
    erm_tol: float | None = opt(
        None,
        "Gradient-norm tolerance that declares ERM converged. Default sqrt(gamma)/(n beta), which bounds the "
        "first-order bias of the LLC estimate, (n beta)^2 |grad|^2 / gamma, by 1.",
        gt=0,
    )


@dataclass(frozen=True)
class DataConfig:
    n: int = opt(1000, "Number of training samples.", gt=0)
    x_dist: str = opt("gauss_iso", "Input distribution.", choices=X_DISTS)
    noise: str = opt("gauss", "Label-noise model.", choices=NOISES)
    noise_scale: float = opt(0.1, "Noise scale sigma; the likelihood is Gaussian with this sigma.", gt=0)


@dataclass(frozen=True)
class PosteriorConfig:
    beta0: float = opt(1.0, "Inverse temperature numerator: beta = beta0 / log n.", gt=0)
    gamma: float | None = opt(100.0, "Localization strength gamma (>= 0). Replaced by d / prior_radius^2 when prior_radius is set.", min=0)
    prior_radius: float | None = opt(None, "If set, gamma = d / prior_radius^2.", gt=0)
    loss: str = opt(
        "gaussian", "Per-sample loss: gaussian = ||y-f||^2/(2 sigma^2); mse = ||y-f||^2 (devinterp's convention).", choices=LOSSES
    )
    full_loss: str = opt(
        "data",
        "How the full-data loss L_n is evaluated: data = a pass over all n rows (what a real network costs); "
        "moments = exact closed form from the data's second moments, for models linear in x (dln, or mlp with "
        "hidden [] or activation identity): its cost does not grow with n.",
        choices=FULL_LOSSES,
    )


@dataclass(frozen=True)
class SamplerConfig:
    name: str = opt("sgld", "Sampler.", choices=SAMPLERS)
    chains: int = opt(4, "Number of chains, vectorised with jax.vmap.", gt=0)
    steps: int = opt(2000, "Sampling steps per chain after warm-up.", gt=0)
    warmup: int = opt(200, "Warm-up / adaptation steps per chain (discarded).", min=0)
    step_size: float | None = opt(None, "Step size h (SGLD: w += h*grad + sqrt(2h)*xi). Default per sampler and preset.", gt=0)
    step_scale: float | None = opt(
        None,
        "sgld, sghmc: step size relative to the posterior's stiffest curvature at the chain's start, used when "
        "step_size is not set: h = min(step_scale, 0.1 b / (n beta)) / lambda_max(n beta Hessian + gamma) "
        "(the cap keeps minibatch-noise heating below 5%); sghmc uses eps = sqrt(h / 10) with friction 0.1 / eps "
        "(docs/samplers.md).",
        gt=0,
    )
    warmup_step_factor: float | None = opt(
        None,
        "sgld, sghmc: run the first three quarters of the warm-up at this multiple of the sampling step size "
        "(h, or eps/alpha for sghmc), the last quarter at the sampling step. Warm-up draws are discarded, so the "
        "larger step only speeds the chains' relaxation from w* along flat directions (docs/samplers.md).",
        min=1,
    )
    thinning: int = opt(1, "Keep every k-th draw.", gt=0)
    init_jitter: float = opt(0.0, "Std of Gaussian jitter added to w* to start each chain.", min=0)
    batch_size: int | None = opt(None, "Minibatch size (SG samplers).", gt=0)
    loss_trace: str | None = opt(
        None, "SG samplers: record the minibatch loss of each kept step (batch) or the full-data loss (full).", choices=LOSS_TRACES
    )
    precond: str | None = opt(None, "sgld: diagonal preconditioner adapted during warm-up, then frozen.", choices=PRECONDS)
    precond_decay: float | None = opt(None, "sgld: decay of the running second moment (rmsprop/adam).", gt=0, max=1)
    precond_eps: float | None = opt(None, "sgld: epsilon added to sqrt of the second moment.", gt=0)
    friction: float | None = opt(None, "sghmc: friction (alpha).", gt=0)
    num_integration_steps: int | None = opt(None, "hmc / sghmc / mclmc_adjusted: integration steps per draw.", gt=0)
    target_accept: float | None = opt(None, "hmc / nuts / mclmc_adjusted: target acceptance rate for step-size adaptation.", gt=0, max=1)
    desired_energy_var: float | None = opt(None, "mclmc: desired energy variance per dimension for tuning.", gt=0)


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
    seed: int = opt(0, TOP_LEVEL_HELP["seed"], min=0)
    precision: str = opt("float64", TOP_LEVEL_HELP["precision"], choices=PRECISIONS)


SECTIONS: dict[str, type] = {
    "target": TargetConfig,
    "data": DataConfig,
    "posterior": PosteriorConfig,
    "sampler": SamplerConfig,
}
