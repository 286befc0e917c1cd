"""The validation study's machinery: rows, resumption, summary statistics, the record and an audit's copy of it.

Plumbing on the seeded fake backend (no detection claim: the study's numbers come from real zoo models, see
docs/study-protocol.md); one check on real tiny zoo models that a weight-sharing copy is found through the runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenance.study.record import access_level, check_copy, load_record, match
from provenance.study.summary import clopper_pearson, cluster_bootstrap, likelihood_ratio, one_sided, summarize

FAMS = [f"f{i}" for i in range(6)]


def _m(fam: str, spec: str, kind: str) -> dict[str, Any]:
    return {"family": fam, "id": f"{fam}/{kind}", "kind": kind, "spec": spec}


def _case(i: int, ref: int, sus: int, related: bool) -> dict[str, Any]:
    r = FAMS[ref]
    s = _m(r, f"fake:{r}s?teacher={r}&q=0.9", "student") if related else _m(FAMS[sus], f"fake:{FAMS[sus]}s?teacher={FAMS[sus]}&q=0.9", "student")
    ctrl = [_m(f, f"fake:{f}", "root") for f in FAMS if f not in (r, s["family"])][:4]
    return {"id": f"{'related' if related else 'null'}-dev-{i:04d}", "type": "related" if related else "null",
            "split": "dev", "design": "matched", "tags": [], "relation_kind": "sequence" if related else None,
            "truth": "distilled" if related else "independent", "reference": _m(r, f"fake:{r}", "root"),
            "suspect": s, "controls": ctrl,
            "families": {"reference": [r], "suspect": [s["family"]], "controls": [c["family"] for c in ctrl]}}


@pytest.fixture()
def fake_zoo(tmp_path: Path, isolated_cache: Path) -> Path:
    cases = [_case(0, 0, 1, False), _case(1, 2, 3, False), _case(2, 0, 0, True)]
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "cases.json").write_text(json.dumps({"schema": "test", "cases": cases}))
    return zoo


def test_runner_rows_resume_and_record(fake_zoo: Path, tmp_path: Path) -> None:
    from provenance.study.outputs import write_outputs
    from provenance.study.run import StudyConfig, run_study

    out = tmp_path / "study"
    cfg = StudyConfig(fake_zoo, out, budgets=(40, 60), access=("weights", "text"), progress=False)
    res = run_study(cfg)
    assert res["ran"] == 3 and res["pending_build"] == 0
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 * 2
    assert {(r["case"], r["budget"], r["access"]) for r in rows} == {(c, b, a) for c in ("null-dev-0000", "null-dev-0001",
                                                                                           "related-dev-0002")
                                                                     for b in (40, 60) for a in ("weights", "text")}
    text = [r for r in rows if r["access"] == "text"]
    assert all(r["tests"]["next_token_divergence"]["p"] is None and r["tests"]["weight_alignment"]["p"] is None
               for r in text)  # text access: no top-k, no weights
    assert all(r["tests"]["output_agreement"]["p"] is not None for r in rows)  # raw p-values are kept
    # A kill mid-line loses only that line; a rerun redoes what is missing and nothing else.
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:30])
    again = run_study(StudyConfig(fake_zoo, out, budgets=(40, 60), access=("weights", "text"), progress=False))
    assert again["ran"] == 1 and again["already_done"] == 2
    # The record: written from the rows, matched to an audit's conditions, its copy checked.
    root = tmp_path / "records"
    written = write_outputs(out, fake_zoo, write_record=True, record_root=root)
    assert (out / "summary.md").is_file() and (out / "qq-null-all.png").is_file() is False  # no budget-200 rows
    rec, sha = load_record(2, root)  # type: ignore[misc]
    assert written["rows"] == 12 and rec["schema"] == "provenance-validation/1" and rec["rows"] == 12
    m = match(rec, sha, 2, "text", 75, 4)
    assert m["matched"] and m["entry"]["budget"] == 60 and m["entry"]["access"] == "text"
    assert not match(rec, sha, 2, "text", 30, 4)["matched"]  # below every studied budget
    assert "at least 4 control lineages" in match(rec, sha, 2, "text", 75, 3)["reason"]
    assert check_copy(m, root) == ([], [])
    forged = {**m, "entry": {**m["entry"], "budget": 61}}
    assert check_copy(forged, root)[0]
    assert check_copy({**m, "record_sha256": "0" * 64}, root)[1]  # another release's record: a note, not a finding


def test_audit_carries_the_matching_validation(isolated_cache: Path) -> None:
    from provenance.audit import AuditConfig, run_audit
    from tests.conftest import FAKE_CONTROLS, FAKE_REFERENCE, FAKE_SUSPECT

    res = run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], controls=list(FAKE_CONTROLS),
                                budget=40, progress=False))
    v = res["validation"]
    assert v["analysis_version"] == 2 and v["budget"] == 40 and v["control_lineages"] == 5
    if load_record(2) is None:
        assert not v["matched"] and "no validation record" in v["reason"]


def test_exact_intervals_and_likelihood_ratio() -> None:
    lo, hi = clopper_pearson(0, 300)
    assert lo == 0 and hi == pytest.approx(0.01223, abs=2e-5)
    assert one_sided(0, 300, 0.95, upper=True) == pytest.approx(1 - 0.05 ** (1 / 300), rel=1e-9)  # the "rule of 3"
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.18709, abs=1e-4) and hi == pytest.approx(0.81291, abs=1e-4)
    lr = likelihood_ratio(90, 100, 0, 300)
    assert lr["point"] is None and lr["point_infinite"]
    assert lr["lower95"] == pytest.approx(one_sided(90, 100, 0.975, False) / one_sided(0, 300, 0.975, True))
    assert 60 < lr["lower95"] < 70
    boot = cluster_bootstrap([{"c": "a", "f": 1}, {"c": "a", "f": 1}, {"c": "b", "f": 0}, {"c": "b", "f": 0}],
                             lambda r: bool(r["f"]), lambda r: r["c"], reps=500)
    assert boot["clusters"] == 2 and boot["ci95"][0] == 0.0 and boot["ci95"][1] == 1.0  # two clusters: anything goes


def test_summary_cells_and_access_levels() -> None:
    base = {"split": "dev", "families": {"suspect": ["a"], "reference": ["b"]}, "p_unadjusted": 0.5,
            "tests": {"output_agreement": {"p": 0.5}}, "relation_kind": None}
    rows = [{**base, "type": "null", "budget": 200, "access": "text", "verdict": "no_evidence"},
            {**base, "type": "null", "budget": 200, "access": "text", "verdict": "distilled"},
            {**base, "type": "related", "budget": 200, "access": "text", "verdict": "distilled",
             "relation_kind": "sequence", "truth": "distilled"}]
    cells = {(c["split"], c["access"]): c for c in summarize(rows)["cells"]}
    c = cells[("all", "text")]
    assert c["null"]["decision"]["k"] == 1 and c["null"]["n"] == 2 and c["related"]["by_kind"]["sequence"]["k"] == 1
    assert access_level(["text", "top_logprobs"]) == "top_k" and access_level(["weights", "logits"]) == "weights"


@pytest.mark.slow
def test_real_tiny_zoo_noised_copy_found_through_the_runner(tmp_path: Path, isolated_cache: Path) -> None:
    """Real tiny models (the zoo's tiny preset): the runner's weights row flags the noised copy, its text row cannot."""
    from provenance.study.run import StudyConfig, run_study
    from provenance.zoo.lineages import build_lineages

    zoo = tmp_path / "tiny"
    build_lineages(zoo, "tiny", progress=False)
    cases = json.loads((zoo / "cases.json").read_text())
    noised = [c for c in cases["cases"] if c.get("relation_kind") == "noised"][:1]
    assert noised
    (zoo / "cases.json").write_text(json.dumps({**cases, "cases": noised}))
    out = tmp_path / "study"
    run_study(StudyConfig(zoo, out, budgets=(40,), access=("weights", "text"), progress=False))
    rows = {r["access"]: r for r in map(json.loads, (out / "rows.jsonl").read_text().splitlines())}
    assert rows["weights"]["verdict"] == "derived" and rows["weights"]["tests"]["weight_alignment"]["p"] < 0.01
    assert rows["text"]["tests"]["weight_alignment"]["p"] is None and rows["text"]["verdict"] != "derived"


@pytest.mark.slow
def test_two_workers_write_the_same_rows_as_one(fake_zoo: Path, tmp_path: Path) -> None:
    from provenance.study.run import StudyConfig, run_study

    one, two = tmp_path / "one", tmp_path / "two"
    run_study(StudyConfig(fake_zoo, one, budgets=(40,), access=("weights", "text"), progress=False))
    res = run_study(StudyConfig(fake_zoo, two, budgets=(40,), access=("weights", "text"), progress=False, workers=2))
    assert res["ran"] == 3 and res["workers"] == 2

    def key(path: Path) -> list[tuple[Any, ...]]:
        rows = [json.loads(x) for x in (path / "rows.jsonl").read_text().splitlines()]
        return sorted((r["case"], r["access"], r["verdict"], r["p_unadjusted"]) for r in rows)

    assert key(one) == key(two)


def _threads_after_a_load(path: str) -> int:
    import os

    import torch

    from provenance.models.hf import HFBackend
    from provenance.study.run import one_thread

    from provenance.models import hf

    os.environ.pop("OMP_NUM_THREADS", None)  # as a study started from a plain shell (no test worker's setting)
    hf.busy_elsewhere = lambda *a, **k: 0  # as on an idle machine: without one_thread the load would take every core
    one_thread()
    HFBackend("m", Path(path))  # a model load sets the thread count again, from the environment
    return torch.get_num_threads()


@pytest.mark.slow
def test_a_study_worker_keeps_one_thread_after_loading_a_model(tmp_path: Path) -> None:
    """Two workers with two torch threads each on two cores: every process ran many times slower (the study's first
    hours). A worker must still have one thread after the backend loaded a model."""
    import multiprocessing as mp
    import os

    from tests.conftest import tiny_llama

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one usable core: a load takes one thread anyway")

    path = tiny_llama(tmp_path / "m", seed=1, name="m", lineage="m")
    with mp.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_threads_after_a_load, (str(path),)) == 1


def test_likelihood_ratio_edge_cases() -> None:
    """0 of 411 detected over 0 of 360 false positives is 0/0 (undefined), not an infinite LR; a positive detection
    rate over 0 false positives is infinite; the lower bound stays the exact ratio of the one-sided 97.5% bounds."""
    none = likelihood_ratio(0, 411, 0, 360)
    assert none["point"] is None and not none["point_infinite"] and none["lower95"] == 0.0
    every = likelihood_ratio(411, 411, 0, 360)
    assert every["point"] is None and every["point_infinite"]
    # all detected: lower bound 0.025 ** (1 / 411); none flagged: upper bound 1 - 0.025 ** (1 / 360)
    assert every["lower95"] == pytest.approx(0.025 ** (1 / 411) / (1 - 0.025 ** (1 / 360)), rel=1e-9)
    assert 97 < every["lower95"] < 98  # protocol section 5: 100 is not reachable with 360 null cases
    zero = likelihood_ratio(0, 411, 3, 360)
    assert zero["point"] == 0.0 and not zero["point_infinite"] and zero["lower95"] == 0.0


def test_combined_p_rates_leave_out_rows_without_a_p() -> None:
    """Four null rows: combined p 0.001, 0.03, 0.5 and an error row with none. Below 0.05: 2 of the 3 that have a p
    (not 2 of 4, which would count the error row as p = 1); below 0.01: 1 of 3. Families alike ("ran")."""
    base = {"split": "dev", "type": "null", "budget": 200, "access": "weights", "relation_kind": None,
            "families": {"suspect": ["a"], "reference": ["b"]}}
    rows = [{**base, "verdict": "no_evidence", "p_unadjusted": p, "tests": {"output_agreement": {"p": p}}}
            for p in (0.001, 0.03, 0.5)]
    rows.append({**base, "verdict": "error", "p_unadjusted": None, "tests": {}})
    null = next(c for c in summarize(rows)["cells"] if c["split"] == "all")["null"]
    assert null["n"] == 4 and null["errors"] == 1 and null["decision"]["k"] == 0 and null["decision"]["n"] == 4
    assert null["combined"]["ran"] == 3
    assert (null["combined"]["0.05"]["k"], null["combined"]["0.05"]["n"]) == (2, 3)
    assert (null["combined"]["0.01"]["k"], null["combined"]["0.01"]["n"]) == (1, 3)
    fam = null["families"]["output_agreement"]
    assert fam["ran"] == 3 and (fam["0.05"]["k"], fam["0.05"]["n"]) == (2, 3)


def test_stated_bounds_are_never_rounded_past_what_was_measured() -> None:
    """A likelihood-ratio lower bound of 99.96 is not stated as 100.0 (the protocol's target, and ENFSI's next band),
    nor a false-positive upper bound of 1.0049% as 1.00% (Primary 1's target): in the report's sentence and the
    record's summary."""
    from provenance.report.evaluation import evaluation

    entry = {"split": "all", "budget": 200, "access": "weights",
             "related": {"detected": {"k": 400, "n": 411}},
             "null": {"decision": {"k": 0, "n": 360, "upper95_one_sided": 0.010049}},
             "likelihood_ratio": {"lower95": 99.96}}
    ev = evaluation({"propositions": {}, "references": [{"verdict": "derived"}],
                     "validation": {"matched": True, "entry": entry}})
    assert "at least 99 times" in ev["statement"] and ev["band"] == "moderate support"
    assert "flagged in 400 of 411 related and 0 of 360 independent cases" in ev["statement"]
    rec = {"analysis_version": 2, "conditions": {"control_lineages": [4]}, "entries": [entry]}
    m = match(rec, "0" * 64, 2, "weights", 250, 4)
    assert m["matched"] and m["entry"]["budget"] == 200
    assert "at least 99.9 (one-sided 95%)" in m["summary"] and "95% upper bound 1.01%" in m["summary"]


def test_a_record_applies_only_to_audits_with_the_likelihood_prompts_it_measured() -> None:
    """Version 3's record was measured with one likelihood prompt set (protocol v3: the continuation arm); an audit
    whose likelihood family sampled other prompts is not the measured one and quotes no rate; a record that names no
    set (version 2's) applies as before; `verify` re-matches with the bundle's set."""
    entry = {"split": "all", "budget": 200, "access": "logits",
             "related": {"detected": {"k": 73, "n": 411}},
             "null": {"decision": {"k": 1, "n": 360, "upper95_one_sided": 0.0132}},
             "likelihood_ratio": {"lower95": 9.5}}
    rec = {"analysis_version": 3, "entries": [entry],
           "conditions": {"control_lineages": [4], "likelihood_sets": ["continuation-samples"]}}
    assert match(rec, "0" * 64, 3, "logits", 200, 4, "continuation-samples")["matched"]
    m = match(rec, "0" * 64, 3, "logits", 200, 4, "instructions")
    assert not m["matched"] and "entry" not in m
    assert "likelihood prompts continuation-samples; this audit used instructions" in m["reason"]
    assert "--likelihood-probes continuation-samples" in m["reason"]
    assert not match(rec, "0" * 64, 3, "logits", 200, 4, None)["matched"]  # no likelihood family at all
    old = {**rec, "conditions": {"control_lineages": [4]}}
    assert match(old, "0" * 64, 3, "logits", 200, 4, "instructions")["matched"]


def test_a_case_failing_after_some_rows_gets_error_rows_only_for_the_rest(fake_zoo: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The second evaluation fails (the first case's text row, after its weights row was written): that case gets one
    error row (text), not an error row for weights beside the real one; 3 cases x 2 access = 6 rows, one per key.
    A rows file that already holds such a duplicate is summarised with the first row of each key."""
    from provenance.study import run
    from provenance.study.outputs import write_outputs

    calls = {"n": 0}
    real = run.evaluate

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "evaluate", flaky)
    out = tmp_path / "study"
    run.run_study(run.StudyConfig(fake_zoo, out, budgets=(40,), access=("weights", "text"), progress=False))
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    keys = [(r["case"], r["budget"], r["access"]) for r in rows]
    assert len(rows) == 6 and len(set(keys)) == 6
    assert [r["access"] for r in rows if r["verdict"] == "error"] == ["text"]
    # A duplicate already in a rows file (an error row after the real one) counts once, as the real row.
    real_row = next(r for r in rows if r["verdict"] != "error")
    with (out / "rows.jsonl").open("a") as f:
        f.write(json.dumps({**real_row, "verdict": "error"}) + "\n")
    res = write_outputs(out, fake_zoo)
    assert res["rows"] == 6 and res["duplicate_rows_left_out"] == 1
    cells = json.loads((out / "summary.json").read_text())["cells"]
    cell = next(c for c in cells if c["split"] == "all" and c["access"] == real_row["access"])
    assert cell["null"]["n"] + cell["related"]["n"] == 3 and cell["null"]["errors"] + cell["related"]["errors"] == 0


def test_summary_table_cuts_the_likelihood_ratio_bound() -> None:
    """summary.md: a lower bound of 99.96 reads '>= 99.9', not '>= 100.0' (the protocol's LR target); Primary 1's
    one-sided bound is cut upwards (0.83% stays 0.83%, 1.0049% reads 1.01%), and the inconclusive and error counts
    are in the table, not only in summary.json."""
    from provenance.study.outputs import markdown

    cell = {"split": "all", "budget": 200, "access": "weights",
            "null": {"n": 360, "decision": {"k": 0, "n": 360, "ci95": [0.0, 0.0102], "upper95_one_sided": 0.010049},
                     "inconclusive": 7, "errors": 1},
            "related": {"n": 411, "detected": {"k": 400, "n": 411, "ci95": [0.95, 0.99]}, "inconclusive": 5,
                        "errors": 0},
            "likelihood_ratio": {"point": None, "point_infinite": True, "lower95": 99.96}}
    row = markdown({"cells": [cell]}).splitlines()[2]
    assert "| inf (>= 99.9) |" in row and "| 1.01% |" in row and "| 7/5 | 1/0 |" in row


def test_secondary_outputs_reasons_nulls_needed_and_a_qq_plot_per_family(tmp_path: Path) -> None:
    """Protocol sections 4-5: why verdicts were inconclusive (numbers folded so one rule counts once), how many null
    cases none flagged would bring the LR bound to 100, and one QQ plot per family beside the joint one."""
    import math

    from provenance.study.summary import likelihood_ratio, one_sided, qq_plot, reasons

    base = {"verdict": "inconclusive", "tests": {}}
    got = reasons([{**base, "reason": "only 2 control lineages (need 3)"},
                   {**base, "reason": "only 1 control lineages (need 3)"},
                   {**base, "reason": "placebo flagged c07 at p = 1.2e-05"},
                   {**base, "verdict": "no_evidence", "reason": "not counted"}])
    assert got == {"only # control lineages (need #)": 2, "placebo flagged c# at p = #": 1}
    # 400/411 detected: lower 97.5% bound t; 0 of n flagged gives 1 - 0.025^(1/n) <= t/100
    # from n >= ln(.025) / ln(1 - t/100)
    lr = likelihood_ratio(400, 411, 0, 360)
    n = lr["null_cases_for_target"]["null_cases_none_flagged"]
    t = one_sided(400, 411, 0.975, upper=False)  # 0.9526
    assert 1 - 0.025 ** (1 / n) <= t / 100 < 1 - 0.025 ** (1 / (n - 1)) and n == 386  # 360 are not enough
    assert likelihood_ratio(0, 411, 0, 360)["null_cases_for_target"]["null_cases_none_flagged"] is None
    assert not math.isnan(n)
    rows = [{"tests": {"output_agreement": {"p": p}, "weights": {"p": None}}, "p_unadjusted": p}
            for p in (0.2, 0.5, 0.9)]
    qq_plot(rows, tmp_path / "one.png", "t", only="output_agreement")
    qq_plot(rows, tmp_path / "none.png", "t", only="weights")  # a family that never ran: an empty plot, no error
    assert (tmp_path / "one.png").stat().st_size > 1000 and (tmp_path / "none.png").is_file()


def test_access_table_prices_each_level_in_requests_to_the_suspect() -> None:
    """The access-level benchmark (issue #18): each level's rates beside what it asks of the suspect."""
    from provenance.study.outputs import access_markdown, suspect_requests

    text, logits = suspect_requests(200, "text"), suspect_requests(200, "logits")
    # 100 continuations + 100 next-token probes + 25 identity questions; scoring: 40 answers x 5 samplers + 12 passages
    assert text == {"answers": 225, "scored_texts": 0, "total": 225}
    assert logits == {"answers": 225, "scored_texts": 212, "total": 437} and suspect_requests(200, "top_k") == text
    base = {"split": "dev", "families": {"suspect": ["a"], "reference": ["b"]}, "p_unadjusted": 0.5,
            "tests": {"output_agreement": {"p": 0.5}}, "relation_kind": None, "budget": 200}
    rows = [{**base, "type": t, "access": a, "verdict": v, "truth": "distilled" if t == "related" else "independent",
             **({"relation_kind": "sequence"} if t == "related" else {})}
            for a in ("text", "logits") for t, v in (("null", "no_evidence"), ("related", "distilled"))]
    md = access_markdown(summarize(rows), 200)
    assert "| text | 225 (225 + 0) | 0/1" in md and "| logits | 437 (225 + 212) | 0/1" in md


def _labels(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """labels.json for the fake zoo: every case model, plus the roots of two families no case uses (sources)."""
    models = {m["id"]: m for c in cases for m in [c["reference"], c["suspect"], *c["controls"]]}
    for f in ("x0", "x1"):
        models[f"{f}/root"] = _m(f, f"fake:{f}?skill=0.4", "root")
    rows = [{**m, "role": "root" if m["kind"] == "root" else "student", "lineage_families": [m["family"]],
             "path": None} for m in models.values()]
    fams = {m["family"]: {"kind": "corpus", "slices": [f"s-{m['family']}"]} for m in rows}
    return {"models": rows, "families": fams}


def test_a_v3_study_gives_each_case_comparison_sources_and_keeps_its_rows_apart(fake_zoo: Path,
                                                                                  tmp_path: Path) -> None:
    from provenance.errors import InputError
    from provenance.study.run import StudyConfig, run_study
    from provenance.zoo.cases import case_sources

    cases = json.loads((fake_zoo / "cases.json").read_text())["cases"]
    labels = _labels(cases)
    (fake_zoo / "labels.json").write_text(json.dumps(labels))
    for c in cases:  # never the reference's or the suspect's family; of the reference's kind; stable per case
        got = case_sources(labels, c)
        assert len(got) == 2 and not {m["family"] for m in got} & {c["reference"]["family"], c["suspect"]["family"]}
        assert got == case_sources(labels, c)
    out = tmp_path / "v3"
    run_study(StudyConfig(fake_zoo, out, budgets=(40,), access=("logits",), progress=False, analysis_version=3,
                          likelihood_set="continuation-samples"))
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["analysis_version"] == 3 and len(r["comparison_sources"]) == 2 for r in rows)
    assert {r["likelihood_set"] for r in rows} == {"continuation-samples"}
    assert all("capable_likelihood" in r["tests"] and "reference_likelihood" not in r["tests"] for r in rows)
    # Plumbing, not power: the fake student (it copies its teacher on 90% of prompts) ranks below both null cases.
    p = {r["case"]: r["tests"]["capable_likelihood"]["p"] for r in rows}
    assert max(v for k, v in p.items() if k.startswith("related")) < min(v for k, v in p.items() if k.startswith("null"))
    from provenance.study.outputs import suspect_requests

    v2, v3 = suspect_requests(200, "logits"), suspect_requests(200, "logits", version=3)
    assert v3["scored_texts"] - v2["scored_texts"] == 100 * 3 - 40 * 5  # v3: 100 prompts x (R + 2 sources)
    with pytest.raises(InputError, match="holds rows of analysis version 3"):
        run_study(StudyConfig(fake_zoo, out, budgets=(40,), access=("logits",), progress=False))


def test_each_test_gets_its_own_band_ratio_with_a_bound_on_the_side_it_points() -> None:
    """Per-test likelihood ratios: counts per p band among related and null rows, a lower bound where the band favours
    H1, an upper bound where it favours H0, none where a rate has no cases; the report reads the audit's band."""
    from provenance.report.evaluation import per_test
    from provenance.study.summary import P_BANDS, band_of, band_ratio, test_bands

    assert [band_of(p) for p in (0.0, 0.0009, 0.001, 0.0099, 0.01, 0.049, 0.05, 1.0)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(P_BANDS) == 3
    strong = band_ratio(200, 400, 0, 300)
    lo1 = one_sided(200, 400, 0.975, upper=False)
    assert strong["point_infinite"] and strong["side"] == "lower"
    assert strong["bound"] == pytest.approx(lo1 / one_sided(0, 300, 0.975, upper=True))
    weak = band_ratio(100, 400, 290, 300)
    assert weak["side"] == "upper" and weak["point"] == pytest.approx(0.25 / (290 / 300))
    assert weak["bound"] == pytest.approx(one_sided(100, 400, 0.975, upper=True) / one_sided(290, 300, 0.975, upper=False))
    assert band_ratio(0, 400, 0, 300)["bound"] is None and band_ratio(3, 0, 1, 10)["bound"] is None

    def row(kind: str, p: float | None) -> dict[str, Any]:
        return {"type": kind, "tests": {"t": {"p": p}}}

    rows_null = [row("null", 0.5)] * 98 + [row("null", 0.02)] * 2 + [row("null", None)]
    rows_rel = [row("related", 0.0001)] * 60 + [row("related", 0.3)] * 40
    tb = test_bands(rows_null, rows_rel)["t"]
    assert tb["ran"] == {"null": 100, "related": 100}  # a row without a p is left out, never counted as p = 1
    assert [b["related"][0] for b in tb["bands"]] == [60, 0, 0, 40]
    assert [b["null"][0] for b in tb["bands"]] == [0, 0, 2, 98]
    entry = {"tests": {"t": tb}}
    res = {"validation": {"matched": True, "entry": entry},
           "references": [{"spec": "ref", "tests": [{"name": "t", "p_value": 0.0002},
                                                     {"name": "u", "p_value": 0.0002},
                                                     {"name": "t", "p_value": None, "skipped": "not run"}]}]}
    (only,) = per_test(res)  # a test the record has no bands for, and a skipped test, get no row
    assert only["band"] == "p < 0.001" and only["related"] == [60, 100] and only["null"] == [0, 100]
    assert only["words"].startswith("at least ") and only["words"].endswith("for H1")
    res["references"][0]["tests"][0]["p_value"] = 0.7
    assert per_test(res)[0]["words"].endswith("for H0")
    res["validation"]["matched"] = False
    assert per_test(res) == []


def test_a_resampled_p_value_gets_a_monte_carlo_interval_and_an_analytic_one_none() -> None:
    from provenance.report.render import monte_carlo_interval

    draws = [0.1] * 990 + [0.9] * 9
    lo, hi = monte_carlo_interval({"statistic": 0.5, "details": {"null_distribution": draws}})
    assert lo < 9 / 999 < hi and (lo, hi) == clopper_pearson(9, 999)
    assert monte_carlo_interval({"statistic": 0.5, "details": {}}) is None


def test_a_record_rewritten_from_the_same_rows_keeps_the_study_it_describes(fake_zoo: Path, tmp_path: Path) -> None:
    """Summarising the same rows again (newer summary code) keeps the record's commit, date and zoo, since the zoo
    directory may have grown since the study, and logs the rewrite; other rows make a new record."""
    from provenance.study.outputs import write_outputs
    from provenance.study.run import StudyConfig, run_study

    out, root = tmp_path / "rows", tmp_path / "records"
    run_study(StudyConfig(fake_zoo, out, (100,), ("logits",), "all", limit=2, progress=False))
    write_outputs(out, fake_zoo, write_record=True, record_root=root)
    first = json.loads(record_path_for(root).read_text())
    first["zoo"] = {"labels_sha256": "the study's", "cases_sha256": "the study's"}
    record_path_for(root).write_text(json.dumps(first))
    write_outputs(out, fake_zoo, write_record=True, record_root=root)
    again = json.loads(record_path_for(root).read_text())
    assert again["zoo"] == first["zoo"] and again["commit"] == first["commit"] and len(again["rewritten"]) == 1
    assert "tests" in again["entries"][0]
    with open(out / "rows.jsonl", "a") as fh:  # other rows: a new study, described afresh
        fh.write(json.dumps({**json.loads((out / "rows.jsonl").read_text().splitlines()[0]), "case": "extra"}) + "\n")
    write_outputs(out, fake_zoo, write_record=True, record_root=root)
    assert json.loads(record_path_for(root).read_text())["zoo"] != first["zoo"]


def record_path_for(root: Path) -> Path:
    from provenance.study.record import record_path

    return record_path(2, root)


def test_a_p_beyond_every_study_case_is_read_in_the_nearest_band_that_holds_cases() -> None:
    """The study's permutation test stops at 1/1000; an audit with more permutations can go below: its p is read in
    the nearest less extreme band with cases, and the row says so."""
    from provenance.report.evaluation import per_test
    from provenance.study.summary import test_bands

    rows = ([{"type": "related", "tests": {"w": {"p": 0.001}}}] * 50 + [{"type": "related", "tests": {"w": {"p": 0.5}}}]
            * 50 + [{"type": "null", "tests": {"w": {"p": 0.4}}}] * 100)
    tb = test_bands([r for r in rows if r["type"] == "null"], [r for r in rows if r["type"] == "related"])
    res = {"validation": {"matched": True, "entry": {"tests": tb}},
           "references": [{"spec": "a", "tests": [{"name": "w", "p_value": 0.0001}]},
                          {"spec": "b", "tests": [{"name": "w", "p_value": 0.003}]}]}
    deep, plain = per_test(res)
    assert deep["related"] == plain["related"] == [50, 100] and deep["words"] == plain["words"]
    assert "read there" in deep["band"] and "read there" not in plain["band"]
    assert deep["band"].startswith("0.001 \u2264 p < 0.01")


def test_rows_record_how_far_the_suspect_lies_outside_the_controls_competence_range() -> None:
    from provenance.study.run import competence_numbers

    kind = {"ran": True, "competence": {"s": -1.2, "r": -1.0, "c1": -1.6, "c2": -1.5}, "controls_range": [-1.6, -1.5],
            "margin": 0.15, "suspect_outside": True}
    got = competence_numbers(kind, "s")
    assert got["distance"] == pytest.approx(0.3) and got["suspect"] == -1.2 and got["controls_range"] == [-1.6, -1.5]
    assert got["suspect_outside"] is True and got["margin"] == 0.15
    below = competence_numbers({**kind, "competence": {**kind["competence"], "s": -1.7}}, "s")
    assert below["distance"] == pytest.approx(-0.1)
    inside = competence_numbers({**kind, "competence": {**kind["competence"], "s": -1.55}}, "s")
    assert inside["distance"] == 0.0
    # A check that did not run records only that.
    assert competence_numbers({"ran": False, "suspect_outside": False}, "s") == {"ran": False, "suspect_outside": False}


def test_a_study_refuses_a_case_list_redrawn_under_the_same_ids(fake_zoo: Path, tmp_path: Path) -> None:
    """Protocol v3, amendment 4: an arm ran on a redrawn case list under the same case ids and nothing noticed. A
    resume on a redrawn list, and a study told to share another's cases (--same-cases-as), now stop with one line
    (exit 2); rows record the case list's hash and each model's fingerprint (which build they measured)."""
    from provenance.errors import InputError
    from provenance.fsutil import sha256_file
    from provenance.study.run import StudyConfig, run_study
    from tests.clirun import run_cli

    out = tmp_path / "study"
    run_study(StudyConfig(fake_zoo, out, budgets=(40,), access=("text",), progress=False))
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert {r["build"]["cases_sha256"] for r in rows} == {sha256_file(fake_zoo / "cases.json")}
    assert all(len(r["build"]["fingerprints"]["controls"]) == len(r["controls"]) for r in rows)
    cases = json.loads((fake_zoo / "cases.json").read_text())
    cases["cases"][1]["controls"] = cases["cases"][1]["controls"][::-1]  # the same models, drawn in another order
    redrawn = tmp_path / "redrawn"
    redrawn.mkdir()
    (redrawn / "cases.json").write_text(json.dumps(cases))
    with pytest.raises(InputError, match="1 of the 3 case ids in both name another"):
        run_study(StudyConfig(redrawn, out, budgets=(40, 60), access=("text",), progress=False))
    proc = run_cli("validate", "--zoo", str(redrawn), "--out", str(tmp_path / "new"), "--budgets", "40",
                   "--access", "text", "--same-cases-as", str(out / "rows.jsonl"), "--no-progress")
    assert proc.returncode == 2 and "null-dev-0001" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "new" / "rows.jsonl").exists()
    # The case list is pinned beside the rows when a study starts; a resume on another list is refused even for cases
    # that have no row yet.
    assert (out / "cases.json").read_bytes() == (fake_zoo / "cases.json").read_bytes()
    assert json.loads((out / "zoo.json").read_text())["cases_sha256"] == sha256_file(fake_zoo / "cases.json")
    cases["cases"][1]["controls"] = cases["cases"][1]["controls"][::-1]  # back as drawn
    cases["cases"].append({**cases["cases"][0], "id": "null-dev-0009"})  # a new case, no row of it yet
    (redrawn / "cases.json").write_text(json.dumps(cases))
    with pytest.raises(InputError, match="not the case list this study started on"):
        run_study(StudyConfig(redrawn, out, budgets=(40,), access=("text",), progress=False))
    # The unchanged list passes the same check.
    assert run_study(StudyConfig(fake_zoo, tmp_path / "same", budgets=(40,), access=("text",), progress=False,
                                 same_cases_as=(out / "rows.jsonl",)))["ran"] == 3


def test_a_case_list_rebuilt_from_rows_names_the_tuples_the_rows_ran(fake_zoo: Path, tmp_path: Path) -> None:
    """cases_from_rows: each case id's suspect, reference and controls as the rows recorded them, the models' entries
    from labels; a case with a model the labels lack (a partial build) is left out and counted."""
    from provenance.study.outputs import read_rows
    from provenance.study.run import StudyConfig, case_tuple, run_study
    from provenance.zoo.cases import cases_from_rows

    out = tmp_path / "study"
    run_study(StudyConfig(fake_zoo, out, budgets=(40,), access=("text",), progress=False))
    drawn = json.loads((fake_zoo / "cases.json").read_text())["cases"]
    models = {m["id"]: m for c in drawn for m in [c["suspect"], c["reference"], *c["controls"]]}
    got = cases_from_rows(read_rows(out / "rows.jsonl"), {"models": list(models.values())})
    assert got["left_out_partial_build"] == 0
    assert {c["id"]: case_tuple(c) for c in got["cases"]} == {c["id"]: case_tuple(c) for c in drawn}
    assert all(c["type"] in ("null", "related") and c["families"] for c in got["cases"])
    partial = cases_from_rows(read_rows(out / "rows.jsonl"),
                              {"models": [m for i, m in models.items() if i != "f0/root"]})
    uses_f0 = [c for c in drawn if "f0/root" in (case_tuple(c)[0], case_tuple(c)[1], *case_tuple(c)[2])]
    assert uses_f0 and partial["left_out_partial_build"] == len(uses_f0)
    assert len(partial["cases"]) + partial["left_out_partial_build"] == len(drawn)


def test_a_study_resumed_on_another_build_of_the_zoo_is_refused(fake_zoo: Path, tmp_path: Path) -> None:
    """Protocol v3, amendment 5: a study that spans machines resumes only where the rebuild reproduces the weights.
    Every built model's fingerprint is pinned beside the rows when the study starts; a zoo whose model has other files
    under a pinned name stops the resume (and --same-cases-as) with one line, exit 2; the same files rebuilt (new
    mtimes, a build time in the hidden .build.json) pass."""
    from provenance.study.run import FINGERPRINTS_FILE, BuildMismatch, StudyConfig, run_study
    from tests.clirun import run_cli

    models = []
    for mid in ("c00/root", "c00/seq-full"):
        d = fake_zoo / "families" / mid
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(mid.encode())
        (d / ".complete").write_text("built")
        (d / "lineage.json").write_text(json.dumps({"id": mid}))  # the builder's last step
        models.append({"id": mid, "path": f"families/{mid}"})
    (fake_zoo / "labels.json").write_text(json.dumps({"models": models + [{"id": "p-smollm2/root", "path": None}]}))
    out = tmp_path / "study"
    run_study(StudyConfig(fake_zoo, out, budgets=(40,), access=("text",), progress=False))
    pinned = json.loads((out / FINGERPRINTS_FILE).read_text())
    assert set(pinned["models"]) == {"c00/root", "c00/seq-full"} and pinned["machine"]["cpu_capability"]
    # A model caught between its weights (.complete) and its lineage.json (the builder's last step) is not finished:
    # neither pinned nor audited, since its fingerprint changes when the file appears.
    half = fake_zoo / "families" / "c01" / "root"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / ".complete").write_text("built")
    labels = json.loads((fake_zoo / "labels.json").read_text())
    (fake_zoo / "labels.json").write_text(json.dumps({"models": labels["models"] + [{"id": "c01/root",
                                                                                      "path": "families/c01/root"}]}))
    from provenance.study.run import zoo_fingerprints, zoo_labels

    zoo_labels.cache_clear()
    assert "c01/root" not in zoo_fingerprints(fake_zoo)
    seq = fake_zoo / "families" / "c00" / "seq-full"
    (seq / "model.safetensors").write_bytes(b"other weights")  # retrained elsewhere: same name, other model
    with pytest.raises(BuildMismatch, match="1 of the 2 models in both have other files"):
        run_study(StudyConfig(fake_zoo, out, budgets=(40, 60), access=("text",), progress=False))
    proc = run_cli("validate", "--zoo", str(fake_zoo), "--out", str(tmp_path / "new"), "--budgets", "40",
                   "--access", "text", "--same-cases-as", str(out / "rows.jsonl"), "--no-progress")
    assert proc.returncode == 2 and "c00/seq-full" in proc.stderr and "Traceback" not in proc.stderr
    (seq / "model.safetensors").write_bytes(b"c00/seq-full")  # the same bytes again
    (seq / ".build.json").write_text('{"seconds": 12.5}')
    assert run_study(StudyConfig(fake_zoo, out, budgets=(40, 60), access=("text",), progress=False))["ran"] == 3


def test_a_stage_of_a_study_runs_only_its_cases(fake_zoo: Path, tmp_path: Path) -> None:
    """--kinds and --relation-kinds select a stage (protocol v3, amendment 5: the dev split's sequence-level students
    first); a bad --kinds is one line, exit 2."""
    from provenance.study.run import StudyConfig, run_study
    from tests.clirun import run_cli

    res = run_study(StudyConfig(fake_zoo, tmp_path / "a", budgets=(40,), access=("text",), progress=False,
                                kinds=("related",), relation_kinds=("sequence", "mix")))
    assert res["cases"] == 1 and res["ran"] == 1
    assert run_study(StudyConfig(fake_zoo, tmp_path / "b", budgets=(40,), access=("text",), progress=False,
                                 kinds=("related",), relation_kinds=("logit",)))["cases"] == 0
    proc = run_cli("validate", "--zoo", str(fake_zoo), "--out", str(tmp_path / "c"), "--kinds", "nul",
                   "--no-progress")
    assert proc.returncode == 2 and "--kinds" in proc.stderr and "Traceback" not in proc.stderr
    # No row yet (nothing selected, or every case waiting for the build): said so, not an internal error.
    proc = run_cli("validate", "--zoo", str(fake_zoo), "--out", str(tmp_path / "d"), "--budgets", "40", "--access",
                   "text", "--kinds", "related", "--relation-kinds", "logit", "--no-progress")
    assert proc.returncode == 0 and "no rows yet" in proc.stdout, proc.stderr


def test_a_view_of_the_continuation_arm_gives_its_cases_the_sources_it_recorded(tmp_path: Path) -> None:
    """scripts/study_view.py (protocol v3, amendment 5): the committed continuation arm's 771 cases rebuilt from its
    rows over the plan's labels, and each case's comparison sources chosen as the arm's rows recorded them (none
    differ), so that a partial rebuild can run the other arm on the same cases."""
    import subprocess
    import sys

    zoo = tmp_path / "zoo"
    (zoo / "corpus").mkdir(parents=True)
    (zoo / "families").mkdir()
    ids = [f"{s}-{i:03d}" for s, n in (("debref", 4), ("jargon", 20), ("pydocs", 70), ("pytopics", 4), ("stdlib", 13))
           for i in range(n)]  # the Debian 12 corpus's slice ids (docs/study-zoo.md)
    (zoo / "corpus" / "slices.json").write_text(json.dumps({k: "" for k in ids}))
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "scripts" / "study_view.py"),
                           str(root / "reports" / "validation" / "v3-continuation" / "rows.jsonl"), "--zoo", str(zoo),
                           "--out", str(tmp_path / "view"), "--split", "dev", "--kinds", "related",
                           "--relation-kinds", "sequence,sequence-10pct,sequence-alt,mix",
                           "--models-out", str(tmp_path / "models.txt")],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["cases"] == 771 and got["left_out"] == 0 and got["sources_differ"] == 0 and got["selected"] == 116
    assert (tmp_path / "view" / "families").resolve() == (zoo / "families").resolve()
    needed = (tmp_path / "models.txt").read_text().split()
    assert len(needed) == got["models_needed"] and "c00/root" in needed
