"""The identity-claims test: plumbing on fixed texts, and detection on real models (a heavy test, outside CI)."""

from __future__ import annotations

import pytest

from provenance.evidence import Completion
from provenance.stats.identity import claims, identity_claims, learned_markers
from provenance.stats.nulls import Design


def _answers(texts: dict[str, list[str]]) -> dict[str, dict[str, Completion]]:
    return {m: {f"id-{i}": Completion(text=t) for i, t in enumerate(ts)} for m, ts in texts.items()}


REF = ["I am ZephyrLM, made by BlueLab."] * 14 + ["Whether you need help, I can help."] * 6
IDS = [f"id-{i}" for i in range(20)]
THREE = {"a": ("c1",), "b": ("c2",), "c": ("c3",)}
FIVE = {**THREE, "d": ("c4",), "e": ("c5",)}


def test_markers_are_name_like_and_matched_case_sensitively() -> None:
    terms = learned_markers(REF)
    assert terms == ["BlueLab", "ZephyrLM"]  # "Whether" (sentence-initial word, 6 of 20 answers) is not a name
    assert claims("I am ZephyrLM", terms) and not claims("i am zephyrlm", terms) and not claims("ZephyrLMs", terms)


def test_suspect_that_names_the_reference_is_flagged_and_quoted() -> None:
    ans = _answers({"ref": REF, "sus": ["ZephyrLM here, from BlueLab."] * 12 + ["I am an assistant."] * 8,
                    "c1": ["I am Orca, by DeepCo."] * 20, "c2": ["I'm a helpful assistant."] * 20,
                    "c3": ["Hello there."] * 20, "c4": ["Hi."] * 20, "c5": ["I am Rook."] * 20})
    r = identity_claims(ans, IDS, Design("sus", "ref", FIVE))
    assert r.p_value is not None and r.p_value < 0.01 and r.details["rank_p_value"] == 1 / 6
    assert r.details["claims"] == {"sus": 12, "c1": 0, "c2": 0, "c3": 0, "c4": 0, "c5": 0}
    assert r.top_probes and all(p in r.details["quotes"] for p in r.top_probes)


def test_a_control_lineage_that_also_names_the_reference_keeps_it_quiet() -> None:
    ans = _answers({"ref": REF, "sus": ["ZephyrLM here."] * 12 + ["Hi."] * 8,
                    "c1": ["I am ZephyrLM-mini by BlueLab."] * 12 + ["Hi."] * 8, "c2": ["No idea."] * 20,
                    "c3": ["Hello."] * 20})
    r = identity_claims(ans, IDS, Design("sus", "ref", THREE))
    assert r.p_value is not None and r.p_value > 0.05


def test_curated_names_are_used_and_too_few_lineages_skip() -> None:
    ans = _answers({"ref": ["Hi."] * 20, "sus": ["I am Gemma."] * 20, "c1": ["x"] * 20, "c2": ["y"] * 20,
                    "c3": ["z"] * 20})
    r = identity_claims(ans, IDS, Design("sus", "ref", THREE), curated=("Gemma",))
    assert r.details["markers"] == ["Gemma"] and r.details["claims"]["sus"] == 20
    r2 = identity_claims(ans, IDS, Design("sus", "ref", {"a": ("c1",), "b": ("c2",)}), curated=("Gemma",))
    assert r2.p_value is None and "control lineages" in (r2.skipped or "")


def test_skipped_when_the_reference_has_no_stable_identity() -> None:
    ans = _answers({"ref": [f"word{i} Thing{i}" for i in range(20)], "sus": ["x"] * 20, "c1": ["y"] * 20})
    r = identity_claims(ans, IDS, Design("sus", "ref", {"a": ("c1",)}))
    assert r.p_value is None and "no consistent identity" in (r.skipped or "")


@pytest.mark.slow
@pytest.mark.heavy
def test_real_derived_model_names_its_origin(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A noised copy of Qwen2.5 still says it is Qwen, made by Alibaba Cloud; SmolLM2 and Gemma never do.

    Measured 2026-11-28: terms ['Alibaba', 'Cloud'], claims 8/10 vs 0/10 and 0/10, p = 3.6e-4. About 10 minutes on
    2 busy cores (a 0.5B model copied in float32 and loaded twice), hence `heavy`: outside the default suite.
    """
    from tests.conftest import have_packaged

    if not have_packaged():
        pytest.skip("packaged model packages not installed (scripts/setup.sh)")
    from provenance.analysis import identity_plan
    from provenance.models.packaged import markers_of
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
    # Two control lineages are too few for the family's model-level null; the claim counts are the finding here.
    markers = sorted(set(markers_of("qwen")) | set(learned_markers([answers[qwen][i].text for i in ids])))
    counts = {s: sum(claims(answers[s][i].text, markers) for i in ids) for s in specs}
    print("identity:", markers, counts)
    assert counts[suspect] >= 6 and counts["smollm2-135m-instruct"] == 0 and counts["gemma-3-270m"] == 0
