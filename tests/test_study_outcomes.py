"""Version 3's pre-registered extra outcomes: the Cauchy combination, check-firing, students of a source, counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance.study.outcomes import (cauchy, checks_fired, combination_counts, combined, family_tail, main,
                                       sequence_detection, source_family, student_of_a_source)


def test_cauchy_combination_is_uniform_under_independence_and_keeps_tiny_p() -> None:
    rng = np.random.default_rng(0)
    ps = [cauchy(list(rng.uniform(size=3))) for _ in range(20_000)]
    for a in (0.05, 0.01):  # a valid level-a test: the rate of p < a is a (within sampling error) under H0
        assert abs(np.mean(np.array(ps) < a) - a) < 4 * np.sqrt(a * (1 - a) / len(ps))
    assert cauchy([1e-12, 0.5, 0.9]) == pytest.approx(1e-12 * 3, rel=1e-3)  # one tiny p over 3: about 3p
    assert cauchy([0.3]) == pytest.approx(0.3) and cauchy([None]) is None
    assert 0.99 < cauchy([1.0, 0.999]) <= 1.0


def row(kind: str, ps: dict[str, float | None], **kw: Any) -> dict[str, Any]:
    base = {"type": kind, "budget": 200, "access": "logits", "split": "dev", "case": "c", "suspect": "s/seq",
            "reference": "r/root", "relation_kind": "sequence" if kind == "related" else None, "design": None,
            "verdict": "no_evidence", "reason": "", "placebo_flagged": [], "competence": {"ran": True,
                                                                                        "suspect_outside": False},
            "families": {"suspect": ["c01"]}, "comparison_sources": [],
            "tests": {k: {"p": v} for k, v in ps.items()}, "schema": "provenance-study-rows/1"}
    return {**base, **kw}


def test_combined_p_by_each_rule_and_the_checks() -> None:
    r = row("null", {"output_agreement": 0.004, "next_token_divergence": 0.5, "identity_claims": 0.0001,
                     "weight_alignment": 0.2})
    assert combined(r, "bonferroni") == pytest.approx(min(1, 2 * min(2 * 0.004, 0.2)))  # identity never counts
    assert combined(r, "cauchy") == pytest.approx(2 * cauchy([0.004, 0.5]))
    assert not checks_fired(r)
    assert checks_fired({**r, "placebo_flagged": ["x"]})
    assert checks_fired({**r, "reason": "the suspect would be flagged (p=0.001), but ..."})
    assert checks_fired({**r, "competence": {"ran": True, "suspect_outside": True}})


def test_students_of_a_comparison_source_are_found_by_family() -> None:
    assert source_family("/x/zoo/lineages-v1/families/c11/root") == "c11"
    assert source_family("qwen2.5-coder-0.5b-instruct") == "p-qwen25"
    r = row("null", {}, families={"suspect": ["c11"]}, comparison_sources=["/z/families/c11/root"])
    assert student_of_a_source(r) and not student_of_a_source({**r, "comparison_sources": ["/z/families/c12/root"]})


def test_counts_tail_and_detection_on_the_same_cases(tmp_path: Path) -> None:
    nulls = [row("null", {"output_agreement": 0.5, "capable_likelihood": 0.006}, case=f"n{i}", design="matched")
             for i in range(3)] + [row("null", {"output_agreement": 0.2, "capable_likelihood": 0.3}, case="n9")]
    rel = [row("related", {"output_agreement": 0.001, "capable_likelihood": 0.001}, case=f"r{i}",
               verdict="distilled") for i in range(2)]
    c = combination_counts([*nulls, *rel])["logits/dev"]
    assert c["null/bonferroni"]["k"] == 0 and c["related/bonferroni"]["k"] == 2 and c["related/cauchy"]["k"] == 2
    t = family_tail([*nulls, *rel])
    assert t["all"]["ran"] == 4 and t["all"]["0.01"]["k"] == 3 and t["by_design"]["matched"]["ran"] == 3
    v2 = [{**rel[0], "verdict": "no_evidence"}, {**rel[1], "case": "elsewhere"}]
    d = sequence_detection(rel, v2)["logits/all"]
    assert d["v3"]["n"] == 1 and d["v3"]["k"] == 1 and d["v2"]["k"] == 0  # only the key both versions ran
    for name, rows in (("v3.jsonl", [*nulls, *rel]), ("v2.jsonl", v2)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    main([str(tmp_path / "v3.jsonl"), str(tmp_path / "v2.jsonl"), str(tmp_path / "out")])
    assert "Cauchy" in (tmp_path / "out" / "outcomes.md").read_text()
    assert json.loads((tmp_path / "out" / "outcomes.json").read_text())["rows"] == 6


def test_competence_calibration_counts_would_be_flags_by_distance_band_and_decides_on_the_let_through_nulls() -> None:
    from provenance.study.outcomes import band, competence_calibration, distances, markdown, outcomes

    assert [band(d) for d in (-0.5, -0.3, -0.15, -0.01, 0.0, 0.15, 0.2, 0.31)] == [
        "below -0.30", "-0.30 to -0.15", "-0.15 to 0", "-0.15 to 0", "inside", "0 to 0.15", "0.15 to 0.30",
        "above 0.30"]

    def comp(d: float) -> dict[str, Any]:
        return {"ran": True, "suspect_outside": abs(d) > 0.15, "distance": d, "margin": 0.15}

    # 20 null cases just outside the range, none below ALPHA; 5 far outside, all below it (the check stops them).
    near = [row("null", {}, case=f"n{i}", p_value=0.4, competence=comp(0.1)) for i in range(20)]
    far = [row("null", {}, case=f"f{i}", p_value=0.001, competence=comp(0.5)) for i in range(5)]
    plac = [row("null", {}, case="p", p_value=0.001, placebo_flagged=["c1"], competence=comp(0.05))]
    rows = near + far + plac
    c = competence_calibration(rows, distances(rows))
    assert c["logits"]["null"]["above 0.30"]["k"] == 5 and c["logits"]["null"]["0 to 0.15"]["n"] == 21
    assert c["logits"]["null_let_through"]["k"] == 0 and c["logits"]["null_let_through"]["n"] == 21
    assert c["margin_measured"] is True
    # One let-through null case below ALPHA without a placebo and the margin is not measured.
    worse = rows + [row("null", {}, case="w", p_value=0.002, competence=comp(-0.1))]
    assert competence_calibration(worse, distances(worse))["margin_measured"] is False
    # Distances taken from another arm's rows apply by case id; rows without them are left out.
    o = outcomes([row("null", {}, case="n0", p_value=0.4), row("null", {}, case="zz", p_value=0.4)], [],
                 distances(near))
    assert o["competence_calibration"]["logits"]["null_let_through"]["n"] == 1
    assert "Amendment 3" in markdown(o) and "not met" in markdown(o)


def test_reproduction_compares_each_family_p_case_for_case() -> None:
    """Protocol v3, amendment 5: two arms on one build give the same p for every family the likelihood prompts do not
    touch; a rebuild's other weights give other values, and they are counted (no verdict or truth is read)."""
    from provenance.study.reproduce import compare

    def r(case: str, access: str, **ps: float | None) -> dict:
        return {"case": case, "budget": 200, "access": access, "tests": {f: {"p": p} for f, p in ps.items()}}

    a = [r("null-dev-0001", "weights", output_agreement=0.3, weight_alignment=0.5, capable_likelihood=0.2),
         r("null-dev-0002", "weights", output_agreement=0.01, weight_alignment=None, capable_likelihood=0.9),
         r("null-dev-0003", "weights", output_agreement=0.4, weight_alignment=0.2)]
    b = [r("null-dev-0001", "weights", output_agreement=0.3 * (1 + 1e-12), weight_alignment=0.5, capable_likelihood=0.7),
         r("null-dev-0002", "weights", output_agreement=0.02, weight_alignment=None, capable_likelihood=0.9)]
    got = compare(a, b, ["output_agreement", "weight_alignment"])
    assert got["cases"] == 2 and got["rows"] == 2 and not got["all_same"]
    assert got["families"]["output_agreement"] == {"compared": 2, "same": 1}
    assert got["families"]["weight_alignment"] == {"compared": 2, "same": 2, "within_monte_carlo": 0, "mean_z2": 0.0}
    assert got["first_differences"] == [{"case": "null-dev-0002", "budget": 200, "access": "weights",
                                         "family": "output_agreement", "a": 0.01, "b": 0.02}]
    assert compare(a[:1], b[:1], ["output_agreement", "weight_alignment"])["all_same"]
    assert not compare(a[2:], b, ["output_agreement"])["all_same"]  # nothing in common proves nothing


def test_a_monte_carlo_family_is_compared_within_its_error_when_the_fingerprints_differ() -> None:
    """Protocol v3, amendment 6: weight alignment's p is drawn with a generator seeded by the models' fingerprints, so
    a rebuild with other fingerprints (or rows that record none) gives another p from the same weights; that is the
    same within Monte Carlo error, other weights are not, and equal fingerprints still demand equality."""
    import numpy as np

    from provenance.study.reproduce import compare

    def r(i: int, p: float, fp: str | None = None) -> dict:
        return {"case": f"related-dev-{i:04d}", "budget": 200, "access": "weights",
                "tests": {"weight_alignment": {"p": p}, "output_agreement": {"p": 0.1 + i / 1000}},
                **({"build": {"fingerprints": {"suspect": fp}}} if fp else {})}

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 60)
    draw = lambda: [float((rng.binomial(999, t) + 1) / 1000) for t in truth]  # noqa: E731  two seeds, same weights
    a, b = draw(), draw()
    got = compare([r(i, p) for i, p in enumerate(a)], [r(i, p) for i, p in enumerate(b)])
    fam = got["families"]["weight_alignment"]
    assert got["all_same"] and got["differing_cases"] == [] and fam["same"] == 60
    assert fam["within_monte_carlo"] > 50 and 0.4 < fam["mean_z2"] < 1.8
    # Equal recorded fingerprints: the same seed, so the same p is required.
    got = compare([r(i, p, "x") for i, p in enumerate(a)], [r(i, p, "x") for i, p in enumerate(b)])
    assert not got["all_same"] and len(got["differing_cases"]) > 50
    # One case far outside seed error; then a whole family of other weights, each case within 4 sigma.
    far = list(b)
    far[3] = 0.001 if a[3] > 0.2 else 0.9
    got = compare([r(i, p) for i, p in enumerate(a)], [r(i, p) for i, p in enumerate(far)])
    assert got["differing_cases"] == ["related-dev-0003"]
    shifted = [min(0.999, max(0.001, p + (0.045 if i % 2 else -0.045))) for i, p in enumerate(a)]
    got = compare([r(i, p) for i, p in enumerate(a)], [r(i, p) for i, p in enumerate(shifted)])
    assert got["families"]["weight_alignment"]["mean_z2"] > 2 and len(got["differing_cases"]) == 60


def test_stage_a_pairs_the_arms_and_refuses_an_incomplete_stage() -> None:
    """Protocol v3, amendments 1 and 5: stage A's choice between the arms is computed only on a complete stage, on the
    same cases paired, leaving out cases measured on other models (a family the likelihood prompts do not touch gives
    another p); more than 5% of those stops the arm."""
    from provenance.study.arms import compare_arms, markdown

    def row(case: str, verdict: str, oa: float = 0.5, access: str = "logits", kind: str = "sequence") -> dict:
        return {"case": case, "budget": 200, "access": access, "split": "dev", "type": "related",
                "relation_kind": kind, "verdict": verdict,
                "tests": {"output_agreement": {"p": oa}, "capable_likelihood": {"p": 0.01}}}

    ids = [f"related-dev-{i:04d}" for i in range(40)]
    cont = [row(c, "distilled" if i < 5 else "no_evidence") for i, c in enumerate(ids)]
    cont.append(row("related-dev-0999", "no_evidence", kind="logit"))  # not a sequence-level student: not stage A
    ins = [row(c, "distilled" if 3 <= i < 12 else "no_evidence") for i, c in enumerate(ids)]
    with pytest.raises(ValueError, match="1 of its 40 cases have no row"):
        compare_arms(ins[:-1], cont)
    o = compare_arms(ins, cont)
    assert o["compared"] == 40 and o["instructions"]["k"] == 9 and o["continuation"]["k"] == 5
    assert (o["both"], o["only_instructions"], o["only_continuation"]) == (2, 7, 3)
    assert o["instructions_detects_more"] and "stage B" in o["decision"]
    assert abs(o["mcnemar_exact_p"] - 0.34375) < 1e-9  # two-sided binomial, 7 of 10 discordant
    assert "7" in markdown(o) and "McNemar" in markdown(o)
    ins[0] = row(ids[0], "distilled", oa=0.25)  # one case on another model: left out and listed
    o = compare_arms(ins, cont)
    assert o["not_reproduced"] == [ids[0]] and o["compared"] == 39
    for i in range(1, 3):
        ins[i] = row(ids[i], "distilled", oa=0.25)
    o = compare_arms(ins, cont)  # 3 of 40 > 5%: stopped, no comparison
    assert "compared" not in o and o["decision"].startswith("not made")
