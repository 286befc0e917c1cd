"""The analysis core: a registry of test families and one evaluation every command shares (audit, matrix, verify)."""

from provenance.analysis.base import FAMILIES, REGISTRY, VERSIONS, PairContext, TestFamily, register
from provenance.analysis.evaluate import ANALYSIS_VERSION, LATEST_VERSION, check_version, evaluate, pair_results
from provenance.analysis.plans import identity_plan, likelihood_plan, plan_probes, plan_roles

__all__ = ["ANALYSIS_VERSION", "LATEST_VERSION", "REGISTRY", "VERSIONS", "check_version", "FAMILIES", "PairContext", "TestFamily", "register", "evaluate", "pair_results",
           "plan_probes", "likelihood_plan", "identity_plan", "plan_roles"]
