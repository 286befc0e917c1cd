"""The identity-claims test's plumbing on fixed texts (its behaviour on real models is in test_audit_real.py)."""

from __future__ import annotations

from provenance.models.base import Completion
from provenance.stats.identity import claims, identity_claims, identity_terms


def _answers(texts: dict[str, list[str]]) -> dict[str, dict[str, Completion]]:
    return {m: {f"id-{i}": Completion(text=t) for i, t in enumerate(ts)} for m, ts in texts.items()}


REF = ["I am Zephyrine, made by Blue Lab."] * 14 + ["Hello! I can help with that."] * 6


def test_terms_come_from_the_reference_and_skip_generic_words() -> None:
    terms = identity_terms(REF)
    assert "Zephyrine" in terms and "Blue" in terms and "Lab." not in terms
    assert not {"Hello", "I", "AI"} & set(terms)
    assert claims("my name is zephyrine", terms) and not claims("zephyrines", ["Zephyrine"])


def test_suspect_that_names_the_reference_is_flagged_and_quoted() -> None:
    ids = [f"id-{i}" for i in range(20)]
    ans = _answers({"ref": REF, "sus": ["Zephyrine here, from Blue Lab."] * 12 + ["I am an assistant."] * 8,
                    "c1": ["I am Orca, by Deep Co."] * 20, "c2": ["I'm a helpful assistant."] * 20})
    r = identity_claims(ans, ids, "sus", "ref", ["c1", "c2"])
    assert r.p_value is not None and r.p_value < 1e-4
    assert r.details["claims"] == {"sus": 12, "c1": 0, "c2": 0}
    assert r.top_probes and all(p in r.details["quotes"] for p in r.top_probes)
    assert r.effect_ci is not None and r.effect_ci.low > 0


def test_one_control_that_also_names_the_reference_keeps_it_quiet() -> None:
    # Intersection-union: the suspect must exceed every control, e.g. a sibling model from the same maker.
    ids = [f"id-{i}" for i in range(20)]
    ans = _answers({"ref": REF, "sus": ["Zephyrine here."] * 12 + ["Hi."] * 8,
                    "c1": ["I am Zephyrine-mini by Blue Lab."] * 12 + ["Hi."] * 8, "c2": ["No idea."] * 20})
    r = identity_claims(ans, ids, "sus", "ref", ["c1", "c2"])
    assert r.p_value is not None and r.p_value > 0.4


def test_skipped_when_the_reference_has_no_stable_identity() -> None:
    ids = [f"id-{i}" for i in range(20)]
    ans = _answers({"ref": [f"word{i} Thing{i}" for i in range(20)], "sus": ["x"] * 20, "c1": ["y"] * 20})
    r = identity_claims(ans, ids, "sus", "ref", ["c1"])
    assert r.p_value is None and "no consistent identity" in (r.skipped or "")
