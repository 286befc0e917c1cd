"""Crash-resume trials: SIGKILL `provenance audit` at random times, rerun it, and compare with an uninterrupted audit."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/crash_resume.py` without an install
    sys.path.insert(0, str(ROOT))


def fresh_cache(root: Path, shared: Path) -> Path:
    """An empty evidence cache; GGUF conversions and file hashes shared (content-addressed, so safe to share)."""
    root.mkdir(parents=True)
    for sub in ("converted", "packaged"):
        (shared / sub).mkdir(parents=True, exist_ok=True)
        os.symlink(shared / sub, root / sub)
    if (shared / "file-hashes.json").is_file():
        shutil.copy2(shared / "file-hashes.json", root / "file-hashes.json")  # skips re-hashing 600 MB per run
    return root


def evidence_lines(cache: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (cache / "evidence").rglob("*.jsonl")) if (cache / "evidence").is_dir() else 0


def audit_args(suspect: str, reference: str, control: str, budget: int, out: Path, batch: int, identity: bool) -> list[str]:
    return [sys.executable, "-m", "provenance", "audit", "-s", suspect, "-r", reference, "-c", control, "--budget",
            str(budget), "--out", str(out), "--no-progress", "--batch-size", str(batch), "--likelihood-probes", "none",
            "--replace",  # a run that beat the kill left its bundle; the rerun replaces it (the old one is kept)
            *([] if identity else ["--identity-probes", "none"])]


def env_for(cache: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PROVENANCE_CACHE": str(cache), "PROVENANCE_NO_PROGRESS": "1", "PYTHONPATH": path}


def conclusions(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"spec": r["spec"], "verdict": r["verdict"], "p_value": r["p_value"],
             "tests": {t["name"]: {"statistic": t["statistic"], "p_value": t["p_value"], "skipped": t["skipped"]}
                       for t in r["tests"]}} for r in results["references"]]


def differences(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Verdict changes and the largest numeric differences between two audits' conclusions."""
    verdicts, max_p, max_stat, skips = 0, 0.0, 0.0, 0
    for x, y in zip(a, b):
        verdicts += x["verdict"] != y["verdict"]
        if x["p_value"] is not None and y["p_value"] is not None:
            max_p = max(max_p, abs(x["p_value"] - y["p_value"]))
        for name, tx in x["tests"].items():
            ty = y["tests"].get(name, {})
            skips += bool(tx["skipped"]) != bool(ty.get("skipped"))
            for key in ("p_value", "statistic"):
                u, v = tx.get(key), ty.get(key)
                if isinstance(u, float) and isinstance(v, float) and u == u and v == v:  # NaN: a skipped test
                    d = abs(u - v)
                    if key == "p_value":
                        max_p = max(max_p, d)
                    else:
                        max_stat = max(max_stat, d)
    return {"verdicts_changed": verdicts, "skips_changed": skips, "max_abs_p_diff": max_p, "max_abs_statistic_diff": max_stat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=4, help="small batches: more points at which a kill can land")
    ap.add_argument("--seed", type=int, default=0, help="seed for the kill times")
    ap.add_argument("--reference", default="smollm2-135m-instruct")
    ap.add_argument("--control", default="gemma-3-270m")
    ap.add_argument("--identity", action="store_true", help="also collect identity probes (slower)")
    ap.add_argument("--kill-at", choices=("time", "progress"), default="time",
                    help="time: uniform over 5-95%% of the uninterrupted run's duration (lands in start-up, collection "
                         "or bundle writing); progress: once a uniform number of evidence lines are cached (always "
                         "mid-collection, whatever the machine's load)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "crash-resume.json")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on `kill`, too

    from provenance.fsutil import cache_dir
    from provenance.report.verify import verify
    from provenance.zoo.derive import noised_copy

    shared = cache_dir()
    t_start = time.time()
    suspect = noised_copy(args.reference, shared / "zoo" / "crash-resume-noised-0.02-s1", 0.02, seed=1)
    work = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    rng = random.Random(args.seed)
    try:
        clean_cache = fresh_cache(work / "cache-clean", shared)
        t0 = time.time()
        done = subprocess.run(audit_args(str(suspect), args.reference, args.control, args.budget, work / "clean",
                                         args.batch_size, args.identity), env=env_for(clean_cache), capture_output=True,
                              text=True)
        clean_seconds = time.time() - t0
        if done.returncode != 0:
            raise SystemExit(f"uninterrupted audit failed: {done.stderr.strip()}")
        clean = conclusions(json.loads((work / "clean" / "results.json").read_text()))
        total_lines = evidence_lines(clean_cache)
        print(f"uninterrupted audit: {clean_seconds:.1f}s, {total_lines} evidence lines, "
              f"verdict {[c['verdict'] for c in clean]}", flush=True)
        trials = []
        for i in range(args.trials):
            cache = fresh_cache(work / f"cache-{i}", shared)
            out = work / f"trial-{i}"
            cmd = audit_args(str(suspect), args.reference, args.control, args.budget, out, args.batch_size, args.identity)
            # Only the chosen mode draws from the generator, so a seed gives the same kill points in either mode.
            planned = rng.uniform(0.05, 0.95) * clean_seconds if args.kill_at == "time" else 0.0
            target = rng.randint(1, max(1, total_lines - 1)) if args.kill_at == "progress" else 0
            proc = subprocess.Popen(cmd, env=env_for(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            finished_first = False  # the run beat the kill: still a valid trial of the rerun, noted as such
            t_kill = time.time()
            try:
                if args.kill_at == "time":
                    try:
                        proc.wait(timeout=planned)
                        finished_first = True
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    while proc.poll() is None and evidence_lines(cache) < target:
                        time.sleep(0.05)
                    finished_first = proc.poll() is not None
            finally:  # also when this script itself is interrupted: never leave an audit running
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
            kill_at = time.time() - t_kill
            lines_at_kill = evidence_lines(cache)
            # A kill may land after the bundle was swapped in (then it must verify), never leave half of one.
            bundle_after_kill = ("none" if not (out / "results.json").exists() or finished_first
                                 else "complete" if verify(out).ok else "INCOMPLETE")
            t1 = time.time()
            rerun = subprocess.run(cmd, env=env_for(cache), capture_output=True, text=True)
            rerun_seconds = time.time() - t1
            if rerun.returncode != 0:
                trials.append({"trial": i, "kill_at_s": round(kill_at, 2), "rerun_failed": rerun.stderr.strip()[-300:]})
                print(f"trial {i}: rerun FAILED: {rerun.stderr.strip()[-300:]}", flush=True)
                continue
            resumed = conclusions(json.loads((out / "results.json").read_text()))
            rep = verify(out)
            row = {"trial": i, "kill_at_s": round(kill_at, 2), "finished_before_kill": finished_first,
                   "evidence_lines_at_kill": lines_at_kill, "evidence_lines_total": total_lines,
                   "bundle_after_kill": bundle_after_kill, "rerun_seconds": round(rerun_seconds, 1),
                   "bundle_verifies": rep.ok, "stale_partial_dirs": len(list(work.glob(f".{out.name}.partial-*"))),
                   **differences(clean, resumed)}
            trials.append(row)
            print(f"trial {i}: killed at {kill_at:.1f}s with {lines_at_kill}/{total_lines} lines; rerun {rerun_seconds:.1f}s; "
                  f"verdicts changed {row['verdicts_changed']}, max |dp| {row['max_abs_p_diff']:.2e}, "
                  f"verifies {rep.ok}", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = [t for t in trials if "rerun_failed" not in t]
    summary = {
        "when_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/crash_resume.py", *sys.argv[1:]]),
        "setup": {"suspect": f"{args.reference} + 2% noise (seed 1)", "reference": args.reference, "control": args.control,
                  "budget": args.budget, "batch_size": args.batch_size, "likelihood": "none",
                  "identity": args.identity, "kill_at": args.kill_at, "cpus": os.cpu_count(),
                  "load_average_at_end": os.getloadavg()},
        "uninterrupted": {"seconds": round(clean_seconds, 1), "conclusions": clean},
        "trials": trials,
        "totals": {
            "trials": len(trials),
            "killed_mid_run": sum(1 for t in ok if not t["finished_before_kill"]),
            "reruns_failed": len(trials) - len(ok),
            "verdicts_changed": sum(t["verdicts_changed"] for t in ok),
            "skips_changed": sum(t["skips_changed"] for t in ok),
            "killed_before_first_answer": sum(1 for t in ok if not t["finished_before_kill"] and not t["evidence_lines_at_kill"]),
            "bundles_incomplete_after_kill": sum(t["bundle_after_kill"] == "INCOMPLETE" for t in ok),
            "stale_partial_dirs": sum(t["stale_partial_dirs"] for t in ok),
            "bundles_failing_verify": sum(not t["bundle_verifies"] for t in ok),
            "max_abs_p_diff": max((t["max_abs_p_diff"] for t in ok), default=None),
            "max_abs_statistic_diff": max((t["max_abs_statistic_diff"] for t in ok), default=None),
            "wall_seconds": round(time.time() - t_start, 1),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["totals"], indent=2))


if __name__ == "__main__":
    main()
