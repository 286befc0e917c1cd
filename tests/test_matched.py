"""Matched controls (provenance/matched.py): which lineages are planned, who is eligible, and a real build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAKE_REFERENCE, FAKE_SUSPECT, requires_models, tiny_llama
from clirun import run_cli
from provenance.errors import InputError
from provenance.matched import (SAMENESS_TOLERANCE, TOLERANCE, Builder, Lineage, Profile, build_matched,
                                known_families, plan_lineages, sameness, teachers_outside, why_not)
from provenance.models import LoadOptions, resolve
from provenance.panel import load_panel

SLICES = [f"{src}-{i:03d}" for src in ("pydocs", "jargon", "stdlib") for i in range(6)]


def test_teachers_of_the_references_lineage_are_never_planned() -> None:
    excluded = known_families(["smollm2-135m-instruct"])
    assert {"smollm", "p-smollm2"} <= excluded  # the package's family and the study zoo's name for it
    assert teachers_outside(excluded) == ["qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]
    plan = plan_lineages(4, excluded, teachers_outside(excluded), SLICES)
    assert [x.kind for x in plan] == ["student", "student", "text", "text"]
    # a student of a teacher carries that teacher's lineage, as the audit names the packaged model's family
    assert [x.name for x in plan[:2]] == ["qwen", "gemma"]


def test_public_text_lineages_read_disjoint_shares_that_mix_sources() -> None:
    plan = plan_lineages(3, set(), (), SLICES, slices_per_lineage=5)
    shares = [set(x.slices) for x in plan]
    assert len(plan) == 3 and all(len(s) == 5 for s in shares)
    assert not (shares[0] & shares[1] or shares[0] & shares[2] or shares[1] & shares[2])
    assert all(len({s.rsplit("-", 1)[0] for s in share}) >= 2 for share in shares)
    assert len({x.name for x in plan}) == 3


def test_the_audit_that_cuts_the_slices_plans_the_lineages_every_later_audit_plans(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The first audit cut the corpus in the sources' order, later ones read the cached file (sorted ids): the same
    suspect got other public-text controls on its second audit, trained again (bench/v3_no_controls.py)."""
    from provenance import matched
    from provenance.zoo import corpus

    unsorted = {sid: f"text of {sid}" for sid in ("stdlib-000", "pydocs-001", "jargon-000", "pydocs-000", "stdlib-001",
                                                 "jargon-001")}
    monkeypatch.setattr(corpus, "build_slices", lambda chars, sources: (dict(unsorted), {}))
    first = matched._slices(tmp_path, ())
    again = matched._slices(tmp_path, ())
    assert list(first) == list(again) == sorted(unsorted)
    assert plan_lineages(2, set(), (), list(first), 3) == plan_lineages(2, set(), (), list(again), 3)


@pytest.mark.slow
def test_endpoints_fakes_and_large_models_are_not_trained_against(tmp_path: Path) -> None:
    assert "not a local transformers directory" in (why_not(resolve(FAKE_SUSPECT, LoadOptions())) or "")
    small = tiny_llama(tmp_path / "s", 1, "suspect", "ours")
    assert why_not(resolve(str(small), LoadOptions())) is None
    assert "above the" in (why_not(resolve(str(small), LoadOptions()), max_params=1000) or "")


def test_no_controls_and_a_fake_suspect_falls_back_to_the_packaged_ones_or_refuses(tmp_path: Path) -> None:
    r = run_cli("audit", "-s", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--budget", "12", "--no-progress",
                "--build-controls", "always", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "cannot build matched controls" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_answer_sameness_tells_a_model_that_says_one_thing_from_one_that_follows_the_prompt() -> None:
    """Version 1's controls matched competence and still answered every prompt alike: sameness is what was missed."""
    assert sameness(["the the the"] * 6) == 0.0
    varied = sameness(["a cat sat", "rain fell hard", "the war ended", "a dog ran", "prices rose", "we left"])
    assert varied < -2.0  # mostly unlike: only the two answers opening with "a" share a word
    assert sameness(["x"]) == round(float(__import__("math").log(0.01)), 4)  # no pair: the floor, never NaN
    target = Profile(-1.9, -2.5)
    assert Profile(-1.9 + TOLERANCE, -2.5).gap(target) == pytest.approx(1.0)
    assert Profile(-1.9, -2.5 - 2 * SAMENESS_TOLERANCE).gap(target) == pytest.approx(2.0)  # the larger gap counts


@pytest.mark.slow
def test_a_build_trains_controls_of_the_suspects_architecture_and_reuses_them(tmp_path: Path) -> None:
    suspect = resolve(str(tiny_llama(tmp_path / "suspect", 3, "suspect", "ours")), LoadOptions())
    root = tmp_path / "cache"
    panel_path = tmp_path / "panel.json"
    summary = build_matched(suspect, {"ours"}, 3, teachers=(), out=panel_path, progress=False, root=root,
                            schedule=(1, 2), sources=("pytopics",))
    panel = load_panel(panel_path)
    assert len(panel.controls) == 3 and len(set(panel.lineages.values())) == 3
    assert "ours" not in panel.lineages.values()
    suspect_cfg = json.loads((suspect.local_path / "config.json").read_text())
    for c in summary["controls"]:
        cfg = json.loads((Path(c["spec"]) / "config.json").read_text())
        assert (cfg["hidden_size"], cfg["num_hidden_layers"]) == (suspect_cfg["hidden_size"], suspect_cfg["num_hidden_layers"])
        assert (Path(c["spec"]) / ".lineage").read_text().strip() == c["lineage"]  # an audit infers it without a panel
        assert [t["steps"] for t in c["log"]][: 1] == [1] and c["steps"] in (1, 2)
        assert c["matched"] == (abs(c["competence"] - summary["suspect_competence"]) <= TOLERANCE
                                and abs(c["sameness"] - summary["suspect_sameness"]) <= SAMENESS_TOLERANCE)
        # the competence the panel states is what the audit's yardstick measures for that model
        got = resolve(c["spec"], LoadOptions())
        assert got.lineage == c["lineage"]
        # the recipe travels with the model into every manifest that names it (hidden: not part of its fingerprint)
        assert got.source["recipe"]["lineage"] == c["lineage"] and got.source["recipe"]["steps"] == c["steps"]
        assert ".recipe.json" not in got.files
    again = build_matched(suspect, {"ours"}, 3, teachers=(), out=tmp_path / "panel2.json", progress=False, root=root,
                          schedule=(1, 2), sources=("pytopics",))
    assert [c["spec"] for c in again["controls"]] == [c["spec"] for c in summary["controls"]]
    assert all(c["seconds"] == 0.0 for c in again["controls"])  # from the cache: nothing trained


@pytest.mark.slow
def test_a_lineage_with_too_little_text_is_refused_in_one_line(tmp_path: Path) -> None:
    b = Builder(tiny_llama(tmp_path / "s", 2, "suspect", "ours"), Profile(-2.0, -3.0), root=tmp_path / "c",
                progress=False)
    with pytest.raises(InputError, match="training sequences"):
        b.build(Lineage("x", "text", "a", ("a",)), {"a": "too short"})


@pytest.mark.slow
def test_a_closed_vocabulary_suspect_gets_controls_that_emit_the_same_ids(tmp_path: Path) -> None:
    """The study zoo's models live on 4,096 of 49,152 ids: their controls are built on the same live ids, so a control
    never differs from the suspect merely in what it can say."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from provenance.zoo.train import close_vocab, save

    src = tiny_llama(tmp_path / "full", 4, "suspect", "ours")
    net = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    keep = list(range(0, 8000, 2))  # 4,000 live ids, most of the 49,152 rows dead
    close_vocab(net, keep).remove()
    suspect = resolve(str(save(net, AutoTokenizer.from_pretrained(str(src)), tmp_path / "closed", "closed", "ours")),
                      LoadOptions())
    summary = build_matched(suspect, {"ours"}, 3, teachers=(), out=tmp_path / "p.json", progress=False,
                            root=tmp_path / "c", schedule=(1,), sources=("pytopics",))
    def live(d: Path) -> list[int]:
        w = load_file(str(d / "model.safetensors"))["model.embed_tokens.weight"]
        return (w != 0).any(dim=1).nonzero().squeeze(-1).tolist()

    expected = live(suspect.local_path)  # `keep` less the padding id, whose row llama initialises to zero
    assert set(expected) <= set(keep) and summary["closed_vocabulary"] == len(expected) > 3900
    for c in summary["controls"]:
        assert live(Path(c["spec"])) == expected


def test_controls_build_refuses_what_it_cannot_train_in_one_line(tmp_path: Path) -> None:
    r = run_cli("controls", "build", FAKE_SUSPECT, "-r", FAKE_REFERENCE, "--out", str(tmp_path / "p.json"))
    assert r.returncode == 2 and "cannot build matched controls" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.json").exists()
    r = run_cli("controls", "build", FAKE_SUSPECT, "--lineages", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_second_builder_waits_for_the_first_instead_of_building_again(tmp_path: Path) -> None:
    import threading
    import time

    from provenance.fsutil import exclusive

    order: list[str] = []
    target = tmp_path / "samples" / "teacher.json"

    def build(name: str, delay: float) -> None:
        time.sleep(delay)
        with exclusive(target):
            if target.exists():
                order.append(f"{name} found it")
                return
            order.append(f"{name} builds")
            time.sleep(0.3)
            target.write_text("[]")

    threads = [threading.Thread(target=build, args=("a", 0.0)), threading.Thread(target=build, args=("b", 0.1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ["a builds", "b found it"]


def test_training_stops_once_past_its_peak_as_the_student_of_qwen_on_320_answers_did() -> None:
    """Version 2 trained a student of Qwen on 320 answers through its whole schedule (2,444 s) although competence
    peaked at 200 steps: its measured trail, replayed, now stops at 400 steps."""
    from provenance.matched import MATCHED, PASSED, PAST_ITS_PEAK, stop_reason

    target = Profile(-1.4018, -4.1471)
    trail = [(5, -2.206, -0.0426), (10, -1.9793, 0.0), (25, -1.6412, 0.0), (50, -1.6234, 0.0), (100, -1.6098, -1.4054),
             (200, -1.6069, -2.3052), (400, -1.7099, -4.4505), (800, -2.2859, -4.6052)]
    peak, stops = -float("inf"), []
    for steps, comp, same in trail:
        peak = max(peak, comp)
        why = stop_reason(Profile(comp, same), target, peak)
        if why:
            stops.append((steps, why))
            break
    assert stops == [(400, PAST_ITS_PEAK)]
    assert stop_reason(Profile(-1.41, -4.0), target, -1.41) == MATCHED
    assert stop_reason(Profile(-1.30, -4.0), target, -1.30) == PASSED
    assert stop_reason(Profile(-1.60, -4.0), target, -1.55) is None  # a dip within a tolerance of the peak: go on
    # version 4: competence reached and answers more varied than the suspect's: both passed, more steps only move away
    chat_target = Profile(-1.669, -1.96)  # bench/chat_no_controls.py's SC2560
    assert stop_reason(Profile(-1.638, -3.21), chat_target, -1.638) == PASSED  # its public-text control at 400 steps
    assert stop_reason(Profile(-1.749, -3.33), chat_target, -1.749) is None  # 200 steps: competence not yet reached
    assert stop_reason(Profile(-1.70, -2.2), chat_target, -1.70) == MATCHED


def test_teacher_answers_grow_in_rungs_that_extend_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance import matched
    from provenance.matched import TEACHER_SAMPLES, rungs, teacher_prompts

    assert rungs(320) == (320,) and rungs(1000) == (320, 1000) and rungs(20480) == (320, 1280, 5120, 20480)
    assert rungs(30000)[-1] == 30000
    prompts = teacher_prompts(3000)
    from provenance.probeset import load as load_probes

    cont = [p.text for p in load_probes("continuation").probes]
    assert prompts[:1000] == cont[1000:2000]  # the first rung's prompts are version 2's (its cached answers hold)
    assert len(set(prompts)) == 3000 and not set(prompts[1000:]) & set(cont)
    assert not set(prompts) & {p.text for p in load_probes("continuation-samples").probes}
    assert teacher_prompts(1500) == prompts[:1500]

    calls: list[tuple[int, int]] = []

    def fake_sample(self: Builder, teacher: str, ps: list[str], seed: int) -> list[str]:
        calls.append((len(ps), seed))
        return [f"{teacher} answers {p}" for p in ps]

    monkeypatch.setattr(matched.Builder, "_sample_teacher", fake_sample)
    b = object.__new__(Builder)  # only what teacher_answers reads
    b.root, b.seed, b.fmt = tmp_path, 0, "text"
    big = b.teacher_answers("qwen", 1280)
    assert calls == [(TEACHER_SAMPLES, 0), (960, calls[1][1])] and calls[1][1] != 0  # the new chunk: its own seed
    assert big[:320] == b.teacher_answers("qwen", 320) and len(big) == 1280
    assert [x.split(" answers ", 1)[1] for x in big] == teacher_prompts(1280)
    assert len(calls) == 2  # both rungs now come from the cache


def test_a_student_lineage_short_of_the_suspect_takes_the_next_rung_and_keeps_the_closest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance import matched
    from provenance.matched import MATCHED, PAST_ITS_PEAK, Built

    target = Profile(-1.40, -4.0)
    outcomes = {320: (-1.61, PAST_ITS_PEAK), 1280: (-1.52, PAST_ITS_PEAK), 5120: (-1.43, MATCHED)}
    tried: list[int | None] = []

    def fake_one(self: Builder, lin: Lineage, seqs: list[list[int]], n: int | None) -> Built:
        tried.append(n)
        comp, stop = outcomes[n] if n else (-1.7, "end of schedule")
        return Built(lin, Path(f"/m/{n}"), 100, comp, -4.0, stop == MATCHED, 10.0, "k", [], stop, n)

    monkeypatch.setattr(matched.Builder, "_build_one", fake_one)
    monkeypatch.setattr(matched.Builder, "data", lambda self, lin, slices, n=320: [[1]] * 8)
    b = object.__new__(Builder)
    b.target = target
    b.max_teacher_samples = 1280  # a CPU's cap raised once: two rungs
    got = b.build(Lineage("qwen", "student", "qwen2.5-coder-0.5b-instruct"), {})
    assert tried == [320, 1280] and got.teacher_samples == 1280 and not got.matched and got.seconds == 20.0
    tried.clear()
    b.max_teacher_samples = 20480
    got = b.build(Lineage("qwen", "student", "qwen2.5-coder-0.5b-instruct"), {})
    assert tried == [320, 1280, 5120] and got.matched and got.teacher_samples == 5120  # stops at the matched rung
    tried.clear()
    b.build(Lineage("matched-text-0", "text", "a", ("a",)), {})
    assert tried == [None]  # public text has no rungs


def test_controls_build_on_a_gpu_this_machine_lacks_is_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = run_cli("controls", "build", FAKE_SUSPECT, "--device", "cuda")
    assert r.returncode == 2 and "torch sees no GPU" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _chat_slices() -> dict[str, str]:
    """Three slices of 400 made-up lower-case words of varied frequency (the instructions take ranks 150-1,349)."""
    import string

    words = ["".join(string.ascii_lowercase[(i // 26 ** k) % 26] for k in range(3)) + "ing" for i in range(400)]
    text = " ".join(w for i, w in enumerate(words) for _ in range(1 + i % 4))
    return {f"pydocs-{i:03d}": f"The passage {i}. " + text for i in range(3)}


def test_chat_format_controls_learn_the_suspects_template_around_instructions_no_audit_sends(tmp_path: Path) -> None:
    """A chat-format lineage's sequences are the suspect's chat template around one of the builder's instructions, then
    a chunk of its text (at most 64 tokens) and end of sequence; students answer the same instructions. The text format
    and its recipes are as before (no format key), so its cached controls stay valid."""
    from provenance.matched import CHAT_ANSWER_TOKENS, SEQ_LEN, chat_prompts
    from provenance.probeset import load as load_probes

    slices = _chat_slices()
    ps = chat_prompts(slices)
    assert ps == chat_prompts(slices) and len(set(ps)) == len(ps) > 10  # fixed by the corpus and the seed
    assert not set(ps) & {p.text for s in ("instructions", "identity") for p in load_probes(s).probes}
    suspect = tiny_llama(tmp_path / "s", 2, "suspect", "ours")
    chat = Builder(suspect, Profile(-2.0, -3.0), root=tmp_path / "c", progress=False, fmt="chat")
    text = Builder(suspect, Profile(-2.0, -3.0), root=tmp_path / "c", progress=False)
    lin = Lineage("matched-text-0", "text", "+".join(slices), tuple(slices))
    seqs = chat.data(lin, slices)
    tok = chat.tok
    for j, seq in enumerate(seqs[:5]):
        head = tok(tok.apply_chat_template([{"role": "user", "content": chat.prompts[j]}], tokenize=False,
                                           add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        assert seq[: len(head)] == head and seq[-1] == tok.eos_token_id and len(seq) <= SEQ_LEN
        assert len(seq) - len(head) - 1 <= CHAT_ANSWER_TOKENS
    assert all(len(s) == SEQ_LEN for s in text.data(lin, slices))  # raw text: unchanged
    assert "format" not in text.recipe(lin, "d") and chat.recipe(lin, "d")["format"] == "chat"
    with pytest.raises(InputError, match="format"):
        Builder(suspect, Profile(-2.0, -3.0), root=tmp_path / "c", progress=False, fmt="yaml")

    def fake_sample(self: Builder, teacher: str, prompts: list[str], seed: int) -> list[str]:
        return [f"{teacher} says {p}" for p in prompts]

    import provenance.matched as matched

    mp = pytest.MonkeyPatch()
    mp.setattr(matched.Builder, "_sample_teacher", fake_sample)
    try:
        student = chat.data(Lineage("qwen", "student", "qwen"), slices, 16)
    finally:
        mp.undo()
    assert len(student) == 16 and tok.decode(student[3]).count(chat.prompts[3]) == 2  # asked, then answered
    assert (tmp_path / "c" / "samples" / "qwen-chat-16-0.json").is_file()  # not the text format's answers


@requires_models
def test_the_format_is_read_from_the_suspect_chat_only_when_it_learnt_its_template(tmp_path: Path) -> None:
    """A model that never saw its template's special tokens (here untrained) gives the assistant turn's opening token
    the probability of an unused id; SmolLM2-135M-Instruct, trained on chat transcripts, predicts it almost surely.
    (A 192 x 4 student of SmolLM2's chat answers: bench/chat_no_controls.py records its value.)"""
    from provenance.matched import CHAT_SCAFFOLD_NATS, suspect_format

    fmt, score = suspect_format(tiny_llama(tmp_path / "raw", 5, "suspect", "ours"))
    assert fmt == "text" and score is not None and score < CHAT_SCAFFOLD_NATS - 5
    fmt, score = suspect_format("smollm2-135m-instruct")
    assert fmt == "chat" and score is not None and score > -0.5
