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

Amendment 1 (14:03 UTC, before any audit finished; the first audit was stopped while building its first controls).
The builder's format check as first written read SC2560 as a text model (scaffold -4.47 nats/token, the threshold -3):
it averaged over the yardstick passages cut after 6, 12, 18 and 24 words, and SC2560 predicts the assistant turn's
opening token at -0.01 after 6- and 12-word messages and -8.7 to -9.1 after 18- and 24-word ones (its instructions
were all short). The check now takes the median over the yardstick passages' first six words (SC2560 -0.006, SmolLM2
-0.05, Qwen2.5-Coder -0.00, an untrained model -11.0). Seen before: SC2560's scaffold values above; not seen: any
verdict. The audits then run as written.

Amendment 2 (14:38 UTC, after the builds' training trails were seen, before any verdict: the audit was stopped while
building). The eight controls would have taken about two hours of both cores: the students of Qwen and Gemma stopped
short of the suspect (-1.94 and -1.76 nats/byte against -1.669, past their peak at 50 and 200 steps), and the
public-text lineages reached the suspect's competence by 400 steps (-1.638) with answers already more varied than its
(sameness -3.21 against -1.96), then trained on (800 steps: -1.611, -3.91; about 2 s a step with two builds at once)
towards 1,600 and 3,200, since the builder stopped only once competence passed the suspect's by a tolerance. Builder
version 4 (commit after this amendment) also stops once competence has reached the suspect's and answers are more varied
than its by more than the sameness tolerance: training only makes answers more varied, so both measures would only move
away. All controls are retrained under version 4 (the version is in every recipe); two builds run at once (the audit's
and a second process building the same plan from its far end, same recipes and cache; one thread each). Nothing else
changes.

Amendment 3 (15:20 UTC, after SC2560's audit 1 was seen: `distilled`, p = 0.00094; before CN2 was trained). The
session's time does not allow CN2's own no-`-c` panel (about 40 minutes of building after 10 of training). CN2 is
instead audited as in 1 with `--controls` naming the panel the audit built for SC2560 (the same eight builder-made
chat-format lineages; CN2 has SC2560's architecture and tokenizer). This checks whether these controls, all weaker than
SC2560 on the yardstick, make an independent chat-format model look related to SmolLM2; it is not CN2's no-`-c` path,
which stays not run. Expectation stated in advance: CN2 not flagged. Audit 2 (analysis 3) is not run.

Usage: python bench/chat_no_controls.py [--only SC2560 CN2] [--analysis 2 3]   (resumable; results in
bench/results/chat-no-controls.json)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import ROOT, machine, subprocess_env, write_results

CACHE = Path.home() / ".cache" / "provenance"
CHAT = CACHE / "bench-chat"  # bench/chat_student.py's models (trained there)
OUT = CACHE / "bench-chat-no-controls"
REFERENCE = "smollm2-135m-instruct"
TRUTH = {"SC2560": "distilled", "CN2": "independent"}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def audit(name: str, version: int, panel_of: str | None = None) -> dict[str, Any]:
    """One no-`-c` audit through the CLI (the audit builds its matched panel); its stderr goes to a log beside it, so
    the build can be followed (`tail -f`). `panel_of`: give the panel built for that suspect's audit instead
    (amendment 3)."""
    tag = f"{name}-v{version}" + (f"-{panel_of}-panel" if panel_of else "")
    row_file = OUT / "audits" / f"{tag}.json"
    if row_file.is_file():
        return json.loads(row_file.read_text())
    suspect = CHAT / "models" / name
    if not (suspect / "config.json").is_file():
        raise SystemExit(f"{suspect}: not trained (bench/chat_student.py prepare, train --only {name}, install)")
    bundle = OUT / "bundles" / tag
    given = []
    if panel_of:
        built = json.loads((OUT / "audits" / f"{panel_of}-v{version}.json").read_text())["build"]
        given = ["--controls", built.split("panel ", 1)[1].split(";", 1)[0]]
    cmd = [sys.executable, "-m", "provenance", "-v", "audit", "-s", str(suspect), "-r", REFERENCE, "-o", str(bundle),
           "--analysis", str(version), "--budget", "200", "--seed", "0", "--json", "--replace", *given]
    row_file.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with (OUT / "audits" / f"{tag}.log").open("w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=subprocess_env(), cwd=ROOT)
    if proc.returncode not in (0, 1):  # 1: flagged
        raise SystemExit(f"audit of {name} (v{version}) failed ({proc.returncode}); see its .log")
    res = json.loads(proc.stdout)
    ref = res["references"][0]
    built = next((w for w in res["warnings"] if w.startswith("matched controls:")), None)
    panel = json.loads(Path(built.split("panel ", 1)[1].split(";", 1)[0]).read_text()) if built else None
    if panel_of:
        panel = json.loads(Path(given[1]).read_text())
    row = {"suspect": name, "truth": TRUTH[name], "analysis": version, "likelihood_probes": "instructions",
           "controls": (f"the panel the audit built for {panel_of} (--controls; amendment 3)" if panel_of
                        else "matched, built by the audit (no -c)"), "seconds": round(time.time() - t0, 1),
           "verdict": ref["verdict"], "p_value": ref["p_value"], "reason": ref["reason"],
           "tests": {t["name"]: t.get("p_value") for t in ref["tests"]},
           "skipped": {t["name"]: t["skipped"] for t in ref["tests"] if t.get("skipped")},
           "placebo": {r["lineage"]: r["p_value"] for r in ref["placebo"]["rows"]},
           "placebo_flagged": ref["placebo"]["flagged"], "competence": ref.get("competence_check"),
           "kind_checks": {t["name"]: t.get("details", {}).get("kind_check") for t in ref["tests"]
                           if t.get("details", {}).get("kind_check")},
           "controls_used": ref["controls_used"], "build": built, "panel": panel, "warnings": res["warnings"],
           "bundle": str(bundle)}
    row_file.write_text(json.dumps(row, indent=1))
    log(f"{name} v{version}: {row['verdict']} p={row['p_value']:.3g} {row['tests']}")
    return row


def prebuild(name: str) -> None:
    """Build the no-`-c` audit's plan from its far end in a second process (the same recipes and cache: each control
    is built once, by whichever process reaches it first), so two cores build the panel."""
    from provenance.matched import build_for
    from provenance.models import LoadOptions, resolve

    summary = build_for(resolve(str(CHAT / "models" / name), LoadOptions()), [REFERENCE], progress=False,
                        from_end=True)
    for c in summary["controls"]:
        log(f"{c['lineage']}: {c['stop']}, {c['steps']} steps, competence {c['competence']:.3f}, {c['seconds']:.0f} s")


def suspect_format(name: str) -> dict[str, Any]:
    from provenance.matched import suspect_format as fmt

    got, score = fmt(CHAT / "models" / name)
    return {"format": got, "scaffold_logprob": score}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=["SC2560", "CN2"], choices=sorted(TRUTH))
    ap.add_argument("--analysis", nargs="+", type=int, default=[2, 3], choices=[2, 3])
    ap.add_argument("--collect", action="store_true", help="Write the results of the audits finished; run nothing.")
    ap.add_argument("--prebuild", metavar="NAME", help="Only build NAME's panel from the plan's far end (run beside "
                    "the audit, in a second process with OMP_NUM_THREADS=1).")
    ap.add_argument("--panel-of", metavar="NAME", help="Amendment 3: give the suspects the panel built for NAME.")
    args = ap.parse_args()
    info = machine()
    if args.prebuild:
        prebuild(args.prebuild)
        return
    if not args.collect:
        for name in args.only:  # the protocol's order: each suspect's default-analysis audit, then analysis 3
            for v in args.analysis:
                audit(name, v, args.panel_of)
    rows = [json.loads(f.read_text()) for f in sorted((OUT / "audits").glob("*.json"))]
    formats = {r["suspect"]: suspect_format(r["suspect"]) for r in rows}
    write_results("chat-no-controls", {"machine": info, "protocol": "bench/chat_no_controls.py docstring",
                                       "suspect_format": formats, "audits": rows,
                                       "not_run": [f"{n}-v{v} (no -c)" for n in TRUTH for v in (2, 3)
                                                   if not any(r["suspect"] == n and r["analysis"] == v
                                                              and r["controls"].startswith("matched")
                                                              for r in rows)]})


if __name__ == "__main__":
    main()
