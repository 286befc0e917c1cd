"""Evidence bundles: they verify, every kind of tampering is caught by name, and re-rendering is deterministic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.audit import AuditConfig, run_audit
from provenance.report.bundle import CaseInfo, write_sums
from provenance.report.verify import verify
from tests.conftest import requires_models

pytestmark = [requires_models, pytest.mark.slow]
FORBIDDEN = re.compile(r"\b(match|matches|matched|proves?|proof that|identifies|100%|zero error rate|reasonable degree of scientific certainty)\b", re.I)


@pytest.fixture(scope="module")
def bundle(noised_smol: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "case"
    run_audit(AuditConfig(suspect=str(noised_smol), references=["smollm2-135m-instruct"], out=out, budget=100,
                          progress=False, case=CaseInfo(case_id="CASE-7", examiner="T. Ester (QA)"), likelihood_set=None))
    return out


def fresh_copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(bundle, dst)
    return dst


def test_bundle_verifies(bundle: Path) -> None:
    rep = verify(bundle)
    assert rep.ok, rep.problems
    assert rep.recomputed and rep.files_checked >= 12
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {"manifest.json", "results.json", "transcripts.jsonl", "report.html", "SHA256SUMS",
            "tables/tests.csv", "probes/output-continuation.json"} <= names
    assert any(n.startswith("figures/") and n.endswith(".png") for n in names)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["case"]["case_id"] == "CASE-7" and [c["action"] for c in manifest["custody"][-2:]] == ["analysis", "render"]
    assert {c["action"] for c in manifest["custody"][1:-2]} <= {"collected", "replayed from cache"}
    assert manifest["custody"][0]["action"] == "probe sets fixed"
    assert {m["role"] for m in manifest["models"]} == {"suspect", "reference", "control"}
    assert all(len(m["fingerprint"]) == 64 for m in manifest["models"])
    assert manifest["tool"]["version"] and "torch" in manifest["environment"]["packages"]


@pytest.mark.parametrize("name", ["results.json", "manifest.json", "transcripts.jsonl", "report.html", "tables/tests.csv",
                                  "probes/next_token-next-token.json", "SHA256SUMS"])
def test_flipped_byte_is_detected(bundle: Path, tmp_path: Path, name: str) -> None:
    b = fresh_copy(bundle, tmp_path)
    data = bytearray((b / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (b / name).write_bytes(bytes(data))
    rep = verify(b)
    assert not rep.ok
    if name != "SHA256SUMS":
        assert f"modified: {name}" in rep.problems


def test_deleted_and_added_files_are_named(bundle: Path, tmp_path: Path) -> None:
    b = fresh_copy(bundle, tmp_path)
    victim = next(p for p in sorted((b / "figures").iterdir()))
    victim.unlink()
    (b / "extra.txt").write_text("planted")
    rep = verify(b)
    assert f"missing: figures/{victim.name}" in rep.problems and "added: extra.txt" in rep.problems


def test_edited_number_with_rehash_is_caught_by_recomputation(bundle: Path, tmp_path: Path) -> None:
    """An editor who also rewrites SHA256SUMS is still caught: verify recomputes every statistic."""
    b = fresh_copy(bundle, tmp_path)
    res = json.loads((b / "results.json").read_text())
    res["references"][0]["tests"][0]["p_value"] = 0.5
    (b / "results.json").write_text(json.dumps(res, indent=2, sort_keys=True))
    write_sums(b)
    rep = verify(b)
    assert not rep.ok and any("recomputed statistic differs" in p and "p_value" in p for p in rep.problems)


def test_verify_cli_exit_codes(bundle: Path, tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "provenance", "verify", str(bundle)], capture_output=True, text=True)
    assert ok.returncode == 0 and "verified" in ok.stdout
    b = fresh_copy(bundle, tmp_path)
    (b / "transcripts.jsonl").write_text("{}\n")
    bad = subprocess.run([sys.executable, "-m", "provenance", "verify", str(b)], capture_output=True, text=True)
    assert bad.returncode == 3 and "modified: transcripts.jsonl" in bad.stdout
    refused = subprocess.run([sys.executable, "-m", "provenance", "report", str(b)], capture_output=True, text=True)
    assert refused.returncode == 2 and "not re-rendering" in refused.stderr


def test_rerender_is_deterministic(bundle: Path, tmp_path: Path) -> None:
    b = fresh_copy(bundle, tmp_path)
    (b / "report.html").unlink()
    shutil.rmtree(b / "figures")
    proc = subprocess.run([sys.executable, "-m", "provenance", "report", str(b)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.html", "SHA256SUMS", "tables/tests.csv"):
        assert (b / name).read_bytes() == (bundle / name).read_bytes(), name
    assert verify(b).ok


def test_report_wording(bundle: Path) -> None:
    text = re.sub(r"<[^>]+>", " ", (bundle / "report.html").read_text())
    text = re.sub(r"data:image/png;base64,\S+", "", text)
    assert not FORBIDDEN.search(text), FORBIDDEN.search(text)
    assert "CASE-7" in text and "not the probability that the models are" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (scripts/setup.sh installs it)")
def test_report_renders_in_headless_chromium(bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (bundle / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-500:]
    for section in ("summary", "models", "methodology", "results", "exhibits", "limitations", "daubert", "reproduce"):
        assert f'id="{section}"' in dom, section
    n_figures = len(list((bundle / "figures").glob("*.png")))
    assert dom.count('src="data:image/png;base64,') == n_figures >= 1
    assert "CASE-7" in dom
