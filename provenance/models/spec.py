"""Parse a model spec string into a typed ModelSpec: directory, .gguf file, HTTP endpoint, packaged name or hub id."""

from __future__ import annotations

import difflib
import enum
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provenance.errors import InputError
from provenance.secrets import printable, redact, split_userinfo

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class SpecKind(str, enum.Enum):
    DIRECTORY = "directory"
    GGUF = "gguf"
    HTTP = "http"
    PACKAGED = "packaged"
    HUB = "hub"
    FAKE = "fake"  # the seeded fake backend (plumbing tests only)


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for (`raw`) and how we will reach it."""

    raw: str
    kind: SpecKind
    location: str  # path, base URL, packaged name or hub id
    model_name: str | None = None  # for HTTP endpoints: the served model's name
    revision: str | None = None  # for hub ids: a branch, tag or commit (`org/name@rev`); None is the main branch


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REVISION = re.compile(r"^[\w.][\w./-]{0,199}$")  # branch, tag ('v1.0'), commit, or 'refs/pr/1'


def parse_spec(raw: str) -> ModelSpec:
    """Turn a spec string into a ModelSpec, or raise InputError with one clear line."""
    from provenance.models.packaged import PACKAGED  # light: a dict of metadata

    s = raw.strip()
    if not s:
        raise InputError("empty model spec")
    if any(ord(c) < 32 or c == "\x7f" for c in s):
        raise InputError(f"model spec contains control characters: {redact(raw)!r}")
    if s.startswith("fake:"):
        from provenance.models.fake import parse_fake

        parse_fake(s)  # validates now: a bad fake spec is one line before any work
        return ModelSpec(raw, SpecKind.FAKE, s)
    if s.startswith(("http://", "https://")):
        url, _, model = s.partition("#")
        try:
            parts = urlsplit(url)
            ok = bool(parts.hostname) and (parts.port is None or parts.port > 0)  # .port raises on 'x:99999999'
        except ValueError:  # e.g. unbalanced IPv6 brackets: 'http://[::1'
            ok = False
        if not ok:
            raise InputError(f"malformed endpoint URL: {redact(raw)!r} (expected http(s)://HOST[:PORT]/v1#MODEL)")
        # Userinfo never travels implicitly (httpx would send it as Basic auth): credentials are given per endpoint
        # (provenance/secrets.py), and the CLI strips them from the spec before it reaches any record.
        url = split_userinfo(url)[0]
        return ModelSpec(raw, SpecKind.HTTP, url.rstrip("/"), model or None)
    if s in PACKAGED:
        return ModelSpec(raw, SpecKind.PACKAGED, s)
    try:
        path = Path(s).expanduser()
        exists = path.exists()
    except (OSError, RuntimeError, ValueError):  # e.g. '~user' with no such user, or a name too long
        raise InputError(f"not a usable path: {raw!r}") from None
    if exists:
        if path.is_dir():
            return ModelSpec(raw, SpecKind.DIRECTORY, str(path.resolve()))
        if path.suffix.lower() == ".gguf":
            return ModelSpec(raw, SpecKind.GGUF, str(path.resolve()))
        if path.suffix.lower() in PICKLE_SUFFIXES + (".safetensors",):
            raise InputError(f"{printable(raw)}: pass the model's directory (with config.json and tokenizer), not a weight file")
        raise InputError(f"{printable(raw)}: not a model directory or .gguf file")
    repo, at, rev = s.partition("@")
    if at and _HUB_ID.match(repo) and not Path(repo).expanduser().exists():
        if not _REVISION.match(rev) or ".." in rev:
            raise InputError(f"hub id {repo!r}: revision {printable(rev)!r} is not a branch, tag or commit name")
        return ModelSpec(raw, SpecKind.HUB, repo, revision=rev)
    looks_like_path = s.startswith((".", "/", "~")) or s.lower().endswith(".gguf") or "\\" in s or s.count("/") > 1
    if looks_like_path:
        raise InputError(f"model path does not exist: {printable(raw)}")
    if _HUB_ID.match(s):
        return ModelSpec(raw, SpecKind.HUB, s)
    close = difflib.get_close_matches(s, list(PACKAGED), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; packaged models: {', '.join(PACKAGED)}"
    raise InputError(f"unknown model {s!r} (not a path, URL, packaged name or hub id `org/name[@revision]`){hint}")
