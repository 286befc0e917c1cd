"""The validation study: run a lineage zoo's cases, summarise error rates and likelihood ratios, write the record."""

from provenance.study.run import StudyConfig, run_study

__all__ = ["StudyConfig", "run_study"]
