"""Per-model probing jobs on worker processes (a local pool or a Ray cluster), all writing one shared evidence cache."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from provenance.errors import InputError, ProvenanceError
from provenance.models import ResolvedModel

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class FleetConfig:
    """How to spread per-model jobs: `workers` processes at once (0 or 1: in the caller's process, no fleet)."""

    workers: int = 0
    executor: str = "local"  # "local": a process pool on this machine; "ray": tasks on a Ray cluster
    ray_address: str | None = None  # None: a local Ray instance (or the one RAY_ADDRESS names)
    threads_per_worker: int | None = None  # None: this machine's usable cores / workers

    @property
    def enabled(self) -> bool:
        return self.workers > 1


@dataclass
class FleetReport:
    """What the fleet did, for results.json: which worker ran what and how long each phase took."""

    executor: str
    workers: int
    threads_per_worker: int
    phases: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"executor": self.executor, "workers": self.workers, "threads_per_worker": self.threads_per_worker,
                "phase_seconds": {k: round(v, 2) for k, v in self.phases.items()}, "jobs": self.jobs}


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- the jobs (module level: they are pickled by name into the workers) ---------------------------------------------

def _worker_init(threads: int, gpu_slots: Any = None, n_gpus: int = 0) -> None:
    """Runs once per worker process before any job: thread count and, on a multi-GPU machine, one GPU per worker."""
    os.environ["PROVENANCE_NO_PROGRESS"] = "1"  # bars from several processes would interleave; the driver shows one
    if gpu_slots is not None and n_gpus:
        with gpu_slots.get_lock():
            slot = gpu_slots.value
            gpu_slots.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % n_gpus)  # before torch initialises CUDA in this process
    from provenance.models.hf import pin_threads

    pin_threads(threads)


def collect_job(model: ResolvedModel, plans: Sequence[Any], cache_root: str, batch: int,
                sampling_seed: int = 0) -> dict[str, Any]:
    """Phase 1 on a worker: every probe plan of one model, into the shared cache (resumable like any collection)."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model

    t0 = time.time()
    ev = collect_model(model, plans, EvidenceCache(Path(cache_root)), batch=batch, progress=False,
                       sampling_seed=sampling_seed)
    return {"model": model.label, "phase": "collect", "pid": os.getpid(), "loaded": ev.loaded,
            "seconds": round(time.time() - t0, 2)}


def score_job(model: ResolvedModel, plans: Sequence[Any], items: Sequence[Any], cache_root: str,
              batch: int, sampling_seed: int = 0) -> dict[str, Any]:
    """Phase 2 on a worker: one model scores every sampled answer (its evidence is read back from the cache)."""
    from provenance.cache import EvidenceCache
    from provenance.collect import collect_model, collect_scores

    t0 = time.time()
    cache = EvidenceCache(Path(cache_root))
    ev = collect_model(model, plans, cache, batch=batch, progress=False,  # cached by phase 1: nothing is loaded
                       sampling_seed=sampling_seed)
    collect_scores([model], items, cache, {model.fingerprint: ev}, progress=False, batch=batch)
    return {"model": model.label, "phase": "score", "pid": os.getpid(), "seconds": round(time.time() - t0, 2)}


# --- executors: both run a list of jobs and return their reports; a failed job stops the run ------------------------

Job = tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]


class _LocalPool:
    """A process pool on this machine, kept for both phases (each worker imports torch once)."""

    def __init__(self, cfg: FleetConfig, threads: int, progress: bool) -> None:
        self.cfg, self.threads, self.progress = cfg, threads, progress

    def __enter__(self) -> _LocalPool:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        import torch

        # spawn, not fork: the driver may hold torch threads and open files that a forked child must not inherit.
        ctx = mp.get_context("spawn")
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        self.pool = ProcessPoolExecutor(max_workers=self.cfg.workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(self.threads, ctx.Value("i", 0), n_gpus))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: list[Job], desc: str) -> list[dict[str, Any]]:
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        futures = [self.pool.submit(fn, *args) for fn, args in jobs]
        out: list[dict[str, Any]] = []
        bar = _bar(len(jobs), desc, self.progress)
        try:
            for fut in as_completed(futures):
                out.append(fut.result())  # a failed job re-raises here (an InputError stays one line)
                bar.update(1)
        except BrokenProcessPool:
            raise ProvenanceError(
                "a worker process died (out of memory, or killed); rerun with fewer --workers: answers already "
                "collected are kept in the cache (library use: call from under `if __name__ == '__main__':`)") from None
        finally:
            for f in futures:
                f.cancel()
            bar.close()
        return out


class _RayCluster:
    """Tasks on a Ray cluster (or a local instance started here, with `workers` slots, and stopped at the end)."""

    def __init__(self, cfg: FleetConfig, threads: int, progress: bool) -> None:
        self.cfg, self.threads, self.progress = cfg, threads, progress
        self.started = False

    def __enter__(self) -> _RayCluster:
        try:
            import ray
        except ImportError:
            raise InputError("--executor ray needs Ray: pip install 'ray>=2.9'") from None
        if not ray.is_initialized():
            address = self.cfg.ray_address or os.environ.get("RAY_ADDRESS")
            # A cluster brings its own resources; a local instance gets `workers` slots of `threads` cores.
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": self.cfg.workers * self.threads}
            if address:
                _check_reachable(address)  # Ray itself retries an unreachable address for minutes, noisily
            try:
                ray.init(log_to_driver=False, include_dashboard=False, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f" at {address}" if address else ""
                raise InputError(f"cannot start or join the Ray cluster{where}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            self.started = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()

    def run(self, jobs: list[Job], desc: str) -> list[dict[str, Any]]:
        import ray

        threads = self.threads

        def init_then(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
            _worker_init(threads)
            return fn(*args)

        # Ray pins a GPU per task itself (CUDA_VISIBLE_DEVICES) when the task asks for one.
        n_gpus = int(ray.cluster_resources().get("GPU", 0))
        remote = ray.remote(num_cpus=threads, num_gpus=1 if n_gpus else 0, max_retries=0)(init_then)
        refs = [remote.remote(fn, *args) for fn, args in jobs]
        out: list[dict[str, Any]] = []
        bar = _bar(len(jobs), desc, self.progress)
        try:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    out.append(ray.get(done[0]))
                except ray.exceptions.RayTaskError as e:  # unwrap, so a user error stays a one-line error
                    cause = e.as_instanceof_cause()
                    raise (cause.cause if getattr(cause, "cause", None) else cause) from None
                bar.update(1)
        except BaseException:
            for r in refs:
                ray.cancel(r, force=True)
            raise
        finally:
            bar.close()
        return out


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A cluster address ("host:port" or "ray://host:port") must accept a TCP connection; "auto" is Ray's to find."""
    import socket

    hostport = address.split("://", 1)[-1]
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise InputError(f"cannot reach the Ray cluster at {address} ({getattr(e, 'strerror', None) or e})") from None


def _bar(total: int, desc: str, progress: bool) -> Any:
    from provenance.collect import _bar as collect_bar

    return collect_bar(total, desc, progress)


def prefetch(models: Sequence[ResolvedModel], plans: Sequence[Any], extra: dict[str, Sequence[Any]],
             cache_root: Path, cfg: FleetConfig, *, batch: int = 16, progress: bool = True,
             score_items_for: Callable[[], Sequence[Any]] | None = None, sampling_seed: int = 0) -> FleetReport:
    """Fill the evidence cache with one job per model, then (if asked) one scoring job per model.

    The caller then runs its usual collection, which finds every answer in the cache and loads nothing, so the
    evidence and every statistic are exactly those of a single-process run. `score_items_for` is called between the
    phases (the texts to score are the sampled answers phase 1 produced).
    """
    if cfg.executor not in EXECUTORS:
        raise InputError(f"unknown executor '{cfg.executor}' (choose from {', '.join(EXECUTORS)})")
    if cfg.workers < 2:
        raise InputError("a fleet needs at least 2 workers")
    threads = cfg.threads_per_worker or max(1, _usable_cores() // cfg.workers)
    unique = list({m.fingerprint: m for m in models}.values())
    # endpoints are already probed concurrently by `collect` (threads, no process or memory per endpoint)
    unique = [m for m in unique if not m.remote]
    report = FleetReport(cfg.executor, cfg.workers, threads)
    root = str(cache_root)

    def plans_of(m: ResolvedModel) -> list[Any]:
        return [*plans, *extra.get(m.fingerprint, ())]

    executor = (_LocalPool if cfg.executor == "local" else _RayCluster)(cfg, threads, progress)
    with executor:
        t0 = time.time()
        report.jobs += executor.run([(collect_job, (m, plans_of(m), root, batch, sampling_seed)) for m in unique],
                                    f"fleet · collect ({cfg.workers} workers)")
        report.phases["collect"] = time.time() - t0
        if score_items_for is not None:
            items = list(score_items_for())
            t0 = time.time()
            report.jobs += executor.run([(score_job, (m, plans_of(m), items, root, batch, sampling_seed)) for m in unique],
                                        f"fleet · score ({cfg.workers} workers)")
            report.phases["score"] = time.time() - t0
    summary = (f"fleet: {len(unique)} models on {cfg.workers} {cfg.executor} workers x {threads} threads: "
               + ", ".join(f"{k} {v:.1f}s" for k, v in report.phases.items()))
    log.info(summary)
    if progress:
        print(summary, file=sys.stderr)
    return report
