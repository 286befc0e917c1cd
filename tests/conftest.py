"""Shared fixtures: an isolated evidence cache per test session, with GGUF conversions shared across sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provenance"


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


def have_packaged() -> bool:
    import importlib.util

    from provenance.models.packaged import PACKAGED

    return all(importlib.util.find_spec(mod) for m in PACKAGED.values() for mod, _ in m.parts)


requires_models = pytest.mark.skipif(not have_packaged(), reason="packaged model packages not installed (scripts/setup.sh)")
