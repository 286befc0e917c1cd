"""Output agreement with a chat-only suspect: what it gives when every model is asked the same way (exploratory).

Protocol, written and committed before it was run (2026-12-02, session 23). Development, not an untuned figure: the
suspect (SC5120 of bench/chat_student.py) and its audit have been seen; this asks whether the fix docs/methods.md
plans is worth building, not how well it works.

Why. In chat_student's audits, output agreement had no power (p = 0.56 for both chat students): its continuation
probes reached the chat-only suspect as one chat message with `provenance.models.access.CONTINUE_INSTRUCTION`, while
SmolLM2 and the controls, loaded locally, answered them as raw completions, so the suspect agreed with no one.

What. The 103 continuation probes of SC5120's panel-(A) audit bundle (their ids and texts from its transcripts),
asked of SmolLM2-135M-Instruct, CT1-CT6 and SC5120 (all local, this machine's `~/.cache/provenance/bench-chat/`
models) as that chat message (the model's own chat template), greedy, 12 new tokens, the request the audit sent the
suspect. Then provenance's output-agreement test (`provenance.stats.behaviour.output_agreement`, the six CT lineages
as units) with SC5120 as suspect, and each CT lineage in the suspect's seat against the other five (placebos; five
units each). As a check, the same test on the audit's own mismatched answers (expected p = 0.56), and how many of
SC5120's local chat answers equal its served ones.

Reported as it comes out: one student and six placebos are a demonstration with counts, not a rate; a change of
the analysis would need its own null simulation (the shared stats-sims style) and a study before it ships.

Usage: python bench/chat_rendering.py     # bench/results/chat-rendering.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402,F401  (sets up the import path)
from _common import machine, write_results  # noqa: E402

CACHE = Path.home() / ".cache" / "provenance"
CHAT = CACHE / "bench-chat"
BUNDLE = CHAT / "audit-A" / "bundles" / "SC5120-v4-instructions"
REFERENCE = "smollm2-135m-instruct"
CONTROLS = [f"CT{k}" for k in range(1, 7)]


def _audit_answers() -> tuple[list[str], dict[str, str], dict[str, dict[str, str]]]:
    """The continuation probes of the audit (ids in order, their texts) and each model's answers, from the bundle."""
    ids: list[str] = []
    texts: dict[str, str] = {}
    answers: dict[str, dict[str, str]] = {}
    for line in (BUNDLE / "transcripts.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["probe_set"] != "continuation":
            continue
        name = row["model"].rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if row["probe_id"] not in texts:
            ids.append(row["probe_id"])
            texts[row["probe_id"]] = row["request"]["prompt"]
        answers.setdefault(name, {})[row["probe_id"]] = row["response"].get("text") or ""
    return ids, texts, answers


def _test(answers: dict[str, dict[str, str]], ids: list[str], suspect: str, controls: list[str]) -> dict[str, Any]:
    """provenance's output-agreement test on these answers (the controls one lineage each)."""
    import numpy as np

    from provenance.evidence import Completion
    from provenance.stats.behaviour import Panel, output_agreement
    from provenance.stats.nulls import Design
    from provenance.stats.similarity import text_agreement

    models = [suspect, REFERENCE, *controls]
    panel = Panel(tuple(ids), {m: {i: Completion(answers[m][i]) for i in ids} for m in models},
                  {m: None for m in models})
    r = output_agreement(panel, Design(suspect, REFERENCE, {c: (c,) for c in controls}))
    agree = {m: float(np.mean([text_agreement(answers[suspect][i], answers[m][i]) for i in ids]))
             for m in [REFERENCE, *controls]}
    return {"suspect": suspect, "p_value": r.p_value, "statistic": r.statistic, "skipped": r.skipped,
            "kind_check": (r.details or {}).get("kind_check"), "mean_agreement_with": agree}


def main() -> None:
    from provenance.models import resolve
    from provenance.models.access import CONTINUE_INSTRUCTION
    from provenance.models.base import Request

    info = machine()
    ids, texts, served = _audit_answers()
    reqs = [Request(prompt=CONTINUE_INSTRUCTION.format(text=texts[i]), max_new_tokens=12, chat=True) for i in ids]
    chat: dict[str, dict[str, str]] = {}
    for name in [REFERENCE, *CONTROLS, "SC5120"]:
        spec = REFERENCE if name == REFERENCE else str(CHAT / "models" / name)
        backend = resolve(spec).load()
        try:
            chat[name] = {i: c.text for i, c in zip(ids, backend.generate(reqs))}
        finally:
            backend.close()
        print(name, "done", flush=True)
    same_as_served = sum(chat["SC5120"][i] == served["SC5120"][i] for i in ids)
    out = {
        "bench": "chat_rendering", "protocol": "bench/chat_rendering.py docstring (exploratory: a seen suspect)",
        "machine": info, "probes": len(ids),
        "suspect_local_chat_equals_served": same_as_served,
        "mismatched_as_audited": _test(served, ids, "SC5120", CONTROLS),
        "matched_chat_rendering": _test(chat, ids, "SC5120", CONTROLS),
        "placebos_matched_chat_rendering": [_test(chat, ids, c, [u for u in CONTROLS if u != c]) for c in CONTROLS],
        "examples": {i: {m: chat[m][i] for m in chat} for i in ids[:3]},
    }
    write_results("chat-rendering", out)
    print(json.dumps({k: out[k] for k in ("suspect_local_chat_equals_served", "mismatched_as_audited",
                                          "matched_chat_rendering")}, indent=1))
    print("placebos:", [(p["suspect"], p["p_value"]) for p in out["placebos_matched_chat_rendering"]])


if __name__ == "__main__":
    main()
