"""Write an evidence bundle atomically: built in a temporary directory, hashed, then moved into place."""

from __future__ import annotations

import getpass
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
from provenance.fsutil import atomic_write_bytes, atomic_write_json, sha256_file

BUNDLE_SCHEMA_VERSION = 1
SUMS = "SHA256SUMS"
# Files that carry evidence; everything else (tables, figures, report.html) is derived from them.
PRIMARY = ("manifest.json", "results.json", "transcripts.jsonl")
PRIMARY_DIRS = ("probes", "evidence")


@dataclass
class CaseInfo:
    case_id: str = "unspecified"
    examiner: str | None = None
    requested_by: str | None = None
    note: str | None = None
    questions: list[str] = field(default_factory=list)
    replaces: str | None = None  # SHA-256 of the SHA256SUMS of a bundle this one amends

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "examiner": self.examiner, "requested_by": self.requested_by, "note": self.note,
                "questions": self.questions or ["Was the suspect model distilled or derived from the reference model(s)?"],
                "replaces": self.replaces}


def custody_entry(action: str, detail: str, actor: str | None = None) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"utc": datetime.now(timezone.utc).isoformat(), "actor": actor or user, "action": action, "detail": detail}


def write_sums(bundle: Path) -> str:
    """(Re)write SHA256SUMS over every file in the bundle; returns the bundle hash (SHA-256 of SHA256SUMS)."""
    lines = []
    for p in sorted(bundle.rglob("*")):
        if p.is_file() and p.name != SUMS:
            lines.append(f"{sha256_file(p)}  {p.relative_to(bundle).as_posix()}")
    atomic_write_bytes(bundle / SUMS, ("\n".join(lines) + "\n").encode())
    return sha256_file(bundle / SUMS)


def write_bundle(out: Path, results: dict[str, Any], manifest: dict[str, Any], transcripts: Sequence[dict[str, Any]],
                 probe_files: Mapping[str, Path], weights: dict[str, dict[str, np.ndarray]], zip_too: bool = False) -> str:
    """Build the bundle next to `out`, then swap it in; a crash leaves either the old bundle or none, never half of one."""
    from provenance.report.render import render_derived

    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        atomic_write_bytes(tmp / "transcripts.jsonl",
                           "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in transcripts).encode())
        for rel, f in probe_files.items():  # bundle-relative names from the manifest: one file per plan, never clashing
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / rel)
        for fp, tensors in weights.items():
            buf = io.BytesIO()
            np.savez(buf, **tensors)
            atomic_write_bytes(tmp / "evidence" / "weights" / f"{fp}.npz", buf.getvalue())
        atomic_write_json(tmp / "manifest.json", manifest)
        atomic_write_json(tmp / "results.json", results)
        render_derived(tmp)
        digest = write_sums(tmp)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if zip_too:
        make_zip(out)
    return digest


def _swap_in(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)


def make_zip(bundle: Path) -> Path:
    target = bundle.with_suffix(".zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(bundle.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(f"{bundle.name}/{p.relative_to(bundle).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, p.read_bytes())
    atomic_write_bytes(target, buf.getvalue())
    return target


def load_bundle_json(bundle: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((bundle / name).read_text())
    except FileNotFoundError:
        raise InputError(f"{bundle}: not an evidence bundle (no {name})") from None
    except ValueError as exc:
        raise InputError(f"{bundle}/{name}: not valid JSON ({exc})") from None
