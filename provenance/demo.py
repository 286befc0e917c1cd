"""`provenance demo`: build the small lineage zoo from real packaged models, audit a distilled student, a control
and a derived copy against the teacher, and print a table of verdicts beside the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provenance.audit import AuditConfig, run_audit
from provenance.report.bundle import CaseInfo
from provenance.report.outdir import prepare_out


def run_demo(out: Path, budget: int, progress: bool = True, size: str = "small") -> list[dict[str, str]]:
    from provenance.zoo.build import build_zoo

    click.echo(f"building the {size} lineage zoo (first run only; cached afterwards) ...", err=True)
    zoo = build_zoo(size, None, progress=progress)
    labels = json.loads((zoo / "labels.json").read_text())
    pairs = labels["pairs"]
    pick = [next(p for p in pairs if p["relation"] == "distilled"),
            next(p for p in pairs if p["relation"] == "independent"),
            next(p for p in pairs if p["relation"] == "derived")]
    from provenance.zoo.bench import zoo_lineages

    lineages = zoo_lineages(labels)
    rows = []
    for pair in pick:
        name = f"{pair['relation']}-{Path(pair['suspect']).name}"
        controls = [c for c in labels["controls"] if c != pair["suspect"]]
        click.echo(f"auditing {Path(pair['suspect']).name} ({pair['kind']}) against {labels['reference']} ...", err=True)
        # A rerun of the demo replaces its own earlier bundles (each kept beside it as NAME.replaced-N).
        prepare_out(out / name, replace=True)
        res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=controls,
                                    out=out / name, budget=budget, progress=progress, lineages=lineages,
                                    case=CaseInfo(case_id=f"DEMO-{name}", note=f"ground truth: {pair['relation']}",
                                                  demonstration=True)))
        ref = res["references"][0]
        p = ref["p_value"]
        rows.append({"case": name, "truth": pair["relation"], "verdict": ref["verdict"],
                     "p_value": "n/a" if p is None else f"{p:.2g}", "report": str(out / name / "report.html")})
    w = max(len(r["case"]) for r in rows) + 2
    click.echo(f"\n{'suspect':<{w}}{'ground truth':<14}{'verdict':<14}{'p-value':<10}report")
    for r in rows:
        click.echo(f"{r['case']:<{w}}{r['truth']:<14}{r['verdict']:<14}{r['p_value']:<10}{r['report']}")
    return rows
