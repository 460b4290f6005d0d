"""Content-addressed target store: `<runs_root>/_targets/<target_id>/{arrays.npz, meta.json}`.

Written into a temporary directory and renamed into place, so a stored target
is complete or absent; concurrent builders of the same target are harmless.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from llc.errors import LLCError

TARGETS_DIR = "_targets"


def target_dir(runs_root: str | Path, tid: str) -> Path:
    return Path(runs_root) / TARGETS_DIR / tid


def load(runs_root: str | Path, tid: str, precision: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    path = target_dir(runs_root, tid)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("precision") != precision:
        raise LLCError(
            f"stored target {path} was built at precision {meta.get('precision')}, not {precision}; "
            "delete it or run at its precision"
        )
    with np.load(path / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    if str(arrays["w_star"].dtype) != precision:
        raise LLCError(f"stored target {path} holds {arrays['w_star'].dtype} arrays, expected {precision}")
    return arrays, meta["erm"]


def save(runs_root: str | Path, tid: str, precision: str, arrays: dict[str, np.ndarray], erm: dict[str, Any]) -> None:
    final = target_dir(runs_root, tid)
    if (final / "meta.json").is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{tid}.{uuid.uuid4().hex}"
    tmp.mkdir()  # mode 0o777 less the umask, as for any folder (mkdtemp's 0o700 hides it from collaborators)
    try:
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps({"target_id": tid, "precision": precision, "erm": erm}, indent=2))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
