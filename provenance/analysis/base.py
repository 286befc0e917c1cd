"""What a test family is (name, probe role, access it needs, whether it may decide) and the registry of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from provenance.evidence import ModelEvidence, ProbePlan
from provenance.stats.base import TestResult
from provenance.stats.nulls import Design

BRANCHES = ("behaviour", "weights", "corroboration")
COMMANDS = frozenset({"audit", "attribute", "matrix"})
# Analysis versions this release computes. A bundle records its version and `verify` recomputes it with that version's
# families; 1 (pairwise nulls, bundles before 2026-11-29) needs the release that wrote it.
VERSIONS = frozenset({2, 3, 4})
# The version new audits use unless told otherwise: the one the validation study measured (3 and 4 are candidates
# until a study of each is recorded, provenance/study/records/). 4 is 3 plus the outside family for suspects that give
# text only (stats/outside_likelihood.py).
DEFAULT_VERSION = 2


@dataclass(frozen=True)
class PairContext:
    """Everything a family needs to test one suspect against one reference: evidence, seats, plans, seed."""

    evidence: Mapping[str, ModelEvidence]  # by model key (the spec as given)
    design: Design  # suspect, reference and control lineages
    plans: Mapping[str, ProbePlan]  # by role
    seed: int = 0
    n_permutations: int = 999
    # Comparison sources (analysis v3): capable models independent of the reference that sampled the likelihood plan;
    # the suspect and the controls score their answers beside the reference's (v4: and they, with the reference, score
    # the suspect's and the controls' answers). Never the suspect or the reference; a control may be one (its
    # lineage's unit then never scores its answers).
    sources: tuple[str, ...] = ()
    # The audited suspect's access levels, kept when a placebo puts a control in its seat, so a family that depends
    # on the suspect's access (v4's outside family) runs in each placebo as it ran for the suspect. None: the seat's.
    access: frozenset[str] | None = None

    def suspect_access(self) -> frozenset[str]:
        return self.access if self.access is not None else self.evidence[self.design.suspect].capabilities

    def rng(self, family: str) -> np.random.Generator:
        """One generator per family and pair, from the seed and the two models' fingerprints (never shared state,
        so a family's p-value does not depend on which other families or references ran before it)."""
        s, r = (self.evidence[k].model.fingerprint for k in (self.design.suspect, self.design.reference))
        digest = hashlib.sha256(f"{family}|{s}|{r}".encode()).digest()
        return np.random.default_rng([self.seed, int.from_bytes(digest[:8], "big")])


@dataclass(frozen=True)
class TestFamily:
    """A registered test family. `run` returns a TestResult (skipped, with the reason, when it cannot run)."""

    __test__ = False  # not a pytest test class

    name: str
    run: Callable[[PairContext], TestResult]
    branch: str  # "behaviour" (may decide, Bonferroni within), "weights" (may decide: derived), "corroboration"
    role: str | None  # the probe plan it reads, or None (weights)
    requires: str  # the access level it needs from the suspect ("text", "top_logprobs", "logits", "weights")
    description: str
    placebo: bool = True  # run with a control lineage in the suspect's seat (behavioural families)
    commands: frozenset[str] = field(default=COMMANDS)  # where it runs; the report names the others
    references: tuple[str, ...] = ()  # the published methods it follows (the report's "Scientific basis")
    deviations: str = ""  # how it departs from those methods (the report lists it beside them)
    versions: frozenset[int] = VERSIONS  # the analysis versions that run it

    @property
    def decides(self) -> bool:
        return self.branch != "corroboration"


# One registry per analysis version, each in registration order. FAMILIES is the default version's: what the report
# lists as its scientific basis (report/render.py). A family of another version only is not in it, so adding one
# changes no report of the default version (whose rendering `verify` compares byte for byte).
REGISTRY: dict[int, dict[str, TestFamily]] = {v: {} for v in sorted(VERSIONS)}
FAMILIES: dict[str, TestFamily] = REGISTRY[DEFAULT_VERSION]


def register(family: TestFamily) -> TestFamily:
    """Add a family; evaluation order is registration order (it fixes the order of results, never their values)."""
    if family.branch not in BRANCHES:
        raise ValueError(f"unknown branch {family.branch!r}")
    if any(family.name in fams for fams in REGISTRY.values()):
        raise ValueError(f"test family {family.name!r} registered twice")
    if not family.versions or not family.versions <= VERSIONS:
        raise ValueError(f"test family {family.name!r}: versions {sorted(family.versions)} not among {sorted(VERSIONS)}")
    for v in sorted(family.versions):
        REGISTRY[v][family.name] = family
    return family
