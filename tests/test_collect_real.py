"""Collection on real models: cache hits, SIGKILL-and-resume with identical results, fingerprint mining."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from provenance.audit import AuditConfig, run_audit
from provenance.cache import EvidenceCache
from provenance.collect import ProbePlan, collect
from provenance.mine import distinctiveness, mine
from provenance.models import resolve
from provenance.probeset import load, load_file
from tests.conftest import requires_models, tiny_llama

pytestmark = [requires_models, pytest.mark.slow]


def test_second_collection_hits_cache(tmp_path: Path) -> None:
    cache = EvidenceCache(tmp_path / "evidence")
    plans = [ProbePlan(load("next-token"), 24), ProbePlan(load("continuation"), 8)]
    model = resolve("smollm2-135m-instruct")
    t0 = time.perf_counter()
    first = collect([model], plans, cache, progress=False)[model.fingerprint]
    t1 = time.perf_counter()
    second = collect([model], plans, cache, progress=False)[model.fingerprint]
    t2 = time.perf_counter()
    assert first.loaded and not second.loaded  # the second pass never loads the model
    for ps in ("next-token", "continuation"):
        assert {k: v.to_json() for k, v in first.answers[ps].items()} == {k: v.to_json() for k, v in second.answers[ps].items()}
    # Sequence log-likelihood comes from the generation pass itself.
    assert all(a.logprob is not None and a.logprob < 0 for a in first.answers["continuation"].values())
    print(f"\ncold collection {t1 - t0:.2f}s, cached {t2 - t1:.3f}s ({(t1 - t0) / max(t2 - t1, 1e-9):.0f}x)")


def _evidence_lines(cache_root: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text().splitlines() for p in (cache_root / "evidence").rglob("*.jsonl")}


def test_sigkill_mid_audit_then_resume(noised_smol: Path, isolated_cache: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "cache"
    fresh.mkdir()
    for sub in ("converted", "packaged"):
        os.symlink(isolated_cache / sub, fresh / sub)
    env = {**os.environ, "PROVENANCE_CACHE": str(fresh)}
    out = tmp_path / "bundle"
    # a real transformer of another lineage, queried in seconds (Gemma-3 took minutes)
    control = str(tiny_llama(tmp_path / "tiny-control", 7, "tiny control", "tiny"))
    args = [sys.executable, "-m", "provenance", "audit", "-s", str(noised_smol), "-r", "smollm2-135m-instruct",
            "-c", control, "--budget", "24", "--out", str(out), "--no-progress", "--batch-size", "4",
            "--likelihood-probes", "none", "--identity-probes", "none"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        lines = _evidence_lines(fresh)
        if sum(len(v) for v in lines.values()) >= 8:  # some probes done, most not
            break
        assert proc.poll() is None, "audit ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _evidence_lines(fresh)
    assert not (out / "results.json").exists()  # a killed audit never looks finished

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = _evidence_lines(fresh)
    for name, old in before.items():
        complete = [ln for ln in old if ln.endswith("}")]
        # finished probes were kept byte for byte (same send times), not repeated
        assert after[name][: len(complete)] == complete
    resumed = json.loads((out / "results.json").read_text())

    # The same audit, never interrupted, on the session's cache.
    clean = run_audit(AuditConfig(suspect=str(noised_smol), references=["smollm2-135m-instruct"], controls=[control],
                                  out=tmp_path / "clean", budget=24, progress=False, likelihood_set=None,
                                  identity_set=None))
    a, b = resumed["references"][0], clean["references"][0]
    assert a["verdict"] == b["verdict"]
    for ta, tb in zip(a["tests"], b["tests"]):
        assert ta["name"] == tb["name"]
        if ta["p_value"] is not None:
            assert ta["statistic"] == pytest.approx(tb["statistic"], abs=2e-3)
            assert ta["p_value"] == pytest.approx(tb["p_value"], rel=0.05, abs=1e-4)


def test_mined_prompts_are_more_distinctive(tmp_path: Path) -> None:
    """Mined against Gemma; judged against Qwen, which mining never saw, so the gain is not selection bias."""
    out = tmp_path / "mined.json"
    summary = mine("smollm2-135m-instruct", ["gemma-3-270m"], n=15, out=out, pool=60, progress=False)
    mined = load_file(out)
    assert len(mined.probes) == 15 and summary["mean_score_selected"] > summary["mean_score_pool"]
    assert json.loads(out.read_text())["origin"]["controls"][0]["spec"] == "gemma-3-270m"
    ref, held_out = resolve("smollm2-135m-instruct"), resolve("qwen2.5-coder-0.5b-instruct")
    pool = ProbePlan(load("continuation"), 60)
    ev = collect([ref, held_out], [pool], progress=False)
    ids = [p.id for p in pool.probes]
    scores = distinctiveness(ev[ref.fingerprint].answers["continuation"], [ev[held_out.fingerprint].answers["continuation"]], ids)
    chosen = {p.id for p in mined.probes}
    sel = np.array([s for i, s in zip(ids, scores) if i in chosen])
    rest = np.array([s for i, s in zip(ids, scores) if i not in chosen])
    assert sel.mean() > rest.mean()


def test_audit_refuses_mining_controls(tmp_path: Path) -> None:
    out = tmp_path / "mined.json"
    mine("smollm2-135m-instruct", ["gemma-3-270m"], n=5, out=out, pool=20, progress=False)
    from provenance.errors import InputError

    with pytest.raises(InputError, match="mined against a control"):
        run_audit(AuditConfig(suspect="qwen2.5-coder-0.5b-instruct", references=["smollm2-135m-instruct"],
                              controls=["gemma-3-270m"], out=tmp_path / "o", budget=10, continuation_set=str(out)))


def test_a_local_chat_prompt_is_transcribed_as_the_model_was_fed_it(tmp_path: Path) -> None:
    """A chat template may inject a system prompt (SmolLM2's names the model "SmolLM"): the transcript keeps the text
    the model actually read, beside the prompt (report checklist, gap 7)."""
    model = resolve(str(tiny_llama(tmp_path / "m", 5, "chat", "tiny")))
    ev = collect([model], [ProbePlan(load("identity"), 3), ProbePlan(load("continuation"), 2)],
                 EvidenceCache(tmp_path / "evidence"), progress=False)[model.fingerprint]
    chat = [r for r in ev.records if r["probe_set"] == "identity"]
    plain = [r for r in ev.records if r["probe_set"] == "continuation"]
    assert len(chat) == 3 and all(r["request"]["prompt"] in r["request"]["rendered"] for r in chat)
    assert all("SmolLM" in r["request"]["rendered"] and "<|im_start|>" in r["request"]["rendered"] for r in chat)
    assert plain and all("rendered" not in r["request"] for r in plain)  # plain text is fed as it is
    # What else decided each answer is transcribed too: no truncation, no stop strings, the model's EOS ids.
    for r in chat + plain:
        d = r["request"]["decoding"]
        assert d["top_p"] is None and d["top_k_truncation"] is None and d["stop_strings"] == []
        assert isinstance(d["eos_token_ids"], list)
