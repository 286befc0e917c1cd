"""Shared fixtures: an isolated evidence cache per test session, with GGUF conversions shared across sessions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

SHARED = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provenance"

# Parallel workers (pytest-xdist, `-n auto` in setup.cfg) share the cores: each takes its share of torch threads, set
# before torch is imported and inherited by the CLI subprocesses, since more threads than free cores make every
# parallel op wait for a descheduled thread (BENCHMARKS.md, "Collection throughput": 6x slower).
# (From the affinity mask, before numpy or torch is imported: cpu_threads() would also subtract the other workers.)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and not os.environ.get("OMP_NUM_THREADS"):
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fresh evidence and hash caches for every session, so no test passes on answers from an earlier run.

    GGUF->safetensors conversions and assembled packaged files are content-addressed (by the GGUF's SHA-256),
    so sharing them across sessions is safe and saves minutes.
    """
    root = tmp_path_factory.mktemp("provenance-cache")
    for sub in ("converted", "packaged"):
        (SHARED / sub).mkdir(parents=True, exist_ok=True)
        os.symlink(SHARED / sub, root / sub)
    os.environ["PROVENANCE_CACHE"] = str(root)
    os.environ["PROVENANCE_NO_PROGRESS"] = "1"
    return root


@pytest.fixture(scope="session")
def noised_smol(isolated_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A derived copy of SmolLM2: every weight plus 2% Gaussian noise (shares weights: ground truth `derived`)."""
    from provenance.zoo.derive import noised_copy

    return noised_copy("smollm2-135m-instruct", tmp_path_factory.mktemp("zoo") / "smol-noised", 0.02, seed=1)


def tiny_llama(path: Path, seed: int, name: str, lineage: str) -> Path:
    """A 1-layer llama on the zoo tokenizer (a real checkpoint of its own lineage, queried in seconds)."""
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, save, tiny_config

    tok = _tokenizer()
    cfg = tiny_config(len(tok), 32, 1, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=tok.eos_token_id)
    return save(fresh_model(cfg, seed), tok, path, name, lineage=lineage)


def have_packaged() -> bool:
    import importlib.util

    from provenance.models.packaged import PACKAGED

    return all(importlib.util.find_spec(mod) for m in PACKAGED.values() for mod, _ in m.parts)


requires_models = pytest.mark.skipif(not have_packaged(), reason="packaged model packages not installed (scripts/setup.sh)")


# A fake lineage panel (plumbing only): a student of t1, t1 itself, and five control lineages, one with a sibling.
FAKE_SUSPECT = "fake:s1?teacher=t1&q=0.5"
FAKE_REFERENCE = "fake:t1"
FAKE_CONTROLS = ("fake:c1", "fake:c2", "fake:c3", "fake:c4", "fake:c5", "fake:c1b?teacher=c1&q=0.8")


@pytest.fixture(scope="session")
def fake_bundle(isolated_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full audit bundle from the seeded fake backend, in seconds (plumbing, bundles, verify, report)."""
    from provenance.audit import AuditConfig, run_audit

    out = tmp_path_factory.mktemp("fake") / "bundle"
    run_audit(AuditConfig(suspect=FAKE_SUSPECT, references=[FAKE_REFERENCE], controls=list(FAKE_CONTROLS), out=out,
                          budget=80, progress=False))
    return out


def error_lines(stderr: str) -> list[str]:
    """stderr's non-empty lines other than `warning: ...` (a preflight warning printed before any query is not the
    error; the contract is one clear error line, never a traceback)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning: ")]


@pytest.fixture(autouse=True)
def _own_credentials() -> Iterator[None]:
    """Each test starts with the credentials registry it found: the fuzzer's random userinfo (e.g. `http://gg@h`) was
    registered for the rest of the process, and redacting "gg" turned a later bundle's key "flagged" into "fla***ed"."""
    from provenance import secrets

    before = set(secrets._secrets)
    yield
    with secrets._lock:
        secrets._secrets.clear()
        secrets._secrets.update(before)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A heavy test is also slow: `pytest -m "not slow"` replaces the default `-m "not heavy"`, and must not run it."""
    for item in items:
        if item.get_closest_marker("heavy") is not None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
