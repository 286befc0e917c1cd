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
WHY = ("regenerated to carry the case id in results.json and on every transcript line; analysis version 2")
KEY_NOTE = ("Each bundle is signed (SHA256SUMS.sig) with a key made for this run only; its public half is "
            "examiner-demo.pub: provenance verify reports/example/<bundle> --public-key reports/example/examiner-demo.pub")


def versions(sums: Path) -> int:
    """How many versions of this example were committed: the revision of the one being replaced."""
    import subprocess

    log = subprocess.run(["git", "log", "--format=%H", "--", str(sums)], capture_output=True, text=True, check=True)
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
        revision = versions(old) + 1 if old.is_file() else 1
        tmp = EXAMPLES.parent / f".{name}.new"
        shutil.rmtree(tmp, ignore_errors=True)
        controls = [c for c in labels["controls"] if c != pair["suspect"]]
        res = run_audit(AuditConfig(suspect=pair["suspect"], references=[labels["reference"]], controls=controls,
                                    out=tmp, budget=100, progress=False, lineages=lineages, evidentiary=True,
                                    case=CaseInfo(case_id=f"DEMO-{name}", note=f"ground truth: {pair['relation']}; {WHY}",
                                                  replaces=replaces, revision=revision,
                                                  examiner="provenance maintainers (demo)",
                                                  examiner_role="maintainers of the tool, running its demonstration",
                                                  requested_by="the provenance project (a demonstration, no legal "
                                                               "matter)",
                                                  questions=["Was the suspect trained on the reference's outputs, or "
                                                             "derived from its weights?"])))
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
