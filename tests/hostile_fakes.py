"""Fast fakes for the hostile-input tests: a deterministic text backend and an audit made only of loopback endpoints.

No model is loaded: each "model" is a seeded function of the prompt, served by tests/faultserver.py, so a full
audit -> bundle -> verify takes a second or two.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from provenance.models import Backend, Capability, Completion, Request, TopToken
from tests.faultserver import FaultPlan, FaultServer, serving

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the", "a", "model", "river", "stone", "light", "seven", "blue", "quiet", "north", "paper", "glass")


class FakeLM(Backend):
    """Answers are a seeded function of the prompt; `share` of the probes copy `parent`'s answer (a "student")."""

    def __init__(self, seed: int, parent: "FakeLM | None" = None, share: float = 0.0) -> None:
        super().__init__(f"fake-{seed}")
        self.seed, self.parent, self.share = seed, parent, share
        self.capabilities = frozenset({Capability.TEXT, Capability.TOP_LOGPROBS})
        self.calls = 0

    def _h(self, prompt: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}|{prompt}".encode()).digest()[:8], "big")

    def answer(self, req: Request) -> Completion:
        if self.parent is not None and (self._h(prompt := req.prompt) % 1000) < self.share * 1000:
            return self.parent.answer(req)
        h = self._h(req.prompt)
        n = max(1, min(req.max_new_tokens, 6))
        words = [WORDS[(h >> (4 * i)) % len(WORDS)] for i in range(n)]
        text = " " + " ".join(words)
        top = None
        if req.top_k:
            raw = [((h >> (3 * i)) % 97) / 10.0 for i in range(len(WORDS))]
            z = math.log(sum(math.exp(-r) for r in raw))
            pairs = sorted(((" " + w, -r - z) for w, r in zip(WORDS, raw)), key=lambda kv: -kv[1])[: min(req.top_k, 8)]
            top = tuple(TopToken(t, lp, None) for t, lp in pairs)
        return Completion(text=text, top=top, n_tokens=n)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.calls += len(requests)
        return [self.answer(r) for r in requests]


def zoo() -> dict[str, FakeLM]:
    ref = FakeLM(1)
    # Four controls of unknown lineage (four units): enough for the behavioural families to run.
    return {"reference": ref, "suspect": FakeLM(2, parent=ref, share=0.8), "control-1": FakeLM(3), "control-2": FakeLM(4),
            "control-3": FakeLM(5), "control-4": FakeLM(6)}


@contextmanager
def endpoints(models: dict[str, Backend] | None = None,
              plans: dict[str, FaultPlan] | None = None) -> Iterator[dict[str, FaultServer]]:
    """One loopback server per model, each with its own fingerprint; yields {role: server}.

    The card fingerprints are new on every call: two calls are two sets of models, even on recycled ports."""
    models = models or zoo()
    nonce = uuid.uuid4().hex
    with ExitStack() as stack:
        servers = {}
        for i, (role, backend) in enumerate(models.items()):
            plan = (plans or {}).get(role) or FaultPlan(lambda key, attempt: None)
            servers[role] = stack.enter_context(serving(backend, plan, model_name=role, fingerprint=hashlib.sha256(f"{nonce}:{i}".encode()).hexdigest()))
        yield servers


def spec(server: FaultServer, name: str) -> str:
    return f"{server.url}#{name}"


def audit_args(servers: dict[str, FaultServer], out: Path, *extra: str, budget: int = 12) -> list[str]:
    args = ["audit", "-s", spec(servers["suspect"], "suspect"), "-r", spec(servers["reference"], "reference")]
    for role in servers:
        if role.startswith("control"):
            args += ["-c", spec(servers[role], role)]
    return [*args, "--budget", str(budget), "--likelihood-probes", "none", "--identity-probes", "none", "--out", str(out),
            "--no-progress", "--timeout", "5", *extra]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    from tests.clirun import run_cli as run

    return run(*args, env={"PYTHONPATH": str(ROOT), "PROVENANCE_RETRY_BASE_DELAY": "0.01", **(env or {})}, cwd=cwd,
               timeout=timeout)


def run_audit_api(servers: dict[str, FaultServer], out: Path | None, budget: int = 12, **kw: Any) -> dict[str, Any]:
    from provenance.audit import AuditConfig, run_audit
    from provenance.models import LoadOptions

    controls = [spec(s, r) for r, s in servers.items() if r.startswith("control")]
    return run_audit(AuditConfig(suspect=spec(servers["suspect"], "suspect"),
                                 references=[spec(servers["reference"], "reference")], controls=controls, out=out,
                                 budget=budget, progress=False, likelihood_set=None, identity_set=None,
                                 options=kw.pop("options", LoadOptions(http_timeout=5.0)), **kw))


class ScriptedServer:
    """A loopback HTTP server answering each path with a scripted reply; records every request's headers.

    `routes` maps a path suffix ("/models", "/completions") to a callable(handler) that writes the whole response, so
    a test can send any bytes: wrong JSON types, NaN, a trickle, a huge body, terminal escapes.
    """

    def __init__(self, routes: dict[str, Any]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.requests: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _route(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                for suffix, fn in routes.items():
                    if self.path.rstrip("/").endswith(suffix):
                        try:
                            fn(self)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                        return
                reply(self, 404, b'{"error": "no route"}')

            do_GET = do_POST = _route

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler: Any, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def models_reply(ids: Any = ("m",)) -> Any:
    import json

    body = json.dumps({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}).encode()
    return lambda h: reply(h, 200, body)


VALID_LOGPROBS = {"top_logprobs": [{" ok": -0.1, " no": -2.3}]}


def completion_reply(text: str = " ok", logprobs: Any = VALID_LOGPROBS, usage: Any = None,
                     extra: dict[str, Any] | None = None, raw: bytes | None = None) -> Any:
    import json

    choice: dict[str, Any] = {"index": 0, "text": text}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    obj = {"choices": [choice], "usage": usage if usage is not None else {"completion_tokens": 1}, **(extra or {})}
    body = raw if raw is not None else json.dumps(obj).encode()
    return lambda h: reply(h, 200, body)
