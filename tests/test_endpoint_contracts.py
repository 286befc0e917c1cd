"""Contract tests: the response shapes of vLLM, llama.cpp's server, TGI, Ollama and the OpenAI API, replayed by loopback
stub servers, through capability discovery, rendering, fingerprinting and whole audits (no model is loaded).

Where each shape comes from (kept beside the stub that replays it):
- vLLM `/v1/models`: `ModelCard` in vllm/entrypoints/openai/protocol.py: id, object, `created =
  int(time.time())` (the time of the call), `owned_by = "vllm"`, root, parent, max_model_len, permission[].
- llama.cpp server `/v1/models`: tools/server (`handle_models` / `engine_model_info`): id, object, `created =
  std::time(0)`, `owned_by = "llamacpp"`, `meta` {vocab_type, n_vocab, n_ctx_train, ...}; `/v1/completions`:
  `server_task_result_cmpl_final::to_json_oaicompat`, whose `logprobs` is `{"content": [{id, token, logprob, bytes,
  top_logprobs: [...]}]}` (the chat format) and `system_fingerprint` the build info; echo is not implemented
  (ggml-org/llama.cpp PR #15189, open).
- TGI `/v1/models`: huggingface/text-generation-inference PR #2433: one model, `created: 0`, `owned_by` = model id.
- Ollama: `system_fingerprint: "fp_ollama"` on its OpenAI-compatible answers; logprobs since 0.12.11.
- OpenAI: chat models have no `/v1/completions` (HTTP 404); legacy completions accept `logprobs` <= 5 (HTTP 400
  above); reasoning models refuse `max_tokens` (use `max_completion_tokens`) and any `temperature` but the default,
  and refuse logprobs. Together's `/v1/models` is a bare JSON array.
- vLLM prompt scoring (`vllm_echo`, `vllm_prompt_logprobs`): vllm/entrypoints/openai/completion/serving.py
  (`_create_completion_logprobs`: tokens decoded one by one, the BOS as '<s>', `text_offset` their cumulative lengths,
  the prompt's first logprob null, then the generated token) and completion/protocol.py, chat_completion/protocol.py
  (`prompt_logprobs`: a list, first None, then {token id: {logprob, rank, decoded_token}}). Scoring contracts:
  tests/test_endpoint_scoring.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from provenance.models import LoadOptions, Request, resolve
from provenance.models.access import CONTINUE_INSTRUCTION
from tests.faultserver import FaultPlan
from tests.hostile_fakes import FakeLM, ScriptedServer, endpoints, reply, run_audit_api

Handler = Callable[[Any], None]


def _json(h: Any, status: int, obj: Any) -> None:
    reply(h, status, json.dumps(obj).encode())


def _body(h: Any) -> dict[str, Any]:
    return json.loads(h.server_requests[-1]["body"] or b"{}")


def _error(status: int, message: str) -> Handler:  # the OpenAI error envelope every server here copies
    return lambda h: _json(h, status, {"error": {"message": message, "type": "invalid_request_error", "code": None}})


def _top_completion(k: int) -> dict[str, Any]:
    """OpenAI legacy completions logprobs (vLLM and Ollama follow it)."""
    top = {f" w{i}": -0.1 - i for i in range(k)}
    return {"tokens": [" w0"], "token_logprobs": [-0.1], "top_logprobs": [top], "text_offset": [0]}


def _top_chat(k: int) -> dict[str, Any]:
    """OpenAI chat logprobs (vLLM, TGI, Ollama, OpenAI; llama.cpp on both routes)."""
    return {"content": [{"token": " w0", "logprob": -0.1, "bytes": [32, 119, 48],
                         "top_logprobs": [{"token": f" w{i}", "logprob": -0.1 - i, "bytes": None} for i in range(k)]}]}


def _chat_lp(h: Any) -> dict[str, Any] | None:
    k = _k(_body(h), True)
    return _top_chat(k) if k else None


def _cmpl_lp(h: Any) -> dict[str, Any] | None:
    k = _k(_body(h), False)
    return _top_completion(k) if k else None


def _completion(logprobs: Any, fp: str | None = None, model: str = "m") -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "created": int(time.time()), "model": model,
            "system_fingerprint": fp, "choices": [{"index": 0, "text": " w0", "logprobs": logprobs,
                                                   "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def _chat(logprobs: Any, fp: str | None = None, model: str = "m") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": fp, "choices": [{"index": 0, "message": {"role": "assistant", "content": " w0"},
                                                   "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def _k(body: dict[str, Any], chat: bool) -> int:
    if chat:
        return int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
    return int(body.get("logprobs") or 0)


# -- a toy tokenizer and logprob for the scoring stubs: words with their leading space, punctuation, whitespace runs,
# chat special tokens; each token's logprob a function of its text, so tests can state the expected sums -------------
TOKEN = re.compile(r"<\|[a-z_]+\|>| ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]|\s+")


def pieces(text: str) -> list[str]:
    out = TOKEN.findall(text)
    assert "".join(out) == text, text
    return out


def lp(piece: str) -> float:
    return -round(0.25 + 0.1 * len(piece), 6)


def vllm_echo(text: str, generate: bool = True, bos: str | None = "<s>") -> dict[str, Any]:
    """vLLM's echo logprobs: the BOS's text first (offsets count it), prompt tokens (first logprob null), generated."""
    toks = ([bos] if bos else []) + pieces(text) + ([" w0"] if generate else [])
    lps: list[float | None] = [None] + [lp(t) for t in toks[1:]]
    if generate:
        lps[-1] = -0.1
    offsets = [sum(len(t) for t in toks[:i]) for i in range(len(toks))]
    return {"tokens": toks, "token_logprobs": lps, "text_offset": offsets,
            "top_logprobs": [None] + [{t: v} for t, v in zip(toks[1:], lps[1:])]}


def vllm_prompt_logprobs(text: str, bos: bool = True, older: bool = False) -> list[Any]:
    """vLLM's prompt_logprobs with top-1: per position the prompt token (its rank) and the top-1 token; newer vLLM puts
    the prompt token first, older V1 after the top-k; the prompt token alone when it is the top-1."""
    toks = (["<s>"] if bos else []) + pieces(text)
    out: list[Any] = [None]
    for i, t in enumerate(toks[1:], start=1):
        own = {"logprob": lp(t), "rank": 1 + i % 3, "decoded_token": t}
        if own["rank"] == 1:
            out.append({str(1000 + i): own})
            continue
        top = {"logprob": -0.01, "rank": 1, "decoded_token": " top"}
        out.append({"7": top, str(1000 + i): own} if older else {str(1000 + i): own, "7": top})
    return out


class Stub(ScriptedServer):
    """ScriptedServer whose routes see the parsed request body (exact paths: /models, /completions, /chat/...)."""

    def __init__(self, models: Handler, completions: Handler | None, chat: Handler | None) -> None:
        routes: dict[str, Handler] = {"/chat/completions": self._wrap(chat), "/v1/completions": self._wrap(completions),
                                      "/models": self._wrap(models)}
        super().__init__(routes)

    def _wrap(self, fn: Handler | None) -> Handler:
        def run(h: Any) -> None:
            h.server_requests = self.requests
            if fn is None:
                return _json(h, 404, {"error": "no route"})
            fn(h)
        return run


def vllm() -> Stub:
    def models(h: Any) -> None:  # created: the time of this call (vLLM ModelCard)
        _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model", "created": time.time_ns(),
                                                   "owned_by": "vllm", "root": "/models/m", "parent": None,
                                                   "max_model_len": 2048, "permission": [{"id": "modelperm-1"}]}]})

    def completions(h: Any) -> None:
        b = _body(h)
        if b.get("echo"):  # prompt tokens' logprobs first (the first is null), then the generated one
            out = _completion(vllm_echo(b["prompt"]))
            out["choices"][0]["text"] = b["prompt"] + " w0"
            return _json(h, 200, out)
        out = _completion(_cmpl_lp(h))
        if b.get("prompt_logprobs") is not None:  # vLLM's extra parameter: in the choice on /completions
            out["choices"][0]["prompt_logprobs"] = vllm_prompt_logprobs(b["prompt"])
        _json(h, 200, out)

    def chat(h: Any) -> None:
        b = _body(h)
        out = _chat(_chat_lp(h))
        if b.get("prompt_logprobs") is not None:  # the conversation rendered ChatML-style, the last message open-ended
            if b.get("add_generation_prompt", True):
                return _error(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.")(h)
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in b["messages"][:-1])
            text += f"<|im_start|>assistant\n{b['messages'][-1]['content']}"
            out["prompt_logprobs"] = vllm_prompt_logprobs(text, bos=False)
        _json(h, 200, out)

    return Stub(models, completions, chat)


def llamacpp() -> Stub:
    def models(h: Any) -> None:
        _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model", "created": time.time_ns(),
                                                   "owned_by": "llamacpp", "meta": {"n_vocab": 49152, "n_ctx_train": 8192}}]})

    def completions(h: Any) -> None:  # chat-format logprobs on /v1/completions; echo ignored
        k = _k(_body(h), False)
        _json(h, 200, _completion(_top_chat(k) if k else None, fp="b6096-abcdef0"))

    return Stub(models, completions, lambda h: _json(h, 200, _chat(_chat_lp(h),
                                                                   fp="b6096-abcdef0")))


def tgi() -> Stub:
    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model", "created": 0,  # noqa: E731
                                                                  "owned_by": "m"}]})
    return Stub(models, lambda h: _json(h, 200, _completion(None)),
                lambda h: _json(h, 200, _chat(_chat_lp(h))))


def ollama() -> Stub:
    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model",  # noqa: E731
                                                                  "created": 1718000000, "owned_by": "library"}]})
    return Stub(models, lambda h: _json(h, 200, _completion(_cmpl_lp(h), "fp_ollama")),
                lambda h: _json(h, 200, _chat(_chat_lp(h), "fp_ollama")))


def openai_chat() -> Stub:
    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model",  # noqa: E731
                                                                  "created": 1715367049, "owned_by": "system"}]})
    chat = lambda h: _json(h, 200, _chat(_chat_lp(h), "fp_abc123", model="m-2024-08-06"))  # noqa: E731
    return Stub(models, _error(404, "This is a chat model and not supported in the v1/completions endpoint."), chat)


def openai_legacy() -> Stub:
    def completions(h: Any) -> None:
        k = _k(_body(h), False)
        if k > 5:
            return _error(400, "logprobs must be less than or equal to 5")(h)
        _json(h, 200, _completion(_top_completion(k) if k else None))

    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model",  # noqa: E731
                                                                  "created": 1692901427, "owned_by": "system"}]})
    return Stub(models, completions, _error(404, "This is not a chat model."))


def openai_reasoning() -> Stub:
    def chat(h: Any) -> None:
        b = _body(h)
        if "max_tokens" in b:
            return _error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                               "Use 'max_completion_tokens' instead.")(h)
        if "temperature" in b:
            return _error(400, "Unsupported value: 'temperature' does not support 0 with this model.")(h)
        if b.get("logprobs"):
            return _error(400, "Unsupported parameter: 'logprobs' is not supported with this model.")(h)
        _json(h, 200, _chat(None))

    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model",  # noqa: E731
                                                                  "created": 1734375816, "owned_by": "system"}]})
    return Stub(models, _error(404, "This is a chat model and not supported in the v1/completions endpoint."), chat)


def together_array() -> Stub:
    models = lambda h: _json(h, 200, [{"id": "m", "object": "model", "created": 0, "type": "chat",  # noqa: E731
                                       "display_name": "M", "organization": "Org"}])
    return Stub(models, lambda h: _json(h, 200, _completion(_cmpl_lp(h))),
                lambda h: _json(h, 200, _chat(_chat_lp(h))))


def no_model_list() -> Stub:
    return Stub(_error(404, "Resource not found"), lambda h: _json(h, 200, _completion(None)),
                lambda h: _json(h, 200, _chat(None)))


# (stub, expected access: routes, top-k per route, token parameter, temperature, echo)
CASES = {
    "vllm": (vllm, dict(completions=True, chat=True, completion_top_k=20, chat_top_k=20, echo=True,
                        chat_prompt_logprobs=True)),
    "llamacpp": (llamacpp, dict(completions=True, chat=True, completion_top_k=20, chat_top_k=20, echo=False,
                                prompt_logprobs=False)),
    "tgi": (tgi, dict(completions=True, chat=True, completion_top_k=0, chat_top_k=20, echo=False,
                      prompt_logprobs=False)),
    "ollama": (ollama, dict(completions=True, chat=True, completion_top_k=20, chat_top_k=20)),
    "openai-chat": (openai_chat, dict(completions=False, chat=True, chat_top_k=20, echo=False)),
    "openai-legacy": (openai_legacy, dict(completions=True, chat=False, completion_top_k=5)),
    "openai-reasoning": (openai_reasoning, dict(completions=False, chat=True, chat_top_k=0,
                                                token_param="max_completion_tokens", temperature=False)),
    "together-array": (together_array, dict(completions=True, chat=True, completion_top_k=20)),
    "no-model-list": (no_model_list, dict(completions=True, chat=True, completion_top_k=0, chat_top_k=0)),
}


def _open(srv: Stub) -> Any:
    return resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_access_discovered_per_server(name: str) -> None:
    """Each server's routes, logprobs cap and parameters are found by probing, and a probe of every kind then runs."""
    make, want = CASES[name]
    with make() as srv:
        rm = _open(srv)
        backend = rm.load()
        try:
            access, records = backend.discover_access()
            got = {k: access[k] for k in want}
            assert got == want, (name, access)
            assert records and all(r["request"]["prompt"] and "status" in r["response"]["raw"] for r in records)
            cont, nxt, chat = backend.generate([Request("Once upon a time", 4, 0), Request("The sky is", 1, 20),
                                                Request("Who made you?", 8, 0, chat=True)])
        finally:
            backend.close()
    assert cont.text == nxt.text == chat.text == " w0"
    k_used = access["chat_top_k"] if not access["completions"] else access["completion_top_k"]
    assert (nxt.top is not None) == bool(k_used), (name, nxt)
    if not access["completions"]:  # chat-only: the exact messages sent are on the record
        assert cont.raw["request"]["messages"] == [{"role": "user",
                                                    "content": CONTINUE_INSTRUCTION.format(text="Once upon a time")}]
        assert "instruction to continue" in cont.raw["rendered"]
    if access["token_param"] != "max_tokens":
        assert "max_tokens" not in nxt.raw["request"] and "temperature" not in nxt.raw["request"]


@pytest.mark.parametrize("name", ["vllm", "llamacpp"])
def test_fingerprint_ignores_created(name: str) -> None:
    """vLLM and llama.cpp put the time of the call in `created`: two resolutions still share one fingerprint."""
    make, _ = CASES[name]
    with make() as srv:
        first = _open(srv)
        time.sleep(0.01)
        second = _open(srv)
    assert first.fingerprint == second.fingerprint
    assert first.source["observed"]["created"] != second.source["observed"]["created"]
    assert "created" not in first.source["server"]


def test_model_list_variants_resolve() -> None:
    with together_array() as srv:
        rm = _open(srv)
        assert rm.source["observed"]["model_list"] == "bare array"
    with no_model_list() as srv:
        rm = _open(srv)
        assert rm.source["observed"] == {"model_list": "absent (HTTP 404)"} and rm.source["model"] == "m"


# -- whole audits over loopback endpoints (the seeded FakeLM behind provenance's own server) ----------------------------

def _chat_only(text_only: bool = False) -> FaultPlan:
    """No /v1/completions route (HTTP 404, like OpenAI's chat models); with `text_only`, logprobs silently dropped."""
    def schedule(key: str, attempt: int) -> str | None:
        if key.startswith("POST /v1/completions"):
            return "404"
        return "omit-logprobs" if text_only and key.startswith("POST") else None
    return FaultPlan(schedule)


@pytest.mark.parametrize("text_only", [False, True])
def test_chat_only_suspect_is_audited_end_to_end(tmp_path: Path, text_only: bool) -> None:
    """A chat-only suspect: every family its access allows runs, the others say why not; nothing aborts; the bundle
    verifies; the access found is in results (notes, access_detail), the manifest and the transcript."""
    from provenance.audit import AuditConfig, run_audit
    from provenance.report.verify import verify

    with endpoints(plans={"suspect": _chat_only(text_only)}) as servers:
        spec = f"{servers['suspect'].url}#suspect"
        controls = [f"{s.url}#{r}" for r, s in servers.items() if r.startswith("control")]
        res = run_audit(AuditConfig(suspect=spec, references=[f"{servers['reference'].url}#reference"],
                                    controls=controls, out=tmp_path / "b", budget=12, progress=False,
                                    options=LoadOptions(http_timeout=5.0)))
    tests = {t["name"]: t for t in res["references"][0]["tests"]}
    assert tests["output_agreement"]["skipped"] is None  # continuation probes went as chat messages
    # ... and the reference and controls got them as completions: the family says its answers are not comparable
    assert tests["output_agreement"]["details"]["asked_differently"]["as_chat"] == [spec]
    # ... so its row effect is no kind check: a chat-only suspect agrees less with completion-served controls whatever
    # its lineage
    kind = tests["output_agreement"]["details"]["kind_check"]
    assert "not_comparable" in kind and kind["suspect_out_of_kind"] is False
    if text_only:
        assert "top-k" in tests["next_token_divergence"]["skipped"]
        assert res["access"][spec] == ["text"]
    else:
        assert tests["next_token_divergence"]["skipped"] is None
    assert tests["reference_likelihood"]["skipped"] and tests["weight_alignment"]["skipped"]
    assert any("routes: chat" in n and "sent as chat messages" in n for n in res["notes"])
    assert any("/completions: HTTP 404 (no such route)" in n for n in res["notes"])
    assert res["access_detail"][spec]["completions"] is False and res["access_detail"][spec]["chat"] is True
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (suspect,) = [m for m in manifest["models"] if m["spec"] == spec]
    assert suspect["endpoint"]["access"]["completions"] is False
    records = [json.loads(x) for x in (tmp_path / "b" / "transcripts.jsonl").read_text().splitlines()]
    probes = [r for r in records if r["model"] == spec and r["probe_set"] == "endpoint-access"]
    assert probes[-1]["response"]["access"]["chat"] is True
    sent = [r for r in records if r["model"] == spec and r["probe_set"] == "continuation"]
    assert sent and all(r["response"]["raw"]["request"]["messages"][0]["content"].startswith("Continue the following")
                        for r in sent)
    assert verify(tmp_path / "b").ok


@pytest.mark.slow
def test_created_now_shares_one_fingerprint_and_the_second_run_is_cached(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every server's model list says `created` = now (vLLM, llama.cpp): the second audit has the same fingerprints and
    is served from the evidence cache (only the freshness canary is sent); `--fresh` (LoadOptions.fresh) asks again."""
    from provenance.serve import ModelServer

    card = ModelServer.model_card
    monkeypatch.setattr(ModelServer, "model_card", lambda self: {**card(self), "created": time.time_ns()})
    models = {"reference": FakeLM(11), "suspect": FakeLM(12), "control-1": FakeLM(13), "control-2": FakeLM(14),
              "control-3": FakeLM(15)}
    with endpoints(models) as servers:
        first = run_audit_api(servers, tmp_path / "a")
        before = {r: s.backend.calls for r, s in servers.items()}
        second = run_audit_api(servers, tmp_path / "b")
        calls = {r: s.backend.calls - before[r] for r, s in servers.items()}
        fresh = run_audit_api(servers, tmp_path / "c", options=LoadOptions(http_timeout=5.0, fresh=True))
        fresh_calls = {r: s.backend.calls - before[r] - calls[r] for r, s in servers.items()}
    assert first["suspect"]["fingerprint"] == second["suspect"]["fingerprint"]
    assert [c["fingerprint"] for c in first["controls"]] == [c["fingerprint"] for c in second["controls"]]
    assert set(calls.values()) == {3}, calls  # the canary alone: answers and access probes replayed
    assert any("answers replayed from the evidence cache" in n for n in second["notes"])
    assert all(c >= 12 for c in fresh_calls.values()), fresh_calls
    assert any("--fresh" in n for n in fresh["notes"])
    assert first["references"][0]["p_value"] == second["references"][0]["p_value"] == fresh["references"][0]["p_value"]


@pytest.mark.slow
def test_fresh_flag_through_the_cli(tmp_path: Path) -> None:
    """`provenance audit --fresh`: exit 0, every endpoint asked again, the notes say so."""
    from tests.hostile_fakes import audit_args, run_cli

    with endpoints() as servers:
        first = run_cli(*audit_args(servers, tmp_path / "a"))
        before = servers["suspect"].backend.calls
        again = run_cli(*audit_args(servers, tmp_path / "b", "--fresh", "--json"))
        asked = servers["suspect"].backend.calls - before
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert asked >= 12  # every answer anew (a cached rerun sends the 3 canary probes only)
    assert any("--fresh" in n for n in json.loads(again.stdout)["notes"])
