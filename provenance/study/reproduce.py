"""Whether two studies' rows measured the same build: per-family p-values of the cases both ran, compared value for value."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

# The families whose p-values do not depend on the likelihood prompts (protocol v3, amendment 5): on one build, the
# instructions arm must give exactly the continuation arm's values for them, case for case.
BUILD_FAMILIES = ("output_agreement", "next_token_divergence", "weight_alignment", "identity_claims")
REL_TOL = 1e-9  # the same evidence gives the same value to the last digits; a rebuild's other weights, another value


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-15)


def compare(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
            families: Sequence[str] = BUILD_FAMILIES) -> dict[str, Any]:
    """For each (case, budget, access) in both, whether each family's p (and whether it ran) is the same. Reads no
    verdict and no truth: what it counts is agreement between two runs, not how either did."""
    key = lambda r: (r["case"], r["budget"], r["access"])  # noqa: E731
    b_by = {key(r): r for r in rows_b if "error" not in r}
    counts = {f: {"compared": 0, "same": 0} for f in families}
    cases: set[str] = set()
    differ: list[dict[str, Any]] = []
    other: set[str] = set()  # cases where any family's p differs: measured on another model
    for ra in rows_a:
        rb = b_by.get(key(ra))
        if rb is None or "error" in ra:
            continue
        cases.add(ra["case"])
        for f in families:
            pa, pb = (r.get("tests", {}).get(f, {}).get("p") for r in (ra, rb))
            counts[f]["compared"] += 1
            if _same(pa, pb):
                counts[f]["same"] += 1
                continue
            other.add(ra["case"])
            if len(differ) < 20:
                differ.append({"case": ra["case"], "budget": ra["budget"], "access": ra["access"], "family": f,
                               "a": pa, "b": pb})
    same = all(c["same"] == c["compared"] for c in counts.values())
    return {"cases": len(cases), "rows": sum(1 for r in rows_a if key(r) in b_by), "families": counts,
            "all_same": same and bool(cases), "differing_cases": sorted(other), "first_differences": differ}


def main(argv: Sequence[str] | None = None) -> int:
    from provenance.study.outputs import read_rows

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("rows_a", type=Path)
    ap.add_argument("rows_b", type=Path)
    ap.add_argument("--families", default=",".join(BUILD_FAMILIES), help="comma-separated test families")
    ap.add_argument("--all-families", action="store_true", help="every family either row names")
    args = ap.parse_args(argv)
    for p in (args.rows_a, args.rows_b):
        if not p.is_file():
            print(f"error: no such rows file {p}", file=sys.stderr)
            return 2
    a, b = read_rows(args.rows_a), read_rows(args.rows_b)
    fams = sorted({f for r in a + b for f in r.get("tests", {})}) if args.all_families else args.families.split(",")
    print(json.dumps(compare(a, b, fams), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
