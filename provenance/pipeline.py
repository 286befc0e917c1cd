"""Steps every pipeline shares (audit, attribute, matrix): default controls, the output directory, identifying every
model before any query, and gathering evidence (answers, the likelihood plan's samples and every score)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from provenance.cache import EvidenceCache
from provenance.collect import collect, collect_scores
from provenance.evidence import ModelEvidence, ProbePlan, score_items, yardstick_items
from provenance.models import LoadOptions, ResolvedModel, resolve
from provenance.models.packaged import PACKAGED
from provenance.stats import outside_likelihood


def default_controls(suspect: str, references: Sequence[str]) -> list[str]:
    """Packaged models outside the lineages of the suspect and the references."""
    taken = {s for s in [suspect, *references] if s in PACKAGED}
    families = {PACKAGED[t].family for t in taken}
    return [name for name, m in PACKAGED.items() if name not in taken and m.family not in families]


def comparison_sources(given: Sequence[str] | None, resolved: Mapping[str, ResolvedModel], references: Sequence[str],
                       suspect: str, options: LoadOptions, lineages: Mapping[str, str]
                       ) -> tuple[dict[str, ResolvedModel], list[str]]:
    """Analysis v3's comparison sources, identified before any query: (sources by spec, one line per source not used).

    Default: the packaged teachers (capable models of three unrelated makers). A source must be independent of at least
    one reference (each pair then uses those outside its reference's lineage) and is never the suspect. A source
    already in a seat is that seat's model, resolved once; one byte-identical to a seat model is that model.
    """
    from provenance.errors import ProvenanceError
    from provenance.models.packaged import canonical_lineage
    from provenance.zoo.lineages import PACKAGED_TEACHERS

    out: dict[str, ResolvedModel] = {}
    notes: list[str] = []
    seat_fp = {m.fingerprint: s for s, m in resolved.items()}
    for spec in dict.fromkeys(given if given is not None else PACKAGED_TEACHERS):
        try:
            m = resolved[spec] if spec in resolved else resolve(spec, options)
        except ProvenanceError as e:  # a packaged model not installed, a path that is not a model: said, not fatal
            notes.append(f"comparison source {spec} not used: {e}")
            continue
        if spec not in resolved and lineages.get(spec):
            m.lineage = lineages[spec]
        spec = seat_fp.get(m.fingerprint, spec)  # the same files as a seat: that seat's model
        m = resolved.get(spec, m)
        if spec == suspect or m.fingerprint == resolved[suspect].fingerprint:
            continue  # the suspect is never its own comparison
        if all(m.lineage and canonical_lineage(m.lineage) == canonical_lineage(resolved[r].lineage or "")
               or m.fingerprint == resolved[r].fingerprint for r in references):
            # Said only for a source the user named: a packaged teacher of the reference's lineage is simply no
            # comparison for it.
            if given is not None:
                notes.append(f"comparison source {spec} not used: it shares every reference's lineage "
                             f"({m.lineage or 'the same files'})")
            continue
        out[spec] = m
    return out, notes


def likelihood_samplers(version: int, references: Sequence[str], controls: Sequence[str],
                        sources: Mapping[str, ResolvedModel], seats: Mapping[str, ResolvedModel],
                        suspect: str | None = None) -> list[str]:
    """Who in a seat answers the likelihood prompts: the references and controls (v2, whose family compares the
    reference's answers with the controls'), or the references and the comparison sources that sit in a seat (v3;
    the other sources answer them through `gather`'s `sources`), and in v4 the suspect and the controls too."""
    if version >= 3:
        # v4 adds the suspect and the controls: the outside family scores their answers (outside_givers).
        givers = [s for s in [suspect, *controls] if s is not None] if version >= 4 else []
        return list(dict.fromkeys([*references, *(s for s in sources if s in seats), *givers]))
    return [*references, *controls]


def outside_givers(version: int, samplers: Sequence[str], references: Sequence[str], sources: Mapping[str, Any]
                   ) -> list[str]:
    """Analysis v4: whose sampled answers the references and the comparison sources score (the outside family): the
    samplers that are neither (the suspect and the controls). Empty before v4."""
    if version < 4:
        return []
    return [s for s in samplers if s not in references and s not in sources]


def check_out_dir(out: Path) -> None:
    """An existing output directory must be empty or a previous bundle (kept, with --replace), never user data."""
    from provenance.report.outdir import prepare_out

    prepare_out(out)  # checks, creates and locks `out` (see report/outdir.py); a no-op if the CLI already did


def resolve_all(specs: Sequence[str], options: LoadOptions, lineages: Mapping[str, str],
                per_model: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, ResolvedModel]:
    """Identify every model before querying any (chain of custody); a panel's lineage overrides what was inferred,
    and `per_model` options (dtype, device) override the shared ones for that model alone."""
    resolved: dict[str, ResolvedModel] = {}
    for s in specs:
        if s not in resolved:
            resolved[s] = resolve(s, replace(options, **per_model[s]) if per_model and s in per_model else options)
            if lineages.get(s):
                resolved[s].lineage = lineages[s]
    return resolved


def gather(resolved: Mapping[str, ResolvedModel], plans: Sequence[ProbePlan], ll_plan: ProbePlan | None,
           samplers: Sequence[str], cache: EvidenceCache | None, progress: bool, yardstick: ProbePlan | None = None,
           seed: int = 0, repeat: int = 0, sources: Mapping[str, ResolvedModel] | None = None,
           outside: Sequence[str] = ()) -> tuple[dict[str, ModelEvidence], list[ProbePlan]]:
    """Collect (or reuse from the cache) every plan; `samplers` also answer the likelihood plan, and every model with
    logits then scores those answers and the yardstick passages. Returns evidence by spec and the plans that ran.

    `sources` (analysis v3): comparison sources. One in a seat is among the samplers (`likelihood_samplers`); one in
    no seat answers the likelihood plan only and scores nothing. Every source's answers are scored like the samplers'.
    `outside` (analysis v4, `outside_givers`: the suspect first, then the controls): samplers whose answers only the
    others (the references and every source, a source in no seat included) score, for the outside family.
    """
    extra = {resolved[s].fingerprint: [ll_plan] for s in samplers} if ll_plan is not None else {}
    by_fp = collect(list(resolved.values()), plans, cache, progress=progress, extra=extra, sampling_seed=seed,
                    repeat=repeat)
    only = {s: m for s, m in (sources or {}).items() if s not in resolved}
    if only and ll_plan is not None:
        got = collect([m for m in only.values() if m.fingerprint not in by_fp], [ll_plan], cache, progress=progress,
                      sampling_seed=seed)
        by_fp = {**got, **by_fp}
    # Two specs with byte-identical files share one collection, but each keeps its own identity (spec, lineage), so the
    # manifest names every model it was given and `verify` finds each seat again.
    every = {**resolved, **(only if ll_plan is not None else {})}
    evidence = {s: by_fp[m.fingerprint] if by_fp[m.fingerprint].model.label == s else
                replace(by_fp[m.fingerprint], model=m.identity()) for s, m in every.items()}
    items = yardstick_items(yardstick) if yardstick is not None else []
    givers = set(outside or ())
    if ll_plan is not None:
        answered = [s for s in [*samplers, *(sources or {})]
                    if ll_plan.probe_set.id in evidence[s].answers and s not in givers]
        items = [*score_items(evidence, list(dict.fromkeys(answered)), ll_plan), *items]
    if items:
        collect_scores(list(resolved.values()), items, cache, by_fp, progress=progress)
    if givers and ll_plan is not None and outside_likelihood.applies(evidence[outside[0]].capabilities):
        # v4's outside family: the references and every comparison source (in a seat or not) score the suspect's and
        # the controls' answers; nobody else needs those scores, and a suspect that gives log-likelihoods gets the
        # inside family instead (so they are not computed for it).
        scorers = [m for s, m in every.items() if s not in givers]
        told = [s for s in outside or () if ll_plan.probe_set.id in evidence[s].answers]
        collect_scores(scorers, score_items(evidence, told, ll_plan), cache, by_fp, progress=progress)
    return evidence, [*plans, *([ll_plan] if ll_plan else []), *([yardstick] if yardstick else [])]
