"""Scale: N environments (3 components each, no tests) applied at once; the
time until all are Ready, the operator's peak RSS (VmHWM) and CPU seconds
(utime+stime), for N = 50, 100, 200 by default, each with a fresh operator
process so its high-water mark is its own. Targets: 200 Ready within 60 s on
2 cores; RSS <= 250 MiB. The max_active_* settings are left at 0 (no limit).

    python bench/scale.py --repeats 3 --sizes 50,100,200
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Figure, apply_many, delete_namespaces, force_clean, log, parser, report, session, short_id
from raw import run_raw
from specs import SMALL
from testenv.settings import Settings

NAMESPACE = "bench-scale"


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=3)
    p.add_argument("--sizes", default="50,100,200", help="comma-separated environment counts")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for all Ready")
    p.add_argument("--cleanup-timeout", type=float, default=900,
                   help="seconds to wait for the operator to collect the N environments")
    p.add_argument("--raw", action="store_true",
                   help="also apply the same N environments raw (rendered objects, server-side apply in dependency "
                        "order, 8 client threads): the control plane's own floor for N on this machine")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[int, dict[str, Figure]] = {
        n: {
            "ready": Figure(f"N={n}: apply -> all Ready", "s", []),
            "median_env": Figure(f"N={n}: apply -> Ready, median env", "s", []),
            "rss_hwm": Figure(f"N={n}: operator peak RSS (VmHWM)", "MiB", []),
            "rss_idle": Figure(f"N={n}: operator RSS before apply", "MiB", []),
            "rss_after": Figure(f"N={n}: operator RSS when all Ready", "MiB", []),
            "cpu": Figure(f"N={n}: operator CPU, apply -> all Ready", "s", []),
            "cp_cpu": Figure(f"N={n}: control plane CPU, apply -> all Ready", "s", []),
            "requests": Figure(f"N={n}: operator API requests, apply -> all Ready", "req", []),
            "cleanup": Figure(f"N={n}: delete all -> namespaces gone", "s", []),
            "cleanup_rate": Figure(f"N={n}: operator req/s while collecting", "req/s", []),
            "raw": Figure(f"N={n}: raw baseline, apply -> all ready", "s", []),
            "raw_cp_cpu": Figure(f"N={n}: raw baseline, control plane CPU", "s", []),
            "raw_cleanup": Figure(f"N={n}: raw baseline, delete namespaces -> gone", "s", []),
        }
        for n in sizes
    }
    errors = 0
    timed_out: list[int] = []
    settings = Settings()
    with session(args) as sess:
        envs = sess.environments(NAMESPACE)
        try:
            for repeat in range(args.repeats):
                for n in sizes:
                    operator = sess.operator()
                    operator.start()
                    try:
                        time.sleep(2)  # let its watches settle
                        before = operator.sample()
                        cp_before, mark = sess.bed.control_plane_cpu(), sess.audit.mark()
                        names = [f"s{n}-{repeat}-{i}-{short_id()}" for i in range(n)]
                        started, applied = apply_many(envs, names, SMALL)
                        envs.wait_phases(names, {"Ready"}, args.timeout)
                        times = [envs.phase_times[name]["Ready"] - started for name in names]
                        after = operator.sample()
                        cp_after = sess.bed.control_plane_cpu()
                        f = figures[n]
                        if cp_before is not None:
                            f["cp_cpu"].values.append(cp_after - cp_before)
                        if sess.audit.available:
                            f["requests"].values.append(len(sess.audit.requests(mark, until_time=max(
                                envs.phase_times[name]["Ready"] for name in names), settle=0.5)))
                        f["ready"].values.append(max(times))
                        f["median_env"].values.append(statistics.median(times))
                        f["rss_hwm"].values.append(after.hwm_kib / 1024)
                        f["rss_idle"].values.append(before.rss_kib / 1024)
                        f["rss_after"].values.append(after.rss_kib / 1024)
                        f["cpu"].values.append(after.cpu_seconds - before.cpu_seconds)
                        log(f"N={n} repeat {repeat}: all Ready in {max(times):.1f}s (applied in "
                            f"{applied - started:.1f}s), HWM {after.hwm_kib / 1024:.0f} MiB, "
                            f"CPU {after.cpu_seconds - before.cpu_seconds:.1f}s")
                        errors += operator.logs().count("reconcile failed")
                        # Collection through the operator: delete every resource, wait for the namespaces.
                        mark, cleanup_started = sess.audit.mark(), time.time()
                        try:
                            f["cleanup"].values.append(envs.delete_all(timeout=args.cleanup_timeout))
                        except TimeoutError:
                            f["cleanup"].values.append(args.cleanup_timeout)
                            timed_out.append(n)
                            log(f"N={n}: collection not done after {args.cleanup_timeout:.0f}s")
                        took = time.time() - cleanup_started
                        if sess.audit.available:
                            f["cleanup_rate"].values.append(len(sess.audit.requests(mark, settle=0.5)) / took)
                        log(f"N={n} repeat {repeat}: collected in {took:.0f}s")
                    finally:
                        operator.stop()
                        force_clean(sess.api)
                    if args.raw:
                        cp_before = sess.bed.control_plane_cpu()
                        result = run_raw(sess, SMALL, n, settings, {}, args.timeout, cleanup=False)
                        cp_after = sess.bed.control_plane_cpu()
                        cleanup_started = time.monotonic()
                        delete_namespaces(sess.core, result.namespaces, timeout=args.cleanup_timeout)
                        figures[n]["raw_cleanup"].values.append(time.monotonic() - cleanup_started)
                        figures[n]["raw"].values.append(max(result.durations()))
                        if cp_before is not None:
                            figures[n]["raw_cp_cpu"].values.append(cp_after - cp_before)
                        log(f"N={n} repeat {repeat}: raw baseline all ready in {max(result.durations()):.1f}s")
        finally:
            envs.stop()
    flat = [fig for n in sizes for fig in figures[n].values() if fig.values]
    notes = []
    if 200 in figures and figures[200]["ready"].values:
        t, rss = figures[200]["ready"].median(), figures[200]["rss_hwm"].median()
        notes.append(f"target 200 Ready within 60 s: {'holds' if t <= 60 else 'MISSED'} (median {t:.1f} s)")
        notes.append(f"target RSS <= 250 MiB at 200: {'holds' if rss <= 250 else 'MISSED'} (median {rss:.0f} MiB)")
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for key, label in (("ready", "time to all Ready"), ("cpu", "CPU"), ("rss_hwm", "peak RSS")):
            a, b = figures[lo][key].median(), figures[hi][key].median()
            notes.append(f"growth {lo} -> {hi} ({hi / lo:.0f}x envs): {label} x{b / a:.2f}")
        per_env = [(figures[n]["cpu"].median() / n) * 1000 for n in sizes]
        notes.append("CPU per environment: " + ", ".join(f"N={n}: {c:.0f} ms" for n, c in zip(sizes, per_env)))
    if args.raw:
        notes.append("operator / raw at each N: " + ", ".join(
            f"N={n}: {figures[n]['ready'].median() / figures[n]['raw'].median():.2f}" for n in sizes))
    if timed_out:
        notes.append(f"collection did NOT finish within {args.cleanup_timeout:.0f}s for N in {timed_out} "
                     "(the figure is then the timeout)")
    notes.append(f"'reconcile failed' lines in the operator logs: {errors}")
    report("scale: N environments x 3 components, applied at once", flat, notes, args)


if __name__ == "__main__":
    main()
