"""How many control lineages does a verdict need? The dose bench's students and independent models audited against
SmolLM2 with subsets of 4, 6, 8 and all 10 of its part (e) control lineages (issue #15: the builder's default count).

Protocol, fixed and committed before any audit below was run (2026-11-30, 21:40 UTC; first written as 22:35 by
mistake, corrected after the run started; the commit's time is the record):

Why. The matched-controls builder trained four lineages by default; with four, each family's null is a Student-t on
3 df, and bench/distill_dose.py's most thoroughly distilled student (S16384) reached combined p 0.017 with four
lineages and 0.00088 with ten (part (e)). The builder's default became eight (commit 5b71b7d) on those two points.
This bench measures the count-to-evidence curve on every subset size in between, so the default rests on more than
two panels.

Panel. The ten lineages of bench/distill_dose.py part (e) (`~/.cache/provenance/bench-dose/panel-e.json`): the v3
bench's four matched controls (students of Qwen and Gemma, two public-text lineages) and the dose bench's public-prose
lineages T1-T6. For k in (4, 6, 8): six k-subsets of the ten, drawn once by numpy's default_rng(20261130 + k) without
replacement (the same subsets for every suspect); k = 10: the whole panel.

Suspects (the dose bench's models, trained on a lent H200): students S16384, S10240, S2560 of SmolLM2 (truth:
distilled from the reference); public-prose models P-small, N1, N2 that never saw SmolLM2 (truth: independent).

Audits. Each suspect against `smollm2-135m-instruct` with the subset's panel, `--analysis 3 --budget 200 --seed 0
--likelihood-probes continuation-samples` (part (e)'s settings; the evidence cache holds the answers, so only the
analysis is new). Outcome per audit: verdict, combined p (the decision rule's), every family's p, placebos flagged.

Expectations stated in advance: the students' median combined p falls as k grows; no independent model is flagged at
any k. Development, not a measurement on unseen conditions: part (e)'s ten-lineage results were seen when this was
written, and six suspects on one reference are a curve with counts, not a rate.

Usage: python bench/lineage_count.py [--collect]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

import _common  # noqa: F401 - sets up the import path
from _common import machine, write_results

CACHE = Path.home() / ".cache" / "provenance"
DOSE = CACHE / "bench-dose"
OUT = CACHE / "bench-lineage-count"
SUSPECTS = {"S16384": "distilled", "S10240": "distilled", "S2560": "distilled",
            "P-small": "independent", "N1": "independent", "N2": "independent"}
SIZES = (4, 6, 8)
SUBSETS = 6
SEED = 20261130
PROBES = "continuation-samples"


def subsets(n_lineages: int) -> list[tuple[int, list[int]]]:
    """(k, the lineages' indices) for every audit's panel, the whole panel last."""
    out = []
    for k in SIZES:
        rng = np.random.default_rng(SEED + k)
        out += [(k, sorted(int(i) for i in rng.choice(n_lineages, size=k, replace=False))) for _ in range(SUBSETS)]
    return out + [(n_lineages, list(range(n_lineages)))]


def run() -> None:
    import v3_no_controls as v3

    v3.REFERENCE = "smollm2-135m-instruct"
    full = json.loads((DOSE / "panel-e.json").read_text())
    controls = full["control"]
    assert len({c["lineage"] for c in controls}) == len(controls) == 10
    rows: list[dict[str, Any]] = []
    info = machine()
    for name, truth in SUSPECTS.items():
        for j, (k, idx) in enumerate(subsets(len(controls))):
            panel = OUT / "panels" / f"k{k}-{j}.json"
            panel.parent.mkdir(parents=True, exist_ok=True)
            panel.write_text(json.dumps({"control": [controls[i] for i in idx]}, indent=1))
            row = v3.audit(OUT, f"{name}-k{k}-{j}", DOSE / "models" / name, 3, panel, PROBES)
            rows.append({**row, "truth": truth, "k": k, "subset": [controls[i]["lineage"] for i in idx]})
            write_results("lineage-count", {"machine": info, "rows": rows, "summary": summary(rows)})


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in SUSPECTS:
        for k in sorted({r["k"] for r in rows}):
            ps = [r["p_value"] for r in rows if r["suspect"].startswith(f"{name}-k{k}-")]
            if not ps:
                continue
            vs = [r["verdict"] for r in rows if r["suspect"].startswith(f"{name}-k{k}-")]
            out.append({"suspect": name, "truth": SUSPECTS[name], "k": k, "audits": len(ps),
                        "median_p": statistics.median(ps), "min_p": min(ps), "max_p": max(ps),
                        "p_below_0.01": sum(p < 0.01 for p in ps), "distilled": vs.count("distilled"),
                        "inconclusive": vs.count("inconclusive")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true", help="Only print the summary of the results file.")
    args = ap.parse_args()
    if not args.collect:
        run()
    from _common import RESULTS, table

    res = json.loads((RESULTS / "lineage-count.json").read_text())
    print(table(["suspect", "truth", "k", "audits", "median p", "min p", "max p", "p<0.01", "distilled",
                 "inconclusive"],
                [[s["suspect"], s["truth"], s["k"], s["audits"], s["median_p"], s["min_p"], s["max_p"],
                  s["p_below_0.01"], s["distilled"], s["inconclusive"]] for s in res["summary"]]))


if __name__ == "__main__":
    main()
