"""Experiments, not the product: loaded into the operator process only when a
benchmark is given --tweak (`python -m testenv -m tweaks`), to measure a
proposed design change before anyone makes it in operator/. Each tweak is a
BENCH_* environment variable:

  BENCH_EXECUTOR_THREADS=N  the event loop's default executor (asyncio.to_thread,
                            where every reconcile runs) gets N threads instead of
                            min(32, cpus + 4) = 6 on two cores
  BENCH_POOL_MAXSIZE=N      the operator's Kubernetes client keeps N connections
                            (urllib3's default is 4: more threads than that
                            discard and re-open TLS connections)
  BENCH_TRACEMALLOC=DIR     trace Python allocations from start-up (BENCH_TRACEMALLOC_DEPTH
                            frames, 4 by default: each one costs); each SIGUSR1
                            writes DIR/heap-<n>.txt: the traced total, the
                            allocator's RSS once trimmed, and the top sites;
                            and DIR/heap-<n>.snapshot (tracemalloc.Snapshot.load)
  BENCH_SIZES=DIR           each SIGUSR2 writes DIR/sizes-<n>.txt: the bytes held by
                            kopf's indexes, its per-object memories and daemon bodies,
                            and by ours (reconcile.Memory, Kube's cache of applied objects)
  BENCH_MALLOC_TRIM=SECONDS every SECONDS, glibc's malloc_trim(0): hands freed heap
                            pages back to the OS (with PYTHONMALLOC=malloc, every
                            object's), to see how much of the RSS it returns
  BENCH_GC_EVERY=SECONDS    every SECONDS, a full gc.collect(): cyclic garbage freed now,
                            not when the oldest generation's threshold is reached
  BENCH_GC_FREEZE=1         gc.freeze() once started: the objects of the imports move to
                            the permanent generation, so a full collection neither walks
                            them nor waits for a quarter of them in new survivors
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import sys
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kopf

log = logging.getLogger(__name__)


@kopf.on.startup()
async def apply_tweaks(**_: Any) -> None:
    if threads := int(os.environ.get("BENCH_EXECUTOR_THREADS", "0") or 0):
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="reconcile"))
        log.warning("bench tweak: default executor with %d threads", threads)
    if pool := int(os.environ.get("BENCH_POOL_MAXSIZE", "0") or 0):
        from kubernetes import client, config
        from testenv import handlers
        from testenv.kube import Kube
        from testenv.settings import get_settings

        config.load_kube_config()
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = pool
        handlers._state["kube"] = Kube(client.ApiClient(configuration), get_settings().field_manager)
        log.warning("bench tweak: Kubernetes client pool of %d connections", pool)


def _heap_report(directory: Path) -> None:
    """Where the Python heap is, and what RSS is once glibc gives back its free pages."""
    snapshot = tracemalloc.take_snapshot()
    n = len(list(directory.glob("heap-*.txt")))
    snapshot.dump(str(directory / f"heap-{n}.snapshot"))  # for Snapshot.compare_to between two moments
    stats = snapshot.statistics("traceback")
    traced = sum(s.size for s in stats)
    before = _rss_kib()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after = _rss_kib()
    lines = [f"traced {traced / 2**20:.1f} MiB in {sum(s.count for s in stats)} blocks; "
             f"RSS {before / 1024:.1f} MiB, {after / 1024:.1f} MiB after malloc_trim"]
    for stat in stats[:25]:
        lines.append(f"{stat.size / 1024:9.1f} KiB {stat.count:7d} blocks")
        lines.extend(f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback[-6:])
    (directory / f"heap-{n}.txt").write_text("\n".join(lines) + "\n")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@kopf.on.startup()
async def trace_allocations(**_: Any) -> None:
    if directory := os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_DEPTH", "4")))
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _heap_report, Path(directory))
        log.warning("bench tweak: tracing allocations; SIGUSR1 writes %s/heap-<n>.txt", directory)


_LEAVES = (str, bytes, int, float, bool, type(None))


def _deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes held by `obj` and what it alone reaches through containers and
    the plain objects of kopf and testenv (not modules, classes, tasks)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, _LEAVES):
        return size
    if isinstance(obj, dict):
        return size + sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + sum(_deep_size(v, seen) for v in obj)
    module = type(obj).__module__ or ""
    if not module.startswith(("kopf", "testenv")) or isinstance(obj, type):
        return size
    if hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen)
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            size += _deep_size(getattr(obj, slot), seen)
    return size


def _sizes_report(directory: Path) -> None:
    """What the operator holds per structure: kopf's indexes, its per-object
    memories and daemon bodies, and ours (reconcile.Memory, Kube's cache)."""
    from kopf._core.engines.indexing import Index
    from kopf._core.reactor.inventory import ResourceMemory
    from testenv.kube import Kube
    from testenv.reconcile import Memory

    found: dict[str, list[Any]] = {}
    for obj in gc.get_objects():
        if isinstance(obj, Index):
            values = [v for _, store in obj.items() for v in store]
            found.setdefault(f"kopf index of {type(values[0]).__name__ if values else '?'}", []).append(obj)
        elif isinstance(obj, ResourceMemory):
            found.setdefault("kopf ResourceMemory (per watched object)", []).append(obj)
            body = obj.daemons_memory.live_fresh_body
            if body is not None:
                found.setdefault("kopf daemon live bodies (TestEnvironments)", []).append(body)
        elif isinstance(obj, Memory):
            found.setdefault("testenv reconcile.Memory", []).append(obj)
        elif isinstance(obj, Kube):
            found.setdefault("testenv Kube._applied", []).append(obj._applied)
    n = len(list(directory.glob("sizes-*.txt")))
    lines = []
    for what, objs in sorted(found.items()):
        seen: set[int] = set()
        total = sum(_deep_size(o, seen) for o in objs)
        lines.append(f"{total / 1024:10.1f} KiB  {len(objs):6d} x  {what}")
    (directory / f"sizes-{n}.txt").write_text("\n".join(lines) + "\n")


@kopf.on.startup()
async def report_sizes(**_: Any) -> None:
    if directory := os.environ.get("BENCH_SIZES"):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _sizes_report, Path(directory))
        log.warning("bench tweak: SIGUSR2 writes %s/sizes-<n>.txt", directory)


async def _every(seconds: float, action: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(seconds)
        action()


@kopf.on.startup()
async def malloc_trim(**_: Any) -> None:
    if seconds := float(os.environ.get("BENCH_MALLOC_TRIM", "0") or 0):
        trim = ctypes.CDLL("libc.so.6").malloc_trim
        _TASKS.append(asyncio.get_running_loop().create_task(_every(seconds, lambda: trim(0))))
        log.warning("bench tweak: malloc_trim(0) every %gs", seconds)


@kopf.on.startup()
async def gc_every(**_: Any) -> None:
    if seconds := float(os.environ.get("BENCH_GC_EVERY", "0") or 0):
        _TASKS.append(asyncio.get_running_loop().create_task(_every(seconds, gc.collect)))
        log.warning("bench tweak: gc.collect() every %gs", seconds)


@kopf.on.startup()
async def gc_freeze(**_: Any) -> None:
    if os.environ.get("BENCH_GC_FREEZE"):
        gc.collect()
        gc.freeze()
        log.warning("bench tweak: gc.freeze(), %d objects frozen", gc.get_freeze_count())


_TASKS: list[asyncio.Task[None]] = []
