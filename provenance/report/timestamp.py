"""RFC 3161 trusted timestamps of a bundle's SHA256SUMS: request from a time-stamping authority, read back, check.

The request is built here (DER, a few fixed fields); the reply is stored verbatim as SHA256SUMS.tsr, the format
`openssl ts` reads. `verify` checks that the token stamps this SHA256SUMS (hash and nonce) and reports its time; the
TSA's signature is checked with `openssl ts -verify` against the CA file the user trusts (`--tsa-ca`).
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from provenance.errors import InputError

TIMESTAMP_FILE = "SHA256SUMS.tsr"
SHA256_OID = bytes.fromhex("0609608648016503040201")  # DER of OID 2.16.840.1.101.3.4.2.1 (id-sha256)
MAX_REPLY_BYTES = 1 << 20


# -- a minimal DER writer and reader (only what a TimeStampReq and a TSTInfo need) ---------------------------------------

def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _int(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def build_request(digest: bytes, nonce: int) -> bytes:
    """TimeStampReq { version 1, messageImprint { sha256, digest }, nonce, certReq TRUE } (RFC 3161, section 2.4.1)."""
    imprint = _tlv(0x30, _tlv(0x30, SHA256_OID + b"\x05\x00") + _tlv(0x04, digest))
    return _tlv(0x30, _int(1) + imprint + _int(nonce) + b"\x01\x01\xff")


def _read(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, value, position after it) of the DER element at `pos`; ValueError on anything malformed."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > len(data):
        raise ValueError("DER value runs past the end")
    return tag, data[pos : pos + length], pos + length


def _children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, v, pos = _read(value, pos)
        out.append((tag, v))
    return out


@dataclass(frozen=True)
class Token:
    status: int  # 0 granted, 1 granted with modifications, else refused
    imprint: bytes | None
    nonce: int | None
    gen_time: str | None  # UTC, ISO 8601
    serial: int | None


def parse_reply(reply: bytes) -> Token:
    """The fields of a TimeStampResp that bind it to a bundle: status, message imprint, nonce, time, serial."""
    _, resp, _ = _read(reply)
    parts = _children(resp)
    status = int.from_bytes(_children(parts[0][1])[0][1], "big", signed=True)
    if len(parts) < 2:
        return Token(status, None, None, None, None)
    # ContentInfo { signedData, [0] SignedData { version, digestAlgorithms, encapContentInfo { tstInfo, [0] OCTET } } }
    content = _children(parts[1][1])
    signed = _children(_children(content[1][1])[0][1])
    encap = _children(signed[2][1])
    tst_der = _children(encap[1][1])[0][1]
    tst = _children(_read(tst_der)[1])
    # TSTInfo { version, policy, messageImprint, serialNumber, genTime, [accuracy], [ordering], [nonce], ... }
    imprint = _children(tst[2][1])[1][1]
    serial = int.from_bytes(tst[3][1], "big")
    raw_time = tst[4][1].decode("ascii")
    when = datetime.strptime(raw_time.split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    nonce = next((int.from_bytes(v, "big") for tag, v in tst[5:] if tag == 0x02), None)
    return Token(status, imprint, nonce, when.isoformat(), serial)


# -- requesting and checking ---------------------------------------------------------------------------------------------

def check_tsa_url(url: str) -> None:
    """An http(s) URL without credentials (checked before an audit starts, not after its queries)."""
    from urllib.parse import urlsplit

    from provenance.secrets import redact

    try:
        parts = urlsplit(url)
        ok = url.startswith(("http://", "https://")) and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise InputError(f"--tsa takes an http(s) URL of a time-stamping authority, not {redact(url)[:80]!r}")
    if "@" in parts.netloc:
        raise InputError("--tsa: a time-stamping URL must not carry credentials")


def request_timestamp(bundle: Path, url: str, timeout: float = 30.0) -> Token:
    """Ask the TSA at `url` to stamp SHA256SUMS; write its reply to SHA256SUMS.tsr (atomically) once it checks out."""
    import httpx

    from provenance.fsutil import atomic_write_bytes
    from provenance.report.bundle import SUMS

    check_tsa_url(url)
    sums = Path(bundle) / SUMS
    if not sums.is_file():
        raise InputError(f"{bundle}: no {SUMS} to timestamp (write the bundle first)")
    digest = hashlib.sha256(sums.read_bytes()).digest()
    nonce = secrets.randbits(63)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            r = client.post(url, content=build_request(digest, nonce),
                            headers={"Content-Type": "application/timestamp-query"})
    except httpx.HTTPError as exc:
        raise InputError(f"time-stamping authority {url}: no answer ({type(exc).__name__})") from None
    if r.status_code != 200 or len(r.content) > MAX_REPLY_BYTES:
        raise InputError(f"time-stamping authority {url}: HTTP {r.status_code}")
    try:
        token = parse_reply(r.content)
    except (ValueError, IndexError, UnicodeDecodeError):
        raise InputError(f"time-stamping authority {url}: the reply is not an RFC 3161 response") from None
    if token.status not in (0, 1):
        raise InputError(f"time-stamping authority {url}: request refused (PKIStatus {token.status})")
    if token.imprint != digest or token.nonce != nonce:
        raise InputError(f"time-stamping authority {url}: the token stamps another request (hash or nonce differ)")
    atomic_write_bytes(Path(bundle) / TIMESTAMP_FILE, r.content)
    return token


def check_timestamp(bundle: Path, tsa_ca: Path | None) -> tuple[list[str], list[str]]:
    """(problems, notes) for SHA256SUMS.tsr: it must stamp this SHA256SUMS; with a CA file, openssl checks the TSA's
    signature and certificate chain."""
    from provenance.report import safe_io
    from provenance.report.bundle import SUMS

    path = Path(bundle) / TIMESTAMP_FILE
    if not path.exists():
        return ([f"no timestamp ({TIMESTAMP_FILE}) although --tsa-ca was given"] if tsa_ca else []), []
    try:
        token = parse_reply(safe_io.read_inside(Path(bundle), TIMESTAMP_FILE))
    except (ValueError, IndexError, UnicodeDecodeError, OSError):
        return [f"{TIMESTAMP_FILE}: not an RFC 3161 response"], []
    sums = safe_io.read_inside(Path(bundle), SUMS)
    if token.status not in (0, 1) or token.imprint != hashlib.sha256(sums).digest():
        return [f"{TIMESTAMP_FILE} does not stamp this {SUMS} (the bundle changed after it was timestamped)"], []
    what = f"timestamp {token.gen_time} (serial {token.serial})"
    if tsa_ca is None:
        return [], [f"{what} stamps this {SUMS}; pass --tsa-ca to check the authority's signature"]
    if shutil.which("openssl") is None:
        return [f"--tsa-ca: openssl is not installed, so the authority's signature cannot be checked"], []
    r = subprocess.run(["openssl", "ts", "-verify", "-data", str(Path(bundle) / SUMS), "-in", str(path),
                        "-CAfile", str(tsa_ca)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "Verification: OK" not in r.stdout:
        first = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["failed"])[-1][:200]
        return [f"{TIMESTAMP_FILE}: the authority's signature does not verify against {tsa_ca} ({first})"], []
    return [], [f"{what}: signature of the authority verified against {tsa_ca}"]
