"""The identity-claims test: plumbing on fixed texts, and detection on real models (a heavy test, outside CI)."""

from __future__ import annotations

import pytest

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


@pytest.mark.heavy
def test_real_derived_model_names_its_origin(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A noised copy of Qwen2.5 still says it is Qwen, made by Alibaba Cloud; SmolLM2 and Gemma never do.

    Measured 2026-11-28: terms ['Alibaba', 'Cloud'], claims 8/10 vs 0/10 and 0/10, p = 3.6e-4. About 10 minutes on
    2 busy cores (a 0.5B model copied in float32 and loaded twice), hence `heavy`: outside the default suite.
    """
    from tests.conftest import have_packaged

    if not have_packaged():
        pytest.skip("packaged model packages not installed (scripts/setup.sh)")
    from provenance.audit import identity_plan
    from provenance.collect import collect
    from provenance.models import resolve
    from provenance.probeset import load
    from provenance.zoo.derive import noised_copy

    qwen = "qwen2.5-coder-0.5b-instruct"
    suspect = str(noised_copy(qwen, tmp_path_factory.mktemp("qwen") / "qwen-noised", 0.02, seed=3))
    specs = [suspect, qwen, "smollm2-135m-instruct", "gemma-3-270m"]
    plan = identity_plan(80, load("identity"))  # 10 questions
    models = [resolve(s) for s in specs]
    ev = collect(models, [plan], progress=False)
    answers = {s: ev[m.fingerprint].answers["identity"] for s, m in zip(specs, models)}
    ids = [p.id for p in plan.probes]
    r = identity_claims(answers, ids, suspect, qwen, specs[2:])
    print("identity:", r.details["identity_terms"], r.details["claims"], r.p_value)
    assert {"Alibaba", "Qwen"} & set(r.details["identity_terms"])
    assert r.p_value is not None and r.p_value < 0.01 and r.top_probes
    # The other way round: SmolLM2 does not claim to be Qwen (p = 1, no false accusation).
    back = identity_claims(answers, ids, "smollm2-135m-instruct", qwen, [specs[3]])
    assert back.p_value is not None and back.p_value > 0.5
