"""The evaluation a report leads with: the propositions, a likelihood ratio from the validation record, its verbal band."""

from __future__ import annotations

from typing import Any, Mapping

from provenance.study.summary import CONFIDENCE, band_of, band_ratio, one_sided, round_down

# ENFSI guideline for evaluative reporting (2015), verbal equivalents of a likelihood ratio.
BANDS = ((1_000_000, "extremely strong support"), (10_000, "very strong support"), (1_000, "strong support"),
         (100, "moderately strong support"), (10, "moderate support"), (2, "weak support"))


def band(lr: float) -> str:
    for floor, words in BANDS:
        if lr >= floor:
            return words
    return "no meaningful support (a likelihood ratio below 2)"


def evaluation(results: Mapping[str, Any]) -> dict[str, Any]:
    """What the findings are worth under the two propositions, as far as the validation record measured it.

    The record gives error rates of the tool's classification (flag or not), so the ratio evaluates that outcome, not
    every number in the bundle; it is a one-sided 95% bound, never a point estimate, and absent when no record applies.
    """
    props = results.get("propositions") or {}
    val = results.get("validation") or {}
    refs = results.get("references") or []
    out: dict[str, Any] = {"propositions": props, "available": False, "statement": None, "band": None, "lr": None,
                           "favours": None, "basis": val.get("summary"), "reason": val.get("reason"),
                           "per_test": per_test(results)}
    if not val.get("matched"):
        out["reason"] = (val.get("reason") or "the tool's error rates for this version were not measured; treat the "
                         "verdict as a screening result") + "; no strength of evidence is stated"
        return out
    verdicts = {r["verdict"] for r in refs}
    entry = val["entry"]
    k1, n1 = entry["related"]["detected"]["k"], entry["related"]["detected"]["n"]
    k0, n0 = entry["null"]["decision"]["k"], entry["null"]["decision"]["n"]
    if verdicts & {"derived", "distilled"}:
        lr = entry["likelihood_ratio"].get("lower95")
        if lr is None:
            out["reason"] = "the validation record gives no bound for a flag under these conditions"
            return out
        # The bound is cut, not rounded: "at least 100" from a bound of 99.6 would claim more than was measured.
        out.update(available=True, lr=lr, band=band(lr), favours="H1", statement=(
            f"The tool's finding (a flag) is at least {round_down(lr, 0):,.0f} times more probable if the suspect "
            f"descends from the reference than if it was developed independently (one-sided {CONFIDENCE:.0%} bound "
            f"from the validation study: flagged in {k1} of {n1} related and {k0} of {n0} independent cases). This is "
            f"{band(lr)} for H1 over H0."))
    elif verdicts == {"no_evidence"}:
        # A non-flag: P(no flag | H1) / P(no flag | H0); conservative support for H0 uses detection's lower bound.
        miss_hi = 1 - one_sided(k1, n1, 1 - (1 - CONFIDENCE) / 2, upper=False)
        keep_lo = 1 - one_sided(k0, n0, 1 - (1 - CONFIDENCE) / 2, upper=True)
        support = keep_lo / miss_hi if miss_hi > 0 else None
        if support is None:
            out["reason"] = "the record's detection rate leaves no bound for a non-flag"
            return out
        out.update(available=True, lr=1 / support, band=band(support), favours="H0", statement=(
            f"The tool's finding (no flag) is at least {round_down(support, 1):,.1f} times more probable if the "
            f"suspect was developed independently than if it descends from the reference (one-sided "
            f"{CONFIDENCE:.0%} bound: missed in {n1 - k1} of {n1} related cases, not flagged in {n0 - k0} of {n0} "
            f"independent cases). This is {band(support)} for H0 over H1; it cannot exclude a descendant the study's "
            f"kinds did not include."))
    else:
        out["reason"] = ("the tool declined to classify (inconclusive; section 2 gives the reason): the result is "
                         "neither a flag nor a clean non-flag, so no strength of evidence is stated")
    return out


def _band_words(lo: float, hi: float) -> str:
    return f"p < {hi:g}" if lo == 0 else f"p \u2265 {lo:g}" if hi >= 1 else f"{lo:g} \u2264 p < {hi:g}"


def per_test(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each test's own p, evaluated alone: the validation record's related and null cases whose p for that test fell in
    the same band (P_BANDS), and that band's likelihood ratio with its one-sided 95% bound. Empty when the matched
    record has no per-test bands (records written before they existed) or no record applies.

    The tests look at one suspect, so their ratios are not independent and must never be multiplied; the
    classification's ratio above is the one that weighs them together."""
    val = results.get("validation") or {}
    record = ((val.get("entry") or {}).get("tests") or {}) if val.get("matched") else {}
    rows: list[dict[str, Any]] = []
    for ref in results.get("references") or []:
        for t in ref.get("tests") or []:
            fam = record.get(t["name"])
            if t.get("skipped") or t.get("p_value") is None or not fam:
                continue
            bands = fam["bands"]
            first = i = band_of(float(t["p_value"]))
            # A p beyond any the study's cases reached (a test run with more permutations than the study's, say)
            # is read in the nearest less extreme band that holds cases: the evidence is at least that band's.
            while i + 1 < len(bands) and bands[i]["related"][0] + bands[i]["null"][0] == 0:
                i += 1
            (k1, n1), (k0, n0) = bands[i]["related"], bands[i]["null"]
            b = band_ratio(k1, n1, k0, n0)
            bound, side = b.get("bound"), b.get("side")
            if bound is None:
                words = "not measured (a rate with no cases)" if not n1 or not n0 else "undefined (no case in this band)"
            elif side == "lower" and bound >= 1:
                words = f"at least {round_down(bound, 1):,.1f} for H1"
            elif side == "upper" and bound <= 1:
                words = f"at least {round_down(1 / bound, 1):,.1f} for H0"
            else:  # the 95% bound lies on the other side of 1: the record cannot say which way this band points
                words = "no direction established at 95%"
            band = _band_words(bands[i]["p_from"], bands[i]["p_to"])
            if i != first:
                band += (f" (read there: no study case had this test's p below {bands[i]['p_from']:g}, and this "
                         f"audit's is {_band_words(bands[first]['p_from'], bands[first]['p_to'])})")
            rows.append({"reference": ref["spec"], "test": t["name"], "p_value": t["p_value"], "band": band,
                         "related": [k1, n1], "null": [k0, n0], "point": b.get("point"),
                         "point_infinite": bool(b.get("point_infinite")), "bound": bound, "side": side,
                         "words": words})
    return rows
