"""What an OpenAI-compatible endpoint can do, found by probing it once, and how each request is rendered for it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from provenance.errors import EndpointError
from provenance.evidence import Score
from provenance.models.base import Request, ScoreRequest
from provenance.models.scoring import Unplaceable, echo_tokens, locate, prompt_logprob_tokens

MAX_TOP_LOGPROBS = 20
ACCESS_PROBE_VERSION = "2"  # bump when the probes or what is read from them change (it is part of their cache key)
# Bump when how a score is read from an endpoint's answer changes (models/scoring.py): part of the scores' cache key.
SCORE_RULE_VERSION = "1"
# Unlike every library probe (next-token.json has "The capital of France is"), so a capability probe is never mistaken
# for, or cached as, an answer to a real one.
PROBE_PROMPT = "provenance access check: reply with one word."
# The prompt scoring probes score a continuation of known text, so the split (models/scoring.py) is checked on each
# route before it is trusted. The chat one has spaces at both ends: a template that trims the assistant's message (so
# the scored text would not end with it) is found here, not in the middle of an audit.
SCORE_PROBE = ("provenance access check:", " reply with one word.")
CHAT_SCORE_PROBE = " One word. "
# A completion-mode probe sent to a chat-only endpoint: the text to continue inside one user message. The exact
# messages of every request are kept in the transcript (`raw.request`), so a reader sees what the model was asked.
CONTINUE_INSTRUCTION = ("Continue the following text. Reply with the continuation only: do not repeat the text and "
                        "add no comment.\n\n{text}")
# Statuses that say "this route or parameter is not served" (retrying cannot help). 401/403, 429 and 5xx are not
# capability answers: they abort discovery with the usual one-line error.
ROUTE_MISSING = (404, 405)
PARAM_REFUSED = (400, 409, 415, 422)
# Parameter sets tried in order: the usual ones, then those of reasoning models (OpenAI o-series, gpt-5), which refuse
# `max_tokens` and any temperature but the default.
PARAMS = (("max_tokens", True), ("max_completion_tokens", False))


@dataclass(frozen=True)
class EndpointAccess:
    """The routes and parameters an endpoint accepted when probed; `reasons` says why anything is missing."""

    completions: bool = True
    chat: bool = True
    completion_top_k: int = MAX_TOP_LOGPROBS  # largest top-k logprobs /completions accepted and returned (0: none)
    chat_top_k: int = MAX_TOP_LOGPROBS
    token_param: str = "max_tokens"  # or "max_completion_tokens" (reasoning models)
    temperature: bool = True  # False: temperature refused, answers come at the server's default (not greedy)
    echo: bool = False  # prompt scoring through echo + logprobs on /completions (OpenAI legacy, vLLM, llama-cpp-python)
    prompt_logprobs: bool = False  # prompt scoring through vLLM's `prompt_logprobs` on /completions
    chat_prompt_logprobs: bool = False  # chat prompt scoring: vLLM's `prompt_logprobs` + `continue_final_message`
    reasons: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["version"] = ACCESS_PROBE_VERSION
        return out

    @staticmethod
    def from_json(obj: dict[str, Any]) -> "EndpointAccess":
        keys = EndpointAccess.__dataclass_fields__
        kw = {k: v for k, v in obj.items() if k in keys}
        kw["reasons"] = tuple(obj.get("reasons", ()))
        return EndpointAccess(**kw)

    def completion_as_chat(self) -> bool:
        return not self.completions

    def chat_as_completion(self) -> bool:
        return not self.chat and self.completions

    def summary(self) -> str:
        """One line for results.json's notes."""
        routes = [r for r, ok in (("completions", self.completions), ("chat", self.chat)) if ok]
        parts = [f"routes: {', '.join(routes)}"]
        if self.completion_as_chat():
            parts.append("continuation and next-token probes sent as chat messages with an instruction to continue")
        if self.chat_as_completion():
            parts.append("chat probes sent as plain completion prompts")
        k = self.chat_top_k if self.completion_as_chat() else self.completion_top_k
        parts.append(f"top-k logprobs: {k or 'none'}")
        if self.token_param != "max_tokens":
            parts.append(f"length limit as {self.token_param}")
        if not self.temperature:
            parts.append("temperature refused: answers sampled at the server's default, not greedy")
        plain, chat = score_route(self, False), score_route(self, True)
        parts.append(f"prompt scoring: {plain or 'not served'} (chat probes: {chat or 'not served'})")
        return "; ".join(parts)

    def can_score(self) -> bool:
        """Every score request an audit makes (plain text and chat) has a route: the `logits` capability."""
        return score_route(self, False) is not None and score_route(self, True) is not None


def _route_chat(access: EndpointAccess | None, chat: bool) -> bool:
    if access is None:
        return chat
    return (access.chat or not access.completions) if chat else access.completion_as_chat()


def render(access: EndpointAccess | None, model: str, req: Request) -> tuple[bool, dict[str, Any], str | None]:
    """(sent to the chat route, request body, how a probe was re-rendered or None) for one request.

    Without discovered access (a backend used directly) the request goes to the route its mode names, as before.
    """
    as_chat = _route_chat(access, req.chat)
    how = None
    if as_chat:
        content = req.prompt
        if not req.chat:
            content = CONTINUE_INSTRUCTION.format(text=req.prompt)
            how = "completion probe sent as a chat message with an instruction to continue the text"
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
        cap = access.chat_top_k if access else MAX_TOP_LOGPROBS
    else:
        if req.chat:
            how = "chat probe sent as a plain completion prompt (the endpoint has no chat route)"
        body = {"model": model, "prompt": req.prompt}
        cap = access.completion_top_k if access else MAX_TOP_LOGPROBS
    body[access.token_param if access else "max_tokens"] = max(req.max_new_tokens, 1)
    if access is None or access.temperature:
        body["temperature"] = req.temperature
    k = min(req.top_k, cap, MAX_TOP_LOGPROBS)
    if k:
        body.update({"logprobs": True, "top_logprobs": k} if as_chat else {"logprobs": k})
    if req.seed is not None:  # OpenAI-compatible servers that honour it make sampled answers repeatable
        body["seed"] = req.seed
    return as_chat, body, how


def variant(access: EndpointAccess | None, chat: bool, top_k: int) -> dict[str, Any] | None:
    """How this endpoint's answers to a probe set differ from the set's own mode and decoding (None: they do not).

    Part of the evidence cache key, so answers rendered another way are never served as the plain ones.
    """
    if access is None:
        return None
    as_chat = _route_chat(access, chat)
    out: dict[str, Any] = {}
    if as_chat != chat:
        out["as"] = "chat" if as_chat else "completion"
    cap = access.chat_top_k if as_chat else access.completion_top_k
    if top_k and min(top_k, cap, MAX_TOP_LOGPROBS) != min(top_k, MAX_TOP_LOGPROBS):
        out["top_k"] = min(top_k, cap, MAX_TOP_LOGPROBS)
    if access.token_param != "max_tokens":
        out["tokens"] = access.token_param
    if not access.temperature:
        out["temperature"] = "server default"
    return out or None


# Score routes: completions with echo, completions with vLLM's prompt_logprobs, chat with prompt_logprobs and
# continue_final_message. The chat route's request and answer are vLLM's, read from its source:
# vllm/entrypoints/openai/chat_completion/protocol.py (ChatCompletionRequest: `prompt_logprobs`,
# `add_generation_prompt`, `continue_final_message`, refused together with add_generation_prompt;
# ChatCompletionResponse: a top-level `prompt_logprobs`, a list of None or {token id: Logprob(logprob, rank,
# decoded_token)}) and vllm/entrypoints/openai/chat_completion/serving.py (the response built with
# `prompt_logprobs=clamp_prompt_logprobs(final_res.prompt_logprobs)`, -inf written as -9999.0). With
# continue_final_message the template renders the assistant's message open-ended (no end-of-turn), so the scored
# prompt is the rendered conversation ending with the continuation.
ECHO, PROMPT_LOGPROBS, CHAT_PROMPT_LOGPROBS = "echo", "prompt_logprobs", "chat prompt_logprobs"


def score_route(access: EndpointAccess | None, chat: bool) -> str | None:
    """The route a score request of this mode takes, rendered like a probe of the same mode; None: not served.

    Plain text is scored on /completions only (a chat-only endpoint could score it only inside a chat message, which
    is another text); a chat request is scored on the chat route, or as plain text where chat probes are sent as plain
    completion prompts (no chat route), as their answers were asked.
    """
    if access is None:
        return None
    if _route_chat(access, chat):
        return CHAT_PROMPT_LOGPROBS if chat and access.chat_prompt_logprobs else None
    return ECHO if access.echo else PROMPT_LOGPROBS if access.prompt_logprobs else None


def render_score(access: EndpointAccess, model: str, req: ScoreRequest, route: str) -> tuple[str, dict[str, Any]]:
    """(API route, request body) of one score request. One token is generated, never zero: llama-cpp-python reads
    max_tokens <= 0 as "until the context is full" (llama_cpp/llama.py `_create_completion`)."""
    body: dict[str, Any] = {"model": model}
    if route == CHAT_PROMPT_LOGPROBS:
        body.update(messages=[{"role": "user", "content": req.prompt},
                              {"role": "assistant", "content": req.continuation}],
                    add_generation_prompt=False, continue_final_message=True, prompt_logprobs=1)
    elif route == ECHO:
        body.update(prompt=req.prompt + req.continuation, echo=True, logprobs=1)
    else:
        body.update(prompt=req.prompt + req.continuation, prompt_logprobs=1)
    body[access.token_param] = 1
    if access.temperature:
        body["temperature"] = 0.0
    return ("chat/completions" if route == CHAT_PROMPT_LOGPROBS else "completions"), body


def read_score(route: str, data: Any, continuation: str) -> Score:
    """The continuation's Score from one answer of `route` (Unplaceable when the answer does not allow one)."""
    if not isinstance(data, dict):
        raise Unplaceable("the answer is not a JSON object")
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    if route == ECHO:
        usage = data.get("usage")
        n_gen = usage.get("completion_tokens") if isinstance(usage, dict) else None
        # The generated token(s) follow the echo; usage says how many (vLLM, llama-cpp-python and OpenAI all send it).
        # Without usage: the one token asked for.
        if not (isinstance(n_gen, int) and not isinstance(n_gen, bool) and 0 <= n_gen <= 1):
            n_gen = 1
        tokens, end = echo_tokens(choice.get("logprobs"), n_gen)
    else:
        # vLLM puts them in the choice on /completions and at the top level on /chat/completions.
        entries = choice.get("prompt_logprobs") if route == PROMPT_LOGPROBS else data.get("prompt_logprobs")
        if entries is None:
            entries = data.get("prompt_logprobs") if route == PROMPT_LOGPROBS else choice.get("prompt_logprobs")
        tokens, end = prompt_logprob_tokens(entries)
    return locate(tokens, end, continuation)


def score_variant(access: EndpointAccess | None) -> dict[str, Any] | None:
    """How an endpoint's scores were obtained (None for a local model): part of the scores' cache key, so scores of
    another route, or read under another rule, are never served as these."""
    if access is None:
        return None
    out: dict[str, Any] = {"plain": score_route(access, False), "chat": score_route(access, True),
                           "rule": SCORE_RULE_VERSION}
    if not access.temperature:
        out["temperature"] = "server default"
    return out


Post = Callable[[str, dict[str, Any]], tuple[Any, dict[str, Any]]]


def discover(post: Post, model: str, parse_top: Callable[[Any, bool], Any]) -> tuple[EndpointAccess, list[dict[str, Any]]]:
    """Probe both routes with one-token requests: which exists, which logprobs cap and which parameters it accepts.

    Returns the access found and one transcript record per request sent (refusals included, with their status).
    Raises EndpointError when neither route answers, or on a fault that is not a capability answer (401, 5xx, ...).
    """
    records: list[dict[str, Any]] = []
    reasons: list[str] = []
    last_error: list[str] = []

    def attempt(route: str, body: dict[str, Any], optional: bool = False) -> tuple[Any, int]:
        """`optional`: a probe of an extension (prompt scoring): any failure means "not served", never an abort."""
        sent = time.time()
        try:
            data, capture = post(route, body)
            status, text = 200, None
        except EndpointError as exc:
            status = getattr(exc, "status", None)
            if status not in ROUTE_MISSING + PARAM_REFUSED and not optional:
                raise
            data, capture, text = None, getattr(exc, "capture", {}), getattr(exc, "text", "") or str(exc)
            last_error.append(str(exc))
        answer = ""
        if data is not None:
            try:
                choice = data["choices"][0]
                got = choice["message"]["content"] if route == "chat/completions" else choice["text"]
                answer = got if isinstance(got, str) else ""
            except (KeyError, IndexError, TypeError):
                answer = ""
        records.append({"probe_id": f"{len(records) + 1:02d}-{route.replace('/', '-')}",
                        "request": {"prompt": PROBE_PROMPT, "route": route, "body": body},
                        "response": {"text": answer, "n_tokens": 0,
                                     "raw": {"status": status, "http": capture, **({"refused": text} if text else {})}},
                        "sent": sent, "received": time.time()})
        return data, status

    def probe_route(route: str, chat: bool) -> tuple[bool, int, str, bool]:
        """(served, top-k accepted and returned, token parameter, temperature accepted)."""
        for token_param, temperature in PARAMS:
            for k in (MAX_TOP_LOGPROBS, 5, 0):  # 5: legacy OpenAI completions refuse more (HTTP 400)
                body: dict[str, Any] = {"model": model}
                body.update({"messages": [{"role": "user", "content": PROBE_PROMPT}]} if chat else {"prompt": PROBE_PROMPT})
                body[token_param] = 1
                if temperature:
                    body["temperature"] = 0.0
                if k:
                    body.update({"logprobs": True, "top_logprobs": k} if chat else {"logprobs": k})
                data, status = attempt(route, body)
                if status in ROUTE_MISSING:
                    reasons.append(f"/{route}: HTTP {status} (no such route)")
                    return False, 0, "max_tokens", True
                if data is None:
                    continue
                choice = (data.get("choices") or [{}])[0] if isinstance(data, dict) else {}
                top = parse_top(choice.get("logprobs") if isinstance(choice, dict) else None, chat) if k else None
                if k and top is None:
                    reasons.append(f"/{route}: logprobs accepted but none returned (text access only)")
                elif k < MAX_TOP_LOGPROBS:
                    reasons.append(f"/{route}: top-k logprobs capped at {k}" if k else f"/{route}: logprobs refused")
                if token_param != "max_tokens":
                    reasons.append(f"/{route}: max_tokens refused; max_completion_tokens used")
                if not temperature:
                    reasons.append(f"/{route}: temperature refused; answers at the server's default temperature")
                return True, (k if top is not None else 0), token_param, temperature
        reasons.append(f"/{route}: every parameter set refused ({last_error[-1] if last_error else 'no answer'})")
        return False, 0, "max_tokens", True

    completions, completion_k, tp_c, temp_c = probe_route("completions", False)
    chat, chat_k, tp_h, temp_h = probe_route("chat/completions", True)
    if not completions and not chat:
        raise EndpointError(f"{last_error[-1] if last_error else 'no answer'} (the endpoint serves neither "
                            "/completions nor /chat/completions for this model)")
    token_param = tp_c if completions else tp_h
    temperature = temp_c if completions else temp_h
    probe = EndpointAccess(completions=completions, chat=chat, token_param=token_param, temperature=temperature)

    def scores(route: str, req: ScoreRequest) -> str | None:
        """Score the probe's continuation on `route`: None when it worked, else why not."""
        api, body = render_score(probe, model, req, route)
        data, status = attempt(api, body, optional=True)
        if data is None:
            return f"HTTP {status}" if status else last_error[-1]
        try:
            read_score(route, data, req.continuation)
        except Unplaceable as exc:
            return str(exc)
        return None

    echo = prompt_lp = chat_lp = False
    if completions:
        req = ScoreRequest(*SCORE_PROBE)
        why = scores(ECHO, req)
        echo = why is None
        if not echo:
            reasons.append(f"/completions: echo with logprobs not usable for prompt scoring ({why})")
            why = scores(PROMPT_LOGPROBS, req)
            prompt_lp = why is None
            if not prompt_lp:
                reasons.append(f"/completions: prompt_logprobs not usable for prompt scoring ({why})")
    if (echo or prompt_lp) and chat:  # chat scoring is of use only beside plain scoring (the yardstick is plain)
        why = scores(CHAT_PROMPT_LOGPROBS, ScoreRequest(PROBE_PROMPT, CHAT_SCORE_PROBE, chat=True))
        chat_lp = why is None
        if not chat_lp:
            reasons.append(f"/chat/completions: prompt_logprobs with continue_final_message not usable for prompt "
                           f"scoring ({why})")
    # The parameters of the route the completion-mode probes use decide the request shape for every probe.
    return EndpointAccess(completions=completions, chat=chat, completion_top_k=completion_k, chat_top_k=chat_k,
                          token_param=token_param, temperature=temperature, echo=echo, prompt_logprobs=prompt_lp,
                          chat_prompt_logprobs=chat_lp, reasons=tuple(dict.fromkeys(reasons))), records
