"""Credentials per endpoint, and the one place that keeps secrets and terminal escapes out of everything we write or print.

A key is sent only to the endpoint it was given for (`--api-key-env SPEC=VARNAME`, `--api-key SPEC=KEY`, or the
userinfo of that endpoint's own URL), never read implicitly from OPENAI_API_KEY, and never over plain http unless the
host is loopback. Userinfo is stripped from a spec before the spec reaches any record; `redact()` is applied wherever a
spec, URL, header or error text is written (bundle files, cache captures) or printed (stdout, error lines).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
import threading
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from provenance.errors import InputError

MASK = "***"
# A credential shorter than this is masked where it stands as a credential (URL userinfo; the whole Authorization value,
# "Bearer k", is registered and long enough) but not as free text: masking a key "a" or a user "gg" everywhere rewrote
# answers and JSON keys ("flagged" -> "fla***ed"), the evidence itself, and so short a value guards nothing anyway.
MIN_FREE_SECRET = 8
_lock = threading.Lock()
_secrets: set[str] = set()  # values given to us as credentials this process; masked wherever they would be written
_warned_short = False  # one warning per process is enough

# scheme://user[:password]@ : the userinfo is masked, whatever it holds.
_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@#?]+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


def register(secret: str) -> None:
    """Remember a credential so `redact` masks it wherever it would be written or printed."""
    if not secret:
        return
    global _warned_short
    with _lock:
        if len(secret) >= MIN_FREE_SECRET:
            _secrets.add(secret)
            return
        first, _warned_short = not _warned_short, True
    if first:
        logging.getLogger("provenance").warning(
            f"warning: a credential of {len(secret)} characters (under {MIN_FREE_SECRET}) is masked where it is sent "
            "(URL, Authorization header) but not in other text; use a longer key for a real secret")


def redact(text: str) -> str:
    """Mask URL userinfo, Authorization-style tokens and every registered credential in `text`."""
    if not isinstance(text, str) or not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in out:
            out = out.replace(s, MASK)
    return out


def redact_obj(obj: Any) -> Any:
    """`redact` applied to every string (keys included) of a JSON-like object."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, limit: int = 2000) -> str:
    """One line of text safe for a terminal: control characters (newlines, ESC, CSI, bidi breaks) shown escaped."""
    text = redact(str(text))
    text = _CONTROL.sub(lambda m: repr(m.group(0))[1:-1] if m.group(0) not in "\n\r" else
                        ("\\n" if m.group(0) == "\n" else "\\r"), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_userinfo(spec: str) -> tuple[str, str | None]:
    """(`spec` without URL userinfo, the Authorization header value it implied or None). Non-URLs pass unchanged."""
    s = spec.strip()
    if not s.lower().startswith(("http://", "https://")):
        return spec, None
    url, sep, model = s.partition("#")
    try:
        parts = urlsplit(url)
    except ValueError:
        return spec, None  # malformed: the spec parser reports it
    if "@" not in parts.netloc:
        return spec, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    from urllib.parse import unquote

    user, password = unquote(user), unquote(password)
    register(userinfo)
    register(password)
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment)) + (sep + model)
    if not password and user:
        register(user)
        return clean, f"Bearer {user}"  # http://KEY@host: the userinfo is the token
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    register(token)
    return clean, f"Basic {token}"


def check_transport(base_url: str, what: str = "an API key") -> None:
    """Refuse to send a credential over plain http to anything but a loopback address."""
    parts = urlsplit(base_url)
    if parts.scheme.lower() != "https" and not is_loopback(parts.hostname):
        raise InputError(f"refusing to send {what} to {redact(base_url)} over plain http (use https, or a loopback "
                         "address such as 127.0.0.1)")


def endpoint_credentials(specs: Sequence[str], api_key_env: Iterable[str] = (), api_keys: Iterable[str] = (),
                         environ: dict[str, str] | None = None) -> tuple[list[str], tuple[tuple[str, str], ...]]:
    """Clean specs (userinfo removed) and the credentials per endpoint: ((spec or base URL, Authorization value), ...).

    `api_key_env` items are `SPEC=VARNAME` (the key is read from that environment variable), `api_keys` items are
    `SPEC=KEY`; SPEC must be one of `specs` (as given, or its base URL without `#MODEL`). Nothing is read implicitly.
    """
    env = os.environ if environ is None else environ
    clean: list[str] = []
    creds: dict[str, str] = {}
    for s in specs:
        c, auth = split_userinfo(s)
        clean.append(c)
        if auth is not None:
            check_transport(c.partition("#")[0], "the credentials in its URL")
            creds[c] = auth
    names = {c for c in clean if c.lower().startswith(("http://", "https://"))}
    bases = {c.partition("#")[0].rstrip("/"): c for c in names}

    def target(item: str, option: str, sep_last: bool) -> tuple[str, str]:
        spec, sep, value = item.rpartition("=") if sep_last else item.partition("=")
        if not sep or not spec or not value:
            raise InputError(f"{option} takes SPEC={'VARNAME' if sep_last else 'KEY'} naming an endpoint of this "
                             "command (the key is sent to that endpoint only)")
        spec = split_userinfo(spec)[0]
        if spec not in names and spec.rstrip("/") not in bases:
            raise InputError(f"{option} names {redact(spec)!r}, which is not an http(s) endpoint of this command")
        return spec if spec in names else bases[spec.rstrip("/")], value

    for item in api_key_env:
        spec, var = target(item, "--api-key-env", sep_last=True)
        key = env.get(var, "")
        if not key:
            raise InputError(f"--api-key-env {redact(spec)}={var}: environment variable {var} is not set or empty")
        register(key)
        check_transport(spec.partition("#")[0])
        creds[spec] = f"Bearer {key}"
    for item in api_keys:
        register(item.partition("=")[2])
        spec, key = target(item, "--api-key", sep_last=False)
        check_transport(spec.partition("#")[0])
        creds[spec] = f"Bearer {key}"
    for v in creds.values():
        register(v)
    return clean, tuple(sorted(creds.items()))
