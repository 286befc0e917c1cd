"""The study's outputs from its rows: summary.json, QQ plots, a markdown table, and (on request) the shipped record."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from provenance.fsutil import atomic_write_json, atomic_write_text
from provenance.report.manifest import _git_commit
from provenance.study.record import build_record, load_record, record_path
from provenance.study.run import STUDY_SCHEMA
from provenance.study.summary import qq_plot, round_down, summarize

PRIMARY_BUDGET = 200  # the audit default (protocol, section 3)


def read_rows(rows_path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(rows_path).read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill (that case reruns)
        if r.get("schema") == STUDY_SCHEMA:
            rows.append(r)
    return rows


def first_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per (case, budget, access), the first written, and how many later ones were left out: a case that
    failed after some of its rows were written also got error rows for those (fixed in run_study), and each case must
    count once in every cell (protocol, section 4)."""
    seen: set[tuple[str, int, str]] = set()
    out = []
    for r in rows:
        key = (r["case"], r["budget"], r["access"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(rows) - len(out)


def _pct(r: Mapping[str, Any]) -> str:
    lo, hi = r["ci95"]
    # Interval ends cut outwards (0/360's upper 1.02% is not "1.0%", Primary 1's goal): never narrower than measured.
    return f"{r['k']}/{r['n']} ({round_down(lo * 100, 1):.1f}%-{-round_down(-hi * 100, 1):.1f}%)" if r["n"] else "-"


def _lr_text(lr: Mapping[str, Any]) -> str:
    """The LR point and its one-sided lower bound, cut, not rounded up past what was measured (99.96 is not 100.0)."""
    point = "inf" if lr["point_infinite"] else f"{lr['point']:.1f}" if lr["point"] is not None else "-"
    return point + (f" (>= {round_down(lr['lower95'], 1):.1f})" if lr["lower95"] is not None else "")


def markdown(summary: Mapping[str, Any], split: str = "all") -> str:
    # Primary 1 is judged on the one-sided upper bound, so it is printed here, not only in summary.json; so are the
    # cases that ended without a verdict (inconclusive) or without a run (error), which the rates count as not flagged.
    lines = ["| budget | access | null cases | false positives (95% CI) | FP one-sided 95% upper | related | "
             "detected (95% CI) | LR of a flag (one-sided 95% lower bound) | inconclusive null/related | "
             "errors null/related |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        if c["split"] != split:
            continue
        lrs = _lr_text(c["likelihood_ratio"])
        dec = c["null"]["decision"]
        upper = f"{-round_down(-dec['upper95_one_sided'] * 100, 2):.2f}%" if dec["n"] else "-"
        lines.append(f"| {c['budget']} | {c['access']} | {c['null']['n']} | {_pct(dec)} | {upper} | "
                     f"{c['related']['n']} | {_pct(c['related']['detected'])} | {lrs} | "
                     f"{c['null']['inconclusive']}/{c['related']['inconclusive']} | "
                     f"{c['null']['errors']}/{c['related']['errors']} |")
    return "\n".join(lines) + "\n"


def reasons_markdown(summary: Mapping[str, Any], budget: int, split: str = "all", top: int = 8) -> str:
    """Why verdicts were inconclusive, null and related cases together, per access level (protocol, section 4)."""
    lines = ["| access | reason (numbers as #) | null | related |", "|---|---|---|---|"]
    for c in summary["cells"]:
        if c["split"] != split or c["budget"] != budget:
            continue
        null, rel = c["null"].get("inconclusive_reasons", {}), c["related"].get("inconclusive_reasons", {})
        ranked = sorted(set(null) | set(rel), key=lambda k: (-(null.get(k, 0) + rel.get(k, 0)), k))[:top]
        lines += [f"| {c['access']} | {k.replace('|', '/')} | {null.get(k, 0)} | {rel.get(k, 0)} |" for k in ranked]
    return "\n".join(lines) + "\n"


def bands_markdown(summary: Mapping[str, Any], budget: int, access: str = "weights", split: str = "all") -> str:
    """Each test's p by band among related and null cases, with the band's likelihood ratio and its one-sided 95%
    bound (what the report's per-test table quotes)."""
    lines = ["| test | band | related | null | LR (point) | 95% bound |", "|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        if c["split"] != split or c["budget"] != budget or c["access"] != access:
            continue
        for name, fam in (c.get("tests") or {}).items():
            if not fam["ran"]["null"] or not fam["ran"]["related"]:
                continue
            for b in fam["bands"]:
                point = "inf" if b.get("point_infinite") else "-" if b["point"] is None else f"{b['point']:.2f}"
                bound = "-" if b["bound"] is None else f"{'>=' if b['side'] == 'lower' else '<='} {b['bound']:.2f}"
                lines.append(f"| {name} | [{b['p_from']:g}, {b['p_to']:g}) | {b['related'][0]}/{b['related'][1]} | "
                             f"{b['null'][0]}/{b['null'][1]} | {point} | {bound} |")
    return "\n".join(lines) + "\n"


def kinds_markdown(summary: Mapping[str, Any], budget: int, split: str = "all") -> str:
    cells = [c for c in summary["cells"] if c["split"] == split and c["budget"] == budget]
    kinds = sorted({k for c in cells for k in c["related"]["by_kind"]})
    head = "| relation kind | " + " | ".join(c["access"] for c in cells) + " |"
    lines = [head, "|---|" + "---|" * len(cells)]
    for k in kinds:
        lines.append(f"| {k} | " + " | ".join(_pct(c["related"]["by_kind"][k]) if k in c["related"]["by_kind"] else "-"
                                              for c in cells) + " |")
    return "\n".join(lines) + "\n"


def suspect_requests(budget: int, access: str, samplers: int | None = None, version: int = 2) -> dict[str, int]:
    """What an audit at `budget` asks of a suspect at each access level (the study's plans, `run._plans`): greedy and
    sampled answers (top-k comes with them), and at logits or weights access one scoring request per sampled answer of
    each sampler and per yardstick passage. Samplers: the reference and 4 controls in every study case (version 2), the
    reference and 2 comparison sources (version 3)."""
    samplers = samplers if samplers is not None else (3 if version >= 3 else 5)
    answers, sampled, passages = _plan_sizes(budget, version)
    score = sampled * samplers + passages if access in ("logits", "weights") else 0
    return {"answers": answers, "scored_texts": score, "total": answers + score}


@functools.lru_cache(maxsize=None)
def _plan_sizes(budget: int, version: int = 2) -> tuple[int, int, int]:
    """(answers the suspect gives, sampled answers per sampler, yardstick passages) at `budget`: the probe sets are
    read once per budget, not once per table row."""
    from provenance.probeset import load as load_probes
    from provenance.study.run import _plans

    sets = {k: load_probes(k) for k in ("continuation", "next-token", "identity", "instructions", "yardstick")}
    plans, ll, yard = _plans(budget, sets, version)
    return sum(len(p.probes) for p in plans), len(ll.probes), len(yard.probes)


def access_markdown(summary: Mapping[str, Any], budget: int, split: str = "all", version: int = 2) -> str:
    """The access-level benchmark (issue #18): one row per level of access to the suspect at one budget, with what
    the level costs in requests to the suspect. Wall time is not per level here: the study collects a case once at the
    largest budget and evaluates each level on that evidence (median collection time per case is in summary.json)."""
    lines = ["| access to the suspect | requests to the suspect (answers + scored texts) | false positives (95% CI) | "
             "detected (95% CI) | LR of a flag (one-sided 95% lower bound) |", "|---|---|---|---|---|"]
    for c in summary["cells"]:
        if c["split"] != split or c["budget"] != budget:
            continue
        q = suspect_requests(budget, c["access"], version=version)
        lrs = _lr_text(c["likelihood_ratio"])
        lines.append(f"| {c['access']} | {q['total']} ({q['answers']} + {q['scored_texts']}) | "
                     f"{_pct(c['null']['decision'])} | {_pct(c['related']['detected'])} | {lrs} |")
    return "\n".join(lines) + "\n"


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def conditions(rows: Sequence[Mapping[str, Any]], zoo: Path) -> dict[str, Any]:
    """What the study's audits looked like: the record applies to audits like these, and says so."""
    labels_path = Path(zoo) / "labels.json"
    params: list[int] = []
    if labels_path.is_file():
        labels = json.loads(labels_path.read_text())
        models = labels.get("models", {})
        used = {m for r in rows for m in [r["suspect"], r["reference"], *r["controls"]]}
        for mid, m in (models.items() if isinstance(models, dict) else ((x.get("id"), x) for x in models)):
            if mid in used and isinstance(m, dict) and m.get("params"):
                params.append(int(m["params"]))
    return {"models_params": [min(params), max(params)] if params else None,
            "control_lineages": sorted({r.get("control_lineages", len(r["controls"])) for r in rows}),
            "budgets": sorted({r["budget"] for r in rows}), "access_levels": sorted({r["access"] for r in rows}),
            "designs": sorted({r["design"] for r in rows if r.get("design")}),
            # Version 3's likelihood family samples these prompts: an audit with others is not the measured one.
            **({"likelihood_sets": sets} if (sets := sorted({r["likelihood_set"] for r in rows
                                                             if r.get("likelihood_set")})) else {}),
            "tokenizer": "SmolLM2's (every zoo model; the packaged teachers their own)",
            "lineage_of_suspect": "unknown to the audit (as in practice); reference and controls by family"}


def write_outputs(out: Path, zoo: Path, write_record: bool = False, record_root: Path | None = None
                  ) -> dict[str, Any]:
    out = Path(out)
    if not (out / "rows.jsonl").is_file():  # every case still waits for the zoo build: nothing to summarize yet
        return {"rows": str(out / "rows.jsonl"), "summary": None}
    rows, duplicates = first_rows(read_rows(out / "rows.jsonl"))
    version = max((int(r.get("analysis_version") or 2) for r in rows), default=2)
    summary = summarize(rows)
    # Time to collect one case's evidence (six models, the largest budget, every access level at once), per case.
    per_case = sorted({r["case"]: float(r["seconds"]["collect"]) for r in rows
                       if isinstance(r.get("seconds"), dict) and r["seconds"].get("collect") is not None}.values())
    summary["collect_seconds"] = ({"cases": len(per_case), "median": per_case[len(per_case) // 2],
                                   "p90": per_case[int(0.9 * (len(per_case) - 1))]} if per_case else None)
    atomic_write_json(out / "summary.json", summary)
    for split in ("all", "dev", "heldout"):
        null = [r for r in rows if r["type"] == "null" and r["budget"] == PRIMARY_BUDGET and r["access"] == "weights"
                and split in ("all", r["split"])]
        if null:
            qq_plot(null, out / f"qq-null-{split}.png",
                    f"null p-values, {split} cases, budget {PRIMARY_BUDGET}, full access (n={len(null)})")
            for fam in [*sorted({n for r in null for n in r["tests"]}), "combined (unadjusted)"]:
                slug = re.sub(r"[^a-z0-9]+", "-", fam.lower()).strip("-")
                qq_plot(null, out / f"qq-null-{split}-{slug}.png",
                        f"{fam}: null p-values, {split} cases, budget {PRIMARY_BUDGET}, full access", only=fam)
    md = ["## All cases\n", markdown(summary, "all"),
          f"\n### By access to the suspect (budget {PRIMARY_BUDGET})\n", access_markdown(summary, PRIMARY_BUDGET, version=version),
          f"\n### Detection by relation kind (budget {PRIMARY_BUDGET})\n",
          kinds_markdown(summary, PRIMARY_BUDGET, "all"),
          f"\n### Why verdicts were inconclusive (budget {PRIMARY_BUDGET})\n", reasons_markdown(summary, PRIMARY_BUDGET),
          f"\n### Each test alone: its p by band, and the band's likelihood ratio (budget {PRIMARY_BUDGET}, full "
          "access; not to be multiplied across tests)\n", bands_markdown(summary, PRIMARY_BUDGET)]
    for split in ("dev", "heldout"):
        md += [f"\n## {split} cases only\n", markdown(summary, split)]
    atomic_write_text(out / "summary.md", "".join(md))
    result: dict[str, Any] = {"rows": len(rows), "duplicate_rows_left_out": duplicates,
                              "summary": str(out / "summary.json")}
    if write_record:
        info = {"analysis_version": version if rows else None,
                "commit": _git_commit()["commit"], "date": datetime.now(timezone.utc).date().isoformat(),
                "protocol": "docs/study-protocol-v3.md" if version >= 3 else "docs/study-protocol.md",
                "zoo": {"labels_sha256": _sha(Path(zoo) / "labels.json"), "cases_sha256": _sha(Path(zoo) / "cases.json")},
                "rows_sha256": _sha(out / "rows.jsonl"), "rows": len(rows),
                "duplicate_rows_left_out": duplicates,
                # Rows written before rows named their commit came from e0a4259 (protocol amendment 1).
                "row_commits": dict(Counter(r["commit"] if "commit" in r else "e0a4259 (before rows named their commit)"
                                            for r in rows))}
        prev = load_record(int(info["analysis_version"] or 0), record_root)
        if prev is not None and prev[0].get("rows_sha256") == info["rows_sha256"]:
            # The same rows summarised again (newer summary code): the record still describes the study that wrote
            # them, so its commit, date and zoo stay (the zoo directory may have grown since); the rewrite is logged.
            old = prev[0]
            info["rewritten"] = [*old.get("rewritten", []), {"commit": info["commit"], "date": info["date"],
                                                              "why": "the same rows summarised by this commit's code"}]
            info.update(commit=old.get("commit"), date=old.get("date"), zoo=old.get("zoo"))
        rec = build_record(summary, conditions(rows, zoo), info)
        path = record_path(int(info["analysis_version"] or 0), record_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, rec)
        result["record"] = str(path)
    return result
