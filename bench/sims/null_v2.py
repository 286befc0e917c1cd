"""Null simulation of analysis version 2's behavioural test (the lineage-unit interaction with sampling error).

Models answer n probes; per probe a model gives the one canonical answer with probability c (its competence),
otherwise one of V wrong answers at random (two wrong models agree by chance, 1/V). Siblings of one lineage copy
their lineage root's answer with probability `sib`. A distilled student copies its teacher's answer with
probability q. Two models agree on a probe when their answers are equal (the per-probe similarity).

Each scenario prints P(p < 0.01) and P(p < 0.05) for an independent suspect (H0 true: its lineage is absent from the
controls), and the power for a student (q = 0.3), using the package's own test (provenance.stats.behaviour).
Run: python3 bench/sims/null_v2.py [reps]   (about a minute at 1000 reps on one core)
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from provenance.stats.behaviour import _affinity_test  # noqa: E402
from provenance.stats.nulls import Design  # noqa: E402

V = 10


def answers(rng: np.random.Generator, c: float, n: int) -> np.ndarray:
    right = rng.random(n) < c
    return np.where(right, 0, rng.integers(1, V + 1, n))


def copy_of(rng: np.random.Generator, source: np.ndarray, own: np.ndarray, q: float) -> np.ndarray:
    return np.where(rng.random(source.size) < q, source, own)


def run(rng: np.random.Generator, n: int, c_s: float, c_r: float, c_ctrl: tuple[float, float], lineages: int,
        siblings: int, sib: float, q: float) -> tuple[float, bool]:
    ans = {"R": answers(rng, c_r, n)}
    s_own = answers(rng, c_s, n)
    ans["S"] = copy_of(rng, ans["R"], s_own, q) if q > 0 else s_own
    units: dict[str, tuple[str, ...]] = {}
    for u in range(lineages):
        c = rng.uniform(*c_ctrl)
        root = answers(rng, c, n)
        members = []
        for j in range(siblings):
            name = f"u{u}m{j}"
            ans[name] = copy_of(rng, root, answers(rng, c, n), sib) if siblings > 1 else root
            members.append(name)
        units[f"u{u}"] = tuple(members)
    models = list(ans)
    table = {frozenset((a, b)): (ans[a] == ans[b]).astype(float) for a, b in itertools.combinations(models, 2)}
    r = _affinity_test("sim", table, Design("S", "R", units), [str(i) for i in range(n)], "")
    return float(r.p_value), bool(r.details["kind_check"]["suspect_out_of_kind"])


SCENARIOS = [
    # name, n, c_s, c_r, controls' c range, lineages, siblings per lineage, sibling copy prob
    ("exchangeable, matched kind, 5 lineages", 100, 0.5, 0.5, (0.4, 0.6), 5, 1, 0.0),
    ("exchangeable, matched kind, 3 lineages", 100, 0.5, 0.5, (0.4, 0.6), 3, 1, 0.0),
    ("rare agreement (discrete floor), 4 lineages", 50, 0.02, 0.02, (0.0, 0.04), 4, 1, 0.0),
    ("sibling controls: 4 lineages x 3 students", 100, 0.5, 0.5, (0.4, 0.6), 4, 3, 0.8),
    ("S and R stronger than controls (0.8 vs 0.2-0.4), 5 lineages", 200, 0.8, 0.8, (0.2, 0.4), 5, 1, 0.0),
    ("S and R weaker than controls (0.3 vs 0.6-0.8), 5 lineages", 200, 0.3, 0.3, (0.6, 0.8), 5, 1, 0.0),
    ("R stronger than S and controls (0.8 vs 0.3, 0.2-0.4), 5 lineages", 200, 0.3, 0.8, (0.2, 0.4), 5, 1, 0.0),
]


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = np.random.default_rng(2026)
    print(f"{reps} replicates per scenario; valid at level a means P(p < a) <= a (up to Monte Carlo error)")
    for name, n, cs, cr, cc, lin, sibs, sib in SCENARIOS:
        null = np.array([run(rng, n, cs, cr, cc, lin, sibs, sib, 0.0) for _ in range(reps)], dtype=float)
        power = np.array([run(rng, n, cs, cr, cc, lin, sibs, sib, 0.3) for _ in range(max(100, reps // 5))], dtype=float)
        flag0 = (null[:, 0] < 0.01) & (null[:, 1] == 0)
        flag1 = (power[:, 0] < 0.01) & (power[:, 1] == 0)
        print(f"- {name}: H0 P(p<0.01) = {np.mean(null[:, 0] < 0.01):.4f}, P(p<0.05) = {np.mean(null[:, 0] < 0.05):.4f}, "
              f"flagged after the kind check {np.mean(flag0):.4f}; student q=0.3: P(p<0.01) = "
              f"{np.mean(power[:, 0] < 0.01):.2f}, flagged after the kind check {np.mean(flag1):.2f}")


if __name__ == "__main__":
    main()
