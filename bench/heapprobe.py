"""Loaded into the operator by the benchmarks that weigh its Python heap from
inside (`python -m testenv -m heapprobe`); it changes nothing else.

RSS after a burst stays at the allocators' high-water mark: pymalloc keeps an
arena while one object in it lives, glibc keeps freed chunks in its heap
(RESULTS.md, "Where the 30 MiB is"). So RSS cannot tell a leak from
fragmentation. The live allocations after a full collection can: each
SIGRTMIN+1 writes $BENCH_HEAP_DIR/heap-<n>.json with them, as pymalloc's
count of blocks or, where the objects come from jemalloc (the image's
allocator, testenv.idle_memory.IMAGE_ALLOCATOR, under which pymalloc counts
none), jemalloc's bytes allocated and not in a thread's cache.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import kopf
from kopf._core.reactor import inventory

SIGNAL = signal.SIGRTMIN + 1

# kopf keeps a memory per object it has seen (any watched kind) until that
# object's DELETED event. Which objects those are is what tells a leak from
# objects still there, so each memory is tagged with its object when made.
_recall = inventory.ResourceMemories.recall


async def _recall_tagged(self: inventory.ResourceMemories, raw_body: Any, **kwargs: Any) -> inventory.ResourceMemory:
    memory = await _recall(self, raw_body, **kwargs)
    if "_probe_ref" not in memory.__dict__:
        meta = raw_body.get("metadata") or {}
        memory.__dict__["_probe_ref"] = (raw_body.get("kind") or "?", meta.get("namespace") or "", meta.get("name") or "")
    return memory


inventory.ResourceMemories.recall = _recall_tagged  # type: ignore[method-assign]


def kopf_memories(objects: list[Any]) -> dict[str, Any]:
    """kopf's per-object memories, each as "<kind> <namespace>/<name>"
    (soak_invariants.new_kopf_memories groups them by kind and place)."""
    refs = [m.__dict__.get("_probe_ref", ("?", "", "")) for o in objects
            if isinstance(o, inventory.ResourceMemories) for m in o._items.values()]
    return {"count": len(refs), "objects": sorted(f"{kind} {ns}/{name}" for kind, ns, name in refs)}


def _jemalloc_allocated() -> int | None:
    """jemalloc's bytes allocated and not freed, or None without jemalloc.
    Blocks freed into a thread's cache still count as allocated there, and
    an idle executor thread keeps its cache: those bytes are taken off."""
    try:
        mallctl = ctypes.CDLL(None).mallctl
    except AttributeError:
        return None

    def read(name: bytes) -> int | None:
        value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        failed = mallctl(name, ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0))
        return None if failed else int(value.value)

    epoch = ctypes.c_uint64(1)  # its statistics are a snapshot, refreshed by writing the epoch
    mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(ctypes.sizeof(epoch)))
    allocated = read(b"stats.allocated")
    cached = read(b"stats.arenas.4096.tcache_bytes")  # 4096: MALLCTL_ARENAS_ALL, every arena merged
    return None if allocated is None else allocated - (cached or 0)


def live_allocations() -> tuple[int, str]:
    """(count, unit): pymalloc's live blocks, or jemalloc's bytes when pymalloc has none."""
    blocks = sys.getallocatedblocks()
    if blocks:
        return blocks, "blocks"
    allocated = _jemalloc_allocated()
    return (allocated, "bytes") if allocated is not None else (0, "blocks")


def live_heap() -> dict[str, Any]:
    """Allocations still referenced once cyclic garbage is gone, the objects
    the collector tracks by type (what grew, when something did), and kopf's
    per-object memories (whose objects)."""
    gc.collect()
    objects = gc.get_objects()
    by_type = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    live, unit = live_allocations()
    return {"live": live, "unit": unit, "objects": len(objects), "types": dict(by_type.most_common(300)),
            "kopf_memories": kopf_memories(objects)}


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
