"""Bundles as data: many evidence bundles as one pandas DataFrame (one row per suspect x reference x test)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from provenance.errors import InputError

COLUMNS = ["bundle", "bundle_sha256", "case_id", "analysis_version", "suspect", "suspect_fingerprint", "reference",
           "reference_lineage", "verdict", "p_value", "p_value_unadjusted", "control_lineages", "test", "test_p_value",
           "rank_p_value", "statistic", "effect", "effect_unit", "skipped", "validation_matched", "finished_utc"]


def find_bundles(paths: Iterable[str | Path]) -> list[Path]:
    """Each path is a bundle (it holds results.json and SHA256SUMS) or a folder searched for bundles below it."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "results.json").is_file() and (p / "SHA256SUMS").is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(q.parent for q in p.rglob("SHA256SUMS") if (q.parent / "results.json").is_file()))
        else:
            raise InputError(f"{p}: not an evidence bundle or a folder of bundles")
    return list(dict.fromkeys(found))


def rows(bundle: Path) -> list[dict[str, Any]]:
    res = json.loads((bundle / "results.json").read_text())
    man = json.loads((bundle / "manifest.json").read_text()) if (bundle / "manifest.json").is_file() else {}
    base = {"bundle": str(bundle), "bundle_sha256": hashlib.sha256((bundle / "SHA256SUMS").read_bytes()).hexdigest(),
            "case_id": (man.get("case") or {}).get("case_id"), "analysis_version": res.get("analysis_version"),
            "suspect": res["suspect"]["spec"], "suspect_fingerprint": res["suspect"]["fingerprint"],
            "validation_matched": (res.get("validation") or {}).get("matched"), "finished_utc": res.get("finished_utc")}
    out = []
    for ref in res.get("references", []):
        head = {**base, "reference": ref["spec"], "reference_lineage": ref.get("lineage"), "verdict": ref["verdict"],
                "p_value": ref.get("p_value"), "p_value_unadjusted": ref.get("p_value_unadjusted"),
                "control_lineages": len(ref.get("controls_used") or {})}
        for t in ref.get("tests", []):
            d = t.get("details") or {}
            out.append({**head, "test": t["name"], "test_p_value": t.get("p_value"),
                        "rank_p_value": d.get("rank_p_value"), "statistic": t.get("statistic"),
                        "effect": t.get("effect"), "effect_unit": d.get("effect_unit"), "skipped": t.get("skipped")})
    return out


def load_bundles(paths: Iterable[str | Path]) -> Any:
    """One DataFrame over every bundle found (see COLUMNS); bundles are read, not verified (use `verify` for that)."""
    import pandas as pd

    bundles = find_bundles([paths] if isinstance(paths, (str, Path)) else paths)
    return pd.DataFrame([r for b in bundles for r in rows(b)], columns=COLUMNS)
