"""Analysis v3 on the seeded fake backend: comparison sources in the audit, the bundle, `verify` and the CLI.

Plumbing and the null's level on fake models only; what v3 finds on real students is bench/v3_no_controls.py's and
bench/capable_sources.py's (BENCHMARKS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.clirun import run_cli
from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT

SOURCES = ["fake:x1?skill=0.3", "fake:x2?skill=0.3", "fake:t1b?teacher=t1&q=0.9"]  # the last: the reference's lineage


@pytest.fixture(scope="module")
def v3_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from provenance.audit import AuditConfig, run_audit

    out = tmp_path_factory.mktemp("v3") / "bundle"
    run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], controls=list(FAKE_CONTROLS), out=out,
                          budget=80, progress=False, analysis_version=3, sources=SOURCES,
                          lineages={"fake:t1b?teacher=t1&q=0.9": "t1"}))
    return out


def test_v3_runs_the_capable_family_and_its_bundle_verifies(v3_bundle: Path) -> None:
    from importlib.resources import files

    import jsonschema

    from provenance.report.verify import verify

    res = json.loads((v3_bundle / "results.json").read_text())
    man = json.loads((v3_bundle / "manifest.json").read_text())
    ref = res["references"][0]
    assert res["analysis_version"] == 3 and man["analysis"]["version"] == 3
    assert [t["name"] for t in ref["tests"]] == ["output_agreement", "next_token_divergence", "capable_likelihood",
                                                 "identity_claims", "weight_alignment"]
    cap = next(t for t in ref["tests"] if t["name"] == "capable_likelihood")
    # The source of the reference's lineage is collected but never compared with the reference's answers.
    assert ref["comparison_sources"] == SOURCES[:2] and cap["details"]["sources"] == SOURCES[:2]
    assert cap["n"] == 40  # v3's likelihood plan: half the budget (v2: a fifth)
    assert cap["p_value"] < 0.01  # the fake student copies its teacher on half the prompts
    assert set(cap["details"]["null_units"]) == set(ref["controls_used"])
    assert {r["lineage"] for r in ref["placebo"]["rows"]} == set(ref["controls_used"])
    assert all("capable_likelihood" in r["tests"] for r in ref["placebo"]["rows"])
    roles = {m["spec"]: m["role"] for m in man["models"]}
    assert [s for s, r in roles.items() if r == "source"] == SOURCES[:2]
    assert man["analysis"]["comparison_sources"] == SOURCES[:2]
    assert [s["spec"] for s in res["comparison_sources"]] == SOURCES[:2]
    assert any(w.startswith(f"comparison source {SOURCES[2]} not used: it shares every reference's lineage (t1)")
               for w in res["warnings"])
    # Version 3's record was measured with the continuation-samples prompts; this audit's (the default) are not those.
    assert any("likelihood prompts continuation-samples; this audit used instructions" in w for w in res["warnings"])
    assert not res["validation"]["matched"] and res["validation"]["likelihood_set"] == "instructions"
    # Sources answer the likelihood prompts and nothing else, and score nothing.
    recs = [json.loads(line) for line in (v3_bundle / "transcripts.jsonl").read_text().splitlines()]
    src_fps = {m["fingerprint"] for m in man["models"] if m["role"] == "source"}
    assert {r["probe_set"] for r in recs if r["fingerprint"] in src_fps} == {"instructions"}
    # Controls do not sample under v3 (their answers are no source), but they score every source's answers.
    ctrl_fps = {m["fingerprint"] for m in man["models"] if m["role"] == "control"}
    assert not any(r["probe_set"] == "instructions" for r in recs if r["fingerprint"] in ctrl_fps)
    rep = verify(v3_bundle)
    assert rep.ok, rep.problems
    for name in ("results", "manifest"):
        schema = json.loads(files("provenance.report").joinpath(f"schemas/{name}.schema.json").read_text())
        jsonschema.validate(json.loads((v3_bundle / f"{name}.json").read_text()), schema)


def test_v3_recomputation_catches_an_edited_source_answer(v3_bundle: Path, tmp_path: Path) -> None:
    """A source's answers are evidence like any other: verify recomputes the family from them."""
    import shutil

    from provenance.report.verify import verify

    b = tmp_path / "b"
    shutil.copytree(v3_bundle, b)
    res = json.loads((b / "results.json").read_text())
    res["references"][0]["tests"][2]["p_value"] = 0.5  # the capable family's p, edited and re-hashed
    (b / "results.json").write_text(json.dumps(res, indent=2))
    from provenance.report.bundle import write_sums

    write_sums(b)
    rep = verify(b)
    assert not rep.ok and any("capable_likelihood" in p or "recomput" in p for p in rep.problems), rep.problems


def test_pair_sources_drop_the_suspect_the_reference_and_its_lineage() -> None:
    from provenance.analysis.evaluate import design_for, pair_sources
    from provenance.models import LoadOptions
    from provenance.pipeline import gather, resolve_all

    specs = ["fake:s", "fake:r", "fake:a", "fake:b", "fake:c", "fake:x", "fake:r2?family=r"]
    resolved = resolve_all(specs, LoadOptions(), {"fake:r2?family=r": "r"})
    evidence, _ = gather(resolved, [], None, [], None, False)
    design, _ = design_for(evidence, "fake:s", "fake:r", ["fake:a", "fake:b", "fake:c"])
    assert pair_sources(evidence, design, ["fake:x", "fake:s", "fake:r", "fake:r2?family=r", "fake:a"]) == (
        "fake:x", "fake:a")  # a control may also be a source: its unit never scores it


@pytest.mark.slow
def test_v3_null_level_across_fake_lineages_of_different_kinds() -> None:
    """As the v2 simulation in test_fake_pipeline: competent independent pairs against mixed controls, with capable
    sources, must not be flagged more than alpha allows (40 draws, 1% level: at most 2)."""
    from provenance.analysis import evaluate, identity_plan, likelihood_plan, plan_probes
    from provenance.models import LoadOptions
    from provenance.pipeline import gather, resolve_all
    from provenance.probeset import load

    specs = [f"fake:f{i}?skill={0.5 if i % 2 else 0.0}&seed={i}" for i in range(12)]
    sources = ["fake:y1?skill=0.5", "fake:y2?skill=0.5"]
    resolved = resolve_all(specs, LoadOptions(), {})
    src = resolve_all(sources, LoadOptions(), {})
    plans = plan_probes(60, load("continuation"), load("next-token")) + [identity_plan(60, load("identity"))]
    evidence, plans = gather(resolved, plans, likelihood_plan(60, load("instructions"), 3), specs, None, False,
                             sources=src)
    rng = np.random.default_rng(0)
    flagged = []
    for _ in range(40):
        order = [specs[i] for i in rng.permutation(len(specs))]
        skilled = [s for s in order if "skill=0.5" in s]
        sus, ref = skilled[0], skilled[1]
        controls = [s for s in order if s not in (sus, ref)][:6]
        entry = evaluate(evidence, sus, [ref], controls, plans, seed=0, n_permutations=99, version=3,
                         sources=sources)[0]
        assert not next(t for t in entry["tests"] if t["name"] == "capable_likelihood").get("skipped")
        flagged.append(entry["verdict"] in ("derived", "distilled"))
    assert sum(flagged) <= 2, f"{sum(flagged)} of {len(flagged)} independent pairs flagged"


def test_cli_analysis_and_source_options(tmp_path: Path) -> None:
    base = ["audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, *sum((["-c", c] for c in FAKE_CONTROLS[:4]), []),
            "--out", str(tmp_path / "never")]
    r = run_cli(*base, "--source", "fake:x1", timeout=120)
    assert r.returncode == 2 and "--source is read by analysis version 3 only" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli(*base, "--analysis", "5", timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run_cli(*base, "--analysis", "3", "--source", "fake:x1", "--source", "fake:x2", "--dry-run", "--json",
                timeout=120)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["analysis_version"] == 3 and sorted(plan["comparison_sources"]) == ["fake:x1", "fake:x2"]
    assert plan["probes"]["likelihood"] == 100  # half of the default budget of 200
    # A source answers the likelihood prompts only; a control samples nothing for them under v3.
    assert plan["requests"]["fake:x1"]["generate"] == 100
    assert plan["requests"][FAKE_CONTROLS[0]]["generate"] == plan["probes"]["output"] + plan["probes"][
        "next_token"] + plan["probes"]["identity"]
    # Version 4 (the outside family): the suspect and the controls sample the likelihood prompts too.
    r = run_cli(*base, "--analysis", "4", "--source", "fake:x1", "--source", "fake:x2", "--dry-run", "--json",
                timeout=120)
    assert r.returncode == 0, r.stderr
    plan4 = json.loads(r.stdout)
    assert plan4["requests"][FAKE_CONTROLS[0]]["generate"] == plan["requests"][FAKE_CONTROLS[0]]["generate"] + 100
    assert plan4["requests"][FAKE_SUSPECT]["generate"] == plan["requests"][FAKE_SUSPECT]["generate"] + 100
    assert not (tmp_path / "never").exists()


def test_a_student_labelled_with_the_zoo_name_of_a_source_never_scores_that_source() -> None:
    """The study zoo names packaged lineages "p-qwen25" etc., a packaged model resolves as "qwen": one lineage."""
    from provenance.analysis.base import PairContext
    from provenance.analysis.families import _capable
    from provenance.analysis.evaluate import design_for
    from provenance.analysis.plans import likelihood_plan
    from provenance.models import LoadOptions
    from provenance.models.packaged import PACKAGED, canonical_lineage
    from provenance.pipeline import gather, resolve_all
    from provenance.probeset import load
    from provenance.zoo.lineages import PACKAGED_FAMILY

    assert all(canonical_lineage(z) == PACKAGED[name].family for name, z in PACKAGED_FAMILY.items())
    student = "fake:q1?teacher=qx&q=0.8"
    seats = ["fake:s", "fake:r", student, "fake:a", "fake:b"]
    ll = likelihood_plan(40, load("instructions"), 3)

    def run(label: str) -> dict:
        resolved = resolve_all(seats, LoadOptions(), {"fake:r": "r", student: label, "fake:a": "a", "fake:b": "b"})
        src = resolve_all(["fake:qx", "fake:y"], LoadOptions(), {"fake:qx": "qwen", "fake:y": "y"})
        evidence, _ = gather(resolved, [], ll, ["fake:r"], None, False, sources=src)
        design, _ = design_for(evidence, "fake:s", "fake:r", seats[2:])
        r = _capable(PairContext(evidence, design, {"likelihood": ll}, sources=("fake:qx", "fake:y")))
        assert not r.skipped
        return {u: round(v, 12) for u, v in zip(r.details["null_units"], r.details["null_values"])}

    canonical, zoo_name, unrelated = run("qwen"), run("p-qwen25"), run("zzz")
    # Under either name the student's unit never reads its teacher's answers: the same null values; a lineage not
    # known to be the source's reads them, and its seat's value is another.
    assert list(canonical.values()) == list(zoo_name.values())
    assert canonical["qwen"] != unrelated["zzz"]


def test_an_audit_file_names_the_analysis_version_and_its_sources(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f'suspect = "{FAKE_SUSPECT}"\nreferences = ["{FAKE_REFERENCE}"]\n'
                   'controls = ["fake:c1", "fake:c2", "fake:c3"]\nanalysis = 3\nsource = "fake:x1"\n')
    r = run_cli("audit", "--config", str(cfg), "-o", str(tmp_path / "never"), "--dry-run", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["analysis_version"] == 3 and list(plan["comparison_sources"]) == ["fake:x1"]


def test_a_v2_bundle_is_written_as_before(fake_bundle: Path) -> None:
    """Version 2 stays the default and its bundles carry nothing of version 3 (the committed examples re-render)."""
    res = json.loads((fake_bundle / "results.json").read_text())
    man = json.loads((fake_bundle / "manifest.json").read_text())
    assert res["analysis_version"] == 2 and "comparison_sources" not in res
    assert "comparison_sources" not in man["analysis"] and "comparison_sources" not in res["references"][0]
    assert {m["role"] for m in man["models"]} == {"suspect", "reference", "control"}
    assert "reference_likelihood" in [t["name"] for t in res["references"][0]["tests"]]
