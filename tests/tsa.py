"""A time-stamping authority on loopback (openssl ts -reply behind a tiny HTTP server): for the timestamp tests and the
committed examples' demonstration token. Not a trusted authority: its CA is made on the spot, its key thrown away."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

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


def available() -> bool:
    return shutil.which("openssl") is not None


def _ssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {r.stderr.strip()[:400]}")


@contextlib.contextmanager
def local_tsa(d: Path, days: int = 2, name: str = "test") -> Iterator[tuple[str, Path]]:
    """(URL, CA certificate file) of an authority whose CA and signing key are made in `d`, valid for `days`."""
    d.mkdir(parents=True, exist_ok=True)
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", str(days),
         "-subj", f"/CN={name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name} TSA",
         cwd=d)
    (d / "ext.cnf").write_text("extendedKeyUsage = critical,timeStamping\nbasicConstraints = CA:FALSE\n")
    _ssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt",
         "-days", str(days), "-extfile", "ext.cnf", cwd=d)
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
