"""Atomic file writes and streamed hashing: a crash never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from provenance.errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync it: a resumable log loses at most the line being written when killed."""
    import fcntl

    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # several study workers append to one log
        f.seek(0, os.SEEK_END)
        cut = False
        if f.tell() > 0:  # a line cut by a kill has no newline: end it, so the next line is not glued to it
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        f.write((b"\n" if cut else b"") + line.rstrip("\n").encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`.lock while building what `path` will hold: a second process building the same
    thing waits, then finds it built (fcntl: released if the holder dies)."""
    import fcntl

    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def strict_json(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, ±Infinity) replaced by None, so the JSON is strict (RFC 8259).

    Python's json writes NaN, which strict parsers (jq, JavaScript, Go) reject; a skipped test's statistic is NaN.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def dumps_strict(obj: Any, **kw: Any) -> str:
    """json.dumps that never writes NaN or Infinity (they become null)."""
    return json.dumps(strict_json(obj), allow_nan=False, **kw)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps_strict(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def open_regular(path: Path, *, follow_symlinks: bool = True) -> BinaryIO:
    """Open a file for reading only if it is a regular file: a FIFO, socket or device is refused (InputError).

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer (which would hang forever);
    the descriptor is then checked with fstat, so the check and the read are on the same file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise InputError(f"{path}: is a symbolic link (not followed)") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file ({_kind(st.st_mode)}); refusing to read it")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_capped(path: Path, max_bytes: int, *, follow_symlinks: bool = True, what: str = "file") -> bytes:
    """The bytes of a regular file, refused (InputError) when it holds more than `max_bytes`."""
    with open_regular(path, follow_symlinks=follow_symlinks) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{path}: {what} larger than {max_bytes} bytes; refusing to read it")
    return data


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Streamed SHA-256 of a regular file (a FIFO or device is refused instead of read forever)."""
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object in canonical form (sorted keys, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    """Root of provenance's on-disk cache (PROVENANCE_CACHE overrides ~/.cache/provenance)."""
    root = os.environ.get("PROVENANCE_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "provenance"
