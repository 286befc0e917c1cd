"""Run `python -m provenance ...` for a test as a real child process, forked from a warm interpreter.

Every CLI test used to start a fresh Python that imported numpy, scipy, pandas, matplotlib and torch again: one to
two seconds before the command did anything, hundreds of times a suite. Here one helper process per test worker (the
"zygote", `tests/cli_zygote.py`) imports those once and forks a child for each command. The child is still a separate
process with its own environment, working directory, standard streams, exit code and `os._exit`, so what the tests
check (one line on stderr, the exit code, no traceback, nothing left behind) means what it meant with a fresh
interpreter. What a forked child cannot show, a clean start (imports under the test's environment, the installed
entry point), is checked by `fresh=True` here and by `tests/test_wheel.py`.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
_lock = threading.Lock()
_zygote: subprocess.Popen[bytes] | None = None


def _start() -> subprocess.Popen[bytes]:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        _zygote = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_zygote.py")], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, env=env, cwd=ROOT)
        line = _zygote.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != b"ready":
            raise RuntimeError(f"the CLI zygote did not start: {line!r}")
        atexit.register(_stop)
    return _zygote


def _stop() -> None:
    if _zygote is not None and _zygote.poll() is None:
        _zygote.kill()
        _zygote.wait()


def _read_line(pipe: IO[bytes], deadline: float | None) -> bytes:
    if deadline is not None:
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline))
        if not ready:
            raise TimeoutError
    return pipe.readline()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None, timeout: float = 300,
            input: str | None = None, fresh: bool = False) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([python, -m, provenance, *args], capture_output=True, text=True)` with `env` *added* to this
    process's environment; `fresh=True` starts a new interpreter instead of forking the warm one."""
    full = {**os.environ, **(env or {})}
    argv = [sys.executable, "-m", "provenance", *args]
    if fresh:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full, cwd=cwd, input=input)
    with _lock, tempfile.TemporaryDirectory(prefix="clirun-") as tmp:
        out, err, inp = Path(tmp, "out"), Path(tmp, "err"), Path(tmp, "in")
        inp.write_text(input or "")
        z = _start()
        request = {"argv": list(args), "env": full, "cwd": os.path.abspath(cwd) if cwd is not None else os.getcwd(),
                   "stdout": str(out), "stderr": str(err), "stdin": str(inp)}
        z.stdin.write(json.dumps(request).encode() + b"\n")  # type: ignore[union-attr]
        z.stdin.flush()  # type: ignore[union-attr]
        pid = int(_read_line(z.stdout, None).split()[1])  # type: ignore[arg-type]
        try:
            code = int(_read_line(z.stdout, timeout).split()[1])  # type: ignore[arg-type]
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            _read_line(z.stdout, None)  # type: ignore[arg-type]
            raise subprocess.TimeoutExpired(argv, timeout, out.read_bytes(), err.read_bytes()) from None
        return subprocess.CompletedProcess(argv, code, out.read_text(errors="replace"), err.read_text(errors="replace"))
