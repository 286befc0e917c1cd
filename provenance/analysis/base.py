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


@dataclass(frozen=True)
class PairContext:
    """Everything a family needs to test one suspect against one reference: evidence, seats, plans, seed."""

    evidence: Mapping[str, ModelEvidence]  # by model key (the spec as given)
    design: Design  # suspect, reference and control lineages
    plans: Mapping[str, ProbePlan]  # by role
    seed: int = 0
    n_permutations: int = 999

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

    @property
    def decides(self) -> bool:
        return self.branch != "corroboration"


FAMILIES: dict[str, TestFamily] = {}


def register(family: TestFamily) -> TestFamily:
    """Add a family; evaluation order is registration order (it fixes the order of results, never their values)."""
    if family.branch not in BRANCHES:
        raise ValueError(f"unknown branch {family.branch!r}")
    if family.name in FAMILIES:
        raise ValueError(f"test family {family.name!r} registered twice")
    FAMILIES[family.name] = family
    return family
