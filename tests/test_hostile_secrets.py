"""Credentials: per endpoint, never implicit, never over plain http off loopback, never written or printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.secrets import printable, redact, register
from tests.hostile_fakes import ScriptedServer, audit_args, completion_reply, endpoints, models_reply, reply, run_cli
from tests.conftest import error_lines

KEY = "sk-test-4f9a1c0e7b2d"


def auth_headers(srv: ScriptedServer) -> list[str | None]:
    return [r["headers"].get("Authorization") for r in srv.requests]


def one_error(proc: Any, needle: str) -> str:
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    return lines[0]


def test_openai_api_key_is_never_read_implicitly() -> None:
    """It was sent to every endpoint, the suspect's included."""
    with ScriptedServer({"/models": models_reply()}) as a, ScriptedServer({"/models": models_reply()}) as b:
        proc = run_cli("fingerprint", f"{a.url}#m", f"{b.url}#m",
                       env={"OPENAI_API_KEY": KEY, "PROVENANCE_FINGERPRINT_API_KEY": f"x={KEY}"})
    assert proc.returncode == 0, proc.stderr
    assert auth_headers(a) == [None] and auth_headers(b) == [None]


def test_a_key_goes_to_the_endpoint_it_names_only() -> None:
    with ScriptedServer({"/models": models_reply()}) as a, ScriptedServer({"/models": models_reply()}) as b:
        proc = run_cli("fingerprint", f"{a.url}#m", f"{b.url}#m", "--api-key-env", f"{a.url}#m=REF_KEY",
                       env={"REF_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    assert auth_headers(a) == [f"Bearer {KEY}"] and auth_headers(b) == [None]
    assert KEY not in proc.stdout + proc.stderr


def test_key_options_are_checked() -> None:
    one_error(run_cli("fingerprint", "http://127.0.0.1:9/v1#m", "--api-key", KEY), "--api-key takes SPEC=KEY")
    line = one_error(run_cli("fingerprint", "http://127.0.0.1:9/v1#m", "--api-key", f"http://other:9/v1#m={KEY}"),
                     "not an http(s) endpoint of this command")
    assert KEY not in line
    one_error(run_cli("fingerprint", "http://127.0.0.1:9/v1#m", "--api-key-env", "http://127.0.0.1:9/v1#m=NOPE_UNSET"),
              "environment variable NOPE_UNSET is not set")


def test_no_key_over_plain_http_off_loopback() -> None:
    """Refused before any connection (10.255.255.1 would time out if it were tried)."""
    spec = "http://10.255.255.1:8000/v1#m"
    line = one_error(run_cli("fingerprint", spec, "--api-key-env", f"{spec}=K", "--timeout", "30", env={"K": KEY},
                             timeout=20), "refusing to send an API key")
    assert KEY not in line
    line = one_error(run_cli("fingerprint", "http://user:pw-9d8e7f@10.255.255.1:8000/v1#m", timeout=20),
                     "refusing to send the credentials in its URL")
    assert "pw-9d8e7f" not in line


def test_password_in_a_spec_url_is_written_nowhere(tmp_path: Path) -> None:
    """It reached manifest.json, results.json, transcripts, report.html, the CSV tables, stdout and error lines."""
    password = "hunter2-c4d5e6"
    out = tmp_path / "bundle"
    with endpoints() as servers:
        args = audit_args(servers, out)
        suspect = args[args.index("-s") + 1]
        args[args.index("-s") + 1] = suspect.replace("http://", f"http://alice:{password}@")
        proc = run_cli(*args)
        json_proc = run_cli(*audit_args(servers, tmp_path / "b2", "--json"),
                            *("-c", suspect.replace("http://", f"http://bob:{password}@").replace("#suspect", "#x")))
    assert proc.returncode == 0, proc.stderr
    assert password not in proc.stdout + proc.stderr + json_proc.stdout + json_proc.stderr
    for f in out.rglob("*"):
        if f.is_file():
            assert password.encode() not in f.read_bytes(), f
    assert suspect in (out / "results.json").read_text()  # the spec, without its userinfo
    with ScriptedServer({"/models": models_reply()}) as srv:
        proc = run_cli("fingerprint", srv.url.replace("http://", f"http://alice:{password}@") + "#m")
    assert proc.returncode == 0 and password not in proc.stdout + proc.stderr
    assert auth_headers(srv)[0] is not None and auth_headers(srv)[0].startswith("Basic ")


def test_echoed_credentials_are_not_cached(tmp_path: Path) -> None:
    """A server echoing the Authorization header (in a kept header and in the body) leaves no key in the cache."""
    def echo(h: Any) -> None:
        auth = h.headers.get("Authorization", "")
        body = json.dumps({"choices": [{"text": " ok", "logprobs": {"top_logprobs": [{" ok": -0.1}]}}],
                           "usage": {"completion_tokens": 1}, "echo": auth}).encode()
        reply(h, 200, body, {"x-request-auth": auth, "openai-organization": auth})

    cache = tmp_path / "cache"
    with ScriptedServer({"/models": models_reply(), "/completions": echo}) as srv:
        spec = f"{srv.url}#m"
        proc = run_cli("compare", spec, spec, "--budget", "2", "--no-progress", "--api-key-env", f"{spec}=K",
                       env={"K": KEY, "PROVENANCE_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert any(h == f"Bearer {KEY}" for h in auth_headers(srv))
    cached = [f for f in cache.rglob("*") if f.is_file()]
    assert cached and not any(KEY.encode() in f.read_bytes() for f in cached)
    assert KEY not in proc.stdout + proc.stderr


def test_error_lines_never_show_a_password() -> None:
    proc = run_cli("fingerprint", "http://carol:pw-0a1b2c@127.0.0.1:9/v1#m", "--timeout", "1")
    one_error(proc, "connection failed")
    assert "pw-0a1b2c" not in proc.stderr


@settings(max_examples=200, deadline=None)
@given(before=st.text(max_size=30), after=st.text(max_size=30), secret=st.text(min_size=8, max_size=24).filter(str.strip))
def test_redact_and_printable(before: str, after: str, secret: str) -> None:
    """Hypothesis: a registered secret never survives redact(); printable() is one line without control characters."""
    from provenance import secrets

    register(secret)
    try:
        assert secret not in redact(before + secret + after) or secret in (before + after)
        line = printable(before + secret + after)
    finally:
        secrets._secrets.discard(secret)  # the registry is process-wide: leave no random text masked for later tests
    assert "\n" not in line and "\r" not in line and not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in line)
    assert "p4ss" not in redact(f"see https://u:p4ss@{before!r}.example/v1 now")


def test_a_short_credential_is_masked_where_it_is_sent_not_in_the_evidence(caplog: pytest.LogCaptureFixture,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A local server's key "gg" (or user "a") masked everywhere rewrote answers and JSON keys ("flagged" ->
    "fla***ed"): a short credential is masked in URLs and Authorization values only, with one warning."""
    import logging

    from provenance import secrets
    from provenance.secrets import endpoint_credentials, redact_obj

    monkeypatch.setattr(secrets, "_warned_short", False)
    with caplog.at_level(logging.WARNING, logger="provenance"):
        clean, creds = endpoint_credentials(["http://gg@127.0.0.1:9/v1#m", "http://127.0.0.1:8/v1#n"],
                                            api_keys=["http://127.0.0.1:8/v1#n=k1"])
    assert clean == ["http://127.0.0.1:9/v1#m", "http://127.0.0.1:8/v1#n"]
    assert dict(creds) == {"http://127.0.0.1:9/v1#m": "Bearer gg", "http://127.0.0.1:8/v1#n": "Bearer k1"}
    assert len([r for r in caplog.records if "under 8" in r.getMessage()]) == 1  # once, not per credential
    record = {"flagged": True, "answer": "gg, a good game; k1 is a key", "url": "http://gg@127.0.0.1:9/v1",
              "headers": {"Authorization": "Bearer gg"}, "other": {"Authorization": "Bearer k1"}}
    out = redact_obj(record)
    assert out["flagged"] is True and out["answer"] == record["answer"]  # the evidence is untouched
    assert "gg" not in json.dumps([out["url"], out["headers"]]) and "k1" not in json.dumps(out["other"])
    register("a-long-key-123")  # a real secret is still masked wherever it appears
    assert redact("the server said: bad key a-long-key-123") == "the server said: bad key ***"
