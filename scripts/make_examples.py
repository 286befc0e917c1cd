"""Regenerate the committed example bundles (reports/example/) from the small zoo, each citing the bundle it replaces.

Run from the repository root after `provenance zoo build --size small`: python3 scripts/make_examples.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from provenance.audit import AuditConfig, run_audit
from provenance.report.bundle import CaseInfo
from provenance.zoo.bench import zoo_lineages
from provenance.zoo.build import build_zoo

EXAMPLES = Path("reports/example")
WHY = ("regenerated with analysis version 2 (lineage units, interaction null, placebos, kind checks); the bundle it "
       "replaces was analysed with version 1, whose nulls counted sibling controls as independent")


def main() -> None:
    zoo = build_zoo("small", None, progress=False)
    labels = json.loads((zoo / "labels.json").read_text())
    lineages = zoo_lineages(labels)
    pairs = labels["pairs"]
    pick = [next(p for p in pairs if p["relation"] == r) for r in ("distilled", "independent", "derived")]
    for pair in pick:
        name = f"{pair['relation']}-{Path(pair['suspect']).name}"
        target = EXAMPLES / name
        old = target / "SHA256SUMS"
        replaces = hashlib.sha256(old.read_bytes()).hexdigest() if old.is_file() else None
        tmp = EXAMPLES.parent / f".{name}.new"
        shutil.rmtree(tmp, ignore_errors=True)
        controls = [c for c in labels["controls"] if c != pair["suspect"]]
        res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=controls,
                                    out=tmp, budget=100, progress=False, lineages=lineages,
                                    case=CaseInfo(case_id=f"DEMO-{name}", note=f"ground truth: {pair['relation']}; {WHY}",
                                                  replaces=replaces)))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        ref = res["references"][0]
        print(f"{name}: {ref['verdict']} (p = {ref['p_value']}) {ref['reason']}; replaces {replaces}", file=sys.stderr)


if __name__ == "__main__":
    main()
