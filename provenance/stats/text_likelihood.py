"""Candidate family for analysis v3 (not used by audits): reference likelihood of a text-only suspect's answers."""

from __future__ import annotations

import math
from typing import Literal, Mapping, Sequence, get_args

import numpy as np

from provenance.stats.base import TestResult
from provenance.stats.nulls import MIN_UNITS, prediction_test

NAME = "text_likelihood"
UNKNOWN_LINEAGE = "unknown"  # as in provenance.evidence; not imported, so this module stays a leaf of stats/
REFERENCES = (
    "Kim & Rush (2016), Sequence-Level Knowledge Distillation, EMNLP (the training regime this test targets)",
    "Mandel (1961), Non-additivity in two-way analysis of variance, JASA 56:878-888 (rows-linear model: a scorer's "
    "sharpness as a row slope)",
    "Tukey (1949), One degree of freedom for non-additivity, Biometrics 5:232-242",
)

# "interaction": the double-centred (reference, suspect) cell, i.e. the mean of every admissible tetrad.
# "sign": the mean sign of those tetrads (a rank statistic of each 2 x 2 sub-table: robust to heavy-tailed answers).
# "scaled": the interaction after dividing each scorer's row by its sharpness measured on the neutral yardstick.
Statistic = Literal["interaction", "sign", "scaled"]
STATISTICS: tuple[str, ...] = get_args(Statistic)


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
    r_units = t[..., 0, 1:, :]  # the reference scoring the units' answers: its row effect (sharpness, offset)
    u_seat = t[..., 1:, 0, :]  # the units scoring the seat's answers: the seat's column effect (its fluency)
    inner = t[..., 1:, 1:, :]  # units scoring each other: the grand level the row and column effects are taken from
    if statistic in ("interaction", "scaled"):
        # gamma = x(R, S) - mean_j x(R, j) - mean_v x(v, S) + mean_{v != j} x(v, j), the mean over every admissible
        # tetrad x(R,S) - x(R,j) - x(v,S) + x(v,j). Under x(i, j) = mu + a_i + b_j + noise it has mean zero however
        # sharp the reference is (a_R) and however fluent the seat's answers are (b_S); the table is balanced (every
        # unit scorer reads the same number of unit sources), so the inner mean carries mean_u a_u + mean_u b_u exactly.
        inner_mean = np.where(off, inner, 0.0).sum(axis=(-3, -2)) / (m * (m - 1))
        return r_seat - r_units.mean(axis=-2) - u_seat.mean(axis=-2) + inner_mean
    if statistic == "sign":
        # The sign of each tetrad per prompt: invariant to any constant added to a scorer or to a source on that prompt
        # (the tetrad cancels both), and a degenerate answer at -5 nats/byte counts once, not by its size.
        tet = (r_seat[..., None, None, :] - r_units[..., None, :, :] - u_seat[..., :, None, :] + inner)
        return np.where(off, np.sign(tet), 0.0).sum(axis=(-3, -2)) / (m * (m - 1))
    raise ValueError(f"unknown statistic {statistic!r}; one of {STATISTICS}")


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


def _unit_key(model: str, lineage: Mapping[str, str | None]) -> str:
    lin = lineage.get(model)
    # An unknown lineage is its own unit: it cannot be pooled with anything (as in provenance.analysis.evaluate).
    return f"{UNKNOWN_LINEAGE}:{model}" if not lin or lin == UNKNOWN_LINEAGE else lin


def text_likelihood(scores: Mapping[str, Mapping[str, Sequence[float]]], suspect: str, reference: str,
                    lineage: Mapping[str, str | None], *, statistic: Statistic = "scaled",
                    yardstick: Mapping[str, Sequence[float]] | None = None,
                    probe_ids: Sequence[str] | None = None) -> TestResult:
    """Are the suspect's answers relatively likelier under the reference than under the controls? (text access)

    `scores[scorer][source]`: per-answer log-likelihoods per byte over the same instructions, for scorers the
    reference and the controls (held with full access) and sources the suspect, the reference and the controls.
    `lineage[model]` for every model. `yardstick[scorer]`: per-passage per-byte log-likelihoods of the neutral
    passages, needed by the "scaled" statistic. Controls sharing the reference's or the suspect's lineage are left
    out; the others form one unit per lineage (a scorer unit averages its members' scores, a source unit its
    members' answers). Every cell whose scorer and source share a lineage is left out. The null puts each control
    unit in the suspect's seat, scored by the reference and the other units; the prediction test in
    provenance.stats.nulls compares the suspect's mean over prompts with theirs, each with its error over prompts.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; one of {STATISTICS}")
    key_s, key_r = _unit_key(suspect, lineage), _unit_key(reference, lineage)
    if key_s == key_r:
        return TestResult.skip(NAME, f"the suspect and the reference are declared one lineage ({key_r})")
    controls = sorted(m for m in scores if m not in (suspect, reference))
    excluded = [c for c in controls if _unit_key(c, lineage) in (key_s, key_r)]
    units: dict[str, list[str]] = {}
    for c in controls:
        if c not in excluded:
            units.setdefault(_unit_key(c, lineage), []).append(c)
    names = sorted(units)
    if len(names) < MIN_UNITS:
        return TestResult.skip(NAME, f"needs at least {MIN_UNITS} control lineages that score and answer "
                                     f"(has {len(names)}; left out as related: {excluded})")
    members: list[list[str]] = [units[u] for u in names]
    scorers = [[reference], *members]
    sources = [[suspect], *members]
    missing = [f"{a}->{b}" for i, row in enumerate(scorers) for j, col in enumerate(sources) if i == 0 or i != j
               for a in row for b in col if b not in scores.get(a, {})]
    if missing:
        return TestResult.skip(NAME, f"missing scores (scorer->source): {missing[:5]}")
    n = len(np.asarray(scores[reference][suspect]))
    table = np.full((len(scorers), len(sources), n), np.nan)
    for i, row in enumerate(scorers):
        for j, col in enumerate(sources):
            if i and i == j:
                continue  # a lineage scoring its own answers: never read
            cells = [np.asarray(scores[a][b], dtype=float) for a in row for b in col]
            if any(c.shape != (n,) or not np.all(np.isfinite(c)) for c in cells):
                return TestResult.skip(NAME, f"scores of {row} on {col} are not {n} finite values")
            table[i, j] = np.mean(cells, axis=0)
    if n < 2:
        return TestResult.skip(NAME, "needs at least two instructions (the error is their spread)")
    details: dict[str, object] = {}
    if statistic == "scaled":
        if yardstick is None or any(m not in yardstick for row in scorers for m in row):
            return TestResult.skip(NAME, "the scaled statistic needs every scorer's yardstick profile")
        prof = np.array([np.asarray(yardstick[m], dtype=float) for row in scorers for m in row])
        if prof.ndim != 2 or prof.shape[1] < 3 or not np.all(np.isfinite(prof)):
            return TestResult.skip(NAME, "yardstick profiles must be equal-length finite arrays of 3+ passages")
        flat = yardstick_sharpness(prof)
        sizes = [len(row) for row in scorers]
        # A unit's row is its members' mean, and the slope is linear in the row: the unit's sharpness is their mean.
        sharp = np.array([float(np.mean(part)) for part in np.split(flat, np.cumsum(sizes)[:-1])])
        if not np.all(np.isfinite(sharp)) or np.any(sharp <= 0):
            return TestResult.skip(NAME, f"a scorer's yardstick sharpness is not positive: {sharp.tolist()}")
        table = table / sharp[:, None, None]
        details["sharpness"] = dict(zip(["reference", *names], sharp.tolist()))
    per_prompt = unit_values(table, statistic)
    means = per_prompt.mean(axis=-1)
    ses = per_prompt.std(axis=-1, ddof=1) / math.sqrt(n)
    pt = prediction_test(float(means[0]), means[1:].tolist(), se_observed=float(ses[0]), se_null=ses[1:].tolist(),
                         units=names)
    if pt is None:
        return TestResult.skip(NAME, "the null could not be formed (non-finite values)")
    # The suspect's column effect: how much likelier the control scorers find its answers than each other's. A text-only
    # suspect has no yardstick of its own, so this is the only view of its kind (descriptive; the test does not use it).
    fluency = float(np.mean(table[1:, 0]) - np.mean([table[i, j] for i in range(1, len(scorers))
                                                      for j in range(1, len(sources)) if i != j]))
    ids = list(probe_ids) if probe_ids is not None else [str(i) for i in range(n)]
    order = np.argsort(-per_prompt[0], kind="stable")[:5]
    unit = "tetrad sign (-1..1)" if statistic == "sign" else (
        "nats per byte, in panel-sharpness units" if statistic == "scaled" else "nats per byte")
    details.update({
        "candidate": "analysis v3; not used by audits", "statistic_kind": statistic, "t": pt.t, "df": pt.df,
        "observed": pt.observed, "observed_se": float(ses[0]), "null_values": list(pt.null_values),
        "null_units": list(pt.null_units), "null_se": ses[1:].tolist(), "tau2": pt.tau2, "null_mean": pt.mean,
        "null_scale": pt.scale, "rank_p_value": pt.rank_p, "controls_used": {u: units[u] for u in names},
        "controls_excluded": excluded, "suspect_fluency_excess": fluency, "effect_unit": unit})
    return TestResult(
        name=NAME, statistic=pt.observed, p_value=pt.p_value, n=n,
        null=(f"the reference x suspect interaction of per-byte log-likelihoods of the suspect's sampled answers "
              f"({statistic}), beyond the reference's sharpness and the answers' fluency, against the same interaction "
              f"of each of {len(names)} control lineages put in the suspect's seat (no lineage scores its own "
              f"answers); Student-t prediction test with the spread between lineages plus prompt error, df = {pt.df}"),
        effect=pt.effect, effect_ci=pt.effect_ci, details=details,
        top_probes=tuple(ids[i] for i in order if per_prompt[0, i] > 0), references=REFERENCES)
