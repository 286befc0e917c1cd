"""Unit tests of the statistics core with known answers (scipy cross-checks where scipy has the same construction)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from provenance.sequential import sequential_schedule
from provenance.stats.base import TestResult
from provenance.stats.nulls import Design, by_lineage, interaction, logit_affinity, prediction_test, rank_p
from provenance.stats.similarity import text_agreement, topk_similarity
from provenance.stats.weights import weight_permutation_test
from provenance.verdict import (DERIVED, DISTILLED, INCONCLUSIVE, NO_EVIDENCE, Combined, bonferroni, combine, decide,
                                holm)


def test_prediction_test_known_answer() -> None:
    pt = prediction_test(3.0, [0.0, 1.0, 2.0])
    assert pt is not None
    # mean 1, s^2 = 1, no sampling error: var = tau^2 (1 + 1/m) = 4/3
    assert pt.scale == pytest.approx(math.sqrt(4 / 3))
    assert pt.t == pytest.approx(2 / math.sqrt(4 / 3))
    assert pt.df == 2 and pt.p_value == pytest.approx(sps.t.sf(pt.t, 2))
    assert pt.rank_p == pytest.approx(1 / 4)


def test_identical_null_values_keep_their_sampling_error() -> None:
    # Three controls at the same discrete floor: the old fixed 0.05 floor gave p ~ 5e-4 for one more agreeing probe;
    # with each value's own error (about one probe's worth on the logit scale) the test stays calm.
    floor, se = logit_affinity(np.r_[np.ones(1), np.zeros(49)])
    one_more, se2 = logit_affinity(np.r_[np.ones(2), np.zeros(48)])
    pt = prediction_test(one_more, [floor] * 3, se_observed=se2, se_null=[se] * 3)
    assert pt is not None and pt.p_value > 0.2 and pt.rank_p == 0.25


def test_prediction_test_needs_two_units_and_is_calibrated() -> None:
    assert prediction_test(1.0, [0.0]) is None
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(4000):  # exchangeable normal units with known sampling error: P(p < 0.05) is about 0.05
        tau = rng.normal(size=5)
        se = 0.5
        vals = tau + rng.normal(scale=se, size=5)
        pt = prediction_test(vals[0], vals[1:], se_observed=se, se_null=[se] * 4)
        assert pt is not None
        ps.append(pt.p_value)
    assert np.mean(np.array(ps) < 0.05) == pytest.approx(0.05, abs=0.015)


def test_rank_p_counts_ties_against_the_observed_value() -> None:
    assert rank_p(1.0, [1.0, 0.0, 2.0]) == 3 / 4


def test_by_lineage_collapses_siblings() -> None:
    units, vals, errs = by_lineage({"a1": 1.0, "a2": 3.0, "b": 5.0}, {"a1": 0.3, "a2": 0.4, "b": 0.1},
                                   {"a1": "A", "a2": "A", "b": "B"})
    assert units == ["A", "B"] and vals == [2.0, 5.0]
    assert errs[0] == pytest.approx(math.sqrt((0.09 + 0.16) / 2)) and errs[1] == pytest.approx(0.1)


def test_interaction_removes_main_effects_and_finds_a_planted_one() -> None:
    nodes = ["s", "r", "u1", "u2", "u3"]
    eff = dict(zip(nodes, [2.0, 1.5, -1.0, 0.0, 0.5]))
    additive = lambda a, b: eff[a] + eff[b]  # noqa: E731
    same = lambda a, b: a == b  # noqa: E731
    rows, cols = ["s", "u1", "u2", "u3"], ["r", "u1", "u2", "u3"]
    assert interaction(additive, "s", "r", rows, cols, same) == pytest.approx(0.0)
    planted = lambda a, b: additive(a, b) + (0.7 if {a, b} == {"s", "r"} else 0.0)  # noqa: E731
    assert interaction(planted, "s", "r", rows, cols, same) == pytest.approx(0.7)


def test_logit_affinity_is_finite_at_the_edges() -> None:
    v0, s0 = logit_affinity(np.zeros(50))
    v1, s1 = logit_affinity(np.ones(50))
    assert math.isfinite(v0) and math.isfinite(v1) and v0 == pytest.approx(-v1) and s0 > 0.5
    v, _ = logit_affinity(np.array([np.nan, 1.0, 0.0]))  # a missing probe is left out, not counted as 0
    assert v == pytest.approx(0.0)


def test_placebo_design_moves_a_lineage_into_the_suspect_seat() -> None:
    d = Design("s", "r", {"A": ("a1", "a2"), "B": ("b",), "C": ("c",)})
    p = d.placebo("A")
    assert p.suspect == "a1" and set(p.units) == {"B", "C"} and "s" not in p.controls


def test_similarities() -> None:
    assert text_agreement("", "") == 0.0  # two empty answers are not perfect agreement
    assert text_agreement("a b c d e f", "a b x d e f") == pytest.approx(2 / 6)
    assert math.isnan(topk_similarity(None, ()))


def test_multiplicity_known_answers() -> None:
    assert bonferroni([0.01, 0.2, None]) == pytest.approx(0.02)
    assert bonferroni([None]) is None
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    from provenance.matrix import benjamini_hochberg

    ps = [0.01, 0.04, 0.03, 0.2]
    assert benjamini_hochberg(ps) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])


def _t(name: str, p: float | None) -> TestResult:
    return TestResult(name=name, statistic=0.0, p_value=p, n=50, null="")


DECIDING = ("output_agreement", "next_token_divergence", "reference_likelihood")


def test_combine_two_branches_and_identity_never_counts() -> None:
    c = combine([_t("output_agreement", 0.001), _t("reference_likelihood", 0.2), _t("identity_claims", 1e-9),
                 _t("weight_alignment", 0.5)], DECIDING)
    assert c.behaviour_p == pytest.approx(0.002) and c.weights_p == 0.5 and c.p_value == pytest.approx(0.004)
    assert c.carried_by == "behaviour" and "identity_claims" not in c.behaviour_families


def test_decision_rule() -> None:
    beh = Combined(0.004, 0.002, 0.5, DECIDING, "behaviour")
    assert decide(beh, 0.004, 0.004, 50).verdict == DISTILLED
    assert decide(beh, 0.004, 0.004, 50, placebo_flagged=["gemma"]).verdict == INCONCLUSIVE
    assert decide(beh, 0.004, 0.004, 10).verdict == INCONCLUSIVE  # too few probes
    w = Combined(2e-4, 0.3, 1e-4, DECIDING, "weights")
    assert decide(w, 2e-4, 2e-4, 50).verdict == DERIVED
    weak = Combined(0.0169, 0.0169, None, DECIDING, "behaviour")
    # A sequential look's price (x3) took p to 0.0507: that is weak evidence, never a finding of nothing.
    assert decide(weak, 0.0507, 0.0169, 50).verdict == INCONCLUSIVE
    assert decide(Combined(0.3, 0.3, None, DECIDING, "behaviour"), 0.3, 0.3, 50).verdict == NO_EVIDENCE
    assert decide(Combined(None, None, None, (), None), None, None, 50).verdict == INCONCLUSIVE


def test_sequential_schedule() -> None:
    assert sequential_schedule(200) == [(50, 0.1), (100, 0.2), (200, 0.7)]
    assert sequential_schedule(40) == [(40, 1.0)]  # looks too small to decide on move to the last


def test_weight_permutation_test_exact_floor_and_null() -> None:
    rng = np.random.default_rng(1)
    a = {"layers.0.mlp.up_proj.weight": rng.standard_normal((64, 32)).astype(np.float32)}
    same = weight_permutation_test(a, a, "llama", "llama", np.random.default_rng(0), 199)
    assert same.p_value == pytest.approx(1 / 200)
    b = {"layers.0.mlp.up_proj.weight": rng.standard_normal((64, 32)).astype(np.float32)}
    other = weight_permutation_test(a, b, "llama", "llama", np.random.default_rng(0), 199)
    assert other.p_value is not None and other.p_value > 0.01
    assert weight_permutation_test(a, b, "llama", "gpt2", np.random.default_rng(0)).skipped


def test_sampling_seed_depends_on_the_audit_seed_and_the_prompt_only() -> None:
    """--seed reaches sampling; a prompt's sampled answer does not depend on its batch or the budget (defect fixed)."""
    from provenance.collect import _request
    from provenance.models.fake import FakeBackend, parse_fake
    from provenance.probeset import load

    ps = load("instructions")
    a, b = (_request(ps, p.text, 7) for p in ps.probes[:2])
    assert a.seed is not None and a.seed != b.seed and _request(ps, a.prompt, 7).seed == a.seed
    assert _request(ps, a.prompt, 8).seed != a.seed
    assert _request(load("continuation"), "x", 7).seed is None  # greedy: no seed
    fake = FakeBackend("fake:m", parse_fake("fake:m"))
    alone = fake.generate([a])[0].text
    assert fake.generate([b, a])[1].text == alone  # same answer in another batch


def test_the_t_tail_and_quantile_are_scipy_stats_bit_for_bit() -> None:
    """nulls.py calls scipy.special directly (fast import); the numbers must be exactly scipy.stats.t's."""
    import numpy as np
    from scipy import stats as sps
    from scipy.special import stdtr, stdtrit

    rng = np.random.default_rng(0)
    for df in [1, 2, 3, 5, 8, 13, 40]:
        for t in [*rng.normal(0, 5, 50), 0.0, 40.0, -40.0, np.inf, -np.inf]:
            assert float(stdtr(df, -t)) == float(sps.t.sf(t, df))
        assert float(stdtrit(df, 0.975)) == float(sps.t.ppf(0.975, df))
