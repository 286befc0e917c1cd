"""A small OpenAI-compatible server (loopback by default) over any local model: /v1/models, /completions, /chat/completions."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provenance.models import Backend, Request

MAX_TOKENS_LIMIT = 4096


class _Handler(BaseHTTPRequestHandler):
    server: "ModelServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep stderr for real errors
        pass

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", uuid.uuid4().hex)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [self.server.model_card()]})
        elif self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        route = self.path.rstrip("/")
        if route not in ("/v1/completions", "/v1/chat/completions"):
            return self._error(404, f"no route {self.path}")
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return self._error(400, f"malformed JSON: {exc}")
        if body.get("model") not in (None, self.server.model_name):
            return self._error(404, f"model '{body.get('model')}' not found")
        try:
            resp = self.server.answer(body, chat=route.endswith("chat/completions"))
        except (KeyError, TypeError, ValueError) as exc:
            return self._error(400, f"bad request: {exc}")
        self._send(200, resp)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backend: Backend, model_name: str, fingerprint: str, host: str = "127.0.0.1", port: int = 8000) -> None:
        super().__init__((host, port), _Handler)
        self.backend = backend
        self.model_name = model_name
        self.fingerprint = fingerprint
        self.created = int(time.time())
        self._lock = threading.Lock()  # one forward pass at a time: the model is not thread-safe

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "provenance-serve",
                "fingerprint": self.fingerprint}

    def answer(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        max_tokens = int(body.get("max_tokens") or 16)
        if not 0 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise ValueError(f"max_tokens must be in [0, {MAX_TOKENS_LIMIT}]")
        temperature = float(body.get("temperature") or 0.0)
        if chat:
            messages = body["messages"]
            prompt = "\n".join(str(m["content"]) for m in messages if m.get("role") == "user")
            k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        else:
            prompt = body["prompt"]
            if isinstance(prompt, list):
                prompt = prompt[0]
            k = int(body.get("logprobs") or 0)
        if not isinstance(prompt, str):
            raise TypeError("prompt must be a string")
        k = max(0, min(k, 20))
        req = Request(prompt=prompt, max_new_tokens=max_tokens, top_k=k, chat=chat, temperature=temperature)
        with self._lock:
            comp = self.backend.generate([req])[0]
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        if chat:
            choice["message"] = {"role": "assistant", "content": comp.text}
            if k and comp.top:
                choice["logprobs"] = {"content": [{"token": comp.top[0].token, "logprob": comp.top[0].logprob,
                                                   "top_logprobs": [{"token": t.token, "logprob": t.logprob} for t in comp.top]}]}
        else:
            choice["text"] = comp.text
            if k and comp.top:
                top: dict[str, float] = {}
                for t in comp.top:  # distinct ids can decode to one string; keep the most likely
                    top.setdefault(t.token, t.logprob)
                choice["logprobs"] = {"tokens": [comp.top[0].token], "token_logprobs": [comp.top[0].logprob],
                                      "top_logprobs": [top]}
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "system_fingerprint": f"fp_{self.fingerprint[:12]}",
            "choices": [choice],
            "usage": {"completion_tokens": comp.n_tokens},
        }
