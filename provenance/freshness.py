"""Cached answers of an endpoint are replayed only after a fresh canary shows it still serves the same model.

An endpoint's fingerprint is its URL, model name and self-reported metadata, so a server that now runs another model
under the same name would otherwise get zero requests: every answer would come from the evidence cache. Before any
cached answer of an endpoint is reused, each audit sends it a few of those probes again (greedy ones, never from the
cache) and compares the texts. A mismatch means the served model changed: its cached answers are set aside (renamed,
not deleted) and everything is collected afresh; either way a note in results.json says what happened.

Cached scores (log-likelihoods of texts) get the same check on their own: an audit whose probe plan is new has no
cached answer to compare, yet may replay scores of the texts an earlier run scored. A few cached texts are scored
again; a difference beyond the endpoint's arithmetic noise sets the scores aside too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from provenance.cache import EvidenceCache

CANARY_PROBES = 3
# Two scorings of one text by one served model agree to ~1e-5 nats on CPU (measured, docs/methods.md); a GPU server's
# batch-dependent kernels move a long text's sum by more, another model by whole nats. Absolute plus relative (nats).
SCORE_TOLERANCE = (0.05, 0.005)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def check_endpoint_cache(model: Any, plans: Sequence[Any], cached: dict[str, dict[str, dict[str, Any]]],
                         keys: dict[str, dict[str, Any]], cache: EvidenceCache,
                         make_request: Any) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    """(the cached answers that may be replayed, notes). `make_request(probe_set, text)` builds a Request."""
    reused = sum(len(c) for c in cached.values())
    if not reused:
        return cached, []
    canaries = []  # (probe set id, probe, request): the first cached greedy probes, in plan order
    for plan in plans:
        ps = plan.probe_set
        if ps.decoding.temperature != 0:
            continue  # a sampled answer need not repeat
        for pr in plan.probes:
            if pr.id in cached[ps.id] and len(canaries) < CANARY_PROBES:
                canaries.append((ps.id, pr, make_request(ps, pr.text)))
    times = [r.get("received") for c in cached.values() for r in c.values() if isinstance(r.get("received"), (int, float))]
    span = f"collected {_when(min(times))} to {_when(max(times))}" if times else "collection time unknown"
    if not canaries:
        return cached, [f"{model.label}: {reused} answers replayed from the evidence cache ({span}) without a fresh "
                        "check (no greedy probe to compare)"]
    backend = model.load()
    try:
        fresh = backend.generate([req for _, _, req in canaries])
    finally:
        backend.close()
    for (ps_id, pr, _), answer in zip(canaries, fresh):
        before = cached[ps_id][pr.id]["response"].get("text")
        if answer.text != before:
            for key in keys.values():
                cache.retire(key)
            note = (f"{model.label}: the endpoint's answers changed since they were cached (probe {pr.id}: cached "
                    f"{str(before)[:40]!r}, now {answer.text[:40]!r}); the {reused} cached answers ({span}) were set "
                    "aside and every answer collected afresh")
            return {ps_id: {} for ps_id in cached}, [note]
    return cached, [f"{model.label}: {reused} answers replayed from the evidence cache ({span}); a fresh canary of "
                    f"{len(canaries)} probe(s) sent now matched them"]


def check_endpoint_scores(model: Any, done: dict[str, dict[str, Any]], wanted: Sequence[tuple[str, Any]],
                          key: dict[str, Any], cache: EvidenceCache) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(the cached scores that may be replayed, notes). `wanted`: (text key, ScoreRequest) this run needs, in order."""
    cached = [(k, req) for k, req in wanted if k in done]
    if not cached:
        return done, []
    canaries = cached[:CANARY_PROBES]
    backend = model.load()
    try:
        fresh = backend.score([req for _, req in canaries])
    finally:
        backend.close()
    for (k, _), sc in zip(canaries, fresh):
        before = float(done[k]["response"]["logprob"])
        if not abs(sc.logprob - before) <= SCORE_TOLERANCE[0] + SCORE_TOLERANCE[1] * abs(before):
            cache.retire(key)
            return {}, [f"{model.label}: the endpoint's scores changed since they were cached (cached {before:.4f}, "
                        f"now {sc.logprob:.4f} nats); the {len(done)} cached scores were set aside and every text "
                        "scored afresh"]
    return done, [f"{model.label}: {len(cached)} scores replayed from the evidence cache; a fresh canary of "
                  f"{len(canaries)} text(s) scored now matched them"]
