"""Likelihood from the outside with capable scorers: can a text-only suspect's sampled answers show its teacher?

Protocol, fixed and committed before any score below was computed (2026-11-30, 13:30 UTC; issue #18's done-when item,
a chat-only student of SmolLM2 flagged; an exploration for a text-only family, not a validation).

Question. With text access only, the suspect S's sampled answers are all there is. The text-only candidate
(`stats/text_likelihood.py`: the reference R and the control units score S's answers and each other's) found 0 of 7
students in bench/capable_sources.py: the units that set its baseline are tiny models, whose scores measure fluency
more than lineage (the same confound version 3 removed inside, by capable comparison sources). Construction tried
here ("capable outside", the transpose of `stats/capable_likelihood.py`): scorers R and capable models independent of
R (the other packaged teachers j); sources S's answers and each control unit's. Per prompt, the mean of every
admissible tetrad x(R, S) - x(j, S) - x(R, i) + x(j, i) over sources j and control units i, leaving out (j, i) when
i's lineage is j's (a teacher scoring its students' text). Each control unit in S's seat, against the other units,
gives the null; `prediction_test` as everywhere (Student-t, df = units - 1, with prompt error, and the exact rank p).
S's lineage is unknown to an audit, so nothing of S's column is left out.

Data: both sets of bench/capable_sources.py as they are cached (its 16 models per set, their 120 sampled answers to
the test prompts at temperature 1, 48 new tokens); every model as S against each teacher as R; the controls are every
other model whose lineage is neither S's nor R's, one unit per lineage. Related: S a student of R (12 per set), null:
the rest (36 per set). New here: the packaged teachers' scores of every trained model's answers (SmolLM2's exist).
Those models were seen before (bench/capable_sources.py, the inside direction); nothing of the outside direction with
capable scorers was. Outcome: flagged at one-sided p < 0.01 and < 0.05, related and null, per set. Expectation stated
in advance: fewer students found than inside (sampled text at temperature 1 carries less of the teacher than the
student's own log-likelihoods), and at most one null case flagged per set. Whatever comes out is reported as it is.

Usage: python bench/capable_outside.py [--set dev|heldout|both]   (the teachers' scoring: about 10-20 minutes per set
on 2 cores; resumable)
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common  # noqa: F401 - sets up the import path
from _common import machine, write_results
from capable_sources import SETS, TEACHERS, models_plan, score_all

CACHE = Path.home() / ".cache" / "provenance"


def outside_tetrad(x: dict[str, dict[str, np.ndarray]], lineage: dict[str, str], suspect: str, ref: str,
                   names: list[str]) -> dict[str, Any] | None:
    """The suspect's seat and each control unit's, as the docstring says; x[scorer][source] per prompt."""
    from provenance.stats.nulls import prediction_test

    units: dict[str, list[str]] = {}
    for m in names:
        if m != suspect and lineage[m] not in (lineage[suspect], ref):
            units.setdefault(lineage[m], []).append(m)
    keys = sorted(units)
    if len(keys) < 3:
        return None
    from provenance.stats.capable_likelihood import tetrad_seat

    scorers = [t for t in TEACHERS if t != ref]
    # The table transposed (cell[source node][scorer]), so capable_likelihood's tetrad x(r, R) - x(r, j) - x(i, R) +
    # x(i, j) reads x(R, S) - x(j, S) - x(R, i) + x(j, i). A unit is never scored by its own teacher; the seat, as the
    # suspect whose lineage is unknown, is scored by every teacher.
    cell = {node: {sc: np.mean([x[sc][m] for m in ([suspect] if node == "@S" else units[node])], axis=0)
                   for sc in TEACHERS} for node in ["@S", *keys]}
    masked = {u: {sc for sc in TEACHERS if sc != u} for u in keys}

    def seat(node: str, others: list[str]) -> tuple[float, float]:
        g = tetrad_seat(cell, node, others, ref, scorers, {**masked, node: set(TEACHERS)})
        if g is None:
            return math.nan, math.nan
        g = g[np.isfinite(g)]
        return float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size))

    obs, obs_se = seat("@S", keys)
    null = [(u, *seat(u, [o for o in keys if o != u])) for u in keys]
    null = [n for n in null if math.isfinite(n[1])]
    pt = prediction_test(obs, [v for _, v, _ in null], se_observed=obs_se, se_null=[s for _, _, s in null],
                         units=[u for u, _, _ in null])
    if pt is None:
        return None
    return {"p": pt.p_value, "rank_p": pt.rank_p, "t": pt.t, "df": pt.df, "observed": obs,
            "null": {u: v for u, v, _ in null}}


def run_set(name: str) -> dict[str, Any]:
    cfg = SETS[name]
    out = CACHE / ("bench-capable-sources" if name == "dev" else f"bench-capable-sources-{name}")
    import json

    plan = models_plan(cfg)
    trained = [m["name"] for m in plan]
    lineage = {m["name"]: m["lineage"] for m in plan}
    answers = {n: json.loads((out / f"answers-{n}-test.json").read_text()) for n in trained}
    raw = {t: score_all(out, cfg, t, TEACHERS[t], answers) for t in TEACHERS}
    x = {t: {n: np.asarray(raw[t][n], dtype=float) for n in trained} for t in TEACHERS}
    rows = []
    for ref in TEACHERS:
        for s in trained:
            r = outside_tetrad(x, lineage, s, ref, trained)
            rows.append({"suspect": s, "reference": ref, "related": lineage[s] == ref, "outside": r})
    summary = {}
    for rel in (True, False):
        ps = [r["outside"]["p"] for r in rows if r["related"] == rel and r["outside"]]
        summary["related" if rel else "null"] = {"n": len(ps), "p<0.01": int(sum(p < 0.01 for p in ps)),
                                                 "p<0.05": int(sum(p < 0.05 for p in ps))}
    return {"rows": rows, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["dev", "heldout", "both"], default="both")
    args = ap.parse_args()
    info = machine()
    t0 = time.time()
    sets = ["dev", "heldout"] if args.set == "both" else [args.set]
    got = {s: run_set(s) for s in sets}
    for s, g in got.items():
        for k, v in g["summary"].items():
            print(f"{s:8s} {k:8s} n={v['n']:3d}  p<0.01: {v['p<0.01']:3d}  p<0.05: {v['p<0.05']:3d}")
    write_results("capable-outside", {"machine": info, "seconds": time.time() - t0, "sets": got})


if __name__ == "__main__":
    main()
