"""Families 1 and 2: greedy output agreement and next-token similarity, tested as a suspect-reference interaction."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from provenance.evidence import Completion
from provenance.stats.base import TestResult
from provenance.stats.citations import LIN, NIKOLIC
from provenance.stats.nulls import MIN_UNITS, Design, log_affinity, prediction_test, unit_interactions
from provenance.stats.similarity import text_agreement, topk_similarity

REFERENCES = (
    NIKOLIC,
    LIN,
)
NULL_TEXT = (
    "the suspect~reference interaction (log affinity minus the suspect's and the reference's mean affinity to the "
    "control lineages, plus the controls' mean affinity among themselves) against the same interaction of each control "
    "lineage put in the suspect's seat; siblings averaged into one unit per lineage; Student-t prediction test with the "
    "spread between lineages plus each value's own sampling error, df = lineages - 1; exact rank p beside it"
)


@dataclass(frozen=True)
class Panel:
    """Answers of every model in an audit to one probe set, aligned by probe id."""

    probe_ids: tuple[str, ...]
    answers: Mapping[str, Mapping[str, Completion]]  # model key -> probe id -> answer
    tokenizers: Mapping[str, str | None]  # model key -> tokenizer id


def _pair_table(models: Sequence[str], sim: Callable[[str, str], np.ndarray]) -> dict[frozenset[str], np.ndarray]:
    return {frozenset((a, b)): sim(a, b) for a, b in itertools.combinations(models, 2)}


def _affinity_test(name: str, table: dict[frozenset[str], np.ndarray], design: Design, probe_ids: Sequence[str],
                   null_text: str) -> TestResult:
    """The interaction test on log affinities, collapsing control lineages into units."""
    if len(design.units) < MIN_UNITS:
        return TestResult.skip(name, f"needs at least {MIN_UNITS} independent control lineages (has {len(design.units)}: "
                                     f"{', '.join(sorted(design.units)) or 'none'})")
    aff = {pair: log_affinity(v) for pair, v in table.items()}
    members = {"suspect": (design.suspect,), "reference": (design.reference,), **design.units}

    def pairs(a: str, b: str) -> list[frozenset[str]]:
        return [frozenset((x, y)) for x in members[a] for y in members[b] if x != y]

    def cell(a: str, b: str) -> float:
        return float(np.mean([aff[p][0] for p in pairs(a, b)]))

    def cell_se(a: str, b: str) -> float:
        return float(math.sqrt(np.mean([aff[p][1] ** 2 for p in pairs(a, b)])))

    got = unit_interactions(cell, cell_se, design, per_prompt=False)
    assert got is not None
    (obs, obs_se), null = got
    kind = kind_check(cell, cell_se, design)
    pt = prediction_test(obs, [v for _, v, _ in null], se_observed=obs_se, se_null=[s for _, _, s in null],
                         units=[u for u, _, _ in null])
    if pt is None:
        return TestResult.skip(name, "the null could not be formed (non-finite affinities)")
    sr = table[frozenset((design.suspect, design.reference))]
    sc = np.nanmean([table[frozenset((design.suspect, c))] for c in design.controls], axis=0)
    diff = np.nan_to_num(sr - sc, nan=-np.inf)
    order = np.argsort(-diff, kind="stable")[:5]
    return TestResult(
        name=name,
        statistic=float(np.nanmean(sr)),
        p_value=pt.p_value,
        n=len(probe_ids),
        null=null_text,
        effect=pt.effect,
        effect_ci=pt.effect_ci,
        details={
            "t": pt.t, "df": pt.df, "rank_p_value": pt.rank_p, "null_construction": "interaction, lineage units",
            "observed": pt.observed, "observed_se": obs_se, "null_values": list(pt.null_values),
            "null_units": list(pt.null_units), "null_se": [s for _, _, s in null], "tau2": pt.tau2, "null_mean": pt.mean, "null_scale": pt.scale,
            "scale": "interaction of log affinities (log of mean per-probe similarity)",
            "effect_unit": "log affinity",
            "affinity": {" ~ ".join(sorted(p)): float(np.nanmean(v)) for p, v in table.items()},
            "n_probes_scored": int(np.sum(np.isfinite(sr))),
            "kind_check": kind,
            "suspect_controls_mean": float(np.nanmean(sc)),
            "per_probe": {"probe_ids": list(probe_ids), "suspect_reference": [float(x) for x in sr],
                          "suspect_controls": [float(x) for x in sc]},
        },
        # A margin, so that float noise in the last digit cannot change which probes count as exhibits.
        top_probes=tuple(probe_ids[i] for i in order if np.isfinite(sr[i]) and sr[i] > sc[i] + 1e-9),
        references=REFERENCES,
    )


KIND_P = 0.05  # two-sided: the suspect's general agreement with the control lineages unlike theirs


def kind_check(cell: Callable[[str, str], float], cell_se: Callable[[str, str], float], design: Design) -> dict:
    """Is the suspect of the controls' kind? Its mean affinity to the control units (its row effect) against each
    unit's mean affinity to the other units, two-sided prediction test.

    The interaction removes kind differences that are additive on the log scale, not all of them: in simulation a
    suspect and reference both much stronger than the controls were still flagged at alpha = 1% in about 3% of null
    runs. Their row effects lie far outside the controls' (the check fires in 99% of such runs, 2% of matched ones),
    so a flag with a failed kind check is not trusted. It also fires for some true students of a stronger reference
    (they inherit its competence): a price in power, paid to keep false accusations rare.
    """
    units = sorted(design.units)

    def row(x: str, others: list[str]) -> tuple[float, float]:
        vals = [cell(x, u) for u in others if u != x]
        errs = [cell_se(x, u) for u in others if u != x]
        return float(np.mean(vals)), float(math.sqrt(np.mean(np.square(errs)) / len(errs)))

    s_row = row("suspect", units)
    r_row = row("reference", units)
    u_rows = [row(u, units) for u in units]
    pt = prediction_test(s_row[0], [v for v, _ in u_rows], se_observed=s_row[1], se_null=[e for _, e in u_rows])
    pr = prediction_test(r_row[0], [v for v, _ in u_rows], se_observed=r_row[1], se_null=[e for _, e in u_rows])
    two = lambda p: None if p is None else float(min(1.0, 2 * min(p.p_value, 1 - p.p_value)))  # noqa: E731
    p_s = two(pt)
    return {"suspect_row": s_row[0], "reference_row": r_row[0], "unit_rows": [v for v, _ in u_rows],
            "p_suspect": p_s, "p_reference": two(pr), "suspect_out_of_kind": p_s is not None and p_s < KIND_P,
            "note": "row effect = mean log affinity to the control lineages; two-sided prediction test"}


def output_agreement(panel: Panel, design: Design) -> TestResult:
    """Word-level agreement of greedy continuations: does the suspect agree with the reference beyond its kind?"""
    ids = panel.probe_ids
    models = [design.suspect, design.reference, *design.controls]

    def sim(a: str, b: str) -> np.ndarray:
        return np.array([text_agreement(panel.answers[a][i].text, panel.answers[b][i].text) for i in ids])

    return _affinity_test("output_agreement", _pair_table(models, sim), design, ids,
                          "greedy word agreement: " + NULL_TEXT)


def next_token_divergence(panel: Panel, design: Design) -> TestResult:
    """1 - JS divergence of top-k next-token distributions on decoded strings, per probe; same interaction null."""
    ids = panel.probe_ids
    has_top = lambda m: all(panel.answers[m][i].top for i in ids)  # noqa: E731
    if not has_top(design.suspect) or not has_top(design.reference):
        return TestResult.skip("next_token_divergence", "suspect or reference gave no top-k logprobs (text access only)")
    units = {u: tuple(m for m in ms if has_top(m)) for u, ms in design.units.items()}
    design = Design(design.suspect, design.reference, {u: ms for u, ms in units.items() if ms})
    models = [design.suspect, design.reference, *design.controls]

    def sim(a: str, b: str) -> np.ndarray:
        # On decoded strings, even for a shared tokenizer: every pair, null pairs included, on one scale. A probe
        # whose distribution is empty for either model is missing (NaN, left out), never counted as disagreement.
        return np.array([topk_similarity(panel.answers[a][i].top, panel.answers[b][i].top) for i in ids])

    r = _affinity_test("next_token_divergence", _pair_table(models, sim), design, ids,
                       "next-token similarity (1 - JS on decoded, whitespace-stripped token strings): " + NULL_TEXT)
    if r.skipped is None:
        r.details["shared_tokenizer"] = (panel.tokenizers.get(design.suspect) is not None
                                         and panel.tokenizers.get(design.suspect) == panel.tokenizers.get(design.reference))
    return r
