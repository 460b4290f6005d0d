"""llc: estimate local learning coefficients and benchmark the samplers that estimate them."""

import os as _os

import jax as _jax

# float64 must be available for `precision: float64`; every array carries its own dtype,
# so float32 runs stay float32. JAX only offers this switch process-wide.
_jax.config.update("jax_enable_x64", True)

# Persistent XLA compilation cache: halves the cold start of `llc run` (docs/benchmarks.md §5).
# Entries are keyed by program, JAX version and backend, so they never change results.
# An explicit JAX_COMPILATION_CACHE_DIR wins; LLC_JAX_CACHE=0 turns it off.
if not _os.environ.get("JAX_COMPILATION_CACHE_DIR") and _os.environ.get("LLC_JAX_CACHE", "1") != "0":
    _cache_root = _os.environ.get("XDG_CACHE_HOME") or _os.path.expanduser("~/.cache")
    _jax.config.update("jax_compilation_cache_dir", _os.path.join(_cache_root, "llc", "jax"))
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

__version__ = "0.1.0"
