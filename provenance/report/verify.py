"""`provenance verify`: check every hash, then recompute every statistic from the transcripts alone."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from provenance.errors import InputError
from provenance.fsutil import atomic_write_bytes, strict_json
from provenance.report import safe_io
from provenance.report.bundle import SUMS
from provenance.report.signing import SIGNATURE_FILE, check_signature
from provenance.report.timestamp import TIMESTAMP_FILE, check_timestamp
from provenance.secrets import redact_obj

log = logging.getLogger(__name__)

EXIT_VERIFY_FAILED = 3


@dataclass
class VerifyReport:
    bundle: str
    bundle_sha256: str | None = None
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    recomputed: bool = False
    notes: list[str] = field(default_factory=list)  # not findings: e.g. a validation record this release lacks

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "ok": self.ok, "bundle_sha256": self.bundle_sha256, "problems": self.problems,
                "files_checked": self.files_checked, "statistics_recomputed": self.recomputed, "notes": self.notes}


def check_hashes(bundle: Path, report: VerifyReport) -> set[str]:
    """Hash every file SHA256SUMS lists; name every missing, edited, added or refused file. Returns the listed names.

    Nothing is followed or opened that is not a regular file inside the bundle: a symlink, FIFO, socket or device is a
    problem in itself (it could point outside, or block or never end a read).
    """
    bundle = Path(bundle)
    files, problems = safe_io.scan(bundle)
    report.problems.extend(problems)
    if SUMS not in files:
        if not any(SUMS in p for p in problems):
            report.problems.append(f"missing: {SUMS}")
        return set()
    try:
        data = safe_io.read_inside(bundle, SUMS)
    except InputError as exc:
        report.problems.append(str(exc))
        return set()
    report.bundle_sha256 = hashlib.sha256(data).hexdigest()
    listed, problems = safe_io.parse_sums(data)
    report.problems.extend(problems)
    refused = {p.split(" ", 2)[1] for p in report.problems if p.startswith("refused: ") and len(p.split(" ")) > 2}
    for name, digest in sorted(listed.items()):
        report.files_checked += 1
        if name not in files:
            if name not in refused:
                report.problems.append(f"missing: {_show(name)}")
            continue
        if files[name] > safe_io.MAX_FILE_BYTES:
            report.problems.append(f"refused: {_show(name)} is larger than {safe_io.MAX_FILE_BYTES} bytes")
            continue
        try:
            with safe_io.open_inside(bundle, name) as fh:
                h = hashlib.sha256()
                while block := fh.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != digest:
                report.problems.append(f"modified: {_show(name)}")
        except InputError as exc:
            report.problems.append(str(exc))
        except OSError as exc:
            report.problems.append(f"unreadable: {_show(name)} ({exc.strerror or exc})")
    for rel in sorted(files):
        if rel not in (SUMS, SIGNATURE_FILE, TIMESTAMP_FILE) and rel not in listed:
            report.problems.append(f"added: {_show(rel)}")
    return set(listed)


_show = safe_io.show

# How recomputed numbers are compared with the stored ones. Recomputation repeats floating-point arithmetic on another
# machine (other BLAS kernels and thread counts, other summation orders), so real numbers are compared with a
# tolerance; what is a count, or a ratio of counts, must match exactly (p-values to 1e-9 relative: a count that differs
# by one changes a permutation p-value by far more), and so must every integer, string and verdict.
FLOAT_REL_TOL = 1e-6  # statistics, effects, null summaries
FLOAT_ABS_TOL = 1e-12
P_VALUE_REL_TOL = 1e-9  # p-values: exact counts, or closed forms of the (tolerated) statistics
ROUNDED_ABS_TOL = {"null_distribution": 1.01e-6}  # stored rounded to 6 decimals: one unit in the last place


# A test's citations describe the method; a later release may correct them (2026-11-30: venues and co-authors) and no
# number depends on them, so a bundle is not "tampered" because its bibliography is older than this release's.
DESCRIPTIVE = re.compile(r"\.tests\[\d+\]\.references$")
# A skip reason is words about a test that did not run; a later release may reword it (2026-12-01: "matching shape",
# a word a report must not use). Whether the test ran is still compared: its p-value is null in both or in neither.
REWORDABLE = re.compile(r"\.tests\[\d+\]\.skipped$")


def _close(a: Any, b: Any, path: str, out: list[str], key: str = "") -> None:
    """Compare recomputed JSON `a` with stored JSON `b` under the tolerances above (NaN and null count as equal)."""
    if DESCRIPTIVE.search(path) or (REWORDABLE.search(path) and isinstance(a, str) and isinstance(b, str)):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: present in only one of stored/recomputed")
            else:
                _close(a[k], b[k], f"{path}.{k}", out, k)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]", out, key)
    elif isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        if a != b:
            out.append(f"{path}: stored {_brief(b)}, recomputed {_brief(a)}")
    elif isinstance(a, int) and isinstance(b, int):
        if a != b:
            out.append(f"{path}: stored {b!r}, recomputed {a!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if "p_value" in key:
            ok = math.isclose(a, b, rel_tol=P_VALUE_REL_TOL, abs_tol=FLOAT_ABS_TOL)
        elif key in ROUNDED_ABS_TOL:
            ok = abs(a - b) <= ROUNDED_ABS_TOL[key]
        else:
            ok = math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=FLOAT_ABS_TOL)
        if not ok:
            out.append(f"{path}: stored {b!r}, recomputed {a!r}")
    elif a != b:
        out.append(f"{path}: stored {_brief(b)}, recomputed {_brief(a)}")


def _brief(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 120 else text[:119] + "…"


def _normal(obj: Any) -> Any:
    """JSON as written to a bundle: strict (NaN -> null) and redacted, so stored and recomputed compare like for like."""
    return strict_json(redact_obj(json.loads(json.dumps(obj))))


def recompute(bundle: Path) -> list[dict[str, Any]]:
    """Re-run every test on the bundle's transcripts, probe files and weight evidence; no model is loaded."""
    from provenance.analysis import VERSIONS, evaluate
    from provenance.evidence import LIKELIHOOD_SET, Completion, ModelEvidence, ModelIdentity, ProbePlan, Score
    from provenance.probeset import load_file

    files = safe_io.BundleFiles(bundle)  # only files SHA256SUMS lists, never a link, FIFO or device, sizes capped
    manifest = files.load_json("manifest.json")
    analysis = manifest.get("analysis", {})
    version = analysis.get("version", 1)
    if version not in VERSIONS:
        raise AnalysisVersionError(f"the bundle was analysed with analysis version {version}; this release implements "
                                   f"versions {', '.join(map(str, sorted(VERSIONS)))}: recompute it with the release "
                                   f"that wrote it "
                                   f"(tool {manifest.get('tool', {}).get('version', '?')})")
    transcripts = files.jsonl("transcripts.jsonl")
    plans = [ProbePlan(load_file(files.probe_file(ps["file"])), ps["n_used"], ps.get("role", ""))
             for ps in manifest["probe_sets"]]
    answers: dict[str, dict[str, dict[str, Completion]]] = {}
    scores: dict[str, dict[str, Score]] = {}
    for r in transcripts:
        if r["probe_set"] == LIKELIHOOD_SET:
            scores.setdefault(r["fingerprint"], {})[r["probe_id"]] = Score(**r["response"])
        else:
            answers.setdefault(r["fingerprint"], {}).setdefault(r["probe_set"], {})[r["probe_id"]] = Completion.from_json(r["response"])
    evidence: dict[str, ModelEvidence] = {}
    roles: dict[str, list[str]] = {"suspect": [], "reference": [], "control": [], "source": []}
    for m in manifest["models"]:
        model = ModelIdentity(m["spec"], m["fingerprint"], m["kind"], m["source"], m["files"], m.get("lineage", "unknown"))
        ev = ModelEvidence(model=model, capabilities=frozenset(m["capabilities"]), tokenizer_id=m["tokenizer_id"],
                           answers=answers.get(m["fingerprint"], {}), model_type=m.get("model_type"),
                           scores=scores.get(m["fingerprint"], {}), endpoint=m.get("endpoint"))
        if m.get("weights_evidence"):
            with files.npz(m["weights_evidence"]) as z:
                ev.weights = {k: z[k] for k in z.files if k != "__model_type__"}
        evidence[m["spec"]] = ev
        roles[m["role"]].append(m["spec"])
    pool = [*roles["reference"], *roles["control"]] if analysis.get("references_as_controls") else roles["control"]
    return evaluate(evidence, roles["suspect"][0], roles["reference"], pool, plans,
                    manifest["seeds"]["permutation_test"], analysis.get("weight_permutations", 999),
                    analysis.get("p_scale", 1.0), version=version, sources=analysis.get("comparison_sources", []))


class AnalysisVersionError(Exception):
    """The bundle needs another release's analysis to be recomputed (a tool limitation, never tampering)."""


def verify(bundle: Path, public_key: Path | None = None, tsa_ca: Path | None = None) -> VerifyReport:
    """Hash check, then (only if every file checks out) recomputation of every statistic.

    A problem with the bundle is a finding (the report is not ok: exit 3). A problem with the tool or its environment
    (a setting that is not a number, a missing package) raises instead (exit 2 or 1): it never reads as tampering.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise InputError(f"not a bundle directory: {bundle}")
    _preflight()
    report = VerifyReport(str(bundle))
    check_hashes(bundle, report)
    if not report.problems:  # a signature over SHA256SUMS means something only once every listed hash checks out
        sig_problems, sig_notes = check_signature(bundle, public_key)
        ts_problems, ts_notes = check_timestamp(bundle, tsa_ca)
        report.problems.extend([*sig_problems, *ts_problems])
        report.notes.extend([*sig_notes, *ts_notes])
    if report.problems:
        return report  # nothing is recomputed from files that failed: the problems above are the finding
    try:
        stored_results = safe_io.BundleFiles(bundle).load_json("results.json")
        manifest = safe_io.BundleFiles(bundle).load_json("manifest.json")
        work = safe_io.check_work(manifest)
        if work:
            report.problems.extend(work)
            return report
        stored = stored_results["references"]
        fresh = recompute(bundle)
        report.recomputed = True
        mismatches: list[str] = []
        _close(_normal(fresh), strict_json(stored), "results.references", mismatches)
        if "attribution" in stored_results:  # bundles from before attribution existed lack it
            from provenance.verdict import attribute

            detail = attribute(fresh)
            _close(_normal(detail["attribution"]), stored_results["attribution"], "results.attribution", mismatches)
            _close(_normal(detail), strict_json(stored_results.get("attribution_detail")), "results.attribution_detail",
                   mismatches)
        report.problems.extend(f"recomputed statistic differs: {m}" for m in mismatches[:20])
        if not report.problems:
            problems, notes = rendered_differences(bundle, manifest)
            report.problems.extend(problems)
            report.notes.extend(notes)
        report.problems.extend(custody_problems(bundle, manifest))
        from provenance.study.record import check_copy

        problems, notes = check_copy(stored_results.get("validation"))
        report.problems.extend(problems)
        report.notes.extend(notes)
    except AnalysisVersionError as exc:
        if report.problems:
            report.problems.append(f"statistics not recomputed: {exc}")
        else:  # a genuine bundle this release cannot recompute: a tool limitation (exit 1), never "tampered" (exit 3)
            from provenance.errors import ProvenanceError

            raise ProvenanceError(f"{bundle}: every hash matches, but {exc}") from None
    except (MemoryError, ImportError, KeyboardInterrupt):
        raise  # the machine or the installation, not the bundle
    except Exception as exc:  # noqa: BLE001 - an edited file can break recomputation in any way; that is the finding
        first = (str(exc).splitlines() or [""])[0][:300]
        log.debug("recomputing %s failed", bundle, exc_info=True)  # `provenance -vv verify`: where it broke
        report.problems.append(f"cannot recompute statistics: {type(exc).__name__}: {first}")
    return report


def custody_problems(bundle: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Each custody row's re-hash against the files: a collection row's records (as transcribed, without the case id
    the bundle adds to every line) and the analysis row's transcripts.jsonl and results.json. Rows written before
    they carried a hash are not checked."""
    from provenance.fsutil import sha256_file
    from provenance.report.bundle import STAMP_KEYS
    from provenance.report.manifest import records_digest

    files = safe_io.BundleFiles(bundle)
    lines = [json.loads(x) for x in files.read_text("transcripts.jsonl").splitlines() if x.strip()]
    out = []
    for i, row in enumerate(manifest.get("custody") or []):
        action = row.get("action")
        if action in ("collected", "replayed from cache") and row.get("records_sha256") and row.get("model_fingerprint"):
            recs = [{k: v for k, v in r.items() if k not in STAMP_KEYS} for r in lines
                    if r.get("fingerprint") == row["model_fingerprint"]
                    and bool(r.get("replayed")) == (action == "replayed from cache")]
            got = records_digest(recs)
            if got != row["records_sha256"] or len(recs) != row.get("records", len(recs)):
                out.append(f"custody row {i + 1} ({action}, fingerprint {row['model_fingerprint'][:12]}): its records "
                           f"hash to {got[:16]}, not the {row['records_sha256'][:16]} it states")
        elif action == "analysis":
            for key, name in (("records_sha256", "transcripts.jsonl"), ("results_sha256", "results.json")):
                if row.get(key) and sha256_file(bundle / name) != row[key]:
                    out.append(f"custody row {i + 1} (analysis): {name} does not hash to the {row[key][:16]} it states")
    return out


_IMG = re.compile(r'data:image/png;base64,[A-Za-z0-9+/=]+')


def rendered_differences(bundle: Path, manifest: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, notes): re-render tables and report.html from the evidence files and compare them with the bundle's.

    A re-hashed bundle whose report or tables were edited passes the hash check but not this one. Figures are compared
    only through the report's text (PNG bytes vary with the plotting library's version); a bundle rendered by another
    report template is not compared (a note says so), since its wording legitimately differs.
    """
    import tempfile

    from provenance.report.bundle import is_derived
    from provenance.report.manifest import template_sha256
    from provenance.report.render import render_derived
    from provenance.report.safe_io import MAX_FILE_BYTES, BundleFiles

    used = (manifest.get("tool") or {}).get("report_template_sha256")
    if used != template_sha256():
        return [], ["report.html and tables were rendered by another report template than this release's; they were "
                    "not re-rendered for comparison (the statistics were recomputed)"]
    from importlib.metadata import version

    from provenance.report.manifest import RENDERERS

    recorded = (manifest.get("environment") or {}).get("packages") or {}
    moved = [f"{n} {recorded.get(n)} -> {version(n)}" for n in RENDERERS if recorded.get(n) != version(n)]
    if moved:
        return [], [f"report.html and tables not re-rendered for comparison: they were formatted by other versions "
                    f"({', '.join(moved)}); the statistics were recomputed"]
    files = BundleFiles(bundle)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="provenance-verify-") as tmp:
        t = Path(tmp)
        for name in files.listed:
            if not is_derived(name):
                atomic_write_bytes(t / name, files.read_bytes(name, MAX_FILE_BYTES))
        render_derived(t)
        for name in sorted(n for n in files.listed if is_derived(n) and not n.startswith("figures/")):
            fresh = t / name
            if not fresh.is_file():
                problems.append(f"derived file not produced by re-rendering: {_show(name)}")
                continue
            a = files.read_bytes(name, MAX_FILE_BYTES).decode("utf-8", "replace")
            b = fresh.read_text()
            if name.endswith(".html"):
                a, b = _IMG.sub("data:image/png;base64,…", a), _IMG.sub("data:image/png;base64,…", b)
            if a != b:
                line = next((i for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), 1) if x != y),
                            min(len(a.splitlines()), len(b.splitlines())) + 1)
                problems.append(f"re-rendered {_show(name)} differs from the bundle's (first at line {line})")
    return problems, []


def _preflight() -> None:
    """Everything recomputation needs from the tool itself, checked before the bundle is judged."""
    from provenance import envvars

    envvars.check_all()
    import provenance.analysis  # noqa: F401 - import errors are the tool's, not the bundle's
    import provenance.evidence  # noqa: F401
    import provenance.probeset  # noqa: F401
    import provenance.verdict  # noqa: F401
