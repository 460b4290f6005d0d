"""The process-wide JAX settings llc needs, applied where JAX work starts (not on `import llc`).

`configure_jax()` is called by every entry point that computes with JAX (`run_job`, hence every
backend's job; `build_target`, `build_posterior`, `build_sampler` for library use; the tests'
conftest; the bench scripts). It is idempotent and must run before the first array is created or
program compiled: x64 decides the dtype of everything traced afterwards, and the compilation cache
directory is read when JAX compiles its first program.
"""

from __future__ import annotations

import functools
import os


@functools.cache
def configure_jax() -> None:
    """Enable float64 and, unless turned off, the persistent compilation cache."""
    import jax

    # float64 must be available for `precision: float64`; every array carries its own dtype,
    # so float32 runs stay float32. JAX only offers this switch process-wide.
    jax.config.update("jax_enable_x64", True)

    # Persistent XLA compilation cache: halves the cold start of `llc run` (docs/benchmarks.md §5).
    # Entries are keyed by program, JAX version and backend, so they never change results.
    # An explicit JAX_COMPILATION_CACHE_DIR wins; LLC_JAX_CACHE=0 turns it off.
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR") and os.environ.get("LLC_JAX_CACHE", "1") != "0":
        cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        jax.config.update("jax_compilation_cache_dir", os.path.join(cache_root, "llc", "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
