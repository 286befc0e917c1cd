"""The closed-vocabulary output layer scores exactly as the full one (the study's speed-up may not move a number)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from provenance.models.base import ScoreRequest  # noqa: E402
from provenance.models.hf import ClosedVocabulary, HFBackend, _target_logprobs  # noqa: E402
from tests.conftest import tiny_llama  # noqa: E402


def _head(vocab: int, hidden: int, live: int, seed: int = 0) -> torch.nn.Linear:
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=g) * 3)
        dead = torch.randperm(vocab, generator=g)[: vocab - live]
        head.weight[dead] = 0
    return head


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_closed_vocabulary_equals_the_full_softmax(softcap: float | None) -> None:
    head = _head(vocab=3000, hidden=16, live=200)
    closed = ClosedVocabulary.of(head)
    assert closed is not None and closed.weight.shape == (200, 16)
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(64, 16, generator=g)
    live_ids = (head.weight != 0).any(1).nonzero().squeeze(-1)
    dead_ids = (head.weight == 0).all(1).nonzero().squeeze(-1)
    # Targets both live and dead (a dead id is possible text: the zoo's tokenizer is shared with the teacher).
    targets = torch.cat([live_ids[torch.randint(len(live_ids), (48,), generator=g)],
                         dead_ids[torch.randint(len(dead_ids), (16,), generator=g)]])
    with torch.inference_mode():
        full = _target_logprobs(head, hidden, targets, softcap)
        fast = closed.target_logprobs(hidden, targets, softcap)
    assert torch.allclose(full, fast, atol=2e-5, rtol=0), (full - fast).abs().max()  # observed: 4e-6


def test_a_dense_or_biased_layer_is_left_alone() -> None:
    assert ClosedVocabulary.of(_head(vocab=100, hidden=8, live=80)) is None  # 20% dead: nothing to gain
    assert ClosedVocabulary.of(_head(vocab=100, hidden=8, live=0)) is None  # all zero: the full layer's -log(vocab)
    assert ClosedVocabulary.of(torch.nn.Linear(8, 100, bias=False, device="meta")) is None  # offloaded: no values
    biased = _head(vocab=100, hidden=8, live=10)
    biased.bias = torch.nn.Parameter(torch.zeros(100))
    assert ClosedVocabulary.of(biased) is None  # a bias makes a zero row's logit non-zero in general


def test_the_backend_scores_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_llama(tmp_path / "m", seed=3, name="m", lineage="m")
    be = HFBackend("m", path)
    with torch.no_grad():  # as the zoo's roots are: only the ids of a small slice of text were ever trained
        w = be.model.get_output_embeddings().weight
        w[1000:] = 0
    reqs = [ScoreRequest("Write a haiku about rain.", " Rain on the tin roof, slow", chat=False),
            ScoreRequest("Tell me", " zzq \u00e9t\u00e9 12345 the end", chat=False),
            ScoreRequest("", " a", chat=False)]
    fast = be.score(reqs)
    assert be._closed  # the closed layer was used
    monkeypatch.setattr(ClosedVocabulary, "MIN_DEAD_SHARE", 2.0)  # never worth it: the full layer
    be._closed = None
    full = be.score(reqs)
    assert not be._closed
    for a, b in zip(fast, full):
        assert (a.n_tokens, a.n_bytes) == (b.n_tokens, b.n_bytes)
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4, rel=0)


def test_threads_leave_the_cores_other_processes_are_running_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spinning torch threads beside busy processes ran 3-30x slower than one thread (BENCHMARKS.md, "Threads on a
    busy machine"): the default thread count leaves out the cores other processes are running on right now."""
    import subprocess
    import sys
    import time

    from provenance.models import hf

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert hf.busy_elsewhere() >= 1  # the busy child (other tests' workers may add more)
    finally:
        busy.kill()
        busy.wait()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(hf, "busy_elsewhere", lambda: 64)
    assert hf.cpu_threads() == 1  # never fewer than one
    monkeypatch.setattr(hf, "busy_elsewhere", lambda: 0)
    idle = hf.cpu_threads()
    monkeypatch.setattr(hf, "busy_elsewhere", lambda: 1)
    assert hf.cpu_threads() == max(1, idle - 1)  # one busy thread elsewhere: one core fewer
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting wins
    assert hf.cpu_threads() == 3
