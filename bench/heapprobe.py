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
import tracemalloc
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


def _mallctl() -> Any:
    """jemalloc's mallctl, or None where the objects do not come from jemalloc."""
    try:
        return ctypes.CDLL(None).mallctl
    except AttributeError:
        return None


def _read(mallctl: Any, name: str, kind: type = ctypes.c_size_t) -> int | None:
    value = kind(0)
    size = ctypes.c_size_t(ctypes.sizeof(value))
    failed = mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0))
    return None if failed else int(value.value)


# allocated <= active (whole pages of slabs with a region in use: the gap is
# fragmentation) <= resident (+ dirty pages not yet decayed, + metadata) <= mapped.
JEMALLOC_STATS = ("allocated", "active", "metadata", "resident", "mapped", "retained",
                  "arenas.4096.tcache_bytes")  # 4096: MALLCTL_ARENAS_ALL, every arena merged


def _jemalloc_stats(mallctl: Any) -> dict[str, int | None]:
    """jemalloc's statistics in bytes (JEMALLOC_STATS), refreshed first."""
    epoch = ctypes.c_uint64(1)  # its statistics are a snapshot, refreshed by writing the epoch
    mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(ctypes.sizeof(epoch)))
    return {name: _read(mallctl, f"stats.{name}") for name in JEMALLOC_STATS}


def jemalloc_bins(mallctl: Any) -> list[dict[str, int]]:
    """Per small size class: the region size, the bytes its slabs hold and the
    bytes in use in them (statistics as last refreshed). A slab is freed only
    once its last region is, so slab_bytes - used_bytes is what the survivors
    of a burst pin."""
    def read(name: str, kind: type = ctypes.c_size_t) -> int:
        value = _read(mallctl, name, kind)
        if value is None:
            raise OSError(f"mallctl {name}")
        return value

    bins = []
    for j in range(read("arenas.nbins", ctypes.c_uint)):
        size, slab = read(f"arenas.bin.{j}.size"), read(f"arenas.bin.{j}.slab_size")
        slabs, regions = read(f"stats.arenas.4096.bins.{j}.curslabs"), read(f"stats.arenas.4096.bins.{j}.curregs")
        bins.append({"size": size, "slab_size": slab, "slab_bytes": slabs * slab, "used_bytes": regions * size})
    return bins


def live_allocations(stats: dict[str, int | None] | None) -> tuple[int, str]:
    """(count, unit): pymalloc's live blocks, or, when pymalloc has none,
    jemalloc's bytes allocated less those freed into a thread's cache (an
    idle executor thread keeps its cache)."""
    blocks = sys.getallocatedblocks()
    if blocks:
        return blocks, "blocks"
    if stats is None or stats["allocated"] is None:
        return 0, "blocks"
    return stats["allocated"] - (stats["arenas.4096.tcache_bytes"] or 0), "bytes"


def connections(objects: list[Any]) -> dict[str, Any]:
    """The operator's TLS connections from asyncio (kopf's aiohttp session; the
    Kubernetes client's urllib3 is not asyncio), each with a 256 KiB read
    buffer: how many, how many of them closed but still referenced, and
    kopf's record of responses it has not seen closed."""
    from asyncio import sslproto

    ssl = [o for o in objects if isinstance(o, sslproto.SSLProtocol)]
    closed = sum(1 for o in ssl if o._transport is None or o._transport.is_closing())
    responses = [r for o in objects if type(o).__name__ == "APIContext" for r in getattr(o, "responses", [])]
    sockets = sum(1 for fd in os.listdir("/proc/self/fd") if _link(f"/proc/self/fd/{fd}").startswith("socket:"))
    # Where each of aiohttp's connections is: idle in a connector's pool,
    # acquired by a request, or in neither (nothing will reuse or close it).
    connectors = [o for o in objects if type(o).__name__ in ("TCPConnector", "BaseConnector")]
    pooled = {id(proto) for c in connectors for conns in c._conns.values() for proto, _ in conns}
    acquired = {id(proto) for c in connectors for proto in c._acquired}
    handlers = [o for o in objects if type(o).__name__ == "ResponseHandler"]
    where = Counter("pooled" if id(h) in pooled else "acquired" if id(h) in acquired else
                    "neither, closed" if not h.is_connected() else "neither, open" for h in handlers)
    states = Counter(str(getattr(o, "_state", "?")) for o in ssl)
    return {"tls": len(ssl), "tls_closing": closed, "kopf_responses": len(responses),
            "kopf_responses_open": sum(1 for r in responses if not r.closed), "sockets": sockets,
            "connectors": len(connectors), "connectors_closed": sum(1 for c in connectors if c.closed),
            **{f"aiohttp {k}": v for k, v in sorted(where.items())},
            **{f"tls {k}": v for k, v in sorted(states.items())}}


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # the listing's own descriptor, closed by now
        return ""


def live_heap() -> dict[str, Any]:
    """Allocations still referenced once cyclic garbage is gone, the objects
    the collector tracks by type (what grew, when something did), and kopf's
    per-object memories (whose objects)."""
    gc.collect()
    objects = gc.get_objects()
    by_type = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    mallctl = _mallctl()
    stats = _jemalloc_stats(mallctl) if mallctl else None
    live, unit = live_allocations(stats)
    return {"live": live, "unit": unit, "objects": len(objects), "types": dict(by_type.most_common(300)),
            "kopf_memories": kopf_memories(objects), "connections": connections(objects), "jemalloc": stats or {},
            "jemalloc_bins": jemalloc_bins(mallctl) if mallctl else []}


def _write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    n = len(list(directory.glob("heap-*.json")))
    tmp = directory / f".heap-{n}.json"
    tmp.write_text(json.dumps(live_heap()))
    if tracemalloc.is_tracing():  # tweaks.py's BENCH_TRACEMALLOC: where the live bytes were allocated
        tracemalloc.take_snapshot().dump(str(directory / f"heap-{n}.snapshot"))
    tmp.rename(directory / f"heap-{n}.json")


@kopf.on.startup()
async def heap_probe(**_: Any) -> None:
    if directory := os.environ.get("BENCH_HEAP_DIR"):
        asyncio.get_running_loop().add_signal_handler(SIGNAL, _write, Path(directory))
