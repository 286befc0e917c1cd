"""Prompt scoring end to end: a tiny real model served by `provenance serve`'s server on loopback, audited as an HTTP
suspect; its scores through HTTP equal the local backend's, and the likelihood family runs for it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from provenance.models import Capability, resolve
from provenance.models.base import ScoreRequest
from tests.conftest import requires_models

pytestmark = [requires_models, pytest.mark.slow]

# Through HTTP the prompt and continuation are tokenized together, by HFBackend separately; where both give the same
# tokens (a continuation starting with a space or a new word, after a chat template's newline) the two sums differ only
# by float32 rounding (one forward pass of the whole text there, a batched one here): well under this.
TOLERANCE = 1e-3  # nats, per scored text


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five one-layer Llama models (hidden size 32) on SmolLM2's tokenizer and chat template, one lineage each."""
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, save, tiny_config

    tok = _tokenizer()
    root = tmp_path_factory.mktemp("tiny-scoring")
    return {name: save(fresh_model(tiny_config(len(tok), 32, 1, init_range=0.5, bos=tok.bos_token_id,
                                               eos=tok.eos_token_id, pad=tok.eos_token_id), seed), tok, root / name,
                       name, lineage=name)
            for seed, name in enumerate(["suspect", "ref", "c1", "c2", "c3"], start=11)}


@pytest.fixture(scope="module")
def served(tiny_models: dict[str, Path]) -> Iterator[str]:
    from provenance.serve import ModelServer

    local = resolve(str(tiny_models["suspect"]))
    server = ModelServer(local.load(), "suspect-x", local.fingerprint, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_scores_through_http_equal_the_local_backend(served: str, tiny_models: dict[str, Path]) -> None:
    reqs = [ScoreRequest("The capital of France is", " Paris, a city of light."),
            ScoreRequest("Name three colours.", "Red, green and blue.", chat=True),
            ScoreRequest("Write one line about rivers.", "Rivers carry the rain home to the sea.", chat=True),
            # A character split over three tokens, each decoded alone to U+FFFD (offsets and texts then disagree).
            ScoreRequest("Write one happy line.", "Smile \U0001f600 and a caf\u00e9.", chat=True),
            ScoreRequest("Say it with a face:", " \U0001f600 ok \U0001f600"),
            ScoreRequest("", "A neutral passage of text, scored as it is.")]
    remote: Any = resolve(served).load()
    local = resolve(str(tiny_models["suspect"])).load()
    try:
        access, _ = remote.discover_access()
        assert access["echo"] and access["chat_prompt_logprobs"] and Capability.LOGITS in remote.capabilities
        got, want = remote.score(reqs), local.score(reqs)
        for g, w in zip(got[:5], want[:5]):
            assert abs(g.logprob - w.logprob) < TOLERANCE, (g, w)
            assert (g.n_tokens, g.n_bytes) == (w.n_tokens, w.n_bytes)
        # An empty prompt: SmolLM2's tokenizer adds no BOS, so the text's first token ("A") has no logprob through
        # HTTP (HFBackend scores it after its BOS token): one token and its byte fewer, the rest the same tokens.
        assert (got[5].n_tokens, got[5].n_bytes) == (want[5].n_tokens - 1, want[5].n_bytes - 1)
        assert got[5].logprob > want[5].logprob
    finally:
        remote.close()
        local.close()


def test_likelihood_family_runs_for_an_http_suspect(served: str, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from provenance.audit import AuditConfig, run_audit

    res = run_audit(AuditConfig(suspect=served, references=[str(tiny_models["ref"])],
                                controls=[str(tiny_models[c]) for c in ("c1", "c2", "c3")], out=tmp_path / "b",
                                budget=40, progress=False, identity_set=None))
    ll = next(t for t in res["references"][0]["tests"] if t["name"] == "reference_likelihood")
    assert ll["skipped"] is None and ll["p_value"] is not None and 0 < ll["p_value"] <= 1
    assert "logits" in res["access"][served]
    assert res["access_detail"][served]["echo"] and res["access_detail"][served]["chat_prompt_logprobs"]
    assert res["references"][0]["competence_check"]["ran"]
    from provenance.report.verify import verify

    assert verify(tmp_path / "b").ok
