"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, TGI, Ollama, `provenance serve`): text and top-k logprobs."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Sequence

from provenance.errors import EndpointError, InputError
from provenance.models.base import Backend, Capability, Completion, Request, TopToken
from provenance.models.retry import RetryableError, RetryPolicy, with_retries

MAX_TOP_LOGPROBS = 20


def _client(options: Any) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    return httpx.Client(timeout=httpx.Timeout(options.http_timeout, connect=10.0), headers=headers,
                        limits=httpx.Limits(max_connections=8))


def _call(client: Any, method: str, url: str, policy: RetryPolicy, body: dict[str, Any] | None = None,
          abort: threading.Event | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One HTTP exchange with retries; returns (parsed JSON, capture of the raw exchange for the transcript).

    `abort` is set when a concurrent request of the same batch failed for good: retrying this one is then wasted time.
    """
    import httpx

    attempts: list[dict[str, Any]] = []

    def once() -> tuple[dict[str, Any], dict[str, Any]]:
        if abort is not None and abort.is_set():
            raise EndpointError(f"{url}: abandoned after another request to this endpoint failed")
        sent = time.time()
        try:
            resp = client.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            attempts.append({"error": "timeout", "sent": sent})
            raise RetryableError(f"timed out: {url}") from exc
        except httpx.TransportError as exc:
            attempts.append({"error": type(exc).__name__, "sent": sent})
            raise RetryableError(f"connection failed: {url} ({type(exc).__name__})") from exc
        capture = {
            "status": resp.status_code,
            "sent": sent,
            "received": time.time(),
            "headers": {k: v for k, v in resp.headers.items() if k.lower().startswith(("x-request", "x-ratelimit", "retry-after", "openai-"))},
            "body_sha256": hashlib.sha256(resp.content).hexdigest(),
        }
        attempts.append(capture)
        if resp.status_code == 429 or resp.status_code >= 500:
            ra = resp.headers.get("retry-after")
            try:
                retry_after = float(ra) if ra is not None else None
            except ValueError:
                retry_after = None
            raise RetryableError(f"HTTP {resp.status_code} from {url}", retry_after)
        if resp.status_code in (401, 403):
            raise EndpointError(f"HTTP {resp.status_code} from {url}: unauthorized (check --api-key / OPENAI_API_KEY)")
        if resp.status_code == 404:
            raise EndpointError(f"HTTP 404 from {url}: no such endpoint or model")
        if resp.status_code >= 400:
            raise EndpointError(f"HTTP {resp.status_code} from {url}: {resp.text[:200]}")
        try:
            data = resp.json()
        except ValueError:
            # A truncated body is a transport fault; retry it like a dropped connection.
            raise RetryableError(f"malformed JSON from {url}") from None
        if not isinstance(data, dict):
            raise RetryableError(f"unexpected JSON from {url}")
        capture["body"] = resp.text
        return data, capture

    try:
        data, capture = with_retries(once, policy)
    except RetryableError as exc:
        raise EndpointError(f"{exc} (gave up after {policy.attempts} attempts)") from None
    capture["attempts"] = len(attempts)
    return data, capture


def describe_endpoint(base_url: str, model: str | None, options: Any) -> tuple[str, dict[str, Any]]:
    """Ask the server which models it serves; pick the requested one (or the only one)."""
    policy = RetryPolicy(attempts=options.http_retries)
    with _client(options) as client:
        data, _ = _call(client, "GET", f"{base_url}/models", policy)
    models = [m for m in data.get("data", []) if isinstance(m, dict) and "id" in m]
    ids = [m["id"] for m in models]
    if model is None:
        if len(ids) != 1:
            raise InputError(f"{base_url} serves {len(ids)} models ({', '.join(ids[:5])}); name one as {base_url}#MODEL")
        model = ids[0]
    meta = next((m for m in models if m["id"] == model), None)
    if meta is None and ids:
        raise InputError(f"{base_url} does not serve '{model}' (it serves: {', '.join(ids[:5])})")
    return model, {k: v for k, v in (meta or {}).items() if k in ("id", "owned_by", "created", "fingerprint", "root")}


class HTTPBackend(Backend):
    """Queries an OpenAI-compatible server; capabilities depend on whether it returns logprobs."""

    def __init__(self, spec: str, base_url: str, model: str, options: Any, concurrency: int = 4) -> None:
        super().__init__(spec)
        self.base_url = base_url
        self.model = model
        self.policy = RetryPolicy(attempts=options.http_retries)
        self.client = _client(options)
        self.concurrency = concurrency
        self.capabilities = frozenset({Capability.TEXT, Capability.TOP_LOGPROBS})
        self.logprobs_missing = False
        self.system_fingerprints: set[str] = set()
        self.returned_models: set[str] = set()
        self._abort = threading.Event()

    def _one(self, req: Request) -> Completion:
        k = min(req.top_k, MAX_TOP_LOGPROBS)
        if req.chat:
            body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": req.prompt}],
                                    "max_tokens": max(req.max_new_tokens, 1), "temperature": req.temperature}
            if k:
                body.update(logprobs=True, top_logprobs=k)
            data, cap = _call(self.client, "POST", f"{self.base_url}/chat/completions", self.policy, body, self._abort)
        else:
            body = {"model": self.model, "prompt": req.prompt, "max_tokens": max(req.max_new_tokens, 1),
                    "temperature": req.temperature}
            if k:
                body["logprobs"] = k
            data, cap = _call(self.client, "POST", f"{self.base_url}/completions", self.policy, body, self._abort)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if req.chat else choice["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"{self.base_url}: response lacks choices[0] text ({exc})") from None
        top = _parse_top(choice.get("logprobs"), req.chat) if k else None
        if k and top is None:
            self.logprobs_missing = True  # the server silently ignored logprobs: text-level tests only
        if data.get("system_fingerprint"):
            self.system_fingerprints.add(str(data["system_fingerprint"]))
        if data.get("model"):
            self.returned_models.add(str(data["model"]))
        if req.max_new_tokens == 0:
            text = ""
        usage = data.get("usage") or {}
        return Completion(text=text, top=top, n_tokens=int(usage.get("completion_tokens", 0) or 0),
                          raw={"request": body, "http": cap, "model": data.get("model"),
                               "system_fingerprint": data.get("system_fingerprint")})

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [pool.submit(self._one, r) for r in requests]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                # Fail the batch on its first permanent error instead of retrying every queued request to exhaustion
                # (with a dead endpoint that would be batch x attempts x timeout before the user hears anything).
                self._abort.set()
                raise failed.exception()  # type: ignore[misc]
            out = [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort.clear()
        if self.logprobs_missing:
            self.capabilities = frozenset({Capability.TEXT})
        return out

    def close(self) -> None:
        self.client.close()


def _parse_top(logprobs: Any, chat: bool) -> tuple[TopToken, ...] | None:
    """Top-k logprobs of the first generated token, verbatim, from either response format."""
    if not isinstance(logprobs, dict):
        return None
    try:
        if chat:
            first = logprobs["content"][0]["top_logprobs"]
            items = [(d["token"], float(d["logprob"])) for d in first]
        else:
            first = logprobs["top_logprobs"][0]
            items = [(tok, float(lp)) for tok, lp in first.items()]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not items:
        return None
    items.sort(key=lambda kv: -kv[1])
    return tuple(TopToken(t, lp, None) for t, lp in items)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
