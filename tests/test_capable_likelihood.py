"""Known answers, balance under masking, lineage handling and a seeded null check of the capable-sources candidate."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.stats.capable_likelihood import capable_likelihood
from provenance.stats.nulls import interaction

# Scorers: the suspect and controls; a1, a2 are students of source A (one unit), b1 of source B, t1..t3 teacher-free.
CONTROLS = ("a1", "a2", "b1", "t1", "t2", "t3")
SOURCES = ("A", "B")
LINEAGE = {"R": "r", "A": "a", "B": "b", "a1": "a", "a2": "a", "b1": "b", "t1": "t1", "t2": "t2", "t3": "t3"}


def additive(rng: np.random.Generator, n: int = 30, fluency: dict[str, float] | None = None
             ) -> dict[str, dict[str, np.ndarray]]:
    """x(i, j, p) = a_i + b_j + prompt_p: no lineage anywhere, sources of very different fluency."""
    fl = fluency or {"R": 0.0, "A": 0.6, "B": -0.5}
    prompt = rng.normal(0, 0.3, n)
    return {i: {j: -1.8 + 0.1 * k + fl[j] + prompt for j in ("R", *SOURCES)} for k, i in enumerate(("S", *CONTROLS))}


def test_an_obvious_table_gives_the_obvious_answer() -> None:
    # Additive plus 0.2 nats/byte on (S, R): every tetrad of the suspect's row is 0.2, every unit's exactly 0.
    scores = additive(np.random.default_rng(1))
    scores["S"]["R"] = scores["S"]["R"] + 0.2
    r = capable_likelihood(scores, "S", "R", SOURCES, LINEAGE)
    assert r.skipped is None
    assert r.statistic == pytest.approx(0.2)
    assert r.details["null_units"] == ["a", "b", "t1", "t2", "t3"]
    assert r.details["null_values"] == pytest.approx([0.0] * 5, abs=1e-12)
    assert r.p_value < 1e-9 and r.details["rank_p_value"] == pytest.approx(1 / 6)


def test_masking_cannot_move_the_statistic_where_the_double_centred_interaction_does() -> None:
    # Sources A and B differ in fluency by 1.1 nats/byte. A's students never score A's answers. The tetrad mean leaves
    # every unit at exactly 0; the double-centred interaction with masked cells puts A's students at a non-zero value.
    scores = additive(np.random.default_rng(2))
    r = capable_likelihood(scores, "S", "R", SOURCES, LINEAGE)
    assert r.details["null_values"] == pytest.approx([0.0] * 5, abs=1e-12)
    assert r.statistic == pytest.approx(0.0, abs=1e-12)

    units = {"a": ("a1", "a2"), "b": ("b1",), "t1": ("t1",), "t2": ("t2",), "t3": ("t3",)}

    def cell(row: str, col: str) -> np.ndarray:
        return np.mean([scores[m][col] for m in units[row]], axis=0)

    g = interaction(cell, "a", "R", list(units), ["R", *SOURCES], lambda i, j: i == LINEAGE.get(j))
    assert abs(float(np.mean(g))) > 0.2  # unbalanced: half of A's fluency advantage over B


def test_statistic_is_the_mean_of_every_admissible_tetrad() -> None:
    # A second, literal implementation, from a table of noise.
    rng = np.random.default_rng(3)
    scores = {i: {j: rng.normal(-1.8, 0.4, 8) for j in ("R", *SOURCES)} for i in ("S", *CONTROLS)}
    r = capable_likelihood(scores, "S", "R", SOURCES, LINEAGE)
    rows = {"a": {j: (scores["a1"][j] + scores["a2"][j]) / 2 for j in ("R", *SOURCES)},
            **{u: scores[u] for u in ("b1", "t1", "t2", "t3")}}
    lin = {"a": "a", "b1": "b", "t1": "t1", "t2": "t2", "t3": "t3"}
    tets = [scores["S"]["R"] - scores["S"][j] - rows[i]["R"] + rows[i][j]
            for j in SOURCES for i in rows if lin[i] != LINEAGE[j]]
    assert r.statistic == pytest.approx(float(np.mean(np.mean(tets, axis=0))))


def test_lineage_rules_and_refusals() -> None:
    scores = additive(np.random.default_rng(4))
    # A control of the reference's lineage is left out and named.
    scores["r1"] = dict(scores["t1"])
    r = capable_likelihood(scores, "S", "R", SOURCES, {**LINEAGE, "r1": "r"})
    assert r.details["controls_excluded"] == ["r1"]
    assert "r1" not in sum(r.details["controls_used"].values(), [])
    # A comparison source of the reference's own lineage is not a comparison.
    r = capable_likelihood(scores, "S", "R", ("A", "B"), {**LINEAGE, "A": "r"})
    assert r.details["sources"] == ["B"]
    assert r.details["units_without_null_value"] == ["b"]  # B's student may read no comparison source left
    # Controls of unknown lineage are each their own unit, never pooled into one "unknown" lineage.
    r = capable_likelihood(scores, "S", "R", SOURCES, {**LINEAGE, "t1": "unknown", "t2": "unknown", "r1": "r"})
    assert {"unknown:t1", "unknown:t2"} <= set(r.details["null_units"])
    # Too few control lineages, no independent source, or a score missing: one-line refusals, never a number.
    few = {k: v for k, v in scores.items() if k in ("S", "t1", "t2")}
    assert "needs at least" in (capable_likelihood(few, "S", "R", SOURCES, LINEAGE).skipped or "")
    assert "no comparison source" in (capable_likelihood(scores, "S", "R", ("R",), LINEAGE).skipped or "")
    gap = {k: dict(v) for k, v in scores.items()}
    del gap["t2"]["B"]  # a control that did not score every source (no logits access) is left out of its unit
    r = capable_likelihood(gap, "S", "R", SOURCES, LINEAGE)
    assert "t2" not in sum(r.details["controls_used"].values(), []) and not r.skipped
    del gap["S"]["B"]  # the suspect must score them all
    assert "the suspect did not score ['B']" in (capable_likelihood(gap, "S", "R", SOURCES, LINEAGE).skipped or "")


def test_seeded_null_is_not_liberal_and_a_student_is_found() -> None:
    # Exchangeable lineages with pair effects and prompt noise: the suspect is one more independent lineage (H0), or it
    # likes R's answers 0.3 nats/byte more (a student of R). Loose bounds: this guards against gross errors; the
    # calibration itself is bench/sims/capable_sources_null.py's.
    rng = np.random.default_rng(20261130)

    def table(effect: float) -> dict[str, dict[str, np.ndarray]]:
        n = 40
        quality = {j: rng.normal(0, 0.15) + rng.normal(0, 0.25, n) for j in ("R", *SOURCES)}
        out = {}
        for i in ("S", *CONTROLS):
            e = rng.normal(0, 0.1, n)
            out[i] = {j: -1.8 + quality[j] + e + rng.normal(0, 0.05) + rng.normal(0, 0.05, n)
                      + (0.3 if LINEAGE.get(i) == LINEAGE[j] else 0.0) for j in ("R", *SOURCES)}
        out["S"]["R"] = out["S"]["R"] + effect
        return out

    null = [capable_likelihood(table(0.0), "S", "R", SOURCES, LINEAGE).p_value for _ in range(300)]
    alt = [capable_likelihood(table(0.3), "S", "R", SOURCES, LINEAGE).p_value for _ in range(60)]
    assert np.mean(np.array(null) < 0.05) <= 0.08
    assert np.mean(np.array(alt) < 0.05) >= 0.5
