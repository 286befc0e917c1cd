"""Regenerate the committed example bundles (reports/example/) from the validation study's cases, each citing the
bundle it replaces.

The examples are cases of the study (docs/study-protocol.md), audited as the study audited them (4 control lineages,
the reference's and controls' lineages given, the suspect's unknown), at the default budget, so that each report's
evaluation rests on the validation record for its conditions. Which cases, fixed before any was looked at
(2026-11-30), each the first by case id:
- distilled: a related case whose reference is SmolLM2-135M-Instruct and whose suspect is its sequence-level student
  (relation kind "sequence");
- independent: a null case whose reference is SmolLM2-135M-Instruct;
- derived: a related case of relation kind "noised" (a corpus root's weights plus noise).

Run from the repository root on a committed tree, after `provenance zoo lineages` (the study's zoo):
python3 scripts/make_examples.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from provenance.audit import AuditConfig, run_audit
from provenance.report.bundle import CaseInfo
from provenance.zoo.cases import case_models
from provenance.zoo.lineages import default_lineages_dir, write_recipes

EXAMPLES = Path("reports/example")
WHY = ("regenerated from a case of the validation study (4 control lineages, budget 200), so that the evaluation rests "
       "on the validation record; models named in words, keyed to their specs and origins")
BUDGET = 200
REFERENCE_FAMILY = "p-smollm2"


def pick(cases: list[dict]) -> dict[str, dict]:
    """The three cases, by the rule in the docstring (first by id)."""
    by_id = sorted(cases, key=lambda c: c["id"])
    return {
        "distilled": next(c for c in by_id if c["type"] == "related" and c["reference"]["family"] == REFERENCE_FAMILY
                          and c.get("relation_kind") == "sequence"),
        "independent": next(c for c in by_id if c["type"] == "null" and c["reference"]["family"] == REFERENCE_FAMILY),
        "derived": next(c for c in by_id if c["type"] == "related" and c.get("relation_kind") == "noised"),
    }
KEY_NOTE = ("Each bundle is signed (SHA256SUMS.sig) with a key made for this run only; its public half is "
            "examiner-demo.pub: provenance verify reports/example/<bundle> --public-key reports/example/examiner-demo.pub")


def revision_of(bundle: Path) -> int:
    """The replaced bundle's own revision; for one written before bundles carried it, how many versions of it were
    committed (its path's history)."""
    import subprocess

    got = json.loads((bundle / "manifest.json").read_text()).get("case", {}).get("revision")
    if isinstance(got, int):
        return got
    log = subprocess.run(["git", "log", "--format=%H", "--", str(bundle / "SHA256SUMS")], capture_output=True,
                         text=True, check=True)
    return max(1, len(log.stdout.split()))


def demo_key(tmp: Path) -> Path:
    """A fresh Ed25519 key for this run (a real examiner keeps theirs); only the public half is committed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp / "examiner-demo"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    # Written beside the private half for now; copied into reports/example only after the audits, which run in
    # evidentiary mode and refuse a tree that differs from its commit.
    (tmp / "examiner-demo.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")
    return path


def main() -> None:
    import tempfile

    from provenance.report.signing import sign_bundle

    keydir = Path(tempfile.mkdtemp(prefix="provenance-demo-key-"))
    key = demo_key(keydir)
    zoo = default_lineages_dir()
    labels = json.loads((zoo / "labels.json").read_text())
    write_recipes(zoo, labels)  # hidden files: fingerprints, and so the study's cached evidence, are unchanged
    cases = json.loads((zoo / "cases.json").read_text())["cases"]
    for relation, case in pick(cases).items():
        name = f"{relation}-{case['suspect']['id'].replace('/', '-')}"
        target = EXAMPLES / name
        old_dirs = sorted(p for p in EXAMPLES.glob(f"{relation}-*") if (p / "SHA256SUMS").is_file())
        old = old_dirs[0] / "SHA256SUMS" if old_dirs else None  # the example of this relation it replaces
        replaces = hashlib.sha256(old.read_bytes()).hexdigest() if old else None
        revision = revision_of(old.parent) + 1 if old else 1
        tmp = EXAMPLES.parent / f".{name}.new"
        shutil.rmtree(tmp, ignore_errors=True)
        suspect, reference, controls, lineages = case_models(zoo, case)  # as the study audited it
        res = run_audit(AuditConfig(suspect=suspect, references=[reference], controls=controls,
                                    out=tmp, budget=BUDGET, progress=False, lineages=lineages, evidentiary=True,
                                    case=CaseInfo(case_id=f"DEMO-{case['id']}",
                                                  note=f"ground truth: {relation} (study case {case['id']}); {WHY}",
                                                  replaces=replaces, revision=revision,
                                                  examiner="provenance maintainers (demo)",
                                                  examiner_role="maintainers of the tool, running its demonstration",
                                                  requested_by="the provenance project (a demonstration, no legal "
                                                               "matter)",
                                                  questions=["Was the suspect trained on the reference's outputs, or "
                                                             "derived from its weights?"])))
        for d in old_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        sign_bundle(target, key, signer="provenance maintainers (demo key, this run only)")
        ref = res["references"][0]
        print(f"{name}: {ref['verdict']} (p = {ref['p_value']}) {ref['reason']}; replaces {replaces}", file=sys.stderr)


    shutil.copyfile(keydir / "examiner-demo.pub", EXAMPLES / "examiner-demo.pub")
    shutil.rmtree(keydir, ignore_errors=True)  # the private half is never kept
    print(KEY_NOTE, file=sys.stderr)


if __name__ == "__main__":
    main()
