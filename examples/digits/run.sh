#!/usr/bin/env bash
# The digits example end to end, from the repository root: train, λ̂ with SGLD at every checkpoint,
# the HMC reference at three, one figure. RUNS (default runs/digits) holds checkpoints and outputs;
# FIGURE (default assets/digits_trajectory.png) is the figure. Rerunning reuses every cached run.
set -euo pipefail
RUNS=${RUNS:-runs/digits}
FIGURE=${FIGURE:-assets/digits_trajectory.png}
uv run --extra examples python examples/digits/train.py --out "$RUNS/ckpts"
uv run --extra examples llc trajectory "$RUNS/ckpts" --config examples/digits/sgld.yaml --workers 2 \
    --runs-dir "$RUNS/runs" --out "$RUNS/sgld"
uv run --extra examples llc trajectory "$RUNS/ckpts" --config examples/digits/hmc.yaml --steps 150,600,2500 \
    --workers 2 --runs-dir "$RUNS/runs" --out "$RUNS/hmc"
uv run --extra examples python examples/digits/figure.py "$RUNS/sgld" "$RUNS/hmc" --out "$FIGURE"
