"""What a report prints for re-running its audit, and the rendered chat prompt of replayed records (fake backend)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT

SOURCES = ["fake:x1?skill=0.3", "fake:x2?skill=0.3"]


@pytest.fixture(scope="module")
def v3_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from provenance.audit import AuditConfig, run_audit

    out = tmp_path_factory.mktemp("v3") / "bundle"
    run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], controls=list(FAKE_CONTROLS), out=out,
                          budget=60, progress=False, analysis_version=3, sources=SOURCES, identity_set=None,
                          likelihood_set="continuation-samples"))
    return out


def _text(bundle: Path) -> str:
    import html

    page = (bundle / "report.html").read_text()
    page = re.sub(r"<style.*?</style>|<img[^>]*>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_the_printed_command_and_panel_re_run_the_same_analysis(v3_bundle: Path, tmp_path: Path) -> None:
    """The report's panel parses as a controls panel with the audit's lineages, and its command, run as printed (dry
    run), names the same version, sources, probe sets and control lineages."""
    from provenance.panel import load_panel
    from provenance.report.reproduce import audit_command, controls_panel

    res = json.loads((v3_bundle / "results.json").read_text())
    man = json.loads((v3_bundle / "manifest.json").read_text())
    panel_text, command = controls_panel(res), audit_command(res, man)
    text = _text(v3_bundle)
    assert command in text and "lineage = " in text
    (tmp_path / "controls.toml").write_text(panel_text)
    panel = load_panel(tmp_path / "controls.toml")
    assert {c.spec: c.lineage for c in panel.controls} == {c["spec"]: c["lineage"] for c in res["controls"]}
    assert panel.lineages[FAKE_REFERENCE] == res["reference_models"][0]["lineage"]
    assert "--analysis 3" in command and command.count("--source") == 2
    assert "--identity-probes none" in command  # skipped here, so the re-run skips it too
    assert "--likelihood-probes BUNDLE_DIR/probes/" in command  # not the default set: the bundle's own copy

    import shlex

    args = shlex.split(command.replace("BUNDLE_DIR", str(v3_bundle)).replace("NEW_DIR", str(tmp_path / "new")))
    args = [a if a != "controls.toml" else str(tmp_path / "controls.toml") for a in args]
    assert args[:2] == ["provenance", "audit"]
    proc = run_cli(*args[1:], "--dry-run", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for s in SOURCES:
        assert f"source    {s}" in proc.stdout
    used = res["references"][0]["controls_used"]
    assert all(u in proc.stdout for u in used)
    n_used = {ps["role"]: ps["n_used"] for ps in man["probe_sets"]}
    assert f"output {n_used['output']}, next_token {n_used['next_token']}, likelihood {n_used['likelihood']}" in proc.stdout


def test_a_v3_report_names_its_sources_exhibits_and_families(v3_bundle: Path) -> None:
    text = _text(v3_bundle)
    assert "Comparison sources (analysis version 3)" in text
    assert "capable_likelihood (ran here)" in text and "reference_likelihood (" not in text
    res = json.loads((v3_bundle / "results.json").read_text())
    cap = next(t for t in res["references"][0]["tests"] if t["name"] == "capable_likelihood")
    if cap["top_probes"]:
        assert "over the comparison sources' by" in text and "comparison source " in text


def test_budget_check_says_when_only_the_label_changes(tmp_path: Path) -> None:
    """A label that changes while the flag does not (inconclusive -> no_evidence) is said, not called unchanged."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("provenance.report", "templates"))
    src = env.loader.get_source(env, "report.html.j2")[0]
    line = next(x for x in src.splitlines() if "Budget check" in x)
    env.filters["p"] = lambda p: f"{p:.2g}"

    def said(verdict: str, half: str, fragile: bool) -> str:
        ref = {"verdict": verdict, "budget_check": {"p_value": 0.2, "verdict": half, "fragile": fragile}}
        return env.from_string(line).render(ref=ref)

    assert "the label changes from inconclusive to no_evidence" in said("inconclusive", "no_evidence", False)
    assert "the verdict does not change" in said("no_evidence", "no_evidence", False)
    assert "fragile" in said("distilled", "no_evidence", True)


def test_replayed_chat_records_get_their_rendered_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chat records cached before transcripts carried `request.rendered` get it when the model is loaded again, and
    a replay that loads nothing says they lack it."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model
    from provenance.evidence import ProbePlan
    from provenance.models import resolve
    from provenance.models.fake import FakeBackend
    from provenance.probeset import load as load_probes

    monkeypatch.setattr(FakeBackend, "rendered", lambda self, prompt, chat: f"<user>{prompt}</user>" if chat else None)
    cache = EvidenceCache(tmp_path / "cache")
    rm = resolve(FAKE_SUSPECT)
    ps = load_probes("instructions")
    collect_model(rm, [ProbePlan(ps, 3, "likelihood")], cache, progress=False, want_weights=False)
    # The cache as an older tool left it: no rendered prompt, no chat_template in the model's facts.
    path = next(p for p in (tmp_path / "cache").rglob("*") if p.is_file() and b'"rendered"' in p.read_bytes())
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for rec in lines[1:]:
        rec["request"].pop("rendered")
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    meta = cache.load_meta(rm.fingerprint)
    meta.pop("chat_template")
    cache.model_meta_path(rm.fingerprint).write_text(json.dumps(meta))

    replay = collect_model(rm, [ProbePlan(ps, 3, "likelihood")], cache, progress=False, want_weights=False)
    assert not replay.loaded and all("rendered" not in r["request"] for r in replay.records)
    assert any("3 chat record(s) replayed from the evidence cache do not carry the prompt" in n for n in replay.notes)

    more = collect_model(rm, [ProbePlan(ps, 4, "likelihood")], cache, progress=False, want_weights=False)
    assert more.loaded and len(more.records) == 4
    assert all(r["request"]["rendered"] == f"<user>{r['request']['prompt']}</user>" for r in more.records)
    assert not any("do not carry the prompt" in n for n in more.notes)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(bundle, out)
    return out


def test_custody_rows_re_hash_what_they_cover(v3_bundle: Path, tmp_path: Path) -> None:
    """The probe sets are dated before collection, the analysis row hashes its input and output, a render row follows;
    a record edited where no statistic reads it (its send time), with SHA256SUMS rewritten, fails on its custody row."""
    from provenance.report.bundle import write_sums
    from provenance.report.verify import verify

    man = json.loads((v3_bundle / "manifest.json").read_text())
    actions = [c["action"] for c in man["custody"]]
    assert actions[0] == "probe sets fixed" and actions[-2:] == ["analysis", "render"]
    from datetime import datetime

    fixed = datetime.fromisoformat(man["custody"][0]["utc"])
    assert all(fixed <= datetime.fromisoformat(c["utc"]) for c in man["custody"] if c["action"] == "collected")
    assert verify(v3_bundle).ok
    edited = _copy(v3_bundle, tmp_path)
    lines = (edited / "transcripts.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["sent"] = rec["sent"] - 3600.0
    lines[0] = json.dumps(rec, sort_keys=True, ensure_ascii=False)
    (edited / "transcripts.jsonl").write_text("\n".join(lines) + "\n")
    write_sums(edited)
    report = verify(edited)
    assert not report.ok
    assert any("custody row" in p and "its records hash to" in p for p in report.problems)
    assert any("custody row" in p and "(analysis): transcripts.jsonl does not hash" in p for p in report.problems)


def test_an_older_bibliography_is_not_tampering(v3_bundle: Path, tmp_path: Path) -> None:
    """Citations are descriptive: a bundle whose tests cite the method as an earlier release did still verifies (the
    committed examples of 2026-11-30 cite Nikolic et al. as an arXiv preprint)."""
    from provenance.report.bundle import write_sums
    from provenance.report.verify import verify

    edited = _copy(v3_bundle, tmp_path)
    res = json.loads((edited / "results.json").read_text())
    res["references"][0]["tests"][0]["references"] = ["an older citation of the same method"]
    (edited / "results.json").write_text(json.dumps(res))
    # results.json changed, so the analysis custody row's hash is restated as a release before it would have none.
    man = json.loads((edited / "manifest.json").read_text())
    for row in man["custody"]:
        row.pop("results_sha256", None)
    (edited / "manifest.json").write_text(json.dumps(man))
    write_sums(edited)
    report = verify(edited)
    assert not any("recomputed statistic differs" in p for p in report.problems), report.problems


def test_every_stamped_file_names_the_revision_and_the_report_says_what_it_does_not_hold(v3_bundle: Path) -> None:
    """Transcripts, tables and results.json carry the case id and the bundle's revision; section 9 states verify's
    tolerances (the constants verify uses) and lists what a local-only bundle cannot hold, with the reason."""
    import csv

    from provenance.report.verify import FLOAT_REL_TOL, P_VALUE_REL_TOL, custody_problems

    man = json.loads((v3_bundle / "manifest.json").read_text())
    case = man["case"]
    lines = [json.loads(x) for x in (v3_bundle / "transcripts.jsonl").read_text().splitlines()]
    assert {(r["case_id"], r["case_revision"]) for r in lines} == {(case["case_id"], case["revision"])}
    assert json.loads((v3_bundle / "results.json").read_text())["case_revision"] == case["revision"]
    for name in ("tests", "affinities"):
        with (v3_bundle / "tables" / f"{name}.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert rows and {r["case_revision"] for r in rows} == {str(case["revision"])}
    assert custody_problems(v3_bundle, man) == []  # the stamp is not part of a record's custody hash
    text = _text(v3_bundle)
    assert f"p-values to a relative {P_VALUE_REL_TOL:g}" in text and f"to a relative {FLOAT_REL_TOL:g}" in text
    section = text.split("What this bundle does not hold, and why", 1)[1]
    assert "Raw response bytes of the local models" in section  # every model here is local
    assert "endpoint's response bytes" not in section
    assert "The controls' weights" in section and "SHA256SUMS.sig" in section


def test_the_report_says_why_no_examiner_is_named_and_which_collection_it_holds(v3_bundle: Path) -> None:
    """No examiner given: section 9 says none was given and how to name one; a demonstration says no person examined
    it (a group label is not passed off as a name); a named examiner gets no such row. The bundle says it holds one
    collection (here collected by this run) and how to make a second."""
    from provenance.report.render import absences

    man = json.loads((v3_bundle / "manifest.json").read_text())
    section = _text(v3_bundle).split("What this bundle does not hold, and why", 1)[1]
    assert "A named examiner none was given" in section and "--examiner NAME" in section
    # collected by this run, or replayed when another test collected the same fake models first (shared cache)
    assert "A second, independent collection of the answers the answers were collected once" in section
    assert "A trusted time-stamp on the thresholds" in section
    # When the rule's thresholds were fixed, and that the competence margin is still uncalibrated (checklist: pitfalls).
    text = _text(v3_bundle)
    assert "When its thresholds were fixed" in text and "analysis version 3 has no completed validation study" in text
    res = json.loads((v3_bundle / "results.json").read_text())
    if any((r.get("competence_check") or {}).get("margin") is not None for r in res["references"]):
        assert "has not been calibrated yet: it is provisional" in text

    def rows(**case: object) -> dict[str, str]:
        return dict(absences({**man, "case": {**man["case"], **case}}))

    demo = rows(examiner="maintainers (demo)", demonstration=True)["A named examiner"]
    assert "demonstration" in demo and "no person examined it" in demo and "(maintainers (demo))" in demo
    assert "A named examiner" not in rows(examiner="Jane Roe", demonstration=False)
    replayed = {**man, "custody": [*man["custody"], {"action": "replayed from cache"}]}
    second = dict(absences(replayed))["A second, independent collection of the answers"]
    assert "replayed here from the evidence cache" in second
    assert json.loads((v3_bundle / "manifest.json").read_text())["case"]["demonstration"] is False


def test_an_endpoint_report_shows_what_identifies_the_endpoint_and_when_it_drifted() -> None:
    """The committed endpoint example: URL, the model requested and returned, the system fingerprint, the API version
    (none sent), HTTP statuses and retries are read from its manifest and transcripts; a changed system fingerprint in
    a later record is reported at that record (checklist: endpoint items)."""
    from provenance.report.render import _read, endpoint_identity

    bundle = Path(__file__).resolve().parent.parent / "reports" / "example" / "endpoint-p-smollm2-seq-full"
    _, manifest, transcripts = _read(bundle)
    (e,) = endpoint_identity(manifest, transcripts)
    assert e["requested"] == "suspect" and e["returned"] == ["suspect"] and len(e["system_fingerprints"]) == 1
    assert e["api_versions"] == [] and e["name_kind"] == "alias" and e["changed_at"] is None
    assert e["requests"] > 200 and set(e["statuses"]) == {"200"} and e["retried"] == 0
    assert "x-request-id" in e["headers"]
    text = _text(bundle)
    assert "what identifies it, and how its requests went" in text and e["system_fingerprints"][0] in text
    # A later response that reports another system fingerprint: the first such record is named.
    later = next(i for i, r in enumerate(transcripts) if (r.get("response") or {}).get("raw", {}).get("system_fingerprint")
                 and r["probe_set"] == "next-token")
    raw = transcripts[later]["response"]["raw"]
    transcripts[later] = {**transcripts[later], "response": {**transcripts[later]["response"],
                                                            "raw": {**raw, "system_fingerprint": "fp_other"}}}
    (e2,) = endpoint_identity(manifest, transcripts)
    assert e2["changed_at"] == transcripts[later]["probe_id"]
