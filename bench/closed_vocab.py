"""Scoring through the closed-vocabulary output layer vs the full one, on a zoo model whose output rows are mostly zero.

python bench/closed_vocab.py [MODEL_DIR]  (default: a logit student of the study zoo, `c28/logit`). One thread (as the
study's workers run), 200 scored texts of the `instructions` set, ABBA order; both sides must give the same numbers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from _common import machine, table, write_results

DEFAULT = Path.home() / ".cache/provenance/zoo/lineages-v1/families/c28/logit"


def main() -> None:
    # One thread, set before the backend's load resets the count from the environment (models/hf.py cpu_threads).
    os.environ["OMP_NUM_THREADS"] = "1"
    from provenance.models.base import ScoreRequest
    from provenance.models.hf import ClosedVocabulary, HFBackend
    from provenance.probeset import load

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    answer = (" The rain falls on the tin roof slowly and then more quickly, as it does in the spring of every year"
              " that we remember.")
    reqs = [ScoreRequest(p.text, answer, chat=True) for p in load("instructions").probes[:200]]
    backend = HFBackend(str(path), path)
    backend.score(reqs[:16])  # warm-up
    share = ClosedVocabulary.MIN_DEAD_SHARE
    times: dict[str, list[float]] = {"closed vocabulary": [], "full output layer": []}
    values: dict[str, list[float]] = {}
    for name in ["closed vocabulary", "full output layer", "full output layer", "closed vocabulary"]:  # ABBA
        ClosedVocabulary.MIN_DEAD_SHARE = share if name == "closed vocabulary" else 2.0  # 2.0: never worth it
        backend._closed = None
        t = time.perf_counter()
        values[name] = [s.logprob for s in backend.score(reqs)]
        times[name].append(time.perf_counter() - t)
    ClosedVocabulary.MIN_DEAD_SHARE = share
    head = backend.model.get_output_embeddings().weight
    live = int((head != 0).any(dim=1).sum())
    diff = max(abs(a - b) for a, b in zip(values["closed vocabulary"], values["full output layer"]))
    ratio = sum(times["full output layer"]) / sum(times["closed vocabulary"])
    rows = [[k, f"{1000 * sum(v) / len(v) / len(reqs):.2f}"] for k, v in times.items()]
    print(table(["output layer", "ms per scored text (mean of 2)"], rows))
    print(f"speed-up {ratio:.2f}x; {live} live rows of {head.shape[0]}; largest difference {diff:.2e} nats")
    write_results("closed_vocab", {"model": str(path), "times_s": times, "speedup": ratio, "max_abs_diff": diff,
                                   "live_rows": live, "rows": head.shape[0], "n": len(reqs), "machine": machine()})


if __name__ == "__main__":
    main()
