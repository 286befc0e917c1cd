"""The warm interpreter behind `tests/clirun.py`: imports the CLI's heavy libraries once, then forks one child per command.

It reads one JSON request per line on stdin and answers `pid N` when the child starts and `rc N` when it ends. It
never runs a computation itself, so no thread pool (OpenMP, BLAS) exists when it forks.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import signal
import sys
import traceback


def _warm() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401

    import provenance.audit  # noqa: F401
    import provenance.cli  # noqa: F401
    import provenance.report.render  # noqa: F401
    import provenance.report.verify  # noqa: F401


def _child(req: dict) -> None:
    """Become `python -m provenance *argv` in the request's directory, environment and streams; never return."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(req["cwd"])
        sys.path[0] = req["cwd"]  # as `python -m` puts the working directory first
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, path, mode in ((0, req["stdin"], os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                               (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            new = os.open(path, mode, 0o600)
            os.dup2(new, fd)
            os.close(new)
        # Fresh standard streams on the new descriptors, as a fresh interpreter with pipes would have.
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        sys.argv = [os.path.join(os.path.dirname(__file__), "..", "provenance", "__main__.py"), *req["argv"]]
        from provenance.cli import main

        try:
            main(req["argv"])
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter would print for an escaped exception
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)


def main() -> None:
    # sys.path[0] is this script's folder (tests/); the repository root takes its place, as for the tests themselves.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _warm()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        sys.stdout.write(f"pid {pid}\n")
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"rc {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
