"""Candidate family for analysis v3 (not used by audits): reference likelihood of a text-only suspect's answers."""

from __future__ import annotations

import math
from typing import Literal, Mapping, Sequence, get_args

import numpy as np

from provenance.stats.base import TestResult
from provenance.stats.citations import KIM_RUSH, MANDEL
from provenance.stats.nulls import MIN_UNITS, lineage_unit, prediction_test

NAME = "text_likelihood"
REFERENCES = (
    KIM_RUSH,
    MANDEL,
)

# "interaction": the double-centred (reference, suspect) cell, i.e. the mean of every admissible tetrad.
# "sign": the mean sign of those tetrads (a rank statistic of each 2 x 2 sub-table: robust to heavy-tailed answers).
# "scaled_yardstick": the interaction after dividing each scorer's row by its sharpness on the neutral yardstick.
# "scaled_answers": the same with each scorer's sharpness measured on the control units' answers, prompt by prompt.
Statistic = Literal["interaction", "sign", "scaled_yardstick", "scaled_answers"]
SCALED = ("scaled_yardstick", "scaled_answers")
STATISTICS: tuple[str, ...] = get_args(Statistic)
# As provenance.analysis.evaluate.COMPETENCE_MARGIN (nats per byte, or a quarter of the controls' range if wider), here
# on the fluency of the answers; provisional like it.
FLUENCY_MARGIN = 0.15
ITERATIONS = 50  # of the sharpness fit; it converges in a few on any table seen so far
TIE = 1e-9  # nats per byte: tetrads smaller than this are ties for the sign statistic


def unit_values(table: np.ndarray, statistic: Statistic = "interaction") -> np.ndarray:
    """Per-prompt values of the suspect's seat and of each control unit put in it, from one table.

    `table[..., i, j, p]`: scorer i's per-byte log-likelihood of source j's answer to prompt p. Scorers are
    [reference, u_1..u_m], sources [suspect, u_1..u_m] (leading axes broadcast, so simulations can batch replicates).
    Cell (u_i, u_i) is never read: a lineage scoring its own answers. The reference's own answers are not a source:
    (R, R) shares a lineage, and R's column would then sit only in the inner mean, where it would weigh R's fluency
    into the average source effect (an unbalanced table leaves a main effect in the interaction).
    Returns `[..., 1 + m, p]`: index 0 the suspect in the seat against all m units; index 1 + u unit u in the seat,
    scored by the reference and the other m - 1 units, against their answers (u never scores; the suspect never
    enters the null). A unit needs two others for its own inner mean, so m >= 3.
    """
    t = np.asarray(table, dtype=float)
    m = t.shape[-2] - 1
    if t.shape[-3] != m + 1 or m < MIN_UNITS:
        raise ValueError(f"need a (1 + m) x (1 + m) table with m >= {MIN_UNITS} control units, got {t.shape}")
    out = [_seat(t, statistic)]
    for u in range(m):
        keep = [0] + [1 + o for o in range(m) if o != u]
        seat_col = [1 + u] + [1 + o for o in range(m) if o != u]
        out.append(_seat(t[..., keep, :, :][..., :, seat_col, :], statistic))
    return np.stack(out, axis=-2)


def _seat(t: np.ndarray, statistic: Statistic) -> np.ndarray:
    """The per-prompt statistic of source 0 under scorer 0 in one table (see `unit_values`)."""
    m = t.shape[-2] - 1
    off = ~np.eye(m, dtype=bool)[:, :, None]  # admissible (scorer v, source j) among units: v != j
    r_seat = t[..., 0, 0, :]  # the reference scoring the seat's answers: where lineage would show
    r_units = t[..., 0, 1:, :]  # the reference scoring the units' answers: its row effect (its general level)
    u_seat = t[..., 1:, 0, :]  # the units scoring the seat's answers: the seat's column effect (its fluency)
    inner = t[..., 1:, 1:, :]  # units scoring each other: the grand level the row and column effects are taken from
    if statistic == "interaction" or statistic in SCALED:
        # gamma = x(R, S) - mean_j x(R, j) - mean_v x(v, S) + mean_{v != j} x(v, j), the mean over every admissible
        # tetrad x(R,S) - x(R,j) - x(v,S) + x(v,j). Under x(i, j) = mu + a_i + b_j + noise it has mean zero however
        # likely the reference finds all text (a_R) and however fluent the seat's answers are (b_S); balanced (every
        # unit scorer reads the same number of unit sources), so the inner mean carries mean_u a_u + mean_u b_u exactly.
        inner_mean = np.where(off, inner, 0.0).sum(axis=(-3, -2)) / (m * (m - 1))
        return r_seat - r_units.mean(axis=-2) - u_seat.mean(axis=-2) + inner_mean
    if statistic == "sign":
        # The sign of each tetrad per prompt: invariant to any constant added to a scorer or to a source on that prompt
        # (the tetrad cancels both), and a degenerate answer at -5 nats/byte counts once, not by its size.
        tet = (r_seat[..., None, None, :] - r_units[..., None, :, :] - u_seat[..., :, None, :] + inner)
        # A tetrad that is zero up to rounding is a tie, not a vote: otherwise the last bit decides its sign.
        tet = np.where(np.abs(tet) <= TIE, 0.0, tet)
        return np.where(off, np.sign(tet), 0.0).sum(axis=(-3, -2)) / (m * (m - 1))
    raise ValueError(f"unknown statistic {statistic!r}; one of {STATISTICS}")


def fluency_excess(table: np.ndarray) -> np.ndarray:
    """How much likelier the scorers find each seat's answers than the other units' answers: a column effect.

    `table` as in `unit_values`; returns `[..., 1 + m]`: the suspect's answers under the m control scorer units, then
    each unit's under the other units (the reference's row is left out: it is the scorer on trial). A text-only
    suspect cannot score the yardstick, so this is the view from the outside of its kind: the interaction's bias grows
    with the product of the reference's and the suspect's distance from the controls, and this is the suspect's.
    """
    t = np.asarray(table, dtype=float)
    m = t.shape[-2] - 1
    off = ~np.eye(m, dtype=bool)[:, :, None]
    inner = np.where(off, t[..., 1:, 1:, :], 0.0).mean(axis=-1)  # [..., scorer unit, source unit]
    out = [t[..., 1:, 0, :].mean(axis=(-2, -1)) - inner.sum(axis=(-2, -1)) / (m * (m - 1))]
    for u in range(m):
        rest = [o for o in range(m) if o != u]
        sub = inner[..., rest, :][..., :, rest]
        out.append(inner[..., rest, u].mean(axis=-1) - sub.sum(axis=(-2, -1)) / ((m - 1) * (m - 2)))
    return np.stack(out, axis=-1)


def yardstick_sharpness(profiles: np.ndarray) -> np.ndarray:
    """Each scorer's sharpness: the slope of its per-passage log-likelihoods on the panel's mean profile.

    `profiles[..., i, t]`: scorer i's per-byte log-likelihood of neutral passage t. A capable scorer does not only
    find all text likelier (a row offset, which the interaction removes): it separates easy from hard text more
    strongly, so a fluent source gains more under it (x(i, j) = a_i + s_i b_j, Mandel's rows-linear model). That
    product is what makes a strong suspect and a strong reference look related against weak controls. The slope is
    measured on passages no model in the audit wrote, so it carries no lineage; its scale is set by the panel's mean,
    fixed once for the observed value and every null value.
    """
    y = np.asarray(profiles, dtype=float)
    yc = y - y.mean(axis=-1, keepdims=True)
    z = yc.mean(axis=-2, keepdims=True)
    return (yc * z).sum(axis=-1) / (z * z).sum(axis=-1)


def answer_sharpness(table: np.ndarray) -> np.ndarray:
    """Each scorer's sharpness measured on the control units' answers: its slope on the panel's consensus.

    `table` as in `unit_values`. Only the unit sources are used (never the seat's column, so a student's answers
    cannot set the scale that judges them). For scorer i the block of its admissible unit sources x prompts is
    double-centred: the prompt means remove its prompt-by-prompt offsets, the source means remove the sources'
    fluency, lineage and shared-data effects, so what is left is each answer's own quality, which every scorer sees
    and a sharper scorer stretches more (Mandel's rows-linear model). The consensus is the mean over the scorers
    admissible for each source; the slopes are in units of the control scorers' mean, fixed once for every seat.
    Hundreds of (source, prompt) points per scorer: more precise than 12 yardstick passages, and on the text in
    question rather than on prose.
    """
    t = np.asarray(table, dtype=float)
    m = t.shape[-2] - 1
    w = np.vstack([np.ones((1, m)), 1.0 - np.eye(m)])  # [scorer, unit source]: a unit never reads its own answers
    y = np.where(w[:, :, None] > 0, t[..., :, 1:, :], 0.0)

    def centred(a: np.ndarray) -> np.ndarray:
        a = a * w[:, :, None]
        per_source = a.mean(axis=-1, keepdims=True)
        per_prompt = a.sum(axis=-2, keepdims=True) / w.sum(axis=-1)[:, None, None]
        grand = per_source.sum(axis=-2, keepdims=True) / w.sum(axis=-1)[:, None, None]
        return (a - per_source - per_prompt + grand) * w[:, :, None]

    yc = centred(y)
    # The consensus's scale differs a little from source to source (each source's admissible scorers differ), so the
    # first slopes are only nearly proportional to the true ones; forming the consensus from the rows divided by
    # their current slopes and refitting removes that (a rank-one fit by alternating least squares, Mandel's model).
    sharp = np.ones(t.shape[:-3] + (m + 1,))
    for _ in range(ITERATIONS):
        z = (yc / sharp[..., :, None, None] * w[:, :, None]).sum(axis=-3) / w.sum(axis=0)[:, None]
        zc = centred(np.broadcast_to(z[..., None, :, :], y.shape))
        new = (yc * zc).sum(axis=(-2, -1)) / (zc * zc).sum(axis=(-2, -1))
        # In units of the control scorers' mean sharpness, fixed for every seat: the reference's own sharpness then
        # never rescales the table, and the statistic reads as nats per byte under an average control.
        new = new / new[..., 1:].mean(axis=-1, keepdims=True)
        done = np.allclose(new, sharp, rtol=1e-8, atol=0.0)
        sharp = new
        if done:
            break
    return sharp


def _unit_table(scores: Mapping[str, Mapping[str, Sequence[float]]], scorers: list[list[str]],
                sources: list[list[str]]) -> np.ndarray | str:
    """The table over lineage units (a scorer unit averages its members' scores, a source unit its members' answers),
    or why it cannot be formed. Cell (u, u) stays NaN: a lineage scoring its own answers is never read."""
    missing = [f"{a}->{b}" for i, row in enumerate(scorers) for j, col in enumerate(sources) if i == 0 or i != j
               for a in row for b in col if b not in scores.get(a, {})]
    if missing:
        return f"missing scores (scorer->source): {missing[:5]}"
    n = len(np.asarray(scores[scorers[0][0]][sources[0][0]]))
    if n < 2:
        return "needs at least two instructions (the error is their spread over instructions)"
    table = np.full((len(scorers), len(sources), n), np.nan)
    for i, row in enumerate(scorers):
        for j, col in enumerate(sources):
            if i and i == j:
                continue
            cells = [np.asarray(scores[a][b], dtype=float) for a in row for b in col]
            if any(c.shape != (n,) or not np.all(np.isfinite(c)) for c in cells):
                return f"scores of {row} on {col} are not {n} finite values"
            table[i, j] = np.mean(cells, axis=0)
    return table


def _sharpness(table: np.ndarray, statistic: Statistic, scorers: list[list[str]],
               yardstick: Mapping[str, Sequence[float]] | None) -> np.ndarray | str:
    """Each scorer unit's sharpness for the scaled statistics, or why it cannot be measured."""
    if statistic == "scaled_answers":
        sharp = answer_sharpness(table)
    else:
        if yardstick is None or any(m not in yardstick for row in scorers for m in row):
            return "the yardstick-scaled statistic needs every scorer's yardstick profile"
        try:
            prof = np.array([np.asarray(yardstick[m], dtype=float) for row in scorers for m in row])
        except ValueError:
            prof = np.empty(0)
        if prof.ndim != 2 or prof.shape[1] < 3 or not np.all(np.isfinite(prof)):
            return "yardstick profiles must be equal-length finite arrays of 3 or more passages"
        flat = yardstick_sharpness(prof)
        # A unit's row is its members' mean, and the slope is linear in the row: the unit's sharpness is their mean.
        sizes = np.cumsum([len(row) for row in scorers])[:-1]
        sharp = np.array([float(np.mean(part)) for part in np.split(flat, sizes)])
        sharp = sharp / sharp[1:].mean()  # in units of the control scorers' mean, as for the answers' sharpness
    if not np.all(np.isfinite(sharp)) or np.any(sharp <= 0):
        return f"a scorer's sharpness is not positive: {sharp.tolist()}"
    return sharp


def text_likelihood(scores: Mapping[str, Mapping[str, Sequence[float]]], suspect: str, reference: str,
                    lineage: Mapping[str, str | None], *, statistic: Statistic = "scaled_answers",
                    yardstick: Mapping[str, Sequence[float]] | None = None,
                    probe_ids: Sequence[str] | None = None) -> TestResult:
    """Are the suspect's answers relatively likelier under the reference than under the controls? (text access)

    `scores[scorer][source]`: per-answer log-likelihoods per byte over the same instructions, for scorers the
    reference and the controls (held with full access) and sources the suspect, the reference and the controls.
    `lineage[model]` for every model. `yardstick[scorer]`: per-passage per-byte log-likelihoods of the neutral
    passages, needed by "scaled_yardstick". Controls sharing the reference's or the suspect's lineage are left out;
    the others form one unit per lineage. Every cell whose scorer and source share a lineage is left out. The null
    puts each control unit in the suspect's seat, scored by the reference and the other units; the prediction test
    in provenance.stats.nulls compares the suspect's mean over prompts with theirs, each with its error over prompts.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; one of {STATISTICS}")
    key_s, key_r = lineage_unit(suspect, lineage), lineage_unit(reference, lineage)
    if key_s == key_r:
        return TestResult.skip(NAME, f"the suspect and the reference are declared one lineage ({key_r})")
    controls = sorted(m for m in scores if m not in (suspect, reference))
    excluded = [c for c in controls if lineage_unit(c, lineage) in (key_s, key_r)]
    units: dict[str, list[str]] = {}
    for c in controls:
        if c not in excluded:
            units.setdefault(lineage_unit(c, lineage), []).append(c)
    names = sorted(units)
    if len(names) < MIN_UNITS:
        return TestResult.skip(NAME, f"needs at least {MIN_UNITS} control lineages that score and answer "
                                     f"(has {len(names)}; left out as related: {excluded})")
    scorers = [[reference], *(units[u] for u in names)]
    sources = [[suspect], *(units[u] for u in names)]
    table = _unit_table(scores, scorers, sources)
    if isinstance(table, str):
        return TestResult.skip(NAME, table)
    n = table.shape[-1]
    m = len(names)
    # The kind check from the outside (a candidate, like the family): the suspect's answers' fluency against the
    # controls' range, with the competence check's margin. It never changes the p-value; a verdict would use it.
    fluency = fluency_excess(table)
    lo, hi = float(fluency[1:].min()), float(fluency[1:].max())
    margin = max(FLUENCY_MARGIN, 0.25 * (hi - lo))
    details: dict[str, object] = {
        "fluency_excess": dict(zip(["suspect", *names], fluency.tolist())), "fluency_margin": margin,
        "suspect_fluency_outside": bool(not lo - margin <= fluency[0] <= hi + margin)}
    if statistic in SCALED:
        sharp = _sharpness(table, statistic, scorers, yardstick)
        if isinstance(sharp, str):
            return TestResult.skip(NAME, sharp)
        # Dividing a scorer's row by its sharpness turns x = a_i + s_i b_j into a_i / s_i + b_j: additive again, so
        # the interaction removes a strong reference's extra liking for every fluent answer, not only its offset.
        table = table / sharp[:, None, None]
        details["sharpness"] = dict(zip(["reference", *names], sharp.tolist()))
    per_prompt = unit_values(table, statistic)
    means = per_prompt.mean(axis=-1)
    ses = per_prompt.std(axis=-1, ddof=1) / math.sqrt(n)
    pt = prediction_test(float(means[0]), means[1:].tolist(), se_observed=float(ses[0]), se_null=ses[1:].tolist(),
                         units=names)
    if pt is None:
        return TestResult.skip(NAME, "the null could not be formed (non-finite values)")
    ids = list(probe_ids) if probe_ids is not None else [str(i) for i in range(n)]
    order = np.argsort(-per_prompt[0], kind="stable")[:5]
    unit = "tetrad sign (-1..1)" if statistic == "sign" else (
        "nats per byte under a control of mean sharpness" if statistic in SCALED else "nats per byte")
    details.update({
        "candidate": "analysis v3; not used by audits", "statistic_kind": statistic, "t": pt.t, "df": pt.df,
        "observed": pt.observed, "observed_se": float(ses[0]), "null_values": list(pt.null_values),
        "null_units": list(pt.null_units), "null_se": ses[1:].tolist(), "tau2": pt.tau2, "null_mean": pt.mean,
        "null_scale": pt.scale, "rank_p_value": pt.rank_p, "controls_used": {u: units[u] for u in names},
        "controls_excluded": excluded, "effect_unit": unit})
    return TestResult(
        name=NAME, statistic=pt.observed, p_value=pt.p_value, n=n,
        null=(f"the reference x suspect interaction of per-byte log-likelihoods of the suspect's sampled answers "
              f"({statistic}), beyond the reference's sharpness and the answers' fluency, against the same interaction "
              f"of each of {m} control lineages put in the suspect's seat (no lineage scores its own answers); "
              f"Student-t prediction test with the spread between lineages plus prompt error, df = {pt.df}"),
        effect=pt.effect, effect_ci=pt.effect_ci, details=details,
        top_probes=tuple(ids[i] for i in order if per_prompt[0, i] > 0), references=REFERENCES)
