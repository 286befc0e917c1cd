"""Check safetensors and GGUF headers against the file's real size before any loader allocates what they claim."""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from provenance.errors import InputError
from provenance.fsutil import open_regular

# The safetensors library refuses headers above 100 MB; nothing legitimate comes close.
MAX_SAFETENSORS_HEADER = 100_000_000
# Bits per element (safetensors' Dtype::bitsize); sub-byte types must fill whole bytes.
SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
MAX_DIMS = 8  # ggml has 4, safetensors has no limit but no real tensor has more than a handful

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)  # version 1 (32-bit counts) is obsolete; gguf-py reads 2 and 3
GGUF_DEFAULT_ALIGNMENT = 32
MAX_ARRAY_NESTING = 4
# GGUF metadata value types: fixed sizes in bytes; STRING (8) and ARRAY (9) are variable.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _fail(path: Path, what: str) -> InputError:
    return InputError(f"{path}: corrupt or malicious weight file ({what}); refusing to load it")


def validate_safetensors(path: Path) -> None:
    """Header length, JSON, dtypes, shapes and data offsets of a .safetensors file, checked against its size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open_regular(path) as fh:  # a FIFO would block forever
            head = fh.read(8)
            if len(head) < 8:
                raise _fail(path, f"{size} bytes, shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise _fail(path, f"header claims {n} bytes but the file has {size}")
            if n > MAX_SAFETENSORS_HEADER:
                raise _fail(path, f"header of {n} bytes exceeds the {MAX_SAFETENSORS_HEADER}-byte limit")
            raw = fh.read(n)  # bounded by the file's real size, checked above
    except OSError as exc:
        raise InputError(f"{path}: cannot read weight file ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _fail(path, "header is not valid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"header is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise _fail(path, "__metadata__ must map strings to strings")
            continue
        spans.append(_tensor_span(path, name, info, data_len))
    spans.sort()
    end = 0
    for start, stop, name in spans:
        # Tensors must tile the data section exactly: no gaps, overlaps or unclaimed bytes to hide things in.
        if start != end:
            raise _fail(path, f"tensor {name!r} starts at {start}, expected {end} (overlap or gap)")
        end = stop
    if end != data_len:
        raise _fail(path, f"tensors cover {end} bytes but the data section has {data_len} (truncated or padded)")


def _tensor_span(path: Path, name: str, info: Any, data_len: int) -> tuple[int, int, str]:
    if not isinstance(info, dict):
        raise _fail(path, f"tensor {name!r}: entry is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPE_BITS:
        raise _fail(path, f"tensor {name!r}: unknown dtype {str(dtype)[:20]!r}")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise _fail(path, f"tensor {name!r}: shape must be a list of at most {MAX_DIMS} non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise _fail(path, f"tensor {name!r}: data_offsets must be two integers")
    start, stop = offsets
    if not 0 <= start <= stop <= data_len:
        raise _fail(path, f"tensor {name!r}: data_offsets [{start}, {stop}] outside the {data_len}-byte data section")
    bits = math.prod(shape) * SAFETENSORS_DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != stop - start:
        raise _fail(path, f"tensor {name!r}: shape {shape} of {dtype} needs {bits / 8:.0f} bytes, offsets give {stop - start}")
    return start, stop, name


class _GGUFCursor:
    """Bounds-checked reads from a memory-mapped GGUF file (pages are touched only when read)."""

    def __init__(self, path: Path, buf: Any, size: int, endian: str) -> None:
        self.path, self.buf, self.size, self.endian, self.pos = path, buf, size, endian, 0

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.size:
            raise _fail(self.path, f"{what} runs past the end of the file (offset {self.pos}, {n} bytes, file {self.size})")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> Any:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(self.endian + fmt, self.buf, start)[0]

    def string(self, what: str) -> bytes:
        n = self.unpack("Q", f"{what} length")
        start = self.take(n, f"{what} of {n} bytes")
        return bytes(self.buf[start : start + min(n, 256)])  # only keys and names are kept; values are skipped

    def count(self, what: str, min_item: int) -> int:
        """An element count, refused when even the smallest elements could not fit in the rest of the file."""
        n = self.unpack("Q", what)
        if n * min_item > self.size - self.pos:
            raise _fail(self.path, f"{what} of {n} cannot fit in the {self.size - self.pos} bytes left")
        return n


def validate_gguf(path: Path) -> None:
    """Magic, version, counts, string lengths, tensor shapes and data offsets of a GGUF file, checked against its size."""
    from gguf.constants import GGML_QUANT_SIZES

    path = Path(path)
    try:
        with open_regular(path) as fh:  # a FIFO would block forever
            size = os.fstat(fh.fileno()).st_size
            if size < 24:
                raise _fail(path, f"{size} bytes, shorter than a GGUF header")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                _walk_gguf(path, buf, size, {int(k): v for k, v in GGML_QUANT_SIZES.items()})
    except OSError as exc:
        raise InputError(f"{path}: cannot read GGUF file ({exc.strerror or exc})") from None


def _walk_gguf(path: Path, buf: Any, size: int, quant: dict[int, tuple[int, int]]) -> None:
    if buf[:4] != GGUF_MAGIC:
        raise _fail(path, f"magic {bytes(buf[:4])!r}, expected b'GGUF'")
    # Big-endian GGUF files exist; the version field tells which byte order the writer used.
    big = struct.unpack_from(">I", buf, 4)[0] in GGUF_VERSIONS and struct.unpack_from("<I", buf, 4)[0] not in GGUF_VERSIONS
    endian = ">" if big else "<"
    c = _GGUFCursor(path, buf, size, endian)
    c.pos = 4
    version = c.unpack("I", "version")
    if version not in GGUF_VERSIONS:
        raise _fail(path, f"unsupported GGUF version {version} (readers support {GGUF_VERSIONS})")
    # A tensor info takes at least 8 (name length) + 4 (dims) + 4 (type) + 8 (offset) bytes; a key-value 8 + 4 + 1.
    n_tensors = c.count("tensor count", 24)
    n_kv = c.count("metadata count", 13)
    alignment = GGUF_DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        key = c.string("metadata key")
        vtype = c.unpack("I", f"type of {key[:40]!r}")
        if key == b"general.alignment" and vtype == 4:
            alignment = c.unpack("I", "general.alignment")
            if alignment == 0 or alignment & (alignment - 1):
                raise _fail(path, f"general.alignment {alignment} is not a power of two")
        else:
            _skip_value(c, vtype, key, 0)
    tensors: list[tuple[int, int, str]] = []
    for i in range(n_tensors):
        name = c.string(f"tensor {i} name").decode("utf-8", "replace")
        n_dims = c.unpack("I", f"tensor {name!r} dimensions")
        if n_dims > MAX_DIMS:
            raise _fail(path, f"tensor {name!r} has {n_dims} dimensions")
        dims = [c.unpack("Q", f"tensor {name!r} shape") for _ in range(n_dims)]
        ttype = c.unpack("I", f"tensor {name!r} type")
        offset = c.unpack("Q", f"tensor {name!r} offset")
        if ttype not in quant:
            raise _fail(path, f"tensor {name!r} has unknown type {ttype}")
        block, type_size = quant[ttype]
        n_el = math.prod(dims)
        if dims and dims[0] % block:
            raise _fail(path, f"tensor {name!r}: first dimension {dims[0]} is not a multiple of the block size {block}")
        tensors.append((offset, n_el // block * type_size, name))
    data_start = -(-c.pos // alignment) * alignment
    end = 0
    for offset, nbytes, name in sorted(tensors):
        if offset < end:
            raise _fail(path, f"tensor {name!r} at offset {offset} overlaps the previous tensor")
        end = offset + nbytes
        if data_start + end > size:
            raise _fail(path, f"tensor {name!r} needs bytes up to {data_start + end}, past the end of the {size}-byte file")


def _skip_value(c: _GGUFCursor, vtype: int, key: bytes, depth: int) -> None:
    if vtype in _GGUF_FIXED:
        c.take(_GGUF_FIXED[vtype], f"value of {key[:40]!r}")
    elif vtype == _STRING:
        c.string(f"string value of {key[:40]!r}")
    elif vtype == _ARRAY:
        if depth >= MAX_ARRAY_NESTING:
            raise _fail(c.path, f"arrays nested more than {MAX_ARRAY_NESTING} deep in {key[:40]!r}")
        etype = c.unpack("I", f"array type of {key[:40]!r}")
        if etype in _GGUF_FIXED:
            n = c.count(f"array length of {key[:40]!r}", _GGUF_FIXED[etype])
            c.take(n * _GGUF_FIXED[etype], f"array {key[:40]!r}")
        elif etype == _STRING:
            n = c.count(f"array length of {key[:40]!r}", 8)
            _skip_strings(c, n, key)
        elif etype == _ARRAY:
            n = c.count(f"array length of {key[:40]!r}", 12)
            for _ in range(n):
                _skip_value(c, _ARRAY, key, depth + 1)
        else:
            raise _fail(c.path, f"unknown array element type {etype} in {key[:40]!r}")
    else:
        raise _fail(c.path, f"unknown metadata type {vtype} for {key[:40]!r}")


def _skip_strings(c: _GGUFCursor, n: int, key: bytes) -> None:
    """A tokenizer's vocabulary is ~100k strings: walk their lengths in a tight loop rather than via c.string."""
    fmt, pos, size, buf = c.endian + "Q", c.pos, c.size, c.buf
    unpack_from = struct.unpack_from
    for _ in range(n):
        if pos + 8 > size:
            break
        pos += 8 + unpack_from(fmt, buf, pos)[0]
        if pos > size:
            break
    else:
        c.pos = pos
        return
    raise _fail(c.path, f"string in {key[:40]!r} runs past the end of the file (offset {pos}, file {size})")


def validate_directory(path: Path) -> None:
    """Every safetensors file of a model directory."""
    for f in sorted(Path(path).glob("*.safetensors")):
        validate_safetensors(f)
