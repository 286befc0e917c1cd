"""Combine per-test p-values (valid under dependence) and decide: derived, distilled, independent or inconclusive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from provenance.stats.base import TestResult

ALPHA = 0.01  # a reference is flagged when its combined (and Holm-adjusted) p-value is below this
INDEPENDENT_P = 0.05  # at or above this, with enough probes, no evidence of lineage: `independent`
DISAGREE_P = 0.5  # one family below ALPHA while another is above this: the families disagree
MIN_PROBES = 20

DECISION_RULE = (
    f"Tests are combined by Bonferroni (valid under any dependence): p = min(1, k * min p_i). Across references, "
    f"Holm's step-down adjustment. `derived` if the weight-alignment test has p < {ALPHA} (shares weights); "
    f"`distilled` if the combined behavioural p < {ALPHA} and weights are not shared or not accessible; "
    f"`inconclusive` if one family has p < {ALPHA} while another has p > {DISAGREE_P}, if fewer than {MIN_PROBES} "
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


def decide(results: Sequence[TestResult], adjusted_p: float | None, n_probes: int) -> Decision:
    ran = [r for r in results if r.p_value is not None]
    if not ran or adjusted_p is None:
        return Decision("inconclusive", None, "no test could run at the available access level")
    weights = next((r for r in ran if r.name == "weight_alignment"), None)
    behaviour = [r for r in ran if r.name != "weight_alignment"]
    if weights is not None and weights.p_value is not None and weights.p_value < ALPHA and adjusted_p < ALPHA:
        return Decision("derived", adjusted_p, f"weights aligned beyond every hidden-unit permutation (p={weights.p_value:.3g})")
    ps = [r.p_value for r in behaviour if r.p_value is not None]
    if ps and min(ps) < ALPHA and max(ps) > DISAGREE_P:
        return Decision("inconclusive", adjusted_p, "test families disagree (one flags the reference, another sees nothing)")
    if n_probes < MIN_PROBES:
        return Decision("inconclusive", adjusted_p, f"too few probes ({n_probes} < {MIN_PROBES})")
    if adjusted_p < ALPHA:
        if weights is None:
            why = "behaviour inherited from the reference; weights not compared, so derivation is not excluded"
        else:
            why = "behaviour inherited from the reference while weights are not shared"
        return Decision("distilled", adjusted_p, why)
    if adjusted_p < INDEPENDENT_P:
        return Decision("inconclusive", adjusted_p, "weak evidence: below 0.05 but not below the 0.01 threshold")
    return Decision("independent", adjusted_p, "no evidence of lineage at the tested power (not proof of independence)")
