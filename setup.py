"""Build hook: the wheel carries the commit it was built from (provenance/_build_info.json), so an installed tool
reports its own code's commit in every manifest, never the repository of whoever runs it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _git(*args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r if r.returncode == 0 else None


def build_info() -> dict[str, object]:
    commit = _git("rev-parse", "HEAD")
    if commit is None:  # an sdist or a copy without git: say so rather than guess
        return {"commit": None, "dirty": None, "diff_sha256": None, "source": "build (no git)"}
    diff = _git("diff", "HEAD", "--binary")
    body = diff.stdout if diff is not None else b""
    return {"commit": commit.stdout.decode().strip(), "dirty": bool(body.strip()),
            "diff_sha256": hashlib.sha256(body).hexdigest() if body.strip() else None, "source": "build metadata"}


class BuildWithInfo(build_py):
    def run(self) -> None:
        super().run()
        out = Path(self.build_lib) / "provenance" / "_build_info.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(build_info(), sort_keys=True) + "\n")


setup(cmdclass={"build_py": BuildWithInfo})
