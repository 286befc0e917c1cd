"""Regenerate the committed example bundles (reports/example/) from the validation study's cases; a bundle of a case
already in the tree amends it (cites its hash, next revision), one of a new case starts at revision 1.

The examples are cases of the study (docs/study-protocol.md), audited as the study audited them (4 control lineages,
the reference's and controls' lineages given, the suspect's unknown), at the default budget, so that each report's
evaluation rests on the validation record for its conditions. Which cases, fixed before any was looked at
(2026-11-30), each the first by case id:
- distilled: a related case whose reference is SmolLM2-135M-Instruct and whose suspect is its sequence-level student
  (relation kind "sequence");
- independent: a null case whose reference is SmolLM2-135M-Instruct;
- derived: a related case of relation kind "noised" (a corpus root's weights plus noise);
- endpoint (added 2026-11-30, session 14): the distilled case again, its suspect served by `provenance serve` on
  loopback and audited as an OpenAI-compatible endpoint.

Run from the repository root on a committed tree, after `provenance zoo lineages` (the study's zoo):
python3 scripts/make_examples.py [--cases ROWS_OR_CASES]
`--cases` takes the case list from a study's rows.jsonl (each case id's tuple as that study ran it, models from this
zoo's labels.json) or a cases.json, instead of the zoo's own draw: a rebuilt zoo draws other tuples under the same ids
(docs/study-protocol-v3.md, amendment 4), so the examples can keep their cases across builds. The note says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from provenance.audit import AuditConfig, run_audit
from provenance.cache import EvidenceCache
from provenance.report.bundle import CaseInfo
from provenance.zoo.cases import case_models
from provenance.zoo.lineages import default_lineages_dir, write_recipes

EXAMPLES = Path("reports/example")
WHY = ("a case of the validation study's design (4 control lineages, budget 200), so that the evaluation rests on the "
       "validation record for its conditions; picked by a rule fixed before any case was looked at (the first case by "
       "id of its kind: scripts/make_examples.py), not for its result; models named in words, keyed to their specs and "
       "origins")
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
            "examiner-demo.pub. Each SHA256SUMS is also time-stamped (SHA256SUMS.tsr, RFC 3161) by a demonstration "
            "authority on loopback (openssl ts, tests/tsa.py) whose CA is tsa-demo-ca.crt and whose keys are thrown "
            "away: provenance verify reports/example/<bundle> --public-key reports/example/examiner-demo.pub "
            "--tsa-ca reports/example/tsa-demo-ca.crt")
# The demonstration authority's certificates outlive the examples: openssl checks a token's chain at today's date.
TSA_DAYS = 36500


def case_id_of(bundle: Path) -> str | None:
    return json.loads((bundle / "manifest.json").read_text()).get("case", {}).get("case_id")


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


@contextlib.contextmanager
def served(spec: str) -> Iterator[str]:
    """`provenance serve SPEC` on a free loopback port, for the length of the block: the endpoint's spec."""
    proc = subprocess.Popen([sys.executable, "-m", "provenance", "serve", spec, "--port", "0", "--name", "suspect"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", proc.stdout.readline())  # printed once it listens
        if not m:
            raise SystemExit("provenance serve did not start")
        yield f"{m.group(1)}#suspect"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def write_example(relation: str, case: dict, suspect: str, reference: str, controls: list[str],
                  lineages: dict[str, str], cache: EvidenceCache, repeat: int = 0,
                  why: str = WHY) -> tuple[Path, Path, list[Path]]:
    """Audit one case into a hidden directory beside reports/example/RELATION-SUSPECT; the earlier bundle of the same
    case, if any, is the one it amends. Returns (written, target, earlier examples of this relation): nothing tracked
    is touched until every audit has run, since each runs in evidentiary mode and refuses a tree that differs from its
    commit."""
    name = f"{relation}-{case['suspect']['id'].replace('/', '-')}"
    case_id = f"DEMO-{case['id']}" + ("-endpoint" if relation == "endpoint" else "")
    target = EXAMPLES / name
    old_dirs = sorted(p for p in EXAMPLES.glob(f"{relation}-*") if (p / "SHA256SUMS").is_file())
    # A bundle amends only an earlier bundle of the same case: an example of another case (another suspect) is
    # superseded, not amended, so the new one starts at revision 1 and cites nothing.
    same = [d for d in old_dirs if case_id_of(d) == case_id]
    old = same[0] / "SHA256SUMS" if same else None
    replaces = hashlib.sha256(old.read_bytes()).hexdigest() if old else None
    revision = revision_of(old.parent) + 1 if old else 1
    tmp = EXAMPLES.parent / f".{name}.new"
    shutil.rmtree(tmp, ignore_errors=True)
    truth = "distilled" if relation == "endpoint" else relation
    res = run_audit(AuditConfig(suspect=suspect, references=[reference], controls=controls, repeat=repeat, cache=cache,
                                out=tmp, budget=BUDGET, progress=False, lineages=lineages, evidentiary=True,
                                case=CaseInfo(case_id=case_id,
                                              note=f"ground truth: {truth} (study case {case['id']}); {why}",
                                              replaces=replaces, revision=revision,
                                              examiner="provenance maintainers (demo)",
                                              examiner_role="maintainers of the tool, running its demonstration",
                                              requested_by="the provenance project (a demonstration, no legal matter)",
                                              demonstration=True,
                                              questions=["Was the suspect trained on the reference's outputs, or "
                                                         "derived from its weights?"])))
    ref = res["references"][0]
    print(f"{name}: {ref['verdict']} (p = {ref['p_value']}) {ref['reason']}; replaces {replaces}", file=sys.stderr)
    return tmp, target, old_dirs


def built_note(zoo: Path, source: Path) -> str:
    """Which build of the zoo and which case list the examples come from (docs/study-protocol-v3.md, amendment 4)."""
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    return (f"the case's suspect, reference and controls as listed in {source.name if source.parent == zoo else source} "
            f"(SHA-256 {sha[:12]}...); the models are this machine's build of the study zoo, while the validation "
            "record was measured on an earlier build of the same plan, with other weights under the same names and "
            "other controls under some case ids, so the record's rates are the design's, not this case's row "
            "(docs/study-protocol-v3.md, amendment 4)")


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=None,
                    help="a study's rows.jsonl or a cases.json (default: the zoo's cases.json)")
    args = ap.parse_args()

    keydir = Path(tempfile.mkdtemp(prefix="provenance-demo-key-"))
    key = demo_key(keydir)
    # Every answer is collected afresh for the examples (an evidence cache of this run only): no record is replayed
    # from an earlier run, so each carries what this release transcribes (the rendered chat prompt, decoding details).
    cache = EvidenceCache(keydir / "evidence")
    zoo = default_lineages_dir()
    labels = json.loads((zoo / "labels.json").read_text())
    write_recipes(zoo, labels)  # hidden files: fingerprints, and so the study's cached evidence, are unchanged
    source = args.cases or zoo / "cases.json"
    if source.suffix == ".jsonl":
        from provenance.study.outputs import read_rows
        from provenance.zoo.cases import cases_from_rows

        cases = cases_from_rows(read_rows(source), labels)["cases"]
    else:
        cases = json.loads(source.read_text())["cases"]
    picked = pick(cases)
    why = f"{WHY}; {built_note(zoo, source)}"
    written = []
    for relation, case in picked.items():
        suspect, reference, controls, lineages = case_models(zoo, case)  # as the study audited it
        written.append(write_example(relation, case, suspect, reference, controls, lineages, cache, why=why))
    # The endpoint example: the distilled case's suspect behind an OpenAI-compatible server (`provenance serve` on
    # loopback), audited as a remote model: the bundle shows what endpoint evidence looks like (each request's tries,
    # headers, the served model's self-report, repeated probes).
    case = picked["distilled"]
    suspect, reference, controls, lineages = case_models(zoo, case)
    with served(suspect) as url:
        written.append(write_example("endpoint", case, url, reference, controls, lineages, cache, repeat=3,
                                     why="the suspect served over an OpenAI-compatible HTTP API on loopback "
                                         f"(provenance serve), audited as a remote model; {built_note(zoo, source)}"))
    from provenance.report.signing import sign_bundle
    from provenance.report.timestamp import request_timestamp

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ holds the loopback authority
    from tests.tsa import local_tsa

    with local_tsa(keydir / "tsa", days=TSA_DAYS, name="provenance demonstration (not a trusted authority)") as (
            url, ca):
        for tmp, target, old_dirs in written:
            for d in old_dirs:
                shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
            sign_bundle(target, key, signer="provenance maintainers (demo key, this run only)")
            request_timestamp(target, url)
        shutil.copyfile(ca, EXAMPLES / "tsa-demo-ca.crt")

    shutil.copyfile(keydir / "examiner-demo.pub", EXAMPLES / "examiner-demo.pub")
    shutil.rmtree(keydir, ignore_errors=True)  # the private half is never kept
    print(KEY_NOTE, file=sys.stderr)


if __name__ == "__main__":
    main()
