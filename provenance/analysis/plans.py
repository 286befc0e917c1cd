"""How many probes of each set an audit sends, and which family reads them (its role)."""

from __future__ import annotations

from typing import Sequence

from provenance.errors import InputError
from provenance.evidence import ProbePlan
from provenance.probeset import ProbeSet

POSITIONAL_ROLES = ("output", "next_token", "likelihood")  # bundles written before plans carried roles


def plan_probes(budget: int, continuation: ProbeSet, next_token: ProbeSet) -> list[ProbePlan]:
    """Half the budget to next-token probes, the rest to greedy continuations (each a prefix of its set)."""
    if budget < 2:
        raise InputError("--budget must be at least 2 probes")
    n_next = min(budget // 2, len(next_token.probes))
    return [ProbePlan(continuation, min(budget - n_next, len(continuation.probes)), "output"),
            ProbePlan(next_token, n_next, "next_token")]


# The share of the budget that becomes likelihood prompts, by analysis version. Version 3 takes half: its family has
# most of the power against sequence-level students (bench/capable_sources.py used 120 prompts), and a prompt costs
# each scorer three cheap forward passes (the reference's and two sources' answers), not a generation.
LIKELIHOOD_SHARE = {2: 5, 3: 2, 4: 2}


def likelihood_plan(budget: int, instructions: ProbeSet, version: int = 2) -> ProbePlan:
    """Sampled answers to a share of the budget's worth of instructions (each is then scored by every model)."""
    n = budget // LIKELIHOOD_SHARE.get(version, 5)
    return ProbePlan(instructions, max(4, min(n, len(instructions.probes))), "likelihood")


def identity_plan(budget: int, identity: ProbeSet) -> ProbePlan:
    """Greedy answers to an eighth of the budget's worth of identity questions (at least 10), from every model."""
    return ProbePlan(identity, max(10, min(budget // 8, len(identity.probes))), "identity")


def plan_roles(plans: Sequence[ProbePlan]) -> dict[str, ProbePlan]:
    return {(p.role or POSITIONAL_ROLES[i]): p for i, p in enumerate(plans)}


def scaled(plans: Sequence[ProbePlan], fraction: float) -> list[ProbePlan]:
    """The same plans on a prefix of each (for the budget check: what would a smaller audit have said?)."""
    return [ProbePlan(p.probe_set, max(2, int(len(p.probes) * fraction)), p.role) for p in plans]
