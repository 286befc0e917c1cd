"""Families 1 and 2: greedy output agreement and next-token distribution divergence, against a model-level null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from provenance.models.base import Completion
from provenance.stats.base import TestResult, pair_null_test, pairwise
from provenance.stats.similarity import text_agreement, topk_similarity

REFERENCES = (
    "Nikolic, Carlini, Tramer et al. (2025), Model Provenance Testing for Large Language Models, arXiv:2502.00706",
    "Lin (1991), Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory 37(1)",
)


@dataclass(frozen=True)
class Panel:
    """Answers of every model in an audit to one probe set, aligned by probe id."""

    probe_ids: tuple[str, ...]
    answers: Mapping[str, Mapping[str, Completion]]  # model key -> probe id -> answer
    tokenizers: Mapping[str, str | None]  # model key -> tokenizer id


def _result(name: str, per_probe: dict[tuple[str, str], np.ndarray], suspect: str, reference: str,
            models: Sequence[str], probe_ids: Sequence[str], null_text: str) -> TestResult:
    controls = [m for m in models if m not in (suspect, reference)]
    if not controls:
        return TestResult.skip(name, "needs at least one control model for the null")
    pn = pair_null_test(per_probe, (suspect, reference), models)
    sr = per_probe[(suspect, reference)]
    sc = np.mean([per_probe[(suspect, c)] for c in controls], axis=0)
    order = np.argsort(-(sr - sc))[:5]
    return TestResult(
        name=name,
        statistic=float(np.mean(sr)),
        p_value=pn.p_value,
        n=len(probe_ids),
        null=null_text,
        effect=pn.effect,
        effect_ci=pn.effect_ci,
        details={
            "t": pn.t, "df": pn.df, "rank_p_value": pn.rank_p, "null_construction": pn.construction,
            "observed": pn.observed, "null_values": list(pn.null_values),
            "scale": "affinity (logit of mean per-probe similarity)",
            "null_pairs": [list(p) for p in pn.null_pairs],
            "affinity": {f"{a} ~ {b}": float(np.mean(v)) for (a, b), v in per_probe.items() if a < b},
            "suspect_controls_mean": float(np.mean(sc)),
            "per_probe": {"probe_ids": list(probe_ids), "suspect_reference": [float(x) for x in sr],
                          "suspect_controls": [float(x) for x in sc]},
        },
        # A margin, so that float noise in the last digit cannot change which probes count as exhibits.
        top_probes=tuple(probe_ids[i] for i in order if sr[i] > sc[i] + 1e-9),
        references=REFERENCES,
    )


def output_agreement(panel: Panel, suspect: str, reference: str, models: Sequence[str]) -> TestResult:
    """Word-level agreement of greedy continuations; suspect~reference vs every pair of independent models."""
    ids = panel.probe_ids

    def sim(a: str, b: str) -> np.ndarray:
        return np.array([text_agreement(panel.answers[a][i].text, panel.answers[b][i].text) for i in ids])

    per_probe = pairwise(models, sim)
    return _result("output_agreement", per_probe, suspect, reference, models, ids,
                   "suspect~reference greedy agreement vs the controls' agreement with the reference (anchored, 3+ "
                   "controls) or vs every other pair among suspect, reference and controls (all-pairs, fewer controls); "
                   "prediction-interval t-test on logit agreement")


def next_token_divergence(panel: Panel, suspect: str, reference: str, models: Sequence[str]) -> TestResult:
    """1 - JS divergence of top-k next-token distributions, per probe; same model-level null."""
    ids = panel.probe_ids
    usable = [m for m in models if all(panel.answers[m][i].top for i in ids)]
    if suspect not in usable or reference not in usable:
        return TestResult.skip("next_token_divergence", "suspect or reference gave no top-k logprobs (text access only)")
    models = usable

    def sim(a: str, b: str) -> np.ndarray:
        # Always on decoded strings, even for a shared tokenizer: every pair, null pairs included, must be
        # measured on one scale, or same-tokenizer pairs would be judged by a different yardstick.
        v = np.array([topk_similarity(panel.answers[a][i].top, panel.answers[b][i].top, False) for i in ids])
        return np.nan_to_num(v, nan=0.0)

    per_probe = pairwise(models, sim)
    r = _result("next_token_divergence", per_probe, suspect, reference, models, ids,
                "suspect~reference next-token similarity (1 - JS on decoded, whitespace-stripped token strings)"
                " vs the controls' similarity to the reference (anchored, 3+ controls) or vs every other pair"
                " (all-pairs, fewer controls); prediction-interval t-test")
    if r.skipped is None:
        r.details["shared_tokenizer"] = (panel.tokenizers.get(suspect) is not None
                                         and panel.tokenizers.get(suspect) == panel.tokenizers.get(reference))
    return r
