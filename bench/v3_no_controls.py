"""Analysis v3 end to end: suspects never analysed before, audited against SmolLM2 with no `-c` (issue #15's first
done-when item), through the real CLI: matched controls built by the audit, comparison sources, placebos, checks.

Protocol, fixed and committed before any suspect below was trained or audited (2026-11-30, 13:50 UTC):

Suspects, trained here for this bench only (SmolLM2's tokenizer, 192 hidden x 4 layers: wider than every student of
the study zoo and of bench/capable_sources.py, and on more data):
- "student": a sequence-level student of SmolLM2-135M-Instruct on its 640 sampled answers to continuation prompts
  1000-1639 (both training sets of bench/capable_sources.py, 48 new tokens, temperature 1), 8 epochs, seed 7001.
  Truth: distilled from the reference.
- "qwen-student": the same recipe on Qwen2.5-Coder-0.5B-Instruct's 640 answers to the same prompts, seed 7002.
  Truth: independent of SmolLM2 (another teacher).
- "prose": no teacher; 12 public-prose corpus slices (sorted ids 72-83 of the zoo corpus, read by no other model
  here), 3 epochs, seed 7003. Truth: independent of SmolLM2.
Audit, for each suspect: `provenance audit -s DIR -r smollm2-135m-instruct -o OUT --analysis 3 --budget 200 --seed 0
--json` with no `-c` (the audit trains matched controls: students of Qwen and Gemma and two public-text lineages at
the suspect's architecture, provenance/matched.py), then the same command with `--analysis 2` (the controls come from
the cache: the same controls, the version that the validation study measured).
Outcome: each verdict, combined p, each family's p, the placebos and the kind checks. Expectation stated in advance:
with v3, "student" is flagged (combined p < 0.01) and neither independent suspect is; with v2, none is flagged.
Whatever comes out is reported as it is. Three suspects are a demonstration with a count, not a rate.

Amendment 1 (committed before any audit above had run: 2026-11-30, 13:15 UTC, while the suspects were training).
Part 2, the other half of that done-when item (weak controls must not make independent models look related): each
suspect audited again with controls given, small 2-layer models from bench/capable_sources.py's first set, as a panel
with their lineages: its students of Qwen and of Gemma at 64 and 128 hidden (qwen-s0, qwen-s1, gemma-s0, gemma-s1;
two lineages) and its prose models text-0 and text-1 (two lineages), with `--analysis 3` and `--analysis 2`.
Expectation stated in advance: neither independent suspect is flagged (the competence check may make a verdict
inconclusive); the student may be inconclusive for the same reason.

Amendment 2 (13:45 UTC, before any audit had finished): the matched controls take about 15-25 minutes each at this
suspect's size on the shared 2-core machine (four per suspect, and each suspect's competence needs its own), more than
the session has for all three. Order of runs: the student's matched audits (running), then part 2 for all three
suspects (no training), then the independent suspects' matched audits as time allows. What does not run is reported
as not run; nothing else changes.

Amendment 3 (14:25 UTC, after the student's two part-1/part-2 v3 audits were seen: no_evidence, capable_likelihood
p = 0.52 with matched controls and 0.32 with weak ones, against 6-9 of 12 such students found by the same statistic
in bench/capable_sources.py). Hypothesis, from reading what differs: the audit's likelihood prompts are the chat
`instructions` set (40 tokens, temperature 0.7), while every student here, of the study zoo and of the matched
controls learnt its teacher's plain-text continuations of `continuation` prompts (completion mode), and
bench/capable_sources.py measured on such continuations. Part 3 tests it with `--likelihood-probes
continuation-samples` (probes/continuation-samples.json: continuation prompts 600-849, completion mode, 48 new tokens,
temperature 1; prompts that no audit's greedy prefix and no training set here reaches), analysis 3, the controls the
audit built for "student" given as that panel (`--controls`, every suspect here is 192 x 4), for:
- "student" (development: its result above was seen, so its part-3 result is not evidence);
- "student-b", trained after this amendment: the same 640 answers, 6 epochs, seed 7011 (a sibling of "student" by
  data, a new model) - the replication;
- "qwen-student" and "prose" (independent: must not be flagged).
Expectation stated in advance: student-b's capable_likelihood p < 0.01 and neither independent suspect flagged. One
new related suspect is a demonstration, not a rate.

Usage: python bench/v3_no_controls.py [--out DIR]   (resumable: trained models and finished audits are kept)
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
from capable_sources import TEACHERS, chunks, log, prompts, teacher_answers, tokenizer

REFERENCE = "smollm2-135m-instruct"
SHAPE = (192, 4)
SPANS = (((1000, 1320), 0), ((1320, 1640), 3))  # (prompt span, sampling seed) of bench/capable_sources.py's answers
SUSPECTS = {
    "student": {"teacher": "smollm2", "epochs": 8, "seed": 7001, "truth": "distilled"},
    "qwen-student": {"teacher": "qwen", "epochs": 8, "seed": 7002, "truth": "independent"},
    "prose": {"slices": (72, 84), "epochs": 3, "seed": 7003, "truth": "independent"},
    "student-b": {"teacher": "smollm2", "epochs": 6, "seed": 7011, "truth": "distilled"},  # amendment 3
}
PART3_PROBES = "continuation-samples"
CACHE = Path.home() / ".cache" / "provenance"


def train_suspect(out: Path, name: str, spec: dict[str, Any]) -> Path:
    from provenance.zoo.train import fresh_model, is_complete, save, tiny_config, train_sequence_level

    d = out / "models" / name
    if is_complete(d):
        return d
    tok = tokenizer()
    if "teacher" in spec:
        fam = spec["teacher"]
        seqs = []
        for span, seed in SPANS:
            root = CACHE / ("bench-capable-sources" if span[0] == 1000 else "bench-capable-sources-heldout")
            ans = teacher_answers(root, fam, span, seed)  # cached by that bench; sampled here if absent
            seqs += [tok(p)["input_ids"] + tok(a)["input_ids"] + [tok.eos_token_id] for p, a in zip(prompts(span), ans)]
    else:
        from provenance.zoo.corpus import build_slices

        slices, _ = build_slices(50_000)
        lo, hi = spec["slices"]
        seqs = chunks(tok, slices, sorted(slices)[lo:hi])
    pad = tok.eos_token_id
    net = fresh_model(tiny_config(len(tok), SHAPE[0], SHAPE[1], bos=tok.bos_token_id, eos=tok.eos_token_id, pad=pad),
                      spec["seed"])
    t0 = time.time()
    train_sequence_level(net, seqs, spec["epochs"], 3e-3, seed=spec["seed"], pad=pad, batch=8)
    save(net, tok, d, f"{name}: {SHAPE[0]}x{SHAPE[1]}, {spec['epochs']} epochs on {len(seqs)} sequences")
    log(f"trained {name} on {len(seqs)} sequences in {time.time() - t0:.0f} s")
    return d


WEAK = {"qwen-s0": "qwen", "qwen-s1": "qwen", "gemma-s0": "gemma", "gemma-s1": "gemma", "text-0": "text-0",
        "text-1": "text-1"}  # part 2's controls (bench/capable_sources.py's first set), lineages as the packaged names


def weak_panel(out: Path) -> Path:
    models = CACHE / "bench-capable-sources" / "models"
    panel = {"control": [{"spec": str(models / m), "lineage": lin, "kind": "small model of bench/capable_sources.py"}
                         for m, lin in WEAK.items()]}
    path = out / "weak-controls.json"
    path.write_text(json.dumps(panel, indent=1))
    return path


def matched_panel(out: Path) -> Path:
    """The panel the audit built for "student" (part 3 gives it to every suspect: all are 192 x 4)."""
    bundle = json.loads((out / "bundles" / "student-v3" / "results.json").read_text())
    line = next(w for w in bundle["warnings"] if w.startswith("matched controls:"))
    return Path(line.split("panel ", 1)[1].split(";", 1)[0])


def audit(out: Path, name: str, path: Path, version: int, panel: Path | None = None,
          likelihood: str | None = None) -> dict[str, Any]:
    tag = f"{name}-v{version}{'-weak' if panel and not likelihood else ''}{'-' + likelihood if likelihood else ''}"
    res_file = out / "audits" / f"{tag}.json"
    if res_file.is_file():
        return json.loads(res_file.read_text())
    bundle = out / "bundles" / tag
    cmd = [sys.executable, "-m", "provenance", "audit", "-s", str(path), "-r", REFERENCE, "-o", str(bundle),
           "--analysis", str(version), "--budget", "200", "--seed", "0", "--json", "--no-progress", "--replace",
           *(["--controls", str(panel)] if panel else []), *(["--likelihood-probes", likelihood] if likelihood else [])]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=ROOT)
    if proc.returncode not in (0, 1):  # 1: flagged (the CLI's exit for a distilled/derived verdict)
        raise SystemExit(f"audit of {name} (v{version}) failed ({proc.returncode}): {proc.stderr[-2000:]}")
    res = json.loads(proc.stdout)
    ref = res["references"][0]
    row = {"suspect": name, "version": version, "likelihood_probes": likelihood or "instructions",
           "controls": ("matched to student (panel)" if likelihood else "weak") if panel else "matched (built by the audit)", "seconds": round(time.time() - t0, 1), "verdict": ref["verdict"],
           "p_value": ref["p_value"], "reason": ref["reason"],
           "tests": {t["name"]: t.get("p_value") for t in ref["tests"]},
           "skipped": {t["name"]: t["skipped"] for t in ref["tests"] if t.get("skipped")},
           "placebo": {r["lineage"]: r["p_value"] for r in ref["placebo"]["rows"]},
           "placebo_flagged": ref["placebo"]["flagged"],
           "competence": ref.get("competence_check"), "sources": ref.get("comparison_sources"),
           "controls_used": ref["controls_used"], "warnings": res["warnings"], "bundle": str(bundle)}
    res_file.parent.mkdir(parents=True, exist_ok=True)
    res_file.write_text(json.dumps(row, indent=1))
    log(f"{tag}: {row['verdict']} p={row['p_value']} {row['tests']}")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=CACHE / "bench-v3-no-controls")
    ap.add_argument("--collect", action="store_true",
                    help="Write the results of the audits already finished, naming those not run; run nothing.")
    args = ap.parse_args()
    out: Path = args.out
    info = machine()
    t0 = time.time()
    if args.collect:
        rows = [json.loads(f.read_text()) for f in sorted((out / "audits").glob("*.json"))]
        done = {f.stem for f in (out / "audits").glob("*.json")}
        planned = ([f"student-v{v}" for v in (3, 2)] + [f"{n}-v{v}-weak" for n in SUSPECTS if n != "student-b"
                                                       for v in (3, 2)]
                   + [f"{n}-v3-{PART3_PROBES}" for n in ("student-b", "qwen-student", "prose", "student")]
                   + [f"{n}-v{v}" for n in ("qwen-student", "prose") for v in (3, 2)])
        write_results("v3-no-controls", {"machine": info, "reference": REFERENCE, "suspects": SUSPECTS, "shape": SHAPE,
                                         "rows": rows, "not_run": [t for t in planned if t not in done]})
        return
    paths = {n: train_suspect(out, n, s) for n, s in SUSPECTS.items()}
    panel = weak_panel(out)
    # Amendment 2's order: the student's matched audits, part 2 for every suspect, then the other matched audits.
    order = [(n, v, None) for n in ("student",) for v in (3, 2)]
    order += [(n, v, panel) for n in paths for v in (3, 2)]
    rows = [audit(out, n, paths[n], v, pn) for n, v, pn in order if n != "student-b"]
    part3 = matched_panel(out)  # amendment 3, before the independents' matched audits (time)
    rows += [audit(out, n, paths[n], 3, part3, PART3_PROBES) for n in ("student-b", "qwen-student", "prose", "student")]
    rows += [audit(out, n, paths[n], v) for n in ("qwen-student", "prose") for v in (3, 2)]
    for r in rows:
        print(f"{r['suspect']:13s} v{r['version']} {r['controls'][:7]:8s} {r['verdict']:13s} p={r['p_value']}  "
              + "  ".join(f"{k}={v:.3g}" for k, v in r["tests"].items() if v is not None))
    write_results("v3-no-controls", {"machine": info, "seconds": time.time() - t0, "reference": REFERENCE,
                                     "suspects": SUSPECTS, "shape": SHAPE, "teachers": TEACHERS, "rows": rows})


if __name__ == "__main__":
    main()
