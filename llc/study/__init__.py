"""Studies: a study YAML file and/or JSON grids -> a list of jobs (problem x sampler x seed)."""

from llc.study.jobs import Job, expand_jobs, is_done, job_key, sweep_id
from llc.study.spec import (
    ProblemSpec,
    ReferenceSpec,
    SamplerSpec,
    Study,
    build_study,
    load_study_file,
    parse_grid,
    parse_reference,
    parse_seeds,
    select_problems,
)

__all__ = [
    "Job",
    "ProblemSpec",
    "ReferenceSpec",
    "SamplerSpec",
    "Study",
    "build_study",
    "expand_jobs",
    "is_done",
    "job_key",
    "load_study_file",
    "parse_grid",
    "parse_reference",
    "parse_seeds",
    "select_problems",
    "sweep_id",
]
