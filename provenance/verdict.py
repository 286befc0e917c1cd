"""Combine per-test p-values (valid under dependence) and decide: derived, distilled, independent or inconclusive."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from provenance.stats.base import TestResult

ALPHA = 0.01  # a reference is flagged when its combined (and Holm-adjusted) p-value is below this
INDEPENDENT_P = 0.05  # at or above this, with enough probes, no evidence of lineage: `independent`
DISAGREE_P = 0.5  # rule A only (no longer the default): one family below ALPHA, another above this
MIN_PROBES = 20

DECISION_RULE = (
    f"Tests are combined by Bonferroni (valid under any dependence): p = min(1, k * min p_i). Across references, "
    f"Holm's step-down adjustment. `derived` if the weight-alignment test has p < {ALPHA} (shares weights); "
    f"`distilled` if the combined behavioural p < {ALPHA} and weights are not shared or not accessible "
    f"(one family suffices: distillation need not move every family); `inconclusive` if fewer than {MIN_PROBES} "
    f"probes were used, or if {ALPHA} <= p < {INDEPENDENT_P}; otherwise `independent` (no evidence of lineage at "
    f"this power, not proof of independence)."
)


@dataclass(frozen=True)
class Decision:
    verdict: str
    p_value: float | None
    reason: str


def bonferroni(results: Sequence[TestResult]) -> float | None:
    ps = [r.p_value for r in results if r.p_value is not None]
    return min(1.0, len(ps) * min(ps)) if ps else None


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None stays None)."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])  # type: ignore[arg-type,return-value]
    m = len(idx)
    out: list[float | None] = list(pvalues)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def decide(results: Sequence[TestResult], adjusted_p: float | None, n_probes: int, disagreement: bool = False,
           alpha: float = ALPHA) -> Decision:
    """The decision rule. `disagreement=True` restores the clause dropped after the pre-registered comparison
    (docs/methods.md): one family below alpha while another is above DISAGREE_P made the verdict `inconclusive`."""
    ran = [r for r in results if r.p_value is not None]
    if not ran or adjusted_p is None:
        return Decision("inconclusive", None, "no test could run at the available access level")
    weights = next((r for r in ran if r.name == "weight_alignment"), None)
    behaviour = [r for r in ran if r.name != "weight_alignment"]
    if weights is not None and weights.p_value is not None and weights.p_value < alpha and adjusted_p < alpha:
        return Decision("derived", adjusted_p, f"weights aligned beyond every hidden-unit permutation (p={weights.p_value:.3g})")
    ps = [r.p_value for r in behaviour if r.p_value is not None]
    # Identity claims are one-sided evidence: a student that never saw identity questions has no reason to name its
    # teacher, so a quiet identity test does not contradict the other families.
    contra = [r.p_value for r in behaviour if r.p_value is not None and r.name != "identity_claims"]
    if disagreement and ps and contra and min(ps) < alpha and max(contra) > DISAGREE_P:
        return Decision("inconclusive", adjusted_p, "test families disagree (one flags the reference, another sees nothing)")
    if n_probes < MIN_PROBES:
        return Decision("inconclusive", adjusted_p, f"too few probes ({n_probes} < {MIN_PROBES})")
    if adjusted_p < alpha:
        if weights is None:
            why = "behaviour inherited from the reference; weights not compared, so derivation is not excluded"
        else:
            why = "behaviour inherited from the reference while weights are not shared"
        return Decision("distilled", adjusted_p, why)
    if adjusted_p < max(INDEPENDENT_P, alpha):
        return Decision("inconclusive", adjusted_p, f"weak evidence: below {max(INDEPENDENT_P, alpha)} but not below the {alpha} threshold")
    return Decision("independent", adjusted_p, "no evidence of lineage at the tested power (not proof of independence)")


FLAGGED = ("derived", "distilled")


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
        return (0 if e["verdict"] in FLAGGED else 1 if e["verdict"] == "inconclusive" else 2, p, -_strength(e))

    ranked = sorted(entries, key=key)
    ranking = [{"rank": i + 1, "reference": e["spec"], "verdict": e["verdict"], "p_value": e["p_value"],
                "evidence_strength": round(_strength(e), 6)} for i, e in enumerate(ranked)]
    flagged = [e for e in ranked if e["verdict"] in FLAGGED]
    unclear = [e for e in ranked if e["verdict"] == "inconclusive"]
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
                           f"reference(s): none of these (at the tested power; not proof of independence)"}
