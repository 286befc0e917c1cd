"""How often does an endpoint's prompt scoring (prompt and answer tokenized together) count a different set of answer
tokens than a local model's score (prompt and answer tokenized apart)? Measured on the committed example bundles.

Why. `HFBackend.score` tokenizes the rendered prompt and the answer separately; a server that scores prompt + answer
(echo, `prompt_logprobs`) tokenizes them as one text, so where a token spans the boundary `models/scoring.py` counts it
with the answer, with the prompt's characters it carries (docs/methods.md, section 3). The two scores of one text then
differ by that token. This bench counts how often that happens on real (prompt, answer) pairs: the likelihood family's
scored answers in every bundle under reports/example, rendered as the scorer renders them (SmolLM2's tokenizer and chat
template, which every model of those bundles uses), and the first answer token where the two tokenizations part.

Usage: python bench/boundary_tokens.py   ->  bench/results/boundary-tokens.json
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from _common import ROOT, machine, write_results

REFERENCE = "smollm2-135m-instruct"


def pairs(root: Path) -> list[tuple[str, str, bool]]:
    """(prompt, answer, chat) of every scored answer in the bundles' transcripts (duplicates kept: each is a score)."""
    out = []
    for f in sorted(root.glob("*/transcripts.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r.get("probe_set") != "likelihood":
                continue
            q = r["request"]
            if q.get("continuation"):
                out.append((q["prompt"], q["continuation"], bool(q.get("chat"))))
    return out


def main() -> None:
    from provenance.zoo.build import _tokenizer  # SmolLM2's tokenizer and template, without loading the model

    tok = _tokenizer()
    counts: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for prompt, answer, chat in pairs(ROOT / "reports" / "example"):
        text = (tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                        add_generation_prompt=True) if chat else prompt)
        apart = tok(text, add_special_tokens=False)["input_ids"] + tok(answer, add_special_tokens=False)["input_ids"]
        joint = tok(text + answer, add_special_tokens=False)["input_ids"]
        kind = "chat" if chat else "plain"
        counts[f"{kind}/scored"] += 1
        if apart != joint:
            counts[f"{kind}/differ"] += 1
            starts[repr(answer[:1])] += 1
            if len(examples) < 5:
                examples.append({"prompt_end": text[-24:], "answer_start": answer[:24]})
    res = {"bench": "boundary_tokens", "machine": machine(), "tokenizer": REFERENCE,
           "bundles": "reports/example/*/transcripts.jsonl (probe_set likelihood)",
           "counts": dict(counts), "answer_first_character_where_they_differ": dict(starts), "examples": examples}
    print(json.dumps({k: res[k] for k in ("counts", "answer_first_character_where_they_differ")}, indent=1))
    print(write_results("boundary-tokens", res))


if __name__ == "__main__":
    main()
