"""The whole pipeline on the seeded fake backend: audit -> bundle -> verify -> report, matrix, CLI, in seconds.

Plumbing only: nothing here is a detection claim about real models (those are in test_audit_real, test_zoo_micro and
BENCHMARKS.md). The null simulation checks that the analysis keeps its level when the fake models differ in kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import clirun
from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300,
         **_: object) -> subprocess.CompletedProcess[str]:
    """`python -m provenance ...`, forked from the warm interpreter (tests/clirun.py); `env` is a whole environment."""
    assert argv[:3] == [sys.executable, "-m", "provenance"], argv
    extra = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    return clirun.run_cli(*argv[3:], env=extra, timeout=timeout)


def test_fake_audit_bundle_verifies_and_rerenders(fake_bundle: Path) -> None:
    from provenance.report.verify import verify

    rep = verify(fake_bundle)
    assert rep.ok, rep.problems
    results = json.loads((fake_bundle / "results.json").read_text())
    ref = results["references"][0]
    assert results["analysis_version"] == 2 and ref["lineage"] == "t1"
    assert ref["controls_used"]["c1"] == ["fake:c1", "fake:c1b?teacher=c1&q=0.8"]  # siblings are one unit
    assert ref["placebo"]["ran"] and len(ref["placebo"]["rows"]) == 5
    assert ref["budget_check"]["fraction"] == 0.5
    names = [t["name"] for t in ref["tests"]]
    assert names == ["output_agreement", "next_token_divergence", "reference_likelihood", "identity_claims",
                     "weight_alignment"]
    for t in ref["tests"]:
        if t["name"] != "weight_alignment":
            assert t["details"]["rank_p_value"] >= 1 / 6  # five control lineages: the exact floor is 1/6
    html = (fake_bundle / "report.html").read_text()
    assert "Placebo" in html and "rank p" in html


def test_suspect_related_control_is_left_out(tmp_path: Path) -> None:
    from provenance.audit import AuditConfig, run_audit

    res = run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE],
                                controls=[*FAKE_CONTROLS, "fake:t1b?teacher=t1&q=0.9"], budget=40, progress=False))
    ex = res["references"][0]["controls_excluded"]
    assert ex == [{"spec": "fake:t1b?teacher=t1&q=0.9", "reason": "shares the reference's lineage (t1)"}]


@pytest.mark.slow
def test_the_same_model_under_two_specs_counts_once_and_verifies(tmp_path: Path) -> None:
    """Two paths to one checkpoint are one model: a copy of a control joins its unit, a copy of the suspect is left
    out, and the bundle names every spec it was given (it failed `verify` with a KeyError before)."""
    from provenance.audit import AuditConfig, run_audit
    from provenance.report.verify import verify

    copy_c2, copy_suspect = "fake:c2?seed=0", "fake:s1?q=0.5&teacher=t1"  # same parameters, other spellings
    res = run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], out=tmp_path / "b",
                                controls=[*FAKE_CONTROLS, copy_c2, copy_suspect], budget=40, progress=False))
    ref = res["references"][0]
    assert ref["controls_used"]["c2"] == ["fake:c2", copy_c2] and len(ref["controls_used"]) == 5
    assert {"spec": copy_suspect, "reason": "byte-identical to the suspect"} in ref["controls_excluded"]
    assert sum("one model, counted once" in w for w in res["warnings"]) == 2
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert {copy_c2, copy_suspect} <= {m["spec"] for m in manifest["models"]}
    rep = verify(tmp_path / "b")
    assert rep.ok, rep.problems


def test_control_units_by_fingerprint() -> None:
    """Byte-identical files decide over the lineages given: a copy labelled with another lineage is still that model."""
    from provenance.analysis.evaluate import control_units

    lineages = {"s": "ls", "r": "lr", "a": "la", "a2": "other", "b": "lb", "b2": "lb2", "r2": "x", "c": "lr"}
    fps = {"s": "1", "r": "2", "a": "3", "a2": "3", "b": "4", "b2": "4", "r2": "2", "c": "5", "c2": "5"}
    units, excluded = control_units(lineages, "s", "r", ["a", "a2", "b", "b2", "r2", "c", "c2"], fps)
    assert units == {"la": ["a", "a2"], "lb": ["b", "b2"]}
    assert excluded == [{"spec": "r2", "reason": "byte-identical to the reference"},
                        {"spec": "c", "reason": "shares the reference's lineage (lr)"},
                        {"spec": "c2", "reason": "byte-identical to c, left out: shares the reference's lineage (lr)"}]
    assert control_units(lineages, "s", "r", ["a", "a2"])[0] == {"la": ["a"], "other": ["a2"]}  # without fingerprints


def test_cli_audit_json_and_verify_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "b"
    args = [sys.executable, "-m", "provenance", "audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--budget", "40",
            "--out", str(out), "--json", "--no-progress"]
    for c in FAKE_CONTROLS:
        args += ["-c", c]
    r = _run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["references"][0]["verdict"] in ("derived", "distilled", "inconclusive", "no_evidence")
    v = _run([sys.executable, "-m", "provenance", "verify", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert v.returncode == 0, v.stdout + v.stderr
    (out / "results.json").write_text((out / "results.json").read_text().replace('"budget": 40', '"budget": 41'))
    v = _run([sys.executable, "-m", "provenance", "verify", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert v.returncode == 3 and "modified: results.json" in v.stdout


def test_fake_matrix_runs_every_family(tmp_path: Path) -> None:
    from provenance.matrix import MatrixConfig, run_matrix

    res = run_matrix(MatrixConfig(models=[FAKE_SUSPECT, FAKE_REFERENCE, "fake:x9"], controls=list(FAKE_CONTROLS),
                                  out=tmp_path / "m", budget=40, progress=False))
    assert res["families"]["identity_claims"] == "runs"
    assert set(res["pairs"][0]["tests_a_as_suspect"]) >= {"output_agreement", "identity_claims", "weight_alignment"}
    assert (tmp_path / "m" / "matrix.html").is_file()


@pytest.mark.slow
def test_null_level_across_fake_lineages_of_different_kinds() -> None:
    """Independent fake models of two kinds (competent ones that share a canonical answer, and others): a suspect
    and reference of the competent kind judged against mixed controls must not be flagged more than alpha allows."""
    from provenance.analysis import (
        evaluate,
        identity_plan,
        likelihood_plan,
        plan_probes,
    )
    from provenance.models import LoadOptions
    from provenance.pipeline import gather, resolve_all
    from provenance.probeset import load

    specs = [f"fake:f{i}?skill={0.5 if i % 2 else 0.0}&seed={i}" for i in range(12)]
    resolved = resolve_all(specs, LoadOptions(), {})
    plans = plan_probes(60, load("continuation"), load("next-token")) + [identity_plan(60, load("identity"))]
    evidence, plans = gather(resolved, plans, likelihood_plan(60, load("instructions")), specs, None, False)
    rng = np.random.default_rng(0)
    flagged = 0
    runs = 0
    for _ in range(40):
        order = [specs[i] for i in rng.permutation(len(specs))]
        skilled = [s for s in order if "skill=0.5" in s]
        sus, ref = skilled[0], skilled[1]
        controls = [s for s in order if s not in (sus, ref)][:6]
        entry = evaluate(evidence, sus, [ref], controls, plans, seed=0, n_permutations=99)[0]
        runs += 1
        flagged += entry["verdict"] in ("derived", "distilled")
    assert flagged <= 2, f"{flagged} of {runs} independent pairs flagged"


def test_preflight_counts_lineages_before_any_query() -> None:
    """Too few control lineages are said before collection, counted as the design counts them."""
    from provenance.analysis.evaluate import preflight

    lin = {"s": "a", "r": "b", "c1": "c", "c2": "c", "c3": "d", "c4": "b", "u": None}
    hopeless, warn = preflight(lin, "s", ["r"], ["c1", "c2", "c3", "c4"], {"s": False, "r": True})
    assert hopeless == ["r: 2 independent control lineage(s) (c, d); the behavioural tests need at least 3, and "
                        "without weight access to both models the weights test cannot run"] and warn == []
    hopeless, warn = preflight(lin, "s", ["r"], ["c1", "c3", "u"], {"s": True, "r": True})
    assert hopeless == [] and "a placebo needs 4" in warn[0]  # an unknown lineage is its own unit
    hopeless, warn = preflight(lin, "s", ["r"], ["c1", "c3"], {"s": True, "r": True})
    assert hopeless == [] and warn[0].endswith("only the weights test can decide")


@pytest.mark.slow
def test_rehashed_edit_of_report_or_tables_fails_verify(fake_bundle: Path, tmp_path: Path) -> None:
    """An edited report.html or table, with SHA256SUMS regenerated, passes the hashes but not the re-rendering."""
    import shutil

    from provenance.report.bundle import write_sums
    from provenance.report.verify import verify

    clean = verify(fake_bundle)
    assert clean.ok and not clean.notes, (clean.problems, clean.notes)
    for name, old, new in (("report.html", "Evaluation", "Evaluatlon"), ("tables/tests.csv", "output_agreement",
                                                                           "output_agreemenT")):
        copy = tmp_path / name.replace("/", "-")
        shutil.copytree(fake_bundle, copy)
        text = (copy / name).read_text()
        assert old in text
        (copy / name).write_text(text.replace(old, new, 1))
        write_sums(copy)
        rep = verify(copy)
        assert not rep.ok and any(f"re-rendered {name} differs" in p for p in rep.problems), rep.problems


def test_evaluation_leads_with_a_bound_or_says_why_not() -> None:
    from provenance.report.evaluation import band, evaluation

    assert band(150) == "moderately strong support" and band(1.5).startswith("no meaningful")
    props = {"H1": "h1", "H0": "h0"}
    none = evaluation({"propositions": props, "references": [{"verdict": "distilled"}],
                       "validation": {"matched": False, "reason": "no validation record ships"}})
    assert not none["available"] and none["reason"].startswith("no validation record ships")
    entry = {"related": {"detected": {"k": 90, "n": 100}}, "null": {"decision": {"k": 0, "n": 360}},
             "likelihood_ratio": {"lower95": 80.5}}
    flag = evaluation({"propositions": props, "references": [{"verdict": "distilled"}],
                       "validation": {"matched": True, "entry": entry, "summary": "s"}})
    assert flag["available"] and flag["favours"] == "H1" and flag["band"] == "moderate support"
    assert "at least 80 times" in flag["statement"]
    quiet = evaluation({"propositions": props, "references": [{"verdict": "no_evidence"}],
                        "validation": {"matched": True, "entry": entry, "summary": "s"}})
    assert quiet["favours"] == "H0" and 1 < 1 / quiet["lr"] < 10  # a miss rate near 10% supports H0 only weakly
    shy = evaluation({"propositions": props, "references": [{"verdict": "inconclusive"}],
                      "validation": {"matched": True, "entry": entry}})
    assert not shy["available"] and "inconclusive" in shy["reason"]


def _keypair(d: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    priv, pub = d / name, d / f"{name}.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return priv, pub


@pytest.mark.slow
def test_signed_bundle_verifies_and_a_rehashed_edit_breaks_the_signature(fake_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from provenance.report.bundle import write_sums
    from provenance.report.verify import verify

    priv, pub = _keypair(tmp_path, "examiner")
    _, other = _keypair(tmp_path, "someone-else")
    b = tmp_path / "b"
    shutil.copytree(fake_bundle, b)
    assert not verify(b, pub).ok  # a trusted key was given, but nothing is signed
    r = _run([sys.executable, "-m", "provenance", "sign", str(b), "--key", str(priv), "--signer", "examiner"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "signed:" in r.stdout, r.stderr
    good = verify(b, pub)
    assert good.ok and any("signed by the trusted key" in n for n in good.notes), good.problems
    assert verify(b).ok  # without a trusted key: checked against the key it names, and said so
    wrong = verify(b, other)
    assert not wrong.ok and "not by the given key" in wrong.problems[0]
    (b / "results.json").write_text((b / "results.json").read_text().replace('"seed": 0', '"seed": 1', 1))
    write_sums(b)  # a forger regenerates SHA256SUMS, but cannot sign it
    forged = verify(b, pub)
    assert not forged.ok and any("does not match SHA256SUMS" in p for p in forged.problems), forged.problems


def test_every_printed_page_carries_case_digest_and_page_numbers(fake_bundle: Path) -> None:
    from provenance.report.render import evidence_digest

    html = (fake_bundle / "report.html").read_text()
    digest = evidence_digest(fake_bundle)
    assert f'@bottom-left {{ content: "evidence digest {digest[:16]}"' in html and digest in html
    assert 'counter(page) " of " counter(pages)' in html and "@top-left" in html
    assert "likelihood: the suspect prefers the reference's answer by" in html  # exhibits of the likelihood test too
    manifest = json.loads((fake_bundle / "manifest.json").read_text())
    collected = [c for c in manifest["custody"] if c["action"] in ("collected", "replayed from cache")]
    assert collected and all(c["utc"] and c["utc_end"] and len(c["records_sha256"]) == 64 for c in collected)
    assert [c["action"] for c in manifest["custody"][-2:]] == ["analysis", "render"]


def test_dry_run_identifies_and_plans_without_querying_or_writing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    args = [sys.executable, "-m", "provenance", "audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "-c", "fake:c1",
            "-c", "fake:c2", "--out", str(out), "--dry-run", "--json"]
    r = _run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["dry_run"] and not out.exists()
    assert plan["references"][0]["control_lineages"] == {"c1": ["fake:c1"], "c2": ["fake:c2"]}
    assert plan["probes"]["output"] + plan["probes"]["next_token"] == 200
    assert "only the weights test can decide" in r.stderr and plan["warnings"]


@pytest.mark.slow
def test_audit_signs_its_bundle_with_sign_key(tmp_path: Path) -> None:
    from provenance.report.verify import verify

    priv, pub = _keypair(tmp_path, "k")
    out = tmp_path / "b"
    args = [sys.executable, "-m", "provenance", "audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--budget", "40",
            "--out", str(out), "--no-progress", "--sign-key", str(priv), *[x for c in FAKE_CONTROLS for x in ("-c", c)]]
    r = _run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert verify(out, pub).ok
    bad = tmp_path / "not-a-key"
    bad.write_text("nope")
    r = _run([*args[:-len(FAKE_CONTROLS) * 2 - 2], "--sign-key", str(bad), "--out", str(tmp_path / "c")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not an Ed25519 private key" in r.stderr and not (tmp_path / "c").exists()


def test_config_file_with_a_panel_flags_override_it(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f'suspect = "{FAKE_SUSPECT}"\nreferences = ["{FAKE_REFERENCE}"]\nbudget = 40\ncase_id = "CFG-1"\n'
                   f'out = "{tmp_path / "out"}"\n' +
                   "".join(f'[[control]]\nspec = "fake:c{i}"\nlineage = "c{i}"\n' for i in range(1, 5)))
    base = [sys.executable, "-m", "provenance", "audit", "--config", str(cfg), "--no-progress"]
    r = _run([*base, "--budget", "60", "--dry-run", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["budget"] == 60 and sorted(plan["references"][0]["control_lineages"]) == ["c1", "c2", "c3", "c4"]
    assert plan["requests"][FAKE_SUSPECT]["generate"] > 0
    r = _run(base, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["case"]["case_id"] == "CFG-1"
    # the panel's entries (lineage, kind, notes) are kept in results.json, as the Python API keeps them
    panel = json.loads((tmp_path / "out" / "results.json").read_text())["controls_panel"]
    assert [(c["spec"], c["lineage"]) for c in panel] == [(f"fake:c{i}", f"c{i}") for i in range(1, 5)]
    bad = tmp_path / "bad.toml"
    bad.write_text("bogus = 1\n")
    r = _run([sys.executable, "-m", "provenance", "audit", "--config", str(bad)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "unknown setting 'bogus'" in r.stderr


def test_load_bundles_one_row_per_suspect_reference_test(fake_bundle: Path) -> None:
    import provenance

    df = provenance.load_bundles([fake_bundle.parent])
    assert len(df) == 5 and set(df["test"]) >= {"output_agreement", "weight_alignment"}
    assert df["bundle_sha256"].str.len().eq(64).all() and (df["control_lineages"] == 5).all()
    examples = provenance.load_bundles([Path(__file__).resolve().parent.parent / "reports" / "example"])
    n = len(list((Path(__file__).resolve().parent.parent / "reports" / "example").glob("*/SHA256SUMS")))
    assert n >= 3 and examples["suspect"].nunique() == n  # each example audits its own suspect


def test_results_and_manifest_follow_the_shipped_json_schemas(fake_bundle: Path) -> None:
    """The schemas ship in the package (provenance/report/schemas) and hold for a fresh bundle and every example."""
    from importlib.resources import files

    import jsonschema

    root = Path(__file__).resolve().parent.parent / "reports" / "example"
    for name in ("results", "manifest"):
        schema = json.loads(files("provenance.report").joinpath(f"schemas/{name}.schema.json").read_text())
        for bundle in [fake_bundle, *sorted(p.parent for p in root.glob("*/SHA256SUMS"))]:
            jsonschema.validate(json.loads((bundle / f"{name}.json").read_text()), schema)


def test_quiet_hides_warnings_and_verbose_shows_model_loads(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "provenance"]
    audit = ["audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "-c", "fake:c1", "-c", "fake:c2", "--budget", "20",
             "--no-progress"]
    r = _run([*base, "-q", *audit, "--out", str(tmp_path / "q"), "--dry-run"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "warning:" not in r.stderr, r.stderr
    fresh = {**os.environ, "PROVENANCE_CACHE": str(tmp_path / "cache")}  # nothing cached: every model is loaded
    r = _run([*base, "-v", *audit, "--out", str(tmp_path / "v")], capture_output=True, text=True, timeout=300,
                       env=fresh)
    assert r.returncode == 0 and "warning:" in r.stderr and "loaded fake:c1" in r.stderr, r.stderr


def test_index_page_over_many_bundles(fake_bundle: Path, tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parent.parent / "reports" / "example"
    out = tmp_path / "index.html"
    r = _run([sys.executable, "-m", "provenance", "index", str(fake_bundle), str(examples), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    bundles = sorted(p.parent for p in examples.glob("*/SHA256SUMS"))
    assert r.returncode == 0 and f"{len(bundles) + 1} suspect x reference pairs" in r.stdout, r.stderr
    page = out.read_text()
    verdicts = {ref["verdict"] for b in bundles for ref in json.loads((b / "results.json").read_text())["references"]}
    assert page.count("report</a>") == len(bundles) + 1 and all(v in page for v in verdicts)


@pytest.mark.slow
def test_a_rerun_from_the_cache_never_calls_earlier_records_collected(tmp_path: Path) -> None:
    """Custody: every record a run did not collect itself (answers and scores alike) is 'replayed from cache'."""
    env = {**os.environ, "PROVENANCE_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "provenance", "audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--budget", "30",
            "--no-progress", *[x for c in FAKE_CONTROLS[:4] for x in ("-c", c)]]
    for out in ("first", "second"):
        r = _run([*base, "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "second" / "manifest.json").read_text())
    rows = [c for c in manifest["custody"] if c["action"] in ("collected", "replayed from cache")]
    assert rows and all(c["action"] == "replayed from cache" for c in rows), [c["detail"] for c in rows]


def test_scientific_basis_lists_every_family_and_exhibits_say_when_no_test_ran(fake_bundle: Path) -> None:
    """Checklist gaps 6 and 10: the peer-review row names every family's methods (preprint or venue) whether or not it
    ran, and "no probe favoured the reference" is not printed when no test that quotes answers ran."""
    from provenance.analysis import FAMILIES
    from provenance.report.render import exhibit_tests_ran, scientific_basis

    results = json.loads((fake_bundle / "results.json").read_text())
    basis = scientific_basis(results)
    assert [b["family"] for b in basis] == list(FAMILIES) and all(b["ran"] and b["references"] for b in basis)
    status = {r["text"]: r["status"] for b in basis for r in b["references"]}
    from provenance.stats.citations import KIM_RUSH, NIKOLIC, ZHU, status as citation_status

    # Both provenance papers appeared at peer-reviewed venues (NeurIPS 2025, ICML 2025), with their real co-authors.
    assert status[ZHU] == status[NIKOLIC] == status[KIM_RUSH] == "peer-reviewed venue"
    assert "Ahmed, Kuditipudi, Liang" in ZHU and "Baluta, Saxena" in NIKOLIC
    assert citation_status("Someone (2026), A paper, arXiv:2601.00001").startswith("preprint")
    assert exhibit_tests_ran(results)
    html = (fake_bundle / "report.html").read_text()
    assert "fingerprinted before it was queried" in html and "identified" not in html
    assert "How often this label is wrong has not been measured" in html  # no validation record for the fake models
    for ref in results["references"]:
        for t in ref["tests"]:
            t["skipped"] = "not run in this test"
    assert not exhibit_tests_ran(results)
    assert not any(b["ran"] for b in scientific_basis(results))


def test_the_manifest_lists_every_installed_distribution(fake_bundle: Path) -> None:
    """Checklist gap 12: the whole environment (what `pip freeze` lists), not only the packages the tool names."""
    from importlib.metadata import version

    env = json.loads((fake_bundle / "manifest.json").read_text())["environment"]
    dists = env["distributions"]
    assert dists == sorted(dists, key=lambda d: d.split("==")[0]) and len(dists) >= len(env["packages"])
    for name in ("numpy", "tokenizers", "jinja2"):
        assert f"{name}=={version(name)}" in dists


def test_every_page_names_the_revision_and_an_amendment_must_give_one(fake_bundle: Path, tmp_path: Path) -> None:
    """Checklist gap 9: a revision number on every printed page, the case id in results.json and on every transcript
    line; --replaces without --revision is one line, exit 2."""
    html = (fake_bundle / "report.html").read_text()
    assert "· revision 1\";" in html and "revision 1 · bundle schema" in html
    case = json.loads((fake_bundle / "manifest.json").read_text())["case"]
    assert case["revision"] == 1
    assert json.loads((fake_bundle / "results.json").read_text())["case_id"] == case["case_id"]
    lines = (fake_bundle / "transcripts.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["case_id"] == case["case_id"] for line in lines)
    old = "0" * 64
    out = str(tmp_path / "b")
    r = clirun.run_cli("audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--replaces", old, "--dry-run", "-o", out)
    assert r.returncode == 2 and "--replaces needs --revision N" in r.stderr, r.stderr
    r = clirun.run_cli("audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--replaces", old, "--revision", "0", "-o", out)
    assert r.returncode == 2 and "--revision" in r.stderr


@pytest.mark.slow
def test_attribute_without_controls_uses_the_other_candidates_and_verifies(tmp_path: Path, monkeypatch: Any) -> None:
    """Several candidate references and no controls: each candidate is a control for the others (issue #15, item 10),
    said in the warnings, and `verify` recomputes every reference from the same pool."""
    import provenance.audit as audit_mod
    from provenance.audit import AuditConfig, run_audit
    from provenance.report.verify import verify

    monkeypatch.setattr(audit_mod, "default_controls", lambda s, r: [])  # no packaged model: the candidates alone
    refs = [FAKE_REFERENCE, "fake:c1", "fake:c2", "fake:c3", "fake:c4"]
    res = run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=refs, out=tmp_path / "b", budget=40, progress=False))
    assert res["references_as_controls"] and res["controls"] == []
    assert any("each reference serves as a control for the others" in w for w in res["warnings"])
    for e in res["references"]:  # t1, the suspect's own lineage, is never a control (left out as related)
        assert sorted(e["controls_used"]) == sorted(r.split(":")[1] for r in refs if r not in (e["spec"], FAKE_REFERENCE))
    assert verify(tmp_path / "b").ok
    # one candidate alone and no controls is still refused: nothing could form its null
    with pytest.raises(Exception, match="no control models"):
        run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], budget=40, progress=False))


def test_the_manifest_and_report_say_whose_statement_each_lineage_label_is(tmp_path: Path) -> None:
    """A lineage label is a statement (a panel's, the examiner's, a package table's), never an audit finding: the
    manifest records which (`lineage_basis`) and the report's model table shows it under the label."""
    import html
    import json as _json

    from provenance.audit import LINEAGE_BASES, AuditConfig, run_audit
    from provenance.panel import load_panel

    panel_file = tmp_path / "panel.json"
    panel_file.write_text(_json.dumps({"control": [{"spec": "fake:c1", "lineage": "alpha"},
                                                   {"spec": "fake:c2", "lineage": "beta"}]}))
    out = tmp_path / "b"
    run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], controls=["fake:c3", "fake:c4"],
                          panel=load_panel(panel_file), lineages={"fake:c3": "gamma"}, out=out, budget=20,
                          progress=False))
    manifest = _json.loads((out / "manifest.json").read_text())
    basis = {m["spec"]: m["lineage_basis"] for m in manifest["models"]}
    assert basis["fake:c1"] == basis["fake:c2"] == LINEAGE_BASES["panel"]
    assert basis["fake:c3"] == LINEAGE_BASES["given"]  # given through the API, in no panel
    assert basis["fake:c4"] == basis[FAKE_REFERENCE] == LINEAGE_BASES["fake"]
    page = html.unescape((out / "report.html").read_text())
    assert f"label from {LINEAGE_BASES['panel']}" in page and f"label from {LINEAGE_BASES['given']}" in page
    # through the CLI a panel's lineages reach the audit both as the panel and as given lineages: still the panel's
    r = clirun.run_cli("audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--controls", str(panel_file), "-c",
                       "fake:c3", "-c", "fake:c4", "--budget", "20", "--no-progress", "-o", str(tmp_path / "cli"))
    assert r.returncode in (0, 1), r.stderr
    got = {m["spec"]: m["lineage_basis"] for m in _json.loads((tmp_path / "cli" / "manifest.json").read_text())["models"]}
    assert got["fake:c1"] == LINEAGE_BASES["panel"] and got["fake:c3"] == LINEAGE_BASES["fake"]
