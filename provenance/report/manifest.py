"""The bundle's manifest: environment, tool version, models, probe sets, seeds and how to recompute; beside its reader."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from provenance import __version__
from provenance.evidence import ModelEvidence, ProbePlan
from provenance.report.bundle import BUNDLE_SCHEMA_VERSION, CaseInfo, _redact_record, custody_entry


@functools.lru_cache(maxsize=1)  # once per process: the code that runs is the code imported at its start
def _git_commit() -> dict[str, Any]:
    """The tool's own commit: from the checkout the package runs from (a development install), else from the metadata
    the wheel was built with (setup.py writes provenance/_build_info.json), never from the user's repository. A dirty
    tree is recorded with the SHA-256 of its diff against the commit, so the exact code can be named."""
    root = Path(__file__).resolve().parent.parent.parent
    if (root / ".git").exists() and (root / "provenance" / "__init__.py").is_file():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10)
            diff = subprocess.run(["git", "-C", str(root), "diff", "HEAD", "--binary"], capture_output=True, timeout=30)
            if commit.returncode == 0 and diff.returncode == 0:
                body = diff.stdout
                return {"commit": commit.stdout.strip(), "dirty": bool(body.strip()),
                        "diff_sha256": hashlib.sha256(body).hexdigest() if body.strip() else None,
                        "commit_source": "git checkout"}
        except (OSError, subprocess.SubprocessError):
            pass
        return {"commit": None, "dirty": None, "diff_sha256": None, "commit_source": None}
    try:
        from importlib.resources import files

        info = json.loads(files("provenance").joinpath("_build_info.json").read_text())
        return {"commit": info.get("commit"), "dirty": info.get("dirty"), "diff_sha256": info.get("diff_sha256"),
                "commit_source": info.get("source") or "build metadata"}
    except (OSError, ValueError, ModuleNotFoundError):
        return {"commit": None, "dirty": None, "diff_sha256": None, "commit_source": None}


def evidentiary_check() -> None:
    """`--evidentiary`: the exact code must be nameable: a known commit and a clean tree (InputError otherwise)."""
    from provenance.errors import InputError

    info = _git_commit()
    if info["commit"] is None:
        raise InputError("--evidentiary: the tool's commit is unknown (not a git checkout and no build metadata); "
                         "install a wheel built from a commit")
    if info["dirty"]:
        raise InputError(f"--evidentiary: the tool's code differs from commit {info['commit'][:12]} (diff SHA-256 "
                         f"{info['diff_sha256'][:16]}); commit or stash the changes, or audit without --evidentiary "
                         "(the diff's hash is then recorded)")


RENDERERS = ("pandas", "jinja2")  # what formats report.html and the tables: `verify` compares re-renders under these


def environment() -> dict[str, Any]:
    from provenance.models.packaged import installed_versions

    # Everything that computes, loads, renders or signs (the packaged models' own packages are in their `source`).
    pkgs = installed_versions(("torch", "transformers", "tokenizers", "accelerate", "huggingface_hub", "numpy", "scipy",
                               "scikit-learn", "pandas", "gguf", "safetensors", "httpx", "httpcore", "click",
                               "cryptography", "matplotlib", *RENDERERS))
    return {"tool": {"name": "provenance", "version": __version__, **_git_commit()}, "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": pkgs}


def installed_distributions() -> list[str]:
    """Every distribution installed in this interpreter as `name==version`, sorted: what `pip freeze` lists, so the
    environment can be rebuilt, not only the packages the tool names (a dependency of a dependency can change numbers)."""
    from importlib.metadata import distributions

    found = {(d.metadata["Name"] or "").lower(): d.version for d in distributions() if d.metadata["Name"]}
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def weights_compared(evidence: Mapping[str, ModelEvidence], suspect: str, refs: Sequence[str]) -> set[str]:
    """Fingerprints whose weight evidence a weights test compared: `verify` must reach the same outcome, skips too."""
    out: set[str] = set()
    s = evidence[suspect]
    for ref in refs:
        r = evidence[ref]
        if s.weights is not None and r.weights is not None and s.model_type == r.model_type:
            out |= {s.model.fingerprint, r.model.fingerprint}
    return out


RENDERING = ("templates/report.html.j2", "render.py", "evaluation.py")  # what shapes report.html and the tables


def template_sha256() -> str:
    """SHA-256 over the report template and the code that fills it and the tables: `verify` re-renders and compares
    only under the same one, so a bundle from another release is never reported as edited."""
    from importlib.resources import files

    h = hashlib.sha256()
    for name in RENDERING:
        h.update(files("provenance.report").joinpath(name).read_bytes())
    return h.hexdigest()


def build_manifest(*, case: CaseInfo, budget: int, seed: int, results: Mapping[str, Any],
                   evidence: Mapping[str, ModelEvidence], roles: Mapping[str, str], plans: Sequence[ProbePlan],
                   weights_shipped: set[str], analysis: Mapping[str, Any],
                   lineage_bases: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    env = results["environment"]
    models = []
    for spec, role in roles.items():
        ev = evidence[spec]
        shipped = ev.weights is not None and ev.model.fingerprint in weights_shipped
        models.append({"role": role, **ev.model.to_json(), "tokenizer_id": ev.tokenizer_id,
                       "capabilities": sorted(ev.capabilities), "model_type": ev.model_type, "endpoint": ev.endpoint,
                       "weights_evidence": f"evidence/weights/{ev.model.fingerprint}.npz" if shipped else None,
                       # who says the lineage label is right (a statement, never something the audit established)
                       "lineage_basis": (lineage_bases or {}).get(spec)})
    return {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "case": case.to_json(),
        # The template report.html is rendered with: `verify` re-renders and compares only under the same one.
        "tool": {**env["tool"], "report_template_sha256": template_sha256()},
        "environment": {**{k: env[k] for k in ("python", "platform", "packages")},
                        "distributions": installed_distributions()},
        "started_utc": results["started_utc"],
        "finished_utc": results["finished_utc"],
        "models": models,
        "probe_sets": [{**p.probe_set.to_json(), "n_used": len(p.probes), "role": p.role,
                        "file": f"probes/{p.role or i}-{Path(p.probe_set.path).name}"}
                       for i, p in enumerate(plans)],
        "seeds": {"permutation_test": seed},
        # How `verify` must recompute: the analysis version, and a sequential audit's price for its interim looks.
        "analysis": dict(analysis),
        "budget": budget,
        "custody": [probes_custody(plans, results["started_utc"]), *collection_custody(evidence, roles),
                    custody_entry("analysis", f"analysis version {analysis.get('version')} computed the results from "
                                  f"the {sum(len(e.records) for e in evidence.values())} transcript records", case.examiner,
                                  "compute every test, the combination and the screening classification from the "
                                  "transcripts alone (what `provenance verify` repeats)")],
    }


def _utc(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def probes_custody(plans: Sequence[ProbePlan], started_utc: str) -> dict[str, Any]:
    """The row that dates the prompts: every probe set was loaded and hashed when the audit started, before any model
    was queried (the collection rows that follow are later, or replayed from an earlier run of the same plan)."""
    sets = "; ".join(f"{p.probe_set.id} {p.probe_set.version}, {len(p.probes)} used, content SHA-256 "
                     f"{p.probe_set.sha256[:16]}" for p in plans)
    # To the second, like the collection rows: a collection in the same second must not read as earlier.
    utc = datetime.fromisoformat(started_utc).isoformat(timespec="seconds")
    return {"utc": utc, "actor": "provenance collector", "action": "probe sets fixed",
            "detail": f"{len(plans)} probe set(s) loaded and hashed: {sets}",
            "purpose": "fix the prompts before any model is queried, so that no prompt can be chosen after an answer"}


def records_digest(records: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over records as transcribed (one sorted-key JSON line each): what a collection custody row states and
    `verify` checks."""
    return hashlib.sha256("".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n"
                                  for r in records).encode()).hexdigest()


def collection_custody(evidence: Mapping[str, ModelEvidence], roles: Mapping[str, str]) -> list[dict[str, Any]]:
    """One custody row per model and collection: when its records were really sent and received (UTC), how many were
    replayed from the cache (collected by an earlier run, at the times shown), and the SHA-256 of the records."""
    rows, seen = [], set()
    for spec, role in roles.items():
        ev = evidence[spec]
        if ev.model.fingerprint in seen or not ev.records:
            continue
        seen.add(ev.model.fingerprint)
        for replayed in (True, False):
            recs = [r for r in ev.records if bool(r.get("replayed")) == replayed]
            if not recs:
                continue
            sent = [r["sent"] for r in recs if isinstance(r.get("sent"), (int, float))]
            got = [r["received"] for r in recs if isinstance(r.get("received"), (int, float))]
            # Over the records as the bundle's transcripts.jsonl holds them (redacted, one sorted-key JSON line each).
            digest = records_digest([_redact_record(r) for r in recs])
            rows.append({"utc": _utc(min(sent)) if sent else None, "utc_end": _utc(max(got)) if got else None,
                         "actor": "provenance collector", "action": "replayed from cache" if replayed else "collected",
                         "detail": f"{len(recs)} records of {role} {spec} (fingerprint {ev.model.fingerprint[:12]}); "
                                   f"records SHA-256 {digest[:16]}" +
                                   ("; collected by an earlier run at the times shown, replayed now" if replayed else ""),
                         "records": len(recs), "records_sha256": digest, "model_fingerprint": ev.model.fingerprint,
                         "purpose": ("the same evidence, collected by an earlier run for this model and probe plan and "
                                     "reused, so the queries were not repeated" if replayed else
                                     f"the {role}'s answers and scores for the probe plan: the evidence the tests read")})
    return rows
