"""Version 3's pre-registered extra outcomes (docs/study-protocol-v3.md, section 4, amendments 2 and 3), from rows."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Mapping, Sequence

from provenance.study.outputs import PRIMARY_BUDGET
from provenance.study.summary import flagged, rate
from provenance.verdict import ALPHA, bonferroni

SEQUENCE_KINDS = ("sequence", "sequence-10pct", "sequence-alt", "mix")  # protocol, section 4: sequence-level students
NOT_BEHAVIOUR = ("identity_claims", "weight_alignment")  # identity corroborates only; weights is the other branch
FAMILY = "capable_likelihood"
# A packaged comparison source's family as the zoo names its students' family (zoo/cases.py's packaged teachers).
PACKAGED_FAMILIES = {"smollm2": "p-smollm2", "qwen2.5": "p-qwen25", "gemma-3": "p-gemma3"}


def cauchy(pvalues: Sequence[float | None]) -> float | None:
    """Cauchy combination with equal weights (Liu & Xie 2020): valid in the tail under arbitrary dependence."""
    ps = [min(max(p, 1e-300), 1.0) for p in pvalues if p is not None]
    if not ps:
        return None
    # tan((0.5 - p) pi) written as cot(p pi), which keeps its precision for tiny p; p = 1 gives a large negative term.
    t = sum(1 / math.tan(p * math.pi) if p < 1 else -1e16 for p in ps) / len(ps)
    # 0.5 - atan(t) / pi loses every digit for a large t; there it is 1 / (pi t) to first order.
    p = 1 / (math.pi * t) if t > 1e8 else 0.5 - math.atan(t) / math.pi
    return min(1.0, max(0.0, p))


def behaviour_ps(r: Mapping[str, Any]) -> list[float | None]:
    return [t.get("p") for f, t in r["tests"].items() if f not in NOT_BEHAVIOUR]


def combined(r: Mapping[str, Any], rule: str) -> float | None:
    """The row's unadjusted combined p with the behavioural branch combined by `rule` (bonferroni or cauchy), then
    the two branches by Bonferroni as the decision rule does."""
    pb = (bonferroni if rule == "bonferroni" else cauchy)(behaviour_ps(r))
    return bonferroni([pb, r["tests"].get("weight_alignment", {}).get("p")])


def checks_fired(r: Mapping[str, Any]) -> bool:
    """A placebo, the competence check or the kind check stopped (or would have stopped) a flag."""
    return (bool(r.get("placebo_flagged")) or bool((r.get("competence") or {}).get("suspect_outside"))
            or "would be flagged" in str(r.get("reason") or ""))


def source_family(source: str) -> str:
    """A comparison source's lineage family: a zoo root's family directory, or a packaged model's zoo family."""
    parts = source.replace("\\", "/").rstrip("/").split("/")
    if "families" in parts and parts.index("families") + 1 < len(parts):
        return parts[parts.index("families") + 1]
    low = source.lower()
    return next((fam for key, fam in PACKAGED_FAMILIES.items() if key in low), source)


def student_of_a_source(r: Mapping[str, Any]) -> bool:
    return r["families"]["suspect"][0] in {source_family(s) for s in r.get("comparison_sources") or []}


def _tail(ps: Sequence[float]) -> dict[str, Any]:
    return {"ran": len(ps), "0.05": rate(sum(p < 0.05 for p in ps), len(ps)),
            "0.01": rate(sum(p < 0.01 for p in ps), len(ps))}


def family_tail(rows: Sequence[Mapping[str, Any]], access: Sequence[str] = ("weights", "logits")) -> dict[str, Any]:
    """capable_likelihood's raw p among null cases at budget 200: all, per design, and among those whose suspect is a
    student of one of its case's comparison sources."""
    null = [r for r in rows if r["type"] == "null" and r["budget"] == PRIMARY_BUDGET and r["access"] in access]

    def ps(rs: Sequence[Mapping[str, Any]]) -> list[float]:
        return [r["tests"][FAMILY]["p"] for r in rs if r["tests"].get(FAMILY, {}).get("p") is not None]

    by_design: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in null:
        by_design[r.get("design") or "none (packaged or unmatched)"].append(r)
    return {"access": list(access), "all": _tail(ps(null)),
            "by_design": {d: _tail(ps(rs)) for d, rs in sorted(by_design.items())},
            "suspect_a_student_of_a_source": _tail(ps([r for r in null if student_of_a_source(r)]))}


def sequence_detection(v3: Sequence[Mapping[str, Any]], v2: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Detection of sequence-level students at weights and logits access, budget 200, by version 3 and by version 2
    on the same (case, budget, access) keys with the same suspect and reference."""
    def key(r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (r["case"], r["budget"], r["access"], r["suspect"], r["reference"])

    old = {key(r): r for r in v2}
    out: dict[str, Any] = {}
    for access in ("weights", "logits"):
        for split in ("all", "dev", "heldout"):
            rs = [r for r in v3 if r["type"] == "related" and r["relation_kind"] in SEQUENCE_KINDS
                  and r["budget"] == PRIMARY_BUDGET and r["access"] == access and split in ("all", r["split"])
                  and key(r) in old]
            out[f"{access}/{split}"] = {"v3": rate(sum(flagged(r) for r in rs), len(rs)),
                                        "v2": rate(sum(flagged(old[key(r)]) for r in rs), len(rs))}
    return out


def combination_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Amendment 2: at weights and logits access, budget 200, the combined p below ALPHA with the behavioural branch
    by Bonferroni and by Cauchy, among null cases (all, and those where no check fired) and related cases."""
    out: dict[str, Any] = {}
    for access in ("weights", "logits"):
        for split in ("all", "dev", "heldout"):
            rs = [r for r in rows if r["budget"] == PRIMARY_BUDGET and r["access"] == access
                  and split in ("all", r["split"])]
            groups = {"null": [r for r in rs if r["type"] == "null"],
                      "null_no_check_fired": [r for r in rs if r["type"] == "null" and not checks_fired(r)],
                      "related": [r for r in rs if r["type"] == "related"]}
            cell: dict[str, Any] = {}
            for g, grs in groups.items():
                for rule in ("bonferroni", "cauchy"):
                    ps = [combined(r, rule) for r in grs]
                    # A row with no combined p (nothing could decide) counts as not below ALPHA, as errors count
                    # as not flagged (protocol, section 6).
                    cell[f"{g}/{rule}"] = rate(sum(p is not None and p < ALPHA for p in ps), len(ps))
            out[f"{access}/{split}"] = cell
    return out


# Amendment 3's distance bands (nats per byte outside the controls' competence range), the margin's side closed.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("below -0.30", -math.inf, -0.30), ("-0.30 to -0.15", -0.30, -0.15), ("-0.15 to 0", -0.15, 0.0),
    ("inside", 0.0, 0.0), ("0 to 0.15", 0.0, 0.15), ("0.15 to 0.30", 0.15, 0.30), ("above 0.30", 0.30, math.inf))
LET_THROUGH_MIN = 20  # amendment 3: fewer null cases than this inside the margin and the study cannot measure it


def band(d: float) -> str:
    if d == 0:
        return "inside"
    for name, lo, hi in BANDS:
        if name != "inside" and ((lo <= d < hi) if d < 0 else (lo < d <= hi)):
            return name
    raise ValueError(d)


def distances(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Each case's competence distance and margin, from rows that record them (amendment 3)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        c = r.get("competence") or {}
        if c.get("distance") is not None:
            out[r["case"]] = {"distance": c["distance"], "margin": c["margin"]}
    return out


def would_flag(r: Mapping[str, Any]) -> bool:
    """Flagged but for the competence check: p below ALPHA with no placebo flagged (amendment 3)."""
    return r.get("p_value") is not None and r["p_value"] < ALPHA and not r.get("placebo_flagged")


def competence_calibration(rows: Sequence[Mapping[str, Any]], dist: Mapping[str, Mapping[str, float]]
                           ) -> dict[str, Any]:
    """Amendment 3: at budget 200, weights and logits access, null and related cases by competence distance band,
    counting those that would be flagged but for the competence check; and at logits access, the null cases that
    the margin lets through (outside the range by at most the margin), on which the decision rests."""
    out: dict[str, Any] = {"cases_with_distance": len(dist)}
    for access in ("weights", "logits"):
        rs = [r for r in rows if r["budget"] == PRIMARY_BUDGET and r["access"] == access and r["case"] in dist]
        cell: dict[str, Any] = {}
        for kind in ("null", "related"):
            krs = [r for r in rs if r["type"] == kind]
            cell[kind] = {name: rate(sum(would_flag(r) for r in b), len(b))
                          for name, _, _ in BANDS for b in [[r for r in krs if band(dist[r["case"]]["distance"]) == name]]}
        through = [r for r in rs if r["type"] == "null" and 0 < abs(dist[r["case"]]["distance"])
                   <= dist[r["case"]]["margin"]]
        cell["null_let_through"] = rate(sum(would_flag(r) for r in through), len(through))
        out[access] = cell
    lt = out["logits"]["null_let_through"]
    out["margin_measured"] = lt["n"] >= LET_THROUGH_MIN and lt["k"] == 0  # this arm's half of the decision
    return out


def outcomes(v3: Sequence[Mapping[str, Any]], v2: Sequence[Mapping[str, Any]],
             dist: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    o = {"sequence_detection": sequence_detection(v3, v2), "capable_likelihood_null_tail": family_tail(v3),
         "combination": combination_counts(v3), "rows": len(v3)}
    dist = distances(v3) if dist is None else dist
    if dist:
        o["competence_calibration"] = competence_calibration(v3, dist)
    return o


def markdown(o: Mapping[str, Any]) -> str:
    def r(x: Mapping[str, Any]) -> str:
        lo, hi = x["ci95"]
        return f"{x['k']}/{x['n']} ({lo * 100:.1f}%-{hi * 100:.1f}%)"

    md = [f"## Sequence-level students detected, budget {PRIMARY_BUDGET} (the same suspect-reference pairs by name; "
          "version 2 on its own build and control draws: unpaired, protocol v3 amendment 4)\n",
          "| access/split | version 3 | version 2 |", "|---|---|---|"]
    md += [f"| {k} | {r(v['v3'])} | {r(v['v2'])} |" for k, v in o["sequence_detection"].items()]
    t = o["capable_likelihood_null_tail"]
    md += ["", f"## {FAMILY}: raw p among null cases, budget {PRIMARY_BUDGET}, {' and '.join(t['access'])} access\n",
           "| null cases | ran | p < 0.05 | p < 0.01 |", "|---|---|---|---|",
           f"| all | {t['all']['ran']} | {r(t['all']['0.05'])} | {r(t['all']['0.01'])} |"]
    md += [f"| design: {d} | {v['ran']} | {r(v['0.05'])} | {r(v['0.01'])} |" for d, v in t["by_design"].items()]
    s = t["suspect_a_student_of_a_source"]
    md += [f"| suspect a student of a comparison source | {s['ran']} | {r(s['0.05'])} | {r(s['0.01'])} |", "",
           f"## Amendment 2: combined p < {ALPHA}, behavioural branch by Bonferroni and by Cauchy, budget "
           f"{PRIMARY_BUDGET}\n",
           "| access/split | null, Bonferroni | null, Cauchy | null without a check firing, Bonferroni | "
           "null without a check firing, Cauchy | related, Bonferroni | related, Cauchy |",
           "|---|---|---|---|---|---|---|"]
    for k, c in o["combination"].items():
        md.append(f"| {k} | " + " | ".join(r(c[f"{g}/{rule}"]) for g in ("null", "null_no_check_fired", "related")
                                          for rule in ("bonferroni", "cauchy")) + " |")
    if "competence_calibration" in o:
        c = o["competence_calibration"]
        md += ["", f"## Amendment 3: would be flagged but for the competence check, by distance outside the controls' "
                   f"range (nats/byte), budget {PRIMARY_BUDGET}\n",
               "| access | cases | " + " | ".join(name for name, _, _ in BANDS) + " |",
               "|---|---|" + "---|" * len(BANDS)]
        for access in ("weights", "logits"):
            for kind in ("null", "related"):
                md.append(f"| {access} | {kind} | " + " | ".join(r(c[access][kind][name]) for name, _, _ in BANDS)
                          + " |")
        lt = c["logits"]["null_let_through"]
        md += ["", f"Null cases the margin lets through, logits access: {r(lt)} would be flagged; one-sided 95% upper "
                   f"bound {lt['upper95_one_sided'] * 100:.1f}%. This arm's half of the decision: "
                   + ("met" if c["margin_measured"] else "not met") + f" (needs at least {LET_THROUGH_MIN} and none "
                   "flagged)."]
    return "\n".join(md) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """python -m provenance.study.outcomes V3_ROWS V2_ROWS OUT_DIR: writes outcomes.json and outcomes.md."""
    import argparse
    from pathlib import Path

    from provenance.fsutil import atomic_write_json, atomic_write_text
    from provenance.study.outputs import first_rows, read_rows

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("v3_rows", type=Path)
    ap.add_argument("v2_rows", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--distances", type=Path, default=None,
                    help="Rows that record competence distances (amendment 3: the instructions arm's), if not these.")
    a = ap.parse_args(argv)
    dist = distances(first_rows(read_rows(a.distances))[0]) if a.distances else None
    o = outcomes(first_rows(read_rows(a.v3_rows))[0], first_rows(read_rows(a.v2_rows))[0], dist)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / "outcomes.json", o)
    atomic_write_text(a.out / "outcomes.md", markdown(o))
    print(f"{o['rows']} rows: {a.out / 'outcomes.md'}")


if __name__ == "__main__":
    main()
