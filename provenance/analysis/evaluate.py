"""Evaluate collected evidence: every registered family per reference, placebos, the budget check, the decision.

This is what `verify` recomputes from a bundle, so it reads nothing but evidence records and plans.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

from provenance.analysis import families as _builtin  # noqa: F401 - registers the built-in families
from provenance.analysis.base import DEFAULT_VERSION, REGISTRY, VERSIONS, PairContext, TestFamily
from provenance.analysis.families import scored, source_units
from provenance.analysis.plans import plan_roles, scaled
from provenance.errors import InputError
from provenance.evidence import UNKNOWN_LINEAGE, ModelEvidence, ProbePlan, competence
from provenance.stats.base import TestResult
from provenance.stats.nulls import MIN_UNITS, Design
from provenance.verdict import ALPHA, FLAGGED, Decision, bonferroni, combine, decide, holm

# Version 2: lineage units, the interaction null, placebos, identity as corroboration (version 1: bundles written
# before 2026-11-29, pairwise nulls; recompute those with the release that wrote them). Version 3: the likelihood
# family compares the reference's answers with capable comparison sources' (stats/capable_likelihood.py) on a larger
# likelihood plan. The default stays 2, the version the validation study measured, until a study of 3 is recorded.
ANALYSIS_VERSION = DEFAULT_VERSION
LATEST_VERSION = max(VERSIONS)
BUDGET_CHECK_FRACTION = 0.5
# A suspect whose competence on the yardstick lies further than this outside the controls' range (nats per byte, or
# a quarter of the range if wider) is not of the controls' kind: a flag against such controls is not trusted.
# Provisional: set before the validation study, which measures how far kinds may differ before the null fails.
COMPETENCE_MARGIN = 0.15


def competence_check(evidence: Mapping[str, ModelEvidence], design: Design, roles: Mapping[str, ProbePlan]
                     ) -> dict[str, Any]:
    """Are the controls of the suspect's kind? Each model's mean per-byte log-likelihood of neutral passages."""
    plan = roles.get("yardstick")
    if plan is None:
        return {"ran": False, "reason": "no yardstick passages were scored", "suspect_outside": False}
    comp = {k: competence(evidence[k], plan) for k in [design.suspect, design.reference, *design.controls]}
    ctrl = [comp[c] for c in design.controls if comp[c] is not None]
    if comp[design.suspect] is None or len(ctrl) < 2:
        return {"ran": False, "competence": comp, "suspect_outside": False,
                "reason": "the suspect, or fewer than two controls, gave no log-likelihoods (competence unmeasured)"}
    lo, hi = min(ctrl), max(ctrl)
    margin = max(COMPETENCE_MARGIN, 0.25 * (hi - lo))

    def outside(v: float | None) -> bool:
        return v is not None and not lo - margin <= v <= hi + margin

    return {"ran": True, "competence": comp, "controls_range": [lo, hi], "margin": margin, "unit": "nats per byte",
            "suspect_outside": outside(comp[design.suspect]), "reference_outside": outside(comp[design.reference]),
            "reason": None}


def outside_competence(ctx: PairContext) -> dict[str, Any] | None:
    """Version 4, for a suspect that gives no log-likelihoods (the competence check cannot run): each answerer's
    fluency, the mean per-byte log-likelihood that the capable comparison sources give its sampled answers to the
    likelihood prompts (a source never scores a model of its own lineage), with the competence check's range rule.
    Controls much weaker than a capable suspect make its greedy answers agree with a capable reference's more than
    theirs do (issue #15: every independent capable model looked related against weak controls); from the outside
    this is the guard the competence check is from the inside. None when no source scored every answerer."""
    plan = ctx.plans.get("likelihood")
    d = ctx.design
    if plan is None or not ctx.sources:
        return None
    ids = [p.id for p in plan.probes]
    src_unit = source_units(ctx, list(ctx.sources))
    unit_of = {m: u for u, ms in d.units.items() for m in ms}

    def fluency(m: str) -> float | None:
        rows = [scored(ctx, j, m, ids) for j in ctx.sources if src_unit[j] != unit_of.get(m, "suspect")]
        vals = [x for r in rows if r is not None for x in r]
        return sum(vals) / len(vals) if vals and all(r is not None for r in rows) else None

    comp = {m: fluency(m) for m in [d.suspect, *d.controls]}
    units = [[comp[m] for m in ms if comp[m] is not None] for ms in d.units.values()]
    ctrl = [sum(v) / len(v) for v in units if v]  # one value per lineage: siblings do not widen the range
    if comp[d.suspect] is None or len(ctrl) < 2:
        return None
    lo, hi = min(ctrl), max(ctrl)
    margin = max(COMPETENCE_MARGIN, 0.25 * (hi - lo))
    v = comp[d.suspect]
    return {"ran": True, "measure": "outside", "competence": comp, "controls_range": [lo, hi], "margin": margin,
            "unit": "nats per byte of each model's sampled answers, as the comparison sources score them",
            "suspect_outside": not lo - margin <= v <= hi + margin, "reference_outside": False, "reason": None}


def lineage_of(ev: ModelEvidence, key: str) -> str:
    """The model's lineage family; an unknown lineage is its own unit (it cannot be pooled with anything)."""
    return _unit(ev.model.lineage, key)


def _unit(lineage: str | None, key: str) -> str:
    return f"{UNKNOWN_LINEAGE}:{key}" if not lineage or lineage == UNKNOWN_LINEAGE else lineage


def same_files(fingerprints: Mapping[str, str], order: Sequence[str]) -> dict[str, str]:
    """Each spec's first spec in `order` with byte-identical files (itself when none): two paths to one checkpoint are
    one model, whatever lineage each was given."""
    first: dict[str, str] = {}
    return {k: first.setdefault(fingerprints[k], k) if fingerprints.get(k) else k for k in order}


def control_units(lineages: Mapping[str, str | None], suspect: str, reference: str, controls: Sequence[str],
                  fingerprints: Mapping[str, str] | None = None) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """Control lineages as units of the null (by spec), and the controls left out because they are related to the
    suspect or the reference. The one place that counts lineages: designs, the preflight and `--dry-run` use it.

    With `fingerprints` (by spec), a control byte-identical to the suspect, the reference or an earlier control is
    that model: it is left out, or joins that control's unit, so a copy never counts as another independent lineage.
    """
    canon = same_files(fingerprints or {}, [suspect, reference, *controls])
    ls, lr = _unit(lineages.get(suspect), suspect), _unit(lineages.get(reference), reference)
    units: dict[str, list[str]] = {}
    why: dict[str, str] = {}  # control -> why it is left out
    for c in controls:
        if c in (suspect, reference):
            continue
        first = canon.get(c, c)  # a copy stands or falls with the first of its files
        lc = _unit(lineages.get(first), first)
        if first in (suspect, reference):
            why[c] = f"byte-identical to the {'suspect' if first == suspect else 'reference'}"
        elif first in why:
            why[c] = f"byte-identical to {first}, left out: {why[first]}"
        elif lc == lr:
            why[c] = f"shares the reference's lineage ({lc})"
        elif lc == ls:
            why[c] = f"shares the suspect's lineage ({lc})"
        else:
            units.setdefault(lc, []).append(c)
    return units, [{"spec": c, "reason": r} for c, r in why.items()]


def duplicate_notes(fingerprints: Mapping[str, str], specs: Sequence[str]) -> list[str]:
    """One line per spec whose files are byte-identical to an earlier one's (said before any query)."""
    canon = same_files(fingerprints, list(dict.fromkeys(specs)))
    return [f"{k} has the same files as {first} (fingerprint {fingerprints[k][:12]}): one model, counted once"
            for k, first in canon.items() if first != k]


def design_for(evidence: Mapping[str, ModelEvidence], suspect: str, reference: str, controls: Sequence[str]
               ) -> tuple[Design, list[dict[str, str]]]:
    """Seats for one pair: control lineages as units; controls related to the suspect or reference are left out."""
    seats = [suspect, reference, *controls]
    units, excluded = control_units({k: evidence[k].model.lineage for k in seats}, suspect, reference, controls,
                                    {k: evidence[k].model.fingerprint for k in seats})
    return Design(suspect, reference, {u: tuple(ms) for u, ms in sorted(units.items())}), excluded


def preflight(lineages: Mapping[str, str | None], suspect: str, references: Sequence[str], controls: Sequence[str],
              weights: Mapping[str, bool], fingerprints: Mapping[str, str] | None = None
              ) -> tuple[list[str], list[str]]:
    """Before any query: (references no test could decide for, warnings). `lineages` by spec (None: unknown, its own
    unit), `weights` by spec: whether its weights can be read. Counts control lineages exactly as design_for does."""
    hopeless: list[str] = []
    warnings = duplicate_notes(fingerprints or {}, [suspect, *references, *controls])
    for ref in references:
        units = sorted(control_units(lineages, suspect, ref, controls, fingerprints)[0])
        has_weights = weights.get(suspect, False) and weights.get(ref, False)
        if len(units) < MIN_UNITS:
            why = (f"{ref}: {len(units)} independent control lineage(s) ({', '.join(units) or 'none'}); the behavioural "
                   f"tests need at least {MIN_UNITS}")
            if has_weights:
                warnings.append(f"{why}: only the weights test can decide")
            else:
                hopeless.append(f"{why}, and without weight access to both models the weights test cannot run")
        elif len(units) < MIN_UNITS + 1:
            warnings.append(f"{ref}: {len(units)} independent control lineages; a placebo needs {MIN_UNITS + 1}, "
                            "so a behavioural flag cannot be checked against one")
    return hopeless, warnings


def check_version(version: int) -> None:
    if version not in VERSIONS:
        raise InputError(f"analysis version {version} is not computed by this release (it computes "
                         f"{', '.join(map(str, sorted(VERSIONS)))})")


def pair_sources(evidence: Mapping[str, ModelEvidence], design: Design, sources: Sequence[str]) -> tuple[str, ...]:
    """The comparison sources one pair uses: not the suspect or the reference (nor byte-identical to either), none of
    the reference's lineage (a source must be independent of it). A control may also be a source: its lineage's unit
    then never scores its answers."""
    from provenance.models.packaged import canonical_lineage

    fps = {evidence[k].model.fingerprint for k in (design.suspect, design.reference)}
    lr = canonical_lineage(lineage_of(evidence[design.reference], design.reference))
    return tuple(s for s in dict.fromkeys(sources) if s not in (design.suspect, design.reference)
                 and evidence[s].model.fingerprint not in fps and canonical_lineage(lineage_of(evidence[s], s)) != lr)


def families_for(command: str, version: int = ANALYSIS_VERSION) -> list[TestFamily]:
    return [f for f in REGISTRY[version].values() if command in f.commands]


def pair_results(ctx: PairContext, command: str = "audit", version: int = ANALYSIS_VERSION) -> list[TestResult]:
    """Every registered family for one suspect/reference pair, in registration order."""
    ev = ctx.evidence
    if ev[ctx.design.suspect].model.fingerprint == ev[ctx.design.reference].model.fingerprint:
        return [TestResult(name="identical_files", statistic=1.0, p_value=0.0, n=0,
                           null="identical SHA-256 fingerprints cannot arise independently")]
    return [f.run(ctx) for f in families_for(command, version)]


def deciding_behaviour(command: str = "audit", version: int = ANALYSIS_VERSION) -> list[str]:
    return [f.name for f in families_for(command, version) if f.branch == "behaviour"]


def placebos(ctx: PairContext, command: str = "audit", alpha: float = ALPHA, version: int = ANALYSIS_VERSION,
             ran: Collection[str] | None = None) -> dict[str, Any]:
    """Each control lineage in the suspect's seat, against the other lineages, with the same behavioural families.

    Under a valid null a placebo is flagged with probability about alpha; a placebo that is flagged says the null
    does not hold for these controls (their kinds differ, or they are related), and the verdict cannot stand.
    `ran`: only these families (version 4: those that ran for the audited suspect; None: every placebo family).
    """
    units = sorted(ctx.design.units)
    if len(units) < MIN_UNITS + 1:
        return {"ran": False, "reason": f"a placebo needs at least {MIN_UNITS + 1} control lineages (has {len(units)})",
                "rows": [], "flagged": []}
    fams = [f for f in families_for(command, version) if f.branch == "behaviour" and f.placebo
            and (ran is None or f.name in ran)]
    rows = []
    for u in units:
        seat = ctx.design.placebo(u)
        pctx = PairContext(ctx.evidence, seat, ctx.plans, ctx.seed, ctx.n_permutations,
                           pair_sources(ctx.evidence, seat, ctx.sources), ctx.suspect_access())
        tests = {f.name: f.run(pctx).p_value for f in fams}
        p = bonferroni(list(tests.values()))
        rows.append({"lineage": u, "model": pctx.design.suspect, "p_value": p, "tests": tests,
                     "flagged": p is not None and p < alpha})
    return {"ran": True, "reason": None, "rows": rows, "flagged": [r["lineage"] for r in rows if r["flagged"]]}


def evaluate(evidence: Mapping[str, ModelEvidence], suspect: str, references: Sequence[str], controls: Sequence[str],
             plans: Sequence[ProbePlan], seed: int, n_permutations: int = 999, p_scale: float = 1.0,
             command: str = "audit", version: int = ANALYSIS_VERSION, sources: Sequence[str] = ()
             ) -> list[dict[str, Any]]:
    """Run every family for every reference on collected evidence alone (this is what `verify` recomputes).

    `p_scale` > 1 is a sequential audit's price for its interim looks (ALPHA / the alpha spent at this look).
    `sources`: comparison sources (version 3), by spec; each pair uses those that are not its suspect or reference
    and not of the reference's lineage (`pair_sources`).
    """
    check_version(version)
    roles = plan_roles(plans)
    half = plan_roles(scaled(plans, BUDGET_CHECK_FRACTION))
    deciding = deciding_behaviour(command, version)
    rows = []
    for ref in references:
        design, excluded = design_for(evidence, suspect, ref, controls)
        ctx = PairContext(evidence, design, roles, seed, n_permutations, pair_sources(evidence, design, sources),
                          evidence[suspect].capabilities)
        tests = pair_results(ctx, command, version)
        comb = combine(tests, deciding)
        rows.append((ref, design, excluded, ctx, tests, comb))
    adjusted = holm([r[5].p_value for r in rows])
    n_probes = len(roles["output"].probes) if "output" in roles else 0
    entries: list[dict[str, Any]] = []
    for (ref, design, excluded, ctx, tests, comb), p_holm in zip(rows, adjusted):
        p_adj = None if p_holm is None else min(1.0, p_holm * p_scale)
        entry: dict[str, Any] = {"spec": ref, "lineage": lineage_of(evidence[ref], ref)}
        if tests[0].name == "identical_files":
            entry.update({"verdict": "derived", "p_value": p_adj, "p_value_unadjusted": comb.p_value,
                          "reason": "the suspect's files are byte-identical to the reference's",
                          "tests": [t.to_json() for t in tests], "combination": comb.to_json(),
                          "placebo": {"ran": False, "reason": "identical files", "rows": [], "flagged": []},
                          "budget_check": None})
        else:
            # Version 4: a placebo runs the tests that ran for the suspect, no others. Versions 2-3 run every placebo
            # family in each control's seat with the control's own access (a control with logits got the next-token
            # family in its placebo although a text-only suspect did not), kept as they are for their study.
            plac = placebos(ctx, command, version=version,
                            ran={t.name for t in tests if not t.skipped} if version >= 4 else None)
            kind = competence_check(evidence, design, roles)
            if not kind["ran"] and version >= 4:  # a text-only suspect: its fluency, from the outside
                kind = outside_competence(ctx) or kind
            mismatch = None
            if kind["suspect_outside"]:
                c = kind["competence"][design.suspect]
                what = ("the fluency of the suspect's sampled answers ({c:.2f} nats/byte as the comparison sources "
                        "score them)" if kind.get("measure") == "outside" else
                        "the suspect's competence ({c:.2f} nats/byte on neutral text)").format(c=c)
                mismatch = (f"{what} lies outside the controls' "
                            f"range ({kind['controls_range'][0]:.2f} to {kind['controls_range'][1]:.2f}): the controls "
                            f"are not of the suspect's kind")
            else:
                off = [t for t in tests if (t.details.get("kind_check") or {}).get("suspect_out_of_kind")]
                if off:
                    k = off[0].details["kind_check"]
                    mismatch = (f"the suspect's general agreement with the control lineages ({off[0].name}: row effect "
                                f"{k['suspect_row']:.2f} against {min(k['unit_rows']):.2f} to {max(k['unit_rows']):.2f}, "
                                f"p = {k['p_suspect']:.2g}) is unlike theirs: the controls are not of its kind, or it "
                                f"took on the reference's competence")
            d = decide(comb, p_adj, p_holm, n_probes, plac["flagged"], kind_mismatch=mismatch)
            if comb.p_value is None:  # say why nothing could decide: each deciding family's own reason
                why = "; ".join(f"{t.name}: {t.skipped}" for t in tests
                                if t.skipped and (t.name in deciding or t.name == "weight_alignment"))
                d = Decision(d.verdict, d.p_value, f"{d.reason} ({why})" if why else d.reason)
            # The budget check: the same families on the first half of every probe set (no new queries).
            hctx = PairContext(evidence, design, half, seed, n_permutations, ctx.sources, ctx.access)
            htests = [t if t.name == "weight_alignment" else f.run(hctx)
                      for f, t in zip(families_for(command, version), tests)]
            hcomb = combine(htests, deciding)
            hd = decide(hcomb, hcomb.p_value, hcomb.p_value, len(half["output"].probes) if "output" in half else 0)
            entry.update({
                "verdict": d.verdict, "p_value": p_adj, "p_value_unadjusted": comb.p_value, "reason": d.reason,
                "tests": [t.to_json() for t in tests], "combination": comb.to_json(), "placebo": plac,
                "competence_check": kind,
                "budget_check": {"fraction": BUDGET_CHECK_FRACTION, "p_value": hcomb.p_value, "verdict": hd.verdict,
                                 "fragile": (hd.verdict in FLAGGED) != (d.verdict in FLAGGED),
                                 "note": "same families on the first half of every probe set (no new queries); "
                                         "p not Holm-adjusted"},
            })
        if version >= 3:
            entry["comparison_sources"] = list(ctx.sources)
        entry["controls_used"] = {u: list(ms) for u, ms in design.units.items()}
        entry["controls_excluded"] = excluded
        entries.append(entry)
    return entries
