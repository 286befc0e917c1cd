"""CLI behaviour: fast help, and one clear line with exit code 2 for each kind of bad input."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests import clirun
from tests.conftest import error_lines


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return clirun.run_cli(*args, cwd=cwd, timeout=120)


def assert_input_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr  # one clear line, never a traceback
    assert needle in lines[0]


def test_help_does_not_import_heavy_libraries() -> None:
    """`provenance --help` stays instant because torch/transformers load only inside commands."""
    code = "import sys, provenance.cli; assert not {'torch', 'transformers', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    proc = run_cli("--help")
    assert proc.returncode == 0 and "audit" in proc.stdout and "serve" in proc.stdout


def test_unknown_model_suggests(tmp_path: Path) -> None:
    proc = run_cli("audit", "--suspect", "smollm2-135m", "--reference", "gemma-3-270m", "--out", str(tmp_path / "o"))
    assert_input_error(proc, "did you mean 'smollm2-135m-instruct'")


def test_missing_path(tmp_path: Path) -> None:
    proc = run_cli("fingerprint", str(tmp_path / "nope.gguf"))
    assert_input_error(proc, "does not exist")


def test_pickle_checkpoint_refused(tmp_path: Path) -> None:
    d = tmp_path / "pickled"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    proc = run_cli("fingerprint", str(d))
    assert_input_error(proc, "pickle checkpoint")


def test_directory_without_weights(tmp_path: Path) -> None:
    d = tmp_path / "empty-model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    assert_input_error(run_cli("fingerprint", str(d)), "no weights")
    d2 = tmp_path / "not-a-model"
    d2.mkdir()
    assert_input_error(run_cli("fingerprint", str(d2)), "no config.json")


def test_output_directory_with_other_files(tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.docx").write_text("do not overwrite")
    proc = run_cli("audit", "-s", "smollm2-135m-instruct", "-r", "gemma-3-270m", "--out", str(out))
    assert_input_error(proc, "not an evidence bundle")
    assert (out / "thesis.docx").read_text() == "do not overwrite"


def test_endpoint_refusing_connections() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens there
    proc = run_cli("fingerprint", f"http://127.0.0.1:{port}/v1#m", "--timeout", "2")
    assert_input_error(proc, "connection failed")


def test_usage_error_exit_code() -> None:
    proc = run_cli("audit", "--suspect", "x")
    assert proc.returncode == 2


def test_the_forked_cli_answers_as_a_fresh_interpreter(tmp_path: Path) -> None:
    """tests/clirun.py forks a warm interpreter to save the imports: the same commands give the same exit code and the
    same streams from a fresh `python -m provenance`."""
    commands = (["--help"], ["verify", str(tmp_path / "missing")],
                ["audit", "-s", "fake:s1", "-r", "fake:t1", "-c", "fake:c1", "--budget", "4", "--dry-run", "--json"],
                ["audit", "-s", "fake:s1", "-r", "fake:t1", "--budget", "-3"])
    for args in commands:
        warm, fresh = clirun.run_cli(*args), clirun.run_cli(*args, fresh=True)
        assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr), args
    assert clirun.run_cli("audit", "-s", "fake:s1", "-r", "fake:t1", "--budget", "-3").returncode == 2
