"""Model fingerprints for chain of custody: streamed SHA-256 of every file, hashed afresh by every process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from provenance.fsutil import sha256_file, sha256_json

_lock = threading.Lock()
# Within one process only, keyed by everything stat can tell about the file: a file edited in place with its size and
# mtime put back still changes its ctime (which no user call can set), and a replaced file has another inode. Across
# processes nothing is trusted: every audit re-hashes its local models when it starts (a path|size|mtime index on disk
# kept an edited weight file's old SHA-256).
_memo: dict[tuple[str, int, int, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int, int, int, int]:
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def hash_file_cached(path: Path) -> str:
    """SHA-256 of a regular file (a FIFO or device is refused); hashed once per process while its stat is unchanged."""
    path = Path(path).resolve()
    key = _stat_key(path)
    with _lock:
        if key in _memo:
            return _memo[key]
    digest = sha256_file(path)
    if _stat_key(path) == key:  # unchanged while we read it
        with _lock:
            _memo[key] = digest
    return digest


def directory_files(path: Path) -> dict[str, str]:
    """Hash of every regular, non-hidden file in a model directory (weights, config, tokenizer)."""
    out: dict[str, str] = {}
    for p in sorted(Path(path).rglob("*")):
        rel = p.relative_to(path)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[str(rel)] = hash_file_cached(p)
    return out


def combine(files: dict[str, str]) -> str:
    return sha256_json(files)


def endpoint_fingerprint(url: str, model: str, metadata: dict[str, object]) -> str:
    return sha256_json({"url": url, "model": model, "metadata": metadata})


def file_size_total(path: Path) -> int:
    if Path(path).is_file():
        return os.path.getsize(path)
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
