"""Per-probe similarity between two models' answers: greedy-text agreement and next-token distribution overlap."""

from __future__ import annotations

import math
from typing import Sequence

from provenance.evidence import TopToken

AGREEMENT_WORDS = 6


def text_agreement(a: str, b: str, words: int = AGREEMENT_WORDS) -> float:
    """Fraction of the first `words` words of two greedy continuations that agree, as a common prefix.

    Word level (not token level) so that models with different tokenizers are comparable.
    """
    wa, wb = a.split()[:words], b.split()[:words]
    denom = max(len(wa), len(wb))
    if denom == 0:
        return 0.0  # two empty answers share nothing: stopping at once is not a fingerprint
    k = 0
    for x, y in zip(wa, wb):
        if x != y:
            break
        k += 1
    return k / denom


def _distribution(top: Sequence[TopToken]) -> dict[str, float]:
    dist: dict[str, float] = {}
    for t in top:
        if not math.isfinite(t.logprob):
            continue
        key = t.token.strip()
        dist[key] = dist.get(key, 0.0) + math.exp(t.logprob)
    total = sum(dist.values())
    return {k: v / total for k, v in dist.items()} if total > 0 else {}


def topk_similarity(a: Sequence[TopToken] | None, b: Sequence[TopToken] | None) -> float:
    """1 - Jensen-Shannon divergence (base 2) between the renormalised top-k next-token distributions.

    Always on decoded token strings with surrounding whitespace removed, so ' Paris' (BPE) and 'Paris'
    (SentencePiece) are the same outcome and every pair of models is measured on one scale. NaN when either
    distribution is missing (the caller leaves the probe out).
    """
    if not a or not b:
        return float("nan")
    p, q = _distribution(a), _distribution(b)
    if not p or not q:
        return float("nan")
    js = 0.0
    for k in set(p) | set(q):
        pk, qk = p.get(k, 0.0), q.get(k, 0.0)
        mk = (pk + qk) / 2
        if pk > 0:
            js += 0.5 * pk * math.log2(pk / mk)
        if qk > 0:
            js += 0.5 * qk * math.log2(qk / mk)
    return max(0.0, 1.0 - js)
