"""Collection-engine throughput (HFBackend.score / generate) as a fraction of bare transformers on the same batches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import _common  # noqa: F401 - sets up the import path
from _common import interleaved, machine, median, table, write_results

TARGET = 0.85  # engine throughput / bare throughput


def load_backend(spec: str, device: str, batch_size: int) -> Any:
    """The engine's own backend, on the requested device (the bare side reuses its model object and weights)."""
    from provenance.models import resolve
    from provenance.models.hf import HFBackend, converted_gguf_dir

    m = resolve(spec)
    if m.local_path is None and m.gguf is not None:
        m.local_path = converted_gguf_dir(m.gguf, m.fingerprint)
    assert m.local_path is not None
    return HFBackend(m.label, m.local_path, batch_size=batch_size, device=device)


def workloads(n_score: int, n_gen: int, new_tokens: int) -> dict[str, Any]:
    """Deterministic inputs shaped like an audit's: chat prompts with ~40-token answers to score, short completions."""
    from provenance.probeset import load

    instr = [p.text for p in load("instructions").probes]
    cont = [p.text for p in load("continuation").probes]
    nxt = [p.text for p in load("next-token").probes]
    # An audit scores sampled ~40-token answers; four other instructions joined are about that long.
    answers = [" ".join(instr[(i * 4 + j + 1) % len(instr)] for j in range(4)) for i in range(n_score)]
    return {"score": list(zip(instr[:n_score], answers)), "generate": cont[:n_gen], "next_token": nxt[:n_gen],
            "new_tokens": new_tokens}


def bare_score(model: Any, tok: Any, pairs: list[tuple[str, str]], batch: int, device: str) -> Callable[[], list[float]]:
    """Tokens prepared outside the timed part; timed: full-logit forward, log-softmax, gather (what a user would write)."""
    import torch

    enc = []
    for prompt, answer in pairs:
        ctx = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        enc.append((tok(ctx, add_special_tokens=False)["input_ids"], tok(answer, add_special_tokens=False)["input_ids"]))
    order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]) + len(enc[i][1]))
    batches = []
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        width = max(len(enc[i][0]) + len(enc[i][1]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            c, k = enc[i]
            ids[r, : len(c) + len(k)] = torch.tensor(c + k)
            mask[r, : len(c) + len(k)] = 1
        batches.append((idx, ids.to(device), mask.to(device)))

    def run() -> list[float]:
        out = [0.0] * len(enc)
        with torch.inference_mode():
            for idx, ids, mask in batches:
                logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
                for r, i in enumerate(idx):
                    c, k = enc[i]
                    pos = torch.arange(len(c) - 1, len(c) + len(k) - 1, device=logp.device)
                    out[i] = float(logp[r, pos].gather(-1, torch.tensor(k, device=logp.device).unsqueeze(-1)).sum())
        return out

    return run


def bare_generate(model: Any, tok: Any, texts: list[str], batch: int, new_tokens: int, device: str) -> Callable[[], Any]:
    """Bare `model.generate` (greedy, KV cache) over the same length-sorted, left-padded batches as the engine."""
    import torch

    tok.padding_side = "left"
    ordered = sorted(texts, key=len)
    encs = [tok(ordered[s : s + batch], return_tensors="pt", padding=True).to(device) for s in range(0, len(ordered), batch)]

    def run() -> list[list[int]]:
        seqs = []
        with torch.inference_mode():
            for enc in encs:
                out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                                     temperature=None, top_p=None, top_k=None)
                seqs += out[:, enc["input_ids"].shape[1] :].tolist()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return seqs

    return run


def bare_next_token(model: Any, tok: Any, texts: list[str], batch: int, device: str) -> Callable[[], Any]:
    """Bare forward pass, full logits, top-20 at the last position."""
    import torch

    tok.padding_side = "left"
    ordered = sorted(texts, key=len)
    encs = [tok(ordered[s : s + batch], return_tensors="pt", padding=True).to(device) for s in range(0, len(ordered), batch)]

    def run() -> list[Any]:
        tops = []
        with torch.inference_mode():
            for enc in encs:
                logits = model(**enc).logits[:, -1, :]
                tops.append(torch.log_softmax(logits.float(), -1).topk(20).indices.cpu())
        return tops

    return run


class ModelClock:
    """Wall time spent inside the model's forward calls (modules hooked; nested calls counted once).

    Whatever an engine call spends outside them (tokenizing, hooks, top-k, decoding, Python) is its own overhead:
    a figure that does not depend on how busy the shared machine is, unlike the wall-time ratio.
    """

    def __init__(self, modules: list[Any]) -> None:
        import time

        self._now = time.perf_counter
        self.depth = 0
        self.started = 0.0
        self.inside = 0.0
        for m in modules:
            m.register_forward_pre_hook(self._enter)
            m.register_forward_hook(self._leave)

    def _enter(self, *_: Any) -> None:
        if self.depth == 0:
            self.started = self._now()
        self.depth += 1

    def _leave(self, *_: Any) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.inside += self._now() - self.started

    def timed(self, fn: Callable[[], Any], store: list[float]) -> Callable[[], Any]:
        """`fn`, recording the seconds it spent inside the model into `store`."""
        def run() -> Any:
            before = self.inside
            out = fn()
            store.append(self.inside - before)
            return out

        return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="model spec (packaged name, directory, .gguf)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch-size", type=int, default=16, help="the engine's --batch-size; the bare side uses it too")
    ap.add_argument("--n-score", type=int, default=48, help="texts to score")
    ap.add_argument("--n-generate", type=int, default=48, help="prompts to complete (and next-token prompts)")
    ap.add_argument("--new-tokens", type=int, default=12, help="greedy tokens per completion (the continuation set: 12)")
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions per workload")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: the engine's choice, provenance.models.hf.cpu_threads)")
    ap.add_argument("--name", default=None, help="results file name (default: throughput-<device>)")
    args = ap.parse_args(argv)

    import torch

    from provenance.models.base import Request, ScoreRequest

    info = machine()
    backend = load_backend(args.model, args.device, args.batch_size)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = backend.model, backend.tokenizer
    info.update(device=args.device, torch_threads=torch.get_num_threads(), model=args.model,
                dtype=str(next(model.parameters()).dtype))
    w = workloads(args.n_score, args.n_generate, args.new_tokens)
    score_reqs = [ScoreRequest(p, a, chat=True) for p, a in w["score"]]
    gen_reqs = [Request(t, max_new_tokens=args.new_tokens, top_k=20) for t in w["generate"]]
    nt_reqs = [Request(t, max_new_tokens=0, top_k=20) for t in w["next_token"]]

    b_score = bare_score(model, tok, w["score"], args.batch_size, args.device)
    b_gen = bare_generate(model, tok, w["generate"], args.batch_size, args.new_tokens, args.device)
    b_nt = bare_next_token(model, tok, w["next_token"], args.batch_size, args.device)

    # Untimed first pass: warms kernels and allocator, and checks both sides compute the same thing.
    e_scores = backend.score(score_reqs)
    b_scores = b_score()
    e_gen = backend.generate(gen_reqs)
    b_gen_ids = b_gen()
    backend.generate(nt_reqs)  # warm-up of the next-token path
    b_nt()
    score_diff = max(abs(e.logprob - b) for e, b in zip(e_scores, b_scores))
    gen_texts_engine = sorted(c.text for c in e_gen)
    gen_texts_bare = sorted(tok.decode(ids, skip_special_tokens=True) for ids in b_gen_ids)
    checks = {"max_abs_score_difference": score_diff, "greedy_texts_identical": gen_texts_engine == gen_texts_bare}
    print(f"checks: {checks}", file=sys.stderr)

    scored_tokens = sum(s.n_tokens for s in e_scores)
    generated_tokens = sum(c.n_tokens for c in e_gen)
    counts = {"score": (scored_tokens, "continuation tokens scored"),
              "generate": (generated_tokens, f"tokens generated (greedy, {args.new_tokens} max)"),
              "next_token": (len(nt_reqs), "next-token distributions (top-20)")}
    # Hooks registered after the engine's own (first) pass; the engine's generate hook runs after the clock's, so
    # its cost counts as engine overhead.
    # The output layer too: the engine's score applies it outside the model's forward, at continuation positions.
    clock = ModelClock([model, model.model, model.get_output_embeddings()])
    inside: dict[str, dict[str, list[float]]] = {k: {"bare": [], "engine": []} for k in counts}
    sides = {"score": (b_score, lambda: backend.score(score_reqs)),
             "generate": (b_gen, lambda: backend.generate(gen_reqs)),
             "next_token": (b_nt, lambda: backend.generate(nt_reqs))}
    times = interleaved({k: (clock.timed(b, inside[k]["bare"]), clock.timed(e, inside[k]["engine"]))
                         for k, (b, e) in sides.items()}, args.reps, log=lambda s: print(s, file=sys.stderr))

    rows, result_rows = [], []
    for name, t in times.items():
        n, unit = counts[name]
        ratios = [b / e for b, e in zip(t["bare"], t["engine"])]  # per repetition: engine throughput / bare throughput
        r = {"workload": name, "unit": unit, "units": n, "bare_per_s": n / median(t["bare"]),
             "engine_per_s": n / median(t["engine"]), "ratio_median": median(ratios), "ratio_min": min(ratios),
             "ratio_max": max(ratios), "bare_seconds": t["bare"], "engine_seconds": t["engine"],
             "bare_seconds_in_model": inside[name]["bare"], "engine_seconds_in_model": inside[name]["engine"],
             # The engine's time outside the model's forward calls, as a share of its wall time (load-independent).
             "engine_overhead_share": median([1 - i / w for i, w in zip(inside[name]["engine"], t["engine"])]),
             "bare_overhead_share": median([1 - i / w for i, w in zip(inside[name]["bare"], t["bare"])]),
             "meets_target": median(ratios) >= TARGET}
        result_rows.append(r)
        rows.append([name, unit, n, r["bare_per_s"], r["engine_per_s"], r["ratio_median"],
                     f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}", f"{r['bare_overhead_share']:.1%}",
                     f"{r['engine_overhead_share']:.1%}", "yes" if r["meets_target"] else "NO"])
    backend.close()
    print(table(["workload", "unit", "n", "bare /s", "engine /s", "engine/bare", "range", "bare: time outside model",
                 "engine: time outside model", f">= {TARGET}"], rows))
    path = write_results(args.name or f"throughput-{args.device}", {
        "benchmark": "throughput", "command": "python bench/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "target": TARGET, "batch_size": args.batch_size, "reps": args.reps, "checks": checks,
        "workloads": result_rows})
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
