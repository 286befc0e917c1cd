"""Several endpoints are probed at once (each is a server elsewhere), with the same evidence as one at a time."""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import pytest

from provenance.cache import EvidenceCache
from provenance.collect import ProbePlan, collect
from provenance.models import Backend, Completion, Request, resolve
from provenance.probeset import load
from provenance.serve import ModelServer

LATENCY = 0.03  # seconds per request: a remote GPU server's time per batch, spent waiting here


class SlowSeededBackend(Backend):
    """Plumbing only: deterministic text from a hash of (seed, prompt), after a fixed latency."""

    def __init__(self, seed: int, in_flight: list[int], peak: list[int], lock: threading.Lock) -> None:
        super().__init__(f"seeded-{seed}")
        self.seed, self.in_flight, self.peak, self.lock = seed, in_flight, peak, lock

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        with self.lock:
            self.in_flight[0] += 1
            self.peak[0] = max(self.peak[0], self.in_flight[0])
        time.sleep(LATENCY)
        with self.lock:
            self.in_flight[0] -= 1
        return [Completion(text=hashlib.sha256(f"{self.seed}|{r.prompt}".encode()).hexdigest()[:24]) for r in requests]


def _serve(stack: ExitStack, backend: Backend, name: str) -> str:
    server = ModelServer(backend, name, hashlib.sha256(name.encode()).hexdigest(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stack.callback(thread.join, 5)
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/v1#{name}"


@pytest.mark.parametrize("n_endpoints", [3])
def test_endpoints_are_probed_concurrently_with_identical_evidence(n_endpoints: int, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plan = [ProbePlan(load("continuation"), 12, "output")]
    in_flight, peak, lock = [0], [0], threading.Lock()
    with ExitStack() as stack:
        urls = [_serve(stack, SlowSeededBackend(i, in_flight, peak, lock), f"m{i}") for i in range(n_endpoints)]
        models = [resolve(u) for u in urls]
        runs = {}
        for workers in (1, 8):
            monkeypatch.setattr("provenance.collect.MAX_CONCURRENT_ENDPOINTS", workers)
            peak[0] = 0
            t0 = time.time()
            ev = collect(models, plan, EvidenceCache(tmp_path / f"cache-{workers}"), progress=False)
            runs[workers] = (time.time() - t0, peak[0], {fp: {k: c.text for k, c in e.answers["continuation"].items()}
                                                         for fp, e in ev.items()})
    (t_seq, peak_seq, ans_seq), (t_par, peak_par, ans_par) = runs[1], runs[8]
    assert ans_par == ans_seq and list(ans_par) == [m.fingerprint for m in models]  # same evidence, input order
    assert peak_seq == 1 and peak_par >= 2  # one endpoint at a time, then several at once
    print(f"{n_endpoints} endpoints: sequential {t_seq:.2f}s, concurrent {t_par:.2f}s")
