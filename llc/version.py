"""Code version that enters every run ID.

Bump NUMERICS_REVISION whenever a change alters the numbers a job produces
(targets, samplers, estimator); cached runs are then recomputed instead of
being silently reused. Documentation or CLI-only changes keep cached runs valid.
"""

from llc import __version__

NUMERICS_REVISION = 2


def code_version() -> str:
    return f"{__version__}+n{NUMERICS_REVISION}"
