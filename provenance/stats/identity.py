"""Family 4: identity claims: does the suspect call itself by the reference's names more than its kind does?

Corroboration only: a model trained on web text may name a famous assistant without descending from it, and claim
rates vary from model to model, so this family never flags a suspect on its own (see analysis/families.py).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Mapping, Sequence

import numpy as np

from provenance.evidence import Completion
from provenance.stats.base import TestResult
from provenance.stats.citations import NIKOLIC
from provenance.stats.nulls import MIN_UNITS, Design, by_lineage, logit_affinity, prediction_test

NAME = "identity_claims"
REFERENCES = (
    NIKOLIC,
)
MIN_SHARE = 0.2  # a learned marker must appear in >= 20% of the reference's identity answers
MIN_ANSWERS = 3  # ... and in at least this many of them
# A name-like term: CamelCase or an inner capital (SmolLM, OpenAI), a capitalised word with a digit (Qwen2),
# or an all-capital acronym of 3+ letters. Sentence-initial ordinary words ("Whether", "Sure") are not names.
_NAME_LIKE = re.compile(r"\b(?:[A-Z][a-z0-9]*[A-Z0-9][\w\-.]*\w|[A-Z][a-z]+\d[\w\-.]*|[A-Z]{3,})\b")
# Capitalised terms any assistant uses about itself or its answers; never identity markers.
GENERIC = frozenset({"AI", "LLM", "GPT", "API", "USA", "FAQ", "URL", "HTML", "JSON", "NLP", "OK"})


def learned_markers(answers: Sequence[str]) -> list[str]:
    """Name-like terms the reference gives itself in at least MIN_SHARE (and MIN_ANSWERS) of its answers."""
    counts: Counter[str] = Counter()
    for text in answers:
        counts.update({t for t in _NAME_LIKE.findall(text) if t not in GENERIC})
    need = max(MIN_ANSWERS, math.ceil(MIN_SHARE * len(answers)))
    return sorted(t for t, c in counts.items() if c >= need)


def claims(text: str, markers: Sequence[str]) -> bool:
    """Case-sensitive whole-word match: 'whether' is not 'Whether', and 'Gemma' is not 'gemmation'."""
    return any(re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text) for m in markers)


def identity_claims(answers: Mapping[str, Mapping[str, Completion]], probe_ids: Sequence[str], design: Design,
                    curated: Sequence[str] = ()) -> TestResult:
    """The suspect's claim rate against the control lineages' claim rates (model-level, not per answer).

    Markers: the curated names of the reference's lineage (for packaged models) plus name-like terms the reference
    uses in its own answers (never chosen with the controls' answers, which would bias the comparison). A model's
    claim rate is the share of its identity answers that contain a marker; answers of one model are not independent
    coin flips at one shared rate, so the null is the spread of claim rates across control lineages, with each
    rate's binomial error (prediction test on the logit scale, as for the other behavioural families).
    """
    ctrl_units = {u: tuple(m for m in ms if m in answers) for u, ms in design.units.items()}
    ctrl_units = {u: ms for u, ms in ctrl_units.items() if ms}
    if design.suspect not in answers or design.reference not in answers:
        return TestResult.skip(NAME, "the suspect or the reference gave no identity answers")
    learned = learned_markers([answers[design.reference][p].text for p in probe_ids])
    markers = sorted(set(curated) | set(learned))
    if not markers:
        return TestResult.skip(NAME, f"the reference names no consistent identity (no name-like term in "
                                     f"{MIN_SHARE:.0%} of its {len(probe_ids)} answers, and no curated names)")
    if len(ctrl_units) < MIN_UNITS:
        return TestResult.skip(NAME, f"needs at least {MIN_UNITS} independent control lineages (has {len(ctrl_units)})")
    n = len(probe_ids)
    hits = {m: np.array([claims(answers[m][p].text, markers) for p in probe_ids], dtype=float)
            for m in [design.suspect, *[c for ms in ctrl_units.values() for c in ms]]}
    aff = {m: logit_affinity(v) for m, v in hits.items()}
    lineage = {c: u for u, ms in ctrl_units.items() for c in ms}
    units, vals, errs = by_lineage({c: aff[c][0] for c in lineage}, {c: aff[c][1] for c in lineage}, lineage)
    pt = prediction_test(aff[design.suspect][0], vals, se_observed=aff[design.suspect][1], se_null=errs, units=units)
    if pt is None:
        return TestResult.skip(NAME, "the null could not be formed")
    k = {m: int(v.sum()) for m, v in hits.items()}
    exhibits = [p for i, p in enumerate(probe_ids)
                if hits[design.suspect][i] and not any(hits[c][i] for c in lineage)]
    return TestResult(
        name=NAME,
        statistic=k[design.suspect] / n,
        p_value=pt.p_value,
        n=n,
        null=("the suspect's claim rate (logit) against the claim rates of the control lineages, with each rate's "
              "binomial error; Student-t prediction test, df = lineages - 1; corroboration only, never decisive alone"),
        effect=pt.effect,
        effect_ci=pt.effect_ci,
        details={"markers": markers, "markers_curated": sorted(curated), "markers_learned": learned, "claims": k, "n": n,
                 "t": pt.t, "df": pt.df, "rank_p_value": pt.rank_p, "observed": pt.observed,
                 "null_values": list(pt.null_values), "null_units": list(pt.null_units), "tau2": pt.tau2, "null_mean": pt.mean, "null_scale": pt.scale,
                 "null_construction": "lineage units",
                 "quotes": {pid: answers[design.suspect][pid].text for pid in exhibits[:10]},
                 "scale": "logit of the share of identity answers that use the reference's names",
                 "effect_unit": "logit claim rate"},
        top_probes=tuple(exhibits[:5]),
        references=REFERENCES,
    )
