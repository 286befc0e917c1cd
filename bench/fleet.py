"""`provenance matrix` wall time with per-model jobs on local workers (process pool, Ray) vs one process, same evidence."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import fresh_cache, machine, table, write_results


def models_of(zoo: str) -> tuple[list[str], list[str]]:
    """Matrix models and controls: the micro zoo (tiny, seconds) or the small zoo (real packaged models)."""
    from provenance.zoo.build import default_zoo_dir

    if zoo == "micro":
        z = default_zoo_dir("micro")
        labels = json.loads((z / "labels.json").read_text())
        t = labels["teachers"]
        s = lambda name: str(z / "students" / name)  # noqa: E731
        models = [t["tiny:100"], t["tiny:101"], s("seq-tiny-100-0"), s("seq-tiny-100-1"), s("seq-tiny-101-0"),
                  str(z / "derived" / "tiny-100-noised")]
        return models, [s(f"seq-tiny-10{k}-{i}") for k in (2, 3) for i in (0, 1)]
    z = default_zoo_dir("small")
    s = lambda name: str(z / "students" / name)  # noqa: E731
    models = ["smollm2-135m-instruct", s("seq-smollm2-135m-instruct-0"), str(z / "derived" / "smollm2-135m-instruct-noised"),
              s("seq-qwen2.5-coder-0.5b-instruct-0")]
    return models, ["gemma-3-270m"]


def run_once(models: list[str], controls: list[str], budget: int, workers: int, executor: str) -> dict[str, Any]:
    from provenance.cache import EvidenceCache
    from provenance.fleet import FleetConfig
    from provenance.matrix import MatrixConfig, run_matrix

    root = fresh_cache("provenance-bench-fleet-")
    try:
        t0 = time.perf_counter()
        res = run_matrix(MatrixConfig(models=models, controls=controls, budget=budget, progress=False,
                                      cache=EvidenceCache(root / "evidence"),
                                      fleet=FleetConfig(workers=workers, executor=executor)))
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"workers": workers, "executor": executor if workers > 1 else "in-process", "seconds": wall,
            "fleet": res.get("fleet"),
            "pairs": {f"{Path(r['a']).name}|{Path(r['b']).name}": [r["verdict"], r["p_value"]] for r in res["pairs"]}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zoo", choices=["micro", "small"], default="micro")
    ap.add_argument("--budget", type=int, default=100, help="probes per model")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executors", default="local,ray", help="comma-separated: local, ray (skipped if not installed)")
    ap.add_argument("--reps", type=int, default=2, help="repetitions, in ABBA-style alternating order")
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)

    import importlib.util

    models, controls = models_of(args.zoo)
    modes = [(0, "local")] + [(args.workers, e) for e in args.executors.split(",")
                              if e != "ray" or importlib.util.find_spec("ray")]
    info = machine()
    runs: list[dict[str, Any]] = []
    for rep in range(args.reps):
        for workers, executor in (modes if rep % 2 == 0 else modes[::-1]):
            r = run_once(models, controls, args.budget, workers, executor)
            r["rep"] = rep
            runs.append(r)
            print(f"  rep {rep + 1}: {r['executor']:<10} workers={workers}: {r['seconds']:.1f}s", file=sys.stderr)
    base = [r for r in runs if r["workers"] <= 1]
    identical = all(r["pairs"] == base[0]["pairs"] for r in runs)
    base_med = statistics.median(r["seconds"] for r in base)
    rows, summary = [], []
    for workers, executor in modes:
        rs = [r for r in runs if r["workers"] == workers and (workers <= 1 or r["executor"] == executor)]
        med = statistics.median(r["seconds"] for r in rs)
        label = rs[0]["executor"]
        summary.append({"mode": label, "workers": workers, "median_seconds": med, "speedup": base_med / med,
                        "phase_seconds": [r["fleet"]["phase_seconds"] for r in rs if r["fleet"]]})
        rows.append([label, workers, f"{med:.1f}", f"{min(r['seconds'] for r in rs):.1f}-{max(r['seconds'] for r in rs):.1f}",
                     f"{base_med / med:.2f}x"])
    print(table(["mode", "workers", "wall s (median)", "range", "speed-up vs one process"], rows))
    print(f"same verdicts and p-values in every mode: {identical}")
    path = write_results(args.name or f"fleet-{args.zoo}", {
        "benchmark": "fleet", "command": "python bench/fleet.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "zoo": args.zoo, "models": models, "controls": controls, "budget": args.budget,
        "summary": summary, "identical_results": identical, "runs": runs,
        "note": "provenance matrix on an empty evidence cache per run; workers split the machine's cores"})
    print(f"wrote {path}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
