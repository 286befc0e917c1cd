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
# Families whose p is a Monte Carlo p from a generator seeded by the two models' fingerprints, with their number of
# draws: where the rows' fingerprints differ or are not recorded, the same weights give another p within Monte Carlo
# error, so they are compared within it (amendment 6).
MONTE_CARLO = {"weight_alignment": 999}
MAX_Z = 4.0  # one case: two seeds' p this far apart means other weights
MAX_MEAN_Z2 = 2.0  # the family, over its cases within MAX_Z: 1 is expected when only the seed differs


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-15)


def monte_carlo_z(pa: float, pb: float, draws: int) -> float:
    """How far apart two Monte Carlo p-values of one statistic are, in units of two independent seeds' error."""
    p = (pa + pb) / 2
    return (pa - pb) / math.sqrt(max(2 * p * (1 - p) / (draws + 1), 1e-12))


def _fingerprints(r: Mapping[str, Any]) -> Any:
    return (r.get("build") or {}).get("fingerprints")


def compare(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
            families: Sequence[str] = BUILD_FAMILIES, monte_carlo: Mapping[str, int] = MONTE_CARLO
            ) -> dict[str, Any]:
    """For each (case, budget, access) in both, whether each family's p (and whether it ran) is the same; a Monte
    Carlo family on rows whose fingerprints differ (or are unrecorded) is the same within Monte Carlo error. Reads no
    verdict and no truth: what it counts is agreement between two runs, not how either did."""
    key = lambda r: (r["case"], r["budget"], r["access"])  # noqa: E731
    b_by = {key(r): r for r in rows_b if "error" not in r}
    counts: dict[str, dict[str, Any]] = {f: {"compared": 0, "same": 0} for f in families}
    z2: dict[str, list[float]] = {f: [] for f in families if f in monte_carlo}
    cases: set[str] = set()
    differ: list[dict[str, Any]] = []
    other: set[str] = set()  # cases where any family's p differs: measured on another model
    seeded_apart: dict[str, set[str]] = {f: set() for f in z2}  # cases within Monte Carlo error only
    for ra in rows_a:
        rb = b_by.get(key(ra))
        if rb is None or "error" in ra:
            continue
        cases.add(ra["case"])
        same_seed = _fingerprints(ra) is not None and _fingerprints(ra) == _fingerprints(rb)
        for f in families:
            pa, pb = (r.get("tests", {}).get(f, {}).get("p") for r in (ra, rb))
            counts[f]["compared"] += 1
            if _same(pa, pb):
                counts[f]["same"] += 1
                if f in z2 and pa is not None and not same_seed:
                    z2[f].append(0.0)
                continue
            if f in z2 and not same_seed and pa is not None and pb is not None:
                z = monte_carlo_z(pa, pb, monte_carlo[f])
                if abs(z) <= MAX_Z:
                    z2[f].append(z * z)
                    counts[f]["same"] += 1
                    seeded_apart[f].add(ra["case"])
                    continue
            other.add(ra["case"])
            if len(differ) < 20:
                differ.append({"case": ra["case"], "budget": ra["budget"], "access": ra["access"], "family": f,
                               "a": pa, "b": pb})
    for f, zs in z2.items():
        if not zs:
            continue
        mean = sum(zs) / len(zs)
        counts[f].update({"within_monte_carlo": len(seeded_apart[f]), "mean_z2": round(mean, 4)})
        if mean > MAX_MEAN_Z2:  # the family as a whole is further apart than seeds make it: other weights
            counts[f]["same"] -= len(seeded_apart[f])
            other |= seeded_apart[f]
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
