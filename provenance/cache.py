"""On-disk evidence cache keyed by model fingerprint + probe-set hash + decoding + numerics + collector version; crash-safe appends."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from provenance.fsutil import atomic_write_json, cache_dir, sha256_json

# Bump when the collector's output for the same model and probes would change.
# 3: sampled answers drawn per row by seeded Gumbel-max in batches (models/hf.py _RowSampler), not one at a time.
COLLECTOR_VERSION = "3"
WEIGHT_SKETCH_VERSION = "2"  # first 512 MLP units of three layers, float16


def entry_key(model_fingerprint: str, probe_set_sha256: str, decoding: dict[str, Any], mode: str,
              numerics: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything that determines a cached answer. The model's identity is never left out (lm-eval #2715), nor, for a
    local model, the device and dtype it ran with (bfloat16 on a GPU and float32 on the CPU answer differently)."""
    if not model_fingerprint:
        raise ValueError("a cache key needs the model's fingerprint")
    key = {"model": model_fingerprint, "probe_set": probe_set_sha256, "decoding": decoding, "mode": mode,
           "collector": COLLECTOR_VERSION}
    return {**key, "numerics": dict(numerics)} if numerics else key


class EvidenceCache:
    """Append-only JSONL files, one per key. A torn last line (crash mid-write) is dropped on read."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "evidence"

    def _path(self, key: dict[str, Any]) -> Path:
        digest = sha256_json(key)
        return self.root / digest[:2] / f"{digest}.jsonl"

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """An exclusive lock per cache file, so processes sharing the cache (study or fleet workers) never read a line
        another is writing, truncate it as torn, or both write a header (fcntl locks; released if a process dies)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def load(self, key: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Records by probe id. Verifies the header so a file can never be served for another model."""
        path = self._path(key)
        if not path.is_file():
            return {}
        with self._locked(path):
            return self._load(path, key)

    def _load(self, path: Path, key: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if not path.is_file():
            return {}
        out: dict[str, dict[str, Any]] = {}
        good_bytes = 0
        with open(path, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                good_bytes += 1 if i < len(lines) - 1 else 0
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                break  # torn write: everything after it is discarded
            if i == len(lines) - 1:
                break  # no trailing newline: the write did not finish
            good_bytes += len(line) + 1
            if i == 0:
                if rec.get("header") != key:
                    return {}
                continue
            out[rec["probe_id"]] = rec
        if good_bytes < len(data):
            with open(path, "r+b") as fh:  # drop the torn tail so later appends start on a clean line
                fh.truncate(good_bytes)
        return out

    def retire(self, key: dict[str, Any]) -> Path | None:
        """Set a key's answers aside (renamed `.stale-N`, never deleted): they are no longer served for it."""
        path = self._path(key)
        if not path.is_file():
            return None
        n = 1
        while path.with_name(f"{path.name}.stale-{n}").exists():
            n += 1
        kept = path.with_name(f"{path.name}.stale-{n}")
        os.replace(path, kept)
        return kept

    def append(self, key: dict[str, Any], records: Iterable[dict[str, Any]]) -> None:
        path = self._path(key)
        with self._locked(path):
            self._append(path, key, records)

    def _append(self, path: Path, key: dict[str, Any], records: Iterable[dict[str, Any]]) -> None:
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "ab") as fh:
            if new:
                fh.write((json.dumps({"header": key}, sort_keys=True) + "\n").encode())
            for rec in records:
                fh.write((json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())

    # Per-model facts (tokenizer identity, capabilities) so a fully cached model need not be loaded.
    def model_meta_path(self, fingerprint: str) -> Path:
        return self.root.parent / "models" / f"{fingerprint}.json"

    def load_meta(self, fingerprint: str) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.model_meta_path(fingerprint).read_text())
        except (OSError, ValueError):
            return None
        return meta if meta.get("fingerprint") == fingerprint else None

    def save_meta(self, fingerprint: str, meta: dict[str, Any]) -> None:
        atomic_write_json(self.model_meta_path(fingerprint), {**meta, "fingerprint": fingerprint})

    def weights_path(self, fingerprint: str) -> Path:
        return self.root.parent / "weights" / f"{fingerprint}-v{WEIGHT_SKETCH_VERSION}.npz"
