"""Matched controls: control models trained on this machine at the suspect's architecture and competence.

A null is only as good as its controls (docs/methods.md, "Controls of the suspect's kind"): controls much weaker or
much stronger than the suspect make everything look related or nothing. When the suspect is a local model small enough
to train here, this module builds controls of its kind: models with the suspect's own configuration and tokenizer,
initialised from independent seeds and trained on data no lineage of the audit owns, until their competence on the
neutral yardstick (`probes/yardstick.json`, the competence check's own measure) reaches the suspect's, and until their
greedy answers are as alike from prompt to prompt as the suspect's are (a weak model answers every prompt alike; two
such controls then agree with each other far more than with the suspect, and the kind check rightly refuses them).

Each control is its own lineage: one reads a disjoint share of public prose installed offline (`zoo/corpus.py`), one
is a sequence-level student of each packaged teacher outside the reference's and the suspect's families. A student
that learns all its teacher's answers without reaching the suspect's competence is trained again on four times as many
(up to a cap: answers are cheap on a GPU and slow on a CPU). Every model is cached by its recipe (configuration,
tokenizer, data, seed, schedule, version), so a second audit of a suspect of the same architecture trains nothing.
The result is an ordinary controls panel file (`panel.py`) that says what each control is and how close its
competence came: `audit --controls FILE` reads it like any other panel.

Controls also learn in the suspect's format. A suspect that predicts its own chat template's scaffolding (the special
tokens that open the assistant's turn after a user's: `scaffold_logprob`) learnt from chat transcripts, as a student of a
chat model's answers does; its controls then learn in that template too (public text as answers to the builder's own
instructions, students on their teachers' chat answers). Controls that learnt raw text only are of another kind for
such a suspect (bench/chat_student.py: four raw-text lineages added to six chat-format ones weakened the one family
with power, p 0.028 -> 0.14).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from provenance.errors import InputError
from provenance.fsutil import atomic_write_json, cache_dir, exclusive, sha256_json

MATCHED_VERSION = "4"  # 2: matched on answer sameness too, measured from 5 steps; 3: stops past the peak, rungs;
# 4: stops once competence has reached the suspect's and answers are more varied than its (both passed)
log = logging.getLogger(__name__)

# A suspect above this many parameters is not trained against here (hours per control on a CPU); ask for a panel.
MAX_PARAMS = 60_000_000
# Eight lineages: with four, each family's null is a Student-t on 3 df and no family of the most thoroughly distilled
# student the project has (bench/distill_dose.py, S16384: 16,384 of SmolLM2's answers) came near the 0.01 rule
# (combined p 0.017); with ten the same student reached 0.00088 (part (e)). Four is the least a placebo allows
# (MIN_UNITS + 1, stats/nulls.py) and stays available (`controls build --lineages 4`).
DEFAULT_LINEAGES = 8
SEQ_LEN = 128
BATCH = 8
# Cumulative optimiser steps at which competence is measured: geometric, so a weak suspect is matched early and a
# strong one is approached without measuring after every step. From 5 steps: a 25-step control was already stronger
# than a weak suspect (bench/matched_controls.py, version 1).
SCHEDULE = (5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200)
SLICE_CHARS = 50_000  # as the study zoo's corpus (zoo/lineages.py, preset "full")
SLICES_PER_LINEAGE = 12
TEACHER_SAMPLES = 320  # sampled answers per packaged teacher at the first rung (the study zoo's count)
# A student lineage that stops short of the suspect's competence (past its peak: it has learnt its answers) is trained
# again, from its seed, on the next rung's answers (each rung's answers extend the last's). The cap is the device's:
# sampling 320 answers took Qwen 8.5 minutes and Gemma 20 on this project's 2-core CPU, so more is for a GPU.
TEACHER_RUNGS = (TEACHER_SAMPLES, 1280, 5120, 20480)
CPU_TEACHER_SAMPLES, GPU_TEACHER_SAMPLES = TEACHER_SAMPLES, 20480
TEACHER_PROMPT_SEED = 20261130  # the template generator's seed for prompts past the continuation set's spare 1,000
TEACHER_NEW_TOKENS = 48
# A control counts as matched when its competence is within this much of the suspect's (nats per byte): half the
# competence check's margin (analysis/evaluate.py COMPETENCE_MARGIN), so a matched control never trips the check.
TOLERANCE = 0.075
# Answer sameness (log of the mean word agreement between a model's greedy answers to different neutral prompts, see
# `sameness`) counts as matched within this much: a factor of about 1.6 in agreement. The kind check compares log
# agreements between models; version 1's controls, matched on competence alone, agreed with each other at -0.01 and
# with the suspect at -2.48.
SAMENESS_TOLERANCE = 0.5
SAMENESS_FLOOR = 0.01  # agreement below this is "answers unlike each other" (the log stays finite)
# Training stops once competence has fallen this far below its best (the model is past its peak: it has learnt its
# data and more steps only overfit). Version 2 ran the whole schedule: a student of Qwen on 320 answers peaked at 200
# steps (-1.607 nats/byte) and spent 2,000 more seconds falling to -2.717.
PAST_PEAK = TOLERANCE
PREFIX_WORDS = (6, 12, 18, 24)  # each yardstick passage cut after this many words gives one prompt
ANSWER_TOKENS = 12
FORMATS = ("text", "chat")
# A suspect whose mean log-probability of its chat template's scaffolding tokens is above this learnt chat transcripts.
# The scaffolding is the same few tokens after every user turn: a model trained on transcripts predicts it almost
# surely (SmolLM2-135M-Instruct -0.05 nats per token, Qwen2.5-Coder -0.00, bench/chat_student.py's 192 x 4 student of
# SmolLM2's chat answers -0.006), one that never saw its special tokens gives them the probability of an unused id (an
# untrained model on the 49,152-id vocabulary: -11.0).
CHAT_SCAFFOLD_NATS = -3.0
CHAT_ANSWER_TOKENS = 64  # a public-text lineage's answer: its text cut into chunks of this many tokens
CHAT_PROMPTS = 6000
CHAT_PROMPT_SEED = 20261203
CHAT_WORD_RANKS = (150, 1350)  # the instructions' words: these frequency ranks of the corpus's lower-case words
# The builder's own instructions: none is a template of the audit's probe sets (probes/instructions.json, identity).
CHAT_TEMPLATES = (
    "Tell me about {w}.",
    "What can you say about {w}?",
    "Write a few sentences on {w}.",
    "I am curious about {w}. Can you help?",
    "Share a thought about {w}.",
    "Talk about {w} for a moment.",
    "Please write something that mentions {w}.",
    "What comes to mind when you hear {w}?",
)


@dataclass(frozen=True)
class Lineage:
    """One control lineage to build: what it reads and the name it carries in the null."""

    name: str  # the lineage family the panel gives it
    kind: str  # "text" | "student"
    source: str  # slice ids joined by "+" (text) or the packaged teacher's name (student)
    slices: tuple[str, ...] = ()


# Why a control's training stopped (`Built.stop`, in the panel's notes and the build summary).
MATCHED, PASSED, PAST_ITS_PEAK, SCHEDULE_END = "matched", "passed the suspect", "past its peak", "end of schedule"


@dataclass
class Built:
    lineage: Lineage
    path: Path
    steps: int
    competence: float
    sameness: float
    matched: bool
    seconds: float
    recipe_sha256: str
    log: list[dict[str, float]] = field(default_factory=list)
    stop: str = ""
    teacher_samples: int | None = None  # a student's: how many of its teacher's answers it learnt from

    def gap(self, target: "Profile") -> float:
        return Profile(self.competence, self.sameness).gap(target)


def architecture(local_path: Path) -> tuple[Any, int]:
    """(the suspect's transformers config, its parameter count), without loading its weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(local_path), local_files_only=True, trust_remote_code=False)
        with torch.device("meta"):
            shell = AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - any failure means "not an architecture we can build here": one line
        raise InputError(f"{local_path}: cannot build its architecture from config.json "
                         f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]})") from None
    return config, int(sum(p.numel() for p in shell.parameters()))


def why_not(resolved: Any, max_params: int = MAX_PARAMS) -> str | None:
    """None when matched controls can be built for this suspect here, else the reason (one line)."""
    if resolved.remote:
        return "the suspect is an endpoint (its architecture and weights are unknown)"
    if resolved.local_path is None or resolved.gguf is not None:
        return "the suspect is not a local transformers directory"
    try:
        _, params = architecture(resolved.local_path)
    except InputError as exc:
        return str(exc)
    if params > max_params:
        return f"the suspect has {params / 1e6:.0f}M parameters, above the {max_params / 1e6:.0f}M this machine trains"
    return None


def plan_lineages(n: int, excluded_families: set[str], teachers: Sequence[str], slice_ids: Sequence[str],
                  slices_per_lineage: int = SLICES_PER_LINEAGE) -> list[Lineage]:
    """Students of the packaged teachers outside the excluded families first (capable models of another maker), then
    public-text lineages on disjoint slices (round-robin over sources, so each reads several) up to `n`."""
    from provenance.models.packaged import family_of

    # a student of a teacher is of its teacher's lineage: named as the audit names the packaged model's family
    out = [Lineage(family_of(t) or t, "student", t) for t in teachers
           if (family_of(t) or t) not in excluded_families][:n]
    k = n - len(out)
    if k > 0:
        by_source: dict[str, list[str]] = {}
        for s in slice_ids:
            by_source.setdefault(s.rsplit("-", 1)[0], []).append(s)
        pooled = [s for group in _interleave(list(by_source.values())) for s in group]
        shares: list[list[str]] = [[] for _ in range(k)]
        for idx, s in enumerate(pooled):  # dealt in rotating order, so no share reads one source only
            r, j = divmod(idx, k)
            if len(shares[(j + r) % k]) < slices_per_lineage:
                shares[(j + r) % k].append(s)
        for i, share in enumerate(shares):
            if share:
                out.append(Lineage(f"matched-text-{i}", "text", "+".join(share), tuple(share)))
    return out


def _interleave(groups: list[list[str]]) -> list[list[str]]:
    """[[a0, a1], [b0]] -> [[a0], [b0], [a1]]: sources alternate, so every share mixes them."""
    out, i = [], 0
    while any(i < len(g) for g in groups):
        out += [[g[i]] for g in groups if i < len(g)]
        i += 1
    return out


def _yardstick() -> list[str]:
    from provenance.probeset import load as load_probes

    return [p.text for p in load_probes("yardstick").probes]


@dataclass(frozen=True)
class Profile:
    """What a control is matched on: competence (mean per-byte log-likelihood of the yardstick passages, scored
    exactly as an audit scores them) and answer sameness (see `sameness`); plus the output layer's live ids when most
    rows are exactly zero (a closed vocabulary, as the study zoo's models have), else None."""

    competence: float
    sameness: float
    keep: list[int] | None = None

    def gap(self, target: "Profile") -> float:
        """Distance to `target` in tolerances (the larger of the two): at most 1 is matched."""
        return max(abs(self.competence - target.competence) / TOLERANCE,
                   abs(self.sameness - target.sameness) / SAMENESS_TOLERANCE)


def _prompts(texts: Sequence[str]) -> list[str]:
    return [" ".join(t.split()[:k]) for t in texts for k in PREFIX_WORDS if len(t.split()) > k]


def sameness(answers: Sequence[str]) -> float:
    """log of the mean word agreement (`stats.similarity.text_agreement`, the output-agreement family's own measure)
    between greedy answers to different prompts: near 0 for a model that says the same thing whatever it is asked,
    low for one whose answers follow the prompt."""
    import itertools

    from provenance.stats.similarity import text_agreement

    pairs = [text_agreement(a, b) for a, b in itertools.combinations(answers, 2)]
    return round(float(np.log(max(SAMENESS_FLOOR, float(np.mean(pairs)) if pairs else 0.0))), 4)


def profile(path: Path | str, texts: Sequence[str]) -> Profile:
    """The model's competence, answer sameness and live output ids, from one load."""
    from provenance.models import LoadOptions, resolve
    from provenance.models.base import Request, ScoreRequest
    from provenance.models.hf import ClosedVocabulary

    backend = resolve(str(path), LoadOptions()).load()
    try:
        scores = backend.score([ScoreRequest("", t) for t in texts])
        answers = backend.generate([Request(p, max_new_tokens=ANSWER_TOKENS) for p in _prompts(texts)])
        closed = ClosedVocabulary.of(backend.model.get_output_embeddings())
    finally:
        backend.close()
    keep = None if closed is None else (closed.position >= 0).nonzero().squeeze(-1).tolist()
    return Profile(float(sum(s.per_byte for s in scores) / len(scores)), sameness([a.text for a in answers]), keep)


def scaffold_logprob(path: Path | str, messages: Sequence[str]) -> float | None:
    """Median over messages of the mean log-probability (nats per token) the model gives its chat template's scaffolding
    after a user message:
    the special tokens that open the assistant's turn once the user's is closed (`<|im_start|>` in ChatML; all the
    scaffold's tokens after the first where the template has no special ones). Not the token that closes the user's
    turn: whether a message has ended depends on the message (SmolLM2 gives it -0.09 after a whole instruction, -18.9
    after "Four score and seven years ago"); nor the role's name, which a GGUF conversion may score oddly (Qwen2.5-Coder
    here: "assistant" at -29 right after `<|im_start|>` at -0.00). None when its tokenizer has no chat template (a text
    model whatever it learnt)."""
    import torch

    from provenance.models import LoadOptions, resolve

    backend = resolve(str(path), LoadOptions()).load()
    try:
        tok, net = backend.tokenizer, backend.model
        if not getattr(tok, "chat_template", None):
            return None
        special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}) or {})
        vals: list[float] = []
        for m in messages:
            text = tok.apply_chat_template([{"role": "user", "content": m}], tokenize=False, add_generation_prompt=True)
            cut = text.rindex(m) + len(m)
            head = tok(text[:cut], add_special_tokens=False)["input_ids"]
            ids = tok(text, add_special_tokens=False)["input_ids"]
            start = next((i for i, (a, b) in enumerate(zip(head, ids)) if a != b), len(head))
            if start == 0 or start + 1 >= len(ids):
                continue
            with torch.no_grad():
                logits = net(input_ids=torch.tensor([ids], device=net.device)).logits[0].float()
            lp = torch.log_softmax(logits[:-1], dim=-1)
            after = range(start + 1, len(ids))
            scored = [i for i in after if ids[i] in special] or list(after)
            vals.append(float(np.mean([float(lp[i - 1, ids[i]]) for i in scored])))
    finally:
        backend.close()
    # The median message: a small student predicts the turn's opening only at the lengths it learnt (bench/chat_student.py's
    # SC2560: -0.01 after a 6-word message, -8.9 after a 24-word one), so one long message must not decide.
    return round(float(np.median(vals)), 4) if vals else None


def suspect_format(path: Path | str, texts: Sequence[str] | None = None) -> tuple[str, float | None]:
    """("chat" or "text", the scaffold log-probability): the format the suspect's controls learn in. The messages are
    the yardstick passages' first six words: short, as instructions are."""
    words = PREFIX_WORDS[0]
    messages = [" ".join(t.split()[:words]) for t in (texts if texts is not None else _yardstick())]
    got = scaffold_logprob(path, messages)
    return ("chat" if got is not None and got > CHAT_SCAFFOLD_NATS else "text"), got


def template_instructions(slices: dict[str, str], templates: Sequence[str], ranks: tuple[int, int], seed: int,
                          n: int) -> list[str]:
    """`templates` filled with the corpus's words of frequency rank ranks[0] to ranks[1] - 1 (lower-case, 5-12 letters,
    counted over every slice), shuffled under `seed`, leaving out every prompt of the audit's `instructions` and
    `identity` sets; the first `n`. (bench/chat_student.py's training instructions come from here too.)"""
    import random
    import re
    from collections import Counter

    from provenance.probeset import load as load_probes

    counts = Counter(w for text in slices.values() for w in re.findall(r"\b[a-z]{5,12}\b", text))
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][slice(*ranks)]
    every = [t.format(w=w) for t in templates for w in words]
    random.Random(seed).shuffle(every)
    taken = {p.text for s in ("instructions", "identity") for p in load_probes(s).probes}
    return [p for p in every if p not in taken][:n]


def chat_prompts(slices: dict[str, str], n: int = CHAT_PROMPTS) -> list[str]:
    """The builder's instructions: its own templates (none an audit template) and seed (`template_instructions`)."""
    out = template_instructions(slices, CHAT_TEMPLATES, CHAT_WORD_RANKS, CHAT_PROMPT_SEED, n)
    if not out:
        raise InputError("no instructions for chat-format controls: too little public text installed")
    return out


def _config_sha(config: Any) -> str:
    d = config.to_dict()
    for k in ("_name_or_path", "transformers_version", "name_or_path", "torch_dtype", "dtype"):
        d.pop(k, None)
    return sha256_json(d)


def resolve_device(device: str | None) -> str:
    """Where controls train and teachers sample. None or "auto": the first GPU when torch sees one (answers and steps
    are cheap there), else the CPU; "cuda" on a machine without one is bad input (one line)."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: torch sees no GPU on this machine (use --device cpu or auto)")
    return device


def teacher_prompts(n: int) -> list[str]:
    """The first `n` prompts a packaged teacher answers for its students: the continuation set's spare prompts (1,000
    onwards: an audit's budget takes a prefix, so no audit under 1,000 probes sends them), then prompts of the same
    template generator under its own seed, leaving out every prompt of `continuation` and `continuation-samples`.
    Each rung's prompts extend the last's, so a rung's answers extend the last's."""
    import json as _json

    from provenance.probeset import _generate, library_dir, load as load_probes

    spare = [p.text for p in load_probes("continuation").probes[1000:]]
    if n <= len(spare):
        return spare[:n]
    gen = _json.loads((library_dir() / "continuation.json").read_text())["generator"]
    taken = {p.text for s in ("continuation", "continuation-samples") for p in load_probes(s).probes}
    more = _generate(dict(gen, seed=TEACHER_PROMPT_SEED, n=min(100_000, 2 * n)), "matched-teacher",
                     lambda msg, *_: InputError(f"teacher prompts: {msg}"))
    out = spare + [p.text for p in more if p.text not in taken]
    if len(out) < n:
        raise InputError(f"the continuation generator yields {len(out)} teacher prompts, fewer than {n}")
    return out[:n]


def rungs(cap: int) -> tuple[int, ...]:
    """The teacher-answer counts a student lineage is tried at, under `cap` (the cap itself is the last)."""
    return tuple(sorted({min(r, cap) for r in TEACHER_RUNGS} | {cap}))


class Builder:
    """Builds (or finds in the cache) one matched control per lineage for one suspect."""

    def __init__(self, suspect_path: Path, target: Profile, root: Path | None = None, seed: int = 0,
                 schedule: Sequence[int] = SCHEDULE, progress: bool = True, device: str | None = None,
                 max_teacher_samples: int | None = None, fmt: str = "text") -> None:
        from transformers import AutoTokenizer

        if fmt not in FORMATS:
            raise InputError(f"controls format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.prompts: list[str] = []  # the chat format's instructions (`chat_prompts`), from the first slices `data` gets

        self.config, self.params = architecture(suspect_path)
        self.tok = AutoTokenizer.from_pretrained(str(suspect_path), local_files_only=True, trust_remote_code=False)
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        if self.pad is None:
            raise InputError(f"{suspect_path}: its tokenizer has neither a padding nor an end-of-sequence token")
        self.target, self.seed, self.schedule, self.progress = target, seed, tuple(schedule), progress
        self.device = resolve_device(device)
        self.max_teacher_samples = max_teacher_samples or (
            GPU_TEACHER_SAMPLES if self.device.startswith("cuda") else CPU_TEACHER_SAMPLES)
        # The suspect's live output rows when its vocabulary is closed: controls then emit the same ids (their kind
        # includes what they can say), and train at the cost of those rows only.
        self.keep = list(target.keep) if target.keep is not None else None
        # Models under the version (a new matching rule trains new ones); teacher samples, corpus slices and panels
        # outside it (sampling a packaged teacher takes most of an hour here and does not depend on the rule).
        self.root = root or cache_dir() / "matched"
        self.texts = _yardstick()
        self.lr = 5e-3 if getattr(self.config, "hidden_size", 512) <= 128 else 1e-3  # as the zoo's LR table, wider: lower

    def recipe(self, lin: Lineage, data_sha: str, teacher_samples: int | None = None) -> dict[str, Any]:
        from provenance.models.hf import tokenizer_sha256

        return {"version": MATCHED_VERSION, "config_sha256": _config_sha(self.config),
                "tokenizer_sha256": tokenizer_sha256(self.tok), "lineage": lin.name, "kind": lin.kind,
                "source": lin.source, "teacher_samples": teacher_samples, "data_sha256": data_sha, "seed": self.seed,
                "lr": self.lr, "batch": BATCH, "seq_len": SEQ_LEN, "schedule": list(self.schedule),
                "stop_past_peak": PAST_PEAK,
                "closed_vocabulary_sha256": sha256_json(self.keep) if self.keep is not None else None,
                # only the chat format names itself, so every text-format recipe (and cached control) stays as it was
                **({"format": self.fmt, "answer_tokens": CHAT_ANSWER_TOKENS} if self.fmt == "chat" else {})}

    def data(self, lin: Lineage, slices: dict[str, str], teacher_samples: int = TEACHER_SAMPLES) -> list[list[int]]:
        """Token sequences in the suspect's tokenizer: chunks of the lineage's slices, or the teacher's answers."""
        chat = self.fmt == "chat"
        if chat and not self.prompts:
            self.prompts = chat_prompts(slices)
        if lin.kind == "text":
            ids: list[int] = []
            for s in lin.slices:
                enc = self.tok([par + "\n\n" for par in slices[s].split("\n")], add_special_tokens=False)["input_ids"]
                ids += [i for row in enc for i in row]
            if chat:  # chunk j is the answer to instruction j: the model learns the format, not any teacher
                size = CHAT_ANSWER_TOKENS
                return [self._chat(self.prompts[j % len(self.prompts)], ids[i : i + size])
                        for j, i in enumerate(range(0, len(ids) - size + 1, size))]
            return [ids[i : i + SEQ_LEN] for i in range(0, len(ids) - SEQ_LEN + 1, SEQ_LEN)]
        answers = self.teacher_answers(lin.source, teacher_samples)
        if chat:
            return [self._chat(p, self.tok(t, add_special_tokens=False)["input_ids"][:CHAT_ANSWER_TOKENS])
                    for p, t in zip(self.prompts, answers)]
        return [self.tok(t, add_special_tokens=False)["input_ids"][: SEQ_LEN] for t in answers]

    def _chat(self, prompt: str, answer: Sequence[int]) -> list[int]:
        """One chat-format training sequence: the suspect's template around the instruction (its default system line
        included, as it renders a chat request), the answer, end of sequence."""
        head = self.tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                            add_generation_prompt=True)
        end = [self.tok.eos_token_id] if self.tok.eos_token_id is not None else []
        return (self.tok(head, add_special_tokens=False)["input_ids"] + list(answer) + end)[:SEQ_LEN]

    def teacher_answers(self, teacher: str, n: int = TEACHER_SAMPLES) -> list[str]:
        """The packaged teacher's first `n` sampled answers to prompts no audit sends (`teacher_prompts`), cached as
        text; a larger `n` samples only the answers past the largest smaller rung (which it samples first)."""
        from provenance.zoo.lineages import _seed

        # Chat answers (the chat format's students) are answers to other prompts: a file of their own.
        path = self.root / "samples" / f"{teacher}{'-chat' if self.fmt == 'chat' else ''}-{n}-{self.seed}.json"
        with exclusive(path):  # two audits building controls at once sample each teacher once
            if path.is_file():
                return json.loads(path.read_text())
            below = [r for r in TEACHER_RUNGS if r < n]
            have = self.teacher_answers(teacher, below[-1]) if below else []
            # The first rung keeps version 2's seed (its cached answers stay valid); each later chunk has its own.
            seed = self.seed if not have else _seed(self.seed, teacher, "answers", len(have))
            prompts = self.prompts[:n] if self.fmt == "chat" else teacher_prompts(n)
            if len(prompts) < n:
                raise InputError(f"{len(prompts)} instructions for chat-format students, fewer than {n} answers")
            texts = have + self._sample_teacher(teacher, prompts[len(have):], seed)
            atomic_write_json(path, texts)
            return texts

    def _sample_teacher(self, teacher: str, prompts: Sequence[str], seed: int) -> list[str]:
        from provenance.models import resolve
        from provenance.progress import bar
        from provenance.zoo.train import sample

        backend = resolve(teacher).load()
        try:
            if self.device != "cpu":
                backend.model.to(self.device)
            b = bar(len(prompts), f"sampling {teacher}", self.progress)
            if self.fmt == "chat":  # in the teacher's own chat template (raw prompts where it has none)
                from provenance.models.base import Request

                backend.batch_size = 32 if self.device == "cpu" else 256
                texts = []
                for i in range(0, len(prompts), 32):
                    got = backend.generate([Request(p, max_new_tokens=CHAT_ANSWER_TOKENS, chat=True, temperature=1.0,
                                                    seed=seed + i + j) for j, p in enumerate(prompts[i : i + 32])])
                    texts += [g.text for g in got]
                    b.update(len(got))
            else:
                seqs = sample(backend.model, backend.tokenizer, prompts, TEACHER_NEW_TOKENS, 1.0, seed=seed,
                              progress=b, batch=32 if self.device == "cpu" else 256)
                texts = [backend.tokenizer.decode(s, skip_special_tokens=True) for s in seqs]
            b.close()
        finally:
            backend.close()
        return texts

    def build(self, lin: Lineage, slices: dict[str, str]) -> Built:
        """The lineage's control: for a student, the closest of its rungs (tried in order until one is matched or
        passes the suspect; each rung a model of its own, cached by its recipe)."""
        if lin.kind != "student":
            return self._build_one(lin, self.data(lin, slices), None)
        best: Built | None = None
        spent = 0.0
        for n in rungs(self.max_teacher_samples):
            got = self._build_one(lin, self.data(lin, slices, n), n)
            spent += got.seconds
            if best is None or got.gap(self.target) < best.gap(self.target):
                best = got
            if got.stop != PAST_ITS_PEAK:  # matched, passed the suspect, or still learning at the schedule's end
                break
            log.info("matched control %s: %d answers of %s learnt, competence %.3f short of the suspect's %.3f; "
                     "next rung", lin.name, n, lin.source, got.competence, self.target.competence)
        assert best is not None
        best.seconds = spent
        return best

    def _build_one(self, lin: Lineage, seqs: list[list[int]], teacher_samples: int | None) -> Built:
        if len(seqs) < BATCH:
            raise InputError(f"matched control {lin.name}: only {len(seqs)} training sequences")
        recipe = self.recipe(lin, sha256_json(seqs), teacher_samples)
        key = sha256_json(recipe)
        # One directory per target band: a control once named in a panel (and a bundle) is never overwritten by one
        # trained towards another suspect's competence.
        d = self.root / f"v{MATCHED_VERSION}" / key[:16] / _band(self.target)
        done = d / "built.json"
        with exclusive(done):  # a second audit wanting this control waits for it instead of training it again
            if done.is_file() and (d / "model" / ".complete").is_file():
                got = json.loads(done.read_text())
                return Built(lin, d / "model", got["steps"], got["competence"], got["sameness"], got["matched"], 0.0,
                             key, got["log"], got.get("stop", ""), teacher_samples)
            t0 = time.time()
            steps, got_profile, matched, trail, stop = self._train(lin, seqs, d)
            from provenance.models.registry import RECIPE_FILE

            atomic_write_json(d / "model" / RECIPE_FILE, {
                **recipe, "built_by": "provenance controls build", "steps": steps,
                "competence": got_profile.competence, "sameness": got_profile.sameness, "stopped": stop,
                "device": self.device, "target_competence": round(self.target.competence, 4),
                "target_sameness": self.target.sameness, "rebuild": "provenance controls build SUSPECT -r REFERENCE"})
            atomic_write_json(done, {"steps": steps, "competence": got_profile.competence,
                                     "sameness": got_profile.sameness, "matched": matched, "log": trail, "stop": stop,
                                     "target": {"competence": self.target.competence,
                                                "sameness": self.target.sameness},
                                     "target_band": _band(self.target), "device": self.device,
                                     "seconds": round(time.time() - t0, 1)})
            return Built(lin, d / "model", steps, got_profile.competence, got_profile.sameness, matched,
                         time.time() - t0, key, trail, stop, teacher_samples)

    def _train(self, lin: Lineage, seqs: list[list[int]],
               d: Path) -> tuple[int, Profile, bool, list[dict[str, float]], str]:
        """Train from an independent seed, profiling the model at each scheduled step; keep the checkpoint closest to
        the suspect's profile. Stops at the first matched checkpoint, once competence has passed the suspect's (more
        training only moves it away), once it is past its peak (the data is learnt), or at the schedule's end."""
        import numpy as np
        import torch
        from transformers import AutoModelForCausalLM

        from provenance.progress import bar
        from provenance.zoo.lineages import _seed
        from provenance.zoo.train import _batches, save

        torch.manual_seed(_seed(self.seed, lin.name))
        net = AutoModelForCausalLM.from_config(self.config, dtype=torch.float32)
        # Initialised on the CPU from the seed whatever the device, so a control's starting weights are the recipe's.
        net.to(self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=0.0)
        handle = None
        if self.keep is not None and hasattr(net, "model") and hasattr(net, "lm_head"):  # llama-like (the zoo's)
            from provenance.zoo.train import _closed_parts, close_vocab, closed_lm_loss

            handle = close_vocab(net, self.keep)
            keep_t, remap, log_tail = _closed_parts(net, self.keep)

            def loss_of(ids: Any, mask: Any) -> Any:
                return closed_lm_loss(net, ids, mask, keep_t, remap, log_tail)
        else:
            def loss_of(ids: Any, mask: Any) -> Any:
                return net(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        rng = np.random.default_rng(_seed(self.seed, lin.name, "order"))
        batches = iter(())
        trail: list[dict[str, float]] = []
        best: tuple[float, int, Profile] | None = None
        peak = -float("inf")
        stop = SCHEDULE_END
        done = 0
        b = bar(self.schedule[-1], f"matched control {lin.name}", self.progress)
        tmp = d / "candidate"
        try:
            for until in self.schedule:
                net.train()
                while done < until:
                    batch = next(batches, None)
                    if batch is None:  # another epoch over the data, reshuffled
                        batches = _batches(seqs, BATCH, rng, self.pad)
                        continue
                    ids, mask = (x.to(self.device) for x in batch)
                    loss = loss_of(ids, mask)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    done += 1
                    b.update(1)
                net.eval()
                save(net, self.tok, tmp, f"matched control {lin.name} at {done} steps", lineage=lin.name)
                got = profile(tmp, self.texts)
                trail.append({"steps": done, "competence": round(got.competence, 4), "sameness": got.sameness})
                gap = got.gap(self.target)
                peak = max(peak, got.competence)
                log.info("matched control %s: %d steps, competence %.3f, sameness %.2f, %.2f tolerances from the "
                         "suspect", lin.name, done, got.competence, got.sameness, gap)
                if best is None or gap < best[0]:  # the closest so far becomes the control (moved, not saved again)
                    best = (gap, done, got)
                    shutil.rmtree(d / "model", ignore_errors=True)
                    os.replace(tmp, d / "model")
                why = stop_reason(got, self.target, peak)
                if why:
                    stop = why
                    break
        finally:
            b.close()
            if handle is not None:
                handle.remove()
            shutil.rmtree(tmp, ignore_errors=True)
        assert best is not None
        return best[1], best[2], best[0] <= 1.0, trail, stop


def stop_reason(got: Profile, target: Profile, peak: float) -> str | None:
    """Why training stops at this checkpoint (None: go on). `peak`: the best competence so far, this one included."""
    if got.gap(target) <= 1.0:
        return MATCHED
    if got.competence > target.competence + TOLERANCE:
        return PASSED  # more training only moves it further away
    if got.competence >= target.competence - TOLERANCE and got.sameness < target.sameness - SAMENESS_TOLERANCE:
        # Competence reached and answers already more varied than the suspect's: training makes answers more varied
        # (every trail: bench/chat_no_controls.py's public-text control went -0.99, -3.33, -3.21, -3.91 from 100 to
        # 800 steps against the suspect's -1.96), so more steps only move sameness away. Version 3 trained on to
        # 1,600 steps and beyond here: about 2 s a step on a shared CPU, hours for eight lineages.
        return PASSED
    if got.competence < peak - PAST_PEAK:
        return PAST_ITS_PEAK  # it has learnt its data: more steps overfit
    return None


def _slices(root: Path, sources: Sequence[Any]) -> dict[str, str]:
    """The public-text slices, cut once and frozen in the cache (reading the standard library's docstrings takes most
    of a minute); a changed package only changes what a new recipe reads, since recipes hash their data."""
    from provenance.zoo.corpus import CORPUS_VERSION, build_slices

    path = root / "corpus" / f"v{CORPUS_VERSION}-{SLICE_CHARS}-{'+'.join(s.id for s in sources)}.json"
    if path.is_file():
        return dict(sorted(json.loads(path.read_text()).items()))
    slices, _ = build_slices(SLICE_CHARS, tuple(sources))
    atomic_write_json(path, slices)
    # In the order the cached file gives (sorted ids): the lineages' shares of slices follow this order, and the audit
    # that first cut the slices used to get other shares, so other controls, than every audit after it.
    return dict(sorted(slices.items()))


def _band(target: Profile) -> str:
    """Targets within a tolerance share a cached control: each measure is matched to this resolution anyway."""
    c = round(round(target.competence / TOLERANCE) * TOLERANCE, 4)
    s = round(round(target.sameness / SAMENESS_TOLERANCE) * SAMENESS_TOLERANCE, 2)
    return f"band{c:+.3f}{s:+.2f}"




def build_matched(suspect: Any, excluded_families: set[str], n: int = DEFAULT_LINEAGES,
                  teachers: Sequence[str] | None = None, out: Path | None = None, seed: int = 0,
                  max_params: int = MAX_PARAMS, progress: bool = True, root: Path | None = None,
                  schedule: Sequence[int] = SCHEDULE, sources: Sequence[str] | None = None,
                  device: str | None = None, max_teacher_samples: int | None = None,
                  fmt: str = "auto", from_end: bool = False) -> dict[str, Any]:
    """Build `n` matched controls for a resolved local suspect and write them as a controls panel (JSON) to `out`.

    `excluded_families`: lineages the controls must not belong to (the references', the suspect's when known).
    `teachers`: packaged teachers whose students may serve (None: every packaged teacher). `device`: where to train
    and sample (None: `resolve_device`'s choice); `max_teacher_samples`: the last rung of a student's teacher answers (None:
    320 on a CPU, 20,480 on a GPU). `fmt`: what the controls learn in, "text", "chat" (the suspect's chat template) or
    "auto" (`suspect_format`). `from_end`: build the plan's lineages last first (a second process beside an audit
    building the same plan then shares the work: each control is built once, by whichever reaches it first; the panel
    lists them in the plan's order either way). Returns a summary with the panel's path, every control's competence against the
    suspect's, the format, and what could not be matched.
    """
    from provenance.zoo.corpus import SOURCES
    from provenance.zoo.lineages import PACKAGED_TEACHERS

    reason = why_not(suspect, max_params)
    if reason:
        raise InputError(f"cannot build matched controls: {reason}; give controls of the suspect's kind "
                         "(-c, --controls FILE)")
    assert suspect.local_path is not None
    target = profile(suspect.local_path, _yardstick())
    keep = target.keep
    scaffold = None
    if fmt == "auto":
        fmt, scaffold = suspect_format(suspect.local_path)
    builder = Builder(suspect.local_path, target, root=root, seed=seed, schedule=schedule, progress=progress,
                      device=device, max_teacher_samples=max_teacher_samples, fmt=fmt)
    slices = _slices(builder.root, tuple(s for s in SOURCES if sources is None or s.id in sources))
    plan = plan_lineages(n, excluded_families, PACKAGED_TEACHERS if teachers is None else teachers, list(slices))
    if len(plan) < n:
        raise InputError(f"only {len(plan)} matched lineage(s) can be built here (too little public text installed)")
    built = []
    for lin in reversed(plan) if from_end else plan:
        log.info("matched control %s (%s: %s)", lin.name, lin.kind, lin.source[:60])
        built.append(builder.build(lin, slices))
    if from_end:
        built.reverse()
    panel = {
        "control": [{"spec": str(b.path), "lineage": b.lineage.name,
                     "kind": (f"matched: the suspect's architecture ({builder.params / 1e6:.1f}M parameters"
                              f"{f', its {len(keep)} live output ids' if keep else ''}), "
                              f"{b.steps} steps; competence {b.competence:.3f} nats/byte (suspect "
                              f"{target.competence:.3f}), answer sameness {b.sameness:.2f} (suspect "
                              f"{target.sameness:.2f}){'; learnt in its chat template' if fmt == 'chat' else ''}"),
                     "notes": (f"{_origin(b, fmt)}; recipe sha256 {b.recipe_sha256[:16]}; "
                               f"{'matched' if b.matched else 'NOT matched (closest reached)'}; stopped: {b.stop}")}
                    for b in built],
    }
    path = Path(out) if out else builder.root / "panels" / f"{sha256_json(panel)[:16]}.json"
    atomic_write_json(path, panel)
    return {"panel": str(path), "suspect_competence": round(target.competence, 4),
            "suspect_sameness": target.sameness, "parameters": builder.params,
            "closed_vocabulary": len(keep) if keep else None, "device": builder.device,
            "format": fmt, "scaffold_logprob": scaffold,
            "max_teacher_samples": builder.max_teacher_samples,
            "controls": [{"spec": str(b.path), "lineage": b.lineage.name, "kind": b.lineage.kind,
                          "source": b.lineage.source, "teacher_samples": b.teacher_samples, "steps": b.steps,
                          "stop": b.stop, "competence": b.competence, "sameness": b.sameness,
                          "matched": b.matched, "seconds": round(b.seconds, 1), "log": b.log} for b in built],
            "unmatched": [b.lineage.name for b in built if not b.matched]}


def _origin(b: Built, fmt: str = "text") -> str:
    if b.lineage.kind == "student":
        return f"student of {b.lineage.source} on {b.teacher_samples} of its sampled {'chat ' * (fmt == 'chat')}answers"
    return f"public text {b.lineage.source}{' as chat answers' if fmt == 'chat' else ''}"


def known_families(specs: Sequence[str]) -> set[str]:
    """Lineage families of models named without resolving them: packaged names (both the package's family and the
    study zoo's name for it) and directories that declare a `.lineage`."""
    from provenance.models.packaged import family_of
    from provenance.models.registry import _lineage_file
    from provenance.models.spec import SpecKind, parse_spec
    from provenance.zoo.lineages import PACKAGED_FAMILY

    out: set[str] = set()
    for s in specs:
        ms = parse_spec(s)
        if ms.kind is SpecKind.PACKAGED:
            name = ms.location
            out |= {x for x in (family_of(name), PACKAGED_FAMILY.get(name)) if x}
        elif ms.kind is SpecKind.DIRECTORY:
            lin = _lineage_file(Path(ms.location))
            if lin:
                out.add(lin)
    return out


def teachers_outside(excluded: set[str]) -> list[str]:
    """Packaged teachers none of whose names for their family is excluded."""
    from provenance.models.packaged import family_of
    from provenance.zoo.lineages import PACKAGED_FAMILY, PACKAGED_TEACHERS

    return [t for t in PACKAGED_TEACHERS if not ({t, family_of(t), PACKAGED_FAMILY.get(t)} & excluded)]


def build_for(resolved: Any, references: Sequence[str], n: int = DEFAULT_LINEAGES, with_teachers: bool = True,
              out: Path | None = None, max_params: int = MAX_PARAMS, progress: bool = True,
              device: str | None = None, max_teacher_samples: int | None = None,
              fmt: str = "auto", from_end: bool = False) -> dict[str, Any]:
    """Matched controls for an audit of `resolved` against `references`: no control of a reference's lineage (or the
    suspect's, when known). What `controls build` and an audit with no controls both run."""
    excluded = known_families(references) | ({resolved.lineage} if resolved.lineage else set())
    return build_matched(resolved, excluded, n, teachers=teachers_outside(excluded) if with_teachers else (),
                         out=out, max_params=max_params, progress=progress, device=device,
                         max_teacher_samples=max_teacher_samples, fmt=fmt, from_end=from_end)


def auto_panel(suspect: str, references: Sequence[str], options: Any, mode: str = "auto", progress: bool = True,
               n: int = DEFAULT_LINEAGES, max_params: int = MAX_PARAMS) -> tuple[Path | None, str]:
    """An audit given no controls: (the matched panel's path, or None, and one line saying what was done).

    mode "auto": build when the suspect allows it, else fall back to the packaged controls (the competence check then
    says whether they are of the suspect's kind); "always": refuse when it cannot; "never": do nothing.
    """
    from provenance.models import resolve
    from provenance.models.spec import SpecKind, parse_spec

    if mode == "never":
        return None, "matched controls not built (--build-controls never)"
    reason = None
    resolved = None
    if parse_spec(suspect).kind is not SpecKind.DIRECTORY:
        reason = "the suspect is not a local transformers directory"
    else:
        resolved = resolve(suspect, options)
        reason = why_not(resolved, max_params)
    if reason:
        if mode == "always":
            raise InputError(f"cannot build matched controls: {reason}; give controls (-c, --controls FILE)")
        return None, (f"no matched controls ({reason}): the packaged models serve as controls, and the competence "
                      "check says whether they are of the suspect's kind")
    assert resolved is not None
    summary = build_for(resolved, references, n, max_params=max_params, progress=progress)
    ok = len(summary["controls"]) - len(summary["unmatched"])
    fmt = " in its chat template" if summary["format"] == "chat" else ""
    line = (f"matched controls: {len(summary['controls'])} lineages trained at the suspect's architecture "
            f"({summary['parameters'] / 1e6:.1f}M parameters){fmt}, {ok} within {TOLERANCE} nats/byte of its competence "
            f"({summary['suspect_competence']:.3f}) and {SAMENESS_TOLERANCE} of its answer sameness "
            f"({summary['suspect_sameness']:.2f}); panel {summary['panel']}")
    if summary["unmatched"]:
        line += f"; not matched: {', '.join(summary['unmatched'])} (the competence check decides)"
    return Path(summary["panel"]), line
