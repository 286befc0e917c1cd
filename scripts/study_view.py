"""A study zoo as another study's rows name it: the case list rebuilt from those rows over a (partial) rebuild.

Protocol v3, amendment 5: the instructions arm runs on the continuation arm's cases, tuple for tuple, on a zoo rebuilt
on a new machine (part of it, as a stage needs). This writes a directory that `provenance validate --zoo` reads:
  VIEW/labels.json   the labels the plan promises (zoo.lineages.synthetic_labels over the zoo's frozen corpus), so that
                     each case's comparison sources are chosen as on the full build, whatever is built yet
  VIEW/cases.json    every case of ROWS, its suspect, reference and controls as the rows recorded them
  VIEW/families      a link to the zoo's model directories (the builder keeps writing there)
It checks that every case's comparison sources, chosen over VIEW/labels.json, are the ones the rows recorded, and with
--models-out it lists the model ids the selected cases need (case models and sources) for `zoo lineages --models`.

  python scripts/study_view.py ROWS --zoo ZOO --out VIEW [--split dev] [--kinds related]
      [--relation-kinds sequence,sequence-10pct,sequence-alt,mix] [--models-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _rel(spec: str) -> str:
    """A source as rows record it (an absolute path on the machine that ran them, or a packaged name) made comparable."""
    return "families/" + spec.split("families/", 1)[1] if "families/" in spec else spec


def main(argv: list[str] | None = None) -> int:
    from provenance.fsutil import atomic_write_json
    from provenance.study.outputs import read_rows
    from provenance.zoo.cases import case_sources, cases_from_rows
    from provenance.zoo.lineages import synthetic_labels

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=Path)
    ap.add_argument("--zoo", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="all", choices=["all", "dev", "heldout"])
    ap.add_argument("--kinds", default="null,related")
    ap.add_argument("--relation-kinds", default=None)
    ap.add_argument("--models-out", type=Path, default=None)
    a = ap.parse_args(argv)
    slices = a.zoo / "corpus" / "slices.json"
    if not a.rows.is_file() or not slices.is_file():
        print(f"error: need {a.rows} and {slices} (the zoo's frozen corpus)", file=sys.stderr)
        return 2
    rows = read_rows(a.rows)
    labels = synthetic_labels("full", list(json.loads(slices.read_text())))
    cases = cases_from_rows(rows, labels)
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        first.setdefault(r["case"], r)
    differ = [c["id"] for c in cases["cases"]
              if [_rel(s) for s in first[c["id"]].get("comparison_sources") or []] !=
              [m.get("path") or m["spec"] for m in case_sources(labels, c)]]
    a.out.mkdir(parents=True, exist_ok=True)
    link = a.out / "families"
    if not link.exists():
        link.symlink_to((a.zoo / "families").resolve(), target_is_directory=True)
    atomic_write_json(a.out / "labels.json", labels)
    atomic_write_json(a.out / "cases.json", cases)
    kinds = set(a.kinds.split(","))
    rk = set(a.relation_kinds.split(",")) if a.relation_kinds else None
    picked = [c for c in cases["cases"] if c["type"] in kinds and a.split in ("all", c["split"])
              and (rk is None or c.get("relation_kind") in rk)]
    need: set[str] = set()
    for c in picked:
        need |= {c["suspect"]["id"], c["reference"]["id"], *(m["id"] for m in c["controls"])}
        need |= {m["id"] for m in case_sources(labels, c)}
    planned = {m["id"] for m in labels["models"]}
    need &= planned  # packaged teachers are in the plan too (their answers are sampled by the builder)
    if a.models_out:
        a.models_out.write_text("".join(f"{m}\n" for m in sorted(need)))
    print(json.dumps({"cases": len(cases["cases"]), "left_out": cases["left_out_partial_build"],
                      "sources_differ": len(differ), "first_differ": differ[:3], "selected": len(picked),
                      "models_needed": len(need)}))
    return 1 if differ or cases["left_out_partial_build"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
