"""SHA-1 of every array of 52 target builds (x, y, teacher, w*), to check that a change keeps targets bit-identical.

    uv run python bench/target_bits.py --out before.json     # on the old code
    uv run python bench/target_bits.py --compare before.json # on the new code: lists every target that differs

The builds cover relu, tanh and gelu MLPs × the five input distributions, the other noise models, float32
on every input distribution, a two-hidden-layer net and a DLN, each on seeds 0 and 1. A target whose ERM
fails records its error message instead (that message holds the gradient norm, so it is compared too).
Any difference means every run ID on such targets would need a `NUMERICS_REVISION` bump (llc/version.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from llc.config.resolve import resolve_config
from llc.errors import LLCError
from llc.targets import build_target

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

DISTS = ["gauss_iso", "gauss_aniso", "mixture", "lowdim_manifold", "heavy_tailed"]


def cases() -> list[list[str]]:
    out = [[f"target.activation={act}", f"data.x_dist={dist}"] for act in ("relu", "tanh", "gelu") for dist in DISTS]
    out += [[f"data.noise={noise}"] for noise in ("hetero", "student_t", "outliers")]
    out += [["precision=float32", f"data.x_dist={dist}"] for dist in DISTS]
    out += [["precision=float32", "target.activation=tanh"], ["target.hidden=[8,8]", "target.activation=gelu"],
            ["target.kind=dln", "target.hidden=[5,3]", "target.in_dim=5", "target.out_dim=5", "target.rank=1",
             "data.n=2000"]]
    return out


def fingerprints() -> dict[str, str]:
    result = {}
    for overrides in cases():
        for seed in (0, 1):
            name = " ".join([*overrides, f"seed={seed}"])
            try:
                target = build_target(resolve_config("quick", [*overrides, f"seed={seed}"]), None)
            except LLCError as exc:
                result[name] = f"error: {exc}"
                continue
            digest = hashlib.sha1()
            for array in (target.x, target.y, target.w_teacher, target.w_star):
                digest.update(np.asarray(array).tobytes())
            result[name] = digest.hexdigest()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the fingerprints to this JSON file")
    parser.add_argument("--compare", help="compare with fingerprints written by --out; exit 1 if any differ")
    args = parser.parse_args()
    prints = fingerprints()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(prints, fh, indent=1)
    differ = []
    if args.compare:
        with open(args.compare) as fh:
            old = json.load(fh)
        differ = sorted(k for k in prints.keys() | old.keys() if prints.get(k) != old.get(k))
    C.emit({"benchmark": "target_bits", "targets": len(prints), "differ": differ})
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
