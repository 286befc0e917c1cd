"""Load, validate and hash versioned probe sets (the files in the top-level probes/ library)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import InputError
from provenance.fsutil import read_capped, sha256_json

SCHEMA_VERSION = 1
FAMILIES = ("continuation", "next-token", "identity", "instructions", "yardstick", "custom")
MODES = ("completion", "chat")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Probe:
    id: str
    text: str


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    temperature: float
    top_k: int

    def to_json(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_k": self.top_k}


@dataclass(frozen=True)
class ProbeSet:
    id: str
    version: str
    family: str
    description: str
    mode: str
    decoding: Decoding
    probes: tuple[Probe, ...]
    sha256: str  # content hash: the parsed file plus the expanded prompts (what the cache keys on)
    path: str
    file_sha256: str = ""  # SHA-256 of the file's bytes, as `sha256sum` prints it

    @property
    def chat(self) -> bool:
        return self.mode == "chat"

    def head(self, n: int | None) -> tuple[Probe, ...]:
        """The first n probes: audits with a smaller budget use a prefix, so caches are shared across budgets."""
        return self.probes if n is None else self.probes[:n]

    def to_json(self) -> dict[str, Any]:
        # Two hashes, named for what they cover: `content_sha256` over the parsed file and its expanded prompts (stable
        # across whitespace; the cache's key), `file_sha256` over the bytes (what `sha256sum probes/...` prints).
        # ("sha256" is the content hash under its old name, kept until the report template names both.)
        return {"id": self.id, "version": self.version, "family": self.family, "content_sha256": self.sha256,
                "file_sha256": self.file_sha256, "sha256": self.sha256, "mode": self.mode, "decoding": self.decoding.to_json(), "n_probes": len(self.probes), "path": self.path}


def library_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("probes")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "probes"


def list_sets() -> list[ProbeSet]:
    return [load_file(p) for p in sorted(library_dir().glob("*.json"))]


def load(ref: str) -> ProbeSet:
    """A probe set by library id or by file path."""
    path = Path(ref)
    if path.suffix == ".json" and path.exists():
        return load_file(path)
    lib = library_dir() / f"{ref}.json"
    if lib.is_file():
        return load_file(lib)
    known = ", ".join(p.stem for p in sorted(library_dir().glob("*.json")))
    raise InputError(f"unknown probe set '{ref}' (library: {known})")


MAX_PROBE_FILE_BYTES = 64 << 20
RESERVED_IDS = ("likelihood",)  # collect.LIKELIHOOD_SET: a probe set with this id would be read back as scores


def load_file(path: Path) -> ProbeSet:
    path = Path(path)
    try:
        # A regular file only (a directory or FIFO is one error line, a FIFO never a hang), at most 64 MB.
        text = read_capped(path, MAX_PROBE_FILE_BYTES, what="probe file").decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"probe file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the probe file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise InputError(f"{path}: empty probe file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}: invalid JSON (nested too deeply)") from None
    return validate(data, str(path), text)


def _line_of(text: str, needle: str) -> int:
    idx = text.find(needle)
    return text.count("\n", 0, idx) + 1 if idx >= 0 else 1


def validate(data: Any, where: str, text: str = "") -> ProbeSet:
    def fail(msg: str, key: str | None = None) -> InputError:
        line = _line_of(text, f'"{key}"') if key and text else 1
        return InputError(f"{where}:{line}: {msg}")

    if not isinstance(data, dict):
        raise fail("a probe file is a JSON object")
    try:
        # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8 file, cache or transcript can hold.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise fail(f"text is not valid Unicode (a lone surrogate escape near {exc.object[max(0, exc.start - 20):exc.start]!r})") from None
    except (RecursionError, ValueError):
        raise fail("nested too deeply") from None
    for key in ("id", "version", "family", "description", "mode", "decoding"):
        if key not in data:
            raise fail(f"missing field '{key}'")
    if not isinstance(data["id"], str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", data["id"]):
        raise fail("'id' must be lowercase letters, digits, '.', '_' or '-'", "id")
    if data["id"] in RESERVED_IDS:
        raise fail(f"'id' {data['id']!r} is reserved (transcripts use it for the likelihood scores)", "id")
    if not isinstance(data["version"], str) or not re.fullmatch(r"\d+\.\d+\.\d+", data["version"]):
        raise fail("'version' must be semantic, like 1.0.0", "version")
    if data["family"] not in FAMILIES:
        raise fail(f"'family' must be one of {', '.join(FAMILIES)}", "family")
    if data["mode"] not in MODES:
        raise fail("'mode' must be 'completion' or 'chat'", "mode")
    dec = data["decoding"]
    if not isinstance(dec, dict):
        raise fail("'decoding' must be an object", "decoding")
    try:
        decoding = Decoding(int(dec.get("max_new_tokens", 16)), float(dec.get("temperature", 0.0)), int(dec.get("top_k", 0)))
    except (TypeError, ValueError, OverflowError):  # OverflowError: int() of an infinite number such as 1e400
        raise fail("'decoding' values must be numbers", "decoding") from None
    if not (0 <= decoding.max_new_tokens <= 1024 and 0 <= decoding.top_k <= 20 and 0 <= decoding.temperature <= 2):
        raise fail("'decoding' out of range (max_new_tokens 0..1024, top_k 0..20, temperature 0..2)", "decoding")
    if ("prompts" in data) == ("generator" in data):
        raise fail("give exactly one of 'prompts' (a list) or 'generator'")
    if "prompts" in data:
        raw = data["prompts"]
        if not isinstance(raw, list) or not raw:
            raise fail("'prompts' must be a non-empty list", "prompts")
        probes = []
        for i, p in enumerate(raw):
            if isinstance(p, str):
                probes.append(Probe(f"{data['id']}-{i:05d}", p))
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                probes.append(Probe(str(p.get("id", f"{data['id']}-{i:05d}")), p["text"]))
            else:
                raise fail(f"prompt {i} must be a string or an object with 'text'", "prompts")
            if not probes[-1].text.strip():
                raise fail(f"prompt {i} is empty", "prompts")
    else:
        probes = _generate(data["generator"], data["id"], fail)
    ids = [p.id for p in probes]
    if len(set(ids)) != len(ids):
        raise fail("probe ids must be unique")
    digest = sha256_json({"file": data, "prompts": [[p.id, p.text] for p in probes]})
    return ProbeSet(data["id"], data["version"], data["family"], str(data["description"]), data["mode"], decoding,
                    tuple(probes), digest, where,
                    hashlib.sha256(text.encode("utf-8")).hexdigest() if text else "")


def _generate(gen: Any, set_id: str, fail: Any) -> list[Probe]:
    """Deterministic template expansion: the same seed gives the same prompts on every platform."""
    if not isinstance(gen, dict) or gen.get("kind") != "templates":
        raise fail("'generator' must be an object with kind 'templates'", "generator")
    templates, slots = gen.get("templates"), gen.get("slots")
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise fail("generator 'templates' must be a non-empty list of strings", "templates")
    if not isinstance(slots, dict) or not all(isinstance(v, list) and v for v in slots.values()):
        raise fail("generator 'slots' must map names to non-empty lists", "slots")
    for t in templates:
        for name in _SLOT.findall(t):
            if name not in slots:
                raise fail(f"template uses undefined slot '{name}'", "templates")
    n, seed = gen.get("n"), gen.get("seed")
    if not isinstance(n, int) or not 1 <= n <= 100_000 or not isinstance(seed, int):
        raise fail("generator needs integer 'seed' and 'n' (1..100000)", "generator")
    # Fail fast when the templates cannot yield n distinct prompts, rather than after n * 50 futile draws.
    combos = sum(math.prod(len(slots[name]) for name in _SLOT.findall(t)) for t in templates)
    if combos < n:
        raise fail(f"generator yields at most {combos} distinct prompts, fewer than n={n}", "generator")
    rng = random.Random(seed)  # Python's Mersenne Twister is specified, so prompts are stable across platforms
    seen: set[str] = set()
    probes: list[Probe] = []
    attempts = 0
    while len(probes) < n and attempts < n * 50:
        attempts += 1
        template = rng.choice(templates)
        text = _SLOT.sub(lambda m: str(rng.choice(slots[m.group(1)])), template)
        if text not in seen:
            seen.add(text)
            probes.append(Probe(f"{set_id}-{len(probes):05d}", text))
    if len(probes) < n:
        raise fail(f"generator yields only {len(probes)} distinct prompts, fewer than n={n}", "generator")
    return probes
