"""Sampled answers one at a time (the old engine) vs batched with per-row seeded Gumbel-max (now): same seeds.

python bench/sampling.py [MODEL_DIR]  (default: the packaged SmolLM2-135M-Instruct). Ratio of wall times in one run,
ABBA order; both sides answer the same 32 instructions of the `instructions` probe set at temperature 0.7, 40 tokens.
"""

from __future__ import annotations

import sys
import time

from _common import machine, table, write_results


def main() -> None:
    from provenance.models import Request, resolve
    from provenance.probeset import load

    spec = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m-instruct"
    ps = load("instructions")
    reqs = [Request(p.text, max_new_tokens=40, temperature=0.7, seed=1000 + i, chat=ps.chat)
            for i, p in enumerate(ps.probes[:32])]
    backend = resolve(spec).load()
    times: dict[str, list[float]] = {"one at a time": [], "batched (16)": []}
    texts: dict[str, list[str]] = {}
    for name in ["one at a time", "batched (16)", "batched (16)", "one at a time"]:  # ABBA
        backend.batch_size = 1 if name == "one at a time" else 16
        t = time.perf_counter()
        out = backend.generate(reqs)
        times[name].append(time.perf_counter() - t)
        texts[name] = [o.text for o in out]
    same = sum(a == b for a, b in zip(texts["one at a time"], texts["batched (16)"]))
    ratio = sum(times["one at a time"]) / sum(times["batched (16)"])
    rows = [[k, f"{sum(v) / len(v):.1f}"] for k, v in times.items()]
    print(table(["sampling", "seconds for 32 answers (mean of 2)"], rows))
    print(f"speed-up {ratio:.2f}x; identical answers in both modes: {same} of {len(reqs)} (per-row seeds: the batch "
          f"only changes float rounding through padding)")
    write_results("sampling", {"spec": spec, "times_s": times, "speedup": ratio, "identical_answers": same,
                               "n": len(reqs), "machine": machine()})


if __name__ == "__main__":
    main()
