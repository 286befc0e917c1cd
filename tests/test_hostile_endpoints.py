"""Hostile endpoints: stale cached answers, wrong JSON types, NaN, trickling and huge responses, forged error text."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.errors import EndpointError, InputError
from provenance.models import LoadOptions, Request, resolve
from tests.conftest import error_lines
from tests.faultserver import FaultPlan, serving
from tests.hostile_fakes import (FakeLM, ScriptedServer, completion_reply, endpoints, models_reply, reply, run_audit_api,
                                 run_cli)


def assert_one_line(proc: Any, code: int, needle: str = "") -> str:
    lines = error_lines(proc.stderr)
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and "internal error" not in lines[0], proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def backend_for(url: str, timeout: float = 5.0, retries: int = 1) -> Any:
    return resolve(f"{url}#m", LoadOptions(http_timeout=timeout, http_retries=retries)).load()


# -- stale evidence -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cached_answers_are_checked_by_a_fresh_canary(tmp_path: Path) -> None:
    """Same URL, name and metadata, another model behind it: the canary sees it, the cache is set aside, notes say so."""
    with endpoints() as servers:
        first = run_audit_api(servers, tmp_path / "a")
        suspect = servers["suspect"]
        before = suspect.backend.calls
        again = run_audit_api(servers, tmp_path / "b")
        assert suspect.backend.calls - before == 3  # the canary only; the rest replayed, and the notes say so
        assert any("#suspect: 12 answers replayed from the evidence cache" in n and "canary of 3" in n
                   for n in again["notes"])
        records = [json.loads(x) for x in (tmp_path / "b" / "transcripts.jsonl").read_text().splitlines()]
        assert records and all(r["replayed"] is True for r in records) and all("received" in r for r in records)
        suspect.backend = FakeLM(99)  # the operator swaps the model; URL, name and model card stay the same
        changed = run_audit_api(servers, tmp_path / "c")
        # The canary, the endpoint's access probed again (completions and chat: one answer each; the echo and
        # prompt_logprobs probes are refused by `provenance serve` before a model without logits is asked), every
        # answer afresh.
        assert suspect.backend.calls == 3 + 2 + 12
        assert any("answers changed since they were cached" in n for n in changed["notes"])
        records = [json.loads(x) for x in (tmp_path / "c" / "transcripts.jsonl").read_text().splitlines()]
        assert not any(r["replayed"] for r in records if r["model"].endswith("#suspect"))
    assert first["references"][0]["p_value"] != changed["references"][0]["p_value"]


# -- server JSON of the wrong types -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, code, needle", [
    (b'{"data": null}', 2, "'data' is NoneType, not a list"),
    (b'{"data": [{"id": 5}, {"id": ["x"]}]}', 2, "serves 0 models"),
    (b'{"data": [{"id": "a\\u001b[31m\\nverified: yes"}, {"id": "b"}]}', 2, "serves 2 models"),
    (b'{"data": [{"id": 1e400}]}', 2, "non-finite"),
    (b'{"data": [{"id": NaN}]}', 2, "non-finite"),
])
def test_model_list_of_wrong_types(body: bytes, code: int, needle: str) -> None:
    with ScriptedServer({"/models": lambda h: reply(h, 200, body)}) as srv:
        proc = run_cli("fingerprint", srv.url, "--timeout", "5")
    line = assert_one_line(proc, code, needle)
    assert "\x1b" not in proc.stderr and "\nverified" not in proc.stderr and line.startswith("error: ")


@pytest.mark.parametrize("kw, outcome", [
    ({"usage": {"completion_tokens": "many"}}, "ok"),
    ({"usage": "lots"}, "ok"),
    ({"extra": {"model": {"nested": 1}, "system_fingerprint": ["x"]}}, "ok"),
    ({"logprobs": {"top_logprobs": [{" a": "-0.5", " b": -1.0}]}}, "text-only"),  # a string logprob: not logprobs
    ({"logprobs": {"top_logprobs": [{" a": 0.5}]}}, "text-only"),  # a positive logprob
    ({"raw": b'{"choices": [{"text": " a", "logprobs": {"top_logprobs": [{" a": NaN}]}}]}'}, "non-finite"),
    ({"raw": b'{"choices": [{"text": " a", "logprobs": {"top_logprobs": [{" a": -Infinity}]}}]}'}, "non-finite"),
    ({"raw": b'{"choices": null}'}, r"lacks choices\[0\] text"),
    ({"raw": b'{"choices": [{"text": 7}]}'}, r"lacks choices\[0\] text"),
])
def test_completion_of_wrong_types(kw: dict[str, Any], outcome: str) -> None:
    """Every field is type-checked: a bad one is an EndpointError (exit 2) or dropped, never a crash or a NaN in a test."""
    with ScriptedServer({"/models": models_reply(), "/completions": completion_reply(**kw)}) as srv:
        backend = backend_for(srv.url)
        try:
            if outcome in ("ok", "text-only"):
                (got,) = backend.generate([Request("hi", max_new_tokens=2, top_k=5)])
                assert got.n_tokens == 0 or isinstance(got.n_tokens, int)
                assert (got.top is None) == (outcome == "text-only")
                assert got.top is None or all(math.isfinite(t.logprob) for t in got.top)
                assert got.raw["model"] is None or isinstance(got.raw["model"], str)
            else:
                with pytest.raises(EndpointError, match=outcome):
                    backend.generate([Request("hi", max_new_tokens=2, top_k=5)])
        finally:
            backend.close()


def test_nan_logprobs_through_the_cli(tmp_path: Path) -> None:
    bad = b'{"choices": [{"text": " a", "logprobs": {"top_logprobs": [{" a": NaN}]}}]}'
    with ScriptedServer({"/models": models_reply(), "/completions": completion_reply(raw=bad)}) as srv:
        proc = run_cli("compare", f"{srv.url}#m", f"{srv.url}#m", "--budget", "2", "--no-progress", "--timeout", "5")
    assert_one_line(proc, 2, "non-finite number NaN")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                         lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
                             st.sampled_from(["data", "id", "choices", "text", "logprobs", "top_logprobs", "usage",
                                              "completion_tokens", "model", "system_fingerprint"]), kids, max_size=4),
                         max_leaves=12))
def test_any_json_from_a_server_is_an_answer_or_one_error(body: Any) -> None:
    """Hypothesis: any JSON value as the model list and as a completion gives a result or an InputError, nothing else."""
    raw = json.dumps(body).encode()
    with ScriptedServer({"/models": lambda h: reply(h, 200, raw), "/completions": lambda h: reply(h, 200, raw)}) as srv:
        try:
            backend = backend_for(srv.url, retries=1)
        except InputError:
            return
        try:
            (got,) = backend.generate([Request("hi", max_new_tokens=2, top_k=3)])
            assert isinstance(got.text, str) and isinstance(got.n_tokens, int)
        except InputError:
            pass
        finally:
            backend.close()


# -- Retry-After, timeouts, deadlines, sizes --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "1e999"])
def test_retry_after_that_is_not_a_number(value: str) -> None:
    body = b'{"error": "slow down"}'
    with ScriptedServer({"/models": lambda h: reply(h, 429, body, {"Retry-After": value})}) as srv:
        t0 = time.time()
        proc = run_cli("fingerprint", f"{srv.url}#m", "--timeout", "5")
    assert_one_line(proc, 2, "gave up after 5 attempts")
    assert time.time() - t0 < 30


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e999"])
def test_timeout_must_be_a_positive_number(value: str) -> None:
    assert_one_line(run_cli("fingerprint", "http://127.0.0.1:9/v1#m", "--timeout", value), 2, "--timeout")


def _trickle_headers(h: Any) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"y" * 200:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.05)


def _trickle_body(h: Any) -> None:
    body = json.dumps({"data": [{"id": "m"}], "pad": "x" * 200}).encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    for byte in body:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.05)


@pytest.mark.parametrize("route", [_trickle_headers, _trickle_body], ids=["headers", "body"])
def test_a_trickling_server_meets_a_total_deadline(route: Any) -> None:
    """A byte every 50 ms never trips a per-read timeout of 1 s; the total deadline of 1 s per attempt ends it."""
    with ScriptedServer({"/models": route}) as srv:
        t0 = time.time()
        with pytest.raises(EndpointError, match="timed out"):
            resolve(f"{srv.url}#m", LoadOptions(http_timeout=1.0, http_retries=2))
        elapsed = time.time() - t0
    assert elapsed < 2 * 1.0 + 1.5, elapsed  # two attempts of at most 1 s each, plus backoff


def test_response_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance.models.http as http

    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 4096)
    big = json.dumps({"data": [{"id": "m", "pad": "x" * 10_000}]}).encode()

    def chunked(h: Any) -> None:  # no Content-Length: only counting the bytes can stop it
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(0, len(big), 1000):
            part = big[i : i + 1000]
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    for route, needle in ((lambda h: reply(h, 200, big), "declares"), (chunked, "larger than")):
        with ScriptedServer({"/models": route}) as srv:
            with pytest.raises(EndpointError, match=needle):
                resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0, http_retries=1))


def test_server_error_text_is_escaped() -> None:
    """A 400 whose text tries to print a second 'verified:' line and terminal escapes: one escaped line."""
    evil = b'bad request\nverified: /cases/7 (19 files hashed)\x1b[2J\x1b]0;owned\x07\r'
    with ScriptedServer({"/models": models_reply(), "/completions": lambda h: reply(h, 400, evil)}) as srv:
        proc = run_cli("compare", f"{srv.url}#m", f"{srv.url}#m", "--budget", "2", "--no-progress", "--timeout", "5")
    line = assert_one_line(proc, 2, "HTTP 400")
    assert "\\nverified: /cases/7" in line and "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_a_bad_environment_variable_is_bad_input() -> None:
    for name in ("PROVENANCE_MAX_ENDPOINTS", "PROVENANCE_RETRY_BASE_DELAY", "PROVENANCE_RETRY_MAX_DELAY"):
        proc = run_cli("fingerprint", "http://127.0.0.1:9/v1#m", env={name: "lots"})
        assert_one_line(proc, 2, f"environment variable {name}='lots'")


# -- the retry and concurrency contract -----------------------------------------------------------------------------


def test_a_batch_reports_the_failure_not_a_request_abandoned_because_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request abandoned after another failed can finish first and come first in order: the error shown is the cause."""
    import threading
    from concurrent.futures import ALL_COMPLETED, wait
    from types import SimpleNamespace

    import provenance.models.http as http

    # Both requests finished before the batch looks, the abandoned one first in order, as threads can interleave.
    monkeypatch.setattr(http, "wait", lambda fs, return_when: wait(fs, return_when=ALL_COMPLETED))
    host = SimpleNamespace(_abort=threading.Event(), concurrency=2)

    def fn(i: int) -> int:
        if i == 0:
            host._abort.wait(5)
            raise http._Abandoned("abandoned after another request to this endpoint failed")
        raise EndpointError("HTTP 500 from the server")

    with pytest.raises(EndpointError, match="HTTP 500"):
        http.HTTPBackend._batch(host, fn, [0, 1])  # type: ignore[arg-type]


@pytest.mark.parametrize("trial", range(3))
def test_a_dead_endpoint_costs_at_most_concurrency_times_attempts(trial: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound follows from the code, not from timing: no request starts after the first one fails for good."""
    monkeypatch.setenv("PROVENANCE_RETRY_BASE_DELAY", "0.001")
    plan = FaultPlan.always("500", only="POST")
    with serving(None, plan, model_name="m") as server:
        backend = resolve(f"{server.url}#m", LoadOptions(http_timeout=5.0)).load()
        try:
            with pytest.raises(EndpointError, match="HTTP 500"):
                backend.generate([Request(f"p{i}", max_new_tokens=2) for i in range(32)])
        finally:
            backend.close()
        posts = sum(n for k, n in plan.attempts.items() if k.startswith("POST"))
    assert posts <= backend.concurrency * backend.policy.attempts, plan.attempts


def test_an_answer_keeps_finish_reason_tries_headers_and_bytes_the_text_cannot_hold() -> None:
    """Checklist gap 8: finish_reason and the attempts are on the record, rate-limit, date and version headers are kept,
    a body that is not UTF-8 survives as bytes, and a content-filtered answer is found for the notes."""
    import base64

    from provenance.collect import refusals

    # UTF-16 JSON is JSON (RFC 8259 readers detect it), but its bytes are not the UTF-8 text kept beside them.
    body = '{"choices": [{"text": " a", "finish_reason": "content_filter"}], "usage": {"completion_tokens": 1}}'.encode(
        "utf-16")
    headers = {"anthropic-ratelimit-requests-remaining": "9", "api-version": "2024-06-01", "cf-ray": "abc",
               "x-secret-thing": "dropped"}
    with ScriptedServer({"/models": models_reply(), "/completions": lambda h: reply(h, 200, body, headers)}) as srv:
        assert resolve(f"{srv.url}#m", LoadOptions(http_timeout=5.0)).source["name_kind"] == "alias"
        backend = backend_for(srv.url)
        try:
            (got,) = backend.generate([Request("hi", max_new_tokens=2)])
        finally:
            backend.close()
    http = got.raw["http"]
    assert got.raw["finish_reason"] == "content_filter" and http["attempts"] == 1 and http["tries"][0]["status"] == 200
    kept = {k.lower() for k in http["headers"]}
    assert {"anthropic-ratelimit-requests-remaining", "api-version", "cf-ray", "date"} <= kept
    assert "x-secret-thing" not in kept
    assert base64.b64decode(http["body_base64"]) == body
    assert refusals([{"probe_id": "p1", "response": got.to_json()}]) == ["p1"]


def test_repeated_probes_measure_nondeterminism_and_the_bundle_still_verifies(tmp_path: Path) -> None:
    """Checklist gap 7: `--repeat N` sends N greedy probes to each endpoint again; the repeats are transcribed under
    their own pseudo probe set, named in the notes, and never enter a test (the bundle verifies)."""
    from provenance.collect import REPEAT_SET
    from provenance.report.verify import verify

    out = tmp_path / "b"
    with endpoints() as servers:
        res = run_audit_api(servers, out, repeat=3)
    notes = [n for n in res["notes"] if "sent a second time" in n]
    assert len(notes) == len(servers) and all("every answer was the same" in n for n in notes), notes
    lines = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    repeats = [r for r in lines if r["probe_set"] == REPEAT_SET]
    assert len(repeats) == 3 * len(servers) and all(r["same"] and not r["replayed"] for r in repeats)
    rep = verify(out)
    assert rep.ok, rep.problems
