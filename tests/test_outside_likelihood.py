"""Analysis v4's outside family: the transpose of capable_likelihood, its null on additive tables, lineage masking, and a
text-only chat suspect audited end to end (fake models: plumbing, not evidence)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from provenance.stats.capable_likelihood import tetrad_test
from provenance.stats.outside_likelihood import NAME, outside_test

R, J1, J2 = "ref", "src1", "src2"
UNITS = {f"u{i}": [f"c{i}"] for i in range(5)}
UNIT_OF = {R: "lin-ref", J1: "lin-j1", J2: "lin-j2"}


def _table(rng: np.random.Generator, n: int, effect: float = 0.0) -> dict[str, dict[str, np.ndarray]]:
    """scores[scorer][answerer]: scorer fluency + answer quality + noise (additive), plus `effect` on (R, suspect)."""
    answerers = ["S", *[m for ms in UNITS.values() for m in ms]]
    a = {s: rng.normal(0, 0.3) for s in (R, J1, J2)}
    b = {x: rng.normal(0, 0.3) for x in answerers}
    out = {s: {x: a[s] + b[x] + rng.normal(0, 0.2, n) for x in answerers} for s in (R, J1, J2)}
    out[R]["S"] = out[R]["S"] + effect
    return out


def test_it_is_capable_likelihood_on_the_transposed_table() -> None:
    rng = np.random.default_rng(0)
    sc = _table(rng, 30, effect=0.1)
    got = outside_test(sc, "S", R, [J1, J2], UNITS, UNIT_OF)
    transposed: dict[str, dict[str, np.ndarray]] = {}
    for scorer, row in sc.items():
        for who, v in row.items():
            transposed.setdefault(who, {})[scorer] = v
    inside = tetrad_test(transposed, "S", R, [J1, J2], UNITS, UNIT_OF)
    assert got.name == NAME and got.p_value == pytest.approx(inside.p_value) and got.statistic == pytest.approx(inside.statistic)
    assert "reference finds the suspect's sampled answers" in got.null


def test_an_additive_table_is_not_flagged_more_than_alpha_and_an_effect_is_found() -> None:
    """Seeded: 400 null tables (scorer fluency and answer quality of any size, no interaction) give p < 0.05 at about
    the nominal rate; the reference preferring the suspect's text by 0.3 nats/byte (1.5 noise sd) is found in most tables."""
    rng = np.random.default_rng(1)
    null = [outside_test(_table(rng, 40), "S", R, [J1, J2], UNITS, UNIT_OF).p_value for _ in range(400)]
    hits = [outside_test(_table(rng, 40, effect=0.3), "S", R, [J1, J2], UNITS, UNIT_OF).p_value for _ in range(100)]
    assert np.mean(np.asarray(null) < 0.05) <= 0.08
    assert np.mean(np.asarray(hits) < 0.05) >= 0.8


def test_a_source_never_scores_its_own_lineages_answers() -> None:
    """A control unit of a source's lineage (a teacher's student): that source's scores of the unit's text are left
    out, so changing them changes nothing."""
    rng = np.random.default_rng(2)
    sc = _table(rng, 30, effect=0.1)
    unit_of = {**UNIT_OF, J1: "u0"}  # src1 is the teacher of unit u0 (control c0)
    before = outside_test(sc, "S", R, [J1, J2], UNITS, unit_of)
    sc[J1]["c0"] = sc[J1]["c0"] + 5.0
    after = outside_test(sc, "S", R, [J1, J2], UNITS, unit_of)
    assert before.p_value == pytest.approx(after.p_value) and before.statistic == pytest.approx(after.statistic)


def test_missing_scores_skip_with_the_reason() -> None:
    sc = _table(np.random.default_rng(3), 10)
    del sc[J2]["S"]
    got = outside_test(sc, "S", R, [J1, J2], UNITS, UNIT_OF)
    assert got.skipped and "not scored by" in got.skipped


def test_a_text_only_chat_suspect_gets_the_outside_family_and_its_placebos(tmp_path: Path) -> None:
    """Analysis v4 with a chat-only endpoint that drops logprobs (a fake student of the reference behind provenance's
    own server): the outside family runs and is recomputed by verify, the inside family says why it cannot, each
    placebo runs the outside family too; a local suspect with logits gets the inside family and not the outside."""
    from provenance.audit import AuditConfig, run_audit
    from provenance.models import LoadOptions, resolve
    from provenance.report.verify import verify
    from tests.faultserver import FaultPlan, serving

    def chat_text_only(key: str, attempt: int) -> str | None:
        if key.startswith("POST /v1/completions"):
            return "404"
        return "text-only" if key.startswith("POST") else None

    ref, controls = "fake:t1", ["fake:c1", "fake:c2", "fake:c3", "fake:c4", "fake:c5"]
    sources = ["fake:x1?skill=0.3", "fake:x2?skill=0.3"]
    student = resolve("fake:s1?teacher=t1&q=0.8").load()
    with serving(student, FaultPlan(chat_text_only), model_name="student") as srv:
        spec = f"{srv.url}#student"
        res = run_audit(AuditConfig(suspect=spec, references=[ref], controls=controls, out=tmp_path / "b", budget=40,
                                    progress=False, analysis_version=4, sources=sources, identity_set=None,
                                    options=LoadOptions(http_timeout=5.0)))
    assert res["access"][spec] == ["text"]
    tests = {t["name"]: t for t in res["references"][0]["tests"]}
    assert tests[NAME]["skipped"] is None and tests[NAME]["p_value"] is not None
    assert "did not score" in tests["capable_likelihood"]["skipped"]
    placebo = res["references"][0]["placebo"]
    assert placebo["ran"] and all(row["tests"][NAME] is not None for row in placebo["rows"])
    # Version 4: each placebo runs the tests that ran for the suspect and no others (the controls give logits, the
    # suspect does not: the next-token family, skipped for the suspect, is not run in their seats either)
    from provenance.analysis.evaluate import families_for

    placebo_families = {f.name for f in families_for("audit", 4) if f.branch == "behaviour" and f.placebo}
    ran = {n for n, t in tests.items() if t["skipped"] is None} & placebo_families
    assert NAME in ran and len(placebo_families - ran) >= 2  # the inside and next-token families are left out
    assert tests["next_token_divergence"]["skipped"]
    # no log-likelihoods from the suspect: the competence check measures its sampled answers from the outside
    kind = res["references"][0]["competence_check"]
    assert kind["ran"] and kind["measure"] == "outside" and not kind["suspect_outside"]
    assert all(set(row["tests"]) == ran and "next_token_divergence" not in row["tests"] for row in placebo["rows"])
    assert verify(tmp_path / "b").ok
    records = [json.loads(x) for x in (tmp_path / "b" / "transcripts.jsonl").read_text().splitlines()]
    fp = next(r["fingerprint"] for r in records if r["model"] == spec)
    scorers = {r["model"] for r in records if "n_bytes" in r["response"] and r["probe_id"].endswith("|" + fp)}
    assert scorers == {ref, *sources}  # the suspect's answers are scored by the reference and the sources alone
    # The report quotes the suspect's sampled answers where the reference found them most likely (its exhibits)
    top = tests[NAME]["top_probes"]
    assert top, "the fake student's text should favour its teacher on some prompt"
    import html as _html

    page = _html.unescape((tmp_path / "b" / "report.html").read_text())
    said = next(r["response"]["text"] for r in records if r["model"] == spec and r["probe_id"] == top[0]
                and "text" in r["response"])
    assert "likelihood from the outside" in page and said in page

    local = run_audit(AuditConfig(suspect="fake:s1?teacher=t1&q=0.8", references=[ref], controls=controls,
                                  out=tmp_path / "local", budget=40, progress=False, analysis_version=4,
                                  sources=sources, identity_set=None))
    lt = {t["name"]: t for t in local["references"][0]["tests"]}
    assert lt["capable_likelihood"]["skipped"] is None
    assert "gives log-likelihoods" in lt[NAME]["skipped"]
    local_records = [json.loads(x) for x in (tmp_path / "local" / "transcripts.jsonl").read_text().splitlines()]
    assert not any(r["model"] in sources and "n_bytes" in r["response"] for r in local_records)  # nothing scored for it


def _fluency_context(suspect_fluency: float) -> "object":
    """A v4 pair with synthetic scores: sources x1 (lineage x) and x2 (lineage y) score every answerer's sampled answers;
    controls c1 (of lineage x, so x1 never scores it), c2, c3, c4 near -1.6 nats/byte; the suspect at the given value."""
    from types import SimpleNamespace

    from provenance.analysis.base import PairContext
    from provenance.evidence import ModelEvidence, ModelIdentity, Score, score_item_id
    from provenance.stats.nulls import Design

    probes = [SimpleNamespace(id=f"p{i}") for i in range(6)]
    lineage = {"x1": "x", "x2": "y", "c1": "x", "c2": "c2", "c3": "c3", "c4": "c4", "S": "unknown", "R": "r"}
    ev = {k: ModelEvidence(ModelIdentity(k, f"fp-{k}", "fake", lineage=lin), frozenset({"logits"}), None)
          for k, lin in lineage.items()}
    level = {"c1": -1.62, "c2": -1.58, "c3": -1.66, "c4": -1.55, "S": suspect_fluency}
    for j in ("x1", "x2"):
        for m, v in level.items():
            if j == "x1" and m == "c1":
                continue  # a source never scores its own lineage's answers (and need not)
            for i, p in enumerate(probes):
                ev[j].scores[score_item_id(p.id, f"fp-{m}")] = Score(logprob=(v + 0.01 * (i % 3)) * 100, n_tokens=20,
                                                                      n_bytes=100)
    design = Design("S", "R", {"x": ("c1",), "c2": ("c2",), "c3": ("c3",), "c4": ("c4",)})
    return PairContext(ev, design, {"likelihood": SimpleNamespace(probes=probes)}, sources=("x1", "x2"),
                       access=frozenset({"text"}))


def test_a_text_only_suspect_far_more_fluent_than_the_controls_is_not_of_their_kind() -> None:
    """Version 4's guard from the outside: the competence check needs the suspect's log-likelihoods; without them, the
    comparison sources' view of its sampled answers stands in (the dose bench, part (f): a thoroughly distilled student
    was flagged from the outside by output agreement with controls far weaker than it, where inside the competence and
    kind checks had stopped the same verdict)."""
    from provenance.analysis.evaluate import COMPETENCE_MARGIN, outside_competence

    inside = outside_competence(_fluency_context(-1.60))  # type: ignore[arg-type]
    assert inside is not None and inside["ran"] and inside["measure"] == "outside" and not inside["suspect_outside"]
    lo, hi = inside["controls_range"]
    assert (round(lo, 2), round(hi, 2)) == (-1.65, -1.54) and inside["margin"] == COMPETENCE_MARGIN
    far = outside_competence(_fluency_context(-1.20))  # type: ignore[arg-type]
    assert far is not None and far["suspect_outside"]
    weak = outside_competence(_fluency_context(-2.00))  # weaker than every control: not of their kind either
    assert weak is not None and weak["suspect_outside"]
