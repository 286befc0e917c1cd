"""Contract tests of prompt scoring from outside: stub servers on loopback answering as vLLM (echo, prompt_logprobs on
/completions and, with continue_final_message, on /chat/completions) and llama-cpp-python do, plus servers that ignore
echo, refuse max_tokens 0, trim the chat message, or answer offsets that do not follow the text. Every expected score
is a sum of the stubs' toy logprobs (`lp`, tests/test_endpoint_contracts.py), worked out by hand in each test.

Where each shape comes from: vLLM, see tests/test_endpoint_contracts.py; llama-cpp-python, llama_cpp/llama.py
`_create_completion` (echo: the BOS dropped, `text_offset` the length of the decoded text before each token, the first
token_logprob set to None "like the OpenAI API", usage.completion_tokens the generated count).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenance.errors import CapabilityError, EndpointError
from provenance.evidence import Score, ScoreItem
from provenance.models import Capability, LoadOptions, resolve
from provenance.models.access import EndpointAccess, score_variant
from provenance.models.base import ScoreRequest
from tests.test_endpoint_contracts import (Stub, _chat, _completion, _error, _json, ollama, pieces, vllm,
                                           vllm_prompt_logprobs)

PLAIN = ScoreRequest("The sky is", " blue today.")  # " blue" -0.75, " today" -0.85, "." -0.35
PLAIN_SCORE = Score(-1.95, 3, 12)
EMPTY = ScoreRequest("", "A neutral text.")  # "A" -0.35, " neutral" -1.05, " text" -0.75, "." -0.35
STRADDLE = ScoreRequest("Hello ", "world")  # the prompt's space and the word are one token, " world" -0.85
# After "<|im_start|>assistant\n": "Red" -0.55, "," -0.35, " green" -0.85, "." -0.35
CHAT = ScoreRequest("Name three colours.", "Red, green.", chat=True)


def _models(h: Any) -> None:
    _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "vllm"}]})


def _close(got: Score, want: Score) -> None:
    assert got.logprob == pytest.approx(want.logprob, abs=1e-9), (got, want)
    assert (got.n_tokens, got.n_bytes) == (want.n_tokens, want.n_bytes), (got, want)


def _backend(srv: Stub) -> Any:
    backend = resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1)).load()
    access, _ = backend.discover_access()
    return backend, access


def test_vllm_echo_and_chat_prompt_logprobs() -> None:
    """vLLM: echo on /completions (offsets that count the BOS's '<s>'), prompt_logprobs + continue_final_message on
    chat; the likelihood family's capability follows."""
    with vllm() as srv:
        backend, access = _backend(srv)
        assert access["echo"] and access["chat_prompt_logprobs"] and not access["prompt_logprobs"]
        assert Capability.LOGITS in backend.capabilities
        before = len(srv.requests)
        got = backend.score([PLAIN, EMPTY, STRADDLE, CHAT, ScoreRequest("x", "")])
        sent = [json.loads(r["body"]) for r in srv.requests[before:]]
        backend.close()
    _close(got[0], PLAIN_SCORE)
    _close(got[1], Score(-2.5, 4, 15))  # the BOS is the text's first token: "A" has a logprob
    _close(got[2], Score(-0.85, 1, 5))  # the straddling token counts with the continuation
    _close(got[3], Score(-2.1, 4, 11))
    _close(got[4], Score(0.0, 0, 0))  # nothing to score: no request
    assert len(sent) == 4 and all(b["max_tokens"] == 1 and b["temperature"] == 0.0 for b in sent)
    # Sent concurrently (4 at a time): found by content, not by order.
    assert {"model": "m", "prompt": "The sky is blue today.", "echo": True, "logprobs": 1, "max_tokens": 1,
            "temperature": 0.0} in sent
    (chat,) = [b for b in sent if "messages" in b]
    assert chat["messages"] == [{"role": "user", "content": CHAT.prompt},
                                {"role": "assistant", "content": "Red, green."}]
    assert chat["add_generation_prompt"] is False and chat["continue_final_message"] is True
    assert got[0].raw["route"] == "echo" and got[3].raw["route"] == "chat prompt_logprobs"
    assert got[0].raw["http"]["status"] == 200 and len(got[0].raw["http"]["body_sha256"]) == 64


def _gateway(older: bool, bos: bool = True) -> Stub:
    """vLLM behind a gateway that refuses echo (HTTP 400) but passes prompt_logprobs through."""
    def completions(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])
        if b.get("echo"):
            return _error(400, "echo is not supported")(h)
        out = _completion(None)
        if b.get("prompt_logprobs") is not None:
            out["choices"][0]["prompt_logprobs"] = vllm_prompt_logprobs(b["prompt"], bos=bos, older=older)
        _json(h, 200, out)

    return Stub(_models, completions, lambda h: _json(h, 200, _chat(None)))


@pytest.mark.parametrize("older", [False, True])
def test_prompt_logprobs_when_echo_is_refused(older: bool) -> None:
    """No echo: vLLM's prompt_logprobs on /completions, the prompt token picked from a position's top-1 entries
    whichever order the vLLM version writes them in (newer: prompt token first; older V1: last)."""
    with _gateway(older) as srv:
        backend, access = _backend(srv)
        got = backend.score([PLAIN, EMPTY, STRADDLE])
        body = json.loads(srv.requests[-1]["body"])
        backend.close()
    assert not access["echo"] and access["prompt_logprobs"]
    assert any("echo with logprobs not usable" in r and "HTTP 400" in r for r in access["reasons"])
    assert Capability.LOGITS not in backend.capabilities  # chat scoring absent: the audit's chat items have no route
    _close(got[0], PLAIN_SCORE)
    _close(got[1], Score(-2.5, 4, 15))
    _close(got[2], Score(-0.85, 1, 5))
    assert body["prompt_logprobs"] == 1 and "echo" not in body and body["max_tokens"] == 1


def test_no_bos_first_token_has_no_logprob() -> None:
    """A tokenizer without BOS: an empty prompt's continuation starts with the text's first token, which has no
    logprob; it is left out of the sum, the token count and the bytes (HFBackend scores it after a BOS)."""
    with _gateway(older=False, bos=False) as srv:
        backend, _ = _backend(srv)
        got = backend.score([EMPTY, PLAIN])
        backend.close()
    _close(got[0], Score(-2.15, 3, 14))
    _close(got[1], PLAIN_SCORE)


def llama_cpp_python() -> Stub:
    """llama-cpp-python's server: echo with the BOS dropped and offsets into the text; chat ignores prompt_logprobs."""
    def completions(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])
        if b.get("max_tokens", 16) <= 0:  # "unlimited, depending on n_ctx": never what a scorer wants
            return _error(500, "ran to the end of the context")(h)
        if not b.get("echo"):
            return _json(h, 200, _completion(None))
        toks = [*pieces(b["prompt"]), " w0"]
        lps: list[Any] = [None, *(-round(0.25 + 0.1 * len(t), 6) for t in toks[1:-1]), -0.1]
        offsets = [sum(len(t) for t in toks[:i]) for i in range(len(toks))]
        out = _completion({"tokens": toks, "text_offset": offsets, "token_logprobs": lps,
                           "top_logprobs": [None, *({t: v} for t, v in zip(toks[1:], lps[1:]))]})
        out["choices"][0]["text"] = b["prompt"] + " w0"
        _json(h, 200, out)

    models = lambda h: _json(h, 200, {"object": "list", "data": [{"id": "m", "object": "model",  # noqa: E731
                                                                  "owned_by": "me", "permissions": []}]})
    return Stub(models, completions, lambda h: _json(h, 200, _chat(None)))


def test_llama_cpp_python_scores_plain_text_only() -> None:
    """Echo works (plain text scored, the first token without logprob), chat scoring does not: no `logits`, and a
    chat score request is refused with one line rather than scored another way."""
    with llama_cpp_python() as srv:
        backend, access = _backend(srv)
        got = backend.score([PLAIN, EMPTY])
        with pytest.raises(CapabilityError) as exc:
            backend.score([CHAT])
        backend.close()
    assert access["echo"] and not access["chat_prompt_logprobs"]
    assert any("continue_final_message not usable" in r for r in access["reasons"])
    assert Capability.LOGITS not in backend.capabilities
    _close(got[0], PLAIN_SCORE)
    _close(got[1], Score(-2.15, 3, 14))
    assert "\n" not in str(exc.value) and "scoring chat text needs echo or prompt_logprobs" in str(exc.value)


@pytest.mark.parametrize("make", [ollama, vllm], ids=["ignores-echo", "vllm"])
def test_a_server_that_ignores_echo_scores_nothing(make: Any) -> None:
    """Answers to echo that hold only the generated token's logprobs: echo not served, no scoring, no `logits`."""
    if make is vllm:  # vLLM's stub, but its echo ignored: the generated token only
        def completions(h: Any) -> None:
            _json(h, 200, _completion({"tokens": [" w0"], "token_logprobs": [-0.1], "text_offset": [22],
                                       "top_logprobs": [{" w0": -0.1}]}))
        make = lambda: Stub(_models, completions, lambda h: _json(h, 200, _chat(None)))  # noqa: E731
    with make() as srv:
        backend, access = _backend(srv)
        with pytest.raises(CapabilityError, match="needs echo or prompt_logprobs"):
            backend.score([PLAIN])
        backend.close()
    assert not access["echo"] and not access["prompt_logprobs"] and not access["chat_prompt_logprobs"]
    assert any("echo with logprobs not usable" in r for r in access["reasons"])
    assert Capability.LOGITS not in backend.capabilities


def test_max_tokens_zero_is_never_sent() -> None:
    """A server refusing max_tokens 0 (vLLM-like) or generating to the end of the context with it (llama-cpp-python):
    scoring asks for one generated token, always."""
    from tests.test_endpoint_contracts import vllm_echo

    def completions(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])
        if b.get("max_tokens") == 0:
            return _error(400, "max_tokens must be at least 1, got 0.")(h)
        out = _completion(vllm_echo(b["prompt"]) if b.get("echo") else None)
        out["choices"][0]["text"] = b["prompt"] + " w0"
        _json(h, 200, out)

    for make in (lambda: Stub(_models, completions, lambda h: _json(h, 200, _chat(None))), llama_cpp_python):
        with make() as srv:
            backend, access = _backend(srv)
            got = backend.score([PLAIN])
            bodies = [json.loads(r["body"]) for r in srv.requests if r["path"].endswith("completions")]
            backend.close()
        assert access["echo"]
        _close(got[0], PLAIN_SCORE)
        assert bodies and all(b.get("max_tokens") == 1 for b in bodies if b.get("echo") or "prompt_logprobs" in b)


def _vllm_variant(mangle: Any = None, trim: bool = False) -> Stub:
    """vLLM's stub with its echo answers passed through `mangle(body, logprobs)`, or a chat template that trims."""
    from tests.test_endpoint_contracts import vllm_echo

    def completions(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])

        lp = vllm_echo(b["prompt"])
        if mangle is not None:
            mangle(b, lp)
        out = _completion(lp)
        out["choices"][0]["text"] = b["prompt"] + " w0"
        _json(h, 200, out)

    def chat(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])
        out = _chat(None)
        if b.get("prompt_logprobs") is not None:
            last = b["messages"][-1]["content"]
            text = f"<|im_start|>user\n{b['messages'][0]['content']}<|im_end|>\n<|im_start|>assistant\n"
            text += last.strip() if trim else last
            out["prompt_logprobs"] = vllm_prompt_logprobs(text, bos=False)
        _json(h, 200, out)

    return Stub(_models, completions, chat)


def test_a_trimming_chat_template_is_found_when_probed() -> None:
    """A template that strips the assistant's message: the probe's continuation (spaces at both ends) is not at the
    end of the scored text; chat scoring is not served, and nothing is scored wrongly later."""
    with _vllm_variant(trim=True) as srv:
        backend, access = _backend(srv)
        backend.close()
    assert access["echo"] and not access["chat_prompt_logprobs"]
    assert any("not the continuation's text" in r for r in access["reasons"]), access["reasons"]
    assert Capability.LOGITS not in backend.capabilities


def _other_text_unless_probe(b: dict[str, Any], lp: dict[str, Any]) -> None:
    if "provenance access check" not in b["prompt"]:  # right for the probe, another text afterwards
        lp["tokens"] = [t.upper() for t in lp["tokens"]]


def _positive_unless_probe(b: dict[str, Any], lp: dict[str, Any]) -> None:
    if "provenance access check" not in b["prompt"]:
        lp["token_logprobs"][-2] = 0.5


def _null_inside(b: dict[str, Any], lp: dict[str, Any]) -> None:
    if "provenance access check" not in b["prompt"]:
        lp["token_logprobs"][-3] = None


@pytest.mark.parametrize("mangle, needle", [
    (_other_text_unless_probe, "is not the continuation's text there"),
    (_positive_unless_probe, "not a log-probability"),
    (_null_inside, "a token inside the continuation has no logprob"),
])
def test_answers_that_cannot_be_scored_are_one_error(mangle: Any, needle: str) -> None:
    """Offsets that stop following the text, a positive logprob, a null inside the continuation: one EndpointError
    line naming the endpoint and route, never a plausible wrong score."""
    with _vllm_variant(mangle) as srv:
        backend, access = _backend(srv)
        assert access["echo"]
        with pytest.raises(EndpointError) as exc:
            backend.score([PLAIN])
        backend.close()
    msg = str(exc.value)
    assert needle in msg and "cannot score through echo" in msg and "\n" not in msg


def _split_emoji(b: dict[str, Any], lp: dict[str, Any]) -> None:
    """vLLM on a byte-level tokenizer: a 4-byte character split over three tokens, each decoded alone to U+FFFD (its
    logprob shared among them); offsets are the cumulative lengths of those texts, so they drift by two after it."""
    toks, lps = [], []
    for t, v in zip(lp["tokens"], lp["token_logprobs"]):
        if "\U0001f600" in t:
            toks += [t.replace("\U0001f600", "\ufffd"), "\ufffd", "\ufffd"]
            lps += [v / 3, v / 3, v / 3]
        else:
            toks.append(t)
            lps.append(v)
    lp.update(tokens=toks, token_logprobs=lps, text_offset=[sum(len(t) for t in toks[:i]) for i in range(len(toks))],
              top_logprobs=[None, *({t: v} for t, v in zip(toks[1:], lps[1:]))])


@pytest.mark.parametrize("prompt, continuation, want", [
    ("Smile", " \U0001f600 ok", Score(-1.0, 4, 8)),  # " \U0001f600" -0.45 in three tokens, " ok" -0.55
    ("Smile \U0001f600", " ok", Score(-0.55, 1, 3)),  # the split character in the prompt: only " ok"
    ("Smile", " ok \U0001f600", Score(-1.0, 4, 8)),
    ("Hello ", "world \U0001f600", Score(-1.3, 4, 10)),  # and " world" straddling: -0.85 + -0.45
])
def test_a_character_split_over_tokens(prompt: str, continuation: str, want: Score) -> None:
    """Offsets that drift at a split character (vLLM decodes each part to U+FFFD): the tokens' own texts are matched
    to the continuation's bytes instead, and the score is the right one."""
    with _vllm_variant(_split_emoji) as srv:
        backend, _ = _backend(srv)
        (got,) = backend.score([ScoreRequest(prompt, continuation)])
        backend.close()
    _close(got, want)


def test_cached_scores_of_another_model_are_set_aside(tmp_path: Path) -> None:
    """Scores cached under an endpoint's fingerprint are replayed only after a fresh canary matches them: cached scores
    that differ (another model now serves that name, or an edited cache) are set aside and every text scored again."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model, collect_scores, score_key

    cache = EvidenceCache(tmp_path / "cache")
    items = [ScoreItem(f"p{i}|src", PLAIN.prompt, PLAIN.continuation + " x" * i, False) for i in range(5)]
    with vllm() as srv:
        rm = resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1))
        ev = collect_model(rm, [], cache, progress=False)
        collect_scores([rm], items, cache, {rm.fingerprint: ev}, progress=False)
        key = score_key(rm)
        cached = cache.load(key)
        cache.retire(key)  # the cache as another model behind the same name would have left it
        cache.append(key, [{**r, "response": {**r["response"], "logprob": r["response"]["logprob"] - 1.5}}
                           for r in cached.values()])
        ev2 = collect_model(rm, [], cache, progress=False)
        n0 = len(srv.requests)
        collect_scores([rm], items, cache, {rm.fingerprint: ev2}, progress=False)
        asked = len(srv.requests) - n0
    assert asked == 3 + 5  # the canary of three texts, then every text afresh
    assert any("scores changed since they were cached" in n for n in ev2.notes)
    assert {k: v.logprob for k, v in ev2.scores.items()} == {k: v.logprob for k, v in ev.scores.items()}


def test_scores_are_cached_per_route(tmp_path: Path) -> None:
    """Collected scores are cached under the endpoint's fingerprint and its scoring route: a rerun asks nothing, the
    same endpoint scoring through another route asks again."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model, collect_scores

    assert score_variant(EndpointAccess(echo=True, chat_prompt_logprobs=True)) != \
        score_variant(EndpointAccess(prompt_logprobs=True, chat_prompt_logprobs=True))
    assert score_variant(None) is None  # a local model's scores keep their key
    cache = EvidenceCache(tmp_path / "cache")
    items = [ScoreItem("p1|src", PLAIN.prompt, PLAIN.continuation, False),
             ScoreItem("p2|src", CHAT.prompt, CHAT.continuation, True)]
    with vllm() as srv:
        rm = resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1))
        ev = collect_model(rm, [], cache, progress=False)
        assert "logits" in ev.capabilities
        n0 = len(srv.requests)
        collect_scores([rm], items, cache, {rm.fingerprint: ev}, progress=False)
        n1 = len(srv.requests)
        collect_scores([rm], items, cache, {rm.fingerprint: ev}, progress=False)
        n2 = len(srv.requests)
        rm.access = {**rm.access, "echo": False, "prompt_logprobs": True}  # as if probed to score another way
        collect_scores([rm], items, cache, {rm.fingerprint: ev}, progress=False)
        n3 = len(srv.requests)
    assert (n1 - n0, n2 - n1) == (2, 2) and n3 - n2 == 2  # the rerun: only the canary (here both texts)
    assert any("a fresh canary of 2 text(s) scored now matched them" in n for n in ev.notes)
    _close(ev.scores["p1|src"], PLAIN_SCORE)
    _close(ev.scores["p2|src"], Score(-2.1, 4, 11))
    rec = next(r for r in ev.records if r.get("probe_set") == "likelihood")
    assert rec["raw"]["route"] in ("echo", "prompt_logprobs") and rec["raw"]["http"]["status"] == 200


def test_another_model_behind_the_endpoint_sets_its_scores_aside(tmp_path: Path) -> None:
    """The freshness canary finds other answers under the same URL and model card: the cached scores are set aside
    with the answers, and the texts are scored again (the new model's numbers, not the old ones)."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model, collect_scores
    from provenance.evidence import ProbePlan
    from provenance.probeset import load
    from tests.test_endpoint_contracts import vllm_echo

    state = {"text": " w0", "shift": 0.0}

    def completions(h: Any) -> None:
        b = json.loads(h.server_requests[-1]["body"])
        echo = vllm_echo(b["prompt"]) if b.get("echo") else None
        if echo is not None:
            echo["token_logprobs"] = [None, *(v - state["shift"] for v in echo["token_logprobs"][1:])]
        out = _completion(echo)
        out["choices"][0]["text"] = (b["prompt"] if echo else "") + state["text"]
        _json(h, 200, out)

    cache = EvidenceCache(tmp_path / "cache")
    plan = ProbePlan(load("continuation"), 3, "output")
    items = [ScoreItem("p1|src", PLAIN.prompt, PLAIN.continuation, False)]
    with Stub(_models, completions, None) as srv:
        def run() -> Any:
            rm = resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1))
            ev = collect_model(rm, [plan], cache, progress=False)
            collect_scores([rm], items, cache, {rm.fingerprint: ev}, progress=False)
            return ev
        first = run()
        state.update(text=" other", shift=1.0)  # another model: other answers, other logprobs
        second = run()
    _close(first.scores["p1|src"], PLAIN_SCORE)
    _close(second.scores["p1|src"], Score(PLAIN_SCORE.logprob - 3.0, 3, 12))  # three tokens, each 1 nat lower
    assert any("answers changed since they were cached" in n for n in second.notes)
    assert list((tmp_path / "cache").rglob("*.stale-*"))
