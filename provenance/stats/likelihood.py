"""Family 3: reference-sample likelihood: does the suspect find the reference's own answers unusually likely?"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from provenance.models.base import Score
from provenance.stats.base import ConfidenceInterval, TestResult

REFERENCES = (
    "Kim & Rush (2016), Sequence-Level Knowledge Distillation, EMNLP (the training regime this test targets)",
    "Nikolic, Carlini, Tramer et al. (2025), Model Provenance Testing for Large Language Models, arXiv:2502.00706",
)
SD_FLOOR = 0.01  # nats per byte
NAME = "reference_likelihood"


def reference_likelihood(scores: Mapping[str, Mapping[str, Score]], probe_ids: Sequence[str],
                         fingerprints: Mapping[str, str], suspect: str, reference: str,
                         controls: Sequence[str]) -> TestResult:
    """Suspect's per-byte log-likelihood of the reference's sampled answers minus of the controls' answers, per prompt;
    calibrated against each control's own preference for the reference's answers (over the other controls' answers).

    A student trained on the reference's outputs (sequence-level distillation) prefers the reference's text; an
    independent model prefers it only as much as independent models do. Per byte, so tokenizers do not matter.
    Null: prediction-interval t-test of the suspect's mean preference against the k controls' (df = k - 1).
    """
    if not scores.get(suspect):
        return TestResult.skip(NAME, "the suspect gives no log-likelihoods (needs logits access)")
    ctrls = [c for c in controls if scores.get(c)]
    if len(ctrls) < 2:
        return TestResult.skip(NAME, "needs at least two controls with logits access (each control is calibrated "
                                     "against the others' answers)")

    def ll(scorer: str, source: str, pid: str) -> float:
        s = scores[scorer][f"{pid}|{fingerprints[source]}"]
        return s.logprob / max(s.n_bytes, 1)

    def preference(scorer: str, others: Sequence[str]) -> np.ndarray:
        return np.array([ll(scorer, reference, p) - np.mean([ll(scorer, o, p) for o in others]) for p in probe_ids])

    per_probe = preference(suspect, ctrls)
    observed = float(per_probe.mean())
    null = np.array([preference(c, [o for o in ctrls if o != c]).mean() for c in ctrls])
    k = len(null)
    mean = float(null.mean())
    scale = max(float(null.std(ddof=1)), SD_FLOOR) * math.sqrt(1 + 1 / k)
    t = (observed - mean) / scale
    df = k - 1
    p = float(sps.t.sf(t, df))
    q = float(sps.t.ppf(0.975, df))
    order = np.argsort(-per_probe)[:5]
    return TestResult(
        name=NAME,
        statistic=observed,
        p_value=p,
        n=len(probe_ids),
        null=f"the suspect's preference for the reference's sampled answers (nats/byte, over the controls' answers) vs "
             f"the same preference of each of {k} controls; prediction-interval t-test, df={df}",
        effect=observed - mean,
        effect_ci=ConfidenceInterval(observed - mean - q * scale, observed - mean + q * scale),
        details={"t": t, "df": df, "null_construction": "anchored", "observed": observed,
                 "null_values": [float(x) for x in null], "null_models": list(ctrls),
                 "rank_p_value": (1 + int(np.sum(null >= observed))) / (k + 1),
                 "scale": "preference for the reference's answers (nats per byte)",
                 "per_prompt_preference": {"probe_ids": list(probe_ids), "values": [float(x) for x in per_probe]}},
        top_probes=tuple(probe_ids[i] for i in order if per_probe[i] > 1e-9),
        references=REFERENCES,
    )
