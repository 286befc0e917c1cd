"""The built wheel, not the editable checkout: it installs, ships every data file, and writes, verifies and re-renders a
bundle (a non-editable install once shipped no report template, so every audit ended in an internal error)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_built_wheel_writes_verifies_and_rerenders_a_bundle(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("provenance-*.whl"))
    # A fresh environment that sees this interpreter's packages (torch and friends) but not the checkout.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", site,
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp_path / "elsewhere"  # not the checkout: `import provenance` must find the installed copy
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import provenance; print(provenance.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(site), where
    out = work / "bundle"
    args = [str(py), "-m", "provenance", "audit", "-s", "fake:s1?teacher=t1&q=0.5", "-r", "fake:t1", "--budget", "40",
            "--out", str(out), "--no-progress"]
    for c in ("fake:c1", "fake:c2", "fake:c3", "fake:c4"):
        args += ["-c", c]
    env = {"PROVENANCE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "report.html").is_file()
    import json

    tool = json.loads((out / "manifest.json").read_text())["tool"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    # The installed tool names its own commit from the wheel's build metadata, not from any repository around it.
    assert tool["commit_source"] == "build metadata", tool
    assert head.returncode != 0 or tool["commit"] == head.stdout.strip(), tool
    (out / "report.html").unlink()
    rerender = subprocess.run([str(py), "-m", "provenance", "report", str(out)], cwd=work, capture_output=True,
                              text=True, timeout=600, env=env)
    assert rerender.returncode == 0, rerender.stderr[-2000:]
    check = subprocess.run([str(py), "-m", "provenance", "verify", str(out)], cwd=work, capture_output=True, text=True,
                           timeout=600, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
