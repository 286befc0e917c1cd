"""Audit wall time against the number of references and controls: linear, each model loaded and probed once per pass."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import fresh_cache, machine, table, write_results


def instrument() -> dict[str, Counter[str]]:
    """Count, per model, how often it is loaded and how many prompts it generates for / texts it scores."""
    from provenance.models import ResolvedModel

    counts: dict[str, Counter[str]] = {"loads": Counter(), "generated": Counter(), "scored": Counter()}
    original = ResolvedModel.load

    def load(self: ResolvedModel) -> Any:
        counts["loads"][self.fingerprint] += 1
        backend = original(self)
        gen, score = backend.generate, backend.score

        def counted_generate(reqs: Any) -> Any:
            counts["generated"][self.fingerprint] += len(reqs)
            return gen(reqs)

        def counted_score(reqs: Any) -> Any:
            counts["scored"][self.fingerprint] += len(reqs)
            return score(reqs)

        backend.generate, backend.score = counted_generate, counted_score  # type: ignore[method-assign]
        return backend

    ResolvedModel.load = load  # type: ignore[method-assign]
    return counts


def run_one(suspect: str, refs: list[str], ctrls: list[str], budget: int, counts: dict[str, Counter[str]]) -> dict[str, Any]:
    from provenance.audit import AuditConfig, run_audit
    from provenance.cache import EvidenceCache

    for c in counts.values():
        c.clear()
    root = fresh_cache("provenance-bench-scaling-")
    try:
        t0 = time.perf_counter()
        run_audit(AuditConfig(suspect=suspect, references=refs, controls=ctrls, budget=budget, progress=False,
                              cache=EvidenceCache(root / "evidence")))
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = 1 + len(refs) + len(ctrls)
    return {"models": n, "references": len(refs), "controls": len(ctrls), "seconds": wall,
            "loads_per_model": sorted(set(counts["loads"].values())), "models_loaded": len(counts["loads"]),
            "prompts_generated_per_model": sorted(set(counts["generated"].values())),
            "texts_scored_per_model": sorted(set(counts["scored"].values()))}


def linear_fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    import numpy as np

    slope, intercept = np.polyfit(xs, ys, 1)
    pred = slope * np.asarray(xs) + intercept
    ss_res = float(np.sum((np.asarray(ys) - pred) ** 2))
    ss_tot = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2))
    quad = np.polyfit(xs, ys, 2)[0] if len(set(xs)) > 2 else 0.0
    return {"seconds_per_model": float(slope), "intercept_seconds": float(intercept),
            "r_squared": 1 - ss_res / ss_tot if ss_tot else 1.0, "quadratic_coefficient": float(quad)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zoo", default=None, help="a built micro zoo (default: the cached one, built if missing)")
    ap.add_argument("--budget", type=int, default=40, help="probes per model")
    ap.add_argument("--max-controls", type=int, default=6)
    ap.add_argument("--max-references", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2, help="repetitions (alternately ascending and descending order)")
    ap.add_argument("--name", default="scaling")
    args = ap.parse_args(argv)

    from provenance.zoo.build import build_zoo, default_zoo_dir

    zoo = Path(args.zoo) if args.zoo else default_zoo_dir("micro")
    if not (zoo / "labels.json").is_file():
        print(f"building the micro zoo in {zoo} (once, a few minutes) ...", file=sys.stderr)
        build_zoo("micro", zoo, progress=False)
    labels = json.loads((zoo / "labels.json").read_text())
    suspect = next(p["suspect"] for p in labels["pairs"] if p["relation"] == "distilled")
    ref = labels["reference"]
    teachers = sorted(str(p) for p in (zoo / "teachers").iterdir() if str(p) != ref)
    students = labels["controls"]  # students of the other teachers
    # Series 1: one reference, 1..N controls. Series 2: 1..R references (the other teachers), two controls.
    configs: list[tuple[list[str], list[str]]] = [([ref], students[:c]) for c in range(1, min(args.max_controls, len(students)) + 1)]
    # Extra references are the other teachers; their own students are left out of the controls, so every control
    # stays independent of every reference (the same two controls across the series).
    max_refs = min(args.max_references, len(teachers) + 1)
    extra = teachers[: max_refs - 1]
    fixed = [s for s in students if not any(f"{Path(t).name}-" in Path(s).name for t in extra)][:2] or students[:2]
    configs += [([ref, *extra[: r - 1]], fixed) for r in range(2, max_refs + 1)]
    info = machine()
    counts = instrument()
    runs: list[dict[str, Any]] = []
    for rep in range(args.reps):
        order = configs if rep % 2 == 0 else configs[::-1]  # alternate direction so load drift does not look like slope
        for refs, ctrls in order:
            r = run_one(suspect, refs, ctrls, args.budget, counts)
            r["rep"] = rep
            runs.append(r)
            print(f"  rep {rep + 1}: {r['references']} ref + {r['controls']} controls: {r['seconds']:.1f}s, "
                  f"loads/model {r['loads_per_model']}", file=sys.stderr)
    rows, points = [], []
    for refs, ctrls in configs:
        rs = [r for r in runs if r["references"] == len(refs) and r["controls"] == len(ctrls)]
        med = statistics.median(r["seconds"] for r in rs)
        points.append((rs[0]["models"], med))
        rows.append([rs[0]["models"], len(refs), len(ctrls), med, f"{min(r['seconds'] for r in rs):.1f}-{max(r['seconds'] for r in rs):.1f}",
                     rs[0]["loads_per_model"], rs[0]["prompts_generated_per_model"], rs[0]["texts_scored_per_model"]])
    fit = linear_fit([p[0] for p in points], [p[1] for p in points])
    print(table(["models", "refs", "controls", "wall s (median)", "range", "loads/model", "prompts/model", "scored/model"], rows))
    print(table(["fit", "value"], [[k, v] for k, v in fit.items()]))
    path = write_results(args.name, {
        "benchmark": "scaling", "command": "python bench/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "zoo": str(zoo), "budget": args.budget, "suspect": suspect, "reference": ref,
        "fit": fit, "runs": runs,
        "note": "each audit on an empty evidence cache; loads/model 2 = one probing pass and one scoring pass "
                "(likelihood family), per the architecture"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
