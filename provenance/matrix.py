"""`provenance matrix`: probe every model once, test every pair, correct across pairs, and draw the lineage graph."""

from __future__ import annotations

import itertools
import json
import math
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from provenance.analysis import ANALYSIS_VERSION, PairContext, identity_plan, likelihood_plan, plan_probes, plan_roles
from provenance.analysis.evaluate import deciding_behaviour, design_for, families_for, pair_results
from provenance.pipeline import check_out_dir, default_controls, gather
from provenance.cache import EvidenceCache
from provenance.collect import collect
from provenance.errors import InputError
from provenance.evidence import score_items
from provenance.fleet import FleetConfig, prefetch
from provenance.models import LoadOptions, ResolvedModel, resolve
from provenance.probeset import load as load_probes
from provenance.report.manifest import environment
from provenance.verdict import ALPHA, FLAGGED, bonferroni, combine, decide, holm

MATRIX_SCHEMA_VERSION = 1
CORRECTIONS = ("holm", "bh")
MATRIX_ALPHA = 0.05
SIZE_RATIO = 1.2  # parameter counts must differ by this factor before size alone suggests who is the student


@dataclass
class MatrixConfig:
    models: Sequence[str]
    controls: Sequence[str] | None = None
    out: Path | None = None
    budget: int = 100
    seed: int = 0
    options: LoadOptions = field(default_factory=LoadOptions)
    progress: bool = True
    cache: EvidenceCache | None = None
    likelihood_set: str | None = "instructions"
    identity_set: str | None = "identity"
    # A matrix screens many pairs for lineage: false discovery rate at 5% by default (an edge worth a full `audit` or
    # `attribute` at the 1% family-wise level before anyone files it).
    correction: str = "bh"
    alpha: float = MATRIX_ALPHA
    fleet: FleetConfig = field(default_factory=FleetConfig)  # per-model jobs on worker processes (off by default)


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """BH step-up adjusted p-values (scipy's). A screening device: the pair p-values share models and controls, so
    the positive-dependence condition under which BH controls the false discovery rate is assumed, not shown; confirm
    an edge with `audit` (family-wise at 1%) before relying on it, or use --correction holm."""
    from scipy.stats import false_discovery_control

    return [float(x) for x in false_discovery_control(np.asarray(pvalues, dtype=float), method="bh")] if pvalues else []


def safetensors_params(directory: Path | None) -> int | None:
    """Parameter count from safetensors headers alone (no tensor is read)."""
    if directory is None or not Path(directory).is_dir():
        return None
    total = 0
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        return None
    for f in files:
        with open(f, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > min(f.stat().st_size, 100 << 20):
                return None
            header = json.loads(fh.read(n))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def short_names(specs: Sequence[str]) -> dict[str, str]:
    """Readable unique labels for figures: the shortest path suffix that tells each spec apart (else the spec)."""
    parts = {s: [p for p in s.split("#")[-1].rstrip("/").split("/") if p] or [s] for s in specs}
    out: dict[str, str] = {}
    for s in specs:
        for depth in range(1, len(parts[s]) + 1):
            name = "/".join(parts[s][-depth:])
            if sum("/".join(parts[o][-depth:]) == name for o in specs) == 1:
                break
        else:
            name = s
        out[s] = name
    return out


def n_permutations_for(n_pairs: int, alpha: float = ALPHA) -> int:
    # A permutation p-value cannot go below 1/(N+1); it must survive Bonferroni within a pair (4 families, 2 directions)
    # and the correction across pairs, so N grows with the number of pairs.
    return max(999, int(math.ceil(10 * n_pairs / alpha)))


def _direction(a: str, b: str, tests_ab: list[Any], tests_ba: list[Any], verdict: str,
               params: dict[str, int | None], alpha: float = ALPHA) -> dict[str, Any] | None:
    """Who learned from whom, where a test gives it; None when the evidence has no direction."""
    if verdict not in FLAGGED:
        return None

    def ll(tests: list[Any]) -> float | None:
        return next((t.p_value for t in tests if t.name == "reference_likelihood"), None)

    l_ab, l_ba = ll(tests_ab), ll(tests_ba)  # l_ab: does `a` prefer b's sampled answers (a trained on b's outputs)?
    if l_ab is not None and l_ba is not None:
        if l_ab < alpha <= l_ba:
            return {"parent": b, "child": a, "basis": f"{a} prefers {b}'s sampled answers (p={l_ab:.3g}), not the reverse"}
        if l_ba < alpha <= l_ab:
            return {"parent": a, "child": b, "basis": f"{b} prefers {a}'s sampled answers (p={l_ba:.3g}), not the reverse"}
    pa, pb = params.get(a), params.get(b)
    if verdict == "distilled" and pa and pb and max(pa, pb) >= SIZE_RATIO * min(pa, pb):
        small, large = (a, b) if pa < pb else (b, a)
        return {"parent": large, "child": small,
                "basis": "size: the smaller model with fresh weights that matches a larger one is taken as the student"}
    return None


def prune_indirect(edges: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Edges explained by a path through a third model (data-processing inequality, as in ARACNE).

    For a triangle of significant edges, the weakest edge (largest adjusted p, then smallest evidence strength) is
    removed: two students of one teacher resemble each other through the teacher. Returns the removed pairs.
    """
    key = {(e["a"], e["b"]): (e["p_value"], -e["strength"]) for e in edges}
    key.update({(b, a): v for (a, b), v in list(key.items())})
    nodes = sorted({x for e in edges for x in (e["a"], e["b"])})
    removed: set[tuple[str, str]] = set()
    for x, y, z in itertools.combinations(nodes, 3):
        tri = [(x, y), (y, z), (x, z)]
        if all(t in key for t in tri):
            weakest = max(tri, key=lambda t: key[t])
            removed.add(weakest)
    return removed


def run_matrix(cfg: MatrixConfig) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    t0 = time.time()
    models = list(dict.fromkeys(cfg.models))
    if len(models) < 2:
        raise InputError("give at least two distinct models")
    if cfg.correction not in CORRECTIONS:
        raise InputError(f"unknown correction '{cfg.correction}' (choose from {', '.join(CORRECTIONS)})")
    controls = list(dict.fromkeys(cfg.controls)) if cfg.controls else default_controls(models[0], models[1:])
    controls = [c for c in controls if c not in models]
    if not controls:
        raise InputError("no control models: pass --control models known to be independent of every model in the matrix")
    if cfg.out is not None:
        check_out_dir(Path(cfg.out))
    plans = plan_probes(cfg.budget, load_probes("continuation"), load_probes("next-token"))
    if cfg.identity_set:
        plans.append(identity_plan(cfg.budget, load_probes(cfg.identity_set)))
    resolved: dict[str, ResolvedModel] = {s: resolve(s, cfg.options) for s in [*models, *controls]}
    ll_plan = likelihood_plan(cfg.budget, load_probes(cfg.likelihood_set)) if cfg.likelihood_set else None
    fleet_report = None
    if cfg.fleet.enabled:
        # Workers fill the shared cache, one job per model; the collection below then finds every answer there and
        # loads nothing, so the evidence and every statistic are those of a single-process run.
        cache = cfg.cache or EvidenceCache()
        extra = {m.fingerprint: [ll_plan] for m in resolved.values()} if ll_plan is not None else {}

        def items_to_score() -> list[Any]:
            by = collect(list(resolved.values()), plans, cache, progress=False, extra=extra, sampling_seed=cfg.seed)
            assert ll_plan is not None
            return score_items({s: by[m.fingerprint] for s, m in resolved.items()}, list(resolved), ll_plan)

        fleet_report = prefetch(list(resolved.values()), plans, extra, cache.root, cfg.fleet, progress=cfg.progress,
                                score_items_for=items_to_score if ll_plan is not None else None, sampling_seed=cfg.seed)
    # Every model may be someone's reference, so every model samples answers for the likelihood family.
    evidence, plans = gather(resolved, plans, ll_plan, list(resolved), cfg.cache, cfg.progress, seed=cfg.seed)
    roles = plan_roles(plans)
    pairs = list(itertools.combinations(models, 2))
    if not 0 < cfg.alpha < 1:
        raise InputError("--alpha must be between 0 and 1")
    n_perm = n_permutations_for(len(pairs), cfg.alpha)
    params = {s: safetensors_params(m.local_path) for s, m in resolved.items()}
    deciding = deciding_behaviour("matrix")
    rows: list[dict[str, Any]] = []
    raw: list[float] = []
    all_tests = []

    def direction(sus: str, ref: str) -> tuple[list[Any], Any]:
        design, _ = design_for(evidence, sus, ref, controls)
        tests = pair_results(PairContext(evidence, design, roles, cfg.seed, n_perm), "matrix")
        return tests, combine(tests, deciding)

    for a, b in pairs:
        t_ab, c_ab = direction(a, b)
        t_ba, c_ba = direction(b, a)
        p_ab = 0.0 if t_ab[0].name == "identical_files" else c_ab.p_value
        p_ba = 0.0 if t_ba[0].name == "identical_files" else c_ba.p_value
        ps = [p for p in (p_ab, p_ba) if p is not None]
        raw.append(bonferroni(ps) if ps else 1.0)  # Bonferroni over the two directions
        all_tests.append((t_ab, t_ba, p_ab, p_ba, c_ab, c_ba))
    adjusted = holm(raw) if cfg.correction == "holm" else benjamini_hochberg(raw)
    n_probes = len(roles["output"].probes)
    for (a, b), p_raw, p_adj, (t_ab, t_ba, p_ab, p_ba, c_ab, c_ba) in zip(pairs, raw, adjusted, all_tests):
        ab_first = (p_ab if p_ab is not None else 1.0) <= (p_ba if p_ba is not None else 1.0)
        best, comb = (t_ab, c_ab) if ab_first else (t_ba, c_ba)
        if best[0].name == "identical_files":
            verdict, reason = "derived", "byte-identical files"
        else:
            d = decide(comb, p_adj, p_adj, n_probes, alpha=cfg.alpha)
            verdict, reason = d.verdict, d.reason
        strength = sum(-math.log10(max(t.p_value, 1e-300)) for t in best if t.p_value is not None)
        rows.append({
            "a": a, "b": b, "verdict": verdict, "reason": reason, "p_value": p_adj, "p_value_unadjusted": p_raw,
            "strength": round(strength, 6),
            "direction": _direction(a, b, t_ab, t_ba, verdict, params, cfg.alpha),
            "tests_a_as_suspect": {t.name: t.p_value for t in t_ab},
            "tests_b_as_suspect": {t.name: t.p_value for t in t_ba},
            "affinity": {t.name: t.statistic for t in best if t.p_value is not None},
        })
    edges = [r for r in rows if r["verdict"] in FLAGGED]
    removed = prune_indirect(edges)
    for r in rows:
        r["edge"] = r["verdict"] in FLAGGED
        r["indirect"] = (r["a"], r["b"]) in removed or (r["b"], r["a"]) in removed
    names = short_names([*models, *controls])
    results = {
        "schema_version": MATRIX_SCHEMA_VERSION,
        "kind": "matrix",
        "models": [{**resolved[s].to_json(), "name": names[s], "n_params": params[s],
                    "capabilities": sorted(evidence[s].capabilities)} for s in models],
        "controls": [{**resolved[s].to_json(), "name": names[s]} for s in controls],
        "pairs": rows,
        "edges": [{"a": r["a"], "b": r["b"], "verdict": r["verdict"], "p_value": r["p_value"], "direction": r["direction"],
                   "indirect": r["indirect"]} for r in rows if r["edge"]],
        "correction": {"holm": "Holm step-down across pairs (family-wise error)",
                       "bh": "Benjamini-Hochberg across pairs (screening: its false-discovery guarantee assumes "
                             "positive dependence between pair p-values, which is not established)"}[cfg.correction],
        "alpha": cfg.alpha,
        "method": (f"Each pair is tested in both directions with the audit's registered test families against the same "
                   f"controls (control lineages as units; placebos are run by `audit`, not here); the audit's "
                   f"combination within a direction, Bonferroni over the two directions; {cfg.correction} across the "
                   f"{len(pairs)} pairs; the audit's decision rule per pair. Weight tests use {n_perm} permutations so "
                   f"their floor survives the correction. An edge of a triangle of significant edges with the weakest "
                   f"evidence is marked indirect (two students of one teacher resemble each other through it)."),
        "probe_sets": [{**p.probe_set.to_json(), "n_used": len(p.probes), "role": p.role} for p in plans],
        "analysis_version": ANALYSIS_VERSION,
        "families": {f.name: ("runs" if "matrix" in f.commands else "not applicable here") for f in families_for("audit")},
        "budget": cfg.budget,
        "seed": cfg.seed,
        "started_utc": started.isoformat(),
        "finished_utc": datetime.now(timezone.utc).isoformat(),
        "wall_seconds": round(time.time() - t0, 2),
        "environment": environment(),
    }
    if fleet_report is not None:
        results["fleet"] = fleet_report.to_json()
    if cfg.out is not None:
        from provenance.report.matrix_render import write_matrix

        transcripts = []
        seen: set[str] = set()
        for ev in evidence.values():
            if ev.model.fingerprint not in seen:
                seen.add(ev.model.fingerprint)
                transcripts.extend(ev.records)
        results["bundle_sha256"] = write_matrix(Path(cfg.out), results, transcripts)
    return results


def lineage_truth(labels: dict[str, Any], models: Sequence[str]) -> set[frozenset[str]]:
    """The zoo's true parent-child edges among `models` (labels.json `lineage`)."""
    wanted = set(models)
    return {frozenset((e["parent"], e["child"])) for e in labels.get("lineage", [])
            if e["parent"] in wanted and e["child"] in wanted}


def edge_scores(results: dict[str, Any], truth: set[frozenset[str]], direct_only: bool = True) -> dict[str, Any]:
    """Precision and recall of the recovered edges against the true lineage graph."""
    found = {frozenset((e["a"], e["b"])) for e in results["edges"] if not (direct_only and e["indirect"])}
    tp = len(found & truth)
    return {"true_edges": len(truth), "found_edges": len(found), "true_positives": tp,
            "precision": tp / len(found) if found else float("nan"), "recall": tp / len(truth) if truth else float("nan")}


__all__ = ["MatrixConfig", "run_matrix", "benjamini_hochberg", "prune_indirect", "edge_scores", "lineage_truth"]
