"""The validation study's case list, drawn (seeded, deterministic) from a lineage zoo's labels.json.

A null case is a tuple (reference R, suspect S, controls C1..Ck) in which S's lineage is disjoint from R's and from
every control's, and R's from every control's (a control may share a family with another control: the
`sibling-controls` design). A related case has R an ancestor of S (S a student or a derivative of R) and controls from
other families. Every case lies inside one split (dev or held-out) and records the families of each role, so error
rates can carry family-cluster bootstrap intervals. Families are drawn least-used first, to spread the reuse.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

CASES_SCHEMA = "provenance-lineages-cases/1"
NULL_DESIGNS = {  # design -> share of the null cases
    "matched": 0.3, "sibling-controls": 0.2, "stronger-than-controls": 0.2, "shared-training-text": 0.15,
    "assorted-controls": 0.15}
STUDENT_KINDS = ("sequence", "sequence-10pct", "sequence-alt", "mix", "logit")


def _key(m: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """A model's kind for matching controls to a suspect: recipe and shape."""
    return (m["kind"], m["size"]["hidden"], m["size"]["layers"])


class _Zoo:
    def __init__(self, labels: dict[str, Any], split: str) -> None:
        self.models = [m for m in labels["models"] if m["split"] == split]
        self.by_id = {m["id"]: m for m in labels["models"]}
        self.families = sorted({m["family"] for m in self.models})
        self.fam_slices = {f: set(v.get("slices", [])) for f, v in labels["families"].items()}
        self.by_family: dict[str, list[dict[str, Any]]] = {}
        for m in self.models:
            self.by_family.setdefault(m["family"], []).append(m)
        self.roots = {m["family"]: m for m in self.models if m["role"] == "root"}

    def lineage(self, m: dict[str, Any]) -> set[str]:
        return set(m["lineage_families"])

    def slices(self, m: dict[str, Any]) -> set[str]:
        return set().union(*(self.fam_slices.get(f, set()) for f in m["lineage_families"]))

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        sa, sb = self.slices(a), self.slices(b)
        return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


# Parameters of the packaged teachers (their labels carry none: they are not built here), from their configs.
PACKAGED_PARAMS = {"smollm2-135m-instruct": 134_515_008, "qwen2.5-coder-0.5b-instruct": 494_032_768,
                   "gemma-3-270m": 268_098_176}


def _strength(m: dict[str, Any]) -> tuple[float, float]:
    """(parameters, nats per token on the held-back slices; nan where not measured): bigger and lower is stronger."""
    ev = m.get("eval_nats_per_token")
    params = m["size"].get("params") or PACKAGED_PARAMS.get(m.get("spec") or "", 0)
    return float(params), (float(ev) if ev is not None else float("nan"))


def tags_for(zoo: _Zoo, r: dict[str, Any], s: dict[str, Any], controls: Sequence[dict[str, Any]], null: bool) -> list[str]:
    """Every hard condition that holds for the tuple, computed from the labels (not from the design that drew it)."""
    tags = []
    c_fams = [m["family"] for m in controls]
    if not (zoo.lineage(s) & set().union(*(zoo.lineage(c) for c in controls))):
        tags.append("suspect-lineage-absent-from-controls")
    if len(set(c_fams)) < len(c_fams):
        tags.append("sibling-controls")
    if controls and all(_key(c) == _key(s) for c in controls):
        tags.append("matched")
    (ps, es), (pr, er) = _strength(s), _strength(r)
    cs = [_strength(c) for c in controls]
    larger = controls and pr > 0 and all(ps > pc and pr > pc for pc, _ in cs)
    better = controls and all(es < ec and (np.isnan(er) or er < ec) for _, ec in cs) and not any(np.isnan(ec) for _, ec in cs) \
        and not np.isnan(es)
    if larger:
        tags.append("larger-than-controls")
    if better:
        tags.append("better-than-controls")
    if larger or better:
        tags.append("stronger-than-controls")
    o_sr = zoo.overlap(s, r)
    if null and o_sr > 0 and all(zoo.overlap(c, r) < o_sr for c in controls):
        tags.append("shared-training-text")
    if s["tokenizer"] == r["tokenizer"]:
        tags.append("shared-tokenizer")
    if r["kind"] == "packaged-teacher":
        tags.append("packaged-reference")
    if s["role"] == "root":
        tags.append("suspect-is-root")
    return tags


def _ref(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "spec": m["spec"], "family": m["family"], "kind": m["kind"]}


class _Drawer:
    def __init__(self, zoo: _Zoo, rng: np.random.Generator, k: int) -> None:
        self.zoo, self.rng, self.k = zoo, rng, k
        self.use: Counter[str] = Counter()
        self.seen: set[tuple[Any, ...]] = set()

    def least_used(self, fams: Sequence[str], n: int = 1) -> list[str]:
        fams = list(fams)
        if len(fams) < n:
            return []
        noise = self.rng.random(len(fams))
        order = sorted(range(len(fams)), key=lambda i: (self.use[fams[i]], noise[i]))
        return [fams[i] for i in order[:n]]

    def pick(self, models: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        return models[int(self.rng.integers(len(models)))] if models else None

    def controls(self, s: dict[str, Any], excluded: set[str], how: str) -> list[dict[str, Any]] | None:
        """k controls from families outside `excluded`, of the suspect's kind (`matched`), two from each of a few
        families (`siblings`), weaker than the suspect (`weaker`) or of assorted kinds (`assorted`)."""
        zoo, k = self.zoo, self.k
        free = [f for f in zoo.families if f not in excluded]

        def ok(m: dict[str, Any]) -> bool:
            return not (zoo.lineage(m) & excluded)

        if how == "siblings":
            fams = [f for f in free if sum(ok(m) and m["role"] == "student" for m in zoo.by_family[f]) >= 2]
            chosen = self.least_used(fams, max(1, (k + 1) // 2))
            out: list[dict[str, Any]] = []
            for f in chosen:
                studs = [m for m in zoo.by_family[f] if m["role"] == "student" and ok(m)]
                idx = self.rng.permutation(len(studs))[:2]
                out += [studs[i] for i in sorted(idx)]
            out = out[:k]
            if len(chosen) < max(1, (k + 1) // 2) or len(out) < min(k, 2):
                return None
        else:
            if how == "matched":
                cand = {f: [m for m in zoo.by_family[f] if ok(m) and _key(m) == _key(s)] for f in free}
            elif how == "weaker":
                ps, es = _strength(s)
                cand = {f: [m for m in zoo.by_family[f] if ok(m) and m["role"] != "root" and _strength(m)[0] < ps
                            and (np.isnan(es) or not _strength(m)[1] <= es)] for f in free}
            else:
                cand = {f: [m for m in zoo.by_family[f] if ok(m)] for f in free}
            fams = [f for f in free if cand[f]]
            chosen = self.least_used(fams, k)
            if len(chosen) < k:
                return None
            out = [self.pick(cand[f]) for f in chosen]  # type: ignore[misc]
            if any(m is None for m in out):
                return None
        # controls must be disjoint from each other's lineages except siblings (same family): merged models carry two
        lin = [zoo.lineage(m) for m in out]
        for i in range(len(out)):
            for j in range(i):
                if out[i]["family"] != out[j]["family"] and lin[i] & lin[j]:
                    return None
        return out

    def commit(self, key: tuple[Any, ...], fams: Sequence[str]) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        self.use.update(set(fams))
        return True


def _smallest(zoo: _Zoo) -> dict[str, Any]:
    return min((m for m in zoo.models if m["role"] == "student"), key=lambda m: _strength(m)[0], default=zoo.models[0])


def _null_case(d: _Drawer, design: str) -> dict[str, Any] | None:
    zoo = d.zoo
    fams = zoo.families
    if design == "shared-training-text":
        pairs = [(a, b) for a in fams for b in fams if a != b and a in zoo.roots and b in zoo.roots
                 and zoo.overlap(zoo.roots[a], zoo.roots[b]) > 0]
        if not pairs:
            return None
        best = max(zoo.overlap(zoo.roots[a], zoo.roots[b]) for a, b in pairs)
        strong = [(a, b) for a, b in pairs if zoo.overlap(zoo.roots[a], zoo.roots[b]) >= min(0.3, best)]
        rf, sf = strong[int(d.rng.integers(len(strong)))]
    elif design == "stronger-than-controls":  # both from families whose root is wider than the 64-wide students
        big = [f for f in fams if f in zoo.roots and _strength(zoo.roots[f])[0] > _strength(_smallest(zoo))[0]]
        pair = d.least_used(big, 2)
        if len(pair) < 2:
            return None
        rf, sf = pair if d.rng.random() < 0.5 else pair[::-1]
    else:
        pair = d.least_used([f for f in fams if f in zoo.roots], 2)
        if len(pair) < 2:
            return None
        rf, sf = pair if d.rng.random() < 0.5 else pair[::-1]
    r = zoo.roots[rf]
    s_pool = [m for m in zoo.by_family[sf] if not (zoo.lineage(m) & zoo.lineage(r))]
    if design == "stronger-than-controls":
        floor = _strength(_smallest(zoo))[0]
        s_pool = [m for m in s_pool if (m["role"] in ("root", "derivative") or m["kind"] == "sequence-alt")
                  and _strength(m)[0] > floor]
    elif design == "shared-training-text":
        s_pool = [m for m in s_pool if m["role"] in ("root", "derivative")] or s_pool
    s = d.pick(s_pool)
    if s is None:
        return None
    excluded = zoo.lineage(r) | zoo.lineage(s)
    how = {"matched": "matched", "sibling-controls": "siblings", "stronger-than-controls": "weaker",
           "shared-training-text": "assorted", "assorted-controls": "assorted"}[design]
    controls = d.controls(s, excluded, how)
    if controls is None:
        return None
    tags = tags_for(zoo, r, s, controls, null=True)
    if design == "shared-training-text" and "shared-training-text" not in tags:
        return None
    if design == "stronger-than-controls" and "stronger-than-controls" not in tags:
        return None
    key = (r["id"], s["id"], tuple(sorted(c["id"] for c in controls)))
    c_fams = [c["family"] for c in controls]
    if not d.commit(key, [rf, sf] + c_fams):
        return None
    return {"type": "null", "truth": "independent", "design": design, "tags": tags, "reference": _ref(r),
            "suspect": _ref(s), "controls": [_ref(c) for c in controls],
            "families": {"reference": sorted(zoo.lineage(r)), "suspect": sorted(zoo.lineage(s)), "controls": c_fams},
            "overlap_suspect_reference": round(zoo.overlap(s, r), 3)}


def _related_cases(d: _Drawer) -> list[dict[str, Any]]:
    zoo = d.zoo
    out = []
    for f in zoo.families:
        if f not in zoo.roots:
            continue
        r = zoo.roots[f]
        for s in zoo.by_family[f]:
            if s["role"] == "root":
                continue
            excluded = zoo.lineage(r) | zoo.lineage(s)
            controls = None
            for _ in range(10):  # a draw can fail when two picked controls share a merged lineage: draw again
                controls = d.controls(s, excluded, "matched") or d.controls(s, excluded, "assorted")
                if controls is not None:
                    break
            if controls is None:
                continue
            key = (r["id"], s["id"], tuple(sorted(c["id"] for c in controls)))
            c_fams = [c["family"] for c in controls]
            d.commit(key, [f] + c_fams)
            out.append({"type": "related", "truth": s["relation_to_parent"], "relation_kind": s["kind"],
                        "tags": tags_for(zoo, r, s, controls, null=False), "reference": _ref(r), "suspect": _ref(s),
                        "controls": [_ref(c) for c in controls],
                        "families": {"reference": sorted(zoo.lineage(r)), "suspect": sorted(zoo.lineage(s)),
                                     "controls": c_fams}})
    return out


def draw_cases(labels: dict[str, Any], seed: int = 0, n_null: int = 360, n_controls: int = 4) -> dict[str, Any]:
    """The study's case list: `n_null` null tuples (split over dev and held-out in proportion to their families) and
    one related tuple per descendant; the same labels and seed always give the same list."""
    splits = sorted({m["split"] for m in labels["models"]})
    fam_split = {f: v["split"] for f, v in labels["families"].items()}
    n_fams = {sp: sum(1 for f in {m["family"] for m in labels["models"]} if fam_split.get(f) == sp) for sp in splits}
    total_fams = max(sum(n_fams.values()), 1)
    cases: list[dict[str, Any]] = []
    for sp in splits:
        zoo = _Zoo(labels, sp)
        k = min(n_controls, len(zoo.families) - 2)
        if k < 1:
            continue
        rng = np.random.default_rng([seed, splits.index(sp), 16])
        d = _Drawer(zoo, rng, k)
        quota = int(round(n_null * n_fams[sp] / total_fams))
        null: list[dict[str, Any]] = []
        for design, share in NULL_DESIGNS.items():
            want, tries, got = int(round(quota * share)), 0, 0
            while got < want and tries < 40 * max(want, 1):
                tries += 1
                case = _null_case(d, design)
                if case is not None:
                    null.append(case)
                    got += 1
        related = _related_cases(d)
        for i, c in enumerate(null + related):
            c["id"] = f"{c['type']}-{sp}-{i:04d}"
            c["split"] = sp
            c["all_families"] = sorted(set(c["families"]["reference"]) | set(c["families"]["suspect"])
                                       | set(c["families"]["controls"]))
            cases.append(c)
    return {"schema": CASES_SCHEMA, "seed": seed, "n_controls": n_controls, "labels_complete": labels.get("complete"),
            "families": {sp: n_fams[sp] for sp in splits}, "cases": cases}


def summary(cases: dict[str, Any]) -> dict[str, Any]:
    """Counts of the case list: by type, split, design, tag and relation kind, and how often families recur."""
    cs = cases["cases"]
    use = Counter(f for c in cs if c["type"] == "null" for f in c["all_families"])
    return {"null": sum(c["type"] == "null" for c in cs), "related": sum(c["type"] == "related" for c in cs),
            "by_split": dict(Counter(f"{c['type']}:{c['split']}" for c in cs)),
            "null_by_design": dict(Counter(c["design"] for c in cs if c["type"] == "null")),
            "null_by_tag": dict(Counter(t for c in cs if c["type"] == "null" for t in c["tags"])),
            "related_by_kind": dict(Counter(c["relation_kind"] for c in cs if c["type"] == "related")),
            "related_by_truth": dict(Counter(c["truth"] for c in cs if c["type"] == "related")),
            "families_in_null": len(use), "null_cases_per_family": {"min": min(use.values(), default=0),
                                                                   "max": max(use.values(), default=0)}}


def case_models(zoo_dir: Path, case: dict[str, Any]) -> tuple[str, str, list[str], dict[str, str]]:
    """(suspect, reference, controls, lineages) of a case as the study audits it: lineage as a user would know it,
    the reference's and each control's (a panel), never the suspect's."""
    from provenance.evidence import UNKNOWN_LINEAGE

    s, r = resolve_spec(zoo_dir, case["suspect"]), resolve_spec(zoo_dir, case["reference"])
    ctrl = [resolve_spec(zoo_dir, c) for c in case["controls"]]
    lineages = {r: case["reference"]["family"], **{c: m["family"] for c, m in zip(ctrl, case["controls"])},
                s: UNKNOWN_LINEAGE}
    return s, r, ctrl, lineages


def case_sources(labels: dict[str, Any], case: dict[str, Any], n: int = 2) -> list[dict[str, Any]]:
    """Analysis v3's comparison sources for a case: `n` roots of the reference's kind (packaged teachers for a packaged
    reference, corpus roots for a corpus one), of no family of the reference's or the suspect's lineage and sharing no
    corpus slice with the reference's family; chosen by a hash of the case id, so a case always gets the same ones.
    A control's family may be a source's (its unit then never scores that source's answers)."""
    import hashlib

    fams = labels["families"]
    by_id = {m["id"]: m for m in labels["models"]}
    rf = case["reference"]["family"]
    taken = {rf, *by_id[case["suspect"]["id"]].get("lineage_families", []),
             *by_id[case["reference"]["id"]].get("lineage_families", [])}
    ref_slices = set(fams[rf].get("slices") or [])
    roots = [m for m in labels["models"] if m["role"] == "root" and m["family"] not in taken
             and fams[m["family"]]["kind"] == fams[rf]["kind"]
             and not set(fams[m["family"]].get("slices") or []) & ref_slices]
    roots.sort(key=lambda m: hashlib.sha256(f"{case['id']}|{m['id']}".encode()).hexdigest())
    return [_located(m) for m in roots[:n]]


def _located(m: dict[str, Any]) -> dict[str, Any]:
    """A labels entry as a case names a model, with its directory relative to the zoo where it has one."""
    return _ref(m) | ({"path": m["path"]} if m.get("path") else {})


def cases_from_rows(rows: Sequence[dict[str, Any]], labels: dict[str, Any]) -> dict[str, Any]:
    """A case list rebuilt from a study's rows (`study.outputs.read_rows`): each case id with the suspect, reference
    and controls its first row recorded (in their order), the models' entries taken from `labels` (a zoo's
    labels.json). To audit a study's cases tuple for tuple on another build of the zoo, whose own draw names other
    tuples under the same ids (docs/study-protocol-v3.md, amendment 4). Cases with a model that `labels` lacks (a
    partial build) are left out and counted."""
    by_id = {m["id"]: m for m in labels["models"]}
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        first.setdefault(r["case"], r)
    cases, missing = [], 0
    for cid, r in first.items():
        ids = [r["suspect"], r["reference"], *r["controls"]]
        if not all(i in by_id for i in ids):
            missing += 1
            continue
        m = [_located(by_id[i]) for i in ids]
        cases.append({"id": cid, "type": r["type"], "split": r["split"], "design": r.get("design"),
                      "relation_kind": r.get("relation_kind"), "truth": r.get("truth"), "tags": r.get("tags", []),
                      "families": r["families"], "suspect": m[0], "reference": m[1], "controls": m[2:]})
    return {"schema": "provenance-cases-from-rows/1", "left_out_partial_build": missing, "cases": cases}


def resolve_spec(zoo_dir: Path, model: dict[str, Any]) -> str:
    """What to pass to `provenance audit` for a model of the zoo: its directory (relative to the zoo, so a moved zoo
    still resolves) or the packaged model's name."""
    return str(Path(zoo_dir) / model["path"]) if model.get("path") else model["spec"]
