"""Statistical tests on collected evidence; each returns a frozen TestResult."""

from provenance.stats.base import ConfidenceInterval, TestResult
from provenance.stats.behaviour import Panel, next_token_divergence, output_agreement
from provenance.stats.nulls import Design
from provenance.stats.weights import weight_permutation_test

__all__ = ["ConfidenceInterval", "TestResult", "Panel", "Design", "output_agreement", "next_token_divergence",
           "weight_permutation_test"]
