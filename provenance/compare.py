"""`provenance compare`: a quick descriptive table for two checkpoints (no controls, so no p-values)."""

from __future__ import annotations

from typing import Any

import numpy as np

from provenance.collect import collect
from provenance.analysis import plan_probes
from provenance.models import LoadOptions, resolve
from provenance.probeset import load as load_probes
from provenance.stats.similarity import text_agreement, topk_similarity
from provenance.stats.weights import weight_permutation_test


def compare_models(spec_a: str, spec_b: str, budget: int, options: LoadOptions, progress: bool = True) -> dict[str, Any]:
    a, b = resolve(spec_a, options), resolve(spec_b, options)
    plans = plan_probes(budget, load_probes("continuation"), load_probes("next-token"))
    ev = collect([a, b], plans, progress=progress)
    ea, eb = ev[a.fingerprint], ev[b.fingerprint]
    cont, nxt = plans[0], plans[1]
    agree = [text_agreement(ea.answers[cont.probe_set.id][p.id].text, eb.answers[cont.probe_set.id][p.id].text) for p in cont.probes]
    sims = [topk_similarity(ea.answers[nxt.probe_set.id][p.id].top, eb.answers[nxt.probe_set.id][p.id].top) for p in nxt.probes]
    sims = [s for s in sims if not np.isnan(s)]
    w = weight_permutation_test(ea.weights, eb.weights, ea.model_type, eb.model_type, np.random.default_rng(0), 199)
    rows = {
        "model A": f"{spec_a}  ({a.fingerprint[:16]})",
        "model B": f"{spec_b}  ({b.fingerprint[:16]})",
        "identical files": str(a.fingerprint == b.fingerprint),
        "same tokenizer": str(ea.tokenizer_id is not None and ea.tokenizer_id == eb.tokenizer_id),
        "greedy agreement": f"{np.mean(agree):.3f} over {len(agree)} probes",
        "next-token similarity": f"{np.mean(sims):.3f} over {len(sims)} probes" if sims else "n/a (no logprobs)",
        "weight alignment": w.skipped and f"n/a ({w.skipped})" or f"{w.statistic:.3f} (permutation null mean {w.details['null_mean']:.3f})",
    }
    return {"rows": rows, "greedy_agreement": float(np.mean(agree)), "next_token_similarity": float(np.mean(sims)) if sims else None,
            "weight_alignment": None if w.skipped else w.statistic, "fingerprints": [a.fingerprint, b.fingerprint]}
