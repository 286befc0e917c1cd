"""Family 3 of analysis v3: the reference's sampled answers against capable comparison sources, as scorer x source tetrads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from provenance.stats.base import TestResult
from provenance.stats.citations import KIM_RUSH, NIKOLIC
from provenance.stats.nulls import MIN_UNITS, lineage_unit, prediction_test

NAME = "capable_likelihood"
REFERENCES = (
    KIM_RUSH,
    NIKOLIC,
)
SUSPECT = "@suspect"  # the suspect's row: its lineage is unknown, so none of its cells is left out


def tetrad_seat(cell: Mapping[str, Mapping[str, np.ndarray]], row: str, others: Sequence[str], reference: str,
                sources: Sequence[str], reads: Mapping[str, set[str]]) -> np.ndarray | None:
    """Per-prompt mean of every admissible tetrad x(row, R) - x(row, j) - x(i, R) + x(i, j).

    j runs over the comparison sources `row` may read, i over the `others` that may read both R and j (`reads[node]`:
    the sources a node may score; a lineage never scores its own answers). Each tetrad has mean zero under an
    additive table x(i, j) = a_i + b_j whatever is left out, so the masking cannot move the statistic (the double-
    centred interaction with masked cells is unbalanced: a row without source A carries half of A's fluency).
    None when no tetrad is admissible.
    """
    tets = [cell[row][reference] - cell[row][j] - cell[i][reference] + cell[i][j]
            for j in sources if j in reads[row] for i in others if reference in reads[i] and j in reads[i]]
    return np.mean(tets, axis=0) if tets else None


def capable_likelihood(scores: Mapping[str, Mapping[str, Sequence[float]]], suspect: str, reference: str,
                       sources: Sequence[str], lineage: Mapping[str, str | None],
                       probe_ids: Sequence[str] | None = None) -> TestResult:
    """Does the suspect prefer the reference's sampled answers over other capable models' more than its kind does?

    `scores[scorer][source]`: per-byte log-likelihoods, per prompt, that `scorer` gives `source`'s sampled answer, for
    scorers the suspect and the controls, and sources the reference and `sources` (capable models independent of the
    reference: the other packaged teachers). `lineage[model]` for every model (the suspect's is ignored: an audit does
    not know it). Controls sharing the reference's lineage are left out; the others form one unit per lineage (a
    unit's row averages its members'). See `tetrad_test` for the statistic and its null.
    """
    key_r = lineage_unit(reference, lineage)
    controls = sorted(m for m in scores if m not in (suspect, reference, *sources))
    units: dict[str, list[str]] = {}
    excluded = []
    for c in controls:
        key = lineage_unit(c, lineage)
        if key == key_r:
            excluded.append(c)
        else:
            units.setdefault(key, []).append(c)
    return tetrad_test(scores, suspect, reference, sources, units,
                       {s: lineage_unit(s, lineage) for s in [reference, *sources]}, probe_ids, excluded)


@dataclass(frozen=True)
class Wording:
    """What a tetrad test is called and how its skips and null read: the inside family (the suspect scores texts)
    and its transpose from the outside (stats/outside_likelihood.py: capable scorers score the suspect's texts)."""

    name: str
    not_scored: str  # "{missing}": the sources or scorers absent from the suspect's row
    null: str  # "{sources}", "{lineages}", "{df}"
    construction: str
    units: str = "that score"  # which control lineages count ("needs at least 3 control lineages ...")


INSIDE = Wording(
    NAME, "the suspect did not score {missing} (needs logits access)",
    "the suspect's preference for the reference's sampled answers over those of {sources} capable independent "
    "model(s) (mean of admissible scorer x source tetrads, nats per byte), against the same preference of each of "
    "{lineages} control lineages put in the suspect's seat (no lineage scores its own answers); Student-t prediction "
    "test with the spread between lineages plus prompt error, df = {df}",
    "tetrads, capable sources")


def tetrad_test(scores: Mapping[str, Mapping[str, Sequence[float]]], suspect: str, reference: str,
                sources: Sequence[str], units: Mapping[str, Sequence[str]], source_unit: Mapping[str, str],
                probe_ids: Sequence[str] | None = None, excluded: Sequence[str] = (),
                wording: Wording = INSIDE) -> TestResult:
    """The test itself, on control units already formed (an audit's Design; `capable_likelihood` forms them).

    `units[key]`: the control models of one lineage (none of the reference's); `source_unit[model]`: the lineage key
    of the reference and of each source, in the units' key space, so a unit never scores a source of its own lineage.
    Sources of the reference's lineage are dropped. The statistic is the mean over prompts of `tetrad_seat` for the
    suspect's row; each control unit in the suspect's seat, against the other units, gives the null; `prediction_test`
    compares (Student-t, df = units - 1, and the exact rank p). `excluded`: controls left out, named in the details.
    `scores[row][column]` is read as a table whatever it means: the outside family passes its transpose (`wording`).
    """
    key_r = source_unit[reference]
    srcs = [s for s in sources if s != reference and source_unit[s] != key_r]
    if not srcs:
        return TestResult.skip(wording.name, "no comparison source independent of the reference")
    need = [reference, *srcs]

    def scored(m: str) -> bool:
        return all(s in scores.get(m, {}) for s in need)

    if not scored(suspect):
        missing = [s for s in need if s not in scores.get(suspect, {})]
        return TestResult.skip(wording.name, wording.not_scored.format(missing=missing or "the answers"))
    units = {u: [m for m in ms if scored(m)] for u, ms in units.items()}
    names = sorted(u for u, ms in units.items() if ms)
    if len(names) < MIN_UNITS:
        return TestResult.skip(wording.name, f"needs at least {MIN_UNITS} control lineages {wording.units} (has {len(names)}"
                                     f"{f'; left out as the reference lineage: {list(excluded)}' if excluded else ''})")
    cell: dict[str, dict[str, np.ndarray]] = {
        SUSPECT: {s: np.asarray(scores[suspect][s], dtype=float) for s in need}}
    for u in names:
        cell[u] = {s: np.mean([np.asarray(scores[m][s], dtype=float) for m in units[u]], axis=0) for s in need}
    reads = {SUSPECT: set(need), **{u: {s for s in need if source_unit[s] != u} for u in names}}

    def seat(row: str, others: Sequence[str]) -> tuple[np.ndarray | None, float, float]:
        g = tetrad_seat(cell, row, others, reference, srcs, reads)
        if g is None:
            return None, math.nan, math.nan
        g = g[np.isfinite(g)]
        if g.size < 2:
            return None, math.nan, math.nan
        return g, float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size))

    per_prompt, obs, obs_se = seat(SUSPECT, names)
    # A unit whose lineage is every comparison source's (one source, its own teacher) has no tetrad of its own: it
    # still scores for the others, but gives no null value.
    null = [(u, *got[1:]) for u in names for got in [seat(u, [o for o in names if o != u])] if got[0] is not None]
    silent = [u for u in names if u not in {n for n, _, _ in null}]
    pt = prediction_test(obs, [v for _, v, _ in null], se_observed=obs_se, se_null=[s for _, _, s in null],
                         units=[u for u, _, _ in null])
    if pt is None or per_prompt is None:
        return TestResult.skip(wording.name, "the null could not be formed (non-finite values, or fewer than two control "
                                     "lineages with an admissible tetrad)")
    ids = list(probe_ids) if probe_ids is not None else [str(i) for i in range(per_prompt.size)]
    order = np.argsort(-per_prompt, kind="stable")[:5]
    return TestResult(
        name=wording.name, statistic=pt.observed, p_value=pt.p_value, n=int(per_prompt.size),
        null=wording.null.format(sources=len(srcs), lineages=len(null), df=pt.df),
        effect=pt.effect, effect_ci=pt.effect_ci,
        details={"t": pt.t, "df": pt.df, "observed": pt.observed, "null_construction": wording.construction,
                 "observed_se": obs_se, "null_values": list(pt.null_values), "null_units": list(pt.null_units),
                 "null_se": [s for _, _, s in null], "tau2": pt.tau2, "null_mean": pt.mean, "null_scale": pt.scale,
                 "rank_p_value": pt.rank_p, "sources": srcs, "controls_used": {u: units[u] for u in names},
                 "controls_excluded": list(excluded), "units_without_null_value": silent, "effect_unit": "nats per byte",
                 "scale": "scorer x source tetrads of per-byte log-likelihood (nats per byte)",
                 "per_prompt_preference": {"probe_ids": ids, "values": [float(x) for x in per_prompt]}},
        top_probes=tuple(ids[i] for i in order if per_prompt[i] > 0), references=REFERENCES)
