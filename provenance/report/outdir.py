"""The output directory of a run: checked before any work, locked for the run, and never deleted.

An existing `--out` is used only when it is empty, or when it holds a real provenance bundle (or matrix output; its
manifest or results say so) and `--replace` was given; the bundle it held is then kept beside it as
`OUT.replaced-N`, not deleted. Two runs cannot write the same `--out` at once (an advisory lock on `.OUT.lock`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import InputError

_lock = threading.Lock()


@dataclass
class _Claim:
    fd: int
    lock_path: Path
    replace: bool


_claims: dict[str, _Claim] = {}  # absolute out path -> this process's claim on it


def absolute(out: Path) -> Path:
    """`out` as an absolute, normalised path ('.' and '..' resolved lexically; a symlink is not followed)."""
    return Path(os.path.abspath(os.fspath(out)))


def _read_json(path: Path, limit: int = 64 << 20) -> Any:
    """A small JSON file, or None: never follows a link, never opens a FIFO or device."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        from provenance.fsutil import read_capped

        return json.loads(read_capped(path, limit, follow_symlinks=False))
    except (OSError, ValueError, InputError, RecursionError):
        return None


def existing_output(out: Path) -> dict[str, Any] | None:
    """What a provenance run left in `out`: {"kind": "bundle"|"matrix", "case_id": …}, or None if it is not one.

    A directory counts only with a SHA256SUMS and a manifest (bundle) or results (matrix) that provenance wrote; a file
    that merely has one of those names is not enough.
    """
    if not (out / "SHA256SUMS").is_file() or (out / "SHA256SUMS").is_symlink():
        return None
    manifest = _read_json(out / "manifest.json")
    if isinstance(manifest, dict) and isinstance(manifest.get("tool"), dict) \
            and manifest["tool"].get("name") == "provenance" and isinstance(manifest.get("case"), dict):
        return {"kind": "bundle", "case_id": str(manifest["case"].get("case_id"))}
    results = _read_json(out / "results.json")
    if isinstance(results, dict) and "pairs" in results and "edges" in results \
            and isinstance(results.get("environment"), dict) \
            and (results["environment"].get("tool") or {}).get("name") == "provenance":
        return {"kind": "matrix", "case_id": None}
    return None


def zip_path(out: Path) -> Path:
    """OUT.zip next to OUT: the whole name kept (`case.v1` -> `case.v1.zip`, never `case.zip`)."""
    return out.with_name(out.name + ".zip")


def kept_name(out: Path, suffix: str = "") -> Path:
    """The first free `OUT.replaced-N` (with `suffix`, e.g. '.zip'), where a replaced output is kept."""
    n = 1
    while True:
        cand = out.with_name(f"{out.name}.replaced-{n}{suffix}")
        if not os.path.lexists(cand):
            return cand
        n += 1


def prepare_out(out: Path, replace: bool = False, zip_too: bool = False) -> Path:
    """Check `out` before any work, create it, and lock it for this process; returns its absolute path.

    Called again for the same `out` in the same process (the CLI first, then the pipeline), it changes nothing.
    """
    out = absolute(out)
    with _lock:
        if str(out) in _claims:
            return out
    cwd = absolute(Path.cwd())
    if out == cwd or out in cwd.parents or out.parent == out:
        raise InputError(f"--out {out} is the current directory or contains it; name a directory of its own "
                         "(e.g. --out reports/case-1)")
    if out.is_symlink():
        raise InputError(f"output path {out} is a symbolic link; give the directory itself")
    if out.exists():
        if not out.is_dir():
            raise InputError(f"output path exists and is not a directory: {out}")
        if any(out.iterdir()):
            found = existing_output(out)
            if found is None:
                raise InputError(f"output directory {out} is not empty and is not an evidence bundle; choose another --out")
            if not replace:
                what = f"an evidence bundle (case '{found['case_id']}')" if found["kind"] == "bundle" else "matrix output"
                raise InputError(f"{out} already holds {what}; pass --replace to replace it (the old one is kept as "
                                 f"{kept_name(out).name}), or choose another --out")
    if zip_too and os.path.lexists(zip_path(out)) and not replace:
        raise InputError(f"{zip_path(out)} already exists; pass --replace (the old one is kept as "
                         f"{kept_name(out, '.zip').name}), or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output directory {out} is not writable ({exc.strerror})") from None
    _claim(out, replace)
    return out


def _claim(out: Path, replace: bool) -> None:
    import fcntl

    lock_path = out.with_name(f".{out.name}.lock")
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise InputError(f"another provenance run is writing {out} (lock {lock_path.name}); wait for it or "
                                 "choose another --out") from None
            raise
        try:  # the file we locked must still be the one at lock_path (a finishing run unlinks it)
            if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    with _lock:
        _claims[str(out)] = _Claim(fd, lock_path, replace)


def may_replace(out: Path) -> bool:
    with _lock:
        claim = _claims.get(str(absolute(out)))
    return bool(claim and claim.replace)


def release(out: Path) -> None:
    """Drop this process's lock on `out` (the process ending drops it too)."""
    with _lock:
        claim = _claims.pop(str(absolute(out)), None)
    if claim is None:
        return
    try:
        os.unlink(claim.lock_path)
    except OSError:
        pass
    os.close(claim.fd)
