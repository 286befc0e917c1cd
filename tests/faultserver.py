"""A fault-injecting OpenAI-compatible server on loopback: `provenance serve`'s handler with faults on a fixed schedule."""

from __future__ import annotations

import collections
import io
import json
import socket
import struct
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from provenance.models import Backend
from provenance.serve import ModelServer, _Handler

# Transient faults: each must be survived by the client's retries without changing any answer.
TRANSIENT = ("delay", "drop", "429", "500", "503", "truncated", "short-read", "malformed", "not-object", "reset")


@dataclass
class FaultPlan:
    """Which faults each distinct request meets, by attempt: `schedule(key, attempt)` -> fault name or None.

    Attempts are counted per request (method, path and body), wherever its retries arrive among concurrent clients,
    so each request meets a bounded number of faults before it is answered.
    """

    schedule: Callable[[str, int], str | None]
    delay_s: float = 1.5  # longer than the client's timeout in tests
    retry_after: str = "0.05"
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, key: str) -> str | None:
        with self.lock:
            attempt = self.attempts[key]
            self.attempts[key] += 1
            fault = self.schedule(key, attempt)
            if fault:
                self.injected[fault] += 1
            return fault

    @staticmethod
    def always(fault: str, only: str | None = None) -> "FaultPlan":
        """The same fault on every request (or only on requests whose path contains `only`)."""
        return FaultPlan(lambda key, attempt: fault if only is None or only in key else None)


class _FaultHandler(_Handler):
    server: "FaultServer"
    _mangle: str | None = None

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up (timeout) or we dropped it on purpose

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        mangle, self._mangle = self._mangle, None
        if mangle in ("omit-logprobs", "text-only") and status == 200:
            for choice in obj.get("choices", []):
                choice.pop("logprobs", None)  # like servers that silently ignore the logprobs parameter
                if mangle == "text-only":  # and prompt scoring too (vLLM's prompt_logprobs): text and nothing else
                    choice.pop("prompt_logprobs", None)
            if mangle == "text-only":
                obj.pop("prompt_logprobs", None)
        body = json.dumps(obj).encode()
        if mangle in ("truncated", "malformed", "not-object") and status == 200:
            body = {"truncated": body[: len(body) // 2], "malformed": b"{'choices': [oops",
                    "not-object": b"[1, 2, 3]"}[mangle]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if mangle == "short-read" and status == 200:
            # Promise the whole body, send half, hang up: the client sees an incomplete read.
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._hang_up()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _hang_up(self, reset: bool = False) -> None:
        if reset:  # linger 0: the kernel discards unsent data and answers the client's next packet with RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def _fault(self, key: str) -> bool:
        """Apply this request's fault, if any; True when the request was answered (or dropped) here."""
        fault = self.server.plan.next_fault(key)
        self.server.log.append((key, fault))
        if fault is None:
            return False
        if fault == "delay":
            time.sleep(self.server.plan.delay_s)
            self._hang_up()
        elif fault in ("drop", "reset"):
            self._hang_up(reset=fault == "reset")
        elif fault in ("401", "404", "500", "503", "429"):
            body = json.dumps({"error": {"message": f"injected {fault}", "type": "fault"}}).encode()
            self.send_response(int(fault))
            if fault in ("429", "503"):
                self.send_header("Retry-After", self.server.plan.retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # faults in the body of an otherwise good answer
            self._mangle = fault
            return False
        return True

    def do_GET(self) -> None:
        if not self._fault(f"GET {self.path}"):
            if self.server.backend is None and self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [self.server.model_card()]})
            else:
                super().do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self._fault(f"POST {self.path} {raw.decode('utf-8', 'replace')}"):
            return
        if self.server.backend is None:
            self._error(503, "no model behind this fault server")
            return
        # The base handler reads the body itself; give it the bytes we already consumed.
        rfile, self.rfile = self.rfile, io.BytesIO(raw)
        try:
            super().do_POST()
        finally:
            self.rfile = rfile


class FaultServer(ModelServer):
    """ModelServer whose handler injects the plan's faults; `backend` may be None for servers that only fail."""

    def __init__(self, backend: Backend | None, plan: FaultPlan, model_name: str = "suspect",
                 fingerprint: str | None = None) -> None:
        # A fresh card fingerprint per server unless a test asks for one: the endpoint's identity is (URL, card), and a
        # later test's server on a recycled loopback port must never share the evidence cache of an earlier one.
        super().__init__(backend, model_name, fingerprint or uuid.uuid4().hex * 2,  # type: ignore[arg-type]
                         "127.0.0.1", 0)
        self.RequestHandlerClass = _FaultHandler
        self.plan = plan
        self.log: list[tuple[str, str | None]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # injected hang-ups surface here as socket errors; they are the point, not a bug

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@contextmanager
def serving(backend: Backend | None, plan: FaultPlan, model_name: str = "suspect",
            fingerprint: str | None = None) -> Iterator[FaultServer]:
    server = FaultServer(backend, plan, model_name, fingerprint)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
