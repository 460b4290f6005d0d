"""llc: estimate local learning coefficients and benchmark the samplers that estimate them."""

import jax as _jax

# float64 must be available for `precision: float64`; every array carries its own dtype,
# so float32 runs stay float32. JAX only offers this switch process-wide.
_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
