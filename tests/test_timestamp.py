"""RFC 3161 timestamps: a real authority (openssl's TSA on loopback) stamps a bundle; verify checks hash, time and the
authority's signature; an edited bundle or a token for other bytes fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests import clirun
from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT
from tests.tsa import _ssl, local_tsa

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, CA certificate) of a time-stamping authority on loopback (tests/tsa.py)."""
    with local_tsa(tmp_path_factory.mktemp("tsa")) as got:
        yield got


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return clirun.run_cli(*args, timeout=600)


@pytest.mark.slow
def test_an_audit_timestamped_by_an_authority_verifies_and_an_edit_fails(tsa: tuple[str, Path], tmp_path: Path) -> None:
    from provenance.report.timestamp import TIMESTAMP_FILE, parse_reply
    from provenance.report.verify import verify

    url, ca = tsa
    out = tmp_path / "b"
    args = ["audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--budget", "40", "--out", str(out), "--no-progress",
            "--tsa", url, *[x for c in FAKE_CONTROLS[:4] for x in ("-c", c)]]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    token = parse_reply((out / TIMESTAMP_FILE).read_bytes())
    import hashlib

    assert token.imprint == hashlib.sha256((out / "SHA256SUMS").read_bytes()).digest() and token.gen_time
    rep = verify(out, tsa_ca=ca)
    assert rep.ok and any("signature of the authority verified" in n for n in rep.notes), rep.problems
    # openssl by hand, as the docstring tells a reader to do
    by_hand = subprocess.run(["openssl", "ts", "-verify", "-data", str(out / "SHA256SUMS"), "-in",
                              str(out / TIMESTAMP_FILE), "-CAfile", str(ca)], capture_output=True, text=True)
    assert "Verification: OK" in by_hand.stdout
    # An edit re-hashed into SHA256SUMS: the token no longer stamps it.
    sums = (out / "SHA256SUMS").read_text()
    (out / "SHA256SUMS").write_text(sums.replace(sums.split()[0], "0" * 64, 1))
    rep = verify(out, tsa_ca=ca)
    assert not rep.ok


@pytest.mark.slow
def test_a_stamp_is_requested_for_an_existing_bundle_and_bad_urls_are_one_line(tsa: tuple[str, Path],
                                                                               fake_bundle: Path, tmp_path: Path) -> None:
    from provenance.errors import InputError
    from provenance.report.timestamp import request_timestamp
    from provenance.report.verify import verify

    url, ca = tsa
    b = tmp_path / "copy"
    shutil.copytree(fake_bundle, b)
    token = request_timestamp(b, url)
    assert token.status == 0 and token.serial
    rep = verify(b, tsa_ca=ca)
    assert rep.ok and any("signature of the authority verified" in n for n in rep.notes)
    other = tmp_path / "other-ca.crt"
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "o.key"), "-out", str(other),
         "-days", "1", "-subj", "/CN=another CA", cwd=tmp_path)
    rep = verify(b, tsa_ca=other)
    assert not rep.ok and "does not verify against" in rep.problems[0]
    for bad in ("ftp://tsa.example", "http://user:pw@tsa.example/tsr"):
        with pytest.raises(InputError) as e:
            request_timestamp(b, bad)
        assert "pw" not in str(e.value)
    r = _cli("timestamp", str(b), "--tsa", "http://user:pw@tsa.example/tsr")
    assert r.returncode == 2 and "pw" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
