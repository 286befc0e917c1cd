"""The lineage-study zoo: the tiny build end to end (labels, cases, determinism, resumption), the full plan and its
case list checked in advance from synthetic labels, and the closed-vocabulary training it relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance.errors import InputError
from provenance.zoo.cases import draw_cases, summary
from provenance.zoo.lineages import PRESETS, build_lineages, make_plan, synthetic_labels
from tests.conftest import requires_models

# What the full build's corpus is cut into when every source is installed (ids only; the plan needs nothing else).
FULL_SLICES = ([f"pydocs-{i:03d}" for i in range(70)] + [f"jargon-{i:03d}" for i in range(20)]
               + [f"debref-{i:03d}" for i in range(4)] + [f"pytopics-{i:03d}" for i in range(9)]
               + [f"stdlib-{i:03d}" for i in range(17)])


def _lineage(case: dict[str, Any], role: str) -> set[str]:
    return set(case["families"][role]) if role != "controls" else set(case["families"]["controls"])


def _check_null_disjoint(labels: dict[str, Any], cases: dict[str, Any]) -> None:
    by_id = {m["id"]: m for m in labels["models"]}
    for c in cases["cases"]:
        if c["type"] != "null":
            continue
        r, s = by_id[c["reference"]["id"]], by_id[c["suspect"]["id"]]
        ctrl = [by_id[x["id"]] for x in c["controls"]]
        lin = lambda m: set(m["lineage_families"])  # noqa: E731
        assert not lin(r) & lin(s), c["id"]
        for m in ctrl:
            assert not lin(m) & (lin(r) | lin(s)), c["id"]
        for i, a in enumerate(ctrl):  # controls of different families share no lineage (siblings share their own)
            for b in ctrl[:i]:
                if a["family"] != b["family"]:
                    assert not lin(a) & lin(b), c["id"]
        assert {r["split"], s["split"], *(m["split"] for m in ctrl)} == {c["split"]}
        assert "suspect-lineage-absent-from-controls" in c["tags"]


def _check_related(labels: dict[str, Any], cases: dict[str, Any]) -> None:
    by_id = {m["id"]: m for m in labels["models"]}
    for c in cases["cases"]:
        if c["type"] != "related":
            continue
        s = by_id[c["suspect"]["id"]]
        chain, cur = [], s
        while cur["parent"]:
            chain.append(cur["parent"])
            cur = by_id[cur["parent"]]
        assert c["reference"]["id"] in chain, c["id"]
        assert c["truth"] == ("derived" if s["role"] == "derivative" else "distilled")
        for x in c["controls"]:
            assert not set(by_id[x["id"]]["lineage_families"]) & set(s["lineage_families"]), c["id"]


# ----------------------------------------------------------------------------------- the full plan, without training


def test_full_plan_families_splits_and_recipes() -> None:
    fams = make_plan(PRESETS["full"], FULL_SLICES)
    corpus = [f for f in fams if f.kind == "corpus"]
    assert len(fams) == 43 and len(corpus) == 40
    held = [f for f in fams if f.split == "heldout"]
    assert 12 <= len(held) <= 16  # about a third, by a fixed seed
    assert make_plan(PRESETS["full"], FULL_SLICES) == fams  # a pure function of its inputs
    dev_shapes = {(f.models[0].hidden, f.models[0].layers) for f in corpus if f.split == "dev"}
    held_shapes = {(f.models[0].hidden, f.models[0].layers) for f in corpus if f.split == "heldout"}
    assert held_shapes - dev_shapes, "held-out families should include shapes development never sees"
    assert not any(s.startswith("jargon") for f in corpus if f.split == "dev" for s in f.slices)
    assert {f.split for f in fams if f.teacher == "gemma-3-270m"} == {"heldout"}
    kinds = {m.kind for f in corpus for m in f.models}
    assert {"corpus-teacher", "sequence", "sequence-10pct", "sequence-alt", "logit", "mix", "noised", "finetuned",
            "quantized", "pruned", "merged"} <= kinds
    eval_slices = {"pydocs-069", "jargon-019", "debref-003", "pytopics-008", "stdlib-016"}
    read = {s for f in fams for m in f.models for s in m.data.get("slices", []) + m.data.get("corpus_slices", [])}
    assert not eval_slices & read
    twins = [f for f in corpus if f.twin_of]
    assert twins and all(set(f.slices) & set(next(g for g in corpus if g.id == f.twin_of).slices) for f in twins)


def test_a_changed_root_recipe_invalidates_its_descendants_only() -> None:
    """A root rebuilt from a new recipe must take its students, derivatives and merges with it (chain hashes)."""
    from dataclasses import replace

    from provenance.zoo.lineages import plan_hashes

    fams = make_plan(PRESETS["full"], FULL_SLICES)
    before = plan_hashes(fams)
    f0 = fams[0]
    root = f0.models[0]
    changed = replace(f0, models=(replace(root, data={**root.data, "epochs": 9}), *f0.models[1:]))
    after = plan_hashes([changed, *fams[1:]])
    moved = {k for k in before if before[k] != after[k]}
    assert {m.id for m in f0.models} <= moved  # the root and everything built from it
    donors = {m.id for fp in fams for m in fp.models if m.data.get("donor") == root.id}
    assert moved == {m.id for m in f0.models} | donors  # and merges that used it as donor; nothing else


def test_full_case_list_meets_the_study_requirements() -> None:
    labels = synthetic_labels("full", FULL_SLICES)
    cases = draw_cases(labels, seed=0)
    s = summary(cases)
    assert s["null"] >= 300 and s["related"] >= 100
    assert s["families_in_null"] >= 40
    for design in ("matched", "sibling-controls", "stronger-than-controls", "shared-training-text"):
        assert s["null_by_tag"].get(design, 0) >= 30, (design, s["null_by_tag"])
    assert s["null_by_tag"]["suspect-lineage-absent-from-controls"] == s["null"]
    assert set(s["related_by_kind"]) >= {"sequence", "sequence-10pct", "logit", "mix", "noised", "finetuned",
                                         "quantized", "pruned", "merged"}
    assert s["by_split"]["null:heldout"] >= 80
    _check_null_disjoint(labels, cases)
    _check_related(labels, cases)
    assert draw_cases(labels, seed=0) == cases
    assert draw_cases(labels, seed=1) != cases


# ------------------------------------------------------------------------------ the closed-vocabulary training


@pytest.mark.slow
def test_closed_vocab_loss_is_the_full_softmax_and_dead_rows_stay_zero() -> None:
    import torch

    from provenance.zoo.train import _closed_parts, closed_lm_loss, fresh_model, tiny_config, train_closed

    cfg = tiny_config(300, 16, 1, bos=1, eos=2, pad=2)
    model = fresh_model(cfg, 0)
    keep = list(range(0, 120))
    seqs = [list(np.random.default_rng(i).integers(0, 120, 20)) for i in range(16)]
    train_closed(model, seqs, 2, 1e-2, seed=0, pad=2, keep=keep, batch=8)
    w = model.get_input_embeddings().weight
    w = w.detach()
    assert float(w[120:].abs().max()) == 0.0 and float(w[:120].abs().max()) > 0
    ids = torch.tensor(seqs[:4])
    mask = torch.ones_like(ids)
    keep_t, remap, log_tail = _closed_parts(model, keep)
    with torch.no_grad():
        closed = float(closed_lm_loss(model, ids, mask, keep_t, remap, log_tail))
        full = float(torch.nn.functional.cross_entropy(model(input_ids=ids).logits[:, :-1].reshape(-1, 300),
                                                       ids[:, 1:].reshape(-1)))
    assert abs(closed - full) < 1e-4


def test_corpus_prose_filter() -> None:
    from provenance.zoo.corpus import SOURCES, build_slices, is_prose

    assert is_prose("The quick brown fox jumps over the lazy dog, and then it runs away into the forest to hide there.")
    assert not is_prose(">>> import os; os.listdir('.') returns the names of the entries in the directory given here.")
    assert not is_prose("short text.")
    topics = tuple(s for s in SOURCES if s.id == "pytopics")
    slices, manifest = build_slices(20_000, topics)  # part of the interpreter: present wherever Python is
    assert len(slices) >= 5 and manifest[0]["licence"].startswith("PSF")
    assert all(len(t) >= 10_000 for t in slices.values())


# --------------------------------------------------------------------------------------------- the tiny build


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("lineages") / "tiny"
    res = build_lineages(out, "tiny", progress=False)
    return out, res


@requires_models
@pytest.mark.slow
def test_tiny_build_labels_complete(tiny: tuple[Path, dict[str, Any]]) -> None:
    out, res = tiny
    labels = json.loads((out / "labels.json").read_text())
    assert labels["complete"] and labels["schema"].startswith("provenance-lineages-labels/")
    plan = make_plan(PRESETS["tiny"], list(json.loads((out / "corpus" / "slices.json").read_text())))
    assert {m["id"] for m in labels["models"]} == {m.id for f in plan for m in f.models}
    assert len(labels["families"]) == 3
    for m in labels["models"]:
        for key in ("id", "family", "role", "kind", "parent", "size", "budget", "data", "split", "lineage_families", "seed"):
            assert key in m, key
        assert m["split"] in ("dev", "heldout") and m["role"] in ("root", "student", "derivative")
        d = out / m["path"]
        assert (d / "config.json").is_file() and list(d.glob("*.safetensors")) and (d / "tokenizer.json").is_file()
        assert m["size"]["params"] and m["eval_nats_per_token"] is not None
        if m["role"] == "root":
            assert m["parent"] is None and m["data"]["slices"] and m["budget"]["steps"] > 0
        else:
            assert m["parent"] == f"{m['family']}/root"
    merged = [m for m in labels["models"] if m["kind"] == "merged"]
    assert merged and all(len(m["lineage_families"]) == 2 for m in merged)
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert manifest["sources"] and all(s["licence"] for s in manifest["sources"])


@requires_models
@pytest.mark.slow
def test_tiny_cases_disjoint_related_and_deterministic(tiny: tuple[Path, dict[str, Any]]) -> None:
    out, _ = tiny
    labels = json.loads((out / "labels.json").read_text())
    cases = json.loads((out / "cases.json").read_text())
    s = summary(cases)
    assert s["null"] > 0 and s["related"] > 0
    _check_null_disjoint(labels, cases)
    _check_related(labels, cases)
    assert draw_cases(labels, seed=0) == cases  # same labels, same seed: the same cases


@requires_models
@pytest.mark.slow
def test_tiny_rebuild_trains_nothing(tiny: tuple[Path, dict[str, Any]]) -> None:
    out, _ = tiny
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob(".complete")}
    cases = (out / "cases.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "provenance", "zoo", "lineages", "--preset", "tiny", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "(0 built now" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob(".complete")} == stamps
    assert (out / "cases.json").read_text() == cases
    (out / "cases.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "provenance", "zoo", "lineages", "--preset", "tiny", "--out", str(out),
                           "--cases-only"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (out / "cases.json").read_text() == cases


def test_cli_dry_run_prints_the_plan(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "provenance", "zoo", "lineages", "--preset", "tiny", "--dry-run",
                           "--out", str(tmp_path / "z")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "3 families, 33 models (0 built)" in proc.stdout and "c00" in proc.stdout
    assert not (tmp_path / "z").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_only_builds_the_named_families(tiny: tuple[Path, dict[str, Any]]) -> None:
    """One builder per core: `only` restricts the run (here to finished families: nothing to do) and draws no cases."""
    out, _ = tiny
    before = (out / "cases.json").read_text()
    res = build_lineages(out, "tiny", progress=False, only=["c01"])
    assert res["trained"] == 0 and res["summary"]["null"] == 0 and (out / "cases.json").read_text() == before
    with pytest.raises(InputError, match="no family zz9"):
        build_lineages(out, "tiny", progress=False, only=["zz9"])


def test_a_fresh_corpus_plans_as_its_frozen_copy_does() -> None:
    """Regression (2026-11-30): the run that cut the corpus planned from the sources' order of slices, every later run
    from slices.json's sorted order, so the two disagreed on every recipe and a shared build (`--only` builders, then
    the final run) rebuilt the first builder's families. Both orders are now the sorted one."""
    from provenance.zoo.corpus import SOURCES, build_slices
    from provenance.zoo.lineages import plan_hashes

    spec = PRESETS["full"]
    sources = tuple(s for s in SOURCES if spec.sources is None or s.id in spec.sources)
    fresh, _ = build_slices(spec.slice_chars, sources)
    assert len({k.rsplit("-", 1)[0] for k in fresh}) > 1  # several sources, so their order could differ
    frozen = json.loads(json.dumps(fresh, sort_keys=True))  # as ensure_corpus writes slices.json and reads it back
    assert list(fresh) == list(frozen)
    assert plan_hashes(make_plan(spec, list(fresh), None, 0)) == plan_hashes(make_plan(spec, list(frozen), None, 0))


def test_build_time_moves_out_of_lineage_json(tmp_path: Path) -> None:
    """A build time written by an older version into lineage.json moves to the hidden .build.json: the model's
    fingerprint (non-hidden files) no longer depends on how long the machine took."""
    from provenance.models import fingerprint as fp
    from provenance.zoo.lineages import BUILD_FILE, build_seconds, split_build_time

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "lineage.json").write_text(json.dumps({"id": "c00/root", "plan_sha256": "ab", "seconds": 40.6}))
    other = tmp_path.parent / (tmp_path.name + "-again")
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"weights")
    (other / "lineage.json").write_text(json.dumps({"id": "c00/root", "plan_sha256": "ab", "seconds": 55.1}))
    assert fp.combine(fp.directory_files(tmp_path)) != fp.combine(fp.directory_files(other))
    for d in (tmp_path, other):
        split_build_time(d)
        split_build_time(d)  # idempotent
        assert "seconds" not in json.loads((d / "lineage.json").read_text()) and (d / BUILD_FILE).is_file()
    assert build_seconds(tmp_path) == 40.6 and build_seconds(other) == 55.1
    assert fp.combine(fp.directory_files(tmp_path)) == fp.combine(fp.directory_files(other))


@requires_models
@pytest.mark.slow
def test_a_rebuild_trains_the_same_weights(tiny: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The build is deterministic from the plan's seed on one machine: a family rebuilt in another directory has, model
    for model, the first build's fingerprint (what a study resumed on a rebuilt zoo checks; protocol v3, amendment 5)."""
    from provenance.models import fingerprint as fp
    from provenance.zoo.lineages import model_dir

    out, _ = tiny
    again = tmp_path / "again"
    build_lineages(again, "tiny", progress=False, only=["c00"])
    labels = json.loads((out / "labels.json").read_text())
    ids = [m["id"] for m in labels["models"] if m["family"] == "c00" and m["path"]
           and (again / m["path"] / ".complete").is_file()]
    assert len(ids) >= 5, ids
    for mid in ids:
        a, b = model_dir(out, mid), model_dir(again, mid)
        assert "seconds" not in json.loads((b / "lineage.json").read_text())
        assert fp.combine(fp.directory_files(a)) == fp.combine(fp.directory_files(b)), mid


def test_models_brings_what_they_are_made_from() -> None:
    """`zoo lineages --models`: a student brings its root, a derivative its three siblings (written together), a merge
    only its own root (its donor is another family's root, left to that family's builder); unknown ids refused."""
    from provenance.zoo.lineages import needed_models

    fams = make_plan(PRESETS["full"], [f"pydocs-{i:03d}" for i in range(70)] + [f"jargon-{i:03d}" for i in range(20)])
    got = needed_models(fams, ["c00/seq-full", "c01/root-noised", "c02/merged"])
    assert got == {"c00/seq-full", "c00/root", "c01/root", "c01/root-noised", "c01/root-finetuned",
                   "c01/root-quantized", "c01/root-pruned", "c02/merged", "c02/root"}
    with pytest.raises(InputError, match="no model c99/root"):
        needed_models(fams, ["c99/root"])
