"""End-to-end audits on real packaged models: a derived copy is flagged, an unrelated family is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance.audit import AuditConfig, run_audit
from tests.conftest import requires_models

pytestmark = [requires_models, pytest.mark.slow]
BUDGET = 40  # the weight test decides the derived copy; the behavioural families only need evidence to skip on


@pytest.fixture(scope="module")
def derived_audit(noised_smol: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("audit-derived")
    # The likelihood family is exercised on the micro zoo (test_zoo_micro.py); here it would cost minutes of sampling.
    results = run_audit(AuditConfig(suspect=str(noised_smol), references=["smollm2-135m-instruct"], out=out,
                                    budget=BUDGET, progress=False, likelihood_set=None))
    return {"results": results, "out": out}


def test_derived_copy_is_related(derived_audit: dict) -> None:
    ref = derived_audit["results"]["references"][0]
    assert ref["verdict"] == "derived"
    assert ref["p_value"] < 0.01
    tests = {t["name"]: t for t in ref["tests"]}
    # The default controls (Gemma, Qwen) are two lineages: too few for a model-level behavioural null, so those
    # families say so instead of extrapolating; the exact weight permutation test needs no controls.
    for name in ("output_agreement", "next_token_divergence"):
        assert tests[name]["p_value"] is None and "control lineages" in tests[name]["skipped"]
    assert tests["weight_alignment"]["p_value"] <= 0.001
    assert ref["combination"]["carried_by"] == "weights"
    # The identity family runs on every audit (10 questions at this budget); SmolLM2-135M names itself too rarely
    # for a strong signal, so only its presence is checked here (detection: test_identity.py, marked heavy).
    assert "identity_claims" in tests


def test_results_schema_and_transcripts(derived_audit: dict) -> None:
    out: Path = derived_audit["out"]
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["schema_version"] == 2 and on_disk["analysis_version"] == 2
    for ref in on_disk["references"]:
        assert {"spec", "verdict", "p_value", "tests"} <= set(ref)
        assert ref["verdict"] in {"distilled", "derived", "no_evidence", "inconclusive"}
        for t in ref["tests"]:
            assert {"name", "statistic", "p_value", "n"} <= set(t)
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    # every probe of every model (continuation, next-token, identity), with the model's fingerprint and set hash
    per_model = sum(ps["n_used"] for ps in on_disk["probe_sets"] if ps["role"] != "yardstick")
    identity = next(ps["n_used"] for ps in on_disk["probe_sets"] if ps["role"] == "identity")
    yardstick = sum(ps["n_used"] for ps in on_disk["probe_sets"] if ps["role"] == "yardstick")
    # every model answers every probe, and scores the yardstick's neutral passages (its competence)
    assert identity == 10 and per_model == BUDGET + identity and yardstick == 12
    assert len(lines) == 4 * (per_model + yardstick)
    rec = json.loads(lines[0])
    assert {"model", "fingerprint", "probe_set_sha256", "request", "response"} <= set(rec)
    assert {c["spec"] for c in on_disk["controls"]} == {"gemma-3-270m", "qwen2.5-coder-0.5b-instruct"}


def test_unrelated_families_are_not_related(derived_audit: dict, tmp_path: Path) -> None:
    # Reuses the evidence cached by the derived audit: only the models are re-identified, none re-queried.
    results = run_audit(AuditConfig(suspect="smollm2-135m-instruct", references=["gemma-3-270m"], out=tmp_path / "a",
                                    budget=BUDGET, progress=False, likelihood_set=None))
    ref = results["references"][0]
    # One control lineage cannot support any behavioural null, and the architectures differ (no weight test):
    # nothing may decide, so the answer is `inconclusive` with that reason, never a finding either way.
    assert ref["verdict"] == "inconclusive" and ref["p_value"] is None and "could run" in ref["reason"]
    assert [c["spec"] for c in results["controls"]] == ["qwen2.5-coder-0.5b-instruct"]
