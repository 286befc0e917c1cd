"""One live third-party OpenAI-compatible server: llama-cpp-python's, on the packaged SmolLM2 GGUF (opt-in, `-m live`).

It checks what no stub can: that a real server's answers pass capability discovery and a short audit. The server is
started and stopped by the test. llama-cpp-python publishes no prebuilt CPU wheel on PyPI (only an sdist that
compiles llama.cpp, 15+ minutes on 2 cores), so the test skips unless `llama_cpp.server` is importable; CI gets it
with `pip install llama-cpp-python[server] --extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cpu`
(the project's prebuilt CPU wheels) and runs `pytest -m live tests/test_live_server.py`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requires_models

pytestmark = [
    pytest.mark.live,
    requires_models,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python[server] not installed: no prebuilt wheel on PyPI; install it from "
                              "https://abetlen.github.io/llama-cpp-python/whl/cpu (see this module's docstring)"),
]


def test_llama_cpp_python_server_is_discovered_and_audited(tmp_path: Path) -> None:
    import httpx

    from provenance.models import LoadOptions, resolve
    from tests.faultserver import free_port

    gguf = resolve("smollm2-135m-instruct").gguf
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--model_alias", "smol", "--logits_all", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        rm = resolve(f"{url}#smol", LoadOptions(http_timeout=60))
        backend = rm.load()
        try:
            access, records = backend.discover_access()
        finally:
            backend.close()
        assert access["completions"] and access["chat"] and records
        assert resolve(f"{url}#smol").fingerprint == rm.fingerprint  # `created` is the time of the call there too
    finally:
        proc.terminate()
        proc.wait(timeout=30)
