"""The publications the test families cite, written once, and whether each was peer reviewed."""

from __future__ import annotations

NIKOLIC = ("Nikolic, Baluta, Saxena (2025), Model Provenance Testing for Large Language Models, NeurIPS 2025 "
           "(arXiv:2502.00706)")
ZHU = ("Zhu, Ahmed, Kuditipudi, Liang (2025), Independence Tests for Language Models, ICML 2025, PMLR 267 "
       "(arXiv:2502.12292)")
KIM_RUSH = "Kim & Rush (2016), Sequence-Level Knowledge Distillation, EMNLP (the training regime this test targets)"
LIN = "Lin (1991), Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory 37(1)"
MANDEL = "Mandel (1961), Non-additivity in two-way analysis of variance, JASA 56:878-888 (the rows-linear model)"

# Venues whose papers are peer reviewed; a citation naming none of them but an arXiv number is a preprint.
VENUES = ("NeurIPS", "ICML", "EMNLP", "IEEE", "JASA")


def status(citation: str) -> str:
    """What the citation itself shows about review: a named venue, or an arXiv preprint."""
    if any(v in citation for v in VENUES):
        return "peer-reviewed venue"
    if "arxiv" in citation.lower():
        return "preprint (arXiv); peer review not known"
    return "venue not stated"
