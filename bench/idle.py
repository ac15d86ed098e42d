"""Idle traffic: with N (default 200) Ready environments and nothing changing,
the operator's requests per second to the API server over a window (default
60 s), counted from the API server's audit log of the operator's own
ServiceAccount (see bench/audit-policy.yaml). Target: <= 1 req/s.

    python bench/idle.py --repeats 1 --envs 200 --window 60
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Figure, apply_many, breakdown, force_clean, log, parser, report, session, short_id
from specs import SMALL

NAMESPACE = "bench-idle"


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=1)
    p.add_argument("--envs", type=int, default=200)
    p.add_argument("--window", type=float, default=60, help="seconds measured")
    p.add_argument("--settle", type=float, default=15, help="seconds after all Ready before the window opens")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    rates, mutating_rates, watch_starts, cpu_rates = [], [], [], []
    kinds: dict[str, int] = {}
    with session(args) as sess:
        if not sess.audit.available:
            raise SystemExit("idle traffic needs the audit log: use the bench test bed or --audit-log")
        envs = sess.environments(NAMESPACE)
        operator = sess.operator()
        operator.start()
        try:
            for repeat in range(args.repeats):
                names = [f"idle-{repeat}-{i}-{short_id()}" for i in range(args.envs)]
                apply_many(envs, names, SMALL)
                envs.wait_phases(names, {"Ready"}, args.timeout)
                log(f"{args.envs} Ready; settling {args.settle:.0f}s")
                time.sleep(args.settle)
                mark, cpu0 = sess.audit.mark(), operator.sample().cpu_seconds
                opened = time.time()
                time.sleep(args.window)
                closed = time.time()
                cpu = operator.sample().cpu_seconds - cpu0
                requests = [r for r in sess.audit.requests(mark) if opened <= r.at <= closed]
                rate = len(requests) / (closed - opened)
                rates.append(rate)
                mutating_rates.append(sum(r.mutating for r in requests) / (closed - opened))
                watch_starts.append(sum(r.verb == "watch" for r in requests))
                cpu_rates.append(cpu / (closed - opened) * 100)
                for what, count in breakdown(requests, top=50):
                    kinds[what] = kinds.get(what, 0) + count
                log(f"repeat {repeat}: {len(requests)} requests in {closed - opened:.0f}s = {rate:.2f} req/s")
                if repeat + 1 < args.repeats:
                    envs.delete_all(timeout=args.timeout)
        finally:
            envs.stop()
            operator.stop()
            force_clean(sess.api)  # collection is scale.py's to measure
    figures = [
        Figure(f"idle requests/s with {args.envs} Ready envs", "req/s", rates),
        Figure("  of which mutating", "req/s", mutating_rates),
        Figure("  watch requests started in the window", "req", watch_starts),
        Figure("operator CPU while idle", "% core", cpu_rates),
    ]
    median = figures[0].median()
    notes = [f"target <= 1 req/s: {'holds' if median <= 1 else 'MISSED'} (median {median:.2f})",
             "by verb/resource over all windows: " + (", ".join(f"{w}: {c}" for w, c in
                                                              sorted(kinds.items(), key=lambda kv: -kv[1])) or "none")]
    report(f"idle traffic: {args.envs} Ready environments, {args.window:.0f} s window", figures, notes, args,
           {"breakdown": kinds})


if __name__ == "__main__":
    main()
