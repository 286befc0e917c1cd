"""OpenAI-compatible HTTP backend (vLLM, llama.cpp, TGI, Ollama, `provenance serve`): text, top-k logprobs, scoring."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Mapping, Sequence, TypeVar

from provenance.errors import CapabilityError, EndpointError, InputError
from provenance.models.access import (MAX_TOP_LOGPROBS, EndpointAccess, discover, read_score, render, render_score,
                                      score_route)
from provenance.models.base import Backend, Capability, Completion, Request, Score, ScoreRequest, TopToken
from provenance.models.scoring import Unplaceable
from provenance.models.retry import RetryableError, RetryPolicy, parse_retry_after, with_retries
from provenance.secrets import check_transport, is_loopback, printable, redact, register

T = TypeVar("T")
MAX_RESPONSE_BYTES = 8 << 20  # no OpenAI-compatible answer to our requests comes near this; a bigger one is refused
# `--timeout` is the total wall-clock budget of one attempt (connect, headers and body): httpx's timeouts are per read,
# which lets a server that trickles a byte a second hold a request forever. Set per thread around each attempt.
_deadline = threading.local()


class _Abandoned(EndpointError):
    """A request not sent because another request of its batch failed for good; never the error a user is shown."""


def _short(value: Any) -> str | None:
    """A short server string (finish_reason) as recorded: bounded and printable, or None."""
    return printable(value, 40) if isinstance(value, str) else None


def _remaining() -> float | None:
    end = getattr(_deadline, "end", None)
    return None if end is None else end - time.monotonic()


def _transport(base_url: str, connections: int = 8) -> Any:
    """httpx's transport with a total deadline per request enforced at the socket: every read and write gets at most
    the time left before the request's deadline, so neither headers nor body can be trickled past it."""
    import urllib.request
    from urllib.parse import urlsplit

    import httpcore
    import httpx

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        @staticmethod
        def _budget(timeout: float | None, exc: type[Exception]) -> float | None:
            left = _remaining()
            if left is None:
                return timeout
            if left <= 0:
                raise exc("total deadline of the request exceeded")
            return left if timeout is None else min(timeout, left)

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.inner.read(max_bytes, self._budget(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, self._budget(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
            return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname,
                                                       self._budget(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class DeadlineBackend(httpcore.NetworkBackend):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                        socket_options: Any = None) -> Any:
            left = _remaining()
            timeout = timeout if left is None else max(min(timeout or left, left), 0.001)
            return DeadlineStream(self.inner.connect_tcp(host, port, timeout, local_address, socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            return DeadlineStream(self.inner.connect_unix_socket(path, timeout, socket_options))

        def sleep(self, seconds: float) -> None:
            self.inner.sleep(seconds)

    parts = urlsplit(base_url)
    proxy = None
    if not is_loopback(parts.hostname) and not urllib.request.proxy_bypass(parts.hostname or ""):
        proxy = urllib.request.getproxies().get(parts.scheme.lower())  # what httpx would use, made explicit
    transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=max(8, connections)), proxy=proxy)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = DeadlineBackend(pool._network_backend)
    return transport


def _client(options: Any, base_url: str = "") -> Any:
    import httpx

    auth = getattr(options, "authorization", None)
    if auth is None and getattr(options, "api_key", None):
        auth = f"Bearer {options.api_key}"
    headers = {}
    if auth is not None:
        check_transport(base_url)
        register(auth)
        headers["Authorization"] = auth
    # follow_redirects stays off: a redirect must never carry the key to another host.
    return httpx.Client(timeout=httpx.Timeout(options.http_timeout, connect=min(10.0, options.http_timeout)),
                        headers=headers, transport=_transport(base_url, getattr(options, "max_connections", 8)),
                        follow_redirects=False, trust_env=False)


class HTTPStatusError(EndpointError):
    """A final 4xx answer; capability discovery reads `status` (404: no such route, 400: a parameter refused)."""

    def __init__(self, message: str, status: int, text: str, capture: dict[str, Any]) -> None:
        super().__init__(message)
        self.status, self.text, self.capture = status, text, capture


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise ValueError(f"non-finite number {text[:20]}")
    return value


def _parse_json(content: bytes) -> Any:
    """Strict JSON: NaN and Infinity (or 1e400) are not JSON and would otherwise flow into a test as numbers."""
    return json.loads(content, parse_constant=_reject_constant, parse_float=_finite_float)


def _read_capped(resp: Any, url: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise EndpointError(f"response from {url} declares {int(declared)} bytes, more than the "
                            f"{MAX_RESPONSE_BYTES}-byte limit")
    chunks, total = [], 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise EndpointError(f"response from {url} is larger than the {MAX_RESPONSE_BYTES}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _server_text(content: bytes, limit: int = 200) -> str:
    """A server's error text, as one escaped line (it could otherwise forge output lines or send terminal escapes)."""
    return printable(content[: limit * 4].decode("utf-8", "replace"), limit)


def _call(client: Any, method: str, url: str, policy: RetryPolicy, body: dict[str, Any] | None = None,
          abort: threading.Event | None = None, deadline_s: float | None = None,
          accept_list: bool = False) -> tuple[Any, dict[str, Any]]:
    """One HTTP exchange with retries; returns (parsed JSON, capture of the raw exchange for the transcript).

    `abort` is set when a concurrent request of the same batch failed for good: retrying this one is then wasted time.
    Each attempt has a total deadline of `deadline_s` (default: the client's timeout), not only a per-read one.
    `accept_list`: a JSON array of objects is an answer too (Together's `/v1/models` is a bare array).
    """
    import httpx

    attempts: list[dict[str, Any]] = []
    if deadline_s is None:
        deadline_s = client.timeout.read if client.timeout.read is not None else 60.0

    def once() -> tuple[dict[str, Any], dict[str, Any]]:
        if abort is not None and abort.is_set():
            raise _Abandoned(f"{url}: abandoned after another request to this endpoint failed")
        sent = time.time()
        _deadline.end = time.monotonic() + deadline_s
        try:
            with client.stream(method, url, json=body) as resp:
                content = _read_capped(resp, url)
        except httpx.TimeoutException as exc:
            attempts.append({"error": "timeout", "sent": sent})
            raise RetryableError(f"timed out: {url}") from exc
        except httpx.TransportError as exc:
            attempts.append({"error": type(exc).__name__, "sent": sent})
            raise RetryableError(f"connection failed: {url} ({type(exc).__name__})") from exc
        finally:
            _deadline.end = None
        capture = {
            "status": resp.status_code,
            "sent": sent,
            "received": time.time(),
            # Only these headers are kept, each value redacted (a server may echo the Authorization header back).
            "headers": {k: redact(v) for k, v in resp.headers.items() if kept_header(k)},
            "body_sha256": hashlib.sha256(content).hexdigest(),
        }
        attempts.append(capture)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code} from {url}", parse_retry_after(resp.headers.get("retry-after")))
        if resp.status_code in (401, 403):
            raise EndpointError(f"HTTP {resp.status_code} from {url}: unauthorized (give this endpoint a key with "
                                "--api-key-env SPEC=VARNAME)")
        if resp.status_code == 404:
            raise HTTPStatusError(f"HTTP 404 from {url}: no such endpoint or model", 404, _server_text(content), capture)
        if resp.status_code >= 400:
            raise HTTPStatusError(f"HTTP {resp.status_code} from {url}: {_server_text(content)}", resp.status_code,
                                  _server_text(content), capture)
        try:
            data = _parse_json(content)
        except RecursionError:
            raise EndpointError(f"unexpected JSON from {url}: nested too deeply") from None
        except ValueError as exc:
            if "non-finite" in str(exc):
                raise EndpointError(f"unexpected JSON from {url}: {exc} (not JSON)") from None
            # A truncated body is a transport fault; retry it like a dropped connection.
            raise RetryableError(f"malformed JSON from {url}") from None
        listed = accept_list and isinstance(data, list) and all(isinstance(x, dict) for x in data)
        if not isinstance(data, dict) and not listed:
            raise RetryableError(f"unexpected JSON from {url}")
        text = content.decode("utf-8", "replace")
        capture["body"] = redact(text)
        if capture["body"] == text and text.encode("utf-8") != content:
            # Bytes the text cannot hold (invalid UTF-8) are kept exactly, unless redaction touched the body: a secret
            # echoed back must not survive in the raw copy.
            capture["body_base64"] = base64.b64encode(content).decode("ascii")
        return data, capture

    try:
        data, capture = with_retries(once, policy)
    except RetryableError as exc:
        raise EndpointError(f"{exc} (gave up after {policy.attempts} attempts)") from None
    except HTTPStatusError as exc:  # a refusal (a capability probe's answer, on the record): how many attempts it took
        exc.capture["attempts"] = len(attempts)
        raise
    capture["attempts"] = len(attempts)
    capture["tries"] = [_try(a) for a in attempts]  # each attempt: its status or error and its times
    return data, capture


def _try(attempt: Mapping[str, Any]) -> dict[str, Any]:
    return {k: attempt[k] for k in ("status", "error", "sent", "received") if k in attempt}


# Response headers kept in the transcript: request ids, rate limits, dates, API versions and the serving software.
KEPT_HEADERS = ("x-request", "request-id", "retry-after", "openai-", "anthropic-", "date", "cf-ray", "server",
                "api-version", "x-api-version", "x-ms-", "apim-request-id")


def kept_header(name: str) -> bool:
    low = name.lower()
    return low.startswith(KEPT_HEADERS) or "ratelimit" in low


# What identifies a served model in its `/v1/models` card. `created` is not among them: vLLM (`ModelCard.created =
# int(time.time())`) and llama.cpp's server (`std::time(0)`) set it to the current time on every call, so a fingerprint
# holding it changed on every run and the evidence cache never hit. It is kept as an observation (`observed`).
IDENTITY_KEYS = ("id", "owned_by", "root", "parent", "fingerprint")
OBSERVED_KEYS = ("created", "object", "max_model_len")


def _bounded(meta: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Only JSON scalars of bounded size enter the fingerprint and the manifest."""
    keep = {k: v for k, v in meta.items() if k in keys}
    return {k: (printable(v, 200) if isinstance(v, str) else v) for k, v in keep.items()
            if v is None or isinstance(v, (str, bool)) or (isinstance(v, (int, float)) and math.isfinite(v))}


def describe_endpoint(base_url: str, model: str | None, options: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Ask the server which models it serves; pick the requested one (or the only one).

    Returns (model, identity metadata for the fingerprint, observations that are not identity). A bare JSON array is
    read like `{"data": [...]}`; a server with no `/models` route (Azure-style deployments, many gateways) is accepted
    when the spec names the model, with the missing list recorded.
    """
    policy = RetryPolicy(attempts=options.http_retries)
    with _client(options, base_url) as client:
        try:
            data, _ = _call(client, "GET", f"{base_url}/models", policy, accept_list=True)
        except HTTPStatusError as exc:
            if exc.status not in (404, 405):
                raise
            if model is None:
                raise InputError(f"{base_url} has no model list (HTTP {exc.status} from {base_url}/models); name the "
                                 f"model as {base_url}#MODEL") from None
            return model, {}, {"model_list": f"absent (HTTP {exc.status})"}
    listed = data if isinstance(data, list) else data.get("data", [])
    if not isinstance(listed, list):
        raise EndpointError(f"unexpected JSON from {base_url}/models: 'data' is {type(listed).__name__}, not a list")
    # Model ids are strings; an entry of another shape is not a model we could name (and is not echoed raw).
    models = [m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
    ids = [m["id"] for m in models]
    shown = ", ".join(printable(i, 80) for i in ids[:5])
    if model is None:
        if len(ids) != 1:
            raise InputError(f"{base_url} serves {len(ids)} models ({shown}); name one as {base_url}#MODEL")
        model = ids[0]
    meta = next((m for m in models if m["id"] == model), None)
    if meta is None and ids:
        raise InputError(f"{base_url} does not serve '{printable(model, 80)}' (it serves: {shown})")
    observed = {"model_list": "bare array" if isinstance(data, list) else "data"}
    observed.update(_bounded(meta or {}, OBSERVED_KEYS))
    return model, _bounded(meta or {}, IDENTITY_KEYS), observed


class HTTPBackend(Backend):
    """Queries an OpenAI-compatible server; capabilities depend on whether it returns logprobs."""

    def __init__(self, spec: str, base_url: str, model: str, options: Any, concurrency: int = 4,
                 access: EndpointAccess | None = None) -> None:
        super().__init__(spec)
        self.base_url = base_url
        self.model = model
        self.policy = RetryPolicy(attempts=options.http_retries)
        self.client = _client(options, base_url)
        self.concurrency = concurrency
        self.options = options
        self.capabilities = frozenset({Capability.TEXT, Capability.TOP_LOGPROBS})
        self.logprobs_missing = False
        self.system_fingerprints: set[str] = set()
        self.returned_models: set[str] = set()
        self._abort = threading.Event()
        self.access: EndpointAccess | None = None
        if access is not None:
            self.set_access(access)

    def set_access(self, access: EndpointAccess) -> None:
        """Render every later request for what the endpoint was found to serve."""
        self.access = access
        k = access.chat_top_k if access.completion_as_chat() else access.completion_top_k
        # `logits` (scoring any text) only when both kinds of score request an audit makes have a route.
        self.capabilities = frozenset({Capability.TEXT, *([Capability.TOP_LOGPROBS] if k else []),
                                       *([Capability.LOGITS] if access.can_score() else [])})

    def discover_access(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Probe the endpoint once (routes, logprobs cap, parameters); (access as JSON, transcript records)."""
        def post(route: str, body: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            # Capability probes count against the limits like any request.
            n = body.get("max_tokens") or body.get("max_completion_tokens") or 1
            self._charge(1, n if isinstance(n, int) and n > 0 else 1)
            return _call(self.client, "POST", f"{self.base_url}/{route}", self.policy, body)

        access, records = discover(post, self.model, _parse_top)
        self.set_access(access)
        return access.to_json(), records

    def _one(self, req: Request) -> Completion:
        chat, body, how = render(self.access, self.model, req)
        route = "chat/completions" if chat else "completions"
        data, cap = _call(self.client, "POST", f"{self.base_url}/{route}", self.policy, body, self._abort)
        k = body.get("top_logprobs") if chat else body.get("logprobs")
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if chat else choice["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"{self.base_url}: response lacks choices[0] text ({type(exc).__name__})") from None
        top = _parse_top(choice.get("logprobs"), chat) if k else None
        if k and top is None:
            self.logprobs_missing = True  # the server silently ignored logprobs: text-level tests only
        system_fp, returned = self._seen(data)
        if req.max_new_tokens == 0:
            text = ""
        raw: dict[str, Any] = {"request": body, "http": cap, "model": returned, "system_fingerprint": system_fp,
                               "finish_reason": _short(choice.get("finish_reason"))}
        refusal = (choice.get("message") or {}).get("refusal") if chat and isinstance(choice.get("message"), dict) else None
        if isinstance(refusal, str) and refusal:
            raw["refusal"] = printable(refusal, 500)
        if how is not None:
            raw["rendered"] = how
        return Completion(text=text, top=top, n_tokens=_token_count(data.get("usage")), raw=raw)

    def _charge(self, requests: int, new_tokens: int) -> None:
        """Count a batch against --max-requests / --max-tokens (LimitReached, exit 2, before any of it is sent)."""
        usage = getattr(self.options, "usage", None)
        if usage is not None:
            usage.charge(f"{self.base_url}#{self.model}", requests, new_tokens,
                         getattr(self.options, "max_requests", None), getattr(self.options, "max_tokens", None))

    def _seen(self, data: dict[str, Any]) -> tuple[str | None, str | None]:
        system_fp, returned = _scalar(data.get("system_fingerprint")), _scalar(data.get("model"))
        if system_fp:
            self.system_fingerprints.add(system_fp)
        if returned:
            self.returned_models.add(returned)
        return system_fp, returned

    def _score_one(self, item: tuple[ScoreRequest, str]) -> Score:
        req, route = item
        if not req.continuation:  # nothing to score (HFBackend.score gives the same), and no request is sent
            return Score(0.0, 0, 0)
        assert self.access is not None
        api, body = render_score(self.access, self.model, req, route)
        data, cap = _call(self.client, "POST", f"{self.base_url}/{api}", self.policy, body, self._abort)
        try:
            score = read_score(route, data, req.continuation)
        except Unplaceable as exc:
            raise EndpointError(f"{self.base_url}: cannot score through {route}: {exc}") from None
        system_fp, returned = self._seen(data)
        raw = {"request": body, "http": cap, "route": route, "model": returned, "system_fingerprint": system_fp}
        return Score(score.logprob, score.n_tokens, score.n_bytes, raw=raw)

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Log-likelihood of each continuation, from the endpoint's logprobs of the scored text (models/scoring.py:
        which tokens count, the token straddling the prompt/continuation boundary, a first token without logprob).

        Routes (access.score_route): /completions with echo (OpenAI legacy, vLLM, llama-cpp-python), else vLLM's
        `prompt_logprobs`; chat requests through vLLM's chat `prompt_logprobs` with `continue_final_message`.
        Same retries, deadlines, concurrency and redaction as `generate`; each Score's `raw` keeps the exchange.
        """
        routes = [score_route(self.access, r.chat) for r in requests]
        if any(r is None for r in routes):
            chat = next(req.chat for req, r in zip(requests, routes) if r is None)
            raise CapabilityError(f"{self.spec}: scoring {'chat' if chat else 'plain'} text needs echo or "
                                  "prompt_logprobs, which this endpoint did not serve when probed (see its notes)")
        # One token is generated per text sent (none for an empty continuation): counted against the limits first.
        sent = sum(1 for r in requests if r.continuation)
        self._charge(sent, sent)
        return self._batch(self._score_one, list(zip(requests, routes)))  # type: ignore[arg-type]

    def _batch(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """`fn` over `items` on `concurrency` threads, in order; the batch fails on its first permanent error."""
        causes: list[BaseException] = []  # permanent failures in the order they happened (list.append is atomic)

        def guarded(item: Any) -> T:
            try:
                return fn(item)
            except BaseException as exc:
                if not isinstance(exc, _Abandoned):
                    causes.append(exc)
                # Set here, in the failing request's own thread, before this worker can take the next queued request:
                # no request starts after the first permanent failure, so a dead endpoint costs at most
                # concurrency x attempts requests, however the threads interleave.
                self._abort.set()
                raise

        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [pool.submit(guarded, it) for it in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                # Fail the batch on its first permanent error instead of retrying every queued request to exhaustion
                # (with a dead endpoint that would be batch x attempts x timeout before the user hears anything).
                self._abort.set()
                # The cause, not a request abandoned because of it (that one can finish first, or come first in order).
                raise causes[0] if causes else failed.exception()  # type: ignore[misc]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort.clear()

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        # A next-token request (max_new_tokens 0) is counted as one token: servers generate at least one.
        self._charge(len(requests), sum(max(1, r.max_new_tokens) for r in requests))
        out = self._batch(self._one, requests)
        if self.logprobs_missing:  # top-k logprobs silently dropped: prompt scoring is another route, kept
            self.capabilities = self.capabilities - {Capability.TOP_LOGPROBS}
        return out

    def close(self) -> None:
        self.client.close()


def _scalar(value: Any, limit: int = 200) -> str | None:
    """A server-reported identifier as a bounded, printable string (None when absent or not a scalar)."""
    if value is None or isinstance(value, (dict, list)) or value == "":
        return None
    return printable(str(value), limit)


def _token_count(usage: Any) -> int:
    """usage.completion_tokens when it is a non-negative integer, else 0 (it is descriptive, never evidence)."""
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 31 else 0


def _parse_top(logprobs: Any, chat: bool) -> tuple[TopToken, ...] | None:
    """Top-k logprobs of the first generated token, verbatim, from either response format.

    None (text-level access only) unless every entry is a string token with a finite, non-positive logprob.
    """
    if not isinstance(logprobs, dict):
        return None
    # llama.cpp's server answers /v1/completions with the chat format too (`{"content": [...]}`; its
    # server_task_result_cmpl_final::to_json_oaicompat), so the format is read from the answer, not the route.
    chat = chat or ("content" in logprobs and "top_logprobs" not in logprobs)
    try:
        if chat:
            first = logprobs["content"][0]["top_logprobs"]
            if not isinstance(first, list):
                return None
            items = [(d["token"], d["logprob"]) for d in first]
        else:
            first = logprobs["top_logprobs"][0]
            if not isinstance(first, dict):
                return None
            items = list(first.items())
    except (KeyError, IndexError, TypeError):
        return None
    ok = all(isinstance(t, str) and isinstance(lp, (int, float)) and not isinstance(lp, bool)
             and math.isfinite(lp) and lp <= 1e-6 for t, lp in items)
    if not items or not ok or len(items) > 4 * MAX_TOP_LOGPROBS:
        return None
    pairs = sorted(((t, float(lp)) for t, lp in items), key=lambda kv: -kv[1])
    return tuple(TopToken(t, lp, None) for t, lp in pairs)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
