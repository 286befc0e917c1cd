"""Family 3: reference-sample likelihood: does the suspect find the reference's own answers unusually likely?"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from provenance.evidence import Score, score_item_id
from provenance.stats.base import TestResult
from provenance.stats.citations import KIM_RUSH, NIKOLIC
from provenance.stats.nulls import MIN_UNITS, Design, prediction_test, unit_interactions

REFERENCES = (
    KIM_RUSH,
    NIKOLIC,
)
NAME = "reference_likelihood"


def reference_likelihood(scores: Mapping[str, Mapping[str, Score]], probe_ids: Sequence[str],
                         fingerprints: Mapping[str, str], design: Design) -> TestResult:
    """The suspect's per-byte log-likelihood of the reference's sampled answers, as a scorer x source interaction.

    Table: x(scorer, source) = per-byte log-likelihood that `scorer` gives `source`'s sampled answer, per prompt.
    Scorers are the suspect and the control lineages; sources are the reference and the control lineages; a lineage
    never scores its own answers (its cell is left out). The statistic is the double-centred interaction of
    (suspect, reference): the suspect's preference for the reference's text beyond its general fluency (row effect)
    and beyond how likely everyone finds the reference's text (column effect). Each control lineage put in the
    suspect's seat, scored against the other lineages' answers, gives the null. A student trained on the reference's
    outputs (sequence-level distillation) finds them unusually likely; an independent model does not. Per byte, so
    tokenizers do not matter. Errors come from the spread over prompts (the interaction is linear in the cells).
    """
    if not scores.get(design.suspect):
        return TestResult.skip(NAME, "the suspect gives no log-likelihoods (needs logits access)")
    units = {u: tuple(m for m in ms if scores.get(m)) for u, ms in design.units.items()}
    design = Design(design.suspect, design.reference, {u: ms for u, ms in units.items() if ms})
    if len(design.units) < MIN_UNITS:
        return TestResult.skip(NAME, f"needs at least {MIN_UNITS} independent control lineages with logits access "
                                     f"(has {len(design.units)})")
    members = {"suspect": (design.suspect,), "reference": (design.reference,), **design.units}

    def ll(scorer: str, source: str) -> np.ndarray:
        return np.array([scores[scorer][score_item_id(p, fingerprints[source])].per_byte for p in probe_ids])

    def cell(row: str, col: str) -> np.ndarray:
        # A node as scorer (row) averages its members' scores; as source (column), its members' answers.
        return np.mean([ll(s, c) for s in members[row] for c in members[col]], axis=0)

    got = unit_interactions(cell, None, design, per_prompt=True)
    assert got is not None
    (obs, obs_se), null = got
    pt = prediction_test(obs, [v for _, v, _ in null], se_observed=obs_se, se_null=[s for _, _, s in null],
                         units=[u for u, _, _ in null])
    if pt is None:
        return TestResult.skip(NAME, "the null could not be formed (non-finite scores)")
    per_prompt = ll(design.suspect, design.reference) - np.mean([ll(design.suspect, c) for c in design.controls], axis=0)
    order = np.argsort(-per_prompt, kind="stable")[:5]
    return TestResult(
        name=NAME,
        statistic=pt.observed,
        p_value=pt.p_value,
        n=len(probe_ids),
        null=(f"the suspect's preference for the reference's sampled answers as a scorer x source interaction (nats per "
              f"byte, beyond its fluency and the answers' general likelihood), against the same interaction of each of "
              f"{len(null)} control lineages put in the suspect's seat (no lineage scores its own answers); Student-t "
              f"prediction test with the spread between lineages plus prompt sampling error, df = {pt.df}"),
        effect=pt.effect,
        effect_ci=pt.effect_ci,
        details={"t": pt.t, "df": pt.df, "null_construction": "interaction, lineage units", "observed": pt.observed,
                 "observed_se": obs_se, "null_values": list(pt.null_values), "null_units": list(pt.null_units),
                 "null_se": [s for _, _, s in null], "tau2": pt.tau2, "null_mean": pt.mean, "null_scale": pt.scale, "rank_p_value": pt.rank_p,
                 "scale": "scorer x source interaction of per-byte log-likelihood (nats per byte)",
                 "effect_unit": "nats per byte",
                 "per_prompt_preference": {"probe_ids": list(probe_ids), "values": [float(x) for x in per_prompt]}},
        top_probes=tuple(probe_ids[i] for i in order if per_prompt[i] > 1e-9),
        references=REFERENCES,
    )
