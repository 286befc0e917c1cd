"""Chat distillation: is a student trained on SmolLM2's chat answers flagged when it is served chat-only and text-only,
while independent chat students are not? (Issue #18's first done-when item.)

Protocol, fixed and committed before any answer below was sampled or any model trained (2026-12-01, session 17):

Why. Issue #18 asks for a sequence-level student of SmolLM2 served chat-only (no completions endpoint, no logprobs) to
be flagged while an independent student is not. bench/distill_dose.py part (i) served its students chat-only, but
they had learnt SmolLM2's raw continuations, never its chat template, and over chat they answered mostly empty text
(no evidence either way). This bench trains students on SmolLM2's *chat* answers, and controls of the same format.

Prompts. 6,000 chat instructions: 12 fixed templates (TEMPLATES), each with one word slot, filled with the words of
frequency rank 150-1,349 in the zoo corpus (lower-case alphabetic words of 5-12 letters, counted over every slice);
the 14,400 prompts shuffled with seed 20261202, the first 6,000 kept, leaving out any prompt that is also in the
`instructions` or `identity` probe sets (the audit's own prompts).

Teacher data (this machine, the packaged models' transformers conversions, their own chat templates, 64 new tokens,
temperature 1, no top-k, each prompt's seed 7000 + its index):
- SmolLM2-135M-Instruct answers prompts 0-5,631: 0-5,119 the training pool, 5,120-5,631 the validation set.
- Qwen2.5-Coder-0.5B-Instruct answers prompts 0-2,815: 0-2,559 training, 2,560-2,815 validation.
A training sequence is SmolLM2's chat template around the prompt (its default system line included, as the served
student renders it), the answer's ids and end-of-sequence (`<|im_end|>`), all in SmolLM2's tokenizer.

Models: bench/distill_dose.py's shape and loop (192 x 4, closed vocabulary, AdamW 2e-3, batch 32, at most 20 epochs,
early stopping with patience 2, best epoch kept, bf16), on this machine's CPU:
- SC2560, SC5120: students of SmolLM2's chat answers (first 2,560 / 5,120), seeds 8301, 8302. Truth: distilled.
- QC2560: a student of Qwen's chat answers to the same first 2,560 prompts, seed 8311. Truth: independent of SmolLM2
  (Qwen is also one of the audit's comparison sources).
- CT1-CT6 (controls) and CN1 (an independent suspect): chat-format public prose. Each reads the slices its namesake
  read (T1-T6 and N1 of distill_dose part (e)), cut into 64-token chunks; chunk j is the answer to prompt j in the
  chat template (prompts 0, 1, ...), so the model learns the chat format, not any teacher; seeds 8321-8326, 8331;
  validation: the held-out slice, cut the same way, after prompts 5,632 onwards. Truth: independent of SmolLM2.
  (CTk replaces Tk in a panel: they read the same text, so they are one lineage.)

Audits (this machine, the CLI): each suspect behind provenance's server on loopback with the completions endpoint
answering 404 and every logprobs and prompt-scoring field dropped (distill_dose part (i)'s fault plan: chat-only,
text-only), against `smollm2-135m-instruct`, `--analysis 4 --likelihood-probes instructions --budget 200 --seed 0`:
- (A) panel: CT1-CT6 (six chat-format lineages);
- (B) panel: CT1-CT6 plus distill_dose's panel (a) (students of Qwen, Gemma and two public-text lineages: four more
  lineages, ten in all).
Order: SC2560 (A), CN1 (A), QC2560 (A), then the same in (B), then SC5120 in (A) and (B) as time allows.
Expectations stated in advance: CN1 and QC2560 are not flagged in either panel; SC2560 and SC5120 are flagged
`distilled` (the question). The outside competence check may call a student `inconclusive` (more fluent than the
chat-format prose controls): that is reported as it is. Two students and two independent models are a demonstration
with counts, not a rate.

Amendment 1 (2026-12-02, 08:51 UTC, session 24; written after SC5120 (A) was seen: `inconclusive`, combined p =
0.018, outside family 0.0089 on 5 degrees of freedom; before any model below was trained or any audit below run):
panel (C), more control lineages of the suspect's kind, the lever named in BENCHMARKS.md when SC5120 (A) was reported.
CT7-CT10: chat-format public prose exactly like CT1-CT6 (seeds 8327-8330), each on 8 corpus slices: the sorted slices
read by none of T1-T6, N1, N2 or the held-out validation slice, dealt 8 per model in sorted order (the first 32 of
them; N2's slices stay free for a second independent suspect). (C) = CT1-CT10, ten chat-format lineages. Audits, in
this order and as above otherwise: SC5120 (C), then CN1 (C). Expectation stated in advance: CN1 is not flagged;
whether SC5120 is flagged is the question. Development, not a measurement on unseen conditions: SC5120 (A) was seen,
and the panel was enlarged because of it; SC5120 (A) stays reported as it is, and CN1 (C) is the check that the
larger panel does not accuse an independent model.

Amendment 2 (2026-12-02, 10:42 UTC, session 24; written after SC5120 (C) and CN1 (C) were seen, before SC2560 (C)
was audited). SC5120 (C) came out `inconclusive` at combined p = 0.0014 only because output agreement's kind check
fired (its row effect -5.34 against the controls' -5.07 to -3.92, p = 0.046), in a family whose suspect was asked as
chat and whose controls were asked as completions. Commit 74cb73b stops using that row effect as a kind check when the
family's models were asked differently (the outside fluency check still guards the kind). This rule was made after
seeing SC5120 (C): SC5120 (C) is re-analysed under it from the same answers (a development, reported beside its
as-audited row), and SC2560 (C) (a student of SmolLM2 on 2,560 chat answers, seed 8301, trained as above) is audited
under it as the check not looked at before the rule. CN1 (C) needs no re-analysis: the kind check can only lower a
flag, and CN1 was not flagged. Expectation stated in advance: none for SC2560 (the question).

Amendment 3 (2026-12-02, 11:05 UTC, session 24; after SC2560 (C) was seen: `distilled`; before the model below was
trained): a second independent suspect for panel (C), CN2: chat-format public prose like CN1 on N2's 8 slices (distill_dose
amendment 4; none read by CT1-CT10, CN1 or the held-out slice), seed 8332, trained and audited like CN1 in (C), under
amendment 2's rule. Expectation stated in advance: not flagged.

Usage (stages; each resumable):
  python bench/chat_student.py prompts
  python bench/chat_student.py sample --teacher smollm2      # then --teacher qwen
  python bench/chat_student.py pack --teacher smollm2        # bench/data/chat-answers-smollm2.jsonl.gz, to commit
  python bench/chat_student.py prepare --group prose       # then --group smollm2 / qwen once sampled
  python bench/chat_student.py train [--only NAME ...]
  python bench/chat_student.py install
  python bench/chat_student.py audit [--only NAME ...] [--panel A B C]
  python bench/chat_student.py collect                      # bench/results/chat-student.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import distill_dose as dose  # noqa: E402  (the shape, the training loop and the fault plan are that bench's)

CACHE = Path.home() / ".cache" / "provenance"
OUT = CACHE / "bench-chat"
PACKED = HERE / "data"  # the teachers' answers, committed once sampled (`pack`): a new machine trains without resampling
REFERENCE = "smollm2-135m-instruct"
TEACHERS = {"smollm2": ("smollm2-135m-instruct", 5632), "qwen": ("qwen2.5-coder-0.5b-instruct", 2816)}
N_PROMPTS, PROMPT_SEED, ANSWER_SEED, NEW_TOKENS = 6000, 20261202, 7000, 64
WORD_RANKS = (150, 1350)
TEMPLATES = (
    "Explain what {w} means in simple terms.",
    "Write a short paragraph about {w}.",
    "Give me three facts about {w}.",
    "Describe {w} to a ten-year-old.",
    "Write a short poem about {w}.",
    "Why does {w} matter?",
    'Write one sentence that uses the word "{w}".',
    "What is the opposite of {w}, and why?",
    "Tell me a very short story involving {w}.",
    "How would you explain {w} to a friend?",
    "List some words related to {w}.",
    "Summarise the idea of {w} in one sentence.",
)
STUDENTS = {"SC2560": ("smollm2", 2560, 8301), "SC5120": ("smollm2", 5120, 8302), "QC2560": ("qwen", 2560, 8311)}
PROSE = {**{f"CT{k}": (f"T{k}", 8320 + k) for k in range(1, 11)}, "CN1": ("N1", 8331),
         "CN2": ("N2", 8332)}  # CT7-CT10: amendment 1; CN2: amendment 3
CHUNK = 64
ORDER = (("SC2560", "A"), ("CN1", "A"), ("QC2560", "A"), ("SC2560", "B"), ("CN1", "B"), ("QC2560", "B"),
         ("SC5120", "A"), ("SC5120", "B"), ("SC5120", "C"), ("CN1", "C"), ("SC2560", "C"), ("CN2", "C"))
log = dose.log


def prompts() -> list[str]:
    """The 6,000 training prompts (written once to OUT/prompts.json; later stages read that file)."""
    path = OUT / "prompts.json"
    if path.is_file():
        return json.loads(path.read_text())
    from provenance.matched import template_instructions
    from provenance.zoo.corpus import build_slices

    slices, _ = build_slices(50_000)
    out = template_instructions(slices, TEMPLATES, WORD_RANKS, PROMPT_SEED, N_PROMPTS)
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=0))
    log(f"{len(out)} prompts from {len(TEMPLATES)} templates")
    return out


def sample(teacher: str, chunk: int = 64, part: tuple[int, int] | None = None) -> None:
    """The teacher's chat answers (resumable by chunk): OUT/answers-TEACHER.jsonl, one line per prompt index. With
    `part` = (first, stop), prompts first..stop-1 go to their own file, which joins the main one once that reaches
    `first` (two processes sample at once; each answer has its own seed, so the split changes no answer)."""
    from provenance.models import resolve
    from provenance.models.base import Request

    spec, n = TEACHERS[teacher]
    ps = prompts()[:n]
    merge_parts(teacher)
    path = answers(teacher) if part is None else OUT / f"answers-{teacher}.part-{part[0]}-{part[1]}.jsonl"
    have = _lines(path)
    first, stop = (0, n) if part is None else part
    if part is None:  # the main file stops where a part file takes over
        stop = min([f for f, _, _ in _parts(teacher) if f >= have], default=n)
    backend = resolve(spec).load()
    backend.batch_size = 32
    t0 = time.time()
    try:
        with path.open("a") as f:
            for start in range(first + have, stop, chunk):
                idx = range(start, min(start + chunk, stop))
                got = backend.generate([Request(ps[i], max_new_tokens=NEW_TOKENS, chat=True, temperature=1.0,
                                                seed=ANSWER_SEED + i) for i in idx])
                for i, c in zip(idx, got):
                    f.write(json.dumps({"i": i, "prompt": ps[i], "answer": c.text, "tokens": c.n_tokens}) + "\n")
                f.flush()
                log(f"{teacher}: {idx[-1] + 1}/{stop} answers ({time.time() - t0:.0f} s)")
    finally:
        backend.close()
    merge_parts(teacher)


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def _parts(teacher: str) -> list[tuple[int, int, Path]]:
    """(first, stop, file) of each part file `sample --part` is writing or has written."""
    out = []
    for f in OUT.glob(f"answers-{teacher}.part-*.jsonl"):
        first, stop = f.name.removesuffix(".jsonl").split(".part-")[1].split("-")
        out.append((int(first), int(stop), f))
    return sorted(out)


def merge_parts(teacher: str) -> None:
    """Append each complete part file whose first prompt is the next one the main file needs."""
    main = OUT / f"answers-{teacher}.jsonl"
    for first, stop, f in _parts(teacher):
        if first == _lines(main) and _lines(f) == stop - first:
            with main.open("a") as dst:
                dst.write(f.read_text())
            f.unlink()
            log(f"merged {f.name}")


def answers(teacher: str) -> Path:
    """OUT/answers-TEACHER.jsonl, unpacked from the committed bench/data/chat-answers-TEACHER.jsonl.gz where this
    machine has not sampled it (sampling SmolLM2's 5,632 answers takes 1.5 hours on one core)."""
    import gzip
    import shutil

    path = OUT / f"answers-{teacher}.jsonl"
    packed = PACKED / f"chat-answers-{teacher}.jsonl.gz"
    if not path.exists() and packed.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".jsonl.tmp")
        with gzip.open(packed, "rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(path)
        log(f"unpacked {packed.name}")
    return path


def pack(teacher: str) -> None:
    """Commit-ready bench/data/chat-answers-TEACHER.jsonl.gz (all the teacher's answers, checked; no timestamp in the
    gzip header, so the same answers give the same bytes)."""
    import gzip

    rows = _rows(teacher)
    PACKED.mkdir(parents=True, exist_ok=True)
    dest = PACKED / f"chat-answers-{teacher}.jsonl.gz"
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(body)
    tmp.replace(dest)
    log(f"{len(rows)} answers: {dest} ({dest.stat().st_size} bytes)")


def _rows(teacher: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in answers(teacher).read_text().splitlines() if x.strip()]
    need = TEACHERS[teacher][1]
    if [r["i"] for r in rows] != list(range(need)):
        raise SystemExit(f"answers-{teacher}.jsonl holds {len(rows)} answers, not prompts 0-{need - 1} in order")
    if [r["prompt"] for r in rows] != prompts()[:need]:  # the prompts come from this machine's corpus: must agree
        raise SystemExit(f"answers-{teacher}.jsonl answers other prompts than this machine's prompts.json")
    return rows


def prepare(group: str) -> None:
    """OUT/data-GROUP (smollm2, qwen or prose): its training and validation sets as SmolLM2-tokenized chat sequences
    and their plan; the prose group needs no teacher, so its models can train while the teachers are sampled."""
    from provenance.models import resolve

    ps = prompts()
    tok = resolve(REFERENCE).load().tokenizer
    eos = tok.eos_token_id

    def chat(prompt: str, answer_ids: list[int]) -> list[int]:
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                       add_generation_prompt=True)
        return tok(text, add_special_tokens=False)["input_ids"] + answer_ids + [eos]

    def taught(rows: Sequence[dict[str, Any]]) -> list[list[int]]:
        return [chat(r["prompt"], tok(r["answer"], add_special_tokens=False)["input_ids"]) for r in rows]

    plan = dose._plan(tok)
    plan["chunk"] = CHUNK
    sets: dict[str, list[list[int]]] = {}
    if group in TEACHERS:
        rows = _rows(group)
        n_train = TEACHERS[group][1] - (512 if group == "smollm2" else 256)
        sets[f"{group}-valid"] = taught(rows[n_train:])
        for name, (teacher, n, seed) in STUDENTS.items():
            if teacher == group:
                sets[name] = taught(rows[:n])
                plan["models"][name] = {"train": name, "valid": f"{teacher}-valid", "seed": seed,
                                        "truth": "distilled" if teacher == "smollm2" else "independent",
                                        "answers": n, "teacher": TEACHERS[teacher][0]}
    else:
        read, held = recorded_reads()
        if dose.panel_available():  # where the panel is at hand, the recorded lists must be what it derives
            _, slices, free, held_now = dose._prose()
            derived = {"N1": free[60:68], "N2": free[68:76],
                       **{f"T{k + 1}": free[12 + 8 * k: 20 + 8 * k] for k in range(6)}}
            if derived != read or held_now != held:
                raise SystemExit("the matched panel's free slices are not those distill-dose.json recorded")
        else:
            from provenance.zoo.corpus import build_slices

            slices, _ = build_slices(50_000)

        def prose_chat(ids: Sequence[str], first_prompt: int) -> list[list[int]]:
            flat = [t for sid in ids for t in tok(slices[sid], add_special_tokens=False)["input_ids"]]
            chunks = [flat[j: j + CHUNK] for j in range(0, len(flat) - CHUNK + 1, CHUNK)]
            return [chat(ps[(first_prompt + j) % len(ps)], c) for j, c in enumerate(chunks)]

        read = {**read, **extra_reads(sorted(slices), read, held)}
        sets["prose-chat-valid"] = prose_chat([held], 5632)[:512]
        for name, (namesake, seed) in PROSE.items():
            sets[name] = prose_chat(read[namesake], 0)
            plan["models"][name] = {"train": name, "valid": "prose-chat-valid", "seed": seed,
                                    "truth": "control" if name.startswith("CT") else "independent",
                                    "slices": list(read[namesake]), "reads_as": namesake}
    dose._save(OUT / f"data-{group}", sets, plan)
    log(f"prepared {group}: {json.dumps(plan['tokens'])}")


def recorded_reads() -> tuple[dict[str, list[str]], str]:
    """The corpus slices T1-T6 and N1 read in distill_dose part (e) and its held-out validation slice, as
    bench/results/distill-dose.json recorded them: what `dose._prose()` derives from the matched panel, for a machine
    that has lost the panel (the chat controls read their namesakes' slices: the protocol above)."""
    d = json.loads((HERE / "results" / "distill-dose.json").read_text())
    read = {k: v["slices"] for k, v in d["training_e"]["plan"]["models"].items()}
    read["N1"] = d["training_n"]["plan"]["models"]["N1"]["slices"]
    read["N2"] = d["training_n"]["plan"]["models"]["N2"]["slices"]
    return read, d["training"]["plan"]["models"]["P-large"]["held_out_slice"]


def extra_reads(ids: Sequence[str], read: dict[str, list[str]], held: str) -> dict[str, list[str]]:
    """Amendment 1's T7-T10 (what CT7-CT10 read): the sorted slices none of T1-T6, N1, N2 or the held-out slice read,
    8 per model in sorted order (`read`: recorded_reads's lists, N2's among them)."""
    taken = {s for v in read.values() for s in v} | {held}
    free = [s for s in sorted(ids) if s not in taken]
    if len(free) < 32:
        raise SystemExit(f"only {len(free)} unread corpus slices here; CT7-CT10 need 32")
    return {f"T{7 + k}": free[8 * k: 8 * k + 8] for k in range(4)}


def train(only: Sequence[str] = ()) -> None:
    """Each model whose data is prepared, on this machine's CPU (controls and CN1 first, then the students)."""
    weights = OUT / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    record = weights / "training.json"
    done = json.loads(record.read_text()) if record.is_file() else {"plan": None, "models": {}}
    for group in ("prose", "smollm2", "qwen"):
        data = OUT / f"data-{group}"
        if not (data / "plan.json").is_file():
            continue
        plan = json.loads((data / "plan.json").read_text())
        todo = [n for n in plan["models"] if n not in done["models"] and (not only or n in only)]
        if not todo:
            continue
        sets = dose._load_sets(data)
        for name in todo:
            info = dose.train_one(name, plan["models"][name], plan, sets, weights)
            # Re-read before writing: two training processes (say, the controls and a student) share the record.
            done = json.loads(record.read_text()) if record.is_file() else done
            done["plan"] = {k: v for k, v in plan.items() if k != "models"}  # the same shape and loop for all
            done["models"][name] = {**info, **plan["models"][name], "data": data.name}
            tmp = record.with_suffix(f".{name}.tmp")
            tmp.write_text(json.dumps(done, indent=1))
            tmp.replace(record)


def install() -> None:
    dose.install(OUT / "weights", out=OUT)


def panel(which: str) -> Path:
    """(A): CT1-CT6; (B): those plus distill_dose's panel (a); (C): CT1-CT10 (amendment 1)."""
    ctrl = [{"spec": str(OUT / "models" / f"CT{k}"), "lineage": f"dose-text-{k}",
             "kind": "chat-format public prose, 192 x 4, bench/chat_student.py"}
            for k in range(1, 11 if which == "C" else 7)]
    if which in ("A", "C"):
        data = {"control": ctrl}
    else:
        import v3_no_controls as v3

        data = json.loads(v3.matched_panel(CACHE / "bench-v3-no-controls").read_text())
        data["control"] = [*data["control"], *ctrl]
    path = OUT / f"panel-{which}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def audit(name: str, which: str) -> dict[str, Any]:
    """One suspect chat-only and text-only (part (i)'s fault plan) against SmolLM2, analysis 4, instructions."""
    import v3_no_controls as v3

    from provenance.models import resolve
    from tests.faultserver import FaultPlan, serving

    tag_file = OUT / "audits" / f"{name}-{which}.json"
    if tag_file.is_file():
        return json.loads(tag_file.read_text())
    backend = resolve(str(OUT / "models" / name)).load()

    def fault(key: str, attempt: int) -> str | None:
        if key.startswith("POST /v1/completions"):
            return "404"
        return "text-only" if key.startswith("POST") else None

    try:
        with serving(backend, FaultPlan(fault), model_name=name) as srv:
            row = v3.audit(OUT / f"audit-{which}", name, f"{srv.url}#{name}", 4, panel(which),  # type: ignore[arg-type]
                           "instructions")
    finally:
        backend.close()
    row.update(panel=which, served="chat only (completions 404), text only (no logprobs or prompt scoring)",
               truth=("distilled" if name.startswith("SC") else "independent"))
    tag_file.parent.mkdir(parents=True, exist_ok=True)
    tag_file.write_text(json.dumps(row, indent=1))
    log(f"{name} ({which}): {row['verdict']} p={row['p_value']:.3g} {row['reason'][:160]}")
    return row


def collect() -> None:
    """bench/results/chat-student.json: this machine's audits and training merged into what is committed there, so a
    machine that lost the cache (and retrained some models) adds rows instead of dropping the earlier ones; a row
    measured here replaces the committed row of the same suspect and panel; `machines` lists every collecting one."""
    from _common import RESULTS, machine, write_results

    committed = RESULTS / "chat-student.json"
    before = json.loads(committed.read_text()) if committed.is_file() else {"audits": [], "training": {}}
    rows = {(r["suspect"], r["panel"]): r for r in before["audits"]}
    rows.update({(r["suspect"], r["panel"]): r
                 for r in (json.loads(f.read_text()) for f in sorted((OUT / "audits").glob("*.json")))})
    # Amendment 2: a row audited before its rule, kept beside its re-analysis (moved there by hand when re-analysed)
    for f in sorted((OUT / "audits-as-audited").glob("*-?.json")):
        r = json.loads(f.read_text())
        r["panel"] = f"{r['panel']}, as audited before amendment 2"
        rows[(r["suspect"], r["panel"])] = r
    record = OUT / "weights" / "training.json"
    training = {**before.get("training", {}),
                **{k: {x: v.get(x) for x in ("best_epoch", "valid_nats_per_token", "sequences", "tokens", "seconds",
                                             "truth")}
                   for k, v in (json.loads(record.read_text()) if record.is_file() else {}).get("models", {}).items()}}
    here = machine()
    machines = before.get("machines") or ([before["machine"]] if "machine" in before else [])
    res = {"bench": "chat_student", "protocol": "bench/chat_student.py docstring", "machine": here,
           "machines": [*machines, here], "audits": [rows[k] for k in sorted(rows)], "training": training,
           "not_run": [f"{n} ({w})" for n, w in ORDER if (n, w) not in rows]}
    log(f"{len(rows)} audits: {write_results('chat-student', res)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["prompts", "sample", "pack", "prepare", "train", "install", "audit", "collect"])
    ap.add_argument("--teacher", choices=sorted(TEACHERS), default="smollm2")
    ap.add_argument("--group", choices=["prose", *sorted(TEACHERS)], default="prose")
    ap.add_argument("--only", nargs="*", default=())
    ap.add_argument("--panel", nargs="*", default=(), choices=["A", "B", "C"], help="audit: only these panels")
    ap.add_argument("--part", nargs=2, type=int, metavar=("FIRST", "STOP"), help="sample: only prompts FIRST..STOP-1")
    a = ap.parse_args()
    if a.stage == "prompts":
        prompts()
    elif a.stage == "sample":
        sample(a.teacher, part=tuple(a.part) if a.part else None)
    elif a.stage == "pack":
        pack(a.teacher)
    elif a.stage == "prepare":
        prepare(a.group)
    elif a.stage == "train":
        train(a.only)
    elif a.stage == "install":
        install()
    elif a.stage == "audit":
        for name, which in ORDER:
            if (a.only and name not in a.only) or (a.panel and which not in a.panel):
                continue
            if which == "B" and not dose.panel_available():  # lost with an earlier machine: say so, run the rest
                log(f"{name} (B): skipped, distill_dose's matched panel is not on this machine (bench/v3_no_controls.py)")
                continue
            audit(name, which)
    else:
        collect()


if __name__ == "__main__":
    main()
