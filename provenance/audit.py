"""The audit pipeline: resolve models, collect evidence, run tests per reference, decide, write results."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from provenance import __version__
from provenance.cache import EvidenceCache
from provenance.collect import ModelEvidence, ProbePlan, ScoreItem, collect, collect_scores
from provenance.errors import InputError
from provenance.models import LoadOptions, ResolvedModel, SpecKind, parse_spec, resolve
from provenance.models.packaged import PACKAGED
from provenance.probeset import ProbeSet, load as load_probes
from provenance.stats import Panel, TestResult, next_token_divergence, output_agreement, weight_permutation_test
from provenance.stats.identity import identity_claims
from provenance.stats.likelihood import reference_likelihood
from provenance.report.bundle import BUNDLE_SCHEMA_VERSION, CaseInfo, custody_entry, write_bundle
from provenance.verdict import DECISION_RULE, FLAGGED, attribute, bonferroni, decide, holm

RESULTS_SCHEMA_VERSION = 1
# 9999 permutations put the weight test's floor at 1e-4, so a derived copy can be decisive at a sequential audit's
# first look (whose alpha share is 0.001) after Bonferroni over five families.
WEIGHT_PERMUTATIONS = 9999
BUNDLE_MARKERS = ("results.json", "manifest.json", "transcripts.jsonl")


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
    case: CaseInfo = field(default_factory=CaseInfo)
    zip_bundle: bool = False
    sequential: bool = False  # stop at an interim look once the evidence is decisive either way


# Group-sequential looks at these fractions of the budget, spending these shares of ALPHA (O'Brien-Fleming-like:
# little at the early looks, most at the last). A look needs MIN_PROBES continuation probes; a dropped look's share
# moves to the last one.
LOOK_FRACTIONS = (0.25, 0.5, 1.0)
ALPHA_SHARES = (0.1, 0.2, 0.7)
FUTILITY_P = 0.5
SEQUENTIAL_RULE = (
    f"Looks after {', '.join(f'{f:.0%}' for f in LOOK_FRACTIONS)} of the budget, spending "
    f"{', '.join(f'{a:.0%}' for a in ALPHA_SHARES)} of alpha: at look i every p-value is multiplied by "
    f"1 / share_i (Bonferroni over looks, valid whatever the dependence between looks). Stop when a reference is "
    f"flagged (decisive) or when every reference's combined p exceeds {FUTILITY_P} (futile; stopping for futility "
    f"cannot add false positives)."
)


def sequential_schedule(budget: int) -> list[tuple[int, float]]:
    """(budget, alpha share) per look; looks too small to decide on are merged into the last."""
    from provenance.verdict import MIN_PROBES

    looks: list[tuple[int, float]] = []
    carried = 0.0
    for frac, share in zip(LOOK_FRACTIONS, ALPHA_SHARES):
        b = max(2, int(round(budget * frac)))
        if frac < 1.0 and (b - b // 2 < MIN_PROBES or (looks and looks[-1][0] == b)):
            carried += share
            continue
        looks.append((b, share))
    b, share = looks[-1]
    looks[-1] = (b, round(share + carried, 9))
    return looks


def default_controls(suspect: str, references: Sequence[str]) -> list[str]:
    """Packaged models other than the references and the suspect (and outside their packaged families)."""
    taken = {parse_spec(s).location for s in [suspect, *references] if parse_spec(s).kind is SpecKind.PACKAGED}
    families = {PACKAGED[t].family for t in taken}
    return [name for name, m in PACKAGED.items() if name not in taken and m.family not in families]


def check_out_dir(out: Path) -> None:
    """An existing output directory must be empty or a previous bundle (kept, with --replace), never user data."""
    from provenance.report.outdir import prepare_out

    prepare_out(out)  # checks, creates and locks `out` (see report/outdir.py); a no-op if the CLI already did


def plan_probes(budget: int, continuation: ProbeSet, next_token: ProbeSet) -> list[ProbePlan]:
    if budget < 2:
        raise InputError("--budget must be at least 2 probes")
    n_next = min(budget // 2, len(next_token.probes))
    return [ProbePlan(continuation, min(budget - n_next, len(continuation.probes)), "output"),
            ProbePlan(next_token, n_next, "next_token")]


def likelihood_plan(budget: int, instructions: ProbeSet) -> ProbePlan:
    """Sampled answers to a fifth of the budget's worth of instructions (each is then scored by every model)."""
    return ProbePlan(instructions, max(4, min(budget // 5, len(instructions.probes))), "likelihood")


def identity_plan(budget: int, identity: ProbeSet) -> ProbePlan:
    """Greedy answers to an eighth of the budget's worth of identity questions (at least 10), from every model."""
    return ProbePlan(identity, max(10, min(budget // 8, len(identity.probes))), "identity")


def score_items(evidence: dict[str, ModelEvidence], sources: Sequence[str], plan: ProbePlan) -> list[ScoreItem]:
    """Every source model's sampled answer to every prompt of the plan, as texts to score."""
    items = []
    for p in plan.probes:
        for src in sources:
            ev = evidence[src]
            items.append(ScoreItem(f"{p.id}|{ev.model.fingerprint}", p.text, ev.answers[plan.probe_set.id][p.id].text,
                                   plan.probe_set.chat))
    return items


def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    pkgs = {}
    for name in ("torch", "transformers", "numpy", "scipy", "gguf", "safetensors", "httpx", "click"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    return {"tool": {"name": "provenance", "version": __version__, **_git_commit()}, "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": pkgs}


def pair_tests(evidence: dict[str, ModelEvidence], suspect: str, ref: str, controls: Sequence[str], pc: Panel, pn: Panel,
               ll_plan: ProbePlan | None, rng: np.random.Generator, n_permutations: int = 999,
               id_plan: ProbePlan | None = None) -> list[TestResult]:
    """Every test family for one suspect/reference pair, against the controls (also used by `matrix`)."""
    models = [suspect, ref, *[c for c in controls if c not in (suspect, ref)]]
    if evidence[suspect].model.fingerprint == evidence[ref].model.fingerprint:
        return [TestResult(name="identical_files", statistic=1.0, p_value=0.0, n=0,
                           null="identical SHA-256 fingerprints cannot arise independently")]
    if ll_plan is None:
        ll = TestResult.skip("reference_likelihood", "not run: disabled, or the suspect gives no log-likelihoods "
                                                     "(text or top-k access only)")
    else:
        ll = reference_likelihood({k: ev.scores for k, ev in evidence.items()}, [p.id for p in ll_plan.probes],
                                  {k: ev.model.fingerprint for k, ev in evidence.items()}, suspect, ref,
                                  [m for m in models if m not in (suspect, ref)])
    tests = [
        output_agreement(pc, suspect, ref, models),
        next_token_divergence(pn, suspect, ref, models),
        ll,
        weight_permutation_test(evidence[suspect].weights, evidence[ref].weights, evidence[suspect].model_type,
                                evidence[ref].model_type, rng, n_permutations),
    ]
    if id_plan is not None:  # after the weights test, so its permutations (and p-values) match older bundles
        tests.insert(3, identity_claims({k: ev.answers.get(id_plan.probe_set.id, {}) for k, ev in evidence.items()
                                         if id_plan.probe_set.id in ev.answers},
                                        [p.id for p in id_plan.probes], suspect, ref,
                                        [m for m in models if m not in (suspect, ref)]))
    return tests


POSITIONAL_ROLES = ("output", "next_token", "likelihood")  # bundles written before plans carried roles


def plan_roles(plans: Sequence[ProbePlan]) -> dict[str, ProbePlan]:
    return {(p.role or POSITIONAL_ROLES[i]): p for i, p in enumerate(plans)}


def panels(evidence: dict[str, ModelEvidence], plans: Sequence[ProbePlan]) -> tuple[Panel, Panel, ProbePlan | None]:
    """Continuation and next-token panels, and the likelihood plan (absent when not requested or not possible)."""
    tokenizers = {k: ev.tokenizer_id for k, ev in evidence.items()}
    roles = plan_roles(plans)

    def panel(plan: ProbePlan) -> Panel:
        return Panel(tuple(p.id for p in plan.probes), {k: ev.answers[plan.probe_set.id] for k, ev in evidence.items()},
                     tokenizers)

    return panel(roles["output"]), panel(roles["next_token"]), roles.get("likelihood")


def evaluate(evidence: dict[str, ModelEvidence], suspect: str, references: Sequence[str], controls: Sequence[str],
             plans: Sequence[ProbePlan], seed: int, n_permutations: int = 999, p_scale: float = 1.0) -> list[dict[str, Any]]:
    """Run every test for every reference on collected evidence alone (this is what `verify` recomputes).

    `p_scale` > 1 is a sequential audit's price for its interim looks (ALPHA / the alpha spent at this look).
    """
    pc, pn, ll_plan = panels(evidence, plans)
    rng = np.random.default_rng(seed)
    entries: list[dict[str, Any]] = []
    raw_ps: list[float | None] = []
    all_tests: list[list[TestResult]] = []
    id_plan = plan_roles(plans).get("identity")
    for ref in references:
        tests = pair_tests(evidence, suspect, ref, controls, pc, pn, ll_plan, rng, n_permutations, id_plan)
        all_tests.append(tests)
        raw_ps.append(bonferroni(tests))
    adjusted = [None if p is None else min(1.0, p * p_scale) for p in holm(raw_ps)]
    n_probes = len(plan_roles(plans)["output"].probes)
    for ref, tests, p_raw, p_adj in zip(references, all_tests, raw_ps, adjusted):
        if tests[0].name == "identical_files":
            verdict, reason = "derived", "the suspect's files are byte-identical to the reference's"
        else:
            d = decide(tests, p_adj, n_probes)
            verdict, reason = d.verdict, d.reason
        entries.append({
            "spec": evidence[ref].model.label,
            "verdict": verdict,
            "p_value": p_adj,
            "p_value_unadjusted": p_raw,
            "reason": reason,
            "tests": [t.to_json() for t in tests],
        })
    return entries


def run_audit(cfg: AuditConfig) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    t0 = time.time()
    if not cfg.references:
        raise InputError("give at least one --reference")
    controls = list(cfg.controls) if cfg.controls else default_controls(cfg.suspect, cfg.references)
    if not controls:
        raise InputError("no control models: pass at least one --control (a model known to be independent of the reference)")
    if cfg.out is not None:
        check_out_dir(Path(cfg.out))
    cont, nxt = load_probes(cfg.continuation_set), load_probes(cfg.next_token_set)
    identity = load_probes(cfg.identity_set) if cfg.identity_set else None
    instructions = load_probes(cfg.likelihood_set) if cfg.likelihood_set else None
    _ids = [ps.id for ps in (cont, nxt, identity, instructions) if ps is not None]
    if len(set(_ids)) != len(_ids):  # answers are kept per probe-set id: two sets with one id would overwrite each other
        raise InputError(f"two probe sets of this audit have the same id ({', '.join(sorted(_ids))}); give each its own id")
    # Identify every model before querying any: fingerprints are fixed first (chain of custody).
    specs = [cfg.suspect, *cfg.references, *controls]
    resolved: dict[str, ResolvedModel] = {}
    for s in specs:
        if s not in resolved:
            resolved[s] = resolve(s, cfg.options)
    from provenance.mine import mining_controls

    for ps in (cont, nxt, identity, instructions):
        biased = mining_controls(ps.path) & {resolved[c].fingerprint for c in controls} if ps is not None else set()
        if biased:
            raise InputError(f"probe set '{ps.id}' was mined against a control of this audit; "  # type: ignore[union-attr]
                             "use other controls (mined prompts would bias the null)")
    refs = list(dict.fromkeys(cfg.references))
    ctrl = [c for c in dict.fromkeys(controls) if c not in refs and c != cfg.suspect]
    use_likelihood = instructions is not None and resolved[cfg.suspect].spec.kind is not SpecKind.HTTP

    def look(budget: int) -> tuple[dict[str, ModelEvidence], list[ProbePlan]]:
        """Collect (or reuse from the cache) the evidence for `budget` probes per model: every plan is a prefix."""
        plans = plan_probes(budget, cont, nxt)
        if identity is not None:
            plans.append(identity_plan(budget, identity))
        extra: dict[str, list[ProbePlan]] = {}
        if use_likelihood:
            assert instructions is not None
            ll_plan = likelihood_plan(budget, instructions)
            # Only the reference(s) and controls need to answer; the suspect only scores their answers.
            extra = {resolved[s].fingerprint: [ll_plan] for s in [*refs, *ctrl]}
        by_fp = collect(list(resolved.values()), plans, cfg.cache, progress=cfg.progress, extra=extra)
        evidence = {s: by_fp[m.fingerprint] for s, m in resolved.items()}
        if use_likelihood:
            sources = [s for s in [*refs, *ctrl] if ll_plan.probe_set.id in evidence[s].answers]
            items = score_items(evidence, sources, ll_plan)
            collect_scores(list(resolved.values()), items, cfg.cache, by_fp, progress=cfg.progress)
            plans = [*plans, ll_plan]
        return evidence, plans

    schedule = sequential_schedule(cfg.budget) if cfg.sequential else [(cfg.budget, 1.0)]
    looks: list[dict[str, Any]] = []
    for i, (budget, share) in enumerate(schedule):
        evidence, plans = look(budget)
        scale = 1.0 / share  # p at this look times ALPHA / alpha_i: valid over every look by the union bound
        entries = evaluate(evidence, cfg.suspect, refs, ctrl, plans, cfg.seed, WEIGHT_PERMUTATIONS, p_scale=scale)
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
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "propositions": {
            "H1": "the suspect was distilled from, or derived from, the reference",
            "H0": "the suspect was built independently of the reference (it may share public data, architecture or tokenizer)",
        },
        "suspect": resolved[cfg.suspect].to_json(),
        "references": entries,
        # The reference the suspect descends from, exactly as given, or "none" (ranking and reasons in the detail).
        "attribution": attribute(entries)["attribution"],
        "attribution_detail": attribute(entries),
        "controls": [resolved[c].to_json() for c in ctrl],
        "reference_models": [resolved[r].to_json() for r in refs],
        "probe_sets": [{**p.probe_set.to_json(), "n_used": len(p.probes), "role": p.role} for p in plans],
        "budget": cfg.budget,
        "seed": cfg.seed,
        "sequential": {"enabled": cfg.sequential, "looks": looks, "stopped_at_budget": looks[-1]["budget"],
                       "p_scale": looks[-1]["p_scale"], "futility_p": FUTILITY_P,
                       "rule": SEQUENTIAL_RULE if cfg.sequential else "fixed budget: one look"},
        "access": {s: sorted(evidence[s].capabilities) for s in resolved},
        "notes": sorted({n for ev in evidence.values() for n in ev.notes}),
        "decision_rule": DECISION_RULE,
        "started_utc": started.isoformat(),
        "finished_utc": finished.isoformat(),
        "wall_seconds": round(time.time() - t0, 2),
        "environment": environment(),
    }
    if cfg.out is not None:
        roles = {cfg.suspect: "suspect", **{r: "reference" for r in refs}, **{c: "control" for c in ctrl}}
        transcripts, weights, seen = [], {}, set()
        # Weight evidence is shipped only for models a weights test actually compared (keeps bundles small).
        compared = {fp for fp in _weights_compared(results, evidence, cfg.suspect, refs)}
        for ev in evidence.values():
            if ev.model.fingerprint in seen:
                continue
            seen.add(ev.model.fingerprint)
            transcripts.extend(ev.records)
            if ev.weights is not None and ev.model.fingerprint in compared:
                weights[ev.model.fingerprint] = {"__model_type__": np.array(str(ev.model_type)), **ev.weights}
        manifest = build_manifest(cfg, results, evidence, roles, plans, compared)
        digest = write_bundle(Path(cfg.out), results, manifest, transcripts, [Path(p.probe_set.path) for p in plans],
                              weights, cfg.zip_bundle)
        results["bundle_sha256"] = digest  # returned and printed; not stored inside what it covers
    return results


def _weights_compared(results: dict[str, Any], evidence: dict[str, ModelEvidence], suspect: str,
                      refs: Sequence[str]) -> set[str]:
    # Every same-architecture suspect/reference pair with weights: `verify` must reach the same outcome, skips included.
    out: set[str] = set()
    s = evidence[suspect]
    for ref in refs:
        r = evidence[ref]
        if s.weights is not None and r.weights is not None and s.model_type == r.model_type:
            out |= {s.model.fingerprint, r.model.fingerprint}
    return out


def build_manifest(cfg: AuditConfig, results: dict[str, Any], evidence: dict[str, ModelEvidence], roles: dict[str, str],
                   plans: Sequence[ProbePlan], weights_shipped: set[str]) -> dict[str, Any]:
    env = results["environment"]
    models = []
    for spec, role in roles.items():
        ev = evidence[spec]
        shipped = ev.weights is not None and ev.model.fingerprint in weights_shipped
        models.append({"role": role, **ev.model.to_json(), "tokenizer_id": ev.tokenizer_id,
                       "capabilities": sorted(ev.capabilities), "model_type": ev.model_type, "endpoint": ev.endpoint,
                       "weights_evidence": f"evidence/weights/{ev.model.fingerprint}.npz" if shipped else None})
    return {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "case": cfg.case.to_json(),
        "tool": env["tool"],
        "environment": {k: env[k] for k in ("python", "platform", "packages")},
        "started_utc": results["started_utc"],
        "finished_utc": results["finished_utc"],
        "models": models,
        "probe_sets": [{**p.probe_set.to_json(), "n_used": len(p.probes), "role": p.role,
                        "file": f"probes/{Path(p.probe_set.path).name}"}
                       for p in plans],
        "seeds": {"permutation_test": cfg.seed},
        # How `verify` must recompute: a sequential audit's p-values carry the price of its interim looks.
        "analysis": {"p_scale": results["sequential"]["p_scale"], "weight_permutations": WEIGHT_PERMUTATIONS},
        "budget": cfg.budget,
        "custody": [custody_entry("audit", f"collected {sum(len(e.records) for e in evidence.values())} answers and "
                                  f"computed results", cfg.case.examiner)],
    }
