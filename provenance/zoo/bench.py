"""`provenance bench`: audit every labelled pair of a zoo and measure error rates against the ground truth."""

from __future__ import annotations

import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from provenance.audit import AuditConfig, run_audit
from provenance.errors import InputError
from provenance.fsutil import atomic_write_bytes, atomic_write_json


def _clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return (float(ci.low), float(ci.high))


def tpr_at_fpr(neg: np.ndarray, pos: np.ndarray, fpr: float) -> float:
    """Largest TPR over thresholds whose empirical FPR is at most `fpr` (scores: higher = more suspicious)."""
    best = 0.0
    for thr in np.unique(np.concatenate([neg, pos, [np.inf]])):
        if np.mean(neg >= thr) <= fpr:
            best = max(best, float(np.mean(pos >= thr)))
    return best


def zoo_lineages(labels: dict[str, Any]) -> dict[str, str]:
    """Every zoo model's lineage family, from labels.json: a teacher's own name, and its students' and copies'."""
    from provenance.zoo.build import lineage_name

    teachers: dict[str, str] = labels.get("teachers", {})
    out = {path: lineage_name(name) for name, path in teachers.items()}
    for e in labels.get("lineage", []):
        out[e["child"]] = out.get(e["parent"], e["parent"])
    for p in labels.get("pairs", []):
        out.setdefault(p["suspect"], lineage_name(p.get("teacher", p["suspect"])))
    return out


CORRECT = {"distilled": "distilled", "derived": "derived", "independent": "no_evidence"}


def run_bench(zoo: Path, budget: int = 100, progress: bool = True, out: Path | None = None) -> dict[str, Any]:
    labels_path = Path(zoo) / "labels.json"
    try:
        labels = json.loads(labels_path.read_text())
    except (OSError, ValueError):
        raise InputError(f"{zoo}: not a zoo (no readable labels.json; run `provenance zoo build`)") from None
    controls = labels["controls"]
    lineages = zoo_lineages(labels)
    rows = []
    for pair in labels["pairs"]:
        ctrl = [c for c in controls if c != pair["suspect"]]
        t0 = time.time()
        res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=ctrl, budget=budget,
                                    progress=progress, out=None, lineages=lineages))
        ref = res["references"][0]
        rows.append({"suspect": pair["suspect"], "kind": pair["kind"], "relation": pair["relation"], "verdict": ref["verdict"],
                     "p_value": ref["p_value"], "tests": {t["name"]: t["p_value"] for t in ref["tests"]},
                     "probes": sum(p["n_used"] for p in res["probe_sets"]), "seconds": round(time.time() - t0, 2)})
    return summarise(rows, labels, budget, out)


def summarise(rows: list[dict[str, Any]], labels: dict[str, Any], budget: int, out: Path | None) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score, roc_curve

    score = lambda r: -np.log10(max(r["p_value"] if r["p_value"] is not None else 1.0, 1e-300))  # noqa: E731
    neg = np.array([score(r) for r in rows if r["relation"] == "independent"])
    pos = np.array([score(r) for r in rows if r["relation"] != "independent"])
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    s = np.r_[neg, pos]
    auc = float(roc_auc_score(y, s)) if len(neg) and len(pos) else float("nan")
    per_relation = {}
    for rel in ("distilled", "derived", "independent"):
        rs = [r for r in rows if r["relation"] == rel]
        correct = sum(r["verdict"] == CORRECT[rel] for r in rs)
        flagged = sum(r["verdict"] in ("distilled", "derived") for r in rs)
        detected = sum(r["p_value"] is not None and r["p_value"] < 0.01 for r in rs)
        per_relation[rel] = {"n": len(rs), "correct_verdict": correct, "flagged": flagged, "p_below_0.01": detected,
                             "flagged_ci95": _clopper_pearson(flagged, len(rs))}
    false_accusations = per_relation["independent"]["flagged"]
    summary = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "zoo": labels["size"]["name"], "budget": budget, "pairs": len(rows),
        "auc": auc, "tpr_at_fpr_0.01": tpr_at_fpr(neg, pos, 0.01), "tpr_at_fpr_0.05": tpr_at_fpr(neg, pos, 0.05),
        "false_accusations": false_accusations,
        "fpr_ci95": _clopper_pearson(false_accusations, per_relation["independent"]["n"]),
        "per_relation": per_relation,
        "median_probes_per_verdict": {v: statistics.median([r["probes"] for r in rows if r["verdict"] == v])
                                      for v in sorted({r["verdict"] for r in rows})},
        "median_seconds_per_audit": statistics.median([r["seconds"] for r in rows]),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "rows": rows,
    }
    if out is not None:
        out = Path(out)
        atomic_write_json(out / f"bench-{summary['zoo']}.json", summary)
        if len(neg) and len(pos):
            fpr, tpr, _ = roc_curve(y, s)
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(3.6, 3.4))
            ax.plot(fpr, tpr, drawstyle="steps-post", color="#4a6fa5")
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
            ax.set_xlabel("false-positive rate")
            ax.set_ylabel("true-positive rate")
            ax.set_title(f"{summary['zoo']} zoo: AUC {auc:.2f} ({len(pos)} related, {len(neg)} independent)", fontsize=8)
            import io

            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
            atomic_write_bytes(out / f"roc-{summary['zoo']}.png", buf.getvalue())
    return summary


def markdown(summary: dict[str, Any], command: str) -> str:
    pr = summary["per_relation"]
    lines = [
        f"### Detection benchmark: {summary['zoo']} zoo ({summary['date_utc']})",
        "",
        f"Command: `{command}`. Machine: {summary['machine']}. Budget {summary['budget']} probes per model.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| pairs audited | {summary['pairs']} |",
        f"| AUC (score = -log10 combined p) | {summary['auc']:.3f} |",
        f"| TPR at FPR <= 1% / 5% | {summary['tpr_at_fpr_0.01']:.2f} / {summary['tpr_at_fpr_0.05']:.2f} |",
        f"| false accusations (independent flagged) | {summary['false_accusations']} of {pr['independent']['n']} "
        f"(95% CI {summary['fpr_ci95'][0]:.2f}-{summary['fpr_ci95'][1]:.2f}) |",
        f"| median wall time per audit (models already probed by an earlier audit are read from the cache) | "
        f"{summary['median_seconds_per_audit']:.1f} s |",
        "| median prompts per model behind a verdict (all probe sets; `--sequential` stops earlier, see query "
        "efficiency) | " + ", ".join(f"{v}: {n:g}" for v, n in summary.get("median_probes_per_verdict", {}).items()) + " |",
        "",
        "| relation | pairs | verdict correct | flagged (distilled/derived) | p < 0.01 |",
        "|---|---|---|---|---|",
    ]
    for rel, d in pr.items():
        lines.append(f"| {rel} | {d['n']} | {d['correct_verdict']} | {d['flagged']} | {d['p_below_0.01']} |")
    if summary.get("rule_comparison"):
        lines += ["", "Pre-registered rule comparison (docs/methods.md), same evidence:", "",
                  "| rule | false accusations | related flagged |", "|---|---|---|"]
        for rule, d in summary["rule_comparison"].items():
            lines.append(f"| {rule} | {d['false_accusations']} | {d['related_flagged']} of {d['related']} |")
    lines += ["", "| suspect | kind | truth | verdict | p | seconds |", "|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        p = "n/a" if r["p_value"] is None else f"{r['p_value']:.2g}"
        lines.append(f"| {Path(r['suspect']).name} | {r['kind']} | {r['relation']} | {r['verdict']} | {p} | {r['seconds']} |")
    lines.append("")
    return "\n".join(lines)


def calibration_pairs(labels: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(suspect, reference, controls) for every pair known to be independent: a teacher against every model of
    another teacher's family (its students, and the teacher itself), with every other model outside the reference's
    family as controls. Zoo-built lineage only: no derivative or logit student enters."""
    teachers: dict[str, str] = labels.get("teachers", {})
    family: dict[str, str] = {path: name for name, path in teachers.items()}
    for e in labels.get("lineage", []):
        if e["kind"] == "sequence-distilled":
            family[e["child"]] = next(n for n, p in teachers.items() if p == e["parent"])
    out = []
    for ref_name, ref in teachers.items():
        others = [m for m, f in family.items() if f != ref_name]
        for suspect in others:
            out.append((suspect, ref, [c for c in others if c != suspect]))
    return out


def run_calibration(zoo: Path, budget: int = 100, progress: bool = True) -> dict[str, Any]:
    """Every test's p-values on independent pairs: KS distance to uniform and false-positive rates with exact CIs."""
    from scipy import stats as sps

    labels = json.loads((Path(zoo) / "labels.json").read_text())
    pairs = calibration_pairs(labels)
    lineages = zoo_lineages(labels)
    if not pairs:
        raise InputError(f"{zoo}: labels.json has no teachers/lineage (rebuild the zoo with this version)")
    by_test: dict[str, list[float]] = {}
    combined: list[float] = []
    verdicts: dict[str, int] = {}
    t0 = time.time()
    for suspect, ref, ctrl in pairs:
        res = run_audit(AuditConfig(suspect=suspect, references=[ref], controls=ctrl, budget=budget, progress=progress,
                                    lineages=lineages))
        entry = res["references"][0]
        verdicts[entry["verdict"]] = verdicts.get(entry["verdict"], 0) + 1
        if entry["p_value"] is not None:
            combined.append(entry["p_value"])
        for t in entry["tests"]:
            if t["p_value"] is not None:
                by_test.setdefault(t["name"], []).append(t["p_value"])

    def summary(ps: list[float]) -> dict[str, Any]:
        a = np.array(ps)
        n = len(a)
        k05, k01 = int(np.sum(a < 0.05)), int(np.sum(a < 0.01))
        return {"n": n, "ks_statistic": float(sps.kstest(a, "uniform").statistic),
                "ks_p_greater": float(sps.kstest(a, "uniform", alternative="greater").pvalue),
                "fpr_0.05": k05 / n, "fpr_0.05_ci95": _clopper_pearson(k05, n),
                "fpr_0.01": k01 / n, "fpr_0.01_ci95": _clopper_pearson(k01, n), "median_p": float(np.median(a))}

    return {"date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "zoo": labels["size"]["name"],
            "budget": budget, "pairs": len(pairs), "seconds": round(time.time() - t0, 1), "verdicts": verdicts,
            "combined": summary(combined), "tests": {k: summary(v) for k, v in sorted(by_test.items())},
            "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}"}


def calibration_markdown(c: dict[str, Any], command: str) -> str:
    lines = [f"### Calibration on independent pairs: {c['zoo']} zoo ({c['date_utc']})", "",
             f"Command: `{command}`. {c['pairs']} pairs known to be independent (a teacher against every model of "
             f"another teacher's family, the rest as controls), budget {c['budget']}, {c['seconds']} s. "
             f"Verdicts: {', '.join(f'{k} {v}' for k, v in sorted(c['verdicts'].items()))}.", "",
             "| test | pairs | KS distance to uniform | KS p (p-values too small) | FPR at 0.05 (95% CI) | FPR at 0.01 (95% CI) |",
             "|---|---|---|---|---|---|"]
    for name, s in [("combined (Bonferroni)", c["combined"]), *c["tests"].items()]:
        lines.append(f"| {name} | {s['n']} | {s['ks_statistic']:.2f} | {s['ks_p_greater']:.2f} | "
                     f"{s['fpr_0.05']:.2f} ({s['fpr_0.05_ci95'][0]:.2f}-{s['fpr_0.05_ci95'][1]:.2f}) | "
                     f"{s['fpr_0.01']:.2f} ({s['fpr_0.01_ci95'][0]:.2f}-{s['fpr_0.01_ci95'][1]:.2f}) |")
    lines.append("")
    return "\n".join(lines)
