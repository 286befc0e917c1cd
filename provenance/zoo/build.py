"""`provenance zoo build`: a lineage zoo with ground-truth labels (micro: seconds, for CI; small: real teacher)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provenance.errors import InputError
from provenance.fsutil import atomic_write_json, cache_dir
from provenance.probeset import load as load_probes
from provenance.zoo.train import (fresh_model, is_complete, restrict_vocab, sample, save, tiny_config,
                                  train_logit_level, train_sequence_level)

ZOO_VERSION = "2"  # 2: the micro zoo has six tiny teachers (five control lineages: the null counts lineages)
SMOL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ZooSize:
    name: str
    teachers: tuple[str, ...]  # "tiny:<seed>" (random peaky tiny model) or a packaged model name; the first is the reference
    samples: dict[str, int]  # sampled answers per teacher
    new_tokens: int
    students_per_teacher: dict[str, int]  # sequence-level students of each teacher
    student_hidden: int
    epochs: int
    logit_students: int  # of the reference teacher (needs its tokenizer: always shared here)
    vocab_limit: int | None = None  # tiny teachers emit only the first ids; students train a softmax over them
    derivatives: tuple[str, ...] = ("noised", "finetuned")  # weight-sharing copies of the reference teacher


DERIVED_KINDS = ("noised", "finetuned", "quantized", "pruned")


SIZES = {
    "micro": ZooSize("micro", ("tiny:100", "tiny:101", "tiny:102", "tiny:103", "tiny:104", "tiny:105"),
                     {"*": 256}, 24, {"tiny:100": 2, "*": 2}, 64, 10, 1, 1024),
    "small": ZooSize("small", (SMOL, "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"),
                     {SMOL: 160, "*": 64}, 40, {SMOL: 2, "*": 2}, 64, 6, 0),
    "full": ZooSize("full", (SMOL, "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"),
                    {SMOL: 480, "*": 240}, 48, {SMOL: 4, "*": 4}, 128, 8, 2,
                    derivatives=("noised", "finetuned", "quantized", "pruned")),
}


def lineage_name(teacher: str) -> str:
    """The lineage family of a zoo teacher and everything made from it: a packaged model's family, else its slug."""
    from provenance.models.packaged import family_of

    return family_of(teacher) or teacher.replace(":", "-")


def _get(d: dict[str, int], key: str) -> int:
    return d.get(key, d.get("*", 0))


def default_zoo_dir(size: str) -> Path:
    return cache_dir() / "zoo" / f"{size}-v{ZOO_VERSION}"


def _tokenizer() -> Any:
    """All students (and tiny teachers) use SmolLM2's tokenizer: students of other teachers then share the
    reference's tokenizer without having learned from it (the hard negatives)."""
    from transformers import AutoTokenizer

    from provenance.models import resolve
    from provenance.models.hf import converted_gguf_dir

    m = resolve(SMOL)
    assert m.gguf is not None
    tok = AutoTokenizer.from_pretrained(str(converted_gguf_dir(m.gguf, m.fingerprint)))
    return tok


def _bar(total: int, desc: str, progress: bool) -> Any:
    from provenance.progress import bar

    return bar(total, desc, progress)


def build_zoo(size: str = "micro", out: Path | None = None, progress: bool = True) -> Path:
    """Deterministic from seeds; every finished model is kept, so an interrupted build resumes where it stopped."""
    if size not in SIZES:
        raise InputError(f"unknown zoo size '{size}' (choose from {', '.join(SIZES)})")
    import torch
    from transformers import AutoModelForCausalLM

    spec = SIZES[size]
    out = Path(out) if out else default_zoo_dir(size)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # Training prompts come from the continuation generator beyond any audit's prefix (no probe leakage).
    pool = load_probes("continuation").probes
    labels: list[dict[str, Any]] = []
    teacher_paths: dict[str, str] = {}

    def teacher_model(name: str) -> Any:
        if name.startswith("tiny:"):
            path = out / "teachers" / name.replace(":", "-")
            if not is_complete(path):
                cfg = tiny_config(len(tok), spec.student_hidden, 2, init_range=0.5, bos=tok.bos_token_id,
                                  eos=tok.eos_token_id, pad=pad)
                teacher = restrict_vocab(fresh_model(cfg, int(name.split(":")[1])), spec.vocab_limit or len(tok))
                save(teacher, tok, path, f"tiny random teacher, seed {name}, emits ids < {spec.vocab_limit}",
                     lineage_name(name))
            teacher_paths[name] = str(path)
            return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32), tok
        from provenance.models import resolve

        r = resolve(name)
        backend = r.load()
        teacher_paths[name] = name
        return backend.model, backend.tokenizer

    for t_index, teacher in enumerate(spec.teachers):
        slug = teacher.replace(":", "-")
        n_students = _get(spec.students_per_teacher, teacher)
        n_logit = spec.logit_students if t_index == 0 else 0
        student_dirs = [out / "students" / f"seq-{slug}-{i}" for i in range(n_students)]
        logit_dirs = [out / "students" / f"logit-{slug}-{i}" for i in range(n_logit)]
        data_file = out / "data" / f"{slug}.json"
        need = [d for d in student_dirs + logit_dirs if not is_complete(d)]
        derivs = [out / "derived" / f"{slug}-{kind}" for kind in spec.derivatives] if t_index == 0 else []
        if not need:
            teacher_paths[teacher] = str(out / "teachers" / slug) if teacher.startswith("tiny:") else teacher
        else:
            model, t_tok = teacher_model(teacher)
            model.eval()
            same_tokenizer = t_tok.get_vocab() == tok.get_vocab()
            if data_file.is_file():
                seqs = json.loads(data_file.read_text())
            else:
                n = _get(spec.samples, teacher)
                start = 1000 + 200 * t_index  # disjoint prompt ranges per teacher, all beyond audit prefixes
                prompts = [p.text for p in pool[start : start + n]]
                bar = _bar(n, f"sampling {teacher}", progress)
                seqs = sample(model, t_tok, prompts, spec.new_tokens, 1.0, seed=t_index, progress=bar)
                bar.close()
                if not same_tokenizer:  # text-level distillation: the student reads the teacher's text in its own tokens
                    seqs = [tok(t_tok.decode(ids, skip_special_tokens=True))["input_ids"] + [tok.eos_token_id]
                            for ids in seqs]
                atomic_write_json(data_file, seqs)
            if logit_dirs and not same_tokenizer:
                raise InputError(f"logit-level students need the teacher's tokenizer; {teacher} has another")
            for i, d in enumerate(student_dirs):
                if is_complete(d):
                    continue
                cfg = tiny_config(len(tok), spec.student_hidden, 2, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=pad)
                bar = _bar(spec.epochs * ((len(seqs) + 15) // 16), f"student {d.name}", progress)
                st = train_sequence_level(fresh_model(cfg, 1000 + 10 * t_index + i), seqs, spec.epochs, 3e-3, seed=i,
                                          pad=pad, progress=bar, vocab_limit=spec.vocab_limit)
                bar.close()
                save(st, tok, d, f"sequence-level student of {teacher} (seed {i})", lineage_name(teacher))
            for i, d in enumerate(logit_dirs):
                if is_complete(d):
                    continue
                cfg = tiny_config(len(tok), spec.student_hidden, 2, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=pad)
                bar = _bar(spec.epochs * ((len(seqs) + 15) // 16), f"student {d.name}", progress)
                st = train_logit_level(fresh_model(cfg, 2000 + i), model, seqs, spec.epochs, 3e-3, seed=i, pad=pad,
                                       progress=bar, vocab_limit=spec.vocab_limit)
                bar.close()
                save(st, tok, d, f"logit-level (top-20) student of {teacher} (seed {i})", lineage_name(teacher))
            del model
        for d in student_dirs:
            labels.append({"suspect": str(d), "reference": teacher_paths.get(teacher, teacher), "teacher": teacher,
                           "kind": "sequence-distilled", "relation": "distilled" if t_index == 0 else "independent"})
        for d in logit_dirs:
            labels.append({"suspect": str(d), "reference": teacher_paths.get(teacher, teacher), "teacher": teacher,
                           "kind": "logit-distilled", "relation": "distilled"})
        for d in derivs:
            labels.append({"suspect": str(d), "reference": teacher_paths.get(teacher, teacher), "teacher": teacher,
                           "kind": d.name.rsplit("-", 1)[1], "relation": "derived"})
    ref_slug = spec.teachers[0].replace(":", "-")
    derivs = [out / "derived" / f"{ref_slug}-{kind}" for kind in spec.derivatives]
    if not all(is_complete(d) for d in derivs):  # after all teachers, so another teacher's data exists to fine-tune on
        model, _ = teacher_model(spec.teachers[0])
        _derivatives(model, tok, derivs, out, pad, ref_slug, spec.vocab_limit, lineage_name(spec.teachers[0]))
        del model
    reference = teacher_paths[spec.teachers[0]] if spec.teachers[0] in teacher_paths else (
        str(out / "teachers" / ref_slug) if spec.teachers[0].startswith("tiny:") else spec.teachers[0])
    for lab in labels:
        lab["reference"] = reference  # every pair is audited against the first teacher
    controls = [lab["suspect"] for lab in labels if lab["relation"] == "independent"]
    # The true lineage graph (parent -> child), for `matrix` and `attribute` benchmarks: each teacher (as a spec an
    # audit would use) to its students, and the reference teacher to its derivatives.
    lineage = [{"parent": teacher_paths.get(lab["teacher"], lab["teacher"]), "child": lab["suspect"],
                "relation": "derived" if lab["kind"] in DERIVED_KINDS else "distilled", "kind": lab["kind"]}
               for lab in labels]
    write_recipes(out, size)
    atomic_write_json(out / "labels.json", {"zoo_version": ZOO_VERSION, "size": asdict(spec), "reference": reference,
                                            "controls": controls, "pairs": labels, "lineage": lineage,
                                            "teachers": {t: teacher_paths.get(t, t) for t in spec.teachers}})
    return out


def write_recipes(out: Path, size: str) -> None:
    """A `.recipe.json` beside every model of the zoo that has none: how a reader of a bundle naming it rebuilds it
    (hidden, so not part of its fingerprint; the registry copies it into the manifest's `source.recipe`)."""
    from provenance.models.registry import write_recipe

    for d in sorted(p.parent for p in out.glob("*/*/.complete")):
        rel = d.relative_to(out).as_posix()
        write_recipe(d, {
            "built_by": "provenance zoo build", "zoo_version": ZOO_VERSION, "size": size, "model": rel,
            "note": (d / ".complete").read_text().strip(),
            "rebuild": f"provenance zoo build --size {size} (zoo version {ZOO_VERSION}), then the directory {rel}",
        })


def _derivatives(model: Any, tok: Any, dirs: list[Path], out: Path, pad: int, ref_slug: str,
                 vocab_limit: int | None, lineage: str | None = None) -> None:
    """Weight-sharing copies of the reference teacher: Gaussian-noised, briefly fine-tuned on another teacher's data,
    int8-quantized (round trip, as a quantized release would be re-published), magnitude-pruned."""
    import copy

    import torch

    by_kind = {d.name.rsplit("-", 1)[1]: d for d in dirs}
    noised, finetuned = by_kind["noised"], by_kind["finetuned"]
    if not is_complete(noised):
        m = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for _, p in sorted(m.named_parameters(), key=lambda kv: kv[0]):
                if p.numel() > 1:
                    p.add_(torch.randn(p.shape, generator=gen) * float(p.std()) * 0.02)
        save(m, tok, noised, "reference teacher + 2% Gaussian noise on every weight", lineage)
    if not is_complete(finetuned):
        others = sorted((out / "data").glob("*.json"))
        other = next((f for f in others if f.stem != ref_slug), None)
        m = copy.deepcopy(model)
        seqs = json.loads(other.read_text())[:64] if other else []
        if seqs:
            train_sequence_level(m, seqs, 1, 1e-4, seed=0, pad=pad, vocab_limit=vocab_limit)
        save(m, tok, finetuned, f"reference teacher fine-tuned for one epoch on {other.name if other else 'nothing'}", lineage)
    if "quantized" in by_kind and not is_complete(by_kind["quantized"]):
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p in m.parameters():
                if p.dim() == 2:  # symmetric int8 per output row: what an 8-bit release keeps of each matrix
                    scale = p.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
                    p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
        save(m, tok, by_kind["quantized"], "reference teacher, every matrix int8-quantized per row and de-quantized", lineage)
    if "pruned" in by_kind and not is_complete(by_kind["pruned"]):
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p in m.parameters():
                if p.dim() == 2:  # unstructured magnitude pruning: the smallest 30% of each matrix set to zero
                    k = int(p.numel() * 0.3)
                    if k:
                        cut = p.abs().flatten().kthvalue(k).values
                        p.masked_fill_(p.abs() <= cut, 0.0)
        save(m, tok, by_kind["pruned"], "reference teacher with the smallest 30% of every matrix's weights zeroed", lineage)
