"""The Modal app: one function that runs a job in a container and returns its run directory.

Image: Debian slim + Python 3.12 + the project's locked dependencies (`uv sync --frozen
--no-dev` from this checkout's pyproject.toml and uv.lock; without a uv.lock, the
dependencies listed in the installed package's metadata) + JAX's CUDA 12 plugin
matching the locked jaxlib (used when the container has a GPU, ignored otherwise) +
the `llc` source itself.

The function body runs `execute(payload)` with a private runs root inside the
container and returns the files of the run directory; the driver writes them into
the local runs root (staged in `_tmp`, renamed into place), so Modal runs look exactly
like local runs. A job's own failure (an exception in `run_job`) is returned as data;
anything raised by Modal itself (timeouts, exhausted credits, image build errors) is an
infrastructure error.

Importing this module needs `modal` installed (`uv sync --extra modal`); it does not
need credentials. `run_remote_job.local(payload)` runs the body in this process.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

import modal

APP_NAME = "llc-sweep"
PYTHON_VERSION = "3.12"
DEFAULT_TIMEOUT_S = 3600
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _jaxlib_version() -> str | None:
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None


def build_image() -> modal.Image:
    image = modal.Image.debian_slim(python_version=PYTHON_VERSION)
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "uv.lock").is_file():
        image = image.uv_sync(str(PROJECT_ROOT), extra_options="--no-dev")
    else:  # installed from a wheel: the dependencies its metadata pins
        requires = [r for r in (metadata.requires("llc") or []) if "extra ==" not in r]
        image = image.uv_pip_install(*requires)
    jaxlib = _jaxlib_version()
    if jaxlib:
        image = image.uv_pip_install(f"jax-cuda12-plugin[with-cuda]=={jaxlib}", f"jax-cuda12-pjrt=={jaxlib}")
    return image.add_local_python_source("llc")


app = modal.App(APP_NAME)


@app.function(image=build_image(), timeout=DEFAULT_TIMEOUT_S)
def run_remote_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh private runs root; return its files, or the job's error."""
    from llc.executors.job import execute, materialize_sources

    root = Path(tempfile.mkdtemp(prefix="llc-runs-"))
    try:
        try:
            # a custom target's entry file travels in the payload: the container has no copy of it
            local = materialize_sources(payload, root / "_sources")
            result = execute({**local, "runs_root": str(root / "runs")})
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        run_dir = Path(result["run_dir"])
        files = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}
        return {"ok": True, "result": result, "files": files}
    finally:
        shutil.rmtree(root, ignore_errors=True)
