"""Reading a bundle that may be hostile: only regular files inside it that SHA256SUMS lists, with size and work caps.

`verify` and `report` read a bundle through this module only. A symlink (to /dev/zero, to a file outside the bundle),
a FIFO, socket or device is never opened; a file is read up to a cap; a path from the manifest is used only when
SHA256SUMS lists it; and a manifest cannot ask for more recomputation than an audit ever does.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from provenance.errors import InputError
from provenance.fsutil import open_regular

SUMS = "SHA256SUMS"
MAX_FILES = 20_000  # an audit bundle holds a few dozen
MAX_DEPTH = 16
MAX_FILE_BYTES = 4 << 30  # hashed, never read whole
MAX_READ_BYTES = {"transcripts.jsonl": 1 << 30, SUMS: 16 << 20}  # read whole: JSON files, transcripts, probe files
DEFAULT_READ_BYTES = 256 << 20
MAX_NPZ_BYTES = 1 << 30  # decompressed size of a weight-evidence archive
MAX_WEIGHT_PERMUTATIONS = 100_000  # audits use 9999
MAX_MODELS = 256
MAX_PROBES_USED = 1_000_000


class BundleError(InputError):
    """Something about the bundle itself (not the tool) that verification refuses: a failed bundle, exit 3."""


_SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


def show(name: str) -> str:
    """A file name for a one-line problem report: quoted when it holds line breaks or other control characters."""
    return name if name.isprintable() else repr(name)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link (not followed)"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def scan(bundle: Path) -> tuple[dict[str, int], list[str]]:
    """Every regular file under `bundle` (relative POSIX path -> size), never following a link; and the problems:
    symlinks, FIFOs, sockets, devices, too many files or too deep a tree, anything unreadable."""
    files: dict[str, int] = {}
    problems: list[str] = []

    def walk(directory: Path, rel: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            problems.append(f"refused: {show(rel)} is nested more than {MAX_DEPTH} directories deep")
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            problems.append(f"unreadable: {show(rel or '.')} ({exc.strerror or exc})")
            return
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if len(files) >= MAX_FILES:
                problems.append(f"refused: more than {MAX_FILES} files in the bundle")
                return
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                problems.append(f"unreadable: {show(name)} ({exc.strerror or exc})")
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), name, depth + 1)
            elif stat.S_ISREG(st.st_mode):
                files[name] = st.st_size
            else:
                problems.append(f"refused: {show(name)} is {_kind(st.st_mode)}")

    walk(Path(bundle), "", 0)
    return files, problems


def _check_rel(name: str) -> None:
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise BundleError(f"refused: {show(name)} is not a plain relative path inside the bundle")


def open_inside(bundle: Path, name: str) -> Any:
    """Open bundle/name for reading: every component a real directory (no symlink), the file itself regular."""
    _check_rel(name)
    here = Path(bundle)
    parts = name.split("/")
    for part in parts[:-1]:
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            raise BundleError(f"missing: {show(name)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise BundleError(f"refused: {show(name)}: {show(here.relative_to(bundle).as_posix())} is "
                              f"{_kind(st.st_mode)}, not a directory")
    path = here / parts[-1]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BundleError(f"missing: {show(name)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"refused: {show(name)} is {_kind(st.st_mode)}")
    try:
        return open_regular(path, follow_symlinks=False)
    except InputError as exc:
        raise BundleError(f"refused: {show(name)} ({exc})") from None


def read_inside(bundle: Path, name: str, max_bytes: int | None = None) -> bytes:
    cap = max_bytes if max_bytes is not None else MAX_READ_BYTES.get(name, DEFAULT_READ_BYTES)
    with open_inside(bundle, name) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise BundleError(f"refused: {show(name)} is larger than {cap} bytes")
    return data


def parse_sums(data: bytes) -> tuple[dict[str, str], list[str]]:
    """SHA256SUMS exactly as `write_sums` writes it: lowercase digests, "\\n"-terminated lines, relative paths, once each.

    A lenient parser (splitlines, say) would accept an edited SHA256SUMS (CR line breaks) as unchanged.
    """
    listed: dict[str, str] = {}
    problems: list[str] = []
    lines = data.split(b"\n")
    if lines[-1]:
        problems.append(f"malformed: {SUMS} does not end with a newline")
    for i, raw in enumerate(lines[:-1] if not lines[-1] else lines, 1):
        m = _SUMS_LINE.fullmatch(raw.decode("utf-8", "replace"))
        if m is None:
            problems.append(f"malformed: {SUMS} line {i}")
            continue
        digest, name = m.groups()
        if name in listed:
            problems.append(f"malformed: {SUMS} line {i} lists {show(name)} again")
        elif (name.startswith("/") or "\\" in name or "\x00" in name
              or any(part in ("", ".", "..") for part in name.split("/"))):
            problems.append(f"malformed: {SUMS} line {i} names a path outside the bundle: {show(name)}")
        elif name == SUMS:
            problems.append(f"malformed: {SUMS} line {i} lists {SUMS} itself")
        else:
            listed[name] = digest
    return listed, problems


class BundleFiles:
    """The files of a bundle that SHA256SUMS lists, read safely; any other path is refused."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = Path(bundle)
        self.listed, problems = parse_sums(read_inside(self.bundle, SUMS))
        if problems:
            raise BundleError(problems[0])

    def _require(self, name: str) -> str:
        _check_rel(name) if isinstance(name, str) else None
        if not isinstance(name, str) or name not in self.listed:
            raise BundleError(f"refused: the manifest names {show(str(name))}, which SHA256SUMS does not list")
        return name

    def read_bytes(self, name: str, max_bytes: int | None = None) -> bytes:
        return read_inside(self.bundle, self._require(name), max_bytes)

    def read_text(self, name: str) -> str:
        try:
            return self.read_bytes(name).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{show(name)}: not UTF-8 (byte {exc.start})") from None

    def load_json(self, name: str) -> Any:
        try:
            return json.loads(self.read_text(name))
        except RecursionError:
            raise BundleError(f"{show(name)}: JSON nested too deeply") from None
        except ValueError as exc:
            raise BundleError(f"{show(name)}: not valid JSON ({exc})") from None

    def jsonl(self, name: str) -> list[Any]:
        out = []
        for i, line in enumerate(self.read_text(name).split("\n"), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except (ValueError, RecursionError):
                    raise BundleError(f"{show(name)} line {i}: not valid JSON") from None
        return out

    def probe_file(self, name: str) -> Path:
        """A listed probe file, checked regular and within its size cap, for the probe-set loader to read."""
        self.read_bytes(name)  # refuses links, FIFOs and oversize files before the loader opens it
        return self.bundle / name

    @contextmanager
    def npz(self, name: str) -> Iterator[Any]:
        """A weight-evidence archive, opened from memory with its members' declared sizes capped (no pickles)."""
        import numpy as np

        data = self.read_bytes(name, MAX_FILE_BYTES)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                total = sum(i.file_size for i in z.infolist())
        except zipfile.BadZipFile as exc:
            raise BundleError(f"{show(name)}: not a valid archive ({exc})") from None
        if total > MAX_NPZ_BYTES:
            raise BundleError(f"refused: {show(name)} expands to {total} bytes (limit {MAX_NPZ_BYTES})")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            yield z


def check_work(manifest: Any) -> list[str]:
    """Problems with how much recomputation a manifest asks for (an audit never asks for more than these caps)."""
    if not isinstance(manifest, dict):
        return ["malformed: manifest.json is not a JSON object"]
    out = []
    analysis = manifest.get("analysis", {})
    if not isinstance(analysis, dict):
        return ["malformed: manifest.json 'analysis' is not an object"]
    perms = analysis.get("weight_permutations", 999)
    if not isinstance(perms, int) or isinstance(perms, bool) or not 1 <= perms <= MAX_WEIGHT_PERMUTATIONS:
        out.append(f"refused: manifest asks for {str(perms)[:40]} weight permutations (recomputed only for 1 to "
                   f"{MAX_WEIGHT_PERMUTATIONS})")
    scale = analysis.get("p_scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 1.0 <= scale <= 1e6:
        out.append(f"refused: manifest p_scale {str(scale)[:40]} is not a number from 1 to 1e6")
    models = manifest.get("models")
    if not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS:
        out.append(f"refused: manifest must list 1 to {MAX_MODELS} models")
    sets = manifest.get("probe_sets")
    if not isinstance(sets, list) or any(not isinstance(p, dict) for p in sets):
        out.append("malformed: manifest 'probe_sets' is not a list of objects")
    else:
        for p in sets:
            n = p.get("n_used")
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_PROBES_USED):
                out.append(f"refused: manifest probe set uses {str(n)[:40]} probes (at most {MAX_PROBES_USED})")
    seeds = manifest.get("seeds")
    seed = seeds.get("permutation_test") if isinstance(seeds, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        out.append("malformed: manifest 'seeds.permutation_test' is not a non-negative integer")
    return out
