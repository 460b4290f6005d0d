"""Studies: a study YAML file and/or JSON grids -> a list of jobs (problem x sampler x seed)."""

from llc.study.jobs import Job, expand_jobs, is_done, job_key, sweep_id
from llc.study.spec import (
    ProblemSpec,
    SamplerSpec,
    Study,
    build_study,
    load_study_file,
    parse_grid,
    parse_seeds,
)

__all__ = [
    "Job",
    "ProblemSpec",
    "SamplerSpec",
    "Study",
    "build_study",
    "expand_jobs",
    "is_done",
    "job_key",
    "load_study_file",
    "parse_grid",
    "parse_seeds",
    "sweep_id",
]
