"""`provenance demo`: audit real packaged models end to end and print a table of verdicts."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.audit import AuditConfig, run_audit
from provenance.fsutil import cache_dir

REFERENCE = "smollm2-135m-instruct"


def run_demo(out: Path, budget: int, progress: bool = True) -> list[dict[str, str]]:
    """Two audits against SmolLM2: a derived copy of it (ground truth: derived) and Gemma 3 (ground truth: independent)."""
    from provenance.zoo.derive import noised_copy

    click.echo("preparing a derived copy of SmolLM2 (every weight + 2% Gaussian noise) ...", err=True)
    derived = noised_copy(REFERENCE, cache_dir() / "zoo" / "smollm2-noised-0.02", 0.02, seed=0)
    cases = [("derived-copy", str(derived), "derived"), ("gemma", "gemma-3-270m", "independent")]
    rows = []
    for name, suspect, truth in cases:
        click.echo(f"auditing {name}: {suspect} against {REFERENCE} ...", err=True)
        res = run_audit(AuditConfig(suspect=suspect, references=[REFERENCE], out=out / name, budget=budget, progress=progress))
        ref = res["references"][0]
        rows.append({"case": name, "truth": truth, "verdict": ref["verdict"], "p_value": f"{ref['p_value']:.3g}",
                     "report": str(out / name / "report.html")})
    click.echo(f"\n{'case':<14}{'ground truth':<14}{'verdict':<14}{'p-value':<10}report")
    for r in rows:
        click.echo(f"{r['case']:<14}{r['truth']:<14}{r['verdict']:<14}{r['p_value']:<10}{r['report']}")
    return rows
