"""llc: estimate local learning coefficients and benchmark the samplers that estimate them.

Importing llc imports no JAX: resolving a config, computing run IDs and finding a finished run
stay cheap. Process-wide JAX settings (float64, compilation cache) are applied where JAX work
starts, by `llc.jax_setup.configure_jax()`.
"""

__version__ = "0.1.0"
