"""Known answers, invariances, lineage masking and a seeded null check of the candidate text-only likelihood family."""

from __future__ import annotations

import math

import numpy as np
import pytest

from provenance.stats.text_likelihood import STATISTICS, answer_sharpness, fluency_excess, text_likelihood, unit_values

CONTROLS = ("a", "b", "c", "d")
LINEAGE = {"S": "s-family", "R": "r-family", "a": "A", "b": "B", "c": "C", "d": "D"}
SCORERS = ("R", *CONTROLS)
SOURCES = ("S", "R", *CONTROLS)


def rows_linear(rng: np.random.Generator, n: int = 40, noise: float = 0.05) -> dict[str, dict[str, np.ndarray]]:
    """x(i, j, p) = a_i + s_i q(j, p) + noise: scorers differ in offset and sharpness, sources in fluency."""
    offset = {m: rng.normal(-1.5, 0.2) for m in SCORERS}
    sharp = {m: math.exp(rng.normal(0, 0.2)) for m in SCORERS}
    quality = {m: rng.normal(0, 0.15) + rng.normal(0, 0.25, n) for m in SOURCES}
    return {i: {j: offset[i] + sharp[i] * quality[j] + rng.normal(0, noise, n) for j in SOURCES} for i in SCORERS}


def yardstick(rng: np.random.Generator) -> dict[str, np.ndarray]:
    passages = rng.normal(0, 0.3, 12)
    return {m: rng.normal(-1.5, 0.2) + math.exp(rng.normal(0, 0.2)) * passages for m in SCORERS}


def run(scores: dict[str, dict[str, np.ndarray]], statistic: str, **kw: object) -> np.ndarray:
    """The statistic, the p-value and the null values, flat (so pytest.approx compares them all)."""
    r = text_likelihood(scores, "S", "R", LINEAGE, statistic=statistic, **kw)  # type: ignore[arg-type]
    assert r.skipped is None and r.statistic is not None and r.p_value is not None, r.skipped
    return np.array([r.statistic, r.p_value, *r.details["null_values"]])


def test_an_obvious_table_gives_the_obvious_answer() -> None:
    # Purely additive (scorer offsets, source fluencies, prompt effects) plus 0.2 nats/byte on (R, S): the
    # interaction is exactly 0.2 on every prompt, every null unit's exactly 0, so p = 0 and the rank p is its floor.
    rng = np.random.default_rng(1)
    n = 10
    prompt = rng.normal(0, 0.3, n)
    row = {m: rng.normal(-1.5, 0.3) for m in SCORERS}
    col = {m: rng.normal(0, 0.3) for m in SOURCES}
    scores = {i: {j: row[i] + col[j] + prompt for j in SOURCES} for i in SCORERS}
    scores["R"]["S"] = scores["R"]["S"] + 0.2
    for statistic, expected in (("interaction", 0.2), ("sign", 1.0)):
        r = text_likelihood(scores, "S", "R", LINEAGE, statistic=statistic)  # type: ignore[arg-type]
        assert r.statistic == pytest.approx(expected)
        assert r.details["null_values"] == pytest.approx([0.0] * 4, abs=1e-12)
        assert r.p_value < 1e-12 and r.details["rank_p_value"] == pytest.approx(1 / 5)


def test_interaction_is_the_mean_of_every_admissible_tetrad() -> None:
    # A second, literal implementation: tetrads x(R,S) - x(R,j) - x(v,S) + x(v,j) over units v != j.
    rng = np.random.default_rng(2)
    t = rng.normal(size=(5, 5, 3))
    m = 4
    tets = [t[0, 0] - t[0, 1 + j] - t[1 + v, 0] + t[1 + v, 1 + j] for v in range(m) for j in range(m) if v != j]
    vals = unit_values(t, "interaction")
    assert vals[0] == pytest.approx(np.mean(tets, axis=0))
    assert unit_values(t, "sign")[0] == pytest.approx(np.mean(np.sign(tets), axis=0))
    # Unit 0 in the seat: scorers R, u1, u2, u3 and sources u0, u1, u2, u3; it never scores.
    tets0 = [t[0, 1] - t[0, 1 + j] - t[1 + v, 1] + t[1 + v, 1 + j] for v in (1, 2, 3) for j in (1, 2, 3) if v != j]
    assert vals[1] == pytest.approx(np.mean(tets0, axis=0))
    with pytest.raises(ValueError):
        unit_values(t[:3, :3], "interaction")  # two units cannot form a null


@pytest.mark.parametrize("statistic", STATISTICS)
def test_a_constant_on_a_scorer_or_a_source_changes_nothing(statistic: str) -> None:
    rng = np.random.default_rng(3)
    scores, ys = rows_linear(rng), yardstick(rng)
    base = run(scores, statistic, yardstick=ys)
    shifted = {i: {j: v + (0.7 if i == "R" else 0.0) - (0.4 if i == "b" else 0.0) for j, v in row.items()}
               for i, row in scores.items()}
    assert run(shifted, statistic, yardstick=ys) == pytest.approx(base)
    # A source made likelier under every scorer: by a constant for the unscaled statistics; for the scaled ones by
    # c times each scorer's own sharpness (that is what a more fluent source is in the rows-linear model).
    if statistic in ("interaction", "sign"):
        factor = {i: 1.0 for i in SCORERS}
    else:
        got = text_likelihood(scores, "S", "R", LINEAGE, statistic=statistic, yardstick=ys)  # type: ignore[arg-type]
        sharp = got.details["sharpness"]
        factor = {"R": sharp["reference"], **{c: sharp[LINEAGE[c]] for c in CONTROLS}}
    for source in ("S", "c"):
        moved = {i: {j: v + (0.5 * factor[i] if j == source else 0.0) for j, v in row.items()}
                 for i, row in scores.items()}
        assert run(moved, statistic, yardstick=ys) == pytest.approx(base)


def test_the_sign_statistic_ignores_per_prompt_offsets_and_the_scaled_one_a_sharper_reference() -> None:
    rng = np.random.default_rng(4)
    scores, n = rows_linear(rng), 40
    wobble = rng.normal(0, 1.0, n)  # a scorer's prompt-by-prompt offset (one prompt it finds hard throughout)
    moved = {i: {j: v + (wobble if i == "a" else 0.0) for j, v in row.items()} for i, row in scores.items()}
    assert run(moved, "sign")[0] == pytest.approx(run(scores, "sign")[0])
    # The reference 1.5 times as sharp on everything: the interaction moves, the answer-scaled statistic does not.
    sharper = {i: {j: v * (1.5 if i == "R" else 1.0) for j, v in row.items()} for i, row in scores.items()}
    assert run(sharper, "scaled_answers") == pytest.approx(run(scores, "scaled_answers"))
    assert run(sharper, "interaction")[0] != pytest.approx(run(scores, "interaction")[0])


def test_answer_sharpness_recovers_known_slopes() -> None:
    rng = np.random.default_rng(5)
    m, n = 4, 60
    slopes = np.array([1.6, 0.8, 1.0, 1.2, 0.9])
    quality = rng.normal(0, 0.3, (1 + m, n))
    t = rng.normal(0, 0.3, (1 + m, 1, 1)) + slopes[:, None, None] * quality[None] + rng.normal(0, 0.3, (1 + m, 1, n))
    got = answer_sharpness(t)
    assert got == pytest.approx(slopes / slopes[1:].mean(), rel=1e-8)


def test_related_cells_are_never_read() -> None:
    rng = np.random.default_rng(6)
    scores = rows_linear(rng)
    lineage = {**LINEAGE, "a2": "A", "rsib": "r-family", "ssib": "s-family"}
    base = text_likelihood(scores, "S", "R", LINEAGE, statistic="interaction")
    # A sibling of the reference and one of the suspect, with absurd scores: left out, and listed.
    for extra in ("rsib", "ssib"):
        scores[extra] = {j: np.full(40, 50.0) for j in SOURCES}
        for i in SCORERS:
            scores[i][extra] = np.full(40, -50.0)
    got = text_likelihood(scores, "S", "R", lineage, statistic="interaction")
    assert got.statistic == pytest.approx(base.statistic) and got.p_value == pytest.approx(base.p_value)
    assert sorted(got.details["controls_excluded"]) == ["rsib", "ssib"]
    # Siblings form one unit, and a sibling scoring a sibling (or itself) is never read: NaN there changes nothing.
    scores["a2"] = {j: v.copy() for j, v in scores["a"].items()}
    for i in SCORERS:
        scores[i]["a2"] = scores[i]["a"].copy()
    for i, j in (("a", "a2"), ("a2", "a"), ("a", "a"), ("a2", "a2")):
        scores[i][j] = np.full(40, np.nan)
    got = text_likelihood(scores, "S", "R", lineage, statistic="interaction")
    assert got.skipped is None and got.details["controls_used"]["A"] == ["a", "a2"]
    assert got.statistic == pytest.approx(base.statistic)
    assert text_likelihood(scores, "S", "R", {**lineage, "S": "r-family"}).skipped


def test_it_needs_three_lineages_and_every_cell() -> None:
    rng = np.random.default_rng(7)
    scores = rows_linear(rng)
    lineage = {**LINEAGE, "c": "B", "d": "B"}  # b, c, d are one lineage: two units left
    assert "at least 3" in (text_likelihood(scores, "S", "R", lineage).skipped or "")
    del scores["b"]["S"]
    assert "missing" in (text_likelihood(scores, "S", "R", LINEAGE).skipped or "")
    assert "yardstick" in (text_likelihood(rows_linear(rng), "S", "R", LINEAGE, statistic="scaled_yardstick").skipped
                           or "")


def test_fluency_excess_sees_a_fluent_suspect() -> None:
    rng = np.random.default_rng(8)
    scores = rows_linear(rng, noise=0.0)
    fluent = {i: {j: v + (0.5 if j == "S" else 0.0) for j, v in row.items()} for i, row in scores.items()}
    a = text_likelihood(scores, "S", "R", LINEAGE, statistic="interaction").details
    b = text_likelihood(fluent, "S", "R", LINEAGE, statistic="interaction").details
    assert b["fluency_excess"]["suspect"] - a["fluency_excess"]["suspect"] == pytest.approx(0.5)
    assert b["suspect_fluency_outside"]
    t = np.zeros((4, 4, 2))
    t[1:, 0] = 0.3
    assert fluency_excess(t)[..., 0] == pytest.approx(0.3)


def test_null_rejection_rate_and_power_seeded() -> None:
    # Exchangeable lineages with their own pair effects and lineage effects (masked): P(p < 0.05) stays near or under
    # 5% (the construction is conservative: the units' interactions are negatively correlated); a planted student
    # is found.
    rng = np.random.default_rng(9)
    models = ("S", "R", *CONTROLS)
    null_p, power_p = [], []
    for _ in range(150):
        n = 30
        c = {m: rng.normal(0, 0.15) for m in models}
        quality = {m: c[m] + rng.normal(0, 0.2, n) for m in models}
        pair = {(i, j): rng.normal(0, 0.02) for i in models for j in models}
        scores = {i: {j: c[i] + math.exp(c[i]) * quality[j] + pair[i, j] + rng.normal(0, 0.05, n) for j in models}
                  for i in SCORERS}
        null_p.append(run(scores, "scaled_answers")[1])
        scores["R"]["S"] = scores["R"]["S"] + 0.3 * (rng.random(n) < 0.5)  # half the answers in R's distribution
        power_p.append(run(scores, "scaled_answers")[1])
    assert np.mean(np.array(null_p) < 0.05) <= 0.07
    assert np.mean(np.array(power_p) < 0.05) >= 0.5
