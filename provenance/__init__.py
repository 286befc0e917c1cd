"""provenance: statistical evidence on whether one language model was distilled or derived from another.

The Python API (everything the CLI does; heavy modules load on first use, so `import provenance` stays instant)::

    import provenance
    results = provenance.audit_suspect("./suspect", ["smollm2-135m-instruct"], controls_panel="controls.toml",
                               out="reports/case-1")
    print(results["references"][0]["verdict"])
    report = provenance.verify("reports/case-1")          # every hash, then every statistic recomputed
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

__version__ = "0.2.0"

if TYPE_CHECKING:
    from provenance.audit import AuditConfig
    from provenance.report.verify import VerifyReport

__all__ = ["__version__", "audit_suspect", "run_audit", "AuditConfig", "verify", "matrix", "load_panel", "load_bundles"]


# Not named `audit`: that is the pipeline's module (provenance.audit), which importing would rebind on the package.
def audit_suspect(suspect: str, references: Sequence[str], controls: Sequence[str] | None = None, *,
          controls_panel: str | Path | None = None, out: str | Path | None = None, budget: int = 200, seed: int = 0,
          progress: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Audit `suspect` against each reference (results as in results.json; a bundle is written when `out` is given).

    `controls_panel` is a TOML/YAML/JSON file of controls with their lineage (see provenance.panel); other keyword
    arguments are AuditConfig fields (sequential=True, case=CaseInfo(...), lineages={spec: family}, ...).
    """
    from provenance.audit import AuditConfig, run_audit
    from provenance.panel import load_panel

    panel = load_panel(controls_panel).pinned() if controls_panel is not None else None
    cfg = AuditConfig(suspect=suspect, references=list(references), controls=list(controls) if controls else None,
                      out=Path(out) if out is not None else None, budget=budget, seed=seed, progress=progress,
                      panel=panel, **kwargs)
    return run_audit(cfg)


def verify(bundle: str | Path) -> "VerifyReport":
    """Check every hash of a bundle, then recompute every statistic from its files alone (`.ok`, `.problems`)."""
    from provenance.report.verify import verify as _verify

    return _verify(Path(bundle))


def matrix(models: Sequence[str], controls: Sequence[str] | None = None, *, out: str | Path | None = None,
           budget: int = 100, **kwargs: Any) -> dict[str, Any]:
    """Lineage evidence for every pair of `models` (see `provenance matrix --help`)."""
    from provenance.matrix import MatrixConfig, run_matrix

    return run_matrix(MatrixConfig(models=list(models), controls=list(controls) if controls else None,
                                   out=Path(out) if out is not None else None, budget=budget, progress=False, **kwargs))


def __getattr__(name: str) -> Any:
    # Lazy re-exports: the classes behind the API, without importing numpy/scipy/torch at `import provenance`.
    if name in ("AuditConfig", "run_audit"):
        from provenance import audit as _audit_module

        return getattr(_audit_module, name)
    if name == "load_bundles":
        from provenance.report.frame import load_bundles

        return load_bundles
    if name == "load_panel":
        from provenance.panel import load_panel

        return load_panel
    raise AttributeError(f"module 'provenance' has no attribute {name!r}")
