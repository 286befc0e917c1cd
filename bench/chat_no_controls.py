"""A student of SmolLM2's chat answers audited with no `-c`: the audit builds controls in the suspect's format.

Protocol, fixed and committed before the builder's chat format below was written and before any audit ran (2026-12-02,
session 25, 13:40 UTC):

Why. Issue #15's first done-when item: audited with no `-c`, a sequence-level student of SmolLM2 larger than the zoo's
is found. Every no-`-c` audit so far (bench/matched_controls.py, bench/v3_no_controls.py, bench/distill_dose.py part
(c)) built controls that learnt raw text; the one setting where controls trained on this CPU have given a student of
SmolLM2 a p-value under the rule is bench/chat_student.py's panel (C): ten lineages of chat-format public prose, of the
suspect's format. Hypothesis: the builder's controls are of another kind than a student trained on chat answers (the
usual case outside this project's zoo); built in the suspect's format, they give the null that finds it.

The change under test (provenance/matched.py, written after this protocol): the builder decides the suspect's format
from the suspect itself: a suspect whose tokenizer has a chat template and which predicts that template's own
scaffolding (the tokens that close a user turn and open the assistant's) is a chat model; then every control learns in
that chat template: public-text lineages read their slices as answers of at most 64 tokens to generated instructions
(the builder's own templates, none an audit prompt), students learn their teacher's chat answers to those
instructions. Otherwise controls are built as before. Nothing else in the builder changes (eight lineages: students of
Qwen and Gemma, six public-text lineages; matched on yardstick competence and answer sameness; 320 teacher answers on
a CPU).

Suspect: SC2560 of bench/chat_student.py (a student of SmolLM2's chat answers to 2,560 instructions, 192 x 4, seed
8301, trained on this machine from the committed answers: `prompts`, `prepare --group smollm2`, `train --only
SC2560`, `install`). Truth: distilled from SmolLM2. It is larger than every zoo student (2 layers).

Audits (this machine, the CLI, full local access):
1. `provenance audit -s SC2560 -r smollm2-135m-instruct -o OUT --budget 200 --seed 0 --json` with no `-c`: the default
   analysis (2) and likelihood prompts (`instructions`); the audit builds the matched panel (chat format expected).
   This is the row the question is decided on.
2. The same with `--analysis 3` (the controls come from the cache), as time allows.
3. As time allows: CN2 of bench/chat_student.py (chat-format prose on N2's slices, no teacher, seed 8332) audited as in
   1, with its own matched panel. Truth: independent.
Expectation stated in advance: SC2560 is flagged `distilled` in audit 1 (the question); CN2 is not flagged. Whatever
comes out is reported as it is, with the panel's competence and the checks. Development, not a rate: SC2560's chat-only
audit against panel (C) was seen (`distilled`, p = 0.0045), and this bench exists because of it.

Usage: python bench/chat_no_controls.py [--only SC2560 CN2] [--analysis 2 3]   (resumable; results in
bench/results/chat-no-controls.json)
"""
