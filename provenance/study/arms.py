"""Amendment 1's choice between the two v3 arms, on stage A's cases, paired (docs/study-protocol-v3.md, amendment 5)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from scipy.stats import binomtest

from provenance.study.outcomes import SEQUENCE_KINDS
from provenance.study.reproduce import BUILD_FAMILIES, compare
from provenance.study.summary import flagged, rate

STAGE_A = {"split": "dev", "type": "related", "relation_kinds": SEQUENCE_KINDS}
BUDGET, ACCESS = 200, "logits"  # amendment 1: detection at logits access, budget 200, dev split
MAX_NOT_REPRODUCED = 0.05  # amendment 5, item 5: more than this share of a stage's cases on other models stops the arm


def stage_a_cases(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stage A's case ids as the continuation arm's rows name them."""
    return sorted({r["case"] for r in rows if r["split"] == STAGE_A["split"] and r["type"] == STAGE_A["type"]
                   and r.get("relation_kind") in STAGE_A["relation_kinds"]})


def compare_arms(instructions: Sequence[Mapping[str, Any]], continuation: Sequence[Mapping[str, Any]]
                 ) -> dict[str, Any]:
    """Detection of stage A's students by each arm on the same cases (logits access, budget 200), with the discordant
    pairs and an exact McNemar test (two-sided binomial on the discordant pairs); cases measured on other models than
    the continuation arm's (any family the likelihood prompts do not touch gives another p) are left out and listed.
    Refuses (ValueError) an incomplete stage: nothing is computed before every case has its row."""
    want = stage_a_cases(continuation)
    key = lambda r: (r["case"], r["budget"], r["access"])  # noqa: E731
    ins = {key(r): r for r in instructions}
    con = {key(r): r for r in continuation}
    missing = [c for c in want if (c, BUDGET, ACCESS) not in ins]
    if missing:
        raise ValueError(f"stage A is not complete: {len(missing)} of its {len(want)} cases have no row at "
                         f"{ACCESS} access, budget {BUDGET} (first: {missing[0]})")
    stage_ins = [r for r in instructions if r["case"] in set(want)]
    rep = compare(stage_ins, continuation, BUILD_FAMILIES)
    other = sorted(set(rep["differing_cases"]))
    out: dict[str, Any] = {"stage": "A", "cases": len(want), "access": ACCESS, "budget": BUDGET,
                           "not_reproduced": other, "reproduction": rep["families"]}
    if len(other) > MAX_NOT_REPRODUCED * len(want):
        out["decision"] = (f"not made: {len(other)} of {len(want)} cases were measured on other models than the "
                           "continuation arm's (amendment 5, item 5: the arm stops)")
        return out
    keep = [c for c in want if c not in set(other)]
    a = [flagged(ins[(c, BUDGET, ACCESS)]) for c in keep]
    b = [flagged(con[(c, BUDGET, ACCESS)]) for c in keep]
    only_i = sum(1 for x, y in zip(a, b) if x and not y)
    only_c = sum(1 for x, y in zip(a, b) if y and not x)
    mcnemar = binomtest(only_i, only_i + only_c, 0.5).pvalue if only_i + only_c else 1.0
    out.update({"compared": len(keep), "instructions": rate(sum(a), len(keep)), "continuation": rate(sum(b), len(keep)),
                "both": sum(1 for x, y in zip(a, b) if x and y), "only_instructions": only_i,
                "only_continuation": only_c, "mcnemar_exact_p": mcnemar,
                "instructions_detects_more": sum(a) > sum(b)})
    out["decision"] = (
        "the instructions arm detects more: stage B (the null cases) runs next, and amendment 1's choice waits for "
        "criteria 1 and 2 on this arm" if out["instructions_detects_more"] else
        "the instructions arm does not detect more: amendment 1 picks the continuation arm, which fails criterion 1; "
        "version 2 stays the default and this arm ends at stage A")
    return out


def markdown(o: Mapping[str, Any]) -> str:
    def r(x: Mapping[str, Any]) -> str:
        lo, hi = x["ci95"]
        return f"{x['k']}/{x['n']} ({100 * lo:.1f}%-{100 * hi:.1f}%)"

    lines = [f"## Stage A: sequence-level students of the dev split, {o['access']} access, budget {o['budget']}, "
             "paired (protocol v3, amendments 1 and 5)", ""]
    lines.append(f"Cases: {o['cases']}; measured on other models than the continuation arm's (left out): "
                 f"{len(o['not_reproduced'])}" + (f" ({', '.join(o['not_reproduced'])})" if o["not_reproduced"] else ""))
    if "compared" in o:
        lines += ["", "| arm | detected |", "|---|---|", f"| instructions | {r(o['instructions'])} |",
                  f"| continuation | {r(o['continuation'])} |", "",
                  f"Both arms: {o['both']}; instructions only: {o['only_instructions']}; continuation only: "
                  f"{o['only_continuation']}; exact McNemar p = {o['mcnemar_exact_p']:.3g}."]
    lines += ["", f"Decision: {o['decision']}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """python -m provenance.study.arms INSTRUCTIONS_ROWS CONTINUATION_ROWS OUT_DIR: arms.json and arms.md."""
    from provenance.fsutil import atomic_write_json, atomic_write_text
    from provenance.study.outputs import first_rows, read_rows

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("instructions", type=Path)
    ap.add_argument("continuation", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    for p in (a.instructions, a.continuation):
        if not p.is_file():
            print(f"error: no such rows file {p}", file=sys.stderr)
            return 2
    try:
        o = compare_arms(first_rows(read_rows(a.instructions))[0], first_rows(read_rows(a.continuation))[0])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / "arms.json", o)
    atomic_write_text(a.out / "arms.md", markdown(o))
    print(json.dumps({"decision": o["decision"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
