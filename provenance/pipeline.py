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


def default_controls(suspect: str, references: Sequence[str]) -> list[str]:
    """Packaged models outside the lineages of the suspect and the references."""
    taken = {s for s in [suspect, *references] if s in PACKAGED}
    families = {PACKAGED[t].family for t in taken}
    return [name for name, m in PACKAGED.items() if name not in taken and m.family not in families]


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
           seed: int = 0, repeat: int = 0) -> tuple[dict[str, ModelEvidence], list[ProbePlan]]:
    """Collect (or reuse from the cache) every plan; `samplers` also answer the likelihood plan, and every model with
    logits then scores those answers and the yardstick passages. Returns evidence by spec and the plans that ran."""
    extra = {resolved[s].fingerprint: [ll_plan] for s in samplers} if ll_plan is not None else {}
    by_fp = collect(list(resolved.values()), plans, cache, progress=progress, extra=extra, sampling_seed=seed,
                    repeat=repeat)
    # Two specs with byte-identical files share one collection, but each keeps its own identity (spec, lineage), so the
    # manifest names every model it was given and `verify` finds each seat again.
    evidence = {s: by_fp[m.fingerprint] if by_fp[m.fingerprint].model.label == s else
                replace(by_fp[m.fingerprint], model=m.identity()) for s, m in resolved.items()}
    items = yardstick_items(yardstick) if yardstick is not None else []
    if ll_plan is not None:
        sources = [s for s in samplers if ll_plan.probe_set.id in evidence[s].answers]
        items = [*score_items(evidence, sources, ll_plan), *items]
    if items:
        collect_scores(list(resolved.values()), items, cache, by_fp, progress=progress)
    return evidence, [*plans, *([ll_plan] if ll_plan else []), *([yardstick] if yardstick else [])]
