"""Query efficiency: the smallest budget at which an audit of a zoo's related pairs reaches p < 0.01, library vs mined probes."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import RESULTS, machine, table, write_results

ALPHA = 0.01
TARGET_MEDIAN = 200  # probes per model; the Model Provenance Testing paper uses 5,000 prompts
PAPER_PROMPTS = 5000


def zoo_dir(arg: str | None, size: str) -> Path:
    from provenance.zoo.build import build_zoo, default_zoo_dir

    path = Path(arg) if arg else default_zoo_dir(size)
    if not (path / "labels.json").is_file():
        if arg:
            raise SystemExit(f"{path}: no labels.json (build one with `provenance zoo build --size micro`)")
        print(f"building the {size} zoo in {path} (once) ...", file=sys.stderr)
        build_zoo(size, path, progress=False)
    return path


def teacher_spec(teacher: str, zoo: Path) -> str:
    """A zoo label's teacher as a model spec: tiny teachers live in the zoo, real ones are packaged models."""
    return str(zoo / "teachers" / teacher.replace(":", "-")) if teacher.startswith("tiny:") else teacher


def mined_set(labels: dict[str, Any], zoo: Path, n: int, pool: int, remine: bool) -> tuple[Path, list[str]]:
    """A continuation set mined for the zoo's reference against the teachers of its independent models.

    The audit's controls are students of those teachers, not the teachers: an audit refuses a probe set mined
    against one of its own controls (that would bias the null), and mining against their teachers is what a user
    can do with public models. The file is kept in bench/results so reruns reuse the same probes and cached answers.
    """
    from provenance.mine import mine

    teachers = sorted({p["teacher"] for p in labels["pairs"] if p["relation"] == "independent"})
    controls = [teacher_spec(t, zoo) for t in teachers]
    out = RESULTS / f"continuation-mined-{labels['size']['name']}.json"
    if remine or not out.is_file():
        print(f"mining {n} of {pool} continuation prompts for {labels['reference']} against {controls} ...", file=sys.stderr)
        mine(labels["reference"], controls, n, out, "continuation", pool, progress=False)
    return out, controls


def audit_p(pair: dict[str, Any], labels: dict[str, Any], budget: int, continuation: str) -> dict[str, Any]:
    from provenance.audit import AuditConfig, run_audit

    ctrl = [c for c in labels["controls"] if c != pair["suspect"]]
    t0 = time.perf_counter()
    res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=ctrl, budget=budget,
                                progress=False, continuation_set=continuation))
    ref = res["references"][0]
    return {"budget": budget, "p_value": ref["p_value"], "verdict": ref["verdict"],
            "prompts_per_model": sum(p["n_used"] for p in res["probe_sets"]),
            "tests": {t["name"]: t["p_value"] for t in ref["tests"]}, "seconds": round(time.perf_counter() - t0, 1)}


def first_budget(runs: list[dict[str, Any]], flagged: bool = False, stays: bool = False) -> int | None:
    """Smallest budget with p < ALPHA (or a flagged verdict); with `stays`, only if every larger budget has it too."""
    ok = [(r["p_value"] is not None and r["p_value"] < ALPHA) if not flagged else r["verdict"] in ("distilled", "derived")
          for r in runs]
    for i in range(len(runs)):
        if (all(ok[i:]) if stays else ok[i]):
            return int(runs[i]["budget"])
    return None


def sequential_run(pair: dict[str, Any], labels: dict[str, Any], budget: int, continuation: str) -> dict[str, Any]:
    """The audit's own early stopping (--sequential) at the largest budget, on the answers already cached."""
    from provenance.audit import AuditConfig, run_audit

    ctrl = [c for c in labels["controls"] if c != pair["suspect"]]
    res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=ctrl, budget=budget,
                                progress=False, continuation_set=continuation, sequential=True))
    ref = res["references"][0]
    return {"budget": budget, "stopped_at_budget": res["sequential"]["stopped_at_budget"], "p_value": ref["p_value"],
            "verdict": ref["verdict"]}


def summarise(per_pair: list[dict[str, Any]], key: str) -> dict[str, Any]:
    related = [p for p in per_pair if p["relation"] != "independent"]
    largest = max(r["budget"] for p in related for r in p[key]["runs"])

    def med(field: str) -> float | None:
        # A pair that never gets there counts as beyond the largest budget tried (so the median stays honest).
        vals = [p[key][field] if p[key][field] is not None else 2 * largest for p in related]
        return statistics.median(vals) if vals else None

    independents = [p for p in per_pair if p["relation"] == "independent"]
    return {"related_pairs": len(related),
            "reached": sum(p[key]["first_budget_p"] is not None for p in related),
            "median_first_budget": med("first_budget_p"),
            "stayed": sum(p[key]["first_budget_p_stays"] is not None for p in related),
            "median_first_budget_staying": med("first_budget_p_stays"),
            "beyond_largest_budget_means": f"> {largest} (counted as {2 * largest} in the medians)",
            "independent_pairs": len(independents),
            "independent_below_alpha_at_any_budget": sum(any(r["p_value"] is not None and r["p_value"] < ALPHA
                                                             for r in p[key]["runs"]) for p in independents),
            "independent_flagged_at_any_budget": sum(any(r["verdict"] in ("distilled", "derived") for r in p[key]["runs"])
                                                     for p in independents)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zoo", default=None, help="a built zoo directory (default: the cached small zoo)")
    ap.add_argument("--size", default="small", choices=["micro", "small"], help="which cached zoo by default")
    ap.add_argument("--budgets", default="20,40,80,160,320", help="comma-separated probes-per-model budgets")
    ap.add_argument("--no-mined", action="store_true", help="skip the mined-probe comparison")
    ap.add_argument("--mine-n", type=int, default=100, help="prompts kept in the mined set")
    ap.add_argument("--mine-pool", type=int, default=400, help="candidate prompts scored when mining")
    ap.add_argument("--remine", action="store_true", help="mine again even if bench/results has a mined set")
    ap.add_argument("--no-independent", action="store_true", help="audit only the related pairs")
    ap.add_argument("--name", default=None, help="results file name (default: query-efficiency-<zoo size>)")
    args = ap.parse_args(argv)

    zoo = zoo_dir(args.zoo, args.size)
    labels = json.loads((zoo / "labels.json").read_text())
    budgets = sorted(int(b) for b in args.budgets.split(","))
    info = machine()
    pairs = [p for p in labels["pairs"] if not (args.no_independent and p["relation"] == "independent")]
    sets: dict[str, str] = {"library": "continuation"}
    mining: dict[str, Any] = {}
    if not args.no_mined:
        t0 = time.perf_counter()
        path, mctrl = mined_set(labels, zoo, args.mine_n, args.mine_pool, args.remine)
        sets["mined"] = str(path)
        mining = {"file": str(path.relative_to(_common.ROOT)), "controls": mctrl, "n": args.mine_n,
                  "pool": args.mine_pool, "seconds": round(time.perf_counter() - t0, 1)}
    per_pair = []
    for pair in pairs:
        row: dict[str, Any] = {"suspect": Path(pair["suspect"]).name, "kind": pair["kind"], "relation": pair["relation"]}
        for key, cont in sets.items():
            runs = []
            for b in budgets:  # increasing: every larger audit reuses the smaller one's cached answers
                runs.append(audit_p(pair, labels, b, cont))
                r = runs[-1]
                print(f"  {row['suspect']} [{key}] budget {b}: p={r['p_value']} {r['verdict']} ({r['seconds']}s)",
                      file=sys.stderr)
            row[key] = {"runs": runs, "first_budget_p": first_budget(runs), "first_budget_flagged": first_budget(runs, True),
                        "first_budget_p_stays": first_budget(runs, stays=True),
                        "sequential": sequential_run(pair, labels, budgets[-1], cont)}
        per_pair.append(row)

    summary = {key: summarise(per_pair, key) for key in sets}
    never = f">{budgets[-1]}"
    headers = ["suspect", "relation", *[f"{k}: first p<{ALPHA} (stays)" for k in sets],
               *[f"{k}: first flagged" for k in sets], *[f"{k}: p at {budgets[-1]}" for k in sets],
               f"--sequential {budgets[-1]}: stopped at, verdict"]
    rows = [[p["suspect"], p["relation"],
             *[f"{p[k]['first_budget_p'] or never} ({p[k]['first_budget_p_stays'] or never})" for k in sets],
             *[p[k]["first_budget_flagged"] or never for k in sets], *[p[k]["runs"][-1]["p_value"] for k in sets],
             f"{p['library']['sequential']['stopped_at_budget']}, {p['library']['sequential']['verdict']}"] for p in per_pair]
    print(table(headers, rows))
    print(table(["probe set", f"related pairs reaching p<{ALPHA}", "median first budget",
                 "median first budget (staying below)", f"target <= {TARGET_MEDIAN}",
                 f"independent pairs with p<{ALPHA} at some budget"],
                [[k, f"{s['reached']}/{s['related_pairs']}", s["median_first_budget"], s["median_first_budget_staying"],
                  "met" if s["median_first_budget"] is not None and s["median_first_budget"] <= TARGET_MEDIAN else "NOT met",
                  f"{s['independent_below_alpha_at_any_budget']}/{s['independent_pairs']}"] for k, s in summary.items()]))
    path = write_results(args.name or f"query-efficiency-{labels['size']['name']}", {
        "benchmark": "query_efficiency",
        "command": "python bench/query_efficiency.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "zoo": str(zoo), "zoo_size": labels["size"]["name"], "reference": labels["reference"],
        "alpha": ALPHA, "target_median_budget": TARGET_MEDIAN, "paper_prompts": PAPER_PROMPTS, "budgets": budgets,
        "budget_meaning": "probes per model: half next-token (at most 97), the rest continuation; plus identity "
                          "(budget/8, at least 10) and likelihood (budget/5, at least 4) prompts",
        "mining": mining, "summary": summary, "pairs": per_pair})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
