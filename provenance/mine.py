"""Fingerprint mining: pick the prompts on which a reference behaves most distinctively relative to controls."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from provenance import __version__
from provenance.cache import EvidenceCache
from provenance.collect import ProbePlan, collect
from provenance.errors import InputError
from provenance.fsutil import atomic_write_json
from provenance.models import LoadOptions, resolve
from provenance.probeset import load, load_file
from provenance.stats.similarity import text_agreement, topk_similarity


def distinctiveness(ref_answers: dict[str, Any], ctrl_answers: Sequence[dict[str, Any]], probe_ids: Sequence[str]) -> np.ndarray:
    """Per probe: mean over controls of the reference's dissimilarity (greedy text and next-token distribution)."""
    scores = np.zeros(len(probe_ids))
    for ca in ctrl_answers:
        for j, pid in enumerate(probe_ids):
            r, c = ref_answers[pid], ca[pid]
            parts = []
            if r.text or c.text:
                parts.append(1.0 - text_agreement(r.text, c.text))
            sim = topk_similarity(r.top, c.top)
            if not np.isnan(sim):
                parts.append(1.0 - sim)
            scores[j] += float(np.mean(parts)) if parts else 0.0
    return scores / max(len(ctrl_answers), 1)


def mine(reference: str, controls: Sequence[str], n: int, out: Path, source: str = "continuation", pool: int = 400,
         options: LoadOptions | None = None, cache: EvidenceCache | None = None, progress: bool = True) -> dict[str, Any]:
    """Write a new versioned probe set with the `n` most distinctive prompts of the first `pool` of `source`."""
    if not controls:
        raise InputError("mining needs at least one --control")
    ps = load(source)
    if ps.family not in ("continuation", "next-token"):
        raise InputError(f"can only mine continuation or next-token probe sets, not '{ps.family}'")
    pool = min(pool, len(ps.probes))
    if not 1 <= n < pool:
        raise InputError(f"--n must be between 1 and the pool size - 1 ({pool - 1})")
    ref = resolve(reference, options)
    ctrls = [resolve(c, options) for c in controls]
    plan = ProbePlan(ps, pool)
    ev = collect([ref, *ctrls], [plan], cache, progress=progress)
    ids = [p.id for p in plan.probes]
    scores = distinctiveness(ev[ref.fingerprint].answers[ps.id], [ev[c.fingerprint].answers[ps.id] for c in ctrls], ids)
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], j))[:n]  # deterministic tie-break by probe order
    chosen = sorted(order)
    texts = {p.id: p.text for p in plan.probes}
    slug = re.sub(r"[^a-z0-9]+", "-", Path(ref.spec.location).name.lower()).strip("-")[:40] or "reference"
    data = {
        "id": f"{ps.id}-mined-{slug}",
        "version": "1.0.0",
        "family": ps.family,
        "description": f"The {n} of the first {pool} '{ps.id}' prompts on which {reference} differs most from the controls.",
        "measures": f"as '{ps.id}', with the query budget spent where the reference is most distinctive",
        "mode": ps.mode,
        "decoding": ps.decoding.to_json(),
        "prompts": [{"id": ids[j], "text": texts[ids[j]], "score": round(float(scores[j]), 6)} for j in chosen],
        "origin": {
            "mined_from": {"id": ps.id, "version": ps.version, "content_sha256": ps.sha256, "pool": pool},
            "reference": {"spec": reference, "fingerprint": ref.fingerprint},
            # An audit must not use these as controls: the prompts were selected to separate them from the
            # reference, which would bias the null (see docs/methods.md).
            "controls": [{"spec": c.spec.raw, "fingerprint": c.fingerprint} for c in ctrls],
            "score": "mean over controls of mean(1 - greedy agreement, 1 - next-token similarity)",
            "tool_version": __version__,
            "created_utc": datetime.now(timezone.utc).isoformat(),
        },
    }
    atomic_write_json(Path(out), data)
    mined = load_file(Path(out))
    return {"probe_set": mined.to_json(), "mean_score_selected": float(np.mean(scores[chosen])),
            "mean_score_pool": float(np.mean(scores))}


def mining_controls(probe_set_path: str) -> set[str]:
    """Fingerprints of the controls a mined probe set was selected against (empty for library sets)."""
    import json

    try:
        data = json.loads(Path(probe_set_path).read_text())
    except (OSError, ValueError):
        return set()
    origin = data.get("origin") or {}
    return {c.get("fingerprint") for c in origin.get("controls", []) if isinstance(c, dict)}
