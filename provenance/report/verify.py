"""`provenance verify`: check every hash, then recompute every statistic from the transcripts alone."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from provenance.errors import InputError
from provenance.fsutil import sha256_file
from provenance.report.bundle import SUMS, load_bundle_json

EXIT_VERIFY_FAILED = 3


@dataclass
class VerifyReport:
    bundle: str
    bundle_sha256: str | None = None
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    recomputed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "ok": self.ok, "bundle_sha256": self.bundle_sha256, "problems": self.problems,
                "files_checked": self.files_checked, "statistics_recomputed": self.recomputed}


def check_hashes(bundle: Path, report: VerifyReport) -> None:
    sums = bundle / SUMS
    if not sums.is_file():
        report.problems.append(f"missing: {SUMS}")
        return
    report.bundle_sha256 = sha256_file(sums)
    listed: dict[str, str] = {}
    # Exactly the format write_sums writes: lowercase digests, "\n"-terminated lines, relative paths, each once.
    # A lenient parser (splitlines, say) would accept an edited SHA256SUMS (CR line breaks) as unchanged.
    lines = sums.read_bytes().split(b"\n")
    if lines[-1]:
        report.problems.append(f"malformed: {SUMS} does not end with a newline")
    for i, raw in enumerate(lines[:-1] if not lines[-1] else lines, 1):
        m = _SUMS_LINE.fullmatch(raw.decode("utf-8", "replace"))
        if m is None:
            report.problems.append(f"malformed: {SUMS} line {i}")
            continue
        digest, name = m.groups()
        if name in listed:
            report.problems.append(f"malformed: {SUMS} line {i} lists {_show(name)} again")
        elif name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
            report.problems.append(f"malformed: {SUMS} line {i} names a path outside the bundle: {_show(name)}")
        else:
            listed[name] = digest
    for name, digest in sorted(listed.items()):
        path = bundle / name
        try:
            if not path.is_file():
                report.problems.append(f"missing: {_show(name)}")
            elif sha256_file(path) != digest:
                report.problems.append(f"modified: {_show(name)}")
        except OSError as exc:
            report.problems.append(f"unreadable: {_show(name)} ({exc.strerror or exc})")
        report.files_checked += 1
    for p in sorted(bundle.rglob("*")):
        rel = p.relative_to(bundle).as_posix()
        if p.is_file() and rel != SUMS and rel not in listed:
            report.problems.append(f"added: {_show(rel)}")


_SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


def _show(name: str) -> str:
    """A file name for a one-line problem report: quoted when it holds line breaks or other control characters."""
    return name if name.isprintable() else repr(name)


def _close(a: Any, b: Any, path: str, out: list[str]) -> None:
    """Compare recomputed JSON with stored JSON; floats to 1e-9 relative (BLAS may differ across machines)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: present in only one of stored/recomputed")
            else:
                _close(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))):
            out.append(f"{path}: stored {b!r}, recomputed {a!r}")
    elif a != b:
        out.append(f"{path}: stored {b!r}, recomputed {a!r}")


def recompute(bundle: Path) -> list[dict[str, Any]]:
    """Re-run every test on the bundle's transcripts, probe files and weight evidence; no model is loaded."""
    from provenance.analysis import ANALYSIS_VERSION, evaluate
    from provenance.evidence import LIKELIHOOD_SET, Completion, ModelEvidence, ModelIdentity, ProbePlan, Score
    from provenance.probeset import load_file

    manifest = load_bundle_json(bundle, "manifest.json")
    analysis = manifest.get("analysis", {})
    version = analysis.get("version", 1)
    if version != ANALYSIS_VERSION:
        raise AnalysisVersionError(f"the bundle was analysed with analysis version {version}; this release implements "
                                   f"version {ANALYSIS_VERSION}: recompute it with the release that wrote it "
                                   f"(tool {manifest.get('tool', {}).get('version', '?')})")
    transcripts = [json.loads(line) for line in (bundle / "transcripts.jsonl").read_text().splitlines() if line.strip()]
    plans = [ProbePlan(load_file(bundle / ps["file"]), ps["n_used"], ps.get("role", "")) for ps in manifest["probe_sets"]]
    answers: dict[str, dict[str, dict[str, Completion]]] = {}
    scores: dict[str, dict[str, Score]] = {}
    for r in transcripts:
        if r["probe_set"] == LIKELIHOOD_SET:
            scores.setdefault(r["fingerprint"], {})[r["probe_id"]] = Score(**r["response"])
        else:
            answers.setdefault(r["fingerprint"], {}).setdefault(r["probe_set"], {})[r["probe_id"]] = Completion.from_json(r["response"])
    evidence: dict[str, ModelEvidence] = {}
    roles: dict[str, list[str]] = {"suspect": [], "reference": [], "control": []}
    for m in manifest["models"]:
        model = ModelIdentity(m["spec"], m["fingerprint"], m["kind"], m["source"], m["files"], m.get("lineage", "unknown"))
        ev = ModelEvidence(model=model, capabilities=frozenset(m["capabilities"]), tokenizer_id=m["tokenizer_id"],
                           answers=answers.get(m["fingerprint"], {}), model_type=m.get("model_type"),
                           scores=scores.get(m["fingerprint"], {}))
        if m.get("weights_evidence"):
            with np.load(bundle / m["weights_evidence"]) as z:
                ev.weights = {k: z[k] for k in z.files if k != "__model_type__"}
        evidence[m["spec"]] = ev
        roles[m["role"]].append(m["spec"])
    return evaluate(evidence, roles["suspect"][0], roles["reference"], roles["control"], plans,
                    manifest["seeds"]["permutation_test"], analysis.get("weight_permutations", 999),
                    analysis.get("p_scale", 1.0))


class AnalysisVersionError(Exception):
    """The bundle needs another release's analysis to be recomputed (a tool limitation, never tampering)."""


def verify(bundle: Path) -> VerifyReport:
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise InputError(f"not a bundle directory: {bundle}")
    report = VerifyReport(str(bundle))
    check_hashes(bundle, report)
    try:
        stored_results = load_bundle_json(bundle, "results.json")
        stored = stored_results["references"]
        fresh = recompute(bundle)
        report.recomputed = True
        mismatches: list[str] = []
        _close(json.loads(json.dumps(fresh)), stored, "results.references", mismatches)
        if "attribution" in stored_results:  # bundles from before attribution existed lack it
            from provenance.verdict import attribute

            detail = attribute(fresh)
            _close(detail["attribution"], stored_results["attribution"], "results.attribution", mismatches)
            _close(json.loads(json.dumps(detail)), stored_results.get("attribution_detail"), "results.attribution_detail",
                   mismatches)
        report.problems.extend(f"recomputed statistic differs: {m}" for m in mismatches[:20])
    except AnalysisVersionError as exc:
        if report.problems:
            report.problems.append(f"statistics not recomputed: {exc}")
        else:  # a genuine bundle this release cannot recompute: a tool limitation (exit 1), never "tampered" (exit 3)
            from provenance.errors import ProvenanceError

            raise ProvenanceError(f"{bundle}: every hash matches, but {exc}") from None
    except Exception as exc:  # noqa: BLE001 - an edited file can break recomputation in any way; that is the finding
        first = (str(exc).splitlines() or [""])[0][:300]
        report.problems.append(f"cannot recompute statistics: {type(exc).__name__}: {first}")
    return report
