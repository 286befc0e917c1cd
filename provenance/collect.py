"""Evidence collection: load each model in turn, run every probe once (cached, resumable), release it."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np

from provenance.cache import EvidenceCache, entry_key
from provenance.fsutil import atomic_write_bytes
from provenance.evidence import LIKELIHOOD_SET, Completion, ModelEvidence, ProbePlan, Score, ScoreItem
from provenance.models import Capability, Request, ResolvedModel
from provenance.models.access import ACCESS_PROBE_VERSION, EndpointAccess, score_variant, variant
from provenance.models.base import ScoreRequest
from provenance.probeset import ProbeSet

log = logging.getLogger(__name__)


def request_seed(sampling_seed: int, text: str) -> int:
    """The seed of one sampled answer: the audit's seed and the prompt, nothing else (so a prompt's sampled answer is
    the same at any budget, in any batch, from a cold or a warm cache)."""
    return int.from_bytes(hashlib.sha256(f"{sampling_seed}|{text}".encode()).digest()[:4], "big")


def _request(ps: ProbeSet, text: str, sampling_seed: int = 0) -> Request:
    d = ps.decoding
    seed = request_seed(sampling_seed, text) if d.temperature > 0 else None
    return Request(prompt=text, max_new_tokens=d.max_new_tokens, top_k=d.top_k, chat=ps.chat, temperature=d.temperature,
                   seed=seed)


def _decoding_key(ps: ProbeSet, sampling_seed: int, access: EndpointAccess | None = None) -> dict[str, Any]:
    d = ps.decoding.to_json()
    if ps.decoding.temperature > 0:
        d = {**d, "sampling_seed": sampling_seed}
    how = variant(access, ps.chat, ps.decoding.top_k)  # e.g. sent as chat to a chat-only endpoint: other answers
    return {**d, "access": how} if how else d


REPEAT_SET = "repeat"  # the pseudo probe set of greedy probes sent a second time (`--repeat`: nondeterminism)
ACCESS_SET = "endpoint-access"  # the pseudo probe set under which an endpoint's capability probes are transcribed


def _access_key(model: ResolvedModel) -> dict[str, Any]:
    return entry_key(model.fingerprint, ACCESS_SET, {"version": ACCESS_PROBE_VERSION}, "access")


def endpoint_access(model: ResolvedModel, cache: EvidenceCache) -> tuple[dict[str, Any] | None, list[dict[str, Any]], bool]:
    """(access found, the probe exchanges as transcript records, replayed from the cache) for a remote model.

    Probed once per endpoint and cached with its answers (a rerun replays it; `--fresh` probes again); the summary
    record at the end carries the access as JSON, so a bundle's transcript says what was probed and what was found.
    """
    key = _access_key(model)
    recs = {} if model.options.fresh else cache.load(key)
    if "summary" in recs:
        return recs["summary"]["response"]["access"], list(recs.values()), True
    backend = model.load()
    try:
        found = backend.discover_access()
    finally:
        backend.close()
    if found is None:
        return None, [], False
    access, records = found
    now = time.time()
    records = [*records, {"probe_id": "summary", "request": {"prompt": ""},
                          "response": {"text": "", "n_tokens": 0, "access": access}, "sent": now, "received": now}]
    cache.append(key, records)
    return access, records, False


def collect_model(model: ResolvedModel, plans: Sequence[ProbePlan], cache: EvidenceCache, *, batch: int = 16,
                  progress: bool = True, want_weights: bool = True, sampling_seed: int = 0,
                  repeat: int = 0) -> ModelEvidence:
    """Probe one model with every plan; answers already in the cache are reused, the rest are appended as they come."""
    fp = model.fingerprint
    access_recs: list[dict[str, Any]] = []
    access_replayed = False
    if model.remote:  # what the endpoint serves decides how each probe is sent, and so the cache keys
        model.access, access_recs, access_replayed = endpoint_access(model, cache)
    access = EndpointAccess.from_json(model.access) if model.access is not None else None
    keys = {p.probe_set.id: entry_key(fp, p.probe_set.sha256, _decoding_key(p.probe_set, sampling_seed, access),
                                      p.probe_set.mode, model.numerics) for p in plans}
    fresh = model.remote and model.options.fresh  # `--fresh`: nothing of this endpoint's is replayed
    cached = {p.probe_set.id: {} if fresh else cache.load(keys[p.probe_set.id]) for p in plans}
    fresh_notes: list[str] = [f"{model.label}: --fresh: every answer collected anew (the evidence cache was not read)"
                              ] if fresh else []
    if model.remote and not fresh:  # an endpoint may serve another model under the same name: check first
        from provenance.freshness import check_endpoint_cache

        had = any(cached.values())
        cached, fresh_notes = check_endpoint_cache(model, plans, cached, keys, cache,
                                                   lambda ps, text: _request(ps, text, sampling_seed))
        changed = had and not any(cached.values())
        if changed:  # the scores the other model gave are not this one's either
            cache.retire(score_key(model))
        if changed and model.access is not None and access_replayed:
            # Another model now answers: what it serves is probed again too (its answers may go another way).
            cache.retire(_access_key(model))
            model.access, access_recs, access_replayed = endpoint_access(model, cache)
            cache.retire(score_key(model))  # under the access found now too (another scoring route, another key)
            access = EndpointAccess.from_json(model.access) if model.access is not None else None
            keys = {p.probe_set.id: entry_key(fp, p.probe_set.sha256, _decoding_key(p.probe_set, sampling_seed, access),
                                              p.probe_set.mode, model.numerics) for p in plans}
    replayed = {ps_id: set(c) for ps_id, c in cached.items()}  # answered from the cache, not in this run
    missing = {p.probe_set.id: [pr for pr in p.probes if pr.id not in cached[p.probe_set.id]] for p in plans}
    meta = cache.load_meta(fp)
    wpath = cache.weights_path(fp)
    is_local = not model.remote
    need_weights = want_weights and is_local and not wpath.is_file()
    if need_weights:  # read straight from the weight files when they allow it: no model is loaded for a few matrices
        from provenance.models.weightfile import sketch_from_files

        sketch = sketch_from_files(model)
        if sketch is not None:
            _save_sketch(wpath, sketch)
            need_weights = False
    # An endpoint's capabilities follow from its access (prompt scoring: `logits`): probed anew (another probe version,
    # another model behind it), they are read from a backend again, not from the cached meta of the old access.
    stale_access = model.remote and meta is not None and meta.get("access") != model.access
    need_load = any(missing.values()) or meta is None or need_weights or stale_access

    backend = None
    seen_before = (meta or {}).get("endpoint")  # kept when this load asks the endpoint nothing (a stale access only)
    if need_load:
        t0 = time.time()
        backend = model.load()
        log.info("loaded %s in %.1fs", model.label, time.time() - t0)
        meta = {"capabilities": sorted(c.value for c in backend.capabilities), "tokenizer_id": backend.tokenizer_id}
        if model.remote:
            meta["access"] = model.access
        else:  # whether a chat prompt is rendered, so a replay can tell an unrendered old record from a plain model
            meta["chat_template"] = backend.rendered("", True) is not None
        if want_weights and is_local and not wpath.is_file():
            sketch = backend.weight_sketch()
            if sketch is not None:
                _save_sketch(wpath, sketch)
    try:
        for plan in plans:
            ps = plan.probe_set
            todo = missing[ps.id]
            if not todo:
                continue
            assert backend is not None
            bar = _bar(len(todo), f"{_short(model.label)} · {ps.id}", progress)
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                sent = time.time()
                answers = backend.generate([_request(ps, pr.text, sampling_seed) for pr in chunk])
                received = time.time()
                recs = [{"probe_id": pr.id, "request": _rendered(backend, _request(ps, pr.text, sampling_seed).to_json()),
                         "response": a.to_json(), "sent": sent, "received": received} for pr, a in zip(chunk, answers)]
                cache.append(keys[ps.id], recs)
                for r in recs:
                    cached[ps.id][r["probe_id"]] = r
                bar.update(len(chunk))
            bar.close()
        if backend is not None and is_local:
            # Chat records cached before transcripts carried the rendered prompt get it now, from the same chat
            # template (the model's fingerprint covers its tokenizer files, so the template is the one that ran).
            for ps_id, recs_by_id in cached.items():
                for pid, rec in recs_by_id.items():
                    if rec["request"].get("chat") and "rendered" not in rec["request"]:
                        recs_by_id[pid] = {**rec, "request": _rendered(backend, rec["request"])}
        if backend is not None:
            http_caps = backend.capabilities  # an endpoint may have turned out to omit logprobs
            meta["capabilities"] = sorted(c.value for c in http_caps)
            if hasattr(backend, "system_fingerprints"):
                meta["endpoint"] = {"system_fingerprints": sorted(backend.system_fingerprints),
                                    "returned_models": sorted(backend.returned_models)}
                if not any(missing.values()) and seen_before:
                    meta["endpoint"] = seen_before
            cache.save_meta(fp, meta)
        repeats: list[dict[str, Any]] = []
        if repeat and model.remote:
            backend = backend if backend is not None else model.load()
            repeats = _repeat(backend, plans, cached, repeat, sampling_seed)
    finally:
        if backend is not None:
            backend.close()

    assert meta is not None
    if access is not None:
        meta = {**meta, "endpoint": {**(meta.get("endpoint") or {"system_fingerprints": [], "returned_models": []}),
                                     "access": model.access}}
    ev = ModelEvidence(model=model.identity(), capabilities=frozenset(meta["capabilities"]), tokenizer_id=meta.get("tokenizer_id"),
                       loaded=backend is not None)
    for plan in plans:
        ps = plan.probe_set
        ev.answers[ps.id] = {}
        for pr in plan.probes:
            rec = cached[ps.id][pr.id]
            ev.answers[ps.id][pr.id] = Completion.from_json(rec["response"])
            ev.records.append({"model": model.label, "fingerprint": fp, "probe_set": ps.id,
                               "probe_set_sha256": ps.sha256, **rec, "replayed": pr.id in replayed[ps.id]})
    unrendered = sum(1 for r in ev.records if r["request"].get("chat") and "rendered" not in r["request"])
    if is_local and unrendered and meta.get("chat_template") is not False:
        ev.notes.append(f"{model.label}: {unrendered} chat record(s) replayed from the evidence cache do not carry the "
                        "prompt as the chat template rendered it (cached before transcripts recorded it, and the model "
                        "was not loaded in this run); an audit with an empty cache records it")
    for rec in access_recs:
        ev.records.append({"model": model.label, "fingerprint": fp, "probe_set": ACCESS_SET,
                           "probe_set_sha256": ACCESS_PROBE_VERSION, **rec, "replayed": access_replayed})
    if access is not None:
        ev.notes.append(f"{model.label}: endpoint access ({'probed earlier, from the evidence cache' if access_replayed else 'probed now'}): "
                        f"{access.summary()}")
        ev.notes.extend(f"{model.label}: {r}" for r in access.reasons)
        # What the request body leaves to the server: its defaults decided these, and the API does not report them.
        ev.notes.append(f"{model.label}: requests set no top_p, top_k truncation, penalty or stop sequence: the "
                        "server's defaults applied, which it does not report (each request body is transcribed as sent)")
    ev.notes.extend(fresh_notes)
    sha = {p.probe_set.id: p.probe_set.sha256 for p in plans}
    for rec in repeats:
        ev.records.append({"model": model.label, "fingerprint": fp, "probe_set": REPEAT_SET,
                           "probe_set_sha256": sha[rec["repeat_of"]], **rec, "replayed": False})
    if repeats:
        differ = [r["probe_id"] for r in repeats if not r["same"]]
        ev.notes.append(f"{model.label}: {len(repeats)} greedy probe(s) sent a second time: " + (
            "every answer was the same" if not differ else
            f"{len(differ)} answered differently ({', '.join(differ[:5])}): the endpoint is not deterministic at "
            "temperature 0, or changed during the run"))
    if model.source.get("name_kind") == "alias":
        ev.notes.append(f"{model.label}: '{model.source.get('model')}' names no dated snapshot: the provider may serve "
                        "another model under it later (the fingerprint records what the server reported now)")
    refused = refusals(ev.records)
    if refused:
        ev.notes.append(f"{model.label}: {len(refused)} answer(s) were refusals or stopped by a content filter "
                        f"({', '.join(refused[:5])}{', ...' if len(refused) > 5 else ''}); they enter the tests as "
                        "the text the endpoint returned")
    ev.endpoint = meta.get("endpoint")
    if ev.endpoint and len(ev.endpoint["system_fingerprints"]) > 1:
        ev.notes.append(f"{model.label}: the endpoint's system_fingerprint changed during collection "
                        f"({', '.join(ev.endpoint['system_fingerprints'])})")
    if ev.endpoint and ev.endpoint["returned_models"] and ev.endpoint["returned_models"] != [model.source.get("model")]:
        ev.notes.append(f"{model.label}: the endpoint answered as {ev.endpoint['returned_models']}, "
                        f"not only the requested '{model.source.get('model')}'")
    if Capability.TOP_LOGPROBS.value not in ev.capabilities:
        ev.notes.append("no top-k logprobs: next-token tests skipped for this model")
    if wpath.is_file():
        with np.load(wpath) as z:
            ev.model_type = str(z["__model_type__"])
            ev.weights = {k: z[k] for k in z.files if k != "__model_type__"}
    return ev


def _save_sketch(path: Any, sketch: dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, __model_type__=np.array(str(sketch["model_type"])), **sketch["tensors"])
    atomic_write_bytes(path, buf.getvalue())


MAX_CONCURRENT_ENDPOINTS: int | None = None  # an override (tests); None: PROVENANCE_MAX_ENDPOINTS, default 8


def max_concurrent_endpoints() -> int:
    """PROVENANCE_MAX_ENDPOINTS (default 8), read when used: a bad value is one error line, not an import crash."""
    from provenance.envvars import env_int

    if MAX_CONCURRENT_ENDPOINTS is not None:
        return MAX_CONCURRENT_ENDPOINTS
    return env_int("PROVENANCE_MAX_ENDPOINTS", 8, 1, 256)


def _repeat(backend: Any, plans: Sequence[ProbePlan], answered: Mapping[str, Mapping[str, Any]], n: int,
            sampling_seed: int) -> list[dict[str, Any]]:
    """The first `n` greedy probes sent again, each recorded beside whether it matches the answer collected (or
    replayed) for the audit: an endpoint's nondeterminism, measured instead of assumed. Never part of any test."""
    picks = [(plan.probe_set, pr) for plan in plans if plan.probe_set.decoding.temperature == 0
             for pr in plan.probes if pr.id in answered[plan.probe_set.id]][:n]
    if not picks:
        return []
    requests = [_request(ps, pr.text, sampling_seed) for ps, pr in picks]
    sent = time.time()
    answers = backend.generate(requests)
    received = time.time()
    return [{"probe_id": pr.id, "repeat_of": ps.id, "request": req.to_json(), "response": a.to_json(), "sent": sent,
             "received": received, "same": a.text == answered[ps.id][pr.id]["response"].get("text")}
            for (ps, pr), req, a in zip(picks, requests, answers)]


def refusals(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Probe ids of the answers an endpoint marked as a refusal (chat `message.refusal`) or cut by a content filter
    (`finish_reason` "content_filter"), in transcript order."""
    out = []
    for rec in records:
        raw = (rec.get("response") or {}).get("raw") or {}
        if raw.get("refusal") or raw.get("finish_reason") == "content_filter":
            out.append(str(rec.get("probe_id")))
    return out


def _rendered(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The request as transcribed: with `rendered`, the text a local model was fed for a chat prompt (its chat
    template's system prompt included), when that differs from the prompt itself; and for a local model's generation,
    `decoding`: what else decided the answer (truncation, penalties, stop tokens: `Backend.decoding_details`)."""
    text = backend.rendered(request["prompt"], bool(request.get("chat")))
    out = {**request, "rendered": text} if text is not None and text != request["prompt"] else dict(request)
    details = backend.decoding_details() if "max_new_tokens" in request and "decoding" not in request else None
    return {**out, "decoding": details} if details is not None else out


def collect(models: Sequence[ResolvedModel], plans: Sequence[ProbePlan], cache: EvidenceCache | None = None, *,
            progress: bool = True, batch: int = 16,
            extra: dict[str, Sequence[ProbePlan]] | None = None, sampling_seed: int = 0,
            repeat: int = 0) -> dict[str, ModelEvidence]:
    """Local models one at a time (peak memory ~ the largest model); endpoints concurrently, each on its own thread.

    An endpoint costs no local memory and spends its time waiting on the network, so several endpoints (e.g. vLLM
    servers on other machines) are probed at once while local models run here. Every model writes its own cache
    entries, and the result keeps the input order, so transcripts do not depend on which finished first.
    `extra` adds plans for some models only (by fingerprint), e.g. sampled answers from the reference and controls.
    `repeat` sends that many greedy probes to each endpoint a second time (nondeterminism; `--repeat`).
    """
    from concurrent.futures import ThreadPoolExecutor

    cache = cache or EvidenceCache()
    unique = [m for i, m in enumerate(models) if m.fingerprint not in {x.fingerprint for x in models[:i]}]
    remote = [m for m in unique if m.remote]

    def run(m: ResolvedModel) -> ModelEvidence:
        more = list((extra or {}).get(m.fingerprint, ()))
        return collect_model(m, [*plans, *more], cache, batch=batch, progress=progress, sampling_seed=sampling_seed,
                             repeat=repeat)

    got: dict[str, ModelEvidence] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(len(remote), max_concurrent_endpoints()))) as pool:
        futures = {m.fingerprint: pool.submit(run, m) for m in remote}

        def fail_fast() -> None:
            # A dead endpoint is reported as soon as it is known, not after every local model has run.
            for fut in futures.values():
                if fut.done() and fut.exception() is not None:
                    for other in futures.values():
                        other.cancel()
                    raise fut.exception()  # type: ignore[misc]

        for m in unique:
            if not m.remote:
                time.sleep(0.05 if futures else 0)  # lets a refused connection surface before a model loads
                fail_fast()
                got[m.fingerprint] = run(m)
        for fp, fut in futures.items():
            got[fp] = fut.result()
    return {m.fingerprint: got[m.fingerprint] for m in unique}


def _short(label: str, width: int = 28) -> str:
    """A progress-bar name: a path's last component (zoo paths share a long prefix), cut to `width`."""
    name = label.rstrip("/").rsplit("/", 1)[-1] if "/" in label and "://" not in label else label
    return name if len(name) <= width else name[: width - 1] + "…"


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled or os.environ.get("PROVENANCE_NO_PROGRESS"):
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="probe", file=sys.stderr, leave=False, dynamic_ncols=True)


def collect_scores(models: Sequence[ResolvedModel], items: Sequence[ScoreItem], cache: EvidenceCache | None,
                   evidence: dict[str, ModelEvidence], *, progress: bool = True, batch: int = 16) -> None:
    """Every model scores every item (cached per model and item set); results go into evidence[fp].scores."""
    from provenance.fsutil import sha256_json

    cache = cache or EvidenceCache()
    items_hash = sha256_json([[i.id, i.prompt, i.continuation, i.chat] for i in items])
    seen: set[str] = set()
    for m in models:
        if m.fingerprint in seen:
            continue
        seen.add(m.fingerprint)
        ev = evidence[m.fingerprint]
        if Capability.LOGITS.value not in ev.capabilities:
            continue
        key = score_key(m)
        done = {} if m.remote and m.options.fresh else cache.load(key)  # `--fresh`: no score of an endpoint replayed
        if m.remote and done:  # another model may answer there now: a few cached texts are scored again first
            from provenance.freshness import check_endpoint_scores

            wanted = [(_text_key(it), _score_request(it)) for it in items]
            done, notes = check_endpoint_scores(m, done, wanted, key, cache)
            ev.notes.extend(notes)
        before = set(done)  # scored by an earlier run: replayed now (custody says so, with the times they were scored)
        todo = [it for it in items if _text_key(it) not in done]
        if todo:
            backend = m.load()
            try:
                bar = _bar(len(todo), f"{_short(m.label)} · scoring", progress)
                for start in range(0, len(todo), batch):
                    chunk = todo[start : start + batch]
                    sent = time.time()
                    scores = backend.score([_score_request(it) for it in chunk])
                    # An endpoint's Score keeps its HTTP exchange (`raw`): beside the response, never inside it.
                    recs = [{"probe_id": _text_key(it), "request": _rendered(backend, {
                                 "prompt": it.prompt, "continuation": it.continuation, "chat": it.chat}),
                             "response": sc.to_json(), "sent": sent,
                             "received": time.time(), **({"raw": sc.raw} if sc.raw else {})}
                            for it, sc in zip(chunk, scores)]
                    cache.append(key, recs)
                    done.update({r["probe_id"]: r for r in recs})
                    bar.update(len(chunk))
                bar.close()
            finally:
                backend.close()
        for it in items:
            rec = {**done[_text_key(it)], "probe_id": it.id}
            ev.scores[it.id] = Score(**rec["response"])
            ev.records.append({"model": m.label, "fingerprint": m.fingerprint, "probe_set": LIKELIHOOD_SET,
                               "probe_set_sha256": items_hash, **rec, "replayed": _text_key(it) in before})


def score_key(model: ResolvedModel) -> dict[str, Any]:
    """The cache key of a model's scores: per text, not per item set, so audits with other controls reuse every score
    already computed; an endpoint's also by the route that gave them (echo, prompt_logprobs) and the rule that read
    them (models/access.py `score_variant`), so scores obtained another way are never served as these."""
    how = score_variant(EndpointAccess.from_json(model.access) if model.access is not None else None)
    return entry_key(model.fingerprint, "scored-texts", {"score": "sum-logprob", **({"access": how} if how else {})},
                     "score", model.numerics)


def _score_request(item: ScoreItem) -> ScoreRequest:
    return ScoreRequest(item.prompt, item.continuation, item.chat)


def _text_key(item: ScoreItem) -> str:
    from provenance.fsutil import sha256_json

    return sha256_json([item.prompt, item.continuation, item.chat])


__all__ = ["collect", "collect_model", "collect_scores", "ModelEvidence", "ProbePlan", "ScoreItem", "LIKELIHOOD_SET"]
