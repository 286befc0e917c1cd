"""Nothing lost: `--out` holds only what provenance wrote, an old bundle is kept, zips keep their names, runs lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenance.report.verify import verify
from tests.hostile_fakes import audit_args, endpoints, run_audit_api, run_cli
from tests.conftest import error_lines


def one_error(proc: Any, needle: str) -> None:
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def requests_made(servers: dict[str, Any]) -> int:
    return sum(sum(s.plan.attempts.values()) for s in servers.values())


@pytest.mark.parametrize("marker", ["manifest.json", "results.json", "transcripts.jsonl"])
def test_a_file_with_a_bundle_name_does_not_make_a_bundle(tmp_path: Path, marker: str) -> None:
    """It used to count as an old bundle, and the whole directory was deleted with the user's other files."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / marker).write_text('{"mine": true}')
    (out / "thesis.docx").write_text("do not delete")
    with endpoints() as servers:
        proc = run_cli(*audit_args(servers, out))
        assert requests_made(servers) == 0  # refused before any work
    one_error(proc, "is not empty and is not an evidence bundle")
    assert sorted(p.name for p in out.iterdir()) == sorted([marker, "thesis.docx"])
    assert (out / "thesis.docx").read_text() == "do not delete"


@pytest.mark.slow
def test_an_existing_bundle_is_kept(tmp_path: Path) -> None:
    """Another case's bundle was replaced silently: now refused without --replace, and kept beside it with it."""
    out = tmp_path / "case"
    with endpoints() as servers:
        assert run_cli(*audit_args(servers, out, "--case-id", "CASE-1")).returncode == 0
        first = (out / "SHA256SUMS").read_bytes()
        proc = run_cli(*audit_args(servers, out, "--case-id", "CASE-2"))
        one_error(proc, "already holds an evidence bundle (case 'CASE-1'); pass --replace")
        assert (out / "SHA256SUMS").read_bytes() == first
        proc = run_cli(*audit_args(servers, out, "--case-id", "CASE-2", "--replace"))
        assert proc.returncode == 0, proc.stderr
    kept = tmp_path / "case.replaced-1"
    assert (kept / "SHA256SUMS").read_bytes() == first and verify(kept).ok
    assert json.loads((out / "manifest.json").read_text())["case"]["case_id"] == "CASE-2" and verify(out).ok
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["case", "case.replaced-1"]


def test_zip_keeps_the_whole_name(tmp_path: Path) -> None:
    """`--out case.v1` and `--out case.v2` both wrote case.zip."""
    with endpoints() as servers:
        for name in ("case.v1", "case.v2"):
            assert run_cli(*audit_args(servers, tmp_path / name, "--zip")).returncode == 0
    assert sorted(p.name for p in tmp_path.glob("*.zip")) == ["case.v1.zip", "case.v2.zip"]


@pytest.mark.parametrize("out", [".", "..", "./"])
def test_out_that_is_the_current_directory_is_refused_before_any_work(tmp_path: Path, out: str) -> None:
    """`--out .` ran the whole collection and then failed."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    with endpoints() as servers:
        proc = run_cli(*audit_args(servers, Path(out)), cwd=cwd)
        assert requests_made(servers) == 0
    one_error(proc, "is the current directory or contains it")


def test_probe_files_with_the_same_name_both_reach_the_bundle(tmp_path: Path) -> None:
    """They overwrote each other inside the bundle, so a fresh bundle failed `verify`."""
    lib = Path(__file__).resolve().parent.parent / "probes"
    for sub, src in (("a", "continuation"), ("b", "next-token")):
        (tmp_path / sub).mkdir()
        data = json.loads((lib / f"{src}.json").read_text())
        data["id"] = f"{src}-{sub}"
        (tmp_path / sub / "probes.json").write_text(json.dumps(data))
    out = tmp_path / "bundle"
    with endpoints() as servers:
        proc = run_cli(*audit_args(servers, out, "--continuation-probes", str(tmp_path / "a" / "probes.json"),
                                   "--next-token-probes", str(tmp_path / "b" / "probes.json")))
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (out / "probes").iterdir())
    # one file per plan, named by the role that reads it, so two files called probes.json cannot collide
    assert {"output-probes.json", "next_token-probes.json"} <= set(files), files
    assert verify(out).ok


def test_a_second_run_on_the_same_out_is_refused(tmp_path: Path) -> None:
    from provenance.report.outdir import prepare_out, release

    out = tmp_path / "busy"
    prepare_out(out)  # this process now holds the lock, as a running audit would
    try:
        with endpoints() as servers:
            proc = run_cli(*audit_args(servers, out))
            assert requests_made(servers) == 0
        one_error(proc, "another provenance run is writing")
    finally:
        release(out)
    assert not (tmp_path / ".busy.lock").exists()


@pytest.mark.slow
def test_replaced_outputs_through_the_python_api(tmp_path: Path) -> None:
    """The API does what the CLI does: refused by default, kept with prepare_out(replace=True)."""
    from provenance.errors import InputError
    from provenance.report.outdir import prepare_out

    out = tmp_path / "api"
    with endpoints() as servers:
        run_audit_api(servers, out)
        with pytest.raises(InputError, match="already holds an evidence bundle"):
            run_audit_api(servers, out)
        prepare_out(out, replace=True)
        run_audit_api(servers, out)
    assert verify(out).ok and verify(tmp_path / "api.replaced-1").ok
    shutil.rmtree(tmp_path / "api.replaced-1")
