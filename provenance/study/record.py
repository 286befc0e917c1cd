"""Validation records: what the study measured for one analysis version, shipped in the package, matched to an audit.

A record is written once by `provenance validate --write-record` from a finished study and never edited by hand; an
audit copies the entry that matches its conditions (analysis version, the suspect's access level, budget, number of
control lineages) with the record's SHA-256 into results.json, and `verify` checks that copy against the record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from provenance.study.summary import round_down

RECORD_SCHEMA = "provenance-validation/1"
RECORDS_DIR = Path(__file__).resolve().parent / "records"
STUDY_CONTROL_LINEAGES = 4  # the case list's controls per case (zoo/cases.py n_controls); sibling designs have fewer


def record_path(analysis_version: int, root: Path | None = None) -> Path:
    return (root or RECORDS_DIR) / f"analysis-v{analysis_version}.json"


def load_record(analysis_version: int, root: Path | None = None) -> tuple[dict[str, Any], str] | None:
    """The shipped record for this analysis version and its SHA-256 (of the file's bytes), or None."""
    path = record_path(analysis_version, root)
    if not path.is_file():
        return None
    data = path.read_bytes()
    return json.loads(data), hashlib.sha256(data).hexdigest()


def access_level(capabilities: Sequence[str]) -> str:
    """The suspect's strongest access: what the study's rows at that level measured."""
    caps = {str(getattr(c, "value", c)) for c in capabilities}
    for level, cap in (("weights", "weights"), ("logits", "logits"), ("top_k", "top_logprobs")):
        if cap in caps:
            return level
    return "text"


def match(record: Mapping[str, Any] | None, record_sha: str | None, analysis_version: int, access: str, budget: int,
          control_lineages: int, likelihood_set: str | None = None) -> dict[str, Any]:
    """The record entry for an audit's conditions, or why there is none (never a neighbouring condition's figure)."""
    base: dict[str, Any] = {"analysis_version": analysis_version, "access": access, "budget": budget,
                            "control_lineages": control_lineages, "record_sha256": record_sha, "matched": False,
                            **({"likelihood_set": likelihood_set} if likelihood_set else {})}
    if record is None:
        return {**base, "reason": f"no validation record ships for analysis version {analysis_version}: its error "
                                  "rates have not been measured; treat the verdict as a screening result"}
    if record.get("analysis_version") != analysis_version:
        return {**base, "reason": "the shipped record is for another analysis version"}
    why = other_likelihood_set(record, likelihood_set)
    if why:
        return {**base, "reason": why}
    fewest = min(record.get("conditions", {}).get("control_lineages") or [STUDY_CONTROL_LINEAGES])
    if control_lineages < fewest:
        return {**base, "reason": f"the study measured audits with at least {fewest} control lineages; this "
                                  f"audit had {control_lineages}, so its error rate is not the measured one"}
    entries = [e for e in record.get("entries", []) if e["access"] == access and e["split"] == "all"
               and e["budget"] <= budget]
    if not entries:
        return {**base, "reason": f"the study has no entry for {access} access at a budget of {budget} or less"}
    e = max(entries, key=lambda x: x["budget"])  # the largest studied budget this audit reached (conservative)
    lr = e["likelihood_ratio"]
    fp = e["null"]["decision"]
    det = e["related"]["detected"]
    # Bounds are shown cut towards the safe side, never rounded past what was measured: an LR bound of 99.96 is not
    # "100.0" (the protocol's target) and a false-positive bound of 1.004% is not "1.00%".
    summary = (f"Measured on {fp['n']} independent null cases and {det['n']} related cases of the validation study "
               f"({access} access, budget {e['budget']}): false-positive rate {fp['k']}/{fp['n']} (95% upper bound "
               f"{-round_down(-fp['upper95_one_sided'] * 100, 2):.2f}%), detection {det['k']}/{det['n']}{_ci(det)}, so "
               f"a false-negative rate of {_miss(det)}; likelihood ratio of a flag at least "
               f"{round_down(lr['lower95'], 1):.1f} (one-sided 95%)."
               if lr.get("lower95") is not None else
               f"Measured on {fp['n']} null and {det['n']} related cases ({access} access, budget {e['budget']}): "
               f"false-positive rate {fp['k']}/{fp['n']}, detection {det['k']}/{det['n']}{_ci(det)}, so a "
               f"false-negative rate of {_miss(det)}; no likelihood ratio bound.")
    return {**base, "matched": True, "reason": None, "entry": e, "summary": summary,
            "conditions": record.get("conditions", {}), "study": {k: record.get(k) for k in ("commit", "date")}}


def other_likelihood_set(record: Mapping[str, Any], likelihood_set: str | None) -> str | None:
    """Why the record does not apply to an audit whose likelihood family sampled other prompts (version 3's study
    measured one prompt set; a record that names none predates the condition and applies as before)."""
    sets = record.get("conditions", {}).get("likelihood_sets")
    if not sets or likelihood_set in sets:
        return None
    return (f"the study measured analysis version {record.get('analysis_version')} with the likelihood prompts "
            f"{', '.join(sets)}; this audit used {likelihood_set or 'none'}, so its error rate is not the measured one "
            f"(--likelihood-probes {sets[0]} is)")


def _ci(rate: Mapping[str, Any]) -> str:
    """' (95% CI a%-b%)' from a rate's exact Clopper-Pearson interval, or nothing when the record has none."""
    ci = rate.get("ci95")
    return f" (95% CI {ci[0] * 100:.1f}%-{ci[1] * 100:.1f}%)" if ci else ""


def _miss(det: Mapping[str, Any]) -> str:
    """The false-negative rate with its interval: the complement of detection's."""
    ci = det.get("ci95")
    k, n = det["n"] - det["k"], det["n"]
    return f"{k}/{n}" + (f" (95% CI {(1 - ci[1]) * 100:.1f}%-{(1 - ci[0]) * 100:.1f}%)" if ci else "")


def check_copy(validation: Mapping[str, Any] | None, root: Path | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) with a bundle's copy of the record, for `verify`. A copy that differs from the shipped
    record with the same hash is a problem (edited); a record this release does not ship is only a note."""
    if not validation or not validation.get("record_sha256"):
        return [], []
    loaded = load_record(int(validation.get("analysis_version", 0)), root)
    sha = validation["record_sha256"]
    if loaded is None or loaded[1] != sha:
        return [], [f"results cite validation record {sha[:12]}, which this release does not ship (check the copy "
                    "with the release that wrote the bundle)"]
    record, _ = loaded
    again = match(record, sha, validation["analysis_version"], validation["access"], validation["budget"],
                  validation["control_lineages"], validation.get("likelihood_set"))
    if again.get("entry") != validation.get("entry") or again.get("matched") != validation.get("matched"):
        return ["the validation entry in results.json is not the record's entry for its conditions"], []
    return [], []


def build_record(summary: Mapping[str, Any], conditions: Mapping[str, Any], provenance_info: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """A record from a study summary: every cell, plus where it came from (commit, date, zoo and rows hashes)."""
    return {"schema": RECORD_SCHEMA, **provenance_info, "conditions": dict(conditions),
            "entries": list(summary["cells"])}
