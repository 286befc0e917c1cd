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


def write_index(paths: Iterable[str | Path], out: Path) -> int:
    """A self-contained HTML page over many bundles: one row per suspect x reference (verdict, p, controls, link)."""
    import html

    from provenance.fsutil import atomic_write_text

    df = load_bundles(paths)
    if df.empty:
        raise InputError("no evidence bundle found under the given paths")
    pairs = df.drop_duplicates(["bundle", "reference"])
    out = Path(out)
    rows = []
    for r in pairs.itertuples():
        link = html.escape(Path(r.bundle).resolve().as_uri() + "/report.html")
        p = "n/a" if r.p_value is None or r.p_value != r.p_value else f"{r.p_value:.2g}"
        rows.append(f"<tr><td>{html.escape(str(r.case_id))}</td><td><code>{html.escape(str(r.suspect))}</code></td>"
                    f"<td><code>{html.escape(str(r.reference))}</code></td><td><b>{html.escape(str(r.verdict))}</b></td>"
                    f"<td>{p}</td><td>{r.control_lineages}</td><td>{html.escape(str(r.finished_utc))}</td>"
                    f"<td><a href=\"{link}\">report</a></td><td><code>{r.bundle_sha256[:16]}</code></td></tr>")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>provenance: bundle index</title>"
            "<style>body{font-family:Helvetica,Arial,sans-serif;margin:2rem}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccd;padding:.3rem .5rem;font-size:.85rem}th{background:#eef1f6}</style></head><body>"
            f"<h1>Evidence bundles ({len(pairs)} suspect x reference pairs)</h1>"
            "<p>Read from each bundle's results.json, not verified: run <code>provenance verify</code> on a bundle before "
            "relying on it. Verdicts are screening classifications; each report leads with its evaluation.</p>"
            "<table><tr><th>case</th><th>suspect</th><th>reference</th><th>verdict</th><th>adjusted p</th>"
            "<th>control lineages</th><th>finished (UTC)</th><th>report</th><th>bundle SHA-256</th></tr>"
            + "".join(rows) + "</table></body></html>\n")
    atomic_write_text(out, page)
    return len(pairs)
