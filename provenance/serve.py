"""A small OpenAI-compatible server (loopback by default) over any local model, with prompt scoring where it has logits."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provenance.models import Backend, Capability, Request

MAX_TOKENS_LIMIT = 4096
MAX_SCORED_LOGPROBS = 20  # top-k per position of echoed or prompt logprobs


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
        if (not chat and body.get("echo")) or body.get("prompt_logprobs") is not None or \
                (chat and body.get("continue_final_message")):
            return self.score_answer(body, chat)
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

    # -- prompt scoring: the answers vLLM gives, for a model whose logits this process holds --------------------------

    def score_answer(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        """Echo with logprobs (/completions: OpenAI legacy shape), `prompt_logprobs` (vLLM shape, in the choice on
        /completions, at the top level on /chat/completions) and `continue_final_message` (chat: the conversation is
        rendered with the assistant's last message open-ended). At most one token is generated, greedily."""
        if Capability.LOGITS not in self.backend.capabilities or not hasattr(self.backend, "tokenizer"):
            raise ValueError("prompt scoring (echo, prompt_logprobs, continue_final_message) needs a model with logits")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 16))
        if not isinstance(max_tokens, int) or not 0 <= max_tokens <= 1:
            raise ValueError("this server scores prompts with max_tokens 0 or 1 only")
        k = int(body.get("logprobs") or 0) if not chat else 0
        n_prompt_lp = body.get("prompt_logprobs")
        if n_prompt_lp is not None and not (isinstance(n_prompt_lp, int) and 0 <= n_prompt_lp <= MAX_SCORED_LOGPROBS):
            raise ValueError(f"prompt_logprobs must be an integer in [0, {MAX_SCORED_LOGPROBS}]")
        text, add_special = self._scored_text(body, chat)
        with self._lock:
            toks = token_logprobs(self.backend, text, add_special, max(min(k, MAX_SCORED_LOGPROBS), n_prompt_lp or 0))
        nxt = toks.pop()  # the greedy next token, after the text
        generated = [nxt] if max_tokens else []
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        gen_text = "".join(t["piece"] for t in generated)
        out: dict[str, Any] = {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()),
                               "model": self.model_name, "system_fingerprint": f"fp_{self.fingerprint[:12]}",
                               "choices": [choice],
                               "usage": {"prompt_tokens": len(toks), "completion_tokens": len(generated)}}
        prompt_lp = None
        if n_prompt_lp is not None:  # newer vLLM's order: the prompt token first, then the top-n
            prompt_lp = [None, *({str(t["id"]): {"logprob": t["logprob"], "rank": t["rank"],
                                                 "decoded_token": t["decoded"]},
                                  **{str(i): {"logprob": v, "rank": r + 1, "decoded_token": d}
                                     for r, (i, v, d) in enumerate(t["top"][:n_prompt_lp]) if i != t["id"]}}
                                 for t in toks[1:])]
        if chat:
            out["object"] = "chat.completion"
            choice["message"] = {"role": "assistant", "content": gen_text}
            if prompt_lp is not None:
                out["prompt_logprobs"] = prompt_lp
            return out
        out["object"] = "text_completion"
        echo = bool(body.get("echo"))
        choice["text"] = (text if echo else "") + gen_text
        shown = [*toks, *generated] if echo else generated
        if "logprobs" in body and body["logprobs"] is not None:
            choice["logprobs"] = {
                "tokens": [t["piece"] for t in shown],
                "token_logprobs": [t["logprob"] for t in shown],
                "text_offset": [t["offset"] for t in shown],
                "top_logprobs": [None if t["logprob"] is None else
                                 {d: lp for _, lp, d in reversed(t["top"][:k])} | {t["piece"]: t["logprob"]}
                                 for t in shown]}
        if prompt_lp is not None:
            choice["prompt_logprobs"] = prompt_lp
        return out

    def _scored_text(self, body: dict[str, Any], chat: bool) -> tuple[str, bool]:
        """(the text to score, whether the tokenizer adds its special tokens), rendered as HFBackend.score renders a
        ScoreRequest of the same mode: plain text with special tokens; a chat through the model's template (which
        carries them), or the user's words then the assistant's where the model has no template."""
        if not chat:
            prompt = body["prompt"]
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if not isinstance(prompt, str) or not prompt:
                raise ValueError("prompt must be a non-empty string")
            return prompt, True
        messages = body["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                     for m in messages):
            raise ValueError("messages must be a list of objects with string content")
        if not body.get("continue_final_message") or messages[-1].get("role") != "assistant":
            raise ValueError("chat prompt scoring needs continue_final_message and a final assistant message")
        if body.get("add_generation_prompt", True):
            raise ValueError("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
        backend: Any = self.backend
        if backend.has_chat_template:
            return backend.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True), False
        users = "\n".join(m["content"] for m in messages[:-1] if m.get("role") == "user")
        return users + messages[-1]["content"], True


def token_logprobs(backend: Any, text: str, add_special: bool, top: int) -> list[dict[str, Any]]:
    """Every token of `text` with its logprob given the tokens before it (None for the first), its rank and the
    top-`top` alternatives, then the greedy next token. Offsets are character offsets in `text` (the tokenizer's
    offset mapping; an added special token starts at 0), pieces the text there, or its decoded text where the token
    adds text of its own (a BOS); `decoded` decodes the token alone, as vLLM's decoded_token does."""
    import torch

    tok = backend.tokenizer
    enc = tok(text, add_special_tokens=add_special, return_offsets_mapping=True)
    ids, spans = enc["input_ids"], enc["offset_mapping"]
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([ids], device=backend.device)).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
    target = torch.tensor(ids[1:], device=logp.device)
    own = logp[:-1].gather(1, target[:, None])[:, 0] if len(ids) > 1 else logp[:0, 0]
    ranks = (logp[:-1] > own[:, None]).sum(dim=1) + 1 if len(ids) > 1 else own.long()
    top_v, top_i = logp.topk(max(top, 1), dim=-1)

    def alternatives(row: int) -> list[tuple[int, float, str]]:
        return [(int(t), float(v), tok.decode([int(t)])) for v, t in zip(top_v[row].tolist(), top_i[row].tolist())]

    out: list[dict[str, Any]] = []
    for pos, (i, (a, b)) in enumerate(zip(ids, spans)):
        piece = text[a:b] if b > a else tok.decode([i])
        out.append({"id": i, "piece": piece, "offset": a, "decoded": tok.decode([i]),
                    "logprob": None if pos == 0 else float(own[pos - 1]),
                    "rank": None if pos == 0 else int(ranks[pos - 1]),
                    "top": [] if pos == 0 else alternatives(pos - 1)})
    nxt = int(top_i[-1, 0])
    out.append({"id": nxt, "piece": tok.decode([nxt], skip_special_tokens=True), "offset": len(text),
                "decoded": tok.decode([nxt]), "logprob": float(top_v[-1, 0]), "rank": 1,
                "top": alternatives(-1)})
    return out
