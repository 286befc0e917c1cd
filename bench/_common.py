"""Shared helpers for the bench scripts: import path, machine description, tables, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# `python bench/x.py` puts bench/ on sys.path, not the repository: make `import provenance` work without an install.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child Python processes: the repository importable, progress bars off."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PROVENANCE_NO_PROGRESS": "1", **extra}


def machine() -> dict[str, Any]:
    """Enough about the machine to judge a figure: cores, CPU model, library versions, load when it started."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        info["memory_gib"] = round(mem_kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    for name in ("torch", "transformers"):
        try:
            from importlib.metadata import version

            info[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is simply not reported
            info[name] = None
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (prints readably in a terminal too)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def interleaved(pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]], reps: int,
                log: Callable[[str], None] = print) -> dict[str, dict[str, list[float]]]:
    """Time (bare, engine) callables alternately, ABBA order per repetition.

    The machine is shared, so absolute wall times drift; alternating the two sides within each repetition exposes
    both to the same background load and the per-repetition ratio cancels most of it.
    """
    out: dict[str, dict[str, list[float]]] = {k: {"bare": [], "engine": []} for k in pairs}
    for rep in range(reps):
        for name, (bare, engine) in pairs.items():
            order = [("bare", bare), ("engine", engine)] if rep % 2 == 0 else [("engine", engine), ("bare", bare)]
            for side, fn in order:
                t0 = time.perf_counter()
                fn()
                out[name][side].append(time.perf_counter() - t0)
            log(f"  rep {rep + 1}/{reps} {name}: bare {out[name]['bare'][-1]:.2f}s, engine {out[name]['engine'][-1]:.2f}s")
    return out


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def fresh_cache(prefix: str) -> Path:
    """An empty provenance cache, so every model is really loaded and probed; GGUF conversions and assembled
    packaged files (content-addressed) are linked from the user's cache so they are not redone."""
    import tempfile

    from provenance.fsutil import cache_dir

    root = Path(tempfile.mkdtemp(prefix=prefix))
    for sub in ("converted", "packaged"):
        if (cache_dir() / sub).is_dir():
            os.symlink(cache_dir() / sub, root / sub)
    return root
