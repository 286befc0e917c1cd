"""Detached Ed25519 signatures of a bundle's SHA256SUMS (OpenSSH or PEM keys), made by `sign`, checked by `verify`.

SHA256SUMS lists the hash of every file, so signing it signs the bundle; the signature file sits beside it and is the
one file SHA256SUMS does not list. Keys are the user's (`ssh-keygen -t ed25519`, or any PEM Ed25519 key); the tool
never makes or stores one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provenance.errors import InputError

SIGNATURE_FILE = "SHA256SUMS.sig"
SIGNATURE_FORMAT = "provenance-signature/1"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # the installation, not the bundle
        raise InputError("signing needs the 'cryptography' package (pip install cryptography)") from None
    return serialization, ed25519


def _read_key_bytes(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > 64 << 10:
        raise InputError(f"{path} is too large to be a {what}")
    return data


def load_private_key(path: Path, passphrase_env: str | None = None) -> Any:
    import os

    serialization, ed25519 = _crypto()
    data = _read_key_bytes(path, "private key")
    password = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(data, password=password or None)
        except (ValueError, TypeError):
            continue
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise InputError(f"{path}: only Ed25519 keys are supported (ssh-keygen -t ed25519)")
        return key
    raise InputError(f"{path}: not an Ed25519 private key in OpenSSH or PEM form (or a wrong passphrase)")


def load_public_key(path: Path) -> Any:
    serialization, ed25519 = _crypto()
    data = _read_key_bytes(path, "public key").strip()
    for loader in (serialization.load_ssh_public_key, serialization.load_pem_public_key):
        try:
            key = loader(data)
        except (ValueError, TypeError, IndexError):
            continue
        if isinstance(key, ed25519.Ed25519PublicKey):
            return key
    raise InputError(f"{path}: not an Ed25519 public key in OpenSSH or PEM form")


def openssh_public(key: Any) -> str:
    serialization, _ = _crypto()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def key_fingerprint(public_openssh: str) -> str:
    """The OpenSSH-style SHA256 fingerprint (what `ssh-keygen -lf KEY.pub` prints)."""
    blob = base64.b64decode(public_openssh.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def sign_bundle(bundle: Path, key_path: Path, passphrase_env: str | None = None, signer: str | None = None
                ) -> dict[str, Any]:
    """Write SHA256SUMS.sig: the signature of SHA256SUMS's exact bytes, the public key and when (UTC)."""
    from provenance.fsutil import atomic_write_json
    from provenance.report.bundle import SUMS

    sums = Path(bundle) / SUMS
    if not sums.is_file():
        raise InputError(f"{bundle}: not an evidence bundle (no {SUMS})")
    key = load_private_key(key_path, passphrase_env)
    data = sums.read_bytes()
    pub = openssh_public(key.public_key())
    sig = {"format": SIGNATURE_FORMAT, "algorithm": "ed25519", "signed_file": SUMS,
           "signed_file_sha256": hashlib.sha256(data).hexdigest(), "public_key": pub,
           "public_key_fingerprint": key_fingerprint(pub), "signer": signer,
           "signed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "signature": base64.b64encode(key.sign(data)).decode()}
    atomic_write_json(Path(bundle) / SIGNATURE_FILE, sig)
    return sig


def check_signature(bundle: Path, public_key: Path | None) -> tuple[list[str], list[str]]:
    """(problems, notes). With a trusted public key a missing or bad signature is a problem; without one a present
    signature is checked against the key it names (which proves integrity since signing, not who signed)."""
    from provenance.report import safe_io
    from provenance.report.bundle import SUMS

    path = Path(bundle) / SIGNATURE_FILE
    if not path.exists():
        return ([f"no signature ({SIGNATURE_FILE}) although a public key was given"] if public_key else []), []
    try:
        sig = json.loads(safe_io.read_inside(Path(bundle), SIGNATURE_FILE))
        if sig.get("format") != SIGNATURE_FORMAT or sig.get("algorithm") != "ed25519":
            return [f"{SIGNATURE_FILE}: unknown signature format"], []
        raw = base64.b64decode(sig["signature"], validate=True)
        named = sig["public_key"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{SIGNATURE_FILE}: unreadable ({type(exc).__name__})"], []
    serialization, _ = _crypto()
    if public_key is not None:
        key = load_public_key(public_key)
        if openssh_public(key) != named.strip():
            return [f"signed by {sig.get('public_key_fingerprint')}, not by the given key "
                    f"{key_fingerprint(openssh_public(key))}"], []
    else:
        try:
            key = serialization.load_ssh_public_key(named.encode())
        except (ValueError, TypeError):
            return [f"{SIGNATURE_FILE}: the public key it names is not readable"], []
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(raw, safe_io.read_inside(Path(bundle), SUMS))
    except InvalidSignature:
        return [f"the signature does not match {SUMS} (the bundle changed after it was signed)"], []
    who = f"{sig.get('public_key_fingerprint')}" + (f" ({sig['signer']})" if sig.get("signer") else "")
    if public_key is None:
        return [], [f"signature valid for the key it names, {who}, signed {sig.get('signed_utc')}; pass --public-key "
                    "to check it is the key you trust"]
    return [], [f"signature valid: signed by the trusted key {who} at {sig.get('signed_utc')}"]
