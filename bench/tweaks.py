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
                            allocator's RSS once trimmed, and the top sites
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import tracemalloc
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
    stats = snapshot.statistics("traceback")
    traced = sum(s.size for s in stats)
    before = _rss_kib()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after = _rss_kib()
    n = len(list(directory.glob("heap-*.txt")))
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
