"""Combine per-family p-values (valid under any dependence) and decide: derived, distilled, no_evidence, inconclusive."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from provenance.stats.base import TestResult

ALPHA = 0.01  # a reference is flagged when its combined (Holm-adjusted) p-value is below this
NO_EVIDENCE_P = 0.05  # at or above this (before any sequential price), with enough probes: `no_evidence`
MIN_PROBES = 20

DERIVED, DISTILLED, NO_EVIDENCE, INCONCLUSIVE = "derived", "distilled", "no_evidence", "inconclusive"
VERDICTS = (DERIVED, DISTILLED, INCONCLUSIVE, NO_EVIDENCE)
FLAGGED = (DERIVED, DISTILLED)

DECISION_RULE = (
    f"Two branches: the behavioural families that may decide (output agreement, next-token similarity, reference "
    f"likelihood) combined by Bonferroni over those that ran, and the weight-alignment permutation test; the two "
    f"branches combined by Bonferroni (p = min(1, b * min branch p)). Identity claims corroborate and never count. "
    f"Across references, Holm's step-down adjustment; a sequential audit multiplies by the price of its look. "
    f"`derived` if the adjusted p < {ALPHA} and the weight branch carries it; `distilled` if the behavioural branch "
    f"does, unless a placebo (a control lineage put in the suspect's seat) would be flagged or the controls are not of "
    f"the suspect's kind (competence on neutral text, or general agreement with the controls, outside theirs): then "
    f"`inconclusive`, as with fewer than {MIN_PROBES} probes. `inconclusive` also if {ALPHA} <= p < {NO_EVIDENCE_P}; "
    f"otherwise `no_evidence`: no evidence of lineage at the tested power, never a finding of independence."
)


@dataclass(frozen=True)
class Combined:
    """The branch p-values of one suspect/reference pair and their Bonferroni combination."""

    p_value: float | None
    behaviour_p: float | None
    weights_p: float | None
    behaviour_families: tuple[str, ...]
    carried_by: str | None  # "weights" or "behaviour": the branch with the smaller p

    def to_json(self) -> dict[str, Any]:
        return {"p_value": self.p_value, "behaviour_p": self.behaviour_p, "weights_p": self.weights_p,
                "behaviour_families": list(self.behaviour_families), "carried_by": self.carried_by,
                "method": "Bonferroni within the behavioural branch, then over the branches that ran"}


def bonferroni(pvalues: Sequence[float | None]) -> float | None:
    ps = [p for p in pvalues if p is not None]
    return min(1.0, len(ps) * min(ps)) if ps else None


def combine(results: Sequence[TestResult], deciding: Sequence[str], weights: str = "weight_alignment") -> Combined:
    """Bonferroni within the deciding behavioural families, then over the behaviour and weights branches."""
    behaviour = [r for r in results if r.name in deciding and r.p_value is not None]
    w = next((r.p_value for r in results if r.name == weights and r.p_value is not None), None)
    pb = bonferroni([r.p_value for r in behaviour])
    p = bonferroni([pb, w])
    carried = None if p is None else ("weights" if w is not None and (pb is None or w <= pb) else "behaviour")
    return Combined(p, pb, w, tuple(r.name for r in behaviour), carried)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None stays None)."""
    known = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    known.sort(key=lambda ip: ip[1])
    out: list[float | None] = list(pvalues)
    running = 0.0
    for rank, (i, p) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Decision:
    verdict: str
    p_value: float | None
    reason: str


def decide(combined: Combined, adjusted_p: float | None, unscaled_p: float | None, n_probes: int,
           placebo_flagged: Sequence[str] = (), alpha: float = ALPHA, kind_mismatch: str | None = None) -> Decision:
    """The decision rule (DECISION_RULE). `adjusted_p` includes any sequential price; `unscaled_p` does not, and it
    alone decides `no_evidence` (a sequential audit's price must not turn weak evidence into a finding of nothing)."""
    if combined.p_value is None or adjusted_p is None:
        return Decision(INCONCLUSIVE, None, "no test that may decide could run at the available access and controls")
    if n_probes < MIN_PROBES:
        return Decision(INCONCLUSIVE, adjusted_p, f"too few probes ({n_probes} < {MIN_PROBES})")
    if adjusted_p < alpha:
        if combined.carried_by == "weights":
            # The permutation test's null is exact and needs no controls: placebos and kind checks, which guard the
            # behavioural null, do not apply to it.
            return Decision(DERIVED, adjusted_p, f"weights aligned beyond every hidden-unit permutation "
                                                 f"(p={combined.weights_p:.3g}): the suspect shares the reference's weights")
        if placebo_flagged:
            return Decision(INCONCLUSIVE, adjusted_p,
                            f"the suspect would be flagged (p={adjusted_p:.3g}), but so would the placebo(s) "
                            f"{', '.join(placebo_flagged)}: the null is misspecified for these controls")
        if kind_mismatch:
            return Decision(INCONCLUSIVE, adjusted_p, f"the suspect would be flagged (p={adjusted_p:.3g}), but "
                                                      f"{kind_mismatch}")
        why = "behaviour inherited from the reference beyond what independent lineages of the controls show"
        if combined.weights_p is None:
            why += "; weights not compared, so derivation is not excluded"
        else:
            why += "; weights were compared and showed no alignment beyond chance"
        return Decision(DISTILLED, adjusted_p, why)
    ref_p = unscaled_p if unscaled_p is not None else adjusted_p
    if ref_p < max(NO_EVIDENCE_P, alpha):
        return Decision(INCONCLUSIVE, adjusted_p, f"weak evidence: below {NO_EVIDENCE_P} but not below the {alpha} "
                                                  f"threshold")
    return Decision(NO_EVIDENCE, adjusted_p, "no evidence of lineage at the tested power (not a finding of independence)")


def _strength(entry: dict[str, Any]) -> float:
    # Tie-break between references with equal adjusted p (e.g. both at a permutation test's floor): the summed
    # evidence of every family, -sum log10 p. Only orders references already decided on; never makes a verdict.
    return float(sum(-math.log10(max(t["p_value"], 1e-300)) for t in entry["tests"] if t.get("p_value") is not None))


def attribute(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Which reference, if any, the suspect descends from; "none" is a first-class answer.

    Family-wise error across references is already controlled (Holm), so a flagged reference is evidence about that
    reference alone. The attribution is the flagged reference with the smallest adjusted p (strongest summed evidence
    on ties). Several flagged references are reported as such: they may themselves be related to one another.
    """
    def key(e: dict[str, Any]) -> tuple[int, float, float]:
        p = e["p_value"] if e["p_value"] is not None else 1.0
        return (0 if e["verdict"] in FLAGGED else 1 if e["verdict"] == INCONCLUSIVE else 2, p, -_strength(e))

    ranked = sorted(entries, key=key)
    ranking = [{"rank": i + 1, "reference": e["spec"], "verdict": e["verdict"], "p_value": e["p_value"],
                "evidence_strength": round(_strength(e), 6)} for i, e in enumerate(ranked)]
    flagged = [e for e in ranked if e["verdict"] in FLAGGED]
    unclear = [e for e in ranked if e["verdict"] == INCONCLUSIVE]
    if flagged:
        top = flagged[0]
        others = [e["spec"] for e in flagged[1:]]
        why = (f"{top['spec']} is flagged ({top['verdict']}, adjusted p = {top['p_value']:.3g}) and ranks first by "
               f"adjusted p-value")
        if others:
            why += (f"; also flagged: {', '.join(others)} (these references may be related to one another, or the suspect "
                    f"may draw on several)")
        return {"attribution": top["spec"], "status": "attributed", "ranking": ranking, "explanation": why}
    if unclear:
        why = (f"no reference is flagged at alpha = {ALPHA}; evidence about {', '.join(e['spec'] for e in unclear)} is "
               f"inconclusive, so 'none of these' is not established either")
        return {"attribution": "none", "status": "inconclusive", "ranking": ranking, "explanation": why}
    return {"attribution": "none", "status": "none", "ranking": ranking,
            "explanation": f"no reference is flagged at alpha = {ALPHA} after Holm adjustment across {len(entries)} "
                           f"reference(s): none of these (at the tested power; not a finding of independence)"}
