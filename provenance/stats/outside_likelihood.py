"""Family of analysis v4 for text-only suspects: capable scorers score the suspect's sampled answers (the transpose)."""

from __future__ import annotations

from typing import Collection, Mapping, Sequence

import numpy as np

from provenance.stats.base import TestResult
from provenance.stats.capable_likelihood import Wording, tetrad_test
from provenance.stats.citations import KIM_RUSH, NIKOLIC

NAME = "outside_likelihood"
REFERENCES = (
    KIM_RUSH,
    NIKOLIC,
)
OUTSIDE = Wording(
    NAME, "the suspect's sampled answers were not scored by {missing}",
    "how much more likely the reference finds the suspect's sampled answers than {sources} capable independent "
    "model(s) find them (mean of admissible scorer x answerer tetrads, nats per byte), against the same of each of "
    "{lineages} control lineages' answers put in the suspect's seat (no model scores its own lineage's answers); "
    "Student-t prediction test with the spread between lineages plus prompt error, df = {df}",
    "tetrads, capable scorers (outside)", units="whose answers every scorer scored")


def applies(access: Collection[str]) -> bool:
    """Whether the outside family runs for a suspect with these access levels: only without log-likelihoods (with
    them, capable_likelihood asks the same question from the inside, with more power). The one rule `gather` (which
    then computes the scores) and the family (which then reads them) both follow."""
    return "logits" not in {str(getattr(a, "value", a)) for a in access}


def outside_test(scores: Mapping[str, Mapping[str, Sequence[float]]], suspect: str, reference: str,
                 sources: Sequence[str], units: Mapping[str, Sequence[str]], source_unit: Mapping[str, str],
                 probe_ids: Sequence[str] | None = None, excluded: Sequence[str] = ()) -> TestResult:
    """Does the reference find the suspect's sampled text unusually likely, beyond what capable independent models
    find, more than for the controls' text? For a suspect that returns text only (no log-likelihoods).

    `scores[scorer][answerer]`: per-byte log-likelihoods, per prompt, that `scorer` (the reference or a comparison
    source, local models with full access) gives `answerer`'s sampled answer (the suspect's or a control's). Per
    prompt, the mean of the tetrads x(R, S) - x(j, S) - x(R, i) + x(j, i) over sources j and control units i, leaving
    out (j, i) when i is of j's lineage (a teacher scoring its students' text): `capable_likelihood.tetrad_test` on
    the transposed table, with each control unit in the suspect's seat as the null. A student trained on R's outputs
    writes text R finds likely; an additive table (scorer fluency plus answer quality) gives every tetrad mean zero,
    so a suspect that is merely more fluent than the controls is not favoured (bench/capable_outside.py).
    """
    table: dict[str, dict[str, Sequence[float]]] = {}
    for scorer, row in scores.items():
        for answerer, vals in row.items():
            table.setdefault(answerer, {})[scorer] = np.asarray(vals, dtype=float)
    return tetrad_test(table, suspect, reference, sources, units, source_unit, probe_ids, excluded, wording=OUTSIDE)
