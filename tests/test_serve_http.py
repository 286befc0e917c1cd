"""The HTTP backend against `provenance serve` on loopback, serving a real model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from provenance.audit import AuditConfig, run_audit
from provenance.errors import EndpointError, InputError
from provenance.models import Capability, Request, resolve
from tests.conftest import requires_models

pytestmark = [requires_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(noised_smol: Path) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "provenance", "serve", str(noised_smol), "--port", "0", "--name", "suspect-x"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the model is loaded and the socket is listening
        m = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        yield f"http://127.0.0.1:{m.group(1)}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_endpoint_identity(server: str, noised_smol: Path) -> None:
    model = resolve(server)  # no '#MODEL': the server's only model is chosen
    assert model.source["model"] == "suspect-x"
    local = resolve(str(noised_smol))
    assert model.source["server"]["fingerprint"] == local.fingerprint
    with pytest.raises(InputError, match="does not serve 'other'"):
        resolve(server + "#other")


def test_http_matches_local_backend(server: str, noised_smol: Path) -> None:
    reqs = [Request("The capital of France is", max_new_tokens=8, top_k=5),
            Request("Name three colours.", max_new_tokens=10, top_k=5, chat=True),
            Request("One, two, three,", max_new_tokens=0, top_k=5)]
    remote = resolve(server).load()
    local = resolve(str(noised_smol)).load()
    try:
        got, want = remote.generate(reqs), local.generate(reqs)
        assert Capability.TOP_LOGPROBS in remote.capabilities
        for g, w in zip(got, want):
            assert g.text == w.text
            assert g.top is not None and w.top is not None
            assert [t.token for t in g.top] == [t.token for t in w.top]
            assert g.top[0].logprob == pytest.approx(w.top[0].logprob, abs=1e-4)
            assert g.raw["http"]["status"] == 200 and len(g.raw["http"]["body_sha256"]) == 64
        assert remote.system_fingerprints and remote.returned_models == {"suspect-x"}
    finally:
        remote.close()
        local.close()


def test_bad_request_is_not_retried(server: str) -> None:
    import httpx

    with httpx.Client() as c:
        r = c.post(f"{server}/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    backend = resolve(server).load()
    backend.model = "nope"  # type: ignore[attr-defined]
    with pytest.raises(EndpointError, match="404"):
        backend.generate([Request("hi", max_new_tokens=2)])


def test_audit_through_http(server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Top-k access only (no weights) against the two packaged controls: two control lineages cannot support a
    behavioural verdict, so the audit warns before any query and ends inconclusive, naming each family's reason."""
    results = run_audit(AuditConfig(suspect=server, references=["smollm2-135m-instruct"], out=tmp_path / "o",
                                    budget=40, progress=False))
    assert "2 independent control lineage(s) (gemma, qwen)" in caplog.text  # said before any query
    assert any("inconclusive" in w for w in results["warnings"])
    ref = results["references"][0]
    assert ref["verdict"] == "inconclusive" and ref["p_value"] is None
    assert "needs at least 3 independent control lineages (has 2: gemma, qwen)" in ref["reason"]
    weights = next(t for t in ref["tests"] if t["name"] == "weight_alignment")
    assert weights["skipped"] and weights["p_value"] is None and "weight access" in ref["reason"]
    assert results["suspect"]["source"]["model"] == "suspect-x"
