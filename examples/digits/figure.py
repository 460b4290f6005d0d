"""One figure from the SGLD and HMC trajectories of the digits example (llc.trajectory.plot_trajectory).

    uv run --extra examples python examples/digits/figure.py runs/digits/sgld runs/digits/hmc \
        --out assets/digits_trajectory.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from llc.trajectory import CSV_NAME, plot_trajectory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="--out folders of llc trajectory")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for folder in args.folders:
        with (folder / CSV_NAME).open(newline="") as fh:
            rows.extend(csv.DictReader(fh))
    n = rows[0]["n_data"]
    d = rows[0]["n_params"]
    title = f"digits MLP 64-16-10 ({d} parameters, n = {n}): λ̂ over training"
    plot_trajectory(rows, args.out, title=title, symlog=True, logx=True)
    print(args.out)


if __name__ == "__main__":
    main()
