"""Null and power simulation of the likelihood family with capable comparison sources (bench/capable_sources.py).

Construction simulated (as `bench/capable_sources.py:inside` computes it): scorers are the suspect S and the control
lineage units; sources are the reference R and the other capable teachers A and B; cells whose scorer and source
share a lineage are left out (a unit of A's students never scores A's answers; S's lineage is unknown, so S's row is
never masked); the statistic is the double-centred (S, R) interaction of per-byte log-likelihoods, mean over prompts;
each unit in S's seat, against the other units, gives the null; `prediction_test` compares.

Model (nats per byte): scorer i has competence c_i (controls ~ N(0, 0.15)), offset a_i = c_i and sharpness
s_i = exp(GAMMA c_i); source j's answer to prompt p has quality q(j, p) = b_j + pi_p + eta(j, p). Then

    x(i, j, p) = a_i + s_i q(j, p) + e(i, p) + L [i a student of j] + D(i, j) + eps

with prompt difficulty pi ~ N(0, 0.2), answer quality eta ~ N(0, 0.25), scorer x prompt e ~ N(0, 0.1), residual
eps ~ N(0, 0.05), teacher effect L (a student's extra liking for its own teacher's answers; 0.3 unless stated), and a
pair effect D(i, j) ~ N(0, TAU) between a scorer's training data and a source's style (TAU = 0.05: the spread that
decides the null). A unit holds 2 students of one teacher (each its own c, D) or 1 teacher-free model. Teachers'
fluency b ~ N(0, 0.15) around a common level.

H0 scenarios: S independent of R (teacher-free; a student of A with or without A's students among the controls; a
student of a teacher C that is not a source; S sharper than the controls; R's answers far more fluent than A's and
B's; pair effects twice as large; the sources' fluency twice as spread; S sharper and R more fluent at once). H1: S a student of R with teacher effect 0.1, 0.2 or 0.3.
Two statistics on each table: "masked" (the double-centred interaction with related cells left out, as
`bench/capable_sources.py:inside`) and "tetrad" (the mean of every admissible tetrad, `capable_sources.py:tetrad`).
Prints P(p < 0.01) and P(p < 0.05) with 95% Clopper-Pearson intervals, for 2 or 4 teacher-free units beside the
students of A and B, and n = 40 or 120 prompts.
Run: nice -n 19 python3 bench/sims/capable_sources_null.py [reps]   (output: bench/results/sim-capable-sources.txt)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from provenance.stats.capable_likelihood import tetrad_seat  # noqa: E402
from provenance.stats.nulls import interaction, prediction_test  # noqa: E402

SD_C, GAMMA, TAU = 0.15, 1.0, 0.05
SD_PROMPT, SD_ANSWER, SD_SCORER_PROMPT, SD_EPS, SD_B = 0.2, 0.25, 0.1, 0.05, 0.15
TEACHERS = ("R", "A", "B")

SCENARIOS: dict[str, dict[str, Any]] = {
    "H0 S teacher-free": {"s_teacher": None},
    "H0 S student of A, A's students among controls": {"s_teacher": "A", "keep_sibling": True},
    "H0 S student of A, A's students not in controls": {"s_teacher": "A", "keep_sibling": False},
    "H0 S student of C (not a source)": {"s_teacher": "C"},
    "H0 S sharper than controls (+0.3 competence)": {"s_teacher": None, "s_comp": 0.3},
    "H0 R's answers more fluent by 0.4": {"s_teacher": None, "b_r": 0.4},
    "H0 pair effects twice as large": {"s_teacher": None, "tau": 2 * TAU},
    "H0 sources' fluency spread 0.3 (not 0.15)": {"s_teacher": None, "sd_b": 0.3},
    "H0 S sharper (+0.3) and R more fluent (+0.4)": {"s_teacher": None, "s_comp": 0.3, "b_r": 0.4},
    "H1 student of R, L = 0.1": {"s_teacher": "R", "l_s": 0.1},
    "H1 student of R, L = 0.2": {"s_teacher": "R", "l_s": 0.2},
    "H1 student of R, L = 0.3": {"s_teacher": "R", "l_s": 0.3},
}


def one(rng: np.random.Generator, sc: dict[str, Any], free_units: int, n: int) -> tuple[float, float]:
    """(p of the masked interaction, p of the tetrad mean) on one simulated table."""
    tau = sc.get("tau", TAU)
    b = {t: rng.normal(0, sc.get("sd_b", SD_B)) for t in TEACHERS}
    b["R"] += sc.get("b_r", 0.0)
    pi = rng.normal(0, SD_PROMPT, n)
    q = {t: b[t] + pi + rng.normal(0, SD_ANSWER, n) for t in TEACHERS}
    # Scorers: S, then units of students of A and of B (2 members each), then teacher-free units (1 member each).
    members: dict[str, list[tuple[str | None, float]]] = {}
    if sc["s_teacher"] != "A" or sc.get("keep_sibling", True):
        members["uA"] = [("A", rng.normal(0, SD_C)) for _ in range(2)]
    members["uB"] = [("B", rng.normal(0, SD_C)) for _ in range(2)]
    for k in range(free_units):
        members[f"t{k}"] = [(None, rng.normal(0, SD_C))]
    s_teacher = sc["s_teacher"]
    s_c = rng.normal(0, SD_C) + sc.get("s_comp", 0.0)

    def scores(teacher: str | None, c: float, l_own: float) -> dict[str, np.ndarray]:
        e = rng.normal(0, SD_SCORER_PROMPT, n)
        s = np.exp(GAMMA * c)
        return {j: c + s * q[j] + e + (l_own if teacher == j else 0.0) + rng.normal(0, tau)
                + rng.normal(0, SD_EPS, n) for j in TEACHERS}

    rows = {"S": scores(s_teacher, s_c, sc.get("l_s", 0.3))}
    for u, ms in members.items():
        each = [scores(t, c, 0.3) for t, c in ms]
        rows[u] = {j: np.mean([x[j] for x in each], axis=0) for j in TEACHERS}
    lineage = {u: ms[0][0] for u, ms in members.items()}  # a unit's teacher (None: teacher-free)

    def cell(i: str, j: str) -> np.ndarray:
        return rows[i][j]

    def related(i: str, j: str) -> bool:
        return i != "S" and lineage.get(i) == j  # S's lineage is unknown to the audit

    units = sorted(members)

    def masked(row: str, others: list[str]) -> np.ndarray:
        return np.asarray(interaction(cell, row, "R", [row, *others], list(TEACHERS), related))

    reads = {i: {j for j in TEACHERS if not related(i, j)} for i in ["S", *units]}

    def tetrads(row: str, others: list[str]) -> np.ndarray:
        got = tetrad_seat(rows, row, others, "R", TEACHERS[1:], reads)
        assert got is not None
        return got

    out = []
    for stat in (masked, tetrads):
        vals = [stat(r, [o for o in units if o != r] if r != "S" else units) for r in ["S", *units]]
        means = [float(g.mean()) for g in vals]
        ses = [float(g.std(ddof=1) / np.sqrt(n)) for g in vals]
        pt = prediction_test(means[0], means[1:], se_observed=ses[0], se_null=ses[1:])
        out.append(1.0 if pt is None else pt.p_value)
    return out[0], out[1]


def ci(k: int, n: int) -> str:
    lo = beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k / n:.3f} ({lo:.3f}-{hi:.3f})"


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    t0 = time.process_time()
    lines = [f"capable-sources null/power simulation, {reps} replicates per cell (H1: {reps // 4}); "
             f"columns: teacher-free units (besides A's and B's students), prompts; P(p<0.01) and P(p<0.05) "
             f"with 95% Clopper-Pearson intervals", ""]
    rng = np.random.default_rng(20261130)
    for name, sc in SCENARIOS.items():
        r = reps // 4 if name.startswith("H1") else reps
        for free in (2, 4):
            for n in (40, 120):
                ps = np.array([one(rng, sc, free, n) for _ in range(r)])
                for k, stat in enumerate(("masked", "tetrad")):
                    lines.append(f"{name:50s} {stat:6s} free={free} n={n:3d}  "
                                 f"p<0.01: {ci(int((ps[:, k] < 0.01).sum()), r)}  "
                                 f"p<0.05: {ci(int((ps[:, k] < 0.05).sum()), r)}")
                    print(lines[-1], flush=True)
    lines.append("")
    lines.append(f"CPU seconds: {time.process_time() - t0:.0f}")
    out = Path(__file__).resolve().parents[1] / "results" / "sim-capable-sources.txt"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
