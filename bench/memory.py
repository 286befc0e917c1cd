"""Peak memory of a whole audit (suspect, reference, two controls) against the largest of its models loaded alone."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import machine, subprocess_env, table, write_results

TARGET = 1.3  # audit peak RSS / largest model's load-only peak RSS

# Loaded and used once: safetensors are memory-mapped, so weights count in RSS only once a forward pass touches them.
LOAD_ONLY = """
import sys
from provenance.models import resolve
from provenance.models.base import Request
b = resolve(sys.argv[1]).load()
b.generate([Request("The capital of France is", max_new_tokens=2, top_k=20)])
params = sum(p.numel() * p.element_size() for p in b.model.parameters())
buffers = sum(x.numel() * x.element_size() for x in b.model.buffers())
print({"parameter_bytes": params, "buffer_bytes": buffers, "parameters": sum(p.numel() for p in b.model.parameters())})
"""

# What every provenance process pays before any model: interpreter, torch, transformers.
IMPORTS_ONLY = "import torch, transformers, transformers.models.auto; import provenance.models.hf, provenance.audit"


def default_suspect() -> str:
    """A real-size suspect: SmolLM2 with 2% noise (the small zoo's, or made once into the cache)."""
    from provenance.fsutil import cache_dir

    for cand in (cache_dir() / "zoo" / "small-v1" / "derived" / "smollm2-135m-instruct-noised",
                 cache_dir() / "zoo" / "smollm2-noised-0.02"):
        if (cand / ".complete").is_file():
            return str(cand)
    from provenance.zoo.derive import noised_copy

    return str(noised_copy("smollm2-135m-instruct", cache_dir() / "zoo" / "smollm2-noised-0.02", 0.02, seed=1))


def fresh_cache() -> Path:
    """An empty evidence cache (so the audit really loads and probes every model), sharing the GGUF conversions."""
    from provenance.fsutil import cache_dir

    shared = cache_dir()
    root = Path(tempfile.mkdtemp(prefix="provenance-bench-mem-"))
    for sub in ("converted", "packaged"):
        if (shared / sub).is_dir():
            os.symlink(shared / sub, root / sub)
    if (shared / "file-hashes.json").is_file():  # hashes keyed by path+size+mtime: safe to reuse, saves re-hashing
        shutil.copy2(shared / "file-hashes.json", root / "file-hashes.json")
    return root


def measure(args: list[str], env: dict[str, str], sample_every: float = 0.25) -> dict[str, Any]:
    """Run a child process; its peak RSS from the kernel (wait4's ru_maxrss), plus a coarse RSS timeline."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timeline: list[tuple[float, int]] = []

    def sample() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                rss = next(int(ln.split()[1]) for ln in status.read_text().splitlines() if ln.startswith("VmRSS"))
                timeline.append((round(time.perf_counter() - t0, 2), rss // 1024))
            except (OSError, StopIteration, ValueError):
                pass
            time.sleep(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # wait4 (not communicate) so the kernel's peak-RSS record of exactly this child comes back.
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    sampler.join(timeout=1)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}... exited {proc.returncode}:\n{''.join(err_chunks)[-2000:]}")
    # About 80 points for the results file, each the largest sample of its window (so phases' peaks survive).
    step = max(1, len(timeline) // 80)
    coarse = [max(timeline[i : i + step], key=lambda p: p[1]) for i in range(0, len(timeline), step)]
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_seconds": round(wall, 1), "stdout": "".join(out_chunks),
            "timeline_mib": coarse}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suspect", default=None, help="default: a 2%%-noised copy of SmolLM2 (real size)")
    ap.add_argument("--reference", default="smollm2-135m-instruct")
    ap.add_argument("--control", action="append", default=None,
                    help="repeatable; default: qwen2.5-coder-0.5b-instruct and gemma-3-270m")
    # 80: the likelihood set's 16 sampled answers fill one whole batch, the largest a generate call gets; a larger
    # budget adds batches (time), not memory.
    ap.add_argument("--budget", type=int, default=80, help="probes per model")
    ap.add_argument("--likelihood-probes", default="instructions", help="'none' skips the likelihood family")
    ap.add_argument("--name", default="memory")
    args = ap.parse_args(argv)

    from provenance.models import resolve

    controls = args.control or ["qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]
    suspect = args.suspect or default_suspect()
    specs = [suspect, args.reference, *controls]
    info = machine()
    # The largest model by weight bytes on disk (all are float32 safetensors once converted).
    sizes = {}
    for s in specs:
        m = resolve(s)
        if m.local_path is None and m.gguf is not None:
            from provenance.models.hf import converted_gguf_dir

            m.local_path = converted_gguf_dir(m.gguf, m.fingerprint)
        sizes[s] = sum(p.stat().st_size for p in Path(m.local_path).glob("*.safetensors"))
    largest = max(specs, key=lambda s: sizes[s])
    cache = fresh_cache()
    env = subprocess_env(PROVENANCE_CACHE=str(cache))
    py = sys.executable
    try:
        print("imports only ...", file=sys.stderr)
        base = measure([py, "-c", IMPORTS_ONLY], env)
        print(f"load {largest} alone ...", file=sys.stderr)
        alone = measure([py, "-c", LOAD_ONLY, largest], env)
        alone_info = eval(alone["stdout"].strip().splitlines()[-1])  # noqa: S307 - our own child printed a dict literal
        out_dir = cache / "bundle"
        cmd = [py, "-m", "provenance", "audit", "-s", suspect, "-r", args.reference,
               *[a for c in controls for a in ("-c", c)], "--budget", str(args.budget), "--out", str(out_dir),
               "--no-progress", "--likelihood-probes", args.likelihood_probes]
        print("audit ...", file=sys.stderr)
        audit = measure(cmd, env)
        results = json.loads((out_dir / "results.json").read_text())
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    ratio = audit["peak_rss_mib"] / alone["peak_rss_mib"]
    param_mib = alone_info["parameter_bytes"] / 2**20
    above_base = (audit["peak_rss_mib"] - base["peak_rss_mib"]) / max(alone["peak_rss_mib"] - base["peak_rss_mib"], 1e-9)
    rows = [
        ["imports only (python, torch, transformers)", base["peak_rss_mib"], base["wall_seconds"]],
        [f"largest model alone, loaded + one forward ({largest})", alone["peak_rss_mib"], alone["wall_seconds"]],
        [f"audit: 1 suspect, 1 reference, {len(controls)} controls, budget {args.budget}", audit["peak_rss_mib"],
         audit["wall_seconds"]],
    ]
    print(table(["process", "peak RSS (MiB)", "wall (s)"], rows))
    print(table(["measure", "value"], [
        ["largest model: parameter bytes (MiB)", param_mib],
        ["audit peak / largest model alone (peak RSS)", ratio],
        ["same, above the imports-only baseline", above_base],
        [f"target <= {TARGET}", "met" if ratio <= TARGET else "NOT met"],
    ]))
    path = write_results(args.name, {
        "benchmark": "memory", "command": "python bench/memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "target": TARGET, "suspect": suspect, "reference": args.reference, "controls": controls,
        "budget": args.budget, "likelihood_probes": args.likelihood_probes, "largest_model": largest,
        "weights_on_disk_bytes": sizes, "largest_model_parameters": alone_info,
        "imports_only": {k: v for k, v in base.items() if k != "stdout"},
        "largest_alone": {k: v for k, v in alone.items() if k != "stdout"},
        "audit": {k: v for k, v in audit.items() if k != "stdout"},
        "verdicts": [(r["spec"], r["verdict"], r["p_value"]) for r in results["references"]],
        "ratio_peak_rss": ratio, "ratio_above_baseline": above_base, "meets_target": ratio <= TARGET})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
