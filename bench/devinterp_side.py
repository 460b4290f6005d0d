"""devinterp's side of bench/devinterp_compare.py. Runs in bench/.venv-devinterp (Python 3.11,
torch 2.13.0 CPU, devinterp), never in llc's environment.

    bench/.venv-devinterp/bin/python bench/devinterp_side.py WORKDIR

WORKDIR (written by devinterp_compare.py) holds x.npy, y.npy (float32, the data llc generated),
teacher.npz (the teacher in PyTorch layout: layer{i}.weight (out, in), layer{i}.bias) and
spec.json (nbeta, lr = devinterp ε, localization = γ, batch_size, chains, steps, seed,
torch_threads, ...).

devinterp 2.x samples language models: its `sample()` takes a HuggingFace Dataset with an
"input_ids" column and a per-token loss `loss_fn(model, input_ids) -> (batch, seq-1)`. A regression
data set is fed through that interface by storing each example's *index* as a length-2 sequence
[i, i] (so seq-1 = 1 "token") and looking the example up in loss_fn:
loss = ||y_i - f(x_i)||² of shape (batch, 1). Everything else (SGLD optimizer, localization,
nβ, the DataLoader, the zarr writer, compute_llc) is devinterp's own code path,
`devinterp.slt.llc.llc(...)`.

Writes WORKDIR/devinterp_result.json and WORKDIR/devinterp_loss_trace.npy (chains, steps): the
per-step minibatch loss devinterp recorded (the same quantity llc records with loss_trace=batch).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore")


def main(workdir: Path) -> None:
    spec = json.loads((workdir / "spec.json").read_text())
    import importlib.metadata as md

    import datasets
    import devinterp.slt.sampling as dsampling
    from devinterp.slt.llc import llc as devinterp_llc

    torch.set_num_threads(int(spec.get("torch_threads", 1)))
    torch.manual_seed(spec["seed"])
    x = torch.from_numpy(np.load(workdir / "x.npy"))
    y = torch.from_numpy(np.load(workdir / "y.npy"))
    n, in_dim = x.shape
    teacher = np.load(workdir / "teacher.npz")
    widths = spec["widths"]  # [in, h1, ..., out]

    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(teacher[f"layer{i}.weight"]))
            lin.bias.copy_(torch.from_numpy(teacher[f"layer{i}.bias"]))
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)

    with torch.no_grad():
        r = y - model(x)
        full_loss_at_teacher = float((r * r).sum(-1).mean())

    def loss_fn(model: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        idx = input_ids[:, 0]
        res = y[idx] - model(x[idx])
        return (res * res).sum(-1, keepdim=True)  # (batch, seq-1 = 1)

    idx = np.arange(n, dtype=np.int64)
    dataset = datasets.Dataset.from_dict({"input_ids": np.stack([idx, idx], axis=1)}).with_format("torch")

    # Time the SGLD chains themselves (sample_single_chain, one call per chain) apart from the
    # whole llc() call (which also builds the zarr store, computes init_loss, and compute_llc).
    chain_seconds: list[float] = []
    original = dsampling.sample_single_chain

    def timed_chain(*args, **kwargs):
        t0 = time.perf_counter()
        out = original(*args, **kwargs)
        chain_seconds.append(time.perf_counter() - t0)
        return out

    dsampling.sample_single_chain = timed_chain

    batch = spec["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = devinterp_llc(
            model,
            dataset,
            observables={},
            lr=spec["lr"],
            n_beta=spec["nbeta"],
            loss_fn=loss_fn,
            num_chains=spec["chains"],
            num_draws=spec["steps"],
            batch_size=batch,
            num_burnin_steps=0,
            num_steps_bw_draws=1,
            # init_loss over (almost) the whole data set, n // b batches: devinterp's default of
            # 32 batches would make its L0 a noisy minibatch estimate.
            num_init_loss_batches=n // batch,
            localization=spec["gamma"],
            sampling_method="sgmcmc_sgld",
            init_seed=spec["seed"],
            device="cpu",
            output_path=str(Path(tmp) / "samples.zarr"),
        )
        call_s = time.perf_counter() - t0
        loss_trace = np.asarray(result.loss_trace.values, dtype=np.float64)  # (chain, step)
        out = {
            "call_s": call_s,
            "sampling_s": float(sum(chain_seconds)),
            "chain_s": chain_seconds,
            "llc_mean": float(result.llc_mean.values),
            "llc_std": float(result.llc_std.values),
            "llc_per_chain": [float(v) for v in result.llc_per_chain.values],
            "init_loss": float(result.init_loss.values),
            "full_loss_at_teacher": full_loss_at_teacher,
            "n_params": int(sum(p.numel() for p in model.parameters())),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "devinterp": md.version("devinterp"),
            "api": "devinterp.slt.llc.llc (sampling_method='sgmcmc_sgld')",
        }
    np.save(workdir / "devinterp_loss_trace.npy", loss_trace)
    (workdir / "devinterp_result.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
