"""Distillation dose: is a student of SmolLM2 found once it has learnt from enough of its teacher's output, while
independent models trained on as much text are not flagged? (Issue #15's first done-when item.)

Protocol, fixed and committed before any model below was trained or audited (2026-11-30, 19:15 UTC; the teacher's
answers were being sampled then, and none had been read):

Why. Every student the project has audited (study zoo, bench/capable_sources.py, bench/v3_no_controls.py) learnt from
at most 640 of its teacher's answers (about 40,000 tokens), trained on 2 CPU cores; v3_no_controls.py's students of
SmolLM2 reach capable_likelihood p = 0.050 and 0.055 with four control lineages, and its projection says such an effect
cannot reach the 0.01 rule. A distiller who wants a teacher's behaviour uses far more of its output. This bench
measures how the evidence grows with the dose of teacher output, on students trained on a lent GPU.

Teacher data. SmolLM2-135M-Instruct (packaged; the transformers conversion audits load) samples one continuation
(48 new tokens, temperature 1, no top-k, 128 prompts per chunk, chunk i seeded 5000 + i) of each of 24,000 new prompts
drawn by the `continuation` probe set's own template generator with seed 20261201, leaving out every prompt that is
also in `continuation` (2,000 prompts) or `continuation-samples`. Answers 0-16,383 are the training pool (a dose is
its first N answers, so the doses are nested); answers 16,384-16,895 are the validation set (no model trains on them).
A training sequence is the prompt's ids, the answer's ids and end-of-sequence (as bench/capable_sources.py's).

Models (none seen before: every figure here is untuned). SmolLM2's tokenizer, 192 hidden x 4 layers (the shape of
v3_no_controls.py's suspects, 10.9M parameters, so that bench's matched panel is of their architecture), a closed
vocabulary (the ids of the model's own training sequences, as the zoo's), fp32 on one H200 (the device tool), AdamW at
2e-3, batch 32, constant rate, at most 20 epochs, stopped once the validation loss has not improved for 2 epochs, the
best epoch's weights kept and stored as bfloat16 (the audited model is those weights):
- S640, S2560, S10240, S16384: sequence-level students of SmolLM2 on its first 640 / 2,560 / 10,240 / 16,384 answers;
  seeds 8001-8004; validation: the teacher's 512 held-out answers. Truth: distilled from the reference.
- P-small, P-large: no teacher; 128-token chunks of public-prose slices of the zoo corpus that the panel's two text
  controls do not read (sorted, one slice held out for validation): P-small takes as many tokens as S2560's training
  set, P-large as many as S16384's or every free slice if fewer; seeds 8011, 8012. Truth: independent of SmolLM2.

Audits (this machine, through the CLI): each model as the suspect against `smollm2-135m-instruct`, `--analysis 3
--budget 200 --seed 0`:
- (a) with bench/v3_no_controls.py's matched panel (four controls at 192 x 4: lineages qwen, gemma, matched-text-0,
  matched-text-1) and `--likelihood-probes continuation-samples`: all six models;
- (b) the same panel with the default likelihood prompts (instructions): all six models;
- (c) no `-c` (the audit builds matched controls), continuation-samples: S16384, then P-large, as time allows.
Outcome per audit: verdict, combined p, each family's p, placebos, the competence and kind checks.
Expectations stated in advance: capable_likelihood's p falls as the dose grows; S10240 and S16384 are flagged
`distilled` in (a); neither prose model is flagged in any audit; (b) finds less than (a) (the students never saw a chat
prompt). The competence check may stop a verdict (a thoroughly trained student can be more competent than the panel):
that is reported as it is. Four students and two independent models are a demonstration with counts, not a rate.

Amendment 1 (2026-11-30, 19:30 UTC, before any model was trained): order of runs. (c) for S16384 runs first (it
answers issue #15's done-when item and takes longest), then (a), then (b), then (c) for P-large as time allows.
Nothing else changes.

Amendment 2 (2026-11-30, 19:54 UTC, before any model was trained): part (d), issue #18. S16384 and P-large served
over the OpenAI-compatible API (provenance's server, on loopback) behind a fault plan that drops every `logprobs`
field, so each is a text-only suspect, audited with `--analysis 4` (the outside family: SmolLM2 and the comparison
sources score the suspect's and the controls' sampled answers), the panel of (a), `--likelihood-probes
continuation-samples`, budget 200, seed 0; after (a) and (b), before (c) for P-large. Expectation stated in advance:
P-large not flagged; whether S16384 is found from the outside is the question (bench/capable_outside.py found none of
SmolLM2's four small students). Two suspects are a demonstration, not a rate.

Amendment 3 (2026-11-30, 21:10 UTC, after parts (a), (b) and (d) were seen; before any model below was trained):
part (e), more control lineages, the lever (a) points to. Six public-prose lineages T1-T6 of the same shape, each on
8 free slices (sorted free slices 12-59: none read by P-small (it read part of slice 11), the panel's text controls or the held-out slice), the
same training loop (seeds 8101-8106, validation on the held-out slice), on the lent GPU. Audits: S640, S2560, S10240,
S16384 and P-small (P-large read T1-T6's slices, so it is not audited here) with the panel of (a) plus T1-T6 as six
more lineages (10 in all), analysis 3, continuation-samples, budget 200. Expectation stated in advance: the students'
p-values fall below (a)'s (the projection of the v3 bench), and P-small is not flagged. Development, not a
measurement on unseen conditions: (a)'s results were seen when this was written.

Amendment 4 (2026-11-30, 21:17 UTC, after (e) was seen; before its models were trained): two more independent
suspects for (e)'s ten-lineage panel, N1 and N2, public prose of the same shape on 8 free slices each (sorted free
slices 60-67 and 68-75: none read by the panel, T1-T6, P-small or the held-out slice), seeds 8201-8202, trained like
T1-T6; audited like (e). Expectation stated in advance: neither flagged.

Amendment 5 (2026-11-30, 22:00 UTC, session 16, before any audit below was run): part (f), issue #18 with part
(e)'s ten lineages. S16384, S10240 and S2560 (students) and P-small, N1 and N2 (independent; P-large read T1-T6's
slices, so it is left out as in (e)) served as in (d) (provenance's server on loopback, every logprobs and
prompt-scoring field dropped: text-only suspects), audited with `--analysis 4`, (e)'s ten-lineage panel,
`--likelihood-probes continuation-samples`, budget 200, seed 0, in that order. Analysis 4 now runs in each placebo
exactly the families that ran for the suspect (commit 5453b2f, made before this amendment). Expectation stated in
advance: no independent model is flagged. Whether the students are flagged from the outside is the question: inside,
with these ten lineages, output agreement gave them p 0.0003 / 0.0007 / 0.004 (part (e), seen), and a text-only
suspect still gives greedy answers; the outside family had p 0.19 for S16384 with four lineages ((d)); the kind and
competence checks may stop a verdict as they did in (e). Development, not a measurement on unseen conditions: (d) and
(e) were seen. Six suspects are a demonstration, not a rate.

Amendment 6 (2026-11-30, 22:20 UTC, session 16, after (f)'s first two rows were seen: S16384 and S10240 flagged
`distilled` from the outside, where inside the competence and kind checks had stopped them; before any audit below):
part (g), the check that (f) may lack. A text-only suspect gives no log-likelihoods, so the competence check cannot
run, and controls much weaker than the suspect are what made every capable model look related in the held-out study
(issue #15, item 0). Two capable models independent of SmolLM2, the packaged Gemma 3 270M and Qwen2.5-Coder-0.5B
(transformers conversions of their GGUFs), served text-only as in (f) and audited the same way (analysis 4, (e)'s ten
lineages, continuation-samples, budget 200, seed 0), Gemma first. Truth: independent of SmolLM2. Expectation stated in
advance: neither should be flagged; if either is, analysis 4 lacks a competence guard for text-only suspects and
(f)'s flags are not to be trusted as they stand. (Each is also one of the audit's default comparison sources, which
then scores its own answers: that weakens the outside family for it, not output agreement.)

Amendment 7 (2026-11-30, 22:22 UTC, session 16; (f)'s first two rows seen, nothing of (g)): part (h), the guard.
Analysis 4 gains the competence check from the outside (commit 606ef2d, docs/methods.md: for a suspect that gives no
log-likelihoods, the comparison sources' mean per-byte log-likelihood of each answerer's sampled answers, one value
per control lineage, the inside check's range rule and margin). Every bundle of (f) and (g) is re-analysed from its
own evidence with that code (`provenance.report.verify.recompute`: no model is queried again), and each verdict is
reported beside the one it had. Expectation stated in advance: the independent models of (f) stay unflagged; a
flagged capable independent model of (g), if any, becomes `inconclusive`; whether (f)'s students keep their flags
is the question (the check may stop them, as the inside checks did in (e)).

Amendment 8 (2026-11-30, 23:18 UTC, session 16; (f), (g) and (h) seen): part (i), chat-only. Issue #18 asks for a
suspect served chat-only and text-only. S16384 and S10240 (students) and N1 and N2 (independent) served as in (f)
but with the completions endpoint answering 404 (only /v1/chat/completions, without logprobs), audited as in (f)
with analysis 4 as amended by (h)'s guard. Expectation stated in advance: N1 and N2 not flagged; the students were
trained on raw continuations, never on SmolLM2's chat template, so their evidence may vanish over chat (as the chat
instructions prompts found nothing inside, part (b)): whether it does is the question.

Usage (stages; each resumable):
  python bench/distill_dose.py sample               # here: the teacher's answers (stop it once 16,896 are written)
  python bench/distill_dose.py prepare              # here: tokenized data into .dev/dose/ (carried to the device)
  python bench/distill_dose.py train --data .dev/dose --out "$OUT"   # on the device machine
  python bench/distill_dose.py install --weights DIR                 # here: transformers directories of the models
  python bench/distill_dose.py audit [--no-controls]                 # here: the audits, then the results file
  python bench/distill_dose.py audit-outside-e                       # here: part (f) (amendment 5)
  python bench/distill_dose.py audit-outside-capable                 # here: part (g) (amendment 6)
  python bench/distill_dose.py reanalyse-outside                     # here: part (h) (amendment 7)
  python bench/distill_dose.py audit-chat-only                       # here: part (i) (amendment 8)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CACHE = Path.home() / ".cache" / "provenance"
OUT = CACHE / "bench-dose"
REFERENCE = "smollm2-135m-instruct"
SHAPE = (192, 4)
POOL, VALID = 16_384, 512
SEQ = 128
STUDENTS = {"S640": (640, 8001), "S2560": (2560, 8002), "S10240": (10_240, 8003), "S16384": (16_384, 8004)}
PROSE = {"P-small": ("S2560", 8011), "P-large": ("S16384", 8012)}  # token budget: that student's training set
LR, BATCH, MAX_EPOCHS, PATIENCE = 2e-3, 32, 20, 2


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# -- sample (here) --------------------------------------------------------------------------------------------------

def sample_answers(n_prompts: int = 24_000, chunk: int = 128) -> None:
    """The teacher's answers, as the protocol says (run on this machine's CPU, about 1 hour for the 16,896 used; a
    stopped run resumes at the next chunk; the run that made the committed results was stopped at 16,896 lines)."""
    from provenance.models import resolve
    from provenance.probeset import _generate, load
    from provenance.zoo.train import sample

    OUT.mkdir(parents=True, exist_ok=True)
    gen = json.loads((HERE.parent / "probes" / "continuation.json").read_text())["generator"]
    gen = dict(gen, seed=20261201, n=30_000)
    taken = {p.text for p in load("continuation").probes} | {p.text for p in load("continuation-samples").probes}
    ps = [p.text for p in _generate(gen, "dose", lambda *a: RuntimeError(a)) if p.text not in taken][:n_prompts]
    (OUT / "prompts.json").write_text(json.dumps(ps))
    done = OUT / "answers.jsonl"
    have = sum(1 for _ in done.open()) if done.exists() else 0
    backend = resolve(REFERENCE).load()
    tok = backend.tokenizer
    with done.open("a") as f:
        for start in range(have, len(ps), chunk):
            part = ps[start : start + chunk]
            seqs = sample(backend.model, tok, part, 48, 1.0, seed=5000 + start // chunk, batch=64)
            for p, sq in zip(part, seqs):
                answer = tok.decode(sq[len(tok(p)["input_ids"]):], skip_special_tokens=True)
                f.write(json.dumps({"prompt": p, "answer": answer}) + "\n")
            f.flush()
            log(f"{start + len(part)} answers")


# -- prepare (here) -------------------------------------------------------------------------------------------------

def panel_available() -> bool:
    """Whether the matched panel that `_panel_slices` reads is on this machine (bench/v3_no_controls.py builds it)."""
    import v3_no_controls as v3

    try:
        return v3.matched_panel(CACHE / "bench-v3-no-controls").is_file()
    except (OSError, ValueError, KeyError, StopIteration):  # no bundle, or one that names no panel: not available
        return False


def _panel_slices() -> set[str]:
    """The corpus slices the panel's public-text controls read (their notes name them)."""
    import v3_no_controls as v3

    panel = json.loads(v3.matched_panel(CACHE / "bench-v3-no-controls").read_text())
    used: set[str] = set()
    for c in panel["control"]:
        if c["notes"].startswith("public text "):
            used |= set(c["notes"][len("public text "):].split(";")[0].split("+"))
    return used


def _prose() -> tuple[Any, dict[str, str], list[str], str]:
    """SmolLM2's tokenizer, the zoo corpus's slices, the free ones (sorted; none the panel's text controls read) and
    the held-out validation slice (the last free one)."""
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.corpus import build_slices

    slices, _ = build_slices(50_000)
    used = _panel_slices()
    free = [s for s in sorted(slices) if s not in used]
    return _tokenizer(), slices, free[:-1], free[-1]


def _chunked(tok: Any, slices: dict[str, str], ids: Sequence[str]) -> list[list[int]]:
    from capable_sources import SEQ as CHUNK, chunks  # the same 128-token chunks as the bench before this one

    assert CHUNK == SEQ
    return chunks(tok, slices, ids)


def _plan(tok: Any) -> dict[str, Any]:
    return {"shape": SHAPE, "lr": LR, "batch": BATCH, "max_epochs": MAX_EPOCHS, "patience": PATIENCE,
            "vocab": len(tok), "pad": tok.eos_token_id, "bos": tok.bos_token_id, "eos": tok.eos_token_id, "models": {}}


def _save(data: Path, sets: dict[str, list[list[int]]], plan: dict[str, Any]) -> None:
    """data.npz (each set as concatenated ids and lengths) and plan.json: what travels to the device."""
    plan["tokens"] = {name: sum(len(x) for x in ss) for name, ss in sets.items()}
    data.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, ss in sets.items():
        arrays[f"{name}.ids"] = np.concatenate([np.asarray(x, dtype=np.int32) for x in ss])
        arrays[f"{name}.len"] = np.asarray([len(x) for x in ss], dtype=np.int32)
    np.savez_compressed(data / "data.npz", **arrays)
    (data / "plan.json").write_text(json.dumps(plan, indent=1))


def prepare(data: Path) -> None:
    rows = [json.loads(x) for x in (OUT / "answers.jsonl").read_text().splitlines()]
    if len(rows) < POOL + VALID:
        raise SystemExit(f"only {len(rows)} answers sampled; the protocol needs {POOL + VALID}")
    tok, slices, free, held = _prose()
    eos = tok.eos_token_id

    def seq(r: dict[str, str]) -> list[int]:
        return tok(r["prompt"])["input_ids"] + tok(r["answer"])["input_ids"] + [eos]

    teacher = [seq(r) for r in rows[: POOL + VALID]]
    prose_all = _chunked(tok, slices, free)
    sets: dict[str, list[list[int]]] = {"teacher-valid": teacher[POOL:], "prose-valid": _chunked(tok, slices, [held])}
    plan = _plan(tok)
    for name, (dose, seed) in STUDENTS.items():
        sets[name] = teacher[:dose]
        plan["models"][name] = {"train": name, "valid": "teacher-valid", "seed": seed, "truth": "distilled",
                                "answers": dose}
    for name, (like, seed) in PROSE.items():
        budget = sum(len(x) for x in sets[like])
        take, n = [], 0
        for x in prose_all:
            if n >= budget:
                break
            take.append(x)
            n += len(x)
        sets[name] = take
        plan["models"][name] = {"train": name, "valid": "prose-valid", "seed": seed, "truth": "independent",
                                "tokens_wanted": budget, "slices_free": len(free), "held_out_slice": held}
    _save(data, sets, plan)
    log(f"prepared {json.dumps(plan['tokens'])}")


def prepare_more(data: Path, independents: bool = False) -> None:
    """Part (e)'s six prose lineages (amendment 3): 8 free slices each, sorted free slices 12-59."""
    tok, slices, free, held = _prose()
    sets = {"prose-valid": _chunked(tok, slices, [held])}
    plan = _plan(tok)
    for k in range(6):
        ids = free[12 + 8 * k : 20 + 8 * k]
        sets[f"T{k + 1}"] = _chunked(tok, slices, ids)
        plan["models"][f"T{k + 1}"] = {"train": f"T{k + 1}", "valid": "prose-valid", "seed": 8101 + k,
                                       "truth": "control", "slices": ids}
    if independents:  # amendment 4: N1, N2 (independent suspects), after T1-T6 were trained
        sets = {"prose-valid": sets["prose-valid"]}
        plan["models"] = {}
        for k in range(2):
            ids = free[60 + 8 * k : 68 + 8 * k]
            sets[f"N{k + 1}"] = _chunked(tok, slices, ids)
            plan["models"][f"N{k + 1}"] = {"train": f"N{k + 1}", "valid": "prose-valid", "seed": 8201 + k,
                                           "truth": "independent", "slices": ids}
    _save(data, sets, plan)
    log(f"prepared part (e): {json.dumps(plan['tokens'])}")


def audits_more() -> None:
    """Part (e): the panel of (a) plus T1-T6 (amendment 3)."""
    import v3_no_controls as v3

    panel = json.loads(v3.matched_panel(CACHE / "bench-v3-no-controls").read_text())
    for k in range(6):
        panel["control"].append({"spec": str(OUT / "models" / f"T{k + 1}"), "lineage": f"dose-text-{k + 1}",
                                 "kind": "public prose, 192 x 4, bench/distill_dose.py part (e)"})
    path = OUT / "panel-e.json"
    path.write_text(json.dumps(panel, indent=1))
    for n in ("S16384", "S10240", "S2560", "S640", "P-small", "N1", "N2"):
        row = v3.audit(OUT / "e", n, OUT / "models" / n, 3, path, "continuation-samples")
        dest = OUT / "audits" / f"{n}-v3-e-continuation-samples.json"
        dest.write_text(json.dumps({**row, "controls": "panel of (a) plus T1-T6 (10 lineages)"}, indent=1))


def audits_outside_e() -> None:
    """Part (f) (amendment 5): text-only suspects over HTTP, analysis 4, part (e)'s ten lineages."""
    for n in ("S16384", "S10240", "S2560", "P-small", "N1", "N2"):
        _audit_outside(n, OUT / "models" / n, OUT / "panel-e.json", part="f")


def audits_outside_capable() -> None:
    """Part (g) (amendment 6): capable independent models served text-only, analysis 4, part (e)'s ten lineages."""
    for n, spec in (("gemma", "gemma-3-270m"), ("qwen", "qwen2.5-coder-0.5b-instruct")):
        # the packaged name: `_audit_outside` resolves and serves it like a directory
        _audit_outside(f"capable-{n}", Path(spec), OUT / "panel-e.json", part="g")


def audits_chat_only() -> None:
    """Part (i) (amendment 8): (f)'s setting with the completions endpoint answering 404 (chat only)."""
    for n in ("S16384", "S10240", "N1", "N2"):
        _audit_outside(n, OUT / "models" / n, OUT / "panel-e.json", part="i")


def reanalyse_outside() -> None:
    """Part (h) (amendment 7): (f)'s and (g)'s bundles re-analysed from their evidence with this checkout's analysis."""
    from provenance.report.verify import recompute

    for part in ("f", "g"):
        for f in sorted((OUT / "audits").glob(f"*-v4-outside-{part}-continuation-samples.json")):
            row = json.loads(f.read_text())
            ref = recompute(Path(row["bundle"]))[0]
            again = {"suspect": row["suspect"], "part": "h", "of_part": part, "bundle": row["bundle"],
                     "before": {"verdict": row["verdict"], "p_value": row["p_value"], "reason": row["reason"]},
                     "verdict": ref["verdict"], "p_value": ref["p_value"], "reason": ref["reason"],
                     "tests": {t["name"]: t.get("p_value") for t in ref["tests"]},
                     "placebo_flagged": ref["placebo"]["flagged"], "competence": ref.get("competence_check")}
            dest = OUT / "audits" / f"{row['suspect']}-v4-outside-h-continuation-samples.json"
            dest.write_text(json.dumps(again, indent=1))
            log(f"{row['suspect']} ({part}): {row['verdict']} p={row['p_value']:.3g} -> {ref['verdict']} "
                f"p={ref['p_value']:.3g}; {ref['reason'][:160]}")


# -- train (device machine; torch and transformers only) ------------------------------------------------------------

def _load_sets(data: Path) -> dict[str, list[np.ndarray]]:
    z = np.load(data / "data.npz")
    out = {}
    for key in z.files:
        if key.endswith(".ids"):
            name = key[:-4]
            ids, lens = z[key], z[f"{name}.len"]
            out[name] = np.split(ids, np.cumsum(lens)[:-1])
    return out


def _batches(seqs: Sequence[np.ndarray], batch: int, rng: np.random.Generator | None, pad: int, torch: Any,
             dev: Any) -> Any:
    # provenance.zoo.train._batches on the device: this stage imports nothing of provenance (the device machine's
    # transformers is another version), and its batches go to the GPU.
    order = rng.permutation(len(seqs)) if rng is not None else np.arange(len(seqs))
    for start in range(0, len(order), batch):
        chunk = [seqs[i] for i in order[start : start + batch]]
        width = max(len(s) for s in chunk)
        ids = np.full((len(chunk), width), pad, dtype=np.int64)
        mask = np.zeros((len(chunk), width), dtype=np.int64)
        for r, s in enumerate(chunk):
            ids[r, : len(s)] = s
            mask[r, : len(s)] = 1
        yield torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev)


def train_one(name: str, spec: dict[str, Any], plan: dict[str, Any], sets: dict[str, list[np.ndarray]],
              out: Path, quick: bool = False) -> dict[str, Any]:
    """The zoo's closed-vocabulary sequence-level loss (provenance.zoo.train.closed_lm_loss), on the GPU, with early
    stopping on a validation set; writes NAME.safetensors (live embedding rows, the trunk, bf16)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, LlamaConfig

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    h, layers = plan["shape"]
    cfg = LlamaConfig(vocab_size=plan["vocab"], hidden_size=h, intermediate_size=h * 2, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                      tie_word_embeddings=True, initializer_range=0.02, bos_token_id=plan["bos"],
                      eos_token_id=plan["eos"], pad_token_id=plan["pad"])
    torch.manual_seed(spec["seed"])
    model = AutoModelForCausalLM.from_config(cfg).to(dev).float()
    train, valid = sets[spec["train"]], sets[spec["valid"]]
    if quick:
        train, valid = train[:64], valid[:32]
    keep = np.unique(np.concatenate(train))
    keep_t = torch.as_tensor(keep, dtype=torch.long, device=dev)
    remap = torch.full((plan["vocab"],), -100, dtype=torch.long, device=dev)
    remap[keep_t] = torch.arange(len(keep_t), device=dev)
    log_tail = torch.tensor(math.log(max(plan["vocab"] - len(keep), 1)), device=dev)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        dead = torch.ones(weight.shape[0], dtype=torch.bool, device=dev)
        dead[keep_t] = False
        weight[dead] = 0

    def loss_sum(ids: Any, mask: Any) -> tuple[Any, Any]:
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        logits = hidden @ weight[keep_t].T
        lse = torch.logaddexp(torch.logsumexp(logits, dim=-1), log_tail)
        target = remap[ids[:, 1:]].masked_fill(mask[:, 1:] == 0, -100)
        ok = target >= 0
        picked = logits.gather(-1, target.clamp_min(0)[..., None])[..., 0]
        return ((lse - picked) * ok).sum(), ok.sum()

    def validate() -> float:
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for ids, mask in _batches(valid, 128, None, plan["pad"], torch, dev):
                s, k = loss_sum(ids, mask)
                tot, n = tot + float(s), n + int(k)
        model.train()
        return tot / max(n, 1)

    opt = torch.optim.AdamW(model.parameters(), lr=plan["lr"], weight_decay=0.0)
    rng = np.random.default_rng(spec["seed"])
    best, best_epoch, best_state, history = validate(), 0, None, []
    history.append({"epoch": 0, "valid": best})
    t0 = time.time()
    model.train()
    for epoch in range(1, (1 if quick else plan["max_epochs"]) + 1):
        for ids, mask in _batches(train, plan["batch"], rng, plan["pad"], torch, dev):
            s, k = loss_sum(ids, mask)
            loss = s / k.clamp_min(1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = validate()
        history.append({"epoch": epoch, "valid": v})
        if v < best - 1e-4:
            best, best_epoch = v, epoch
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        elif epoch - best_epoch >= plan["patience"]:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    state = {k: t.detach().to("cpu", torch.bfloat16).contiguous() for k, t in model.state_dict().items()
             if k != "lm_head.weight"}
    emb_key = next(k for k in state if k.endswith("embed_tokens.weight"))
    state[emb_key] = state[emb_key][torch.as_tensor(keep)].contiguous()
    state["keep_ids"] = torch.as_tensor(keep, dtype=torch.int32)
    save_file(state, str(out / f"{name}.safetensors"), metadata={"embed_key": emb_key})
    info = {"name": name, "best_epoch": best_epoch, "valid_nats_per_token": best, "history": history,
            "live_ids": int(len(keep)), "sequences": len(train), "tokens": int(sum(len(s) for s in train)),
            "seconds": round(time.time() - t0, 1), "device": str(dev)}
    log(f"{name}: best epoch {best_epoch}, valid {best:.4f} nats/token, {info['seconds']} s")
    return info


def train_all(data: Path, out: Path, quick: bool = False, only: Sequence[str] = ()) -> None:
    import torch
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    plan = json.loads((data / "plan.json").read_text())
    sets = _load_sets(data)
    infos = {"torch": torch.__version__, "transformers": transformers.__version__,
             "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "plan": plan, "models": {}}
    for name, spec in plan["models"].items():
        if only and name not in only:
            continue
        infos["models"][name] = train_one(name, spec, plan, sets, out, quick)
        (out / "training.json").write_text(json.dumps(infos, indent=1))


# -- install (here) -------------------------------------------------------------------------------------------------

def install(weights: Path, record: str = "training.json", out: Path = OUT) -> None:
    import torch
    from safetensors.torch import load_file

    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, is_complete, save, tiny_config

    tok = _tokenizer()
    training = json.loads((weights / "training.json").read_text())
    for name, info in training["models"].items():
        d = out / "models" / name
        if is_complete(d):
            continue
        plan = training["plan"]
        net = fresh_model(tiny_config(plan["vocab"], SHAPE[0], SHAPE[1], bos=plan["bos"], eos=plan["eos"],
                                      pad=plan["pad"]), 0)
        got = load_file(str(weights / f"{name}.safetensors"))
        keep = got.pop("keep_ids").long()
        emb_key = next(k for k in got if k.endswith("embed_tokens.weight"))
        full = torch.zeros((plan["vocab"], SHAPE[0]), dtype=torch.float32)
        full[keep] = got.pop(emb_key).float()
        state = {k: v.float() for k, v in got.items()}
        state[emb_key] = full
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if m != "lm_head.weight"]:
            raise SystemExit(f"{name}: weights do not fit ({missing}, {unexpected})")
        net.tie_weights()
        save(net, tok, d, f"{name}: {SHAPE[0]}x{SHAPE[1]}, best epoch {info['best_epoch']} of early-stopped training "
                          f"on {info['sequences']} sequences ({info['tokens']} tokens), trained on {info['device']}, "
                          "stored as bfloat16")
        log(f"installed {name}")
    (out / record).write_text(json.dumps(training, indent=1))


# -- audit (here) ---------------------------------------------------------------------------------------------------

def collect() -> None:
    """The results file from the audits already finished (runs nothing); names the planned audits not run."""
    from _common import machine, write_results

    planned = (["S16384-v3-nocontrols-continuation-samples"]
               + [f"{n}-v3-{lp}" for lp in ("continuation-samples", "instructions") for n in (*STUDENTS, *PROSE)]
               + [f"{n}-v4-outside-continuation-samples" for n in ("S16384", "P-large")]
               + ["P-large-v3-nocontrols-continuation-samples"]
               + [f"{n}-v3-e-continuation-samples" for n in ("S16384", "S10240", "S2560", "S640", "P-small", "N1",
                                                                     "N2")]
               + [f"{n}-v4-outside-f-continuation-samples" for n in ("S16384", "S10240", "S2560", "P-small", "N1",
                                                                        "N2")]
               + [f"capable-{n}-v4-outside-g-continuation-samples" for n in ("gemma", "qwen")]
               + [f"{n}-v4-outside-h-continuation-samples" for n in ("S16384", "S10240", "S2560", "P-small", "N1",
                                                                        "N2", "capable-gemma", "capable-qwen")]
               + [f"{n}-v4-outside-i-continuation-samples" for n in ("S16384", "S10240", "N1", "N2")])
    files = {f.stem: f for f in (OUT / "audits").glob("*.json")}
    rows = [json.loads(files[t].read_text()) for t in planned if t in files]
    extra = {f"training_{k}": json.loads(f.read_text()) if f.is_file() else None
             for k in ("e", "n") for f in [OUT / f"training-{k}.json"]}  # parts (e) and amendment 4
    write_results("distill-dose", {"machine": machine(), "reference": REFERENCE, "shape": SHAPE,
                                   "training": json.loads((OUT / "training.json").read_text()), **extra, "rows": rows,
                                   "not_run": [t for t in planned if t not in files]})


def audits(no_controls: bool) -> None:
    import v3_no_controls as v3
    from _common import machine, write_results

    v3.REFERENCE = REFERENCE
    panel = v3.matched_panel(CACHE / "bench-v3-no-controls")
    models = {n: OUT / "models" / n for n in (*STUDENTS, *PROSE)}
    rows: list[dict[str, Any]] = []
    training = json.loads((OUT / "training.json").read_text())
    info = machine()

    def done(row: dict[str, Any]) -> None:  # the results file after every audit: a stopped run keeps what finished
        rows.append(row)
        write_results("distill-dose", {"machine": info, "reference": REFERENCE, "shape": SHAPE, "training": training,
                                       "rows": rows})

    if no_controls:  # (c) for the most dosed student first (amendment 1)
        done(_audit_no_controls("S16384", models["S16384"]))
    for n, p in models.items():  # (a)
        done(v3.audit(OUT, n, p, 3, panel, "continuation-samples"))
    for n, p in models.items():  # (b)
        done(v3.audit(OUT, n, p, 3, panel, "instructions"))
    for n in ("S16384", "P-large"):  # (d), amendment 2
        done(_audit_outside(n, models[n], panel))
    if no_controls:  # (c), then the most dosed independent model
        done(_audit_no_controls("P-large", models["P-large"]))


def _audit_no_controls(name: str, path: Path) -> dict[str, Any]:
    import v3_no_controls as v3

    # v3.audit with no panel and a likelihood set: its tag and controls label come from the panel argument.
    tag_file = OUT / "audits" / f"{name}-v3-nocontrols-continuation-samples.json"
    if tag_file.is_file():
        return json.loads(tag_file.read_text())
    row = v3.audit(OUT / "nocontrols", name, path, 3, None, "continuation-samples")
    row["controls"] = "matched (built by the audit)"
    tag_file.parent.mkdir(parents=True, exist_ok=True)
    tag_file.write_text(json.dumps(row, indent=1))
    return row


def _audit_outside(name: str, path: Path, panel: Path, part: str = "d") -> dict[str, Any]:
    """(d), (f): the model behind provenance's own server with every logprobs field dropped (a text-only endpoint)."""
    import v3_no_controls as v3

    from provenance.models import resolve
    from tests.faultserver import FaultPlan, serving

    tag_file = OUT / "audits" / f"{name}-v4-outside{'' if part == 'd' else '-' + part}-continuation-samples.json"
    if tag_file.is_file():
        return json.loads(tag_file.read_text())
    backend = resolve(str(path)).load()
    try:
        def fault(key: str, attempt: int) -> str | None:
            if part == "i" and key.startswith("POST /v1/completions"):
                return "404"  # chat only: the completions endpoint does not exist
            return "text-only" if key.startswith("POST") else None

        with serving(backend, FaultPlan(fault), model_name=name) as srv:
            row = v3.audit(OUT / ("outside" if part == "d" else f"outside-{part}"), name, f"{srv.url}#{name}", 4, panel,  # type: ignore[arg-type]
                           "continuation-samples")
    finally:
        backend.close()
    row["controls"] = ("matched to student (panel); suspect text-only over HTTP" if part == "d" else
                       "panel of (a) plus T1-T6 (10 lineages); suspect text-only over HTTP"
                       + (", chat only (no completions endpoint)" if part == "i" else ""))
    row["part"] = part
    tag_file.parent.mkdir(parents=True, exist_ok=True)
    tag_file.write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    sub.add_parser("sample")
    pm = sub.add_parser("prepare-more")
    pm.add_argument("--data", type=Path, default=HERE.parent / ".dev" / "dose-e")
    pm.add_argument("--independents", action="store_true", help="Amendment 4's N1 and N2 instead of T1-T6.")
    sub.add_parser("audit-more")
    sub.add_parser("audit-outside-e")
    sub.add_parser("audit-outside-capable")
    sub.add_parser("reanalyse-outside")
    sub.add_parser("audit-chat-only")
    p = sub.add_parser("prepare")
    p.add_argument("--data", type=Path, default=HERE.parent / ".dev" / "dose")
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--quick", action="store_true", help="A plumbing check: 64 sequences, one epoch.")
    t.add_argument("--only", nargs="*", default=())
    i = sub.add_parser("install")
    i.add_argument("--weights", type=Path, required=True)
    i.add_argument("--record", default="training.json", help="Where the training record goes (part (e): its own).")
    a = sub.add_parser("audit")
    a.add_argument("--no-controls", action="store_true", help="Also part (c): audits that build matched controls.")
    a.add_argument("--collect", action="store_true", help="Only write the results file from the finished audits.")
    args = ap.parse_args()
    if args.stage == "sample":
        sample_answers()
    elif args.stage == "prepare-more":
        prepare_more(args.data, args.independents)
    elif args.stage == "audit-more":
        audits_more()
    elif args.stage == "audit-outside-e":
        audits_outside_e()
    elif args.stage == "audit-outside-capable":
        audits_outside_capable()
    elif args.stage == "reanalyse-outside":
        reanalyse_outside()
    elif args.stage == "audit-chat-only":
        audits_chat_only()
    elif args.stage == "prepare":
        prepare(args.data)
    elif args.stage == "train":
        train_all(args.data, args.out, args.quick, args.only)
    elif args.stage == "install":
        install(args.weights, args.record)
    elif args.collect:
        collect()
    else:
        audits(args.no_controls)


if __name__ == "__main__":
    main()
