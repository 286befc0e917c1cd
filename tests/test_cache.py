"""Evidence cache: the model's identity is part of every key, and a torn write is recovered."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.cache import EvidenceCache, entry_key


def test_two_models_never_share_an_entry(tmp_path: Path) -> None:
    """Regression for the lm-eval bug (#2715, #4063) that served model A's outputs as model B's."""
    cache = EvidenceCache(tmp_path)
    ka = entry_key("a" * 64, "probes", {"top_k": 5}, "completion")
    kb = entry_key("b" * 64, "probes", {"top_k": 5}, "completion")
    cache.append(ka, [{"probe_id": "p1", "response": {"text": "from A"}}])
    assert cache.load(kb) == {}
    assert cache.load(ka)["p1"]["response"]["text"] == "from A"
    with pytest.raises(ValueError):
        entry_key("", "probes", {}, "completion")


def test_torn_last_line_is_dropped_and_appends_continue(tmp_path: Path) -> None:
    cache = EvidenceCache(tmp_path)
    k = entry_key("f" * 64, "probes", {}, "completion")
    cache.append(k, [{"probe_id": "p1", "response": {"text": "one"}}])
    path = next(tmp_path.rglob("*.jsonl"))
    with open(path, "ab") as fh:
        fh.write(b'{"probe_id": "p2", "resp')  # a crash mid-write
    assert set(cache.load(k)) == {"p1"}
    cache.append(k, [{"probe_id": "p3", "response": {"text": "three"}}])
    assert set(cache.load(k)) == {"p1", "p3"}


def test_header_mismatch_is_ignored(tmp_path: Path) -> None:
    cache = EvidenceCache(tmp_path)
    k = entry_key("c" * 64, "probes", {}, "completion")
    cache.append(k, [{"probe_id": "p1", "response": {"text": "x"}}])
    path = next(tmp_path.rglob("*.jsonl"))
    text = path.read_text().replace("c" * 64, "d" * 64, 1)  # a file whose header names another model
    path.write_text(text)
    assert cache.load(k) == {}


def _hammer(root: str, worker: int, n: int) -> None:
    from provenance.cache import EvidenceCache, entry_key

    cache = EvidenceCache(Path(root))
    key = entry_key("f" * 64, "p" * 64, {"max_new_tokens": 1}, "completion")
    for i in range(n):
        cache.append(key, [{"probe_id": f"w{worker}-{i}", "response": {"text": "x" * (3000 + i)}}])
        cache.load(key)  # a reader between appends must never truncate another process's line


def test_processes_sharing_one_cache_key_never_tear_or_lose_lines(tmp_path: Path) -> None:
    """Study and fleet workers share the cache: appends and reads of one key are locked (fcntl), so nothing is lost."""
    import multiprocessing as mp

    from provenance.cache import EvidenceCache, entry_key

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = EvidenceCache(tmp_path).load(entry_key("f" * 64, "p" * 64, {"max_new_tokens": 1}, "completion"))
    assert len(got) == 120
