"""Memory after a burst: N environments (default 100, 3 components each)
applied at once, Ready, then deleted, in one fresh operator per repeat. The
operator's RSS idle, with all Ready and 20 s after all are gone, against the
soak's invariant (back within 15 % + 10 MiB of the idle figure), its peak
(VmHWM) and its CPU seconds from the first apply to the end.

--allocator picks what Python's objects come from: `image` (the operator
image's jemalloc, testenv.idle_memory.IMAGE_ALLOCATOR; the default where
the machine has jemalloc), `pymalloc` (CPython's default), `mimalloc`
(Debian's libmimalloc2.0, PYTHONMALLOC=malloc).

    python bench/memory_burst.py --repeats 2 --allocator image --allocator pymalloc
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Figure, apply_many, force_clean, image_allocator, log, parser, report, session, short_id
from soak_invariants import memory_limit_kib, memory_not_back
from specs import SMALL

NAMESPACE = "bench-memory"
# Set over the image's allocator; an empty LD_PRELOAD preloads nothing.
ALLOCATORS = {
    "image": {},
    "pymalloc": {"PYTHONMALLOC": "pymalloc", "LD_PRELOAD": "", "MALLOC_CONF": ""},
    "mimalloc": {"PYTHONMALLOC": "malloc", "LD_PRELOAD": "libmimalloc.so.2", "MALLOC_CONF": ""},
}
SETTLE_IDLE, SETTLE_READY, SETTLE_GONE = 15.0, 10.0, 20.0


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=2)
    p.add_argument("--envs", type=int, default=100)
    p.add_argument("--allocator", action="append", choices=sorted(ALLOCATORS),
                   help="repeatable; default: image")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    allocators = args.allocator or ["image"]
    if "image" in allocators and not image_allocator():
        raise SystemExit("--allocator image needs jemalloc on this machine (apt install libjemalloc2)")
    figures: list[Figure] = []
    notes: list[str] = []
    with session(args) as sess:
        envs = sess.environments(NAMESPACE)
        rows: dict[str, dict[str, list[float]]] = {a: {} for a in allocators}
        for repeat in range(args.repeats):
            for allocator in allocators:  # interleaved: a drift of the machine hits each alike
                operator = sess.operator(**ALLOCATORS[allocator])
                operator.start()
                try:
                    time.sleep(SETTLE_IDLE)  # start-up's own garbage collected and handed back
                    idle = operator.sample()
                    names = [f"mem-{repeat}-{i}-{short_id()}" for i in range(args.envs)]
                    apply_many(envs, names, SMALL)
                    envs.wait_phases(names, {"Ready"}, args.timeout)
                    time.sleep(SETTLE_READY)
                    ready = operator.sample()
                    envs.delete_all(args.timeout)
                    time.sleep(SETTLE_GONE)  # past the operator's 10 s of quiet and jemalloc's 1 s decay
                    gone = operator.sample()
                finally:
                    operator.stop()
                force_clean(sess.api)
                run = {"idle": idle.rss_kib / 1024, "ready": ready.rss_kib / 1024, "gone": gone.rss_kib / 1024,
                       "peak": gone.hwm_kib / 1024, "cpu": gone.cpu_seconds - idle.cpu_seconds,
                       "over": float(bool(memory_not_back(idle.rss_kib, gone.rss_kib)))}
                for key, value in run.items():
                    rows[allocator].setdefault(key, []).append(value)
                log(f"{allocator} #{repeat}: RSS idle {run['idle']:.1f}, ready {run['ready']:.1f}, "
                    f"gone {run['gone']:.1f} MiB (limit {memory_limit_kib(idle.rss_kib) / 1024:.1f}), "
                    f"CPU {run['cpu']:.1f} s")
        for allocator, row in rows.items():
            figures += [
                Figure(f"{allocator}: RSS idle", "MiB", row["idle"]),
                Figure(f"{allocator}: RSS with {args.envs} Ready", "MiB", row["ready"]),
                Figure(f"{allocator}: RSS {SETTLE_GONE:.0f} s after all gone", "MiB", row["gone"]),
                Figure(f"{allocator}: peak RSS (VmHWM)", "MiB", row["peak"]),
                Figure(f"{allocator}: operator CPU, apply to end", "s", row["cpu"]),
            ]
            notes.append(f"{allocator}: not back within 15 % + 10 MiB of idle in "
                         f"{int(sum(row['over']))} of {len(row['over'])} runs")
    report(f"Memory after a burst of {args.envs} environments", figures, notes, args)


if __name__ == "__main__":
    main()
