"""The audit pipeline: resolve models, collect evidence, evaluate every reference, write the evidence bundle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from provenance.analysis import ANALYSIS_VERSION, check_version, evaluate, identity_plan, likelihood_plan, plan_probes
from provenance.analysis.evaluate import control_units, preflight
from provenance.cache import EvidenceCache
from provenance.errors import InputError
from provenance.evidence import UNKNOWN_LINEAGE, ModelEvidence, ProbePlan
from provenance.models import LoadOptions
from provenance.panel import ControlsPanel
from provenance.pipeline import (check_out_dir, comparison_sources, default_controls, gather, likelihood_samplers,
                                 outside_givers, resolve_all)
from provenance.probeset import load as load_probes
from provenance.report.bundle import CaseInfo, write_bundle
from provenance.report.manifest import build_manifest, environment, weights_compared
from provenance.sequential import FUTILITY_P, SEQUENTIAL_RULE, sequential_schedule
from provenance.verdict import DECISION_RULE, FLAGGED, attribute

RESULTS_SCHEMA_VERSION = 2
log = logging.getLogger(__name__)
# 9999 permutations put the weight test's floor at 1e-4, so a derived copy can be decisive at a sequential audit's
# first look (whose alpha share is 0.001) after the Bonferroni over branches.
WEIGHT_PERMUTATIONS = 9999


@dataclass
class AuditConfig:
    suspect: str
    references: Sequence[str]
    controls: Sequence[str] | None = None
    out: Path | None = None
    budget: int = 200
    seed: int = 0
    options: LoadOptions = field(default_factory=LoadOptions)
    progress: bool = True
    cache: EvidenceCache | None = None
    continuation_set: str = "continuation"
    next_token_set: str = "next-token"
    likelihood_set: str | None = "instructions"  # None: skip the reference-sample likelihood test
    identity_set: str | None = "identity"  # None: skip the identity-claims test
    yardstick_set: str | None = "yardstick"  # neutral passages for the competence check (None: skip it)
    case: CaseInfo = field(default_factory=CaseInfo)
    repeat: int = 0  # greedy probes sent to each endpoint a second time, to measure nondeterminism (`--repeat`)
    zip_bundle: bool = False
    sequential: bool = False  # stop at an interim look once the evidence is decisive either way
    lineages: Mapping[str, str] = field(default_factory=dict)  # spec -> lineage family (overrides the panel's)
    panel: ControlsPanel | None = None  # a controls panel file: controls with lineage, kind and notes
    dry_run: bool = False  # identify every model and say what would run; query nothing, write nothing
    # spec -> LoadOptions overrides for that model alone (dtype, device), e.g. from a panel's per-model settings
    model_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    evidentiary: bool = False  # refuse unless the tool's commit is known and clean; recorded in the manifest
    # --dry-run only: USD per million input and output tokens, and the latency assumed for an endpoint's time estimate.
    price: tuple[float, float] | None = None
    seconds_per_request: float = 1.0
    controls_note: str | None = None  # how the controls came to be (matched controls built, or why not): a warning
    analysis_version: int = ANALYSIS_VERSION  # 3: the likelihood family against capable comparison sources
    sources: Sequence[str] | None = None  # version 3's comparison sources (None: the packaged teachers)


def run_audit(cfg: AuditConfig) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    t0 = time.time()
    if not cfg.references:
        raise InputError("give at least one --reference")
    check_version(cfg.analysis_version)
    version = cfg.analysis_version
    if cfg.evidentiary:
        from provenance.report.manifest import evidentiary_check

        evidentiary_check()
    given = [*(cfg.controls or ()), *(cfg.panel.specs if cfg.panel else ())]
    controls = list(dict.fromkeys(given)) if given else default_controls(cfg.suspect, cfg.references)
    lineages = {**(cfg.panel.lineages if cfg.panel else {}), **cfg.lineages}
    # Several candidate references and no controls given: each candidate is a control for the others (assumed
    # independent of one another, said in the warnings), beside the packaged defaults.
    refs_as_controls = not given and len(set(cfg.references) - {cfg.suspect}) >= 2
    if not controls and not refs_as_controls:
        raise InputError("no control models: pass at least one --control (a model known to be independent of the reference)")
    if cfg.out is not None and not cfg.dry_run:
        check_out_dir(Path(cfg.out))
    cont, nxt = load_probes(cfg.continuation_set), load_probes(cfg.next_token_set)
    identity = load_probes(cfg.identity_set) if cfg.identity_set else None
    instructions = load_probes(cfg.likelihood_set) if cfg.likelihood_set else None
    yard = ProbePlan(load_probes(cfg.yardstick_set), None, "yardstick") if cfg.yardstick_set else None
    ids = [ps.id for ps in (cont, nxt, identity, instructions, yard.probe_set if yard else None) if ps is not None]
    if len(set(ids)) != len(ids):  # answers are kept per probe-set id: two sets with one id would overwrite each other
        raise InputError(f"two probe sets of this audit have the same id ({', '.join(sorted(ids))}); give each its own id")
    per_model = {**(cfg.panel.settings_options() if cfg.panel else {}), **cfg.model_options}
    resolved = resolve_all([cfg.suspect, *cfg.references, *controls], cfg.options, lineages, per_model)
    from provenance.mine import mining_controls

    control_fps = {resolved[c].fingerprint for c in controls}
    for ps in (cont, nxt, identity, instructions):
        if ps is not None and mining_controls(ps.path) & control_fps:
            raise InputError(f"probe set '{ps.id}' was mined against a control of this audit; "
                             "use other controls (mined prompts would bias the null)")
    refs = list(dict.fromkeys(cfg.references))
    ctrl = [c for c in dict.fromkeys(controls) if c not in refs and c != cfg.suspect]
    # What each reference's null is drawn from (a reference is never its own control: control_units skips it).
    null_pool = [*refs, *ctrl] if refs_as_controls else ctrl
    # Say before any query when the controls cannot support a verdict (the audit still runs: its evidence is kept).
    hopeless, warnings = preflight({s: m.lineage for s, m in resolved.items()}, cfg.suspect, refs, null_pool,
                                   {s: not m.remote for s, m in resolved.items()},
                                   {s: m.fingerprint for s, m in resolved.items()})
    warnings = [*(f"{h}: the verdict will be inconclusive; add controls of other lineages (-c, --controls FILE)"
                  for h in hopeless), *warnings]
    if cfg.controls_note:
        warnings.append(cfg.controls_note)
    if refs_as_controls:
        warnings.append("no controls given: each reference serves as a control for the others, which assumes the "
                        "references are independent of one another (give -c or --controls if they may be related)")
    # Version 3's comparison sources: capable models independent of a reference (the packaged teachers by default).
    # A source that already sits in a seat is that model; the others answer the likelihood prompts and nothing else.
    sources: dict[str, Any] = {}
    if version >= 3 and instructions is not None:
        sources, why_not = comparison_sources(cfg.sources, resolved, refs, cfg.suspect, cfg.options, lineages)
        warnings.extend(why_not)
        if not sources:
            warnings.append("no comparison source could be used: the likelihood family cannot run (analysis v3)")
        unknown = [c for c in null_pool if (resolved[c].lineage or UNKNOWN_LINEAGE) == UNKNOWN_LINEAGE]
        if sources and unknown:
            warnings.append(f"{len(unknown)} control(s) of unknown lineage: analysis v3 takes none of them to descend "
                            "from a comparison source (such a control would score its teacher's answers); give each "
                            "control's lineage (--controls FILE) to be sure")
    if version not in _validated():
        warnings.append(f"analysis version {version} has no validation record yet: no error rate or likelihood ratio "
                        "measured for it can be quoted (a candidate; see BENCHMARKS.md)")
    elif why := _other_likelihood_set(version, instructions.id if instructions is not None else None):
        warnings.append(why)
    for w in warnings:
        log.warning("warning: %s", w)  # stderr (the CLI's -q hides it); always kept in results["warnings"]
    if cfg.dry_run:
        return _plan(cfg, resolved, refs, null_pool, warnings, hopeless, sources)

    def look(budget: int) -> tuple[dict[str, ModelEvidence], list[ProbePlan]]:
        """The evidence for `budget` probes per model: every plan is a prefix, so a later look reuses the cache."""
        plans = plan_probes(budget, cont, nxt)
        if identity is not None:
            plans.append(identity_plan(budget, identity))
        ll = likelihood_plan(budget, instructions, version) if instructions is not None else None
        # Only the reference(s) and controls (version 3: the reference(s) and the comparison sources) sample answers;
        # every model with logits access in a seat scores them (the suspect included: whether it can is a capability
        # its backend reports, not something its kind decides).
        samplers = likelihood_samplers(version, refs, ctrl, sources, resolved, cfg.suspect)
        return gather(resolved, plans, ll, samplers, cfg.cache, cfg.progress, yard, seed=cfg.seed, repeat=cfg.repeat,
                      sources=sources, outside=outside_givers(version, samplers, refs, sources))

    schedule = sequential_schedule(cfg.budget) if cfg.sequential else [(cfg.budget, 1.0)]
    looks: list[dict[str, Any]] = []
    for i, (budget, share) in enumerate(schedule):
        evidence, plans = look(budget)
        scale = 1.0 / share  # p at this look times ALPHA / alpha_i: valid over every look by the union bound
        entries = evaluate(evidence, cfg.suspect, refs, null_pool, plans, cfg.seed, WEIGHT_PERMUTATIONS, p_scale=scale,
                           version=version, sources=list(sources))
        decisive = any(e["verdict"] in FLAGGED for e in entries)
        futile = all(e["p_value_unadjusted"] is None or e["p_value_unadjusted"] > FUTILITY_P for e in entries)
        last = i == len(schedule) - 1
        looks.append({"budget": budget, "alpha_share": share, "p_scale": scale,
                      "p_values": [e["p_value"] for e in entries], "verdicts": [e["verdict"] for e in entries],
                      "action": "final look" if last else "stop: decisive" if decisive else
                      "stop: futile" if futile else "continue"})
        if last or decisive or futile:
            break
    finished = datetime.now(timezone.utc)
    detail = attribute(entries)
    validation = validation_for(entries, evidence[cfg.suspect].capabilities, looks[-1]["budget"], version,
                                instructions.id if instructions is not None else None)
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "analysis_version": version,
        "case_id": cfg.case.case_id,
        "case_revision": cfg.case.revision,  # the bundle's version, on this file too (the manifest has it as case.revision)
        "propositions": {
            "H1": "the suspect was distilled from the reference (trained on its outputs or logits) or derived from its "
                  "weights (fine-tuned, merged, pruned, quantized or noised), directly or through intermediate models",
            # A shared base model is placed explicitly: two fine-tunes of one base satisfy neither "derived from the
            # reference" nor "independent", and the weight test cannot tell them from a direct derivation.
            "H0": "the suspect was built independently of the reference and of every model the reference was built from "
                  "(it may share public data, architecture or tokenizer); a suspect sharing a base model with the "
                  "reference is not covered by H0, and the weight test would flag it as derived",
        },
        "suspect": evidence[cfg.suspect].model.to_json(),
        "references": entries,
        # The reference the suspect descends from, exactly as given, or "none" (ranking and reasons in the detail).
        "attribution": detail["attribution"],
        "attribution_detail": detail,
        "controls": [evidence[c].model.to_json() for c in ctrl],
        **({"comparison_sources": [evidence[s].model.to_json() for s in sources if s in evidence]}
           if version >= 3 else {}),
        "controls_panel": [e.to_json() for e in cfg.panel.controls] if cfg.panel else None,
        "references_as_controls": refs_as_controls,
        "reference_models": [evidence[r].model.to_json() for r in refs],
        "probe_sets": [{**p.probe_set.to_json(), "n_used": len(p.probes), "role": p.role} for p in plans],
        "budget": cfg.budget,
        "seed": cfg.seed,
        "sequential": {"enabled": cfg.sequential, "looks": looks, "stopped_at_budget": looks[-1]["budget"],
                       "p_scale": looks[-1]["p_scale"], "futility_p": FUTILITY_P,
                       "rule": SEQUENTIAL_RULE if cfg.sequential else "fixed budget: one look"},
        "access": {s: sorted(evidence[s].capabilities) for s in resolved},
        "access_detail": {s: evidence[s].endpoint["access"] for s in resolved if "access" in (evidence[s].endpoint or {})},
        "notes": sorted({n for ev in evidence.values() for n in ev.notes}),
        "warnings": warnings,
        "decision_rule": DECISION_RULE,
        # The validation study's measured error rates and likelihood ratio for this audit's conditions, copied with
        # the record's hash (or why none applies): the report leads with it, `verify` checks the copy.
        "validation": validation,
        "started_utc": started.isoformat(),
        "finished_utc": finished.isoformat(),
        "wall_seconds": round(time.time() - t0, 2),
        "environment": environment(),
    }
    results["environment"]["tool"]["evidentiary"] = cfg.evidentiary
    if cfg.out is not None:
        results["bundle_sha256"] = _write(cfg, results, evidence, refs, ctrl, plans, [s for s in sources if s in evidence])
    return results


def _other_likelihood_set(version: int, likelihood_set: str | None) -> str | None:
    """Why the shipped record's rates do not apply to an audit with these likelihood prompts, or None."""
    from provenance.study.record import load_record, other_likelihood_set

    loaded = load_record(version)
    return other_likelihood_set(loaded[0], likelihood_set) if loaded else None


def _validated() -> set[int]:
    """Analysis versions with a validation record shipped (the study's measured rates)."""
    from provenance.analysis import VERSIONS
    from provenance.study.record import record_path

    return {v for v in VERSIONS if record_path(v).is_file()}


def _plan(cfg: AuditConfig, resolved: Mapping[str, Any], refs: Sequence[str], ctrl: Sequence[str],
          warnings: Sequence[str], hopeless: Sequence[str], sources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an audit would do (`--dry-run`): every model's identity and lineage, the control lineages per reference,
    how many probes of each set, and whether any test could decide; nothing is loaded or queried."""
    plans = plan_probes(cfg.budget, load_probes(cfg.continuation_set), load_probes(cfg.next_token_set))
    if cfg.identity_set:
        plans.append(identity_plan(cfg.budget, load_probes(cfg.identity_set)))
    if cfg.likelihood_set:
        plans.append(likelihood_plan(cfg.budget, load_probes(cfg.likelihood_set), cfg.analysis_version))
    lin = {s: (m.lineage or UNKNOWN_LINEAGE) for s, m in resolved.items()}
    fps = {s: m.fingerprint for s, m in resolved.items()}
    per_ref = [{"reference": r, "lineage": lin[r], "control_lineages": control_units(lin, cfg.suspect, r, ctrl, fps)[0],
                "can_decide": not any(h.startswith(f"{r}:") for h in hopeless)} for r in refs]
    # Requests each model would get: its answers to every plan (the likelihood plan only for the models that sample),
    # plus one scoring request per sampled answer and yardstick passage (models with logits, in a seat).
    sources = dict(sources or {})
    sampling = likelihood_samplers(cfg.analysis_version, refs, ctrl, sources, resolved, cfg.suspect)
    every = [*sampling, *(s for s in sources if s not in resolved)]
    ll = next((p for p in plans if p.role == "likelihood"), None)
    yard_set = load_probes(cfg.yardstick_set) if cfg.yardstick_set else None
    yard = len(yard_set.probes) if yard_set else 0
    requests: dict[str, dict[str, int]] = {}
    for s in resolved:
        gen = [p for p in plans if p.role != "likelihood" or s in sampling]
        requests[s] = {"generate": sum(len(p.probes) for p in gen),
                       "new_tokens_at_most": sum(len(p.probes) * max(1, p.probe_set.decoding.max_new_tokens)
                                                 for p in gen),
                       "prompt_chars": sum(len(pr.text) for p in gen for pr in p.probes),
                       "score_if_logits": (len(ll.probes) * len(every) if ll else 0) + yard}
    for s in sources:
        if s not in resolved and ll is not None:  # a comparison source answers the likelihood prompts, nothing else
            requests[s] = {"generate": len(ll.probes), "prompt_chars": sum(len(pr.text) for pr in ll.probes),
                           "new_tokens_at_most": len(ll.probes) * max(1, ll.probe_set.decoding.max_new_tokens),
                           "score_if_logits": 0}
    plan = {"dry_run": True, "suspect": cfg.suspect, "budget": cfg.budget, "seed": cfg.seed, "requests": requests,
            "max_connections": cfg.options.max_connections,
            "models": {s: {"fingerprint": m.fingerprint, "lineage": lin[s], "remote": m.remote, "numerics": m.numerics,
                           "role": "suspect" if s == cfg.suspect else "reference" if s in refs else "control"}
                       for s, m in resolved.items()},
            "analysis_version": cfg.analysis_version,
            "comparison_sources": {s: {"fingerprint": m.fingerprint, "lineage": m.lineage or UNKNOWN_LINEAGE,
                                       "in_a_seat": s in resolved} for s, m in sources.items()},
            "references": per_ref, "warnings": list(warnings),
            "probes": {p.role: len(p.probes) for p in plans},
            "note": "nothing was loaded, queried or written"}
    plan["endpoint_costs"] = endpoint_costs(plan, cfg.price, cfg.seconds_per_request)
    return plan


def endpoint_costs(plan: dict[str, Any], price: tuple[float, float] | None, seconds_per_request: float
                   ) -> dict[str, dict[str, Any]]:
    """Per endpoint of a dry run: requests, approximate prompt tokens, new tokens at most, time at an assumed latency,
    and the cost when prices per million tokens (input, output) are given. Scoring requests are given apart
    (`score_requests_if_served`, one generated token each), not in the totals: an endpoint scores only when it serves
    prompt scoring (echo or prompt_logprobs, for plain and chat text), which is found out by asking it."""
    out: dict[str, dict[str, Any]] = {}
    conns = int(plan.get("max_connections") or 4)
    for spec, m in plan["models"].items():
        r = plan["requests"].get(spec)
        if not m["remote"] or r is None:
            continue
        prompt = -(-r["prompt_chars"] // 4)
        row: dict[str, Any] = {"requests": r["generate"], "prompt_tokens": prompt, "new_tokens": r["new_tokens_at_most"],
                               "connections": conns, "seconds_per_request": seconds_per_request,
                               "minutes": r["generate"] * seconds_per_request / conns / 60,
                               "score_requests_if_served": r["score_if_logits"]}
        if price is not None:
            row.update(cost=round((prompt * price[0] + r["new_tokens_at_most"] * price[1]) / 1e6, 4), currency="$")
        out[spec] = row
    return out


def validation_for(entries: Sequence[Mapping[str, Any]], capabilities: Sequence[str], budget: int,
                   version: int = ANALYSIS_VERSION, likelihood_set: str | None = None) -> dict[str, Any]:
    """The shipped record's entry for the weakest of this audit's conditions across its references."""
    from provenance.study.record import access_level, load_record, match

    access = access_level(list(capabilities))
    if access == "weights" and all(next((t for t in e["tests"] if t["name"] == "weight_alignment"), {}).get("skipped")
                                   for e in entries):
        access = access_level([c for c in capabilities if str(getattr(c, "value", c)) != "weights"])
    lineages = min((len(e.get("controls_used") or {}) for e in entries), default=0)
    loaded = load_record(version)
    return match(loaded[0] if loaded else None, loaded[1] if loaded else None, version, access, budget, lineages,
                 likelihood_set)


# Where a model's lineage label came from (manifest `models[].lineage_basis`): every basis is somebody's statement,
# which the report labels as such; none is something the audit established.
LINEAGE_BASES = {
    "panel": "stated in the controls panel file (the examiner's or the panel author's statement)",
    "given": "stated for this audit by whoever ran it (the examiner's statement)",
    "file": "a .lineage file beside the weights (the statement of whoever built the directory)",
    "packaged": "provenance's table of packaged models (the package's family)",
    "fake": "the fake backend's parameters (plumbing only)",
}


def lineage_basis(spec: str, lineage: str | None, cfg: AuditConfig) -> str | None:
    """Which of LINEAGE_BASES labelled this model (None: its lineage is unknown)."""
    from provenance.models.spec import SpecKind, parse_spec

    if not lineage or lineage == UNKNOWN_LINEAGE:
        return None
    if cfg.panel and cfg.panel.lineages.get(spec) == lineage:  # the CLI passes a panel's lineages both ways
        return LINEAGE_BASES["panel"]
    if cfg.lineages.get(spec):
        return LINEAGE_BASES["given"]
    kind = parse_spec(spec).kind
    if kind is SpecKind.PACKAGED:
        return LINEAGE_BASES["packaged"]
    if kind is SpecKind.DIRECTORY:
        return LINEAGE_BASES["file"]
    return LINEAGE_BASES["fake"] if kind is SpecKind.FAKE else None


def _write(cfg: AuditConfig, results: dict[str, Any], evidence: Mapping[str, ModelEvidence], refs: Sequence[str],
           ctrl: Sequence[str], plans: Sequence[ProbePlan], sources: Sequence[str] = ()) -> str:
    """The evidence bundle; returns its hash (printed, and not stored inside what it covers)."""
    # A comparison source in a seat keeps its seat's role; the manifest lists it among the sources too (analysis).
    roles = {**{s: "source" for s in sources}, cfg.suspect: "suspect", **{r: "reference" for r in refs},
             **{c: "control" for c in ctrl}}
    transcripts, weights, seen = [], {}, set()
    # Weight evidence is shipped only for models a weights test actually compared (keeps bundles small).
    compared = weights_compared(evidence, cfg.suspect, refs)
    for ev in evidence.values():
        if ev.model.fingerprint in seen:
            continue
        seen.add(ev.model.fingerprint)
        transcripts.extend(ev.records)
        if ev.weights is not None and ev.model.fingerprint in compared:
            weights[ev.model.fingerprint] = {"__model_type__": np.array(str(ev.model_type)), **ev.weights}
    analysis = {"version": results["analysis_version"], "p_scale": results["sequential"]["p_scale"],
                **({"comparison_sources": list(sources)} if results["analysis_version"] >= 3 else {}),
                "weight_permutations": WEIGHT_PERMUTATIONS,
                # verify draws each reference's null from the same pool (the other references too, when set)
                "references_as_controls": results["references_as_controls"]}
    manifest = build_manifest(case=cfg.case, budget=cfg.budget, seed=cfg.seed, results=results, evidence=evidence,
                              roles=roles, plans=plans, weights_shipped=compared, analysis=analysis,
                              lineage_bases={s: lineage_basis(s, evidence[s].model.lineage, cfg) for s in roles})
    probe_files = {ps["file"]: Path(p.probe_set.path) for ps, p in zip(manifest["probe_sets"], plans)}
    return write_bundle(Path(cfg.out), results, manifest, transcripts, probe_files, weights, cfg.zip_bundle)  # type: ignore[arg-type]
