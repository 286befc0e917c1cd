"""Hostile bundles for `verify` and `report`: links, FIFOs, devices, paths outside, unbounded work, forged additions."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.report.bundle import write_sums
from provenance.report.verify import FLOAT_REL_TOL, _close, _normal, verify
from tests.hostile_fakes import ROOT, endpoints, run_audit_api, run_cli
from tests.conftest import error_lines

EXAMPLES = sorted((ROOT / "reports" / "example").glob("*/SHA256SUMS"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh bundle from an audit of four loopback endpoints (no model loads: seconds)."""
    out = tmp_path_factory.mktemp("hostile-verify") / "bundle"
    with endpoints() as servers:
        run_audit_api(servers, out)
    assert verify(out).ok
    yield out


@pytest.fixture()
def bundle(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(built, dst, symlinks=True)
    return dst


def verify_cli(b: Path, **kw: Any) -> Any:
    return run_cli("verify", str(b), timeout=60, **kw)


def strict(path: Path) -> Any:
    def no(name: str) -> Any:
        raise AssertionError(f"{path.name} holds {name}, which strict JSON parsers reject")
    return json.loads(path.read_text(), parse_constant=no)


# -- the committed examples, on any machine and thread count ---------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("sums", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_committed_examples_verify_with_any_thread_count(sums: Path, threads: int) -> None:
    """The derived example failed on another machine (float32 BLAS, thread-dependent sums): now float64 on one BLAS
    thread, compared with documented tolerances."""
    env = {v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = verify_cli(sums.parent, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified:" in proc.stdout and "statistics recomputed" in proc.stdout


@pytest.mark.parametrize("sums", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_committed_examples_are_signed_and_re_render_identically(sums: Path) -> None:
    """Each example carries a signature by the committed demo key and an RFC 3161 token of the demonstration
    authority (tests/tsa.py), and its report and tables re-render identically."""
    examples = ROOT / "reports" / "example"
    tsa = ["--tsa-ca", str(examples / "tsa-demo-ca.crt")] if shutil.which("openssl") else []
    proc = run_cli("verify", str(sums.parent), "--public-key", str(examples / "examiner-demo.pub"), *tsa, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signature valid: signed by the trusted key" in proc.stdout
    assert not tsa or "signature of the authority verified" in proc.stdout
    assert "not re-rendered" not in proc.stdout  # compared, not skipped
    assert "Evaluation" in (sums.parent / "report.html").read_text()


# -- links, FIFOs, devices ------------------------------------------------------------------------------------------

def test_a_listed_file_replaced_by_a_symlink_is_refused(bundle: Path, tmp_path: Path) -> None:
    """A link to an identical copy outside would hash the same: it is refused, not followed."""
    outside = tmp_path / "outside-results.json"
    shutil.copy(bundle / "results.json", outside)
    (bundle / "results.json").unlink()
    os.symlink(outside, bundle / "results.json")
    proc = verify_cli(bundle)
    assert proc.returncode == 3 and "FAIL  refused: results.json is a symbolic link (not followed)" in proc.stdout


def test_results_linked_to_dev_zero_is_refused_at_once(bundle: Path) -> None:
    (bundle / "results.json").unlink()
    os.symlink("/dev/zero", bundle / "results.json")
    t0 = time.time()
    proc = verify_cli(bundle)
    assert proc.returncode == 3 and "symbolic link" in proc.stdout and time.time() - t0 < 30


@pytest.mark.parametrize("where", ["added.fifo", "transcripts.jsonl", "tables/tests.csv"])
def test_a_fifo_in_the_bundle_does_not_hang(bundle: Path, where: str) -> None:
    target = bundle / where
    if target.exists():
        target.unlink()
    os.mkfifo(target)
    proc = verify_cli(bundle)  # the subprocess timeout (60 s) fails the test if verify blocks on the FIFO
    assert proc.returncode == 3 and f"refused: {where} is a FIFO" in proc.stdout
    assert_input_refused(run_cli("report", str(bundle), timeout=60), "a FIFO")


def test_a_symlinked_directory_is_not_followed(bundle: Path, tmp_path: Path) -> None:
    """`report` used to write through a symlinked tables/ into a directory outside the bundle."""
    outside = tmp_path / "elsewhere"
    shutil.move(str(bundle / "tables"), outside)
    os.symlink(outside, bundle / "tables")
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    proc = verify_cli(bundle)
    assert proc.returncode == 3 and "refused: tables is a symbolic link" in proc.stdout
    assert_input_refused(run_cli("report", str(bundle), timeout=60), "symbolic link")
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before


def assert_input_refused(proc: Any, needle: str) -> None:
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and "not re-rendering" in lines[0] and needle in lines[0], proc.stderr


# -- paths and work a forged manifest asks for --------------------------------------------------------------------

def _forge(bundle: Path, edit: Any) -> None:
    """Edit manifest.json and re-hash everything, as a forger would (SHA256SUMS is not a signature)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    write_sums(bundle)


@pytest.mark.parametrize("path", ["../outside.json", "/etc/hostname", "probes/../../outside.json", "unlisted.json"])
def test_manifest_paths_outside_or_unlisted_are_refused(bundle: Path, path: str) -> None:
    first = json.loads((bundle / "manifest.json").read_text())["probe_sets"][0]["file"]
    (bundle.parent / "outside.json").write_text((bundle / first).read_text())

    def edit(m: dict[str, Any]) -> None:
        m["probe_sets"][0]["file"] = path
    _forge(bundle, edit)
    if path == "unlisted.json":  # present in the bundle but added after SHA256SUMS was written
        shutil.copy(bundle / first, bundle / path)
    rep = verify(bundle)
    assert not rep.ok and any("refused" in p or "added" in p for p in rep.problems), rep.problems


def test_a_manifest_asking_for_unbounded_work_is_refused(bundle: Path) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["analysis"]["weight_permutations"] = 10**8
    _forge(bundle, edit)
    t0 = time.time()
    rep = verify(bundle)
    assert time.time() - t0 < 10
    assert rep.problems == ["refused: manifest asks for 100000000 weight permutations (recomputed only for 1 to 100000)"]


def test_report_never_lists_an_unlisted_file(bundle: Path) -> None:
    """`report` hashed every file it found into SHA256SUMS, so a forged file added to a bundle then verified."""
    (bundle / "forged-exhibit.txt").write_text("the suspect confessed")
    sums = (bundle / "SHA256SUMS").read_bytes()
    assert_input_refused(run_cli("report", str(bundle), timeout=60), "added: forged-exhibit.txt")
    assert (bundle / "SHA256SUMS").read_bytes() == sums
    assert verify_cli(bundle).returncode == 3


def test_report_rerenders_a_good_bundle_in_place(bundle: Path) -> None:
    proc = run_cli("report", str(bundle), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert verify(bundle).ok
    assert not list(bundle.parent.glob(".copy.*"))  # no temporary directory left behind


# -- tool errors are not bundle failures ------------------------------------------------------------------------------

def test_a_bad_environment_variable_is_not_a_failed_bundle(bundle: Path) -> None:
    proc = verify_cli(bundle, env={"PROVENANCE_MAX_ENDPOINTS": "eight"})
    assert proc.returncode == 2 and "PROVENANCE_MAX_ENDPOINTS" in proc.stderr and "NOT verified" not in proc.stdout


def test_a_broken_installation_is_exit_1_not_exit_3(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance.report.verify as v

    def broken(_: Path) -> Any:
        raise ImportError("scipy is missing")
    monkeypatch.setattr(v, "recompute", broken)
    with pytest.raises(ImportError):
        v.verify(bundle)


# -- strict JSON -----------------------------------------------------------------------------------------------------

def test_results_and_manifest_are_strict_json(built: Path) -> None:
    results = strict(built / "results.json")
    strict(built / "manifest.json")
    skipped = [t for t in results["references"][0]["tests"] if t["skipped"]]
    assert skipped and all(t["statistic"] is None for t in skipped)  # was NaN


# -- the comparison tolerance ------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(x=st.floats(min_value=1e-6, max_value=1e6), rel=st.floats(min_value=-0.5, max_value=0.5),
       n=st.integers(min_value=9, max_value=99_999), hits=st.integers(min_value=0, max_value=9))
def test_tolerance_accepts_rounding_and_rejects_a_changed_count(x: float, rel: float, n: int, hits: int) -> None:
    """Statistics may differ by floating-point re-computation (< FLOAT_REL_TOL); a p-value that is a count may not."""
    out: list[str] = []
    _close({"statistic": x * (1 + rel * FLOAT_REL_TOL)}, {"statistic": x}, "t", out)
    assert not out
    p = (hits + 1) / (n + 1)
    _close({"p_value": (hits + 2) / (n + 1)}, {"p_value": p}, "t", out)
    assert out and "p_value" in out[0]
    out.clear()
    _close({"statistic": x * (1 + 10 * FLOAT_REL_TOL)}, {"statistic": x}, "t", out)
    assert out
    out.clear()
    _close(_normal({"statistic": math.nan, "n": n}), {"statistic": None, "n": n}, "t", out)  # NaN written as null
    assert not out


def test_a_reworded_skip_reason_is_not_tampering_but_a_test_that_ran_is_compared() -> None:
    """A later release may reword why a test did not run (older bundles keep their words); a stored skip where the
    recomputation ran, or the reverse, is still a difference."""
    old = {"tests": [{"name": "w", "skipped": "no MLP matrices of matching shape", "p_value": None}]}
    new = {"tests": [{"name": "w", "skipped": "the two models have no MLP matrix of the same shape", "p_value": None}]}
    out: list[str] = []
    _close(new, old, "r", out)
    assert not out
    ran = {"tests": [{"name": "w", "skipped": None, "p_value": 0.2}]}
    _close(ran, old, "r", out)
    assert any("skipped" in o for o in out) and any("p_value" in o for o in out)


def test_report_regenerates_missing_derived_files_only(bundle: Path) -> None:
    """A deleted report.html or figure is re-rendered from the evidence (and the result must verify); an edited piece of
    evidence is not laundered."""
    (bundle / "report.html").unlink()
    shutil.rmtree(bundle / "figures", ignore_errors=True)  # a bundle whose behavioural tests could not run has none
    (bundle / "tables" / "tests.csv").write_text("forged,table\n")
    proc = run_cli("report", str(bundle), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert verify(bundle).ok and "forged" not in (bundle / "tables" / "tests.csv").read_text()
    (bundle / "transcripts.jsonl").write_text((bundle / "transcripts.jsonl").read_text().replace(" ", "  ", 1))
    assert_input_refused(run_cli("report", str(bundle), timeout=60), "modified: transcripts.jsonl")
