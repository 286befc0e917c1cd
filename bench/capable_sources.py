"""Likelihood with capable comparison sources: does it find students that analysis v2's construction misses?

Protocol, fixed and committed before any model below was trained (2026-11-30; issue #15's first done-when item and
#18's text-only one; an exploration for analysis version 3, not a validation: the rates come from a later study).

Question. Analysis v2's likelihood family compares the reference R's sampled answers with the control lineages' own
answers as the other sources. With controls of the suspect's kind (tiny models) those answers are poor text, and a
student of R (matched controls, bench/matched_controls.py: p = 0.41) is not told apart. Issue #15 measured on
held-out students that students of SmolLM2 prefer SmolLM2's answers over Qwen's by about 0.33 nats/byte more than
students of Qwen do. Construction tried here ("capable"): the same scorer x source interaction
(`stats.nulls.interaction`, double-centred, cells whose scorer and source share a lineage left out, each control
lineage in the suspect's seat gives the null, `prediction_test`), with sources R and the other packaged teachers
(capable models independent of R) instead of the controls' answers. Beside it, on the same models and prompts:
"v2" (sources R and the control lineages, as audits do today) and "outside" (the text-only candidate
`stats.text_likelihood`, statistic scaled_answers: R and the controls score the suspect's answers; R = SmolLM2 only,
the one reference cheap enough to score every model's answers on 2 cores).

Models (all trained here, SmolLM2's tokenizer, full vocabulary, seeds fixed below):
- Teachers: SmolLM2-135M-Instruct, Qwen2.5-Coder-0.5B-Instruct, Gemma 3 270M (packaged). Each samples 320 answers
  to continuation prompts 1000-1319 (training) and 120 answers to prompts 0-119 (the test), 48 new tokens,
  temperature 1.
- 4 sequence-level students of each teacher on its 320 answers: (hidden, layers, epochs) = (64, 2, 10),
  (128, 2, 5), (128, 4, 10), (96, 3, 20), each with its own seed. 12 students.
- 4 teacher-free models on disjoint sets of 6 public-prose slices (zoo corpus, 50,000 characters each), 3 epochs,
  the same four shapes: 4 lineages.
Cases: every model as suspect S against each teacher R (capable, v2); against SmolLM2 only (outside). Controls: every
other model whose lineage is neither S's nor R's, one unit per lineage (the students of one teacher are one unit).
Related: S a student of R (12 capable/v2 cases, 4 outside); null: the rest (36 capable/v2, 12 outside; the "52"
first written here was a miscount of the same plan: 16 models x 3 references = 48 cases).
Outcome, per construction: flagged at one-sided p < 0.01 and < 0.05 among related and null cases, the p-values, and
the exact rank p. Expectation stated in advance: capable flags most related cases and at most one null case; v2
flags few related cases. Whatever comes out is reported as it is. 64 cases over 7 lineages are a demonstration with
a count, not a rate: students of one teacher are siblings, and the null cases share models.

Held-out replication (`--set heldout`), fixed and committed with this amendment before any result of the set above
was seen (2026-11-30, 10:25 UTC, while its teachers were still sampling): the same three constructions, nothing
chosen from the first set's results (they have no parameter to tune), on models and prompts unlike it:
- training answers to continuation prompts 1320-1639 (seed 3); test prompts 120-239 (teachers seed 5, models seed 9);
- students of each teacher with (hidden, layers, epochs) = (80, 2, 15), (112, 3, 8), (160, 2, 6), (128, 6, 12),
  the third trained on 160 of the teacher's answers mixed with as many 128-token chunks of corpus text (slices 48+);
- 4 teacher-free models on corpus slices 24-47 (6 each, 3 epochs), those four shapes.
The same outcome measures, reported beside the first set's.

Amendment 2 (committed after the first set's results were seen and before any held-out result was: 2026-11-30,
11:20 UTC, while the held-out teachers were still sampling). On the first set, "capable" found the students of Qwen
and of Gemma but not those of SmolLM2, and its null values were spread by the masking itself: a unit of A's students
has A's column left out of its row mean but not of the inner mean, so its value carries half the difference between
A's and B's fluency (Qwen's answers are the easiest text for every scorer, Gemma's the hardest: +0.12 for Qwen's
students, -0.08 for Gemma's, against R = SmolLM2). A fourth construction, developed on the first set and judged on the
held-out one only: "tetrad", the mean of every admissible tetrad x(r, R) - x(r, j) - x(i, R) + x(i, j) over the
other sources j the seat's row may read and the other units i that may read both R and j (balanced by construction:
each tetrad has mean zero under an additive model whatever is masked; as stats/text_likelihood.py does for the outside
direction). Everything else as above. Its first-set figures are development figures, not evidence.

Usage: python bench/capable_sources.py [--out DIR] [--set dev|heldout]  (about an hour on 2 cores; resumable: finished steps are kept)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import _common  # noqa: F401 - sets up the import path
from _common import machine, write_results

SETS: dict[str, dict[str, Any]] = {
    "dev": {"train": (1000, 1320), "test": (0, 120), "train_seed": 0, "test_seed": 1, "model_seed": 7,
            "shapes": ((64, 2, 10), (128, 2, 5), (128, 4, 10), (96, 3, 20)), "text_slices": 0, "mix": None,
            "seed_base": 0},
    "heldout": {"train": (1320, 1640), "test": (120, 240), "train_seed": 3, "test_seed": 5, "model_seed": 9,
                "shapes": ((80, 2, 15), (112, 3, 8), (160, 2, 6), (128, 6, 12)), "text_slices": 24, "mix": 2,
                "seed_base": 5000},
}
TEACHERS = {"smollm2": "smollm2-135m-instruct", "qwen": "qwen2.5-coder-0.5b-instruct", "gemma": "gemma-3-270m"}
NEW_TOKENS = 48
TEXT_EPOCHS = 3
SLICES_PER_TEXT = 6
SEQ = 128
OUTSIDE_REFERENCE = "smollm2"


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def cached_json(path: Path, make: Any) -> Any:
    if path.is_file():
        return json.loads(path.read_text())
    got = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(got))
    tmp.replace(path)
    return got


def prompts(span: tuple[int, int]) -> list[str]:
    from provenance.probeset import load

    return [p.text for p in load("continuation").probes[span[0] : span[1]]]


def teacher_answers(out: Path, fam: str, span: tuple[int, int], seed: int) -> list[str]:
    def make() -> list[str]:
        from provenance.models import resolve
        from provenance.zoo.train import sample

        log(f"sampling {fam} {span}")
        ps = prompts(span)
        backend = resolve(TEACHERS[fam]).load()
        try:
            seqs = sample(backend.model, backend.tokenizer, ps, NEW_TOKENS, 1.0, seed=seed, batch=16)
            tok = backend.tokenizer
            # The continuation only: the prompt's ids (left-padded away by `sample`) are re-tokenized, not decoded.
            return [tok.decode(s[len(tok(p)["input_ids"]):], skip_special_tokens=True) for p, s in zip(ps, seqs)]
        finally:
            backend.close()

    return cached_json(out / f"answers-{fam}-{span[0]}-{span[1]}-{seed}.json", make)


def models_plan(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """(hidden, layers, epochs) of each shape; the students' and text models' seeds (`seed_base` apart per set)."""
    plan = []
    for t_i, fam in enumerate(TEACHERS):
        for s_i, (h, layers, ep) in enumerate(cfg["shapes"]):
            plan.append({"name": f"{fam}-s{s_i}", "lineage": fam, "hidden": h, "layers": layers, "epochs": ep,
                         "seed": cfg["seed_base"] + 1000 + 10 * t_i + s_i, "mix": s_i == cfg["mix"]})
    for s_i, (h, layers, _) in enumerate(cfg["shapes"]):
        plan.append({"name": f"text-{s_i}", "lineage": f"text-{s_i}", "hidden": h, "layers": layers,
                     "epochs": TEXT_EPOCHS, "seed": cfg["seed_base"] + 2000 + s_i, "mix": False})
    return plan


def tokenizer() -> Any:
    from provenance.zoo.build import _tokenizer

    return _tokenizer()


def chunks(tok: Any, slices: dict[str, str], ids: Sequence[str]) -> list[list[int]]:
    seqs = []
    for sid in ids:
        t = tok(slices[sid])["input_ids"]
        seqs += [t[j : j + SEQ] for j in range(0, len(t) - SEQ + 1, SEQ)]
    return seqs


def train(out: Path, cfg: dict[str, Any], m: dict[str, Any], tok: Any, slices: dict[str, str]) -> Path:
    from provenance.zoo.train import fresh_model, is_complete, save, tiny_config, train_sequence_level

    d = out / "models" / m["name"]
    if is_complete(d):
        return d
    if m["lineage"] in TEACHERS:
        ps = prompts(cfg["train"])
        ans = teacher_answers(out, m["lineage"], cfg["train"], cfg["train_seed"])
        seqs = [tok(p)["input_ids"] + tok(a)["input_ids"] + [tok.eos_token_id] for p, a in zip(ps, ans)]
        if m["mix"]:  # half the teacher's answers, mixed with as many chunks of corpus text (slices 48 onwards)
            seqs = seqs[: len(seqs) // 2]
            seqs += chunks(tok, slices, sorted(slices)[48:])[: len(seqs)]
    else:
        i = cfg["text_slices"] + int(m["name"].split("-")[1]) * SLICES_PER_TEXT
        seqs = chunks(tok, slices, sorted(slices)[i : i + SLICES_PER_TEXT])
    pad = tok.eos_token_id
    net = fresh_model(tiny_config(len(tok), m["hidden"], m["layers"], bos=tok.bos_token_id, eos=tok.eos_token_id,
                                  pad=pad), m["seed"])
    t0 = time.time()
    train_sequence_level(net, seqs, m["epochs"], 3e-3, seed=m["seed"], pad=pad, batch=8)
    save(net, tok, d, f"{m['name']}: {m['hidden']}x{m['layers']}, {m['epochs']} epochs on {len(seqs)} sequences "
                      f"({time.time() - t0:.0f} s)")
    log(f"trained {m['name']} on {len(seqs)} sequences in {time.time() - t0:.0f} s")
    return d


def load_model(path: Path | str) -> tuple[Any, Any, Any]:
    from provenance.models import resolve

    if isinstance(path, Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(str(path))
        model.eval()
        return model, AutoTokenizer.from_pretrained(str(path)), None
    backend = resolve(path).load()
    return backend.model, backend.tokenizer, backend


def student_answers(out: Path, cfg: dict[str, Any], name: str, path: Path) -> list[str]:
    def make() -> list[str]:
        from provenance.zoo.train import sample

        model, tok, _ = load_model(path)
        ps = prompts(cfg["test"])
        seqs = sample(model, tok, ps, NEW_TOKENS, 1.0, seed=cfg["model_seed"], batch=32)
        return [tok.decode(s[len(tok(p)["input_ids"]):], skip_special_tokens=True) for p, s in zip(ps, seqs)]

    return cached_json(out / f"answers-{name}-test.json", make)


def per_byte(model: Any, tok: Any, ps: Sequence[str], texts: Sequence[str], batch: int = 16) -> list[float]:
    """Per-byte log-likelihood of each text as the continuation of its prompt (BOS, prompt ids, text ids)."""
    import torch

    out: list[float] = []
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    rows = []
    for p, t in zip(ps, texts):
        pi = bos + tok(p, add_special_tokens=False)["input_ids"]
        ti = tok(t, add_special_tokens=False)["input_ids"]
        rows.append((pi, ti, max(1, len(t.encode("utf-8")))))
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        width = max(len(a) + len(b) for a, b, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (a, b, _) in enumerate(chunk):
            ids[r, : len(a) + len(b)] = torch.tensor(a + b)
            mask[r, : len(a) + len(b)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        for r, (a, b, nb) in enumerate(chunk):
            if not b:
                out.append(math.nan)
                continue
            out.append(float(lp[r, len(a) - 1 : len(a) + len(b) - 1].sum()) / nb)
    return out


def score_all(out: Path, cfg: dict[str, Any], scorer: str, path: Path | str, sources: dict[str, list[str]]
              ) -> dict[str, list[float]]:
    f = out / "scores" / f"{scorer}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    have = json.loads(f.read_text()) if f.is_file() else {}
    todo = [s for s in sources if s not in have]
    if todo:
        model, tok, backend = load_model(path)
        ps = prompts(cfg["test"])
        t0 = time.time()
        for s in todo:
            have[s] = per_byte(model, tok, ps, sources[s])
        if backend is not None:
            backend.close()
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(have))
        tmp.replace(f)
        log(f"{scorer} scored {len(todo)} sources in {time.time() - t0:.0f} s")
    return have


def inside(x: dict[str, dict[str, np.ndarray]], lineage: dict[str, str], suspect: str, ref: str,
           sources: list[str]) -> dict[str, Any] | None:
    """The suspect's preference for R's answers, as a scorer x source interaction, against each control unit's.

    x[scorer][source] per prompt; `sources`: the comparison sources besides R (lineage units or teachers), each a key
    of x's inner dicts naming a list of member sources via `members`. A control unit averages its members' rows.
    """
    from provenance.stats.nulls import interaction, prediction_test

    units: dict[str, list[str]] = {}
    for m, lin in lineage.items():
        if m != suspect and lin not in (lineage[suspect], lineage[ref]) and m not in TEACHERS:
            units.setdefault(f"u:{lin}", []).append(m)  # "u:" keeps a unit apart from the teacher of that name
    names = sorted(units)
    if len(names) < 3:
        return None

    def src_members(src: str) -> list[str]:
        return units[src] if src in units else [src]

    def row_members(row: str) -> list[str]:
        return [suspect] if row == "@suspect" else units[row]

    def lin_of(node: str) -> str | None:
        if node == "@suspect":
            return None  # an audit does not know the suspect's lineage
        return node[2:] if node in units else lineage.get(node)

    def cell(row: str, col: str) -> np.ndarray:
        return np.mean([x[s][c] for s in row_members(row) for c in src_members(col)], axis=0)

    def related(a: str, b: str) -> bool:
        la, lb = lin_of(a), lin_of(b)
        return la is not None and la == lb

    def one(row: str, others: list[str]) -> tuple[float, float]:
        cols = [ref, *(others if sources == ["@units"] else sources)]
        g = np.asarray(interaction(cell, row, ref, [row, *others], cols, related), dtype=float)
        g = g[np.isfinite(g)]
        if g.size < 2:
            return math.nan, math.nan
        return float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size))

    obs, obs_se = one("@suspect", names)
    null = [(u, *one(u, [o for o in names if o != u])) for u in names]
    pt = prediction_test(obs, [v for _, v, _ in null], se_observed=obs_se, se_null=[s for _, _, s in null],
                         units=[u for u, _, _ in null])
    if pt is None:
        return None
    return {"p": pt.p_value, "rank_p": pt.rank_p, "t": pt.t, "df": pt.df, "observed": obs, "null": dict(
        (u, v) for u, v, _ in null), "units": names}


def tetrad(x: dict[str, dict[str, np.ndarray]], lineage: dict[str, str], suspect: str, ref: str) -> dict[str, Any] | None:
    """The mean of every admissible tetrad (amendment 2), as provenance/stats/capable_likelihood.py computes it."""
    from provenance.stats.capable_likelihood import capable_likelihood

    keep = [m for m in lineage if m not in TEACHERS and m != suspect and lineage[m] != lineage[suspect]]
    sources = [t for t in TEACHERS if t != ref]
    scores = {m: {t: x[m][t] for t in TEACHERS} for m in [suspect, *keep]}
    lin = {**{m: lineage[m] for m in [*keep, *TEACHERS]}, suspect: None}
    r = capable_likelihood(scores, suspect, ref, sources, lin)
    if r.skipped:
        return None
    d = r.details or {}
    return {"p": r.p_value, "rank_p": d["rank_p_value"], "t": d["t"], "df": d["df"], "observed": d["observed"],
            "null": dict(zip(d["null_units"], d["null_values"])), "units": d["null_units"]}


def outside(x: dict[str, dict[str, np.ndarray]], lineage: dict[str, str], suspect: str, ref: str) -> dict[str, Any]:
    from provenance.stats.text_likelihood import text_likelihood

    keep = [m for m in lineage if m not in TEACHERS and lineage[m] not in (lineage[suspect], lineage[ref])]
    models = [ref, suspect, *keep]
    scores = {a: {b: x[a][b] for b in models if b in x[a]} for a in [ref, *keep]}
    lin = {m: lineage[m] for m in models}
    lin[suspect] = None  # unknown to an audit
    r = text_likelihood(scores, suspect, ref, lin)
    return {"p": r.p_value, "rank_p": (r.details or {}).get("rank_p_value"), "t": (r.details or {}).get("t"),
            "df": (r.details or {}).get("df"), "skipped": r.skipped,
            "fluency_outside": (r.details or {}).get("suspect_fluency_outside")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--set", choices=sorted(SETS), default="dev")
    args = ap.parse_args()
    cfg = SETS[args.set]
    suffix = "" if args.set == "dev" else f"-{args.set}"
    out = args.out or Path.home() / ".cache" / "provenance" / f"bench-capable-sources{suffix}"
    (out / "models").mkdir(parents=True, exist_ok=True)
    info = machine()
    t_start = time.time()
    for fam in TEACHERS:
        teacher_answers(out, fam, cfg["test"], cfg["test_seed"])
        teacher_answers(out, fam, cfg["train"], cfg["train_seed"])
    tok = tokenizer()
    from provenance.zoo.corpus import build_slices

    slices, _ = build_slices(50_000)
    plan = models_plan(cfg)
    paths = {m["name"]: train(out, cfg, m, tok, slices) for m in plan}
    lineage = {**{t: t for t in TEACHERS}, **{m["name"]: m["lineage"] for m in plan}}
    answers = {t: teacher_answers(out, t, cfg["test"], cfg["test_seed"]) for t in TEACHERS}
    answers.update({n: student_answers(out, cfg, n, p) for n, p in paths.items()})
    # Every trained model scores every answer set; the outside reference scores the trained models' answers.
    raw = {n: score_all(out, cfg, n, p, answers) for n, p in paths.items()}
    raw[OUTSIDE_REFERENCE] = score_all(out, cfg, OUTSIDE_REFERENCE, TEACHERS[OUTSIDE_REFERENCE],
                                       {n: answers[n] for n in [OUTSIDE_REFERENCE, *paths]})
    x = {a: {b: np.asarray(v, dtype=float) for b, v in row.items()} for a, row in raw.items()}
    rows = []
    for ref in TEACHERS:
        for s in paths:
            related = lineage[s] == ref
            r: dict[str, Any] = {"suspect": s, "reference": ref, "related": related}
            r["capable"] = inside(x, lineage, s, ref, [t for t in TEACHERS if t != ref])
            r["v2"] = inside(x, lineage, s, ref, ["@units"])
            r["tetrad"] = tetrad(x, lineage, s, ref)
            if ref == OUTSIDE_REFERENCE:
                r["outside"] = outside(x, lineage, s, ref)
            rows.append(r)
    summary: dict[str, Any] = {}
    for k in ("capable", "tetrad", "v2", "outside"):
        for rel in (True, False):
            ps = [r[k]["p"] for r in rows if r["related"] == rel and r.get(k) and r[k].get("p") is not None]
            summary[f"{k}/{'related' if rel else 'null'}"] = {
                "n": len(ps), "p<0.01": int(sum(p < 0.01 for p in ps)), "p<0.05": int(sum(p < 0.05 for p in ps))}
    for key, v in summary.items():
        print(f"{key:20s} n={v['n']:3d}  p<0.01: {v['p<0.01']:3d}  p<0.05: {v['p<0.05']:3d}")
    write_results(f"capable-sources{suffix}", {"machine": info, "seconds": time.time() - t_start, "set": args.set,
                                               "config": cfg, "teachers": TEACHERS, "plan": plan, "rows": rows,
                                      "summary": summary})


if __name__ == "__main__":
    main()
