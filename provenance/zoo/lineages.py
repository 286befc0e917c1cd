"""`provenance zoo lineages`: many independent lineage families of small models, the validation study's ground truth.

A family is a root and its descendants. Roots are small llama models trained from scratch on slices of public prose
(`zoo/corpus.py`; families overlap partly in what they read, as independent labs' web text does) or one of the
packaged teachers. Descendants are sequence-level students of the root's sampled answers (several data sizes down to
10%, several sizes), logit-level students (top-20), students of a mix of the root's answers and corpus text, and
weight-sharing derivatives (noised, fine-tuned, int8-quantized, pruned, merged with another family's root). Every model
uses SmolLM2's tokenizer except the packaged Qwen and Gemma roots, so a shared tokenizer is never evidence.

The plan is a pure function of (preset, families, seed) and the corpus; every finished model is kept (`.complete`), so
a rerun skips it and an interrupted build resumes. `labels.json` is rewritten after every family, so a partial build
is usable; `cases.json` (`zoo/cases.py`) is drawn from it at the end of every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from provenance.errors import InputError
from provenance.fsutil import atomic_write_json, cache_dir, sha256_json

LINEAGES_VERSION = "1"
LABELS_SCHEMA = "provenance-lineages-labels/1"
SMOL = "smollm2-135m-instruct"
PACKAGED_TEACHERS = (SMOL, "qwen2.5-coder-0.5b-instruct", "gemma-3-270m")
PACKAGED_FAMILY = {SMOL: "p-smollm2", "qwen2.5-coder-0.5b-instruct": "p-qwen25", "gemma-3-270m": "p-gemma3"}
HELDOUT_SOURCES = ("jargon",)  # data that only held-out families read (the "other data" of the held-out part)
PARAGRAPH_SEPARATOR = "\n\n"
EVAL_SLICES_PER_SOURCE = 1  # the last slice of every source is never trained on: the neutral competence yardstick


@dataclass(frozen=True)
class Preset:
    name: str
    families: int  # corpus-rooted families (the packaged teachers root one more family each)
    packaged: tuple[str, ...]
    sources: tuple[str, ...] | None  # corpus sources to use (None: every installed one)
    slice_chars: int  # characters per corpus slice (~4.6 characters per token)
    keep: int  # the closed vocabulary: the corpus's most frequent ids (train.close_vocab)
    root_slices: tuple[int, ...]  # how many slices a root reads (drawn per family)
    root_epochs: tuple[int, ...]  # dev families draw from the first two, held-out ones from all
    samples: int  # sampled answers per corpus root
    packaged_samples: int
    new_tokens: int
    student_epochs: int
    seq_len: int  # corpus chunks a root trains on
    batch: int
    twin_pairs: tuple[int, int]  # (dev, held-out) pairs of families that read mostly the same slices
    heldout_fraction: float = 1 / 3
    eval_chunks: int = 24
    finetune_chunks: int = 64  # corpus chunks the fine-tuned derivative reads (one epoch, full softmax: costly)
    quality_prompts: int = 4  # prompts whose sampled text is kept in labels.json as a look at each model
    shapes: tuple[tuple[int, int], ...] | None = None  # roots' (hidden, layers) for every split (None: DEV/HELDOUT_SHAPES)


PRESETS = {
    "full": Preset("full", 40, PACKAGED_TEACHERS, None, 50_000, 4096, (10, 14, 18), (2, 3, 4), 320, 320, 48, 5, 128, 8,
                   (5, 3)),
    # the test-suite zoo: the stdlib source only (needs no package), a handful of short trainings, about a minute
    "tiny": Preset("tiny", 3, (), ("pytopics",), 12_000, 1024, (2, 3), (1, 1, 1), 32, 0, 16, 2, 64, 8, (1, 0),
                   heldout_fraction=0.0, eval_chunks=4, finetune_chunks=8, quality_prompts=0, shapes=((64, 2),)),
}

# (hidden, layers) of roots and of the alternative student; held-out families also draw the shapes dev never sees
DEV_SHAPES = ((64, 2), (64, 4), (128, 2), (128, 4))
HELDOUT_SHAPES = DEV_SHAPES + ((96, 3), (96, 2), (64, 3), (128, 3))
STUDENT_SHAPE = (64, 2)
DEV_ALT_STUDENTS = ((128, 2), (64, 4))
HELDOUT_ALT_STUDENTS = DEV_ALT_STUDENTS + ((96, 3),)
LR = {64: 5e-3, 96: 4e-3, 128: 3e-3}

# Measured training speed (tokens per second, one thread, 2-core machine shared with other work, closed vocabulary
# of 4,096 ids, batch 8 x 128): see docs/study-zoo.md. Used only by the plan's time estimate (`--dry-run`).
TOKENS_PER_S = {(64, 2): 5600, (64, 3): 5000, (64, 4): 4500, (96, 2): 4800, (96, 3): 4300, (128, 2): 4200,
                (128, 3): 3700, (128, 4): 3300}
PACKAGED_SAMPLE_S = {SMOL: 200.0, "qwen2.5-coder-0.5b-instruct": 700.0, "gemma-3-270m": 450.0}


@dataclass(frozen=True)
class ModelPlan:
    id: str  # "<family>/<name>"
    family: str
    name: str
    role: str  # root | student | derivative
    kind: str
    parent: str | None
    hidden: int | None
    layers: int | None
    seed: int
    split: str
    lineage_families: tuple[str, ...]  # every family whose weights or outputs this model inherits
    data: dict[str, Any] = field(default_factory=dict)  # slices, sample fraction, epochs, lr, ...
    note: str = ""


@dataclass(frozen=True)
class FamilyPlan:
    id: str
    kind: str  # corpus | packaged
    split: str  # dev | heldout
    root: str  # model id
    teacher: str | None  # packaged spec for packaged families
    slices: tuple[str, ...]
    twin_of: str | None
    models: tuple[ModelPlan, ...]


def default_lineages_dir() -> Path:
    return cache_dir() / "zoo" / f"lineages-v{LINEAGES_VERSION}"


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16) % (2**31 - 1)


def _rng(*parts: Any) -> np.random.Generator:
    return np.random.default_rng(_seed(*parts))


def split_families(ids: Sequence[str], fraction: float, seed: int) -> dict[str, str]:
    """Held-out families chosen by a fixed seed: about `fraction` of them, at least one when there are three or more."""
    n_held = int(round(len(ids) * fraction)) if len(ids) >= 3 else 0
    held = set(_rng(seed, "heldout", len(ids)).permutation(sorted(ids))[:n_held].tolist())
    return {f: ("heldout" if f in held else "dev") for f in ids}


def reserved_eval_slices(slice_ids: Sequence[str]) -> list[str]:
    """The last slice of every source: no model reads it; every model is scored on it (a neutral yardstick)."""
    by_source: dict[str, list[str]] = {}
    for s in slice_ids:
        by_source.setdefault(s.rsplit("-", 1)[0], []).append(s)
    return sorted(s for ids in by_source.values() if len(ids) > 2 for s in ids[-EVAL_SLICES_PER_SOURCE:])


def make_plan(preset: Preset, slice_ids: Sequence[str], families: int | None = None, seed: int = 0) -> list[FamilyPlan]:
    """The whole zoo as data: which models, their shapes, data and budgets (no torch; `--dry-run` prints it)."""
    n = preset.families if families is None else families
    corpus_ids = [f"c{i:02d}" for i in range(n)]
    packaged_ids = {t: PACKAGED_FAMILY.get(t, f"p-{t}") for t in preset.packaged}
    split = split_families(corpus_ids, preset.heldout_fraction, seed)
    for t, fid in packaged_ids.items():  # Gemma's family (a teacher dev never sees) is held out
        split[fid] = "heldout" if t.startswith("gemma") else "dev"
    eval_slices = set(reserved_eval_slices(slice_ids))
    train_pool = {"dev": [s for s in slice_ids if s not in eval_slices and s.rsplit("-", 1)[0] not in HELDOUT_SOURCES],
                  "heldout": [s for s in slice_ids if s not in eval_slices]}
    # Twins: pairs of families (within one split) that read two thirds of the same slices (the shared-data confound).
    twins: dict[str, str] = {}
    for sp, n_pairs in zip(("dev", "heldout"), preset.twin_pairs):
        members = [f for f in corpus_ids if split[f] == sp]
        order = _rng(seed, "twins", sp).permutation(members).tolist()
        for a, b in zip(order[0 : 2 * n_pairs : 2], order[1 : 2 * n_pairs : 2]):
            twins[max(a, b)] = min(a, b)
    plans: list[FamilyPlan] = []
    roots_by_shape: dict[tuple[str, tuple[int, int]], list[str]] = {}
    fam_slices: dict[str, tuple[str, ...]] = {}
    for fid in corpus_ids:
        sp = split[fid]
        rng = _rng(seed, "family", fid)
        shapes = preset.shapes or (DEV_SHAPES if sp == "dev" else HELDOUT_SHAPES)
        hidden, layers = shapes[int(rng.integers(len(shapes)))]
        epochs_pool = preset.root_epochs[:2] if sp == "dev" else preset.root_epochs
        epochs = int(epochs_pool[int(rng.integers(len(epochs_pool)))])
        pool = train_pool[sp]
        m = min(int(preset.root_slices[int(rng.integers(len(preset.root_slices)))]), len(pool))
        if fid in twins and twins[fid] in fam_slices:
            base = list(fam_slices[twins[fid]])
            shared = base[: max(1, (2 * len(base)) // 3)]
            rest = [s for s in rng.permutation(pool).tolist() if s not in base][: max(0, m - len(shared))]
            slices = tuple(sorted(shared + rest))
        else:
            slices = tuple(sorted(rng.choice(pool, size=m, replace=False).tolist()))
        fam_slices[fid] = slices
        roots_by_shape.setdefault((sp, (hidden, layers)), []).append(fid)
        plans.append(_corpus_family(preset, fid, sp, hidden, layers, epochs, slices, twins.get(fid), rng, seed,
                                    [s for s in pool if s not in slices]))
    for teacher, fid in packaged_ids.items():
        plans.append(_packaged_family(preset, fid, split[fid], teacher, seed, train_pool[split[fid]]))
    # Merges: the root averaged with another family's root of the same shape and split (that family becomes a second
    # lineage of the merged model, so no null tuple may pair it with either family).
    out = []
    for fp in plans:
        root = next(m for m in fp.models if m.role == "root")
        donors = [f for f in roots_by_shape.get((fp.split, (root.hidden or 0, root.layers or 0)), []) if f != fp.id]
        if fp.kind == "corpus" and donors:
            donor = donors[int(_rng(seed, "donor", fp.id).integers(len(donors)))]
            merged = ModelPlan(f"{fp.id}/merged", fp.id, "merged", "derivative", "merged", root.id, root.hidden,
                               root.layers, _seed(seed, fp.id, "merged"), fp.split, (fp.id, donor),
                               {"donor": f"{donor}/root", "weight": 0.5},
                               f"average (0.5/0.5) of {root.id} and {donor}/root, an unrelated root of the same shape")
            fp = replace(fp, models=fp.models + (merged,))
        out.append(fp)
    return out


def _corpus_family(preset: Preset, fid: str, sp: str, hidden: int, layers: int, epochs: int, slices: tuple[str, ...],
                   twin: str | None, rng: np.random.Generator, seed: int, other_slices: list[str]) -> FamilyPlan:
    root_id = f"{fid}/root"
    lin = (fid,)
    ms = [ModelPlan(root_id, fid, "root", "root", "corpus-teacher", None, hidden, layers, _seed(seed, root_id), sp, lin,
                    {"slices": list(slices), "epochs": epochs, "lr": LR[hidden], "batch": preset.batch,
                     "seq_len": preset.seq_len},
                    f"trained from scratch on {len(slices)} corpus slices for {epochs} epoch(s)")]
    ms += _students(preset, fid, sp, root_id, rng, seed, logit=True, other_slices=other_slices)
    mix_slices = sorted(rng.choice(other_slices, size=min(2, len(other_slices)), replace=False).tolist()) if other_slices else []
    for kind, note in (("noised", "root + 2% Gaussian noise on every weight"),
                       ("finetuned", "root fine-tuned for one epoch (lr 1e-4) on 64 chunks of corpus text it never read"),
                       ("quantized", "root, every matrix int8-quantized per row and de-quantized"),
                       ("pruned", "root with the smallest 30% of every matrix's weights zeroed")):
        ms.append(ModelPlan(f"{fid}/root-{kind}", fid, f"root-{kind}", "derivative", kind, root_id, hidden, layers,
                            _seed(seed, fid, kind), sp, lin,
                            {"slices": mix_slices[:1]} if kind == "finetuned" else {}, note))
    return FamilyPlan(fid, "corpus", sp, root_id, None, slices, twin, tuple(ms))


def _packaged_family(preset: Preset, fid: str, sp: str, teacher: str, seed: int, pool: list[str]) -> FamilyPlan:
    root_id = f"{fid}/root"
    rng = _rng(seed, "family", fid)
    ms = [ModelPlan(root_id, fid, "root", "root", "packaged-teacher", None, None, None, 0, sp, (fid,),
                    {"spec": teacher}, f"the packaged model {teacher}")]
    ms += _students(preset, fid, sp, root_id, rng, seed, logit=teacher == SMOL, other_slices=pool)
    return FamilyPlan(fid, "packaged", sp, root_id, teacher, (), None, tuple(ms))


def _students(preset: Preset, fid: str, sp: str, root_id: str, rng: np.random.Generator, seed: int, logit: bool,
              other_slices: list[str]) -> list[ModelPlan]:
    lin = (fid,)
    h, l_ = STUDENT_SHAPE
    e = preset.student_epochs
    alts = DEV_ALT_STUDENTS if sp == "dev" else HELDOUT_ALT_STUDENTS
    ah, al = alts[int(rng.integers(len(alts)))]
    alt_fraction = float([0.3, 0.5, 1.0][int(rng.integers(3))])
    mix_slices = sorted(rng.choice(other_slices, size=min(2, len(other_slices)), replace=False).tolist()) if other_slices else []

    def student(name: str, kind: str, hidden: int, layers: int, data: dict[str, Any], note: str) -> ModelPlan:
        return ModelPlan(f"{fid}/{name}", fid, name, "student", kind, root_id, hidden, layers, _seed(seed, fid, name), sp,
                         lin, {"samples_of": root_id, "lr": LR[hidden], **data}, note)

    ms = [student("seq-full", "sequence", h, l_, {"fraction": 1.0, "epochs": e},
                  "sequence-level student of all the root's sampled answers"),
          student("seq-10pct", "sequence-10pct", h, l_, {"fraction": 0.1, "epochs": 2 * e},
                  "sequence-level student of 10% of the root's sampled answers"),
          student("seq-alt", "sequence-alt", ah, al, {"fraction": alt_fraction, "epochs": e + 1},
                  f"sequence-level student of another shape ({ah}x{al}) on {alt_fraction:.0%} of the answers"),
          student("mix", "mix", h, l_, {"fraction": 1.0, "epochs": e, "corpus_slices": mix_slices},
                  "student of the root's answers mixed 1:1 with corpus chunks from slices the root never read")]
    if logit:
        ms.append(student("logit", "logit", h, l_, {"fraction": 1.0, "epochs": max(2, e // 2), "top_k": 20},
                          "logit-level student of the root's top-20 next-token distribution on its own answers"))
    return ms


# ---------------------------------------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    slices: dict[str, str]
    tokens: dict[str, list[int]]  # SmolLM2 ids of each slice, paragraphs separated by the end-of-sequence id
    keep: list[int]
    manifest: dict[str, Any]


def corpus_slice_ids(preset: Preset) -> list[str]:
    from provenance.zoo.corpus import SOURCES, build_slices

    sources = tuple(s for s in SOURCES if preset.sources is None or s.id in preset.sources)
    slices, _ = build_slices(preset.slice_chars, sources)
    return list(slices)


def ensure_corpus(out: Path, preset: Preset, tok: Any) -> Corpus:
    """The corpus, cut, tokenized and frozen into `out/corpus/` on first use (a resumed build reads the same text even
    if the installed packages change)."""
    from provenance.zoo.corpus import CORPUS_VERSION, SOURCES, build_slices, slice_sha256

    d = out / "corpus"
    if (d / "manifest.json").is_file() and (d / "tokens.json").is_file() and (d / "slices.json").is_file():
        return Corpus(dict(sorted(json.loads((d / "slices.json").read_text()).items())),
                      json.loads((d / "tokens.json").read_text()),
                      json.loads((d / "manifest.json").read_text())["keep"], json.loads((d / "manifest.json").read_text()))
    sources = tuple(s for s in SOURCES if preset.sources is None or s.id in preset.sources)
    slices, per_source = build_slices(preset.slice_chars, sources)
    if not slices:
        raise InputError("no corpus source is installed (not even the Python standard library's)")
    # Paragraphs are joined by a blank line, not by the end-of-sequence id: a root trained to end every paragraph with
    # <|im_end|> answers a greedy prompt with "." and stops, which leaves the output-agreement test nothing to compare.
    tokens: dict[str, list[int]] = {}
    for sid, text in slices.items():
        enc = tok([par + PARAGRAPH_SEPARATOR for par in text.split("\n")])["input_ids"]
        tokens[sid] = [i for ids in enc for i in ids]
    counts = np.bincount(np.concatenate([np.asarray(v, dtype=np.int64) for v in tokens.values()]), minlength=len(tok))
    keep = sorted(int(i) for i in np.argsort(-counts, kind="stable")[: preset.keep])
    total = int(counts.sum())
    manifest = {"corpus_version": CORPUS_VERSION, "sources": per_source, "slice_chars": preset.slice_chars,
                "paragraph_separator": PARAGRAPH_SEPARATOR,
                "slices": {sid: {"chars": len(t), "tokens": len(tokens[sid]), "sha256": slice_sha256(t)}
                           for sid, t in slices.items()},
                "keep": keep, "keep_size": len(keep), "keep_sha256": sha256_json(keep),
                "keep_coverage": round(float(counts[keep].sum()) / max(total, 1), 4), "tokens": total}
    atomic_write_json(d / "slices.json", slices)
    atomic_write_json(d / "tokens.json", tokens)
    atomic_write_json(d / "manifest.json", manifest)
    return Corpus(slices, tokens, keep, manifest)


def _chunks(corpus: Corpus, slice_ids: Sequence[str], length: int) -> list[list[int]]:
    out = []
    for sid in slice_ids:
        t = corpus.tokens[sid]
        out += [t[i : i + length] for i in range(0, len(t) - length + 1, length)]
    return out


# ------------------------------------------------------------------------------------------------------------ build


def _bar(total: int, desc: str, progress: bool, leave: bool = False, position: int | None = None) -> Any:
    from provenance.progress import bar

    return bar(total, desc, progress, leave=leave, position=position)


def _log(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr)


def model_dir(out: Path, model_id: str) -> Path:
    return out / "families" / model_id


def estimate_seconds(preset: Preset, fams: Sequence[FamilyPlan], corpus_tokens: dict[str, int]) -> dict[str, float]:
    """Rough build time per model from measured per-shape throughput (docs/study-zoo.md)."""
    est: dict[str, float] = {}
    ans_tokens = preset.new_tokens + 10
    for fp in fams:
        for m in fp.models:
            rate = TOKENS_PER_S.get((m.hidden or 64, m.layers or 2), 4000)
            if m.kind == "corpus-teacher":
                toks = sum(corpus_tokens.get(s, 0) for s in m.data["slices"]) * m.data["epochs"]
                sample_s = preset.samples * preset.new_tokens / 900  # batched generation, about 900 tokens/s
                est[m.id] = toks / rate + sample_s + 5
            elif m.kind == "packaged-teacher":
                est[m.id] = PACKAGED_SAMPLE_S.get(fp.teacher or "", 300.0) * preset.packaged_samples / 320 + 20
            elif m.role == "student":
                n = (preset.samples if fp.kind == "corpus" else preset.packaged_samples) * m.data["fraction"]
                toks = n * ans_tokens * m.data["epochs"] * (2 if m.kind == "mix" else 1)
                extra = 150.0 if (m.kind == "logit" and fp.kind == "packaged") else 0.0
                est[m.id] = toks / (rate * 0.8) * (1.6 if m.kind == "logit" else 1.0) + 3 + extra
            else:
                est[m.id] = 6.0 if m.kind == "finetuned" else 2.0
    return est


def write_cases(out: Path, seed: int = 0) -> dict[str, Any]:
    """Draw cases.json from the zoo's labels.json as it stands (a partial build's labels give a partial list)."""
    from provenance.zoo.cases import draw_cases

    try:
        labels = json.loads((Path(out) / "labels.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"{out}: no readable labels.json (build the zoo first)") from None
    cases = draw_cases(labels, seed=seed)
    atomic_write_json(Path(out) / "cases.json", cases)
    return cases


def build_lineages(out: Path | None = None, preset: str = "full", families: int | None = None, seed: int = 0,
                   progress: bool = True, threads: int = 1, dry_run: bool = False,
                   cases_only: bool = False, only: Sequence[str] | None = None,
                   models: Sequence[str] | None = None) -> dict[str, Any]:
    """Build (or resume) the zoo and write labels.json and cases.json; with `dry_run`, only return the plan; with
    `cases_only`, only redraw cases.json from the labels.json already there; with `models`, only those models and
    what they are made from (a study that needs part of the zoo, rebuilt on a new machine)."""
    if preset not in PRESETS:
        raise InputError(f"unknown lineage preset '{preset}' (choose from {', '.join(PRESETS)})")
    if families is not None and families < 1:
        raise InputError("--families must be at least 1")
    spec = PRESETS[preset]
    if out is None:
        out = default_lineages_dir() if preset == "full" else cache_dir() / "zoo" / f"lineages-{preset}-v{LINEAGES_VERSION}"
    out = Path(out)
    if cases_only:
        from provenance.zoo.cases import summary

        cases = write_cases(out, seed)
        labels = json.loads((out / "labels.json").read_text())
        return {"out": str(out), "models": len(labels["models"]), "trained": 0, "complete": labels.get("complete"),
                "summary": summary(cases)}
    if dry_run:
        from provenance.zoo.corpus import SOURCES, build_slices

        frozen = out / "corpus" / "manifest.json"
        if frozen.is_file():
            man = json.loads(frozen.read_text())
            slice_tokens = {k: v["tokens"] for k, v in man["slices"].items()}
        else:
            sources = tuple(s for s in SOURCES if spec.sources is None or s.id in spec.sources)
            sl, _ = build_slices(spec.slice_chars, sources)
            slice_tokens = {k: int(len(v) / 4.6) for k, v in sl.items()}
        fams = make_plan(spec, list(slice_tokens), families, seed)
        est = estimate_seconds(spec, fams, slice_tokens)
        hashes = plan_hashes(fams)
        done = {m.id for fp in fams for m in fp.models if _is_done(out, m, hashes)}
        return {"out": str(out), "preset": spec.name, "families": len(fams), "models": sum(len(f.models) for f in fams),
                "done": len(done), "estimated_minutes": round(sum(v for k, v in est.items() if k not in done) / 60, 1),
                "per_family": [{"family": f.id, "split": f.split, "kind": f.kind, "models": len(f.models),
                                "root": _shape(f), "minutes": round(sum(est[m.id] for m in f.models) / 60, 1)}
                               for f in fams]}
    os.environ["PROVENANCE_TORCH_THREADS"] = str(max(1, threads))
    import torch

    from provenance.models.hf import _quiet_transformers

    _quiet_transformers()  # hundreds of "Loading weights" bars would bury the build's own

    torch.set_num_threads(max(1, threads))
    from provenance.zoo.build import _tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    corpus = ensure_corpus(out, spec, tok)
    fams = make_plan(spec, list(corpus.slices), families, seed)
    ctx = _Ctx(out, spec, tok, corpus, fams, seed, progress)
    total = sum(len(f.models) for f in fams)
    before = {m.id for f in fams for m in f.models if _is_done(out, m, ctx.hashes)}
    outer = _bar(total, "lineage zoo", progress, leave=True, position=0)
    order = [(fp, m) for fp in sorted(fams, key=lambda f: (f.kind == "packaged", f.id)) for m in fp.models
             if m.kind != "merged"] + [(fp, m) for fp in fams for m in fp.models if m.kind == "merged"]  # donors first
    if only:
        # One of several builders sharing the zoo (one per core): only these families, and a merge only once its donor
        # is built (the last, unrestricted run builds the rest and draws the cases).
        unknown = sorted(set(only) - {f.id for f in fams})
        if unknown:
            raise InputError(f"--only: no family {unknown[0]} in this plan")
        order = [(fp, m) for fp, m in order if fp.id in set(only) and
                 (m.kind != "merged" or _is_done(out, next(x for f in fams for x in f.models
                                                            if x.id == m.data.get("donor")), ctx.hashes))]
    if models:  # as with `only`, a merge waits for its donor (another builder's, or a later run's)
        want = needed_models(fams, models)
        order = [(fp, m) for fp, m in order if m.id in want and
                 (m.kind != "merged" or _is_done(out, next(x for f in fams for x in f.models
                                                            if x.id == m.data.get("donor")), ctx.hashes))]
    for i, (fp, m) in enumerate(order):
        t0 = time.time()
        if ctx.build(fp, m):
            _log(f"[{i + 1}/{total}] {m.id} ({m.kind}, {fp.split}) built in {time.time() - t0:.1f} s")
        outer.update(1)
        if i + 1 == len(order) or order[i + 1][0].id != fp.id:
            write_labels(ctx)  # after every family: a partial build is already usable
    outer.close()
    labels = write_labels(ctx)
    from provenance.zoo.cases import summary

    cases = write_cases(out, seed) if not (only or models) else {"cases": []}
    built = sum(1 for f in fams for m in f.models if m.id not in before and _is_done(out, m, ctx.hashes))
    return {"out": str(out), "models": total, "trained": built, "complete": labels["complete"],
            "summary": summary(cases)}


def needed_models(fams: Sequence[FamilyPlan], ids: Sequence[str]) -> set[str]:
    """The models `ids` name and every model they are made from (parents, recursively; a merge's donor is another
    family's root, left to the builder of that family); an unknown id is refused. A derivative's siblings come along:
    the four are written together (zoo/build.py)."""
    by_id = {m.id: m for fp in fams for m in fp.models}
    unknown = sorted(set(ids) - set(by_id))
    if unknown:
        raise InputError(f"--models: no model {unknown[0]} in this plan")
    out: set[str] = set()
    todo = list(ids)
    while todo:
        m = by_id[todo.pop()]
        if m.id in out:
            continue
        out.add(m.id)
        if m.role == "derivative" and m.kind != "merged":
            todo += [x.id for x in by_id.values() if x.family == m.family and x.role == "derivative"
                     and x.kind != "merged"]
        todo += [m.parent] if m.parent and m.parent in by_id else []
    return out


def _shape(f: FamilyPlan) -> str:
    r = f.models[0]
    return f.teacher or f"{r.hidden}x{r.layers}, {len(f.slices)} slices, {r.data.get('epochs')} ep"


def plan_hashes(fams: Sequence[FamilyPlan]) -> dict[str, str]:
    """Each model's hash over its own recipe and, recursively, its ancestors' (parent, and a merge's donor): a root
    rebuilt from a changed recipe invalidates its answers, students and derivatives, never leaving a student of an
    older root labelled as this root's student."""
    by_id = {m.id: m for fp in fams for m in fp.models}
    memo: dict[str, str] = {}

    def h(mid: str) -> str:
        if mid not in memo:
            m = by_id[mid]
            up = [x for x in (m.parent, m.data.get("donor")) if x and x in by_id and x != mid]
            memo[mid] = sha256_json({"recipe": asdict(m), "ancestors": [h(x) for x in up]})
        return memo[mid]

    return {mid: h(mid) for mid in by_id}


def _is_done(out: Path, m: ModelPlan, hashes: Mapping[str, str]) -> bool:
    """Finished, and built from this very plan entry and ancestry (a model left by an older plan is rebuilt, never
    relabelled)."""
    from provenance.zoo.train import is_complete

    if m.kind == "packaged-teacher":
        return _samples_current(out, m.family, hashes[m.id])
    d = model_dir(out, m.id)
    if not is_complete(d):
        return False
    meta = d / "lineage.json"
    return not meta.is_file() or json.loads(meta.read_text()).get("plan_sha256") in (None, hashes[m.id])


# How long a model took to build is a fact about the machine, not the model: it lives in a hidden file (not part of the
# directory's fingerprint), so a rebuild that trains the same weights gets the same fingerprint (protocol v3,
# amendment 5: a study resumed on a rebuilt zoo checks every model's fingerprint against the one it started on).
BUILD_FILE = ".build.json"


def split_build_time(d: Path) -> None:
    """Move a build time that an older version wrote into lineage.json out to `.build.json` (content unchanged)."""
    meta = d / "lineage.json"
    if not meta.is_file():
        return
    info = json.loads(meta.read_text())
    if "seconds" not in info:
        return
    if not (d / BUILD_FILE).is_file():
        atomic_write_json(d / BUILD_FILE, {"seconds": info["seconds"]})
    atomic_write_json(meta, {k: v for k, v in info.items() if k != "seconds"})


def build_seconds(d: Path) -> float | None:
    f = d / BUILD_FILE
    return json.loads(f.read_text()).get("seconds") if f.is_file() else None


def _samples_current(out: Path, family: str, root_hash: str) -> bool:
    """The family's answers were sampled from the root as planned now (`samples.json` plus its root's hash)."""
    meta = model_dir(out, family) / "samples.meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("root_plan_sha256") == root_hash


class _Ctx:
    """What one build run shares: the corpus, the tokenizer, the loaded roots (one at a time) and their samples."""

    def __init__(self, out: Path, spec: Preset, tok: Any, corpus: Corpus, fams: list[FamilyPlan], seed: int,
                 progress: bool) -> None:
        self.out, self.spec, self.tok, self.corpus, self.fams = out, spec, tok, corpus, fams
        self.seed, self.progress = seed, progress
        self.hashes = plan_hashes(fams)
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self._root: tuple[str, Any] | None = None
        from provenance.probeset import load as load_probes

        # Prompts for the roots' answers: the continuation generator beyond any audit's prefix (no probe leakage).
        self.pool = [p.text for p in load_probes("continuation").probes[1000:]]
        per_slice = [_chunks(corpus, [s], spec.seq_len) for s in reserved_eval_slices(list(corpus.slices))]
        # round-robin over the held-back slices, so every source counts in the yardstick
        self.eval = [c for group in zip(*per_slice) for c in group][: spec.eval_chunks] if per_slice else []

    # -- helpers --
    def root_model(self, fp: FamilyPlan) -> Any:
        if self._root is not None and self._root[0] == fp.id:
            return self._root[1]
        self._root = None
        if fp.kind == "packaged":
            from provenance.models import resolve

            backend = resolve(fp.teacher or "").load()
            model, t_tok = backend.model, backend.tokenizer
        else:
            import torch
            from transformers import AutoModelForCausalLM

            model, t_tok = AutoModelForCausalLM.from_pretrained(str(model_dir(self.out, fp.root)), dtype=torch.float32), self.tok
        model.eval()
        self._root = (fp.id, (model, t_tok))
        return model, t_tok

    def samples(self, fp: FamilyPlan) -> list[list[int]]:
        """The root's sampled answers in SmolLM2 ids (re-tokenized from text when the root has another tokenizer)."""
        n = self.spec.packaged_samples if fp.kind == "packaged" else self.spec.samples
        path = model_dir(self.out, fp.id) / "samples.json"
        root_hash = self.hashes[fp.root]
        if path.is_file() and _samples_current(self.out, fp.id, root_hash):
            seqs = json.loads(path.read_text())
            if len(seqs) == n:
                return seqs
            path = path.with_name(f"samples-{n}.json")  # a preset with another count: never reuse the wrong answers
            if path.is_file():
                return json.loads(path.read_text())
        from provenance.zoo.train import sample

        model, t_tok = self.root_model(fp)
        order = _rng(self.seed, "prompts", fp.id).permutation(len(self.pool))[:n]
        prompts = [self.pool[i] for i in sorted(order)]
        bar = _bar(len(prompts), f"sampling {fp.id}", self.progress)
        seqs = sample(model, t_tok, prompts, self.spec.new_tokens, 1.0, seed=_seed(self.seed, fp.id, "sample"), progress=bar)
        bar.close()
        if t_tok.get_vocab() != self.tok.get_vocab():
            seqs = [self.tok(t_tok.decode(ids, skip_special_tokens=True))["input_ids"] + [self.tok.eos_token_id] for ids in seqs]
        atomic_write_json(path, seqs)
        if path.name == "samples.json":
            atomic_write_json(path.with_name("samples.meta.json"), {"root_plan_sha256": root_hash, "n": len(seqs)})
        return seqs

    def _subset(self, fp: FamilyPlan, seqs: list[list[int]], fraction: float) -> list[list[int]]:
        if fraction >= 1.0:
            return seqs
        k = max(2, int(round(len(seqs) * fraction)))
        idx = sorted(_rng(self.seed, "subset", fp.id, fraction).permutation(len(seqs))[:k].tolist())
        return [seqs[i] for i in idx]

    # -- one model --
    def build(self, fp: FamilyPlan, m: ModelPlan) -> int:
        """Build `m` unless it is already complete; returns 1 when something was trained or written."""
        if _is_done(self.out, m, self.hashes):
            d = model_dir(self.out, m.family if m.kind == "packaged-teacher" else m.id)
            split_build_time(d)
            if not (d / "lineage.json").is_file():  # built as a by-product of a sibling (zoo/build.py's derivatives)
                import torch
                from transformers import AutoModelForCausalLM

                self._meta(m, time.time(), self._quality(AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32)),
                           seconds=None)
            return 0
        t0 = time.time()
        if m.kind == "packaged-teacher":
            self.samples(fp)
            self._meta(m, t0, {"samples": len(self.samples(fp))})
            return 1
        from transformers import AutoModelForCausalLM

        from provenance.zoo.train import fresh_model, save, tiny_config, train_closed, train_logit_closed

        d = model_dir(self.out, m.id)
        tok, keep = self.tok, self.corpus.keep
        info: dict[str, Any] = {}
        if m.role in ("root", "student"):
            cfg = tiny_config(len(tok), m.hidden or 64, m.layers or 2, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=self.pad)
            net = fresh_model(cfg, m.seed)
            if m.role == "root":
                seqs = _chunks(self.corpus, m.data["slices"], self.spec.seq_len)
            else:
                seqs = self._subset(fp, self.samples(fp), m.data["fraction"])
                if m.kind == "mix":
                    extra = _chunks(self.corpus, m.data["corpus_slices"], self.spec.new_tokens + 10)
                    pick = _rng(self.seed, "mix", m.id).permutation(len(extra))[: len(seqs)]
                    seqs = seqs + [extra[i] for i in sorted(pick)]
            steps = m.data["epochs"] * ((len(seqs) + self.spec.batch - 1) // self.spec.batch)
            bar = _bar(steps, f"{m.id}", self.progress)
            if m.kind == "logit":
                teacher, _ = self.root_model(fp)
                train_logit_closed(net, teacher, seqs, m.data["epochs"], m.data["lr"], seed=m.seed, pad=self.pad, keep=keep,
                                   top_k=m.data.get("top_k", 20), batch=self.spec.batch, progress=bar)
            else:
                train_closed(net, seqs, m.data["epochs"], m.data["lr"], seed=m.seed, pad=self.pad, keep=keep,
                             batch=self.spec.batch, progress=bar)
            bar.close()
            info = {"steps": steps, "sequences": len(seqs), "tokens_trained": m.data["epochs"] * sum(len(s) for s in seqs)}
            save(net, tok, d, m.note)
            if m.role == "root":
                self._root = (fp.id, (net, tok))
        elif m.kind == "merged":
            import torch

            a = AutoModelForCausalLM.from_pretrained(str(model_dir(self.out, m.parent or "")), dtype=torch.float32)
            b = AutoModelForCausalLM.from_pretrained(str(model_dir(self.out, m.data["donor"])), dtype=torch.float32)
            sb = b.state_dict()
            w = float(m.data["weight"])
            with torch.no_grad():
                for k, v in a.state_dict().items():
                    v.mul_(w).add_(sb[k], alpha=1.0 - w)
            save(a, tok, d, m.note)
            net = a
        else:
            self._derivative(fp, m)
            net = None
        if net is None:
            import torch

            net = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32)
        info.update(self._quality(net))
        self._meta(m, t0, info)
        return 1

    def _derivative(self, fp: FamilyPlan, m: ModelPlan) -> None:
        """Reuses zoo/build.py's derivatives: the root's family directory plays the zoo, `data/finetune.json` the other
        teacher's text that the fine-tuned copy reads."""
        from provenance.zoo.build import _derivatives

        fam_dir = model_dir(self.out, fp.id)
        data = fam_dir / "data" / "finetune.json"
        if not data.is_file():
            ft = next(x for x in fp.models if x.kind == "finetuned")
            chunks = _chunks(self.corpus, ft.data.get("slices", []), self.spec.seq_len)
            pick = _rng(self.seed, "finetune", fp.id).permutation(len(chunks))[: self.spec.finetune_chunks]
            atomic_write_json(data, [chunks[i] for i in sorted(pick)])
        model, _ = self.root_model(fp)
        dirs = [model_dir(self.out, x.id) for x in fp.models if x.kind in ("noised", "finetuned", "quantized", "pruned")]
        for d in dirs:  # all four are rewritten together: an old sibling's label must not outlive its weights
            (d / "lineage.json").unlink(missing_ok=True)
        _derivatives(model, self.tok, dirs, fam_dir, self.pad, "root", None, fp.id)

    def _quality(self, net: Any) -> dict[str, Any]:
        """Competence on the neutral yardstick (held-back corpus slices no model read) and a look at the model's text."""
        import torch

        from provenance.zoo.train import sample

        out: dict[str, Any] = {"params": int(sum(p.numel() for p in net.parameters()))}
        if self.eval:
            keep = torch.zeros(len(self.tok), dtype=torch.bool)
            keep[torch.as_tensor(self.corpus.keep)] = True
            nll, count = 0.0, 0
            for start in range(0, len(self.eval), 4):  # full-vocabulary log-softmax, 4 chunks at a time (memory)
                ids = torch.tensor(self.eval[start : start + 4])
                with torch.inference_mode():
                    logp = torch.log_softmax(net(input_ids=ids).logits[:, :-1].float(), dim=-1)
                tgt = ids[:, 1:]
                ok = keep[tgt]  # targets the closed vocabulary can emit: the same yardstick for every model
                nll -= float((logp.gather(-1, tgt[..., None])[..., 0] * ok).sum())
                count += int(ok.sum())
            out["eval_nats_per_token"] = round(nll / max(count, 1), 4)
        if not self.spec.quality_prompts:
            return out
        seqs = sample(net, self.tok, self.pool[-self.spec.quality_prompts :], 24, 1.0, seed=0, batch=4)
        text = [self.tok.decode(s, skip_special_tokens=True) for s in seqs]
        words = " ".join(text).split()
        out["sample_text"] = text[0][:200]
        out["distinct_word_ratio"] = round(len(set(words)) / max(len(words), 1), 3)
        return out

    def _meta(self, m: ModelPlan, t0: float, info: dict[str, Any], seconds: float | None = -1.0) -> None:
        d = model_dir(self.out, m.family if m.kind == "packaged-teacher" else m.id)
        took = round(time.time() - t0, 1) if seconds == -1.0 else seconds
        atomic_write_json(d / BUILD_FILE, {"seconds": took})  # first: lineage.json's presence marks the meta written
        atomic_write_json(d / "lineage.json", {"id": m.id, "plan_sha256": self.hashes[m.id], **info})


def write_labels(ctx: _Ctx) -> dict[str, Any]:
    """labels.json: every finished model with its lineage, shape, budget, data and split (rewritten after each family)."""

    def meta_of(m: ModelPlan) -> dict[str, Any] | None:
        if not _is_done(ctx.out, m, ctx.hashes):
            return None
        d = model_dir(ctx.out, m.family if m.kind == "packaged-teacher" else m.id)
        meta = json.loads((d / "lineage.json").read_text()) if (d / "lineage.json").is_file() else {}
        return {"seconds": build_seconds(d), **meta}  # an older lineage.json's own seconds win (not yet split)

    corpus = {k: v for k, v in ctx.corpus.manifest.items() if k not in ("keep", "slices")}
    labels = labels_from_plan(ctx.out, ctx.spec, ctx.seed, ctx.fams, corpus, list(ctx.corpus.slices), meta_of)
    write_recipes(ctx.out, labels)
    atomic_write_json(ctx.out / "labels.json", labels)
    return labels


def write_recipes(out: Path, labels: Mapping[str, Any]) -> int:
    """A `.recipe.json` beside every finished model that has none: the command that rebuilds it (the build is
    deterministic from the plan's seed), for a reader of a bundle naming it. Hidden, so not part of its fingerprint;
    the registry copies it into the manifest's `source.recipe`. Returns how many were written."""
    from provenance.models.registry import write_recipe

    preset = (labels.get("preset") or {}).get("name", "full")
    n = 0
    for m in labels.get("models", []):
        if not m.get("path") or not (out / m["path"] / "config.json").is_file():  # packaged teachers: their package
            continue
        n += write_recipe(out / m["path"], {
            "built_by": "provenance zoo lineages", "lineages_version": labels.get("lineages_version"),
            "preset": preset, "seed": labels.get("seed"), "model": m["id"], "note": m.get("note"),
            "rebuild": (f"provenance zoo lineages --preset {preset} --seed {labels.get('seed')} (lineages version "
                        f"{labels.get('lineages_version')}), then the directory {m['path']}"),
        })
    return n


def llama_params(vocab: int, hidden: int, layers: int) -> int:
    """Parameters of `train.tiny_config` (tied embeddings, MLP width 2 x hidden, two norms per layer and a final one)."""
    return vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * 2 * hidden + 2 * hidden) + hidden


def synthetic_labels(preset: str = "full", slice_ids: Sequence[str] | None = None, families: int | None = None,
                     seed: int = 0, vocab: int = 49152) -> dict[str, Any]:
    """labels.json as the plan promises it, before anything is trained (sizes computed, no competence measured):
    lets the case list be drawn and checked in advance (`--dry-run`, the tests)."""
    spec = PRESETS[preset]
    ids = list(slice_ids) if slice_ids is not None else corpus_slice_ids(spec)
    fams = make_plan(spec, ids, families, seed)

    def meta_of(m: ModelPlan) -> dict[str, Any]:
        return {"params": llama_params(vocab, m.hidden, m.layers) if m.hidden and m.layers else None}

    return labels_from_plan(Path("(planned)"), spec, seed, fams, {"planned": True}, ids, meta_of)


def labels_from_plan(out: Path, spec: Preset, seed: int, fams: Sequence[FamilyPlan], corpus: dict[str, Any],
                     slice_ids: Sequence[str], meta_of: Any) -> dict[str, Any]:
    rows = []
    complete = True
    for fp in fams:
        for m in fp.models:
            meta = meta_of(m)
            if meta is None:
                complete = False
                continue
            packaged = m.kind == "packaged-teacher"
            rows.append({
                "id": m.id, "family": m.family, "lineage_families": list(m.lineage_families), "role": m.role,
                "kind": m.kind, "parent": m.parent,
                "parents": [p for p in (m.parent, m.data.get("donor")) if p],
                "relation_to_parent": _relation(m), "split": m.split,
                "path": None if packaged else str(model_dir(out, m.id).relative_to(out)),
                "spec": fp.teacher if packaged else str(model_dir(out, m.id)),
                "tokenizer": (fp.teacher if packaged and fp.teacher != SMOL else SMOL),
                "size": {"params": meta.get("params"), "hidden": m.hidden, "layers": m.layers},
                "budget": {k: v for k, v in {**m.data, "steps": meta.get("steps"), "tokens_trained": meta.get("tokens_trained"),
                                              "sequences": meta.get("sequences")}.items()
                           if k in ("epochs", "lr", "batch", "seq_len", "fraction", "top_k", "steps", "tokens_trained",
                                    "sequences", "weight")},
                "data": {"slices": list(fp.slices) if m.role == "root" or m.role == "derivative" else [],
                         "samples_of": m.data.get("samples_of"), "corpus_slices": m.data.get("corpus_slices", [])
                         + (m.data.get("slices", []) if m.kind == "finetuned" else []),
                         "inherits_slices_of": fp.id if fp.kind == "corpus" else None},
                "seed": m.seed, "seconds": meta.get("seconds"),
                "eval_nats_per_token": meta.get("eval_nats_per_token"),
                "distinct_word_ratio": meta.get("distinct_word_ratio"), "sample_text": meta.get("sample_text"),
                "note": m.note})
    families = {fp.id: {"kind": fp.kind, "split": fp.split, "root": fp.root, "teacher": fp.teacher, "slices": list(fp.slices),
                        "twin_of": fp.twin_of, "models": [m.id for m in fp.models]} for fp in fams}
    return {"schema": LABELS_SCHEMA, "lineages_version": LINEAGES_VERSION, "preset": asdict(spec), "seed": seed,
            "complete": complete, "tokenizer": SMOL, "corpus": corpus,
            "eval_slices": reserved_eval_slices(list(slice_ids)), "families": families, "models": rows}


def _relation(m: ModelPlan) -> str | None:
    if m.role == "root":
        return None
    return "derived" if m.role == "derivative" else "distilled"


def iter_models(labels: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from labels["models"]
