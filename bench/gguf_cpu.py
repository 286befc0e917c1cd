"""A packaged GGUF on CPU: llama.cpp on the quantized weights vs the collection engine on the converted float32 model."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import _common  # noqa: F401 - sets up the import path
from _common import interleaved, machine, median, table, write_results
from throughput import load_backend, workloads


def llama_score(llm: Any, tok: Any, pairs: list[tuple[str, str]]) -> Callable[[], list[float]]:
    """The same token ids as the engine (chat-templated prompt, then the answer), scored by llama.cpp one by one."""
    import numpy as np

    enc = []
    for prompt, answer in pairs:
        ctx = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        enc.append((tok(ctx, add_special_tokens=False)["input_ids"], tok(answer, add_special_tokens=False)["input_ids"]))

    def run() -> list[float]:
        out = []
        for c, k in enc:
            llm.reset()
            llm.eval(c + k)
            logits = np.asarray(llm.scores[len(c) - 1 : len(c) + len(k) - 1], dtype=np.float64)
            m = logits.max(-1, keepdims=True)
            logp = logits - (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))
            out.append(float(logp[np.arange(len(k)), k].sum()))
        return out

    return run


def llama_generate(llm: Any, tok: Any, texts: list[str], new_tokens: int) -> Callable[[], list[str]]:
    """Greedy completions of raw text (as the continuation probes are sent), one prompt at a time, from the same
    token ids as the engine."""
    encs = [tok(t, add_special_tokens=True)["input_ids"] for t in texts]

    def run() -> list[str]:
        out = []
        for ids in encs:
            llm.reset()
            new: list[int] = []
            for t in llm.generate(ids, temp=0.0, top_k=1, reset=True):
                if t == llm.token_eos():
                    break
                new.append(t)
                if len(new) == new_tokens:
                    break
            out.append(tok.decode(new, skip_special_tokens=True))
        return out

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a packaged model (its GGUF feeds llama.cpp)")
    ap.add_argument("--n-score", type=int, default=48)
    ap.add_argument("--n-generate", type=int, default=48)
    ap.add_argument("--new-tokens", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--name", default="gguf-cpu")
    args = ap.parse_args(argv)
    try:
        import llama_cpp
    except ImportError:
        print("needs llama-cpp-python: pip install llama-cpp-python (builds llama.cpp; a few minutes)", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from provenance.models import resolve
    from provenance.models.base import Request, ScoreRequest

    info = machine()
    m = resolve(args.model)
    if m.gguf is None:
        print(f"{args.model} is not a GGUF model", file=sys.stderr)
        return 2
    backend = load_backend(args.model, "cpu", args.batch_size)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(m.gguf), n_ctx=1024, n_batch=512, n_threads=threads, logits_all=True,
                          verbose=False, seed=0)
    llama_load = time.perf_counter() - t0
    info.update(torch_threads=threads, llama_threads=threads, model=args.model, gguf=os.path.basename(str(m.gguf)),
                llama_cpp_python=llama_cpp.__version__)
    w = workloads(args.n_score, args.n_generate, args.new_tokens)
    score_reqs = [ScoreRequest(p, a, chat=True) for p, a in w["score"]]
    gen_reqs = [Request(t, max_new_tokens=args.new_tokens, top_k=20) for t in w["generate"]]
    l_score = llama_score(llm, backend.tokenizer, w["score"])
    l_gen = llama_generate(llm, backend.tokenizer, w["generate"], args.new_tokens)

    # Untimed first pass: warm-up, and how far the two computations agree (quantized vs float32 arithmetic).
    e_scores = [s.logprob for s in backend.score(score_reqs)]
    l_scores = l_score()
    e_texts = [c.text for c in backend.generate(gen_reqs)]
    l_texts = l_gen()
    diffs = np.abs(np.asarray(e_scores) - np.asarray(l_scores))
    agreement = {"score_pearson_r": float(np.corrcoef(e_scores, l_scores)[0, 1]),
                 "score_median_abs_difference_nats": float(np.median(diffs)),
                 "score_max_abs_difference_nats": float(diffs.max()),
                 "greedy_identical_fraction": float(np.mean([a == b for a, b in zip(e_texts, l_texts)]))}
    print(f"agreement: {agreement}", file=sys.stderr)
    scored = sum(len(backend.tokenizer(a, add_special_tokens=False)["input_ids"]) for _, a in w["score"])
    generated = sum(c.n_tokens for c in backend.generate(gen_reqs))
    # interleaved(bare, engine): here "bare" is llama.cpp, so ratio = engine time / llama time per repetition.
    times = interleaved({"score": (l_score, lambda: backend.score(score_reqs)),
                         "generate": (l_gen, lambda: backend.generate(gen_reqs))}, args.reps,
                        log=lambda s: print(s, file=sys.stderr))
    rows, out = [], []
    for name, units in (("score", scored), ("generate", generated)):
        lt, et = times[name]["bare"], times[name]["engine"]
        speedups = [e / ll for e, ll in zip(et, lt)]
        out.append({"workload": name, "units": units, "llama_cpp_per_s": units / median(lt),
                    "engine_per_s": units / median(et), "llama_cpp_speedup_median": median(speedups),
                    "llama_cpp_speedup_range": [min(speedups), max(speedups)], "llama_seconds": lt, "engine_seconds": et})
        rows.append([name, units, units / median(et), units / median(lt),
                     f"{median(speedups):.2f} ({min(speedups):.2f}-{max(speedups):.2f})"])
    print(table(["workload", "tokens", "engine tok/s (float32)", "llama.cpp tok/s (GGUF)", "llama.cpp / engine"], rows))
    print(table(["agreement", "value"], [[k, v] for k, v in agreement.items()]))
    path = write_results(args.name, {
        "benchmark": "gguf_cpu", "command": "python bench/gguf_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "reps": args.reps, "llama_load_seconds": llama_load, "agreement": agreement, "workloads": out,
        "note": "engine: HFBackend on the float32 conversion of the GGUF, batched; llama.cpp: the GGUF's quantized "
                "weights, one sequence at a time through llama-cpp-python, the same token ids for scoring"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
