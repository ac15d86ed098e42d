"""Loaded into the operator by the benchmarks that weigh its Python heap from
inside (`python -m testenv -m heapprobe`); it changes nothing else.

RSS after a burst stays at the allocators' high-water mark: pymalloc keeps an
arena while one object in it lives, glibc keeps freed chunks in its heap
(RESULTS.md, "Where the 30 MiB is"). So RSS cannot tell a leak from
fragmentation. The count of live allocations after a full collection can:
each SIGRTMIN+1 writes $BENCH_HEAP_DIR/heap-<n>.json with it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import kopf

SIGNAL = signal.SIGRTMIN + 1


def live_heap() -> dict[str, Any]:
    """Allocations still referenced once cyclic garbage is gone, and the
    objects the collector tracks by type (what grew, when something did)."""
    gc.collect()
    objects = gc.get_objects()
    by_type = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    return {"blocks": sys.getallocatedblocks(), "objects": len(objects), "types": dict(by_type.most_common(300))}


def _write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    n = len(list(directory.glob("heap-*.json")))
    tmp = directory / f".heap-{n}.json"
    tmp.write_text(json.dumps(live_heap()))
    tmp.rename(directory / f"heap-{n}.json")


@kopf.on.startup()
async def heap_probe(**_: Any) -> None:
    if directory := os.environ.get("BENCH_HEAP_DIR"):
        asyncio.get_running_loop().add_signal_handler(SIGNAL, _write, Path(directory))
