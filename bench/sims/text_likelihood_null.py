"""Null and power simulation of the candidate text-only likelihood family (provenance/stats/text_likelihood.py).

How models differ (nats per byte; magnitudes from the small-zoo bundles where they exist, else stated guesses):
each model has a competence c (controls' lineages ~ N(0, 0.15)). As a scorer it finds all text likelier (offset
a = c) and is sharper (slope s = exp(GAMMA c): it separates good from poor text more strongly); as a source its
answers are more fluent (b = c + N(0, 0.05)). Scorer i's per-byte log-likelihood of source j's answer to prompt p:

    x(i, j, p) = a_i + s_i q(j, p) + e(i, p) + L [same lineage] + D(i, j) + eps,   q(j, p) = b_j + pi_p + eta(j, p)

with prompt difficulty pi ~ N(0, 0.2), the answer's own quality eta ~ N(0, 0.25) (every scorer sees the same answer),
scorer x prompt e ~ N(0, 0.1), residual eps ~ N(0, 0.05) (per-prompt tetrad sd about 0.1 as in the small-zoo bundle),
a lineage effect L = 0.3 (students of one teacher scoring each other's answers: 0.3 in the small zoo), and a pair
effect D ~ N(0, 0.01) between unrelated models (the spread of control tetrads' means there). Yardstick: 12 neutral
passages of difficulty ~ N(0, 0.3); scorer i reads a_i + s_i d_t + N(0, 0.05).

H0 scenarios: the suspect S is of a new lineage, independent of the reference R. H1: on each prompt, with
probability q, S's answer is a fresh sample from R's distribution (R's fluency, and R's lineage effect under R).
Prints P(p < 0.01) and P(p < 0.05) with 95% Clopper-Pearson intervals for each statistic, k control lineages, n
instructions. Run: nice -n 19 python3 bench/sims/text_likelihood_null.py [reps]   (default 2000: 111 CPU-seconds;
output in bench/results/sim-text-likelihood.txt)
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import beta

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from provenance.stats.nulls import prediction_test  # noqa: E402
from provenance.stats.text_likelihood import FLUENCY_MARGIN, SCALED, answer_sharpness, fluency_excess  # noqa: E402
from provenance.stats.text_likelihood import unit_values, yardstick_sharpness  # noqa: E402

SD_C, GAMMA, L, TAU0 = 0.15, 1.0, 0.3, 0.01
SD_PROMPT, SD_ANSWER, SD_SCORER_PROMPT, SD_EPS = 0.2, 0.25, 0.1, 0.05
PASSAGES, SD_PASSAGE, SD_PASSAGE_NOISE = 12, 0.3, 0.05
STATS = ("interaction", "sign", "scaled_yardstick", "scaled_answers")
KS, NS = (3, 4, 6), (20, 50, 100)


@dataclass(frozen=True)
class Scenario:
    name: str
    strong: float = 0.0  # S and R both this far above the controls' mean competence
    gamma: float = GAMMA  # sharpness per unit of competence (0: competence is additive main effects only)
    siblings: int = 1  # students per control lineage
    lineage_spread: bool = False  # lineage effect drawn per lineage from U(0.1, 1.0) instead of 0.3
    shared_data: float = 0.0  # weight of data-mix overlap (Dirichlet mixes over 4 corpora), all pairs alike
    sr_shared: float = 0.0  # extra affinity between S and R only: a corpus the two share and the controls lack
    q: float = 0.0  # H1: share of S's answers drawn from R's distribution
    sharp_quality: bool = True  # sharpness stretches each answer's and passage's quality too, not only fluency


SCENARIOS = (
    Scenario("H0 competence main effects and sharpness, kinds exchangeable"),
    Scenario("H0 shared training data (data-mix overlap, all pairs alike)", shared_data=0.15),
    Scenario("H0 sibling controls: 3 students per lineage, lineage effects 0.1-1.0", siblings=3, lineage_spread=True),
    Scenario("H0 S and R stronger (+0.45), additive competence only", strong=0.45, gamma=0.0),
    Scenario("H0 S and R stronger (+0.45), with sharpness", strong=0.45),
    Scenario("H0 S and R stronger (+0.45), sharpness on fluency only (misspecified)", strong=0.45,
             sharp_quality=False),
    Scenario("H0 S and R share a corpus the controls lack (+0.05)", sr_shared=0.05),
    Scenario("H1 student, q = 0.3 of answers R-like", q=0.3),
    Scenario("H1 student, q = 0.1 of answers R-like", q=0.1),
    Scenario("H1 student q = 0.3, S and R stronger (+0.45), with sharpness", q=0.3, strong=0.45),
)


def simulate(rng: np.random.Generator, sc: Scenario, k: int, n: int, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch of replicates: the unit table [reps, 1 + k, 1 + k, n] and the scorer units' yardstick sharpness."""
    j = sc.siblings
    m = 2 + k * j  # models: S, R, then the control members, lineage by lineage
    unit = np.r_[-1, -2, np.repeat(np.arange(k), j)]  # lineage ids (S and R have their own)
    c_unit = rng.normal(0, SD_C, (reps, k))
    c = np.concatenate([rng.normal(sc.strong, SD_C, (reps, 2)),
                        c_unit[:, unit[2:]] + (rng.normal(0, 0.03, (reps, k * j)) if j > 1 else 0.0)], axis=1)
    s = np.exp(sc.gamma * c)
    b = c + rng.normal(0, 0.05, (reps, m))
    qual = b[:, :, None] + rng.normal(0, SD_PROMPT, (reps, 1, n)) + rng.normal(0, SD_ANSWER, (reps, m, n))
    lin_eff = rng.uniform(0.1, 1.0, (reps, k)) if sc.lineage_spread else np.full((reps, k), L)
    same = (unit[:, None] == unit[None, :]) & (unit[:, None] >= 0)
    bonus = np.where(same[None], lin_eff[:, np.maximum(unit, 0)][:, :, None], 0.0)[..., None]  # [reps, m, m, 1]
    d = rng.normal(0, TAU0, (reps, m, m))
    pair = (d + d.transpose(0, 2, 1)) / np.sqrt(2)  # symmetric: shared habits are mutual
    if sc.shared_data:
        mix = rng.dirichlet(np.full(4, 0.5), (reps, m))
        mix[:, 2:] = mix[:, 2 + np.repeat(np.arange(k), j) * j]  # a lineage's students share their teacher's data
        pair = pair + sc.shared_data * np.einsum("rac,rbc->rab", mix, mix)
    pair[:, 0, 1] += sc.sr_shared
    pair[:, 1, 0] += sc.sr_shared
    r_like = np.zeros((reps, n), dtype=bool)
    if sc.q:
        r_like = rng.random((reps, n)) < sc.q
        fresh = b[:, 1, None] + (qual[:, 0] - b[:, 0, None])  # same prompt difficulty and answer noise, R's fluency
        qual[:, 0] = np.where(r_like, fresh, qual[:, 0])
    scorers, sources = np.r_[1, 2:m], np.r_[0, 2:m]
    # What a sharper scorer stretches: each answer's whole quality (the rows-linear model the scaled statistics assume),
    # or, misspecified, only the sources' systematic fluency, while answer-to-answer differences read alike.
    fluency = np.broadcast_to(b[:, :, None], qual.shape).copy()
    fluency[:, 0] = np.where(r_like, b[:, 1, None], b[:, 0, None])
    stretched = qual if sc.sharp_quality else fluency
    x = (c[:, scorers, None, None] + s[:, scorers, None, None] * stretched[:, None, sources, :]
         + (qual - stretched)[:, None, sources, :]
         + rng.normal(0, SD_SCORER_PROMPT, (reps, scorers.size, 1, n)) + bonus[:, scorers][:, :, sources]
         + pair[:, scorers][:, :, sources, None] + rng.normal(0, SD_EPS, (reps, scorers.size, sources.size, n)))
    x[:, 0, 0] += L * r_like  # R's own lineage effect on the answers S took from R's distribution
    # Units: a scorer unit averages its students' scores, a source unit their answers' scores.
    table = np.empty((reps, 1 + k, 1 + k, n))
    table[:, 0, 0] = x[:, 0, 0]
    table[:, 0, 1:] = x[:, 0, 1:].reshape(reps, k, j, n).mean(axis=2)
    table[:, 1:, 0] = x[:, 1:, 0].reshape(reps, k, j, n).mean(axis=2)
    table[:, 1:, 1:] = x[:, 1:, 1:].reshape(reps, k, j, k, j, n).mean(axis=(2, 4))
    passages = rng.normal(0, SD_PASSAGE, (reps, 1, PASSAGES))
    prof = (c[:, scorers, None] + (s[:, scorers, None] if sc.sharp_quality else 1.0) * passages
            + rng.normal(0, SD_PASSAGE_NOISE, (reps, scorers.size, PASSAGES)))
    flat = yardstick_sharpness(prof)
    sharp = np.concatenate([flat[:, :1], flat[:, 1:].reshape(reps, k, j).mean(axis=2)], axis=1)
    return table, sharp


def p_values(table: np.ndarray, sharp: np.ndarray, statistic: str) -> np.ndarray:
    """The package's own statistic and prediction test, replicate by replicate."""
    if statistic == "scaled_answers":
        sharp = answer_sharpness(table)
    t = table / sharp[:, :, None, None] if statistic in SCALED else table
    vals = unit_values(t, statistic)  # type: ignore[arg-type]
    means = vals.mean(axis=-1)
    ses = vals.std(axis=-1, ddof=1) / np.sqrt(vals.shape[-1])
    out = np.empty(len(means))
    for r in range(len(means)):
        pt = prediction_test(float(means[r, 0]), means[r, 1:], se_observed=float(ses[r, 0]), se_null=ses[r, 1:])
        out[r] = 1.0 if pt is None else pt.p_value
    return out


def kinds_matched(table: np.ndarray) -> np.ndarray:
    """The candidate kind check from the outside: the suspect's answers' fluency within the controls' range."""
    f = fluency_excess(table)
    lo, hi = f[:, 1:].min(axis=1), f[:, 1:].max(axis=1)
    margin = np.maximum(FLUENCY_MARGIN, 0.25 * (hi - lo))
    return (f[:, 0] >= lo - margin) & (f[:, 0] <= hi + margin)


def rate(hit: np.ndarray) -> str:
    """Share of replicates, with a 95% Clopper-Pearson interval."""
    x, total = int(np.sum(hit)), hit.size
    lo = beta.ppf(0.025, x, total - x + 1) if x else 0.0
    hi = beta.ppf(0.975, x + 1, total - x) if x < total else 1.0
    return f"{x / total:.3f} [{lo:.3f},{hi:.3f}]"


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = np.random.default_rng(20261201)
    start = time.process_time()
    print(f"{reps} replicates per H0 cell, {reps // 4} per H1 cell. Per statistic: P(p < 0.01) and P(p < 0.05) with 95% "
          f"Clopper-Pearson intervals, then P(p < 0.01 and the suspect's fluency within the controls' range)")
    for sc in SCENARIOS:
        print(f"\n## {sc.name}")
        print("k n   " + "".join(f"| {s:<46}" for s in STATS))
        for k in KS:
            for n in NS:
                size = reps // 4 if sc.q else reps
                chunk = max(1, 250 // sc.siblings)
                ps: dict[str, list[np.ndarray]] = {s: [] for s in STATS}
                matched: list[np.ndarray] = []
                for lo in range(0, size, chunk):
                    table, sharp = simulate(rng, sc, k, n, min(chunk, size - lo))
                    matched.append(kinds_matched(table))
                    for s in STATS:
                        ps[s].append(p_values(table, sharp, s))
                ok = np.concatenate(matched)
                cells = []
                for s in STATS:
                    p = np.concatenate(ps[s])
                    cells.append(f"| {rate(p < 0.01)} {rate(p < 0.05)} {np.mean((p < 0.01) & ok):.3f} ")
                print(f"{k} {n:<4}" + "".join(cells))
    print(f"\nCPU {time.process_time() - start:.0f} s")


if __name__ == "__main__":
    main()
