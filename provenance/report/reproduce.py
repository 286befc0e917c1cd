"""The re-run instructions a report prints: the audit command and the controls panel that reproduce its analysis."""

from __future__ import annotations

import shlex
from typing import Any

# probe-set role in the manifest -> (audit option, the option's default id); the yardstick has no option.
PROBE_OPTIONS = {"output": ("--continuation-probes", "continuation"),
                 "next_token": ("--next-token-probes", "next-token"),
                 "likelihood": ("--likelihood-probes", "instructions"),
                 "identity": ("--identity-probes", "identity")}
OPTIONAL_ROLES = ("likelihood", "identity")  # roles an audit may skip ('none')
PANEL_FILE = "controls.toml"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def controls_panel(results: dict[str, Any]) -> str:
    """A controls panel (TOML) naming every control with the lineage the audit used, and the lineage of each reference
    and comparison source: without it a re-run would infer lineages, and the null's units could differ."""
    lines = []
    for c in results.get("controls", []):
        lines += ["[[control]]", f"spec = {_toml_str(c['spec'])}", f"lineage = {_toml_str(c.get('lineage') or 'unknown')}",
                  ""]
    known = [(m["spec"], m.get("lineage")) for m in (results.get("reference_models") or [])
             + (results.get("comparison_sources") or []) if m.get("lineage") not in (None, "unknown")]
    if known:
        lines.append("[lineages]")
        lines += [f"{_toml_str(s)} = {_toml_str(lin)}" for s, lin in known]
    return "\n".join(lines).rstrip() + "\n" if lines else ""


def audit_command(results: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The `provenance audit` command that re-runs this analysis: the same models, lineages (through the panel file),
    analysis version, comparison sources, probe sets, budget, seed and sequential design. A probe set other than the
    option's default is taken from the bundle's own copy, so the re-run asks the same prompts."""
    q = shlex.quote
    parts = ["provenance", "audit", "--suspect", q(results["suspect"]["spec"])]
    for r in results["references"]:
        parts += ["--reference", q(r["spec"])]
    if results.get("controls"):
        parts += ["--controls", PANEL_FILE]
    version = results.get("analysis_version", 2)
    if version != 2:
        parts += ["--analysis", str(version)]
        for s in results.get("comparison_sources") or []:
            parts += ["--source", q(s["spec"])]
    used = {ps.get("role"): ps for ps in manifest.get("probe_sets", [])}
    for role, (option, default) in PROBE_OPTIONS.items():
        ps = used.get(role)
        if ps is None:
            if role in OPTIONAL_ROLES:
                parts += [option, "none"]
        elif ps.get("id") != default:
            parts += [option, q("BUNDLE_DIR/" + ps["file"]) if ps.get("file") else q(ps["id"])]
    if (results.get("sequential") or {}).get("enabled"):
        parts.append("--sequential")
    parts += ["--budget", str(results["budget"]), "--seed", str(results["seed"]), "--out", "NEW_DIR"]
    return " ".join(parts)
