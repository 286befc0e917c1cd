"""Family 4: identity claims: does the suspect call itself by the reference's names more often than every control?"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Mapping, Sequence

from scipy import stats as sps

from provenance.models.base import Completion
from provenance.stats.base import ConfidenceInterval, TestResult

NAME = "identity_claims"
REFERENCES = (
    "Fisher (1935), The logic of inductive experiments, J. R. Stat. Soc. 98(1) (the exact test)",
    "Berger (1982), Multiparameter hypothesis testing and acceptance sampling, Technometrics 24(4) (intersection-union)",
    "Nikolic, Carlini, Tramer et al. (2025), Model Provenance Testing for Large Language Models, arXiv:2502.00706",
)
MIN_SHARE = 0.2  # a term is one of the reference's identity markers when it names itself so in >= 20% of its answers
MIN_ANSWERS = 3
# Capitalised words that any assistant uses about itself; fixed in advance, never learned from the controls (choosing
# markers with the controls' answers would bias the comparison against them).
GENERIC = frozenset("""
i i'm im as ai the hello hi hey my what yes no sure thank thanks it this that how can here in of is a an and or but
assistant language model models large llm chatbot artificial intelligence english please sorry note however also
you your we our they there their let me today who which when where why one some any many its it's am are be
""".split())
_TERM = re.compile(r"[A-Z][\w\-.]*[\w]|[A-Z]{2,}")


def identity_terms(answers: Sequence[str]) -> list[str]:
    """Names the reference gives itself: capitalised terms in at least MIN_SHARE of its answers, minus GENERIC."""
    counts: Counter[str] = Counter()
    for text in answers:
        counts.update({t for t in _TERM.findall(text) if t.lower() not in GENERIC and len(t) >= 3})
    need = max(MIN_ANSWERS, math.ceil(MIN_SHARE * len(answers)))
    return sorted(t for t, c in counts.items() if c >= need)


def claims(text: str, terms: Sequence[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text, flags=re.IGNORECASE) for t in terms)


def identity_claims(answers: Mapping[str, Mapping[str, Completion]], probe_ids: Sequence[str], suspect: str,
                    reference: str, controls: Sequence[str]) -> TestResult:
    """One-sided Fisher exact test of the suspect's claim rate against each control's; p = the largest of them.

    The reference's identity markers are read from its own answers only. A probe counts as a claim when the answer
    contains a marker. H0: the suspect claims the reference's identity no more often than some control does; the
    intersection-union p (max over controls) needs the suspect to exceed every control, so one control that also
    names the reference (a shared maker, say) keeps the test quiet. The absence of claims is not evidence against
    lineage: a student trained on other prompts never learns the teacher's name.
    """
    ctrls = [c for c in controls if c in answers]
    if not ctrls:
        return TestResult.skip(NAME, "needs at least one control model")
    ref_text = [answers[reference][p].text for p in probe_ids]
    terms = identity_terms(ref_text)
    if not terms:
        return TestResult.skip(NAME, f"the reference names no consistent identity (no term in {MIN_SHARE:.0%} of its "
                                     f"{len(probe_ids)} answers)")
    n = len(probe_ids)
    hit = {m: [claims(answers[m][p].text, terms) for p in probe_ids] for m in [suspect, *ctrls]}
    k = {m: sum(v) for m, v in hit.items()}
    per_control = {c: float(sps.fisher_exact([[k[suspect], n - k[suspect]], [k[c], n - k[c]]],
                                             alternative="greater").pvalue) for c in ctrls}
    p = max(per_control.values())
    worst = max(ctrls, key=lambda c: k[c])
    # Agresti-Caffo interval for the difference in claim rates against the control that claims most.
    p1, p2 = (k[suspect] + 1) / (n + 2), (k[worst] + 1) / (n + 2)
    se = math.sqrt(p1 * (1 - p1) / (n + 2) + p2 * (1 - p2) / (n + 2))
    diff = k[suspect] / n - k[worst] / n
    exhibits = [pid for pid, s in zip(probe_ids, hit[suspect]) if s and not any(hit[c][probe_ids.index(pid)] for c in ctrls)]
    return TestResult(
        name=NAME,
        statistic=k[suspect] / n,
        p_value=p,
        n=n,
        null="the suspect names the reference's identity no more often than each control (one-sided Fisher exact "
             "test per control; intersection-union p = the largest)",
        effect=diff,
        effect_ci=ConfidenceInterval(p1 - p2 - 1.96 * se, p1 - p2 + 1.96 * se),
        details={"identity_terms": terms, "claims": k, "n": n, "per_control_p": per_control,
                 "quotes": {pid: answers[suspect][pid].text for pid in exhibits[:10]},
                 "scale": "share of identity answers that use the reference's self-descriptions"},
        top_probes=tuple(exhibits[:5]),
        references=REFERENCES,
    )
