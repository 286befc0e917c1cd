"""The printed report: every page of a committed example, printed to PDF by a headless Chromium, carries the case id,
the revision, the evidence digest and "page N of M" (CSS paged-media margin boxes; skipped without Chromium or pypdf)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "reports" / "example" / "distilled-p-smollm2-seq-full"
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(BROWSER is None, reason="needs a Chromium-based browser to print")
def test_every_printed_page_names_the_case_revision_digest_and_page(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    assert BROWSER is not None
    pdf = tmp_path / "report.pdf"
    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--print-to-pdf={pdf}",
                    (EXAMPLE / "report.html").as_uri()], capture_output=True, timeout=180, check=False)
    if not pdf.is_file():
        pytest.skip(f"{BROWSER} did not print (no display libraries?)")
    case = json.loads((EXAMPLE / "manifest.json").read_text())["case"]
    digest = re.search(r"evidence digest ([0-9a-f]{16})", (EXAMPLE / "report.html").read_text())
    assert digest, "the report states its evidence digest"
    pages = [p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages]
    assert len(pages) > 5
    for i, text in enumerate(pages, 1):
        assert f"case {case['case_id']}" in text and f"revision {case['revision']}" in text, f"page {i}"
        assert f"evidence digest {digest.group(1)}" in text, f"page {i}"
        assert f"page {i} of {len(pages)}" in text, f"page {i}"
    # the instructions to re-run the analysis are in the printed text too
    assert any("provenance verify" in t for t in pages) and any("provenance audit" in t for t in pages)
