"""Burst: a morning's wave of pull requests. --wave environments (300) are
applied at once, and while they run, finish and are collected, as many again
are applied within about a second, with the queue on
(TESTENV_MAX_ACTIVE_ENVIRONMENTS = --max-active). Each environment is a redis
and one suite that KWOK ends after --suite-ms with 4 passed, TTL 1 s.

Reports per wave: time to all finished and to all collected, the longest
wait in the queue; for the queue: the most environments active at once
(must stay within the limit), and its order: an inversion is an environment
that started more than --slack seconds before one ahead of it in the queue
(creation time, then name: the operator's own order). Nothing starves when
every environment of both waves finishes.

    python bench/burst.py --no-qps-limits
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Figure, apply_many, force_clean, log, parser, report, session, short_id
from queue_order import inversions, started_at
from specs import kwok_suite
from testenv.admission import FINISHED, WAITING
from testenv.plan import was_collected

NAMESPACE = "bench-burst"


def spec(suite_ms: int) -> dict[str, Any]:
    return {
        "lifecycle": {"ttlSecondsAfterFinished": 1, "activeDeadlineSeconds": 3600},
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [kwok_suite("smoke", suite_ms)],
    }


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=1)
    p.add_argument("--wave", type=int, default=300, help="environments per wave")
    p.add_argument("--max-active", type=int, default=150, help="TESTENV_MAX_ACTIVE_ENVIRONMENTS")
    p.add_argument("--suite-ms", type=int, default=5000, help="how long each suite runs (KWOK)")
    p.add_argument("--slack", type=float, default=2.0, help="seconds a start may precede one ahead of it")
    p.add_argument("--batch-slack", type=float, default=10.0,
                   help="the same, for environments admitted together when many slots free at once")
    p.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()
    body = spec(args.suite_ms)
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    data: dict[str, Any] = {}
    with session(args) as sess:
        envs = sess.environments(NAMESPACE)
        operator = sess.operator(TESTENV_MAX_ACTIVE_ENVIRONMENTS=str(args.max_active))
        operator.start()
        peak_active = 0
        watching = threading.Event()

        def count_active() -> None:
            nonlocal peak_active
            while not watching.wait(0.2):
                with envs.watcher.cond:
                    phases = [(o.get("status") or {}).get("phase") or "" for o in envs.watcher.objects.values()]
                active = sum(1 for ph in phases if ph not in WAITING and ph not in FINISHED)
                peak_active = max(peak_active, active)

        counter = threading.Thread(target=count_active, daemon=True)
        counter.start()
        try:
            tag = short_id()
            first = [f"a-{tag}-{i:04d}" for i in range(args.wave)]
            second = [f"b-{tag}-{i:04d}" for i in range(args.wave)]
            a_started, a_applied = apply_many(envs, first, body, workers=16)
            log(f"wave 1: {args.wave} applied in {a_applied - a_started:.1f}s")
            # The burst comes while the first wave is finishing and being collected.
            deadline = time.monotonic() + args.timeout
            while not any(FINISHED & set(envs.phase_times.get(n, {})) for n in first):
                if time.monotonic() > deadline:
                    raise TimeoutError("no environment of the first wave finished")
                time.sleep(0.1)
            b_started, b_applied = apply_many(envs, second, body, workers=32)
            log(f"wave 2 (the burst): {args.wave} applied in {b_applied - b_started:.2f}s")
            envs.wait_phases(first + second, FINISHED, max(1.0, deadline - time.monotonic()))
            finished_all = time.time()
            # Collected: the TTL ended the namespace and the status says so.
            envs.watcher.wait(lambda objects: all(was_collected((objects.get((NAMESPACE, n)) or {}).get("status") or {})
                                                  for n in first + second),
                              max(1.0, deadline - time.monotonic()), "every environment collected")
            collected_all = time.time()
            sample = operator.sample()
            with envs.watcher.cond:  # every resource is still there: the TTL collects namespaces only
                created = {name: envs.watcher.objects[(NAMESPACE, name)]["metadata"]["creationTimestamp"]
                           for name in first + second}
            for wave, names, t0 in (("wave 1", first, a_started), ("wave 2 (burst)", second, b_started)):
                done = [min(t for ph, t in envs.phase_times[n].items() if ph in FINISHED) - t0 for n in names]
                waits = [started - envs.phase_times[n].get("Queued", started) for n in names
                         if (started := started_at(envs.phase_times[n])) is not None]
                figures[f"{wave}: apply -> all finished"] = Figure(f"{wave}: apply -> all finished", "s", [max(done)])
                figures[f"{wave}: median"] = Figure(f"{wave}: apply -> finished, median env", "s",
                                                    [statistics.median(done)])
                figures[f"{wave}: wait"] = Figure(f"{wave}: longest wait in the queue", "s", [max(waits)])
                failed = [n for n in names if "Succeeded" not in envs.phase_times[n]]
                notes.append(f"{wave}: {len(names) - len(failed)} of {len(names)} Succeeded"
                             + (f"; not, e.g.: {failed[:5]}" if failed else ""))
            everyone = first + second
            order = sorted(everyone, key=lambda n: (created[n], n))
            starts = {n: t for n in order if (t := started_at(envs.phase_times[n])) is not None}
            queued_order = [n for n in order if n in starts]
            count, worst = inversions(queued_order, starts, args.slack)
            # Slots that free together are refilled together: the first k waiting are admitted at
            # once, and their starts spread over the seconds their passes take. A batch's slack:
            batch, _ = inversions(queued_order, starts, args.batch_slack)
            figures["burst"] = Figure("burst: the second wave applied in", "s", [b_applied - b_started])
            figures["all"] = Figure("both waves: first apply -> all collected", "s", [collected_all - a_started])
            figures["finished"] = Figure("both waves: first apply -> all finished", "s", [finished_all - a_started])
            figures["peak"] = Figure(f"most environments active at once (limit {args.max_active})", "envs",
                                     [peak_active])
            figures["inversions"] = Figure(f"queue order: starts ahead of an earlier environment by > {args.slack}s",
                                           "envs", [count])
            figures["worst"] = Figure("queue order: the largest such lead", "s", [worst])
            figures["batch"] = Figure(f"queue order: starts ahead of an earlier environment by > {args.batch_slack}s",
                                      "envs", [batch])
            figures["rss"] = Figure("operator peak RSS (VmHWM)", "MiB", [sample.hwm_kib / 1024])
            figures["cpu"] = Figure("operator CPU, whole run", "s", [sample.cpu_seconds])
            notes.append(f"limit held: {'yes' if peak_active <= args.max_active else 'NO'} "
                         f"(peak {peak_active} active, limit {args.max_active})")
            unfinished = [n for n in everyone if not FINISHED & set(envs.phase_times[n])]
            notes.append(f"starved (never finished): {len(unfinished) or 'none'}")
            data = {"created": created, "phase_times": {n: envs.phase_times[n] for n in everyone}}
            notes.append(f"'reconcile failed' lines in the operator log: {operator.logs().count('reconcile failed')}")
        finally:
            watching.set()
            envs.stop()
            operator.stop()
            force_clean(sess.api)
    report(f"burst: {args.wave} applied while {args.wave} finish, maxActiveEnvironments={args.max_active}",
           list(figures.values()), notes, args, data)


if __name__ == "__main__":
    main()
