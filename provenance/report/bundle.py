"""Write an evidence bundle atomically: built in a temporary directory, hashed, then moved into place."""

from __future__ import annotations

import errno
import getpass
import hashlib
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from provenance.errors import InputError
from provenance.fsutil import atomic_write_bytes, atomic_write_json, read_capped, sha256_file
from provenance.secrets import redact, redact_obj

BUNDLE_SCHEMA_VERSION = 1
SUMS = "SHA256SUMS"
# Files that carry evidence; everything else (tables, figures, report.html) is derived from them.
PRIMARY = ("manifest.json", "results.json", "transcripts.jsonl")
PRIMARY_DIRS = ("probes", "evidence")


@dataclass
class CaseInfo:
    case_id: str = "unspecified"
    examiner: str | None = None
    examiner_role: str | None = None  # e.g. "ML engineer, retained by counsel for the plaintiff"
    requested_by: str | None = None
    note: str | None = None
    questions: list[str] = field(default_factory=list)
    replaces: str | None = None  # SHA-256 of the SHA256SUMS of a bundle this one amends
    revision: int = 1  # 1 for a first bundle; an amendment's is the replaced bundle's plus one
    # A demonstration (the tool's examples and demo) has no legal matter and no person examining it; the report says so
    # instead of leaving a group label to pass for an examiner's name.
    demonstration: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "examiner": self.examiner, "examiner_role": self.examiner_role,
                "requested_by": self.requested_by, "note": self.note,
                "questions": self.questions or ["Was the suspect model distilled or derived from the reference model(s)?"],
                "replaces": self.replaces, "revision": self.revision, "demonstration": self.demonstration}


def custody_entry(action: str, detail: str, actor: str | None = None, purpose: str | None = None) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    row = {"utc": datetime.now(timezone.utc).isoformat(), "actor": actor or user, "action": action, "detail": detail}
    return {**row, "purpose": purpose} if purpose else row


def write_sums(bundle: Path, files: Sequence[str] | None = None) -> str:
    """(Re)write SHA256SUMS over `files` (relative paths; default: every regular file we wrote in `bundle`).

    Returns the bundle hash (SHA-256 of SHA256SUMS). A symlink, FIFO or device in `bundle` is refused, never hashed.
    """
    from provenance.report.safe_io import scan

    if files is None:
        found, problems = scan(bundle)
        if problems:
            raise InputError(f"{bundle}: {problems[0]}")
        files = [name for name in found if name not in (SUMS, "SHA256SUMS.sig")]  # the signature signs SUMS
    lines = [f"{sha256_file(bundle / name)}  {name}" for name in sorted(files)]
    atomic_write_bytes(bundle / SUMS, ("\n".join(lines) + "\n").encode())
    return sha256_file(bundle / SUMS)


def probe_file_names(paths: Sequence[Path | str]) -> dict[str, str]:
    """Where each probe file goes in the bundle: `probes/NAME`, or `probes/<hash>-NAME` when two share a basename.

    Two probe files with the same name used to overwrite each other there, so a fresh bundle failed `verify`.
    """
    real = {str(p): os.path.realpath(p) for p in paths}
    by_name: dict[str, set[str]] = {}
    for r in real.values():
        by_name.setdefault(Path(r).name, set()).add(r)
    out = {}
    for given, r in real.items():
        name = Path(r).name
        if len(by_name[name]) > 1:
            name = f"{hashlib.sha256(r.encode()).hexdigest()[:12]}-{name}"
        out[given] = f"probes/{name}"
    return out


def _redact_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A transcript line with its labels and raw HTTP capture redacted; the evidence (answers, logprobs) untouched."""
    rec = dict(rec)
    if isinstance(rec.get("model"), str):
        rec["model"] = redact(rec["model"])
    resp = rec.get("response")
    if isinstance(resp, dict) and "raw" in resp:
        rec["response"] = {**resp, "raw": redact_obj(resp["raw"])}
    return rec


# Keys the bundle writer stamps on every transcript line (not part of a record as collected: custody hashes leave them
# out, so a record hashes the same in every bundle that holds it).
STAMP_KEYS = ("case_id", "case_revision")


def case_stamp(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """{"case_id", "case_revision"} of a manifest's case (the keys it has), stamped on transcript lines and tables."""
    case = manifest.get("case") or {}
    return {k: case[src] for k, src in (("case_id", "case_id"), ("case_revision", "revision")) if case.get(src) is not None}


def write_bundle(out: Path, results: dict[str, Any], manifest: dict[str, Any], transcripts: Sequence[dict[str, Any]],
                 probe_files: Mapping[str, Path], weights: dict[str, dict[str, np.ndarray]], zip_too: bool = False) -> str:
    """Build the bundle next to `out`, then swap it in; a crash leaves either the old bundle or none, never half of one.

    `probe_files` maps bundle-relative names (the manifest's, one per plan: never clashing) to the files to copy.

    Specs, URLs and captured headers are redacted (provenance/secrets.py); results.json and manifest.json are strict
    JSON. A bundle already at `out` is kept as `OUT.replaced-N` (only with --replace; see report/outdir.py).
    """
    from provenance.report.outdir import absolute, prepare_out, release
    from provenance.report.render import render_derived

    out = prepare_out(absolute(out))  # a no-op when the run already claimed it (the CLI does, before any work)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Every transcript line names its case and the bundle's revision, so a line quoted on its own still says which
    # audit, and which version of its bundle, it belongs to.
    stamp = case_stamp(manifest)
    try:
        atomic_write_bytes(tmp / "transcripts.jsonl",
                           "".join(json.dumps(_redact_record({**r, **stamp}),
                                              sort_keys=True, ensure_ascii=False) + "\n"
                                   for r in transcripts).encode())
        for rel, f in probe_files.items():
            atomic_write_bytes(tmp / rel, read_capped(Path(f), 256 << 20, what="probe file"))
        for fp, tensors in weights.items():
            buf = io.BytesIO()
            np.savez(buf, **tensors)
            atomic_write_bytes(tmp / "evidence" / "weights" / f"{fp}.npz", buf.getvalue())
        atomic_write_json(tmp / "results.json", redact_obj(results))
        manifest = redact_obj(_rehashed(manifest, tmp))
        atomic_write_json(tmp / "manifest.json", manifest)
        render_derived(tmp)
        digest = write_sums(tmp)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if zip_too:
            make_zip(out)
    finally:
        release(out)
    return digest


def _rehashed(manifest: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """The manifest with the analysis custody row re-hashing what it read and wrote (transcripts.jsonl and
    results.json as written), and a row for the rendering that follows (its outputs are hashed in SHA256SUMS)."""
    from provenance.report.manifest import template_sha256

    rows = []
    for row in manifest.get("custody", []):
        if row.get("action") == "analysis":
            row = {**row, "records_sha256": sha256_file(tmp / "transcripts.jsonl"),
                   "results_sha256": sha256_file(tmp / "results.json")}
        rows.append(row)
    rows.append(custody_entry("render", f"report.html, tables/ and figures/ rendered from results.json, manifest.json "
                                        f"and transcripts.jsonl with report template {template_sha256()[:16]}", "provenance renderer",
                              "derive the human-readable report from the evidence files alone (what `provenance "
                              "verify` re-renders and compares); SHA256SUMS hashes every file, and a signature, when "
                              "made, is SHA256SUMS.sig"))
    return {**manifest, "custody": rows}


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the finished `tmp` to `out`. An empty `out` is replaced atomically; a provenance output there is kept as
    `OUT.replaced-N` when this run may replace it; anything else is never touched."""
    from provenance.report.outdir import existing_output, kept_name, may_replace, release

    out = Path(os.path.abspath(out))
    if not os.path.lexists(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
        release(out)
        return
    if out.is_dir() and not out.is_symlink():
        try:
            os.replace(tmp, out)  # rename(2) replaces an empty directory atomically
            release(out)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if existing_output(out) is not None and may_replace(out):
            os.replace(out, kept_name(out))
            os.replace(tmp, out)
            release(out)
            return
    kept = kept_name(out, ".new")
    os.replace(tmp, kept)
    raise InputError(f"{out} changed during the run and was left as it is; the new output is in {kept}")


def make_zip(bundle: Path) -> Path:
    """OUT.zip beside OUT (a zip already there is kept as OUT.replaced-N.zip), from the bundle's listed files."""
    from provenance.report.outdir import kept_name, zip_path
    from provenance.report.safe_io import BundleFiles, MAX_FILE_BYTES

    bundle = Path(os.path.abspath(bundle))
    target = zip_path(bundle)
    files = BundleFiles(bundle)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted([*files.listed, SUMS]):
            data = files.read_bytes(name, MAX_FILE_BYTES) if name != SUMS else (bundle / SUMS).read_bytes()
            info = zipfile.ZipInfo(f"{bundle.name}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    if os.path.lexists(target):
        os.replace(target, kept_name(bundle, ".zip"))
    atomic_write_bytes(target, buf.getvalue())
    return target


DERIVED_DIRS = ("tables", "figures")
DERIVED_FILES = ("report.html",)


def is_derived(name: str) -> bool:
    """A file `report` renders from the evidence (so a missing or edited one is re-rendered, not a forgery kept)."""
    return name.split("/", 1)[0] in DERIVED_DIRS or name in DERIVED_FILES


def rerender_blockers(problems: Sequence[str]) -> list[str]:
    """The hash-check problems that forbid re-rendering: all but a derived file missing or edited."""
    def ok(p: str) -> bool:
        kind, _, name = p.partition(": ")
        return kind in ("missing", "modified") and is_derived(name)
    return [p for p in problems if not ok(p)]


def rerender(bundle: Path) -> str:
    """Re-render tables, figures and report.html of a bundle that verifies, and write its SHA256SUMS; returns its hash.

    Only the files SHA256SUMS lists are read (safely); the new bundle is built beside the old one and swapped in, so
    nothing is written outside it, through a link, or half-way. The caller checks the hashes first (only derived files
    may be missing or edited); the new bundle must then pass `verify`, recomputation included, before it is swapped in.
    """
    from provenance.report.outdir import absolute
    from provenance.report.render import render_derived
    from provenance.report.safe_io import BundleFiles, MAX_FILE_BYTES

    bundle = Path(os.path.realpath(bundle))
    cwd = absolute(Path.cwd())
    if bundle == cwd or bundle in cwd.parents:
        raise InputError(f"{bundle} is the current directory or contains it; run `provenance report` from outside it")
    files = BundleFiles(bundle)
    tmp = bundle.with_name(f".{bundle.name}.render-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in files.listed:
            if is_derived(name):
                continue
            atomic_write_bytes(tmp / name, files.read_bytes(name, MAX_FILE_BYTES))
        render_derived(tmp)
        digest = write_sums(tmp)
        from provenance.report.verify import verify

        rep = verify(tmp)
        if not rep.ok:
            raise InputError(f"{bundle}: evidence files fail their hashes or recomputation "
                             f"({'; '.join(rep.problems[:3])}); not re-rendering (see `provenance verify`)")
        old = bundle.with_name(f".{bundle.name}.old-{os.getpid()}")
        os.replace(bundle, old)
        os.replace(tmp, bundle)
        shutil.rmtree(old, ignore_errors=True)  # held exactly the listed files (verified), now re-rendered
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


def load_bundle_json(bundle: Path, name: str) -> dict[str, Any]:
    """A JSON file of a bundle, read safely (a regular file inside it, size capped)."""
    from provenance.report.safe_io import read_inside

    try:
        return json.loads(read_inside(Path(bundle), name))
    except InputError as exc:
        if str(exc).startswith("missing"):
            raise InputError(f"{bundle}: not an evidence bundle (no {name})") from None
        raise
    except ValueError as exc:
        raise InputError(f"{bundle}/{name}: not valid JSON ({exc})") from None
