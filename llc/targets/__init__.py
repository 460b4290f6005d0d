"""Targets: build (or load from the content-addressed store) the problem a job samples around.

`build_target(cfg, runs_root)` returns a `Target`: data, model, the centre w*
and its ERM record. The same problem (target + data + seed + precision) is
built once and reused by every job that needs it.
"""

from llc.targets.build import Target, build_target, lambda_true, problem_keys
from llc.targets.truth import dln_lambda, quadratic_lambda_finite

__all__ = ["Target", "build_target", "dln_lambda", "lambda_true", "problem_keys", "quadratic_lambda_finite"]
