"""Hostile local files: FIFOs and directories where files belong, and weight files edited behind the hash cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_fakes import ROOT, run_cli
from tests.conftest import error_lines


def one_error(proc: Any, needle: str) -> None:
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_a_fifo_as_a_gguf_model_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    one_error(run_cli("fingerprint", str(fifo), timeout=60), "not a regular file (a FIFO)")


def test_a_fifo_as_safetensors_in_a_model_directory_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "real.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    os.mkfifo(d / "model.safetensors")
    proc = run_cli("fingerprint", str(d), timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr, proc.stderr


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_as_a_probe_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "probes.json"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    needle = "a FIFO" if kind == "fifo" else "is a directory"
    one_error(run_cli("probes", "validate", str(path), timeout=60), needle)
    one_error(run_cli("audit", "-s", "http://127.0.0.1:9/v1#m", "-r", "http://127.0.0.1:9/v1#r", "-c",
                      "http://127.0.0.1:9/v1#c", "--continuation-probes", str(path), "--out", str(tmp_path / "o"),
                      timeout=60), needle)


def test_reserved_probe_set_id(tmp_path: Path) -> None:
    """A probe set named 'likelihood' passed `validate` and made bundles that failed `verify`."""
    data = json.loads((ROOT / "probes" / "continuation.json").read_text())
    data["id"] = "likelihood"
    (tmp_path / "p.json").write_text(json.dumps(data))
    one_error(run_cli("probes", "validate", str(tmp_path / "p.json")), "'id' 'likelihood' is reserved")


def test_an_edited_weight_file_gets_a_new_hash_even_with_size_and_mtime_put_back(tmp_path: Path) -> None:
    """The hash cache was keyed by path, size and mtime: an edit that kept both kept the old SHA-256."""
    from provenance.models.fingerprint import hash_file_cached

    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF" + bytes(1000))
    st = f.stat()
    before = hash_file_cached(f)
    f.write_bytes(b"GGUF" + bytes(999) + b"\x01")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert hash_file_cached(f) != before
    # And across processes nothing is cached at all: each run re-hashes.
    a = run_cli("fingerprint", str(f), "--json")
    f.write_bytes(b"GGUF" + bytes(998) + b"\x02\x00")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    b = run_cli("fingerprint", str(f), "--json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout)[0]["fingerprint"] != json.loads(b.stdout)[0]["fingerprint"]


def test_a_negative_seed_is_a_usage_error(tmp_path: Path) -> None:
    """numpy refuses negative seeds: it was a crash after the whole collection."""
    one_error(run_cli("audit", "-s", "a", "-r", "b", "--out", str(tmp_path / "o"), "--seed", "-1"),
              "Invalid value for '--seed'")
