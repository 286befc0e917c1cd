"""The study's statistics: error rates with exact intervals, a lineage-cluster bootstrap, the likelihood ratio's bound."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from provenance.verdict import FLAGGED

LEVELS = (0.05, 0.01)
CONFIDENCE = 0.95
LR_TARGET = 100  # protocol, section 5: ENFSI "strong support" starts there
# Bands of one test's p for its own likelihood ratio (upper edges; the last band runs to 1). Fixed in session 17 after
# the v2 study's rows were seen, before the v3 study was summarised; conventional edges, not tuned to any row.
P_BANDS = (0.001, 0.01, 0.05)


def clopper_pearson(k: int, n: int, conf: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate (k of n)."""
    from scipy.stats import beta  # here, not at import: every audit's report imports this module, few call it

    if n == 0:
        return (0.0, 1.0)
    a = 1 - conf
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return (lo, hi)


def one_sided(k: int, n: int, conf: float, upper: bool) -> float:
    """Exact one-sided bound: the rate is below `upper` (or above the lower) bound with confidence `conf`."""
    from scipy.stats import beta

    if n == 0:
        return 1.0 if upper else 0.0
    if upper:
        return 1.0 if k == n else float(beta.ppf(conf, k + 1, n - k))
    return 0.0 if k == 0 else float(beta.ppf(1 - conf, k, n - k + 1))


def round_down(x: float, digits: int) -> float:
    """A lower bound shown to `digits` decimals: cut, never rounded up (99.96 is not shown as 100.0, a target)."""
    # round(..., 9) first: 0.29 * 100 is 28.999999999999996 in binary, which must still read 0.29.
    return math.floor(round(x * 10**digits, 9)) / 10**digits


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n)
    return {"k": k, "n": n, "rate": (k / n) if n else None, "ci95": [lo, hi],
            "upper95_one_sided": one_sided(k, n, CONFIDENCE, upper=True)}


def likelihood_ratio(k1: int, n1: int, k0: int, n0: int) -> dict[str, Any]:
    """LR of a flag = detection rate / false-positive rate, with a one-sided 95% lower bound: the detection rate's
    one-sided 97.5% lower bound over the false-positive rate's one-sided 97.5% upper bound (Bonferroni over the two)."""
    tpr = k1 / n1 if n1 else None
    fpr = k0 / n0 if n0 else None
    # 0 detected over 0 false positives is 0/0: undefined, not infinite (only a positive rate over 0 is infinite).
    point = (None if tpr is None or fpr is None or (tpr == 0 and fpr == 0)
             else math.inf if fpr == 0 else tpr / fpr)
    lo_t = one_sided(k1, n1, 1 - (1 - CONFIDENCE) / 2, upper=False)
    hi_f = one_sided(k0, n0, 1 - (1 - CONFIDENCE) / 2, upper=True)
    # Protocol, section 5: how many null cases, none flagged, would bring the bound to LR_TARGET with this detection.
    # With 0 of n flagged the upper bound is 1 - a^(1/n) (a = 2.5%): it is at most lo_t / LR_TARGET from
    # n >= ln(a) / ln(1 - lo_t / LR_TARGET).
    need = (math.ceil(math.log((1 - CONFIDENCE) / 2) / math.log1p(-lo_t / LR_TARGET)) if lo_t > 0 else None)
    return {"point": None if point is None or math.isinf(point) else point, "point_infinite": point == math.inf,
            "lower95": lo_t / hi_f if hi_f > 0 else None, "detection": [k1, n1], "false_positive": [k0, n0],
            "null_cases_for_target": {"target": LR_TARGET, "null_cases_none_flagged": need},
            "method": "detection rate's one-sided 97.5% Clopper-Pearson lower bound / false-positive rate's one-sided "
                      "97.5% upper bound (Bonferroni over the two bounds)"}


def band_ratio(k1: int, n1: int, k0: int, n0: int) -> dict[str, Any]:
    """LR of an observation in one band = P(band | related) / P(band | independent), with a one-sided 95% bound on
    the side the point favours: a ratio above 1 gets a lower bound (the related rate's 97.5% lower bound over the null
    rate's 97.5% upper bound), a ratio below 1 an upper bound (the reverse). None where a rate has no cases."""
    r1, r0 = (k1 / n1, k0 / n0) if n1 and n0 else (0.0, 0.0)
    if r1 == r0 == 0:  # a rate with no cases, or no case of either kind in the band: nothing to divide
        return {"point": None, "bound": None, "side": None, "related": [k1, n1], "null": [k0, n0]}
    c = 1 - (1 - CONFIDENCE) / 2
    point = math.inf if r0 == 0 else r1 / r0
    if point >= 1:
        hi0 = one_sided(k0, n0, c, upper=True)
        bound, side = (one_sided(k1, n1, c, upper=False) / hi0 if hi0 > 0 else None), "lower"
    else:
        lo0 = one_sided(k0, n0, c, upper=False)
        bound, side = (one_sided(k1, n1, c, upper=True) / lo0 if lo0 > 0 else None), "upper"
    return {"point": None if math.isinf(point) else point, "point_infinite": math.isinf(point), "bound": bound,
            "side": side, "related": [k1, n1], "null": [k0, n0]}


def band_of(p: float) -> int:
    """Index of the P_BANDS band that holds p."""
    return next((i for i, edge in enumerate(P_BANDS) if p < edge), len(P_BANDS))


def test_bands(null: Sequence[Mapping[str, Any]], related: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per test family, how its raw p fell into P_BANDS among related and null rows (where it ran), and each band's
    likelihood ratio: what one test's p is worth on its own. The tests are not independent: these ratios must not be
    multiplied (the classification's ratio is the one that combines them)."""
    out: dict[str, Any] = {}
    for f in sorted({n for r in [*null, *related] for n in r["tests"]}):
        def ps(rows: Sequence[Mapping[str, Any]]) -> list[float]:
            return [r["tests"][f]["p"] for r in rows if f in r["tests"] and r["tests"][f].get("p") is not None]
        p0, p1 = ps(null), ps(related)
        edges = (0.0, *P_BANDS, 1.0)
        bands = []
        for i in range(len(edges) - 1):
            k0, k1 = sum(band_of(p) == i for p in p0), sum(band_of(p) == i for p in p1)
            bands.append({"p_from": edges[i], "p_to": edges[i + 1], **band_ratio(k1, len(p1), k0, len(p0))})
        out[f] = {"ran": {"null": len(p0), "related": len(p1)}, "bands": bands}
    return out


def cluster_bootstrap(rows: Sequence[Mapping[str, Any]], flag: Callable[[Mapping[str, Any]], bool],
                      cluster: Callable[[Mapping[str, Any]], str], reps: int = 2000, seed: int = 0
                      ) -> dict[str, Any]:
    """Percentile 95% interval of the rate when whole clusters (lineage families) are resampled: cases that share a
    family are not independent, and this interval widens where they agree with each other."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        groups[cluster(r)].append(bool(flag(r)))
    keys = sorted(groups)
    if not keys:
        return {"clusters": 0, "ci95": [0.0, 1.0]}
    k = np.array([sum(groups[g]) for g in keys], dtype=float)
    n = np.array([len(groups[g]) for g in keys], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(keys), size=(reps, len(keys)))
    rates = k[idx].sum(1) / n[idx].sum(1)
    return {"clusters": len(keys), "ci95": [float(np.quantile(rates, 0.025)), float(np.quantile(rates, 0.975))],
            "reps": reps}


def flagged(r: Mapping[str, Any]) -> bool:
    return r["verdict"] in FLAGGED


def suspect_family(r: Mapping[str, Any]) -> str:
    return r["families"]["suspect"][0]


def reasons(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Why verdicts were `inconclusive` (protocol, section 4), most frequent first: each reason with its numbers
    replaced by '#', so that one rule's reason counts once whatever values the case gave it."""
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["verdict"] == "inconclusive":
            counts[re.sub(r"\d+(?:\.\d+)?(?:e-?\d+)?", "#", str(r.get("reason") or "no reason given"))[:200]] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def null_block(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """False positives among null rows: the decision, the combined p at each level, every family's raw p."""
    fams = sorted({n for r in rows for n in r["tests"]})
    comb = [r["p_unadjusted"] for r in rows if r["p_unadjusted"] is not None]
    out: dict[str, Any] = {
        "n": len(rows),
        "lineages": len({f for r in rows for role in ("suspect", "reference") for f in r["families"][role]}),
        "decision": rate(sum(flagged(r) for r in rows), len(rows)),
        "decision_cluster_bootstrap": cluster_bootstrap(rows, flagged, suspect_family),
        # Over the rows that have a combined p (as for each family below): an error row or one where nothing could
        # decide has none, and counting it in the denominator would treat it as p = 1 without saying so.
        "combined": {"ran": len(comb), **{str(a): rate(sum(p < a for p in comb), len(comb)) for a in LEVELS}},
        "families": {},
        "inconclusive": sum(r["verdict"] == "inconclusive" for r in rows),
        "inconclusive_reasons": reasons(rows),
        "errors": sum(r["verdict"] == "error" for r in rows),
    }
    for f in fams:
        ps = [r["tests"][f]["p"] for r in rows if f in r["tests"] and r["tests"][f]["p"] is not None]
        out["families"][f] = {"ran": len(ps), **{str(a): rate(sum(p < a for p in ps), len(ps)) for a in LEVELS}}
    return out


def related_block(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["relation_kind"] or "?"].append(r)
    right = sum(r["verdict"] == r["truth"] for r in rows if flagged(r))
    return {"n": len(rows), "detected": rate(sum(flagged(r) for r in rows), len(rows)),
            "label_right_when_flagged": [right, sum(flagged(r) for r in rows)],
            "inconclusive": sum(r["verdict"] == "inconclusive" for r in rows),
            "inconclusive_reasons": reasons(rows),
            "errors": sum(r["verdict"] == "error" for r in rows),
            "by_kind": {k: rate(sum(flagged(r) for r in v), len(v)) for k, v in sorted(by_kind.items())}}


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every (split, budget, access) cell: false positives, detection by kind, and the LR of a flag."""
    cells: dict[tuple[str, int, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        for split in ("all", r["split"]):
            cells[(split, r["budget"], r["access"])].append(r)
    out: list[dict[str, Any]] = []
    for (split, budget, access), rs in sorted(cells.items()):
        null = [r for r in rs if r["type"] == "null"]
        rel = [r for r in rs if r["type"] == "related"]
        nb, rb = null_block(null), related_block(rel)
        out.append({"split": split, "budget": budget, "access": access, "null": nb, "related": rb,
                    "likelihood_ratio": likelihood_ratio(rb["detected"]["k"], rb["detected"]["n"],
                                                         nb["decision"]["k"], nb["decision"]["n"]),
                    "tests": test_bands(null, rel)})
    return {"cells": out}


def qq_plot(rows: Sequence[Mapping[str, Any]], path: Any, title: str, only: str | None = None) -> None:
    """Null p-values of each family against the uniform, on log axes (points below the diagonal: anticonservative);
    `only`: that family alone (protocol, section 4: one plot per family, beside the one with every family)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = sorted({n for r in rows for n in r["tests"]})
    series = {f: sorted(r["tests"][f]["p"] for r in rows if f in r["tests"] and r["tests"][f]["p"] is not None)
              for f in fams}
    series["combined (unadjusted)"] = sorted(r["p_unadjusted"] for r in rows if r["p_unadjusted"] is not None)
    if only is not None:
        series = {only: series.get(only, [])}
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo = 1.0
    for name, ps in series.items():
        if not ps:
            continue
        n = len(ps)
        expected = (np.arange(1, n + 1) - 0.5) / n
        obs = np.maximum(np.array(ps), 1e-6)
        lo = min(lo, float(expected[0]), float(obs.min()))
        ax.plot(-np.log10(expected), -np.log10(obs), ".", ms=3, label=f"{name} (n={n})")
    top = -math.log10(max(lo, 1e-6)) * 1.05
    ax.plot([0, top], [0, top], "k-", lw=0.8)
    for a in LEVELS:
        ax.axhline(-math.log10(a), color="grey", lw=0.5, ls=":")
    ax.set_xlabel("expected -log10 p (uniform)")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(title, fontsize=9)
    if any(series.values()):
        ax.legend(fontsize=7, loc="upper left")
    else:  # a family that never ran among these rows: say so rather than draw an empty square
        ax.text(0.5, 0.5, "no p-values (the family did not run)", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
