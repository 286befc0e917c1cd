"""Run the validation study: every case of a zoo's case list, at each budget and access level, one JSON line each."""

from __future__ import annotations

import functools
import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from provenance.analysis import ANALYSIS_VERSION, check_version, evaluate, identity_plan, likelihood_plan, plan_probes
from provenance.cache import EvidenceCache
from provenance.errors import InputError
from provenance.evidence import ACCESS_LEVELS, ModelEvidence, ProbePlan, restrict
from provenance.models import LoadOptions
from provenance.pipeline import gather, likelihood_samplers, resolve_all
from provenance.probeset import load as load_probes
from provenance.report.manifest import _git_commit
from provenance.zoo.cases import case_models, case_sources, resolve_spec

STUDY_SCHEMA = "provenance-study-rows/1"
DEFAULT_BUDGETS = (100, 200, 400)  # the default audit budget and one smaller and one larger (protocol, section 3)
# Fewer permutations than an audit's 9,999: the weight test's floor is then 1e-3, still far below ALPHA / 2 for a
# weight-sharing copy, and the study runs it 3 budgets x 4 cases' worth of times per model pair.
STUDY_PERMUTATIONS = 999


@dataclass
class StudyConfig:
    zoo: Path  # a lineage zoo directory with labels.json and cases.json
    out: Path  # where rows.jsonl (and the summary) go
    budgets: Sequence[int] = DEFAULT_BUDGETS
    access: Sequence[str] = ACCESS_LEVELS
    split: str = "all"  # dev | heldout | all
    kinds: Sequence[str] = ("null", "related")
    limit: int | None = None  # at most this many cases (in run order), for a quick look
    seed: int = 0
    progress: bool = True
    cache: EvidenceCache | None = None
    options: LoadOptions = field(default_factory=LoadOptions)
    workers: int = 1  # processes, each on every N-th case, sharing the (locked) evidence cache and rows.jsonl
    shard: tuple[int, int] | None = None  # (k, N): this process's part (set for the workers)
    analysis_version: int = ANALYSIS_VERSION  # 3: comparison sources per case (zoo.cases.case_sources)
    likelihood_set: str = "instructions"  # the likelihood prompts (docs/study-protocol-v3.md: two arms)


def load_cases(zoo: Path) -> dict[str, Any]:
    path = Path(zoo) / "cases.json"
    if not path.is_file():
        raise InputError(f"{zoo} has no cases.json (build the zoo with `provenance zoo lineages`)")
    return json.loads(path.read_text())


def selected(cases: Mapping[str, Any], cfg: StudyConfig) -> list[dict[str, Any]]:
    """The cases to run, in the run order: a seeded shuffle of the case list (protocol amendment 1), so that the
    cases finished at any moment are a random sample of all of them, null and related alike."""
    out = [c for c in cases["cases"] if c["type"] in cfg.kinds and cfg.split in ("all", c["split"])]
    random.Random(f"study-order-{cfg.seed}").shuffle(out)
    out = out[: cfg.limit] if cfg.limit is not None else out
    return out[cfg.shard[0]:: cfg.shard[1]] if cfg.shard else out


def built(zoo: Path, case: Mapping[str, Any]) -> bool:
    """Every model of the case is finished (a partial zoo: the other cases wait for the build)."""
    from provenance.zoo.train import is_complete

    for m in [case["suspect"], case["reference"], *case["controls"]]:
        if m.get("path") or Path(m["spec"]).is_absolute():
            if not is_complete(Path(resolve_spec(zoo, m))):
                return False
    return True


@functools.lru_cache(maxsize=4)
def zoo_labels(zoo: Path) -> dict[str, Any]:
    """A zoo's labels.json, read once per process (every version-3 case picks its comparison sources from it)."""
    return json.loads((Path(zoo) / "labels.json").read_text())


def other_version(rows_path: Path, version: int) -> int | None:
    """The analysis version of the first row written by another version than `version` (None: none is)."""
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            try:
                v = json.loads(line).get("analysis_version")
            except json.JSONDecodeError:
                continue
            if v is not None and v != version:
                return int(v)
    return None


def done_keys(rows_path: Path) -> set[tuple[str, int, str]]:
    keys: set[tuple[str, int, str]] = set()
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: that case is simply run again
                continue
            keys.add((r["case"], r["budget"], r["access"]))
    return keys


def _plans(budget: int, sets: Mapping[str, Any], version: int = ANALYSIS_VERSION
           ) -> tuple[list[ProbePlan], ProbePlan, ProbePlan]:
    plans = [*plan_probes(budget, sets["continuation"], sets["next-token"]), identity_plan(budget, sets["identity"])]
    return plans, likelihood_plan(budget, sets["instructions"], version), ProbePlan(sets["yardstick"], None, "yardstick")


def case_rows(case: Mapping[str, Any], cfg: StudyConfig, sets: Mapping[str, Any], todo: set[tuple[int, str]]
              ) -> Iterator[dict[str, Any]]:
    """Collect the case's evidence once at the largest budget (every smaller plan is a prefix of it, so the answers
    are the ones a smaller audit would have got), then evaluate each (budget, access) still to do."""
    zoo = Path(cfg.zoo)
    s, r, ctrl, lineages = case_models(zoo, case)
    resolved = resolve_all([s, r, *ctrl], cfg.options, lineages)
    for k, m in resolved.items():
        m.lineage = lineages[k]
    version = cfg.analysis_version
    sources: dict[str, Any] = {}
    if version >= 3:  # the sources as an audit would have them: lineage known, in no seat
        picked = case_sources(zoo_labels(zoo), case)
        sources = resolve_all([resolve_spec(zoo, m) for m in picked], cfg.options,
                              {resolve_spec(zoo, m): m["family"] for m in picked})
    top = max(b for b, _ in todo)
    plans, ll, yard = _plans(top, sets, version)
    t0 = time.time()
    evidence, _ = gather(resolved, plans, ll, likelihood_samplers(version, [r], ctrl, sources, resolved), cfg.cache,
                         False, yard, seed=cfg.seed, sources=sources)
    collect_s = time.time() - t0
    for budget in sorted({b for b, _ in todo}):
        bplans, bll, _ = _plans(budget, sets, version)
        used = [*bplans, bll, yard]
        for access in [a for a in cfg.access if (budget, a) in todo]:
            t1 = time.time()
            ev: dict[str, ModelEvidence] = {k: (restrict(v, access) if k == s else v) for k, v in evidence.items()}
            entry = evaluate(ev, s, [r], ctrl, used, cfg.seed, STUDY_PERMUTATIONS, version=version,
                             sources=list(sources))[0]
            yield row(case, budget, access, entry, {"collect": round(collect_s, 2),
                                                    "evaluate": round(time.time() - t1, 2)}, version,
                      sets["instructions"].id, suspect=s)


def row(case: Mapping[str, Any], budget: int, access: str, entry: Mapping[str, Any], seconds: Mapping[str, float],
        version: int = ANALYSIS_VERSION, likelihood_set: str = "instructions", suspect: str | None = None
        ) -> dict[str, Any]:
    """One study row: the case's ground truth and every raw p-value the audit computed (nothing thresholded away)."""
    comb = entry.get("combination") or {}
    tests = {t["name"]: t for t in entry["tests"]}
    kind = entry.get("competence_check") or {}
    return {
        "schema": STUDY_SCHEMA, "analysis_version": version,
        "case": case["id"], "type": case["type"], "split": case["split"], "design": case.get("design"),
        "relation_kind": case.get("relation_kind"), "truth": case.get("truth", "independent"),
        "tags": case.get("tags", []), "families": case["families"],
        "suspect": case["suspect"]["id"], "reference": case["reference"]["id"],
        "controls": [c["id"] for c in case["controls"]],
        "control_lineages": len(set(case["families"]["controls"])),
        "budget": budget, "access": access,
        "verdict": entry["verdict"], "p_value": entry["p_value"], "p_unadjusted": entry["p_value_unadjusted"],
        "behaviour_p": comb.get("behaviour_p"), "weights_p": comb.get("weights_p"),
        "carried_by": comb.get("carried_by"),
        "tests": {n: {"p": t.get("p_value"), "skipped": t.get("skipped"),
                      "rank_p": (t.get("details") or {}).get("rank_p_value")} for n, t in tests.items()},
        "placebo_flagged": (entry.get("placebo") or {}).get("flagged", []),
        **({"comparison_sources": entry.get("comparison_sources", []), "likelihood_set": likelihood_set}
           if version >= 3 else {}),
        "placebo_ran": (entry.get("placebo") or {}).get("ran", False),
        "competence": competence_numbers(kind, suspect),
        "reason": entry.get("reason"),
        "seconds": dict(seconds),
        # The code that wrote the row (protocol amendment 1: it changed mid-study); cached from the run's start.
        "commit": _git_commit()["commit"] or "unknown",
    }


def competence_numbers(kind: Mapping[str, Any], suspect: str | None) -> dict[str, Any]:
    """The competence check's numbers (nats per byte), so the study can measure how far outside the controls' range
    a suspect may lie before the null fails (the margin is provisional until then). `distance` is how far the suspect
    lies outside the controls' range (0 inside; positive above, negative below)."""
    out: dict[str, Any] = {"ran": kind.get("ran"), "suspect_outside": kind.get("suspect_outside")}
    comp, rng = kind.get("competence") or {}, kind.get("controls_range")
    v = comp.get(suspect) if suspect else None
    if kind.get("ran") and rng and v is not None:
        lo, hi = rng
        out.update(suspect=round(v, 5), controls_range=[round(lo, 5), round(hi, 5)], margin=round(kind["margin"], 5),
                   distance=round(v - hi if v > hi else v - lo if v < lo else 0.0, 5))
    return out


def error_row(case: Mapping[str, Any], budget: int, access: str, message: str, version: int = ANALYSIS_VERSION
              ) -> dict[str, Any]:
    entry = {"verdict": "error", "p_value": None, "p_value_unadjusted": None, "tests": [], "reason": message}
    return row(case, budget, access, entry, {}, version)


def one_thread() -> None:
    """One thread per worker process: small models gain little from threads, processes use the cores better."""
    from provenance.models.hf import pin_threads

    pin_threads(1)


def _worker(cfg: StudyConfig) -> dict[str, Any]:
    one_thread()
    return run_study(cfg)


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    """Resumable: rows already in `out/rows.jsonl` are kept; cases whose models are not built yet are left for later."""
    from provenance.fsutil import append_line

    if cfg.workers > 1:
        import multiprocessing as mp

        parts = [replace(cfg, workers=1, shard=(k, cfg.workers), progress=cfg.progress and k == 0)
                 for k in range(cfg.workers)]
        with mp.get_context("spawn").Pool(cfg.workers) as pool:
            got = pool.map(_worker, parts)
        keys = ("cases", "ran", "already_done", "pending_build", "errors")
        return {"rows": got[0]["rows"], **{k: sum(g[k] for g in got) for k in keys}, "workers": cfg.workers}

    check_version(cfg.analysis_version)
    if not set(cfg.access) <= set(ACCESS_LEVELS):
        raise InputError(f"unknown access level (choose from {', '.join(ACCESS_LEVELS)})")
    if not cfg.budgets or min(cfg.budgets) < 10:
        raise InputError("every study budget must be at least 10 probes")
    cases = selected(load_cases(cfg.zoo), cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    other = other_version(rows_path, cfg.analysis_version)
    if other is not None:
        raise InputError(f"{rows_path} holds rows of analysis version {other}; give version "
                         f"{cfg.analysis_version}'s study its own --out")
    done = done_keys(rows_path)
    names = {"continuation": "continuation", "next-token": "next-token", "identity": "identity",
             "instructions": cfg.likelihood_set, "yardstick": "yardstick"}
    sets = {k: load_probes(v) for k, v in names.items()}
    cfg.cache = cfg.cache or EvidenceCache()
    _git_commit()  # now, at the start: rows name the code this process loaded, whatever is committed while it runs
    want = {(b, a) for b in cfg.budgets for a in cfg.access}
    pending, ran, skipped, errors = 0, 0, 0, 0
    from provenance.progress import bar

    with bar(len(cases), "study cases", cfg.progress) as pb:
        for case in cases:
            todo = {k for k in want if (case["id"], *k) not in done}
            if not todo:
                skipped += 1
            elif not built(cfg.zoo, case):
                pending += 1
            else:
                written: set[tuple[int, str]] = set()
                try:
                    for r in case_rows(case, cfg, sets, todo):
                        append_line(rows_path, json.dumps(r, sort_keys=True))
                        written.add((r["budget"], r["access"]))
                except (KeyboardInterrupt, MemoryError):
                    raise
                except Exception as exc:  # noqa: BLE001 - one broken model must not stop a study of hundreds
                    # Recorded, never dropped: an error row counts as "not flagged" (protocol, section 6). Only for
                    # what has no row yet: a failure after some rows were written must not add a second row (an
                    # error) for the same (case, budget, access), which the summary would count twice.
                    first = (str(exc).splitlines() or [""])[0][:300]
                    for b, a in sorted(todo - written):
                        append_line(rows_path, json.dumps(error_row(case, b, a, f"{type(exc).__name__}: {first}", cfg.analysis_version),
                                                          sort_keys=True))
                    errors += 1
                ran += 1
            pb.update(1)
    return {"rows": str(rows_path), "cases": len(cases), "ran": ran, "already_done": skipped,
            "pending_build": pending, "errors": errors}
