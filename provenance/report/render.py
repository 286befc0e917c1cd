"""Derived artifacts of a bundle (tables, figures, report.html), rendered from the bundle's files alone."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from provenance.fsutil import atomic_write_bytes, atomic_write_text
from provenance.report.evaluation import evaluation
from provenance.report.figures import null_figure, per_probe_figure
from provenance.report.names import how_to_obtain, model_names
from provenance.report.reproduce import PANEL_FILE, audit_command, controls_panel
from provenance.stats import citations

VERDICT_WORDS = {
    "derived": "shares weights (directly, or through a common base model) with",
    "distilled": "shows behaviour inherited from",
    "no_evidence": "shows no evidence, at the tested power, of descent from",
    "independent": "shows no evidence of descent from",  # bundles written before analysis version 2
    "inconclusive": "cannot be placed relative to",
}


def _read(bundle: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    results = json.loads((bundle / "results.json").read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    transcripts = [json.loads(line) for line in (bundle / "transcripts.jsonl").read_text().splitlines() if line.strip()]
    return results, manifest, transcripts


def tables(results: dict[str, Any], stamp: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The CSVs; every row names the case and the bundle's revision (`stamp`, bundle.case_stamp), the suspect and the
    reference (the bundle hash cannot be inside a file it covers: `provenance.load_bundles` adds it)."""
    rows, aff, per_probe = [], [], []
    suspect = results["suspect"]["spec"]
    for ref in results["references"]:
        for t in ref["tests"]:
            ci = t.get("effect_ci") or {}
            rows.append({**stamp, "suspect": suspect, "reference": ref["spec"], "verdict": ref["verdict"], "test": t["name"],
                         "statistic": t["statistic"], "p_value": t["p_value"], "n": t["n"], "effect": t.get("effect"),
                         "ci_low": ci.get("low"), "ci_high": ci.get("high"), "skipped": t.get("skipped"), "null": t["null"]})
            d = t.get("details") or {}
            for pair, v in (d.get("affinity") or {}).items():
                a, b = pair.split(" ~ ", 1)
                aff.append({**stamp, "suspect": suspect, "reference": ref["spec"], "test": t["name"],
                            "model_a": a, "model_b": b,
                            "affinity": v})
            pp = d.get("per_probe")
            if pp:
                for pid, sr, sc in zip(pp["probe_ids"], pp["suspect_reference"], pp["suspect_controls"]):
                    per_probe.append({**stamp, "suspect": suspect, "reference": ref["spec"], "test": t["name"],
                                      "probe_id": pid,
                                      "suspect_reference": sr, "suspect_controls_mean": sc})
    return {"tests": pd.DataFrame(rows), "affinities": pd.DataFrame(aff), "per_probe": pd.DataFrame(per_probe)}


def exhibits(results: dict[str, Any], transcripts: list[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    """Probes where the suspect's answer sits closest to the reference's, beside every control's answer."""
    by_probe: dict[tuple[str, str], dict[str, str]] = {}
    prompts: dict[str, str] = {}
    for r in transcripts:
        if "text" not in r["response"]:  # likelihood scores, not answers
            continue
        by_probe.setdefault((r["probe_set"], r["probe_id"]), {})[r["model"]] = r["response"]["text"]
        prompts[r["probe_id"]] = r["request"]["prompt"]
    suspect = results["suspect"]["spec"]
    controls = [c["spec"] for c in results["controls"]]
    likelihood_set = next((ps["id"] for ps in results.get("probe_sets", []) if ps.get("role") == "likelihood"), None)
    out = []
    for ref in results["references"]:
        # The family that carried the decision comes first: its exhibits are the ones the verdict rests on.
        carried = (ref.get("combination") or {}).get("behaviour_families") or []
        for t in sorted(ref["tests"], key=lambda t: t["name"] not in carried):
            if t["name"] in LIKELIHOOD_TESTS and not t.get("skipped"):
                pref = (t.get("details") or {}).get("per_prompt_preference") or {}
                values = dict(zip(pref.get("probe_ids", []), pref.get("values", [])))
                # Version 2 compares the reference's sampled answers with the controls'; version 3 with the comparison
                # sources' (the controls only score them). Version 4's outside family turns the table: the suspect's
                # and the controls' sampled answers are what the reference and the sources score, so they are quoted.
                outside = t["name"] == "outside_likelihood"
                others = (t.get("details") or {}).get("sources") if t["name"] == "capable_likelihood" else controls
                for pid in t.get("top_probes", [])[:limit]:
                    answers = (by_probe.get((likelihood_set, pid)) if likelihood_set else None) or next(
                        (v for (ps, p), v in by_probe.items() if p == pid), {})
                    out.append({"reference": ref["spec"], "probe_id": pid, "prompt": prompts.get(pid, ""),
                                "test": t["name"], "preference": values.get(pid),
                                "reference_answer": answers.get(ref["spec"], ""),
                                "controls": [(c, answers.get(c, "")) for c in others or []],
                                "suspect": answers.get(suspect, "") if outside else None})
                continue
            # Identity claims are quoted only when the test flagged them: a quote is an exhibit, not an anecdote.
            if t["name"] != "output_agreement" and not (t["name"] == "identity_claims" and (t["p_value"] or 1) < 0.05):
                continue
            for pid in t.get("top_probes", [])[:limit]:
                answers = by_probe.get(("continuation", pid)) or next(
                    (v for (ps, p), v in by_probe.items() if p == pid), {})
                out.append({"reference": ref["spec"], "probe_id": pid, "prompt": prompts.get(pid, ""),
                            "test": t["name"],
                            "suspect": answers.get(suspect, ""), "reference_answer": answers.get(ref["spec"], ""),
                            "controls": [(c, answers.get(c, "")) for c in controls]})
    return out


# The likelihood families: version 2's, version 3's (also version 4's for a suspect with logits), version 4's for a
# suspect that gives text only.
LIKELIHOOD_TESTS = ("reference_likelihood", "capable_likelihood", "outside_likelihood")
EXHIBIT_TESTS = ("output_agreement", *LIKELIHOOD_TESTS, "identity_claims")  # the tests that quote answers


def exhibit_tests_ran(results: dict[str, Any]) -> bool:
    """Whether any test that quotes answers ran, so "no probe favoured the reference" is a finding, not a silence."""
    return any(t["name"] in EXHIBIT_TESTS and not t.get("skipped") for ref in results["references"] for t in ref["tests"])


def scientific_basis(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every registered test family's published methods, whether it ran here, and each citation's status as the citation
    itself shows it (`stats.citations.status`: a named peer-reviewed venue, or an arXiv preprint). A family that did
    not run is listed too: the method is the tool's, whichever tests ran."""
    from provenance.analysis.base import REGISTRY

    ran = {t["name"] for ref in results["references"] for t in ref["tests"] if not t.get("skipped")}
    families = REGISTRY[results.get("analysis_version", 2)]  # the families of the version that wrote the bundle
    return [{"family": f.name, "ran": f.name in ran,
             "references": [{"text": r, "status": citations.status(r)} for r in f.references],
             "deviations": f.deviations}
            for f in families.values()]


def evidence_digest(bundle: Path) -> str:
    """SHA-256 over the evidence files' names and hashes (everything but the derived files, SHA256SUMS and its
    signature): printed on every page, since the bundle hash cannot appear inside a file it covers."""
    import hashlib

    from provenance.fsutil import sha256_file
    from provenance.report.bundle import SUMS, is_derived

    names = sorted(p.relative_to(bundle).as_posix() for p in Path(bundle).rglob("*") if p.is_file())
    lines = [f"{sha256_file(Path(bundle) / n)}  {n}\n" for n in names
             if not is_derived(n) and n not in (SUMS, f"{SUMS}.sig")]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def render_derived(bundle: Path) -> None:
    """(Re)write tables/, figures/ and report.html from results.json, manifest.json and transcripts.jsonl."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from provenance.report.bundle import case_stamp

    results, manifest, transcripts = _read(bundle)
    names = model_names(manifest["models"])
    for name, df in tables(results, case_stamp(manifest)).items():
        atomic_write_text(bundle / "tables" / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))
    figures: dict[str, list[tuple[str, str]]] = {}
    suspect = results["suspect"]["spec"]
    for i, ref in enumerate(results["references"]):
        for t in ref["tests"]:
            if t.get("skipped"):
                continue
            for kind, png in (("null", null_figure(t, names.get(suspect, suspect), names.get(ref["spec"], ref["spec"]))),
                              ("probes", per_probe_figure(t))):
                if png is None:
                    continue
                rel = f"figures/ref{i + 1}-{t['name']}-{kind}.png"
                atomic_write_bytes(bundle / rel, png)
                figures.setdefault(f"{i}:{t['name']}", []).append((rel, base64.b64encode(png).decode()))
    env = Environment(loader=PackageLoader("provenance.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["p"] = lambda p: "n/a" if p is None else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")
    # Text inside a CSS string (the printed page header): only characters that need no escaping there or in HTML.
    env.filters["css"] = lambda x: re.sub(r"[^A-Za-z0-9 ._:/+-]", "?", str(x))[:80]
    env.filters["num"] = lambda x: "n/a" if x is None else f"{x:.3f}"
    env.filters["name"] = lambda spec: names.get(spec, spec)  # the report's short name (section 3 keys it to the spec)
    html = env.get_template("report.html.j2").render(
        results=results, manifest=manifest, figures=figures, exhibits=exhibits(results, transcripts),
        verdict_words=VERDICT_WORDS, n_transcripts=len(transcripts),
        models=_model_rows(manifest, names), evaluation=evaluation(results), evidence_digest=evidence_digest(bundle),
        exhibit_tests_ran=exhibit_tests_ran(results), basis=scientific_basis(results),
        rerun={"command": audit_command(results, manifest), "panel": controls_panel(results), "panel_file": PANEL_FILE},
        tolerance=_verify_tolerance(), absences=absences(manifest), mc_interval=monte_carlo_interval,
        endpoints=endpoint_identity(manifest, transcripts),
    )
    atomic_write_text(bundle / "report.html", html)


def monte_carlo_interval(t: dict[str, Any]) -> tuple[float, float] | None:
    """95% Clopper-Pearson interval of the exceedance probability a resampled null estimates (the permutation
    p-value with every permutation), from the test's own null draws; None for a test with an analytic null."""
    from provenance.study.summary import clopper_pearson

    draws = (t.get("details") or {}).get("null_distribution")
    if not draws or t.get("statistic") is None:
        return None
    return clopper_pearson(sum(x >= t["statistic"] for x in draws), len(draws))


def _verify_tolerance() -> dict[str, str]:
    """The tolerances `provenance verify` compares recomputed numbers with (stated in section 9, so a reader knows
    what "reproduces" means); imported here, not copied, so the report cannot state other numbers than verify uses."""
    from provenance.report.verify import FLOAT_REL_TOL, P_VALUE_REL_TOL

    return {"float": f"{FLOAT_REL_TOL:g}", "p": f"{P_VALUE_REL_TOL:g}"}


def _suspect_lineage(m: dict[str, Any]) -> str:
    # A suspect's declared lineage (a .lineage file, its packaging) is a claim: the audit uses it only to leave out
    # controls that share it, never as evidence for or against descent (docs/methods.md).
    lin = m.get("lineage")
    if not lin or lin == "unknown":
        return "not assumed"
    return f"declared {lin} (a claim, not evidence: used only to leave out controls that share it)"


def absences(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, why) for each thing a reader of a forensic report may look for that this bundle does not hold: the report
    says why, rather than leaving a reader to find the gap (the report checklist's rule: present, or why not)."""
    http = any(m["kind"] == "http" for m in manifest["models"])
    local = any(m["kind"] != "http" for m in manifest["models"])
    out: list[tuple[str, str]] = []
    if local:
        out.append(("Raw response bytes of the local models",
                    "they ran inside this process: no HTTP exchange existed to capture; the transcripts hold the "
                    "backend's outputs as computed (text, token log-probabilities with token ids), the rendered chat "
                    "prompt and the decoding settings"))
        out.append(("Per-request latency and finish reasons of the local models",
                    "local prompts run in batches: each record's sent and received times are its batch's; local "
                    "generation has no finish reason or refusal flag (refusals are read from endpoint answers only)"))
    if http:
        out.append(("The endpoint's response bytes verbatim",
                    "each answer keeps the SHA-256 of the bytes as received (raw.http.body_sha256) and the body as text "
                    "with credentials redacted; the redacted text need not hash to that digest"))
        out.append(("Endpoint log-probabilities as parsed, verbatim",
                    "the parsed lists (each answer's response.top) keep only the first generated token's list, sorted "
                    "by log-probability, and keep none when any entry is not a string token with a finite value at "
                    "most 0 or the list is implausibly long (that answer then counts as text only: models/http.py "
                    "_parse_top); every list and value as the endpoint sent it, short lists and sentinels included, is "
                    "in the body text (raw.http.body)"))
    out.append(("Failed requests",
                "a request that fails after its retries stops the audit and no bundle is written; retried attempts "
                "are listed in each endpoint record's raw.http.tries"))
    if not any(m.get("weights_evidence") for m in manifest["models"] if m["role"] == "control"):
        out.append(("The controls' weights",
                    "not shipped (their fingerprints and, where known, the recipe that rebuilds them are in section "
                    "3): a re-run needs them rebuilt or obtained. A rebuild from the recipe trains other weights on "
                    "another machine (measured: the study zoo rebuilt on 2026-12-01 hashes differently from its "
                    "2026-11-30 build), so rebuilt controls have other fingerprints and reproduce the conclusion "
                    "statistically at best"))
    out.append(("A signature and a trusted time-stamp",
                "made after this report is rendered, over SHA256SUMS (which hashes this report): SHA256SUMS.sig "
                "(provenance sign; verify --public-key) and SHA256SUMS.tsr (audit --tsa; verify --tsa-ca) lie beside "
                "it when made, and the custody log, written before them, has no row for them"))
    out.append(("The case id on every file",
                "SHA256SUMS, the probe sets, the figures and the weight archives keep formats fixed by their tools or "
                "sources; SHA256SUMS binds each of them to this bundle, and every other file names the case and this "
                "revision"))
    out.append(("Other runs of this comparison",
                "this bundle is one audit run; the skipped tests, the budget check, the placebos and every sequential "
                "look are in it, and the validation study's runs are in its own record (section 1)"))
    out.append(_second_collection(manifest))
    examiner = _examiner_absence(manifest.get("case") or {})
    if examiner:
        out.append(examiner)
    out.append(("A trusted time-stamp on the thresholds",
                "the decision rule (results.json: decision_rule) and the validation study's protocol and amendments "
                "were fixed in the tool's git history before the study's rows were written (the commits are cited in "
                "section 1 and in the validation record); those dates are the committers' own, not a time-stamping "
                "authority's"))
    return out


def _second_collection(manifest: dict[str, Any]) -> tuple[str, str]:
    # The checklist asks that re-querying reproduce the conclusion statistically; one bundle can only hold one
    # collection, so the report says which one it holds and how to make another.
    actions = {c.get("action") for c in manifest.get("custody", [])}
    how = ("re-running the command above where this run's evidence cache is absent (another machine) queries every "
           "model again, and --fresh forces it for endpoints; the conclusion should reproduce statistically, not byte "
           "for byte")
    if "replayed from cache" in actions:
        return ("A second, independent collection of the answers",
                "the answers were collected once, by an earlier run, and replayed here from the evidence cache (the "
                "custody rows 'replayed from cache' give the collection times); no second collection is in this "
                f"bundle: {how}")
    return ("A second, independent collection of the answers",
            f"the answers were collected once, by this run (the custody rows 'collected'); no second collection is in "
            f"this bundle: {how}")


def _examiner_absence(case: dict[str, Any]) -> tuple[str, str] | None:
    if case.get("demonstration"):
        who = f" ({case['examiner']})" if case.get("examiner") else ""
        return ("A named examiner",
                f"this bundle is a demonstration run by the tool's maintainers as a group{who}, for no legal matter: "
                "no person examined it, so none is named; a report for filing names its examiner and their role "
                "(provenance audit --examiner NAME --examiner-role ROLE) and is signed with that person's key "
                "(provenance sign)")
    if not case.get("examiner"):
        return ("A named examiner",
                "none was given when the audit ran (provenance audit --examiner NAME --examiner-role ROLE); the "
                "custody log's analysis row names the account that ran it")
    return None


# Response headers that name an API version (kept by models/http.py when a server sends them).
API_VERSION_HEADERS = ("api-version", "x-api-version", "openai-version", "anthropic-version")


def endpoint_identity(manifest: dict[str, Any], transcripts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each endpoint model, what identifies it and how its requests went, read from the manifest and the
    transcripts (the checklist's endpoint items): URL, the model requested and the ones returned, system fingerprints,
    an API version if the server sent one, alias or dated name, HTTP statuses, retries, the headers kept, and the first
    record at which the returned model or system fingerprint changed (None: never)."""
    from collections import Counter

    out = []
    for m in manifest["models"]:
        if m["kind"] != "http":
            continue
        recs = [r for r in transcripts if r.get("model") == m["spec"]]
        raws = [(r, (r.get("response") or {}).get("raw") or {}) for r in recs]
        http = [raw["http"] for _, raw in raws if isinstance(raw.get("http"), dict)]
        seen = [(r["probe_id"], (raw.get("model"), raw.get("system_fingerprint"))) for r, raw in raws
                if raw.get("model") is not None or raw.get("system_fingerprint") is not None]
        change = next((pid for pid, ident in seen if ident != seen[0][1]), None) if seen else None
        src, ep = m.get("source") or {}, m.get("endpoint") or {}
        out.append({
            "spec": m["spec"], "url": src.get("url") or m["spec"].partition("#")[0],
            "requested": src.get("model") or m["spec"].partition("#")[2] or None,
            "returned": ep.get("returned_models", []), "system_fingerprints": ep.get("system_fingerprints", []),
            "api_versions": sorted({str(v) for h in http for k, v in (h.get("headers") or {}).items()
                                    if k.lower() in API_VERSION_HEADERS}),
            "name_kind": src.get("name_kind"), "requests": len(http),
            "statuses": dict(sorted(Counter(str(h.get("status")) for h in http).items())),
            "attempts": sum(int(h.get("attempts") or 1) for h in http),
            "retried": sum(1 for h in http if int(h.get("attempts") or 1) > 1),
            "headers": sorted({k for h in http for k in (h.get("headers") or {})}),
            "identified_responses": len(seen), "changed_at": change})
    return out


def _model_rows(manifest: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    return [{"role": m["role"], "spec": m["spec"], "name": names.get(m["spec"], m["spec"]), "obtain": how_to_obtain(m),
             "kind": m["kind"], "fingerprint": m["fingerprint"],
             "lineage": m.get("lineage", "unknown") if m["role"] != "suspect" else _suspect_lineage(m),
             "lineage_basis": m.get("lineage_basis"),
             "source": m["source"], "access": ", ".join(m.get("capabilities", []))} for m in manifest["models"]]
