"""Model fingerprints for chain of custody: streamed SHA-256 of every file, cached by path, size and mtime."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from provenance.fsutil import atomic_write_json, cache_dir, sha256_file, sha256_json

_lock = threading.Lock()


def _index_path() -> Path:
    return cache_dir() / "file-hashes.json"


def hash_file_cached(path: Path) -> str:
    """SHA-256 of a file; re-hashed only when its size or mtime changed since the last time."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    with _lock:
        try:
            index = json.loads(_index_path().read_text())
        except (OSError, ValueError):
            index = {}
        if key in index:
            return str(index[key])
    digest = sha256_file(path)
    with _lock:
        try:
            index = json.loads(_index_path().read_text())
        except (OSError, ValueError):
            index = {}
        index[key] = digest
        atomic_write_json(_index_path(), index)
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
