"""RFC 3161 timestamps: a real authority (openssl's TSA on loopback) stamps a bundle; verify checks hash, time and the
authority's signature; an edited bundle or a token for other bytes fails."""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests import clirun
from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

TSA_CNF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {d}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _ssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, CA certificate) of a time-stamping authority on loopback: openssl ts -reply behind a tiny HTTP server."""
    d = tmp_path_factory.mktemp("tsa")
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
         cwd=d)
    _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=test TSA", cwd=d)
    (d / "ext.cnf").write_text("extendedKeyUsage = critical,timeStamping\nbasicConstraints = CA:FALSE\n")
    _ssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt",
         "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(TSA_CNF.format(d=d))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                (d / "q.tsq").write_bytes(body)
                r = subprocess.run(["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile",
                                    str(d / "q.tsq"), "-out", str(d / "r.tsr")], capture_output=True, timeout=60)
                reply = (d / "r.tsr").read_bytes() if r.returncode == 0 else b""
            self.send_response(200 if reply else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsr", d / "ca.crt"
    finally:
        server.shutdown()
        server.server_close()


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
