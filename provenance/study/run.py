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
    relation_kinds: Sequence[str] | None = None  # related cases of these relation kinds only (a stage of a study)
    limit: int | None = None  # at most this many cases (in run order), for a quick look
    seed: int = 0
    progress: bool = True
    cache: EvidenceCache | None = None
    options: LoadOptions = field(default_factory=LoadOptions)
    workers: int = 1  # processes, each on every N-th case, sharing the (locked) evidence cache and rows.jsonl
    shard: tuple[int, int] | None = None  # (k, N): this process's part (set for the workers)
    analysis_version: int = ANALYSIS_VERSION  # 3: comparison sources per case (zoo.cases.case_sources)
    likelihood_set: str = "instructions"  # the likelihood prompts (docs/study-protocol-v3.md: two arms)
    # Other studies' rows.jsonl whose cases this study must share, tuple for tuple (protocol v3, amendment 4: an arm
    # once ran on a redrawn case list under the same case ids and nothing noticed).
    same_cases_as: Sequence[Path] = ()


def load_cases(zoo: Path) -> dict[str, Any]:
    path = Path(zoo) / "cases.json"
    if not path.is_file():
        raise InputError(f"{zoo} has no cases.json (build the zoo with `provenance zoo lineages`)")
    return json.loads(path.read_text())


def case_tuple(case: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """What a case id stands for: its suspect, its reference and its controls (model ids; the order is the draw's)."""
    return case["suspect"]["id"], case["reference"]["id"], tuple(c["id"] for c in case["controls"])


def row_tuples(rows_path: Path) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Each case id's tuple as a study's rows recorded it (the first row of each case; cut lines are skipped)."""
    from provenance.study.outputs import read_rows  # outputs imports this module

    out: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for r in read_rows(rows_path) if Path(rows_path).is_file() else []:
        out.setdefault(r["case"], (r["suspect"], r["reference"], tuple(r["controls"])))
    return out


def check_same_cases(cases: Sequence[Mapping[str, Any]], rows_path: Path, what: str) -> None:
    """Refuse (InputError) when a case id of `cases` names another tuple in `rows_path` than in the case list: the zoo
    was rebuilt and its cases redrawn since those rows were written, and rows under one id would mean two cases."""
    recorded = row_tuples(rows_path)
    differ = [c["id"] for c in cases if c["id"] in recorded and recorded[c["id"]] != case_tuple(c)]
    if differ:
        shared = sum(1 for c in cases if c["id"] in recorded)
        raise InputError(f"the zoo's case list is not the one {what} ran on: {len(differ)} of the {shared} case ids "
                         f"in both name another suspect, reference or controls (first: {differ[0]}); the zoo was "
                         "rebuilt or its cases redrawn since. Run on the zoo and cases.json those rows came from, or "
                         "start a new study in a new --out")


def pin_case_list(zoo: Path, out: Path) -> None:
    """Copy the zoo's cases.json beside the rows when a study starts (with the hashes of the case list and labels.json,
    in zoo.json), and refuse to go on if the zoo's list has changed since: the copy is what the rows were drawn from."""
    from provenance.fsutil import atomic_write_bytes, atomic_write_json, sha256_file

    pinned, current = out / "cases.json", Path(zoo) / "cases.json"
    if pinned.is_file():
        if sha256_file(pinned) != sha256_file(current):
            raise InputError(f"{current} is not the case list this study started on ({pinned}): the zoo was rebuilt "
                             "or its cases redrawn. Run on the zoo those cases came from, or start a new --out")
        return
    atomic_write_bytes(pinned, current.read_bytes())
    labels = Path(zoo) / "labels.json"
    atomic_write_json(out / "zoo.json", {
        "zoo": str(zoo), "cases_sha256": sha256_file(current),
        "labels_sha256": sha256_file(labels) if labels.is_file() else None,
        "pinned_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "note": "the case list this study runs on, copied when it started; a resume on another list is refused "
                "(docs/study-protocol-v3.md, amendment 4)"})


class BuildMismatch(InputError):
    """The zoo on this machine is not the build a study's rows were measured on (another model under a pinned name)."""


FINGERPRINTS_FILE = "fingerprints.json"


def machine_info() -> dict[str, Any]:
    """What decides whether a rebuild trains the same weights: the CPU's vector unit as torch dispatches to it (the
    2026-12-01 rebuilds on two machines differed), torch's version and the platform."""
    import platform

    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "processor": platform.processor() or None}


def zoo_fingerprints(zoo: Path) -> dict[str, str]:
    """Every finished zoo-trained model's fingerprint (the hash of its non-hidden files, as an audit resolves it), by
    model id. Packaged models are pinned by their package versions instead (scripts/setup.sh)."""
    from provenance.models import fingerprint as fp

    out: dict[str, str] = {}
    if not (Path(zoo) / "labels.json").is_file():  # a hand-made case list of fake or packaged models: nothing built
        return out
    for m in zoo_labels(Path(zoo))["models"]:
        if m.get("path") and finished(Path(zoo) / m["path"]):
            out[m["id"]] = fp.combine(fp.directory_files(Path(zoo) / m["path"]))
    return out


def pinned_fingerprints(out: Path) -> dict[str, str]:
    f = Path(out) / FINGERPRINTS_FILE
    return json.loads(f.read_text())["models"] if f.is_file() else {}


def check_fingerprints(pinned: Mapping[str, str], current: Mapping[str, str], what: str) -> None:
    """Refuse (BuildMismatch) when a model both name has other files now: rows from two builds under one name would
    pool two models (protocol v3, amendment 5: a study spans machines only where a rebuild reproduces the weights)."""
    differ = sorted(k for k in current if k in pinned and pinned[k] != current[k])
    if differ:
        raise BuildMismatch(f"the zoo here is not the build {what} ran on: {len(differ)} of the "
                            f"{sum(1 for k in current if k in pinned)} models in both have other files (first: "
                            f"{differ[0]}); this machine trained other weights. Resume on a machine whose rebuild "
                            "reproduces the pinned fingerprints, or start a new study in a new --out")


def pin_fingerprints(zoo: Path, out: Path, same_cases_as: Sequence[Path] = ()) -> None:
    """Pin every zoo model's fingerprint beside the rows when a study starts; on a resume (or beside rows this study
    must share cases with) check the zoo against the pins first. Models built since the pin are added."""
    from provenance.fsutil import atomic_write_json

    current = zoo_fingerprints(zoo)
    for other in same_cases_as:
        check_fingerprints(pinned_fingerprints(Path(other).parent), current, str(other))
    pinned = pinned_fingerprints(out)
    check_fingerprints(pinned, current, f"this study's own rows ({Path(out) / 'rows.jsonl'})")
    if pinned and set(current) <= set(pinned):
        return
    atomic_write_json(Path(out) / FINGERPRINTS_FILE, {
        "schema": "provenance-zoo-fingerprints/1", "machine": machine_info(),
        "note": "each zoo model's fingerprint when this study started (docs/study-protocol-v3.md, amendment 5); a "
                "resume on a zoo with other files under these names is refused",
        "models": {**current, **pinned}})


def selected(cases: Mapping[str, Any], cfg: StudyConfig) -> list[dict[str, Any]]:
    """The cases to run, in the run order: a seeded shuffle of the case list (protocol amendment 1), so that the
    cases finished at any moment are a random sample of all of them, null and related alike."""
    out = [c for c in cases["cases"] if c["type"] in cfg.kinds and cfg.split in ("all", c["split"])
           and (cfg.relation_kinds is None or c.get("relation_kind") in cfg.relation_kinds)]
    random.Random(f"study-order-{cfg.seed}").shuffle(out)
    out = out[: cfg.limit] if cfg.limit is not None else out
    return out[cfg.shard[0]:: cfg.shard[1]] if cfg.shard else out


def finished(d: Path) -> bool:
    """A zoo model is finished once its weights are (`.complete`) and, in a lineage zoo, its `lineage.json` is written,
    the builder's last step: a model caught between the two must be neither audited nor pinned (its fingerprint changes
    when the file appears)."""
    from provenance.zoo.train import is_complete

    if not is_complete(d):
        return False
    lineage_zoo = (d.parent.parent.parent / "labels.json").is_file() and d.parent.parent.name == "families"
    return (d / "lineage.json").is_file() or not lineage_zoo


def built(zoo: Path, case: Mapping[str, Any], version: int = ANALYSIS_VERSION) -> bool:
    """Every model of the case is finished, its comparison sources too from version 3 on (a partial zoo: the other
    cases wait for the build; a source not built yet must not become an error row)."""
    sources = case_sources(zoo_labels(Path(zoo)), dict(case)) if version >= 3 else []
    for m in [case["suspect"], case["reference"], *case["controls"], *sources]:
        if m.get("path") or Path(m["spec"]).is_absolute():
            if not finished(Path(resolve_spec(zoo, m))):
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


def case_rows(case: Mapping[str, Any], cfg: StudyConfig, sets: Mapping[str, Any], todo: set[tuple[int, str]],
              cases_hash: str | None = None, pinned: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
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
    # Which build of the zoo the row measured (protocol v3, amendment 4): a rebuild trains other weights under the
    # same names, so each model's fingerprint (the hash of its files) goes in the row, with the case list's hash.
    build = {"cases_sha256": cases_hash, "fingerprints": {
        "suspect": resolved[s].fingerprint, "reference": resolved[r].fingerprint,
        "controls": [resolved[c].fingerprint for c in ctrl]}}
    ids = [case["suspect"]["id"], case["reference"]["id"], *(c["id"] for c in case["controls"])]
    check_fingerprints(pinned or {}, {i: resolved[k].fingerprint for i, k in zip(ids, [s, r, *ctrl])},
                       "this study's rows")  # a model swapped after the start (a rebuild while the study runs)
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
            yield {**row(case, budget, access, entry, {"collect": round(collect_s, 2),
                                                       "evaluate": round(time.time() - t1, 2)}, version,
                         sets["instructions"].id, suspect=s), "build": build}


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
        "tests": {n: {"p": t.get("p_value"), "statistic": t.get("statistic"), "skipped": t.get("skipped"),
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


def guard_case_list(cfg: StudyConfig, every: Sequence[Mapping[str, Any]]) -> None:
    """Before any row: the zoo's case list is the one this study's rows (and any --same-cases-as rows) were drawn
    from, and it is pinned beside the rows (protocol v3, amendment 4)."""
    out = Path(cfg.out)
    for other_rows in cfg.same_cases_as:
        if not Path(other_rows).is_file():
            raise InputError(f"--same-cases-as: no such rows file {other_rows}")
        check_same_cases(every, Path(other_rows), str(other_rows))
    check_same_cases(every, out / "rows.jsonl", f"this study's own rows ({out / 'rows.jsonl'})")  # a redrawn list
    out.mkdir(parents=True, exist_ok=True)
    pin_case_list(Path(cfg.zoo), out)
    pin_fingerprints(Path(cfg.zoo), out, [Path(p) for p in cfg.same_cases_as])


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    """Resumable: rows already in `out/rows.jsonl` are kept; cases whose models are not built yet are left for later."""
    from provenance.fsutil import append_line

    if cfg.workers > 1:
        guard_case_list(cfg, load_cases(cfg.zoo)["cases"])
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
    every = load_cases(cfg.zoo)["cases"]
    cases = selected({"cases": every}, cfg)
    out = Path(cfg.out)
    rows_path = out / "rows.jsonl"
    if cfg.shard is None:  # workers: their parent checked
        guard_case_list(cfg, every)
    other = other_version(rows_path, cfg.analysis_version)
    if other is not None:
        raise InputError(f"{rows_path} holds rows of analysis version {other}; give version "
                         f"{cfg.analysis_version}'s study its own --out")
    done = done_keys(rows_path)
    from provenance.fsutil import sha256_file

    cases_hash = sha256_file(Path(cfg.zoo) / "cases.json")  # the list these rows come from (amendment 4), hashed now
    pinned = pinned_fingerprints(out)
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
            elif not built(cfg.zoo, case, cfg.analysis_version):
                pending += 1
            else:
                written: set[tuple[int, str]] = set()
                try:
                    for r in case_rows(case, cfg, sets, todo, cases_hash, pinned):
                        append_line(rows_path, json.dumps(r, sort_keys=True))
                        written.add((r["budget"], r["access"]))
                except (KeyboardInterrupt, MemoryError, BuildMismatch):  # another build: stop, never an error row
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
