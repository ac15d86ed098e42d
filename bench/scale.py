"""Scale: N environments (3 components each, no tests) applied at once, for
N = 200, 500 and 1,000 by default, each with a fresh operator process so its
high-water mark is its own, and with --raw the same N applied by the raw path
(bench/raw.py) right after. Per N: the time until all are Ready and the
operator/raw ratio, the median environment, the operator's CPU seconds and
peak RSS (VmHWM), its requests per environment, its idle requests/s with all
N Ready, and collection (all deleted -> namespaces gone) against the namespace
controller's own time for the raw namespaces. Then the curve's shape: the
exponent k of each figure's growth (figure ~ N^k) between successive sizes.

Goals at N = 1,000: all Ready within 1.2 x raw; peak RSS <= 300 MiB; idle
< 1 request/s; collection within 1.2 x the namespace controller's time.
The max_active_* settings are left at 0 (no limit).

    python bench/scale.py --raw --no-qps-limits --testbed-state /tmp/bench-noqps --testbed-name benchnoqps
"""

from __future__ import annotations

import math
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Figure,
    apply_many,
    breakdown,
    delete_namespaces,
    force_clean,
    log,
    parser,
    report,
    session,
    short_id,
)
from raw import run_raw
from specs import SMALL
from testenv.settings import Settings

NAMESPACE = "bench-scale"
# (key, label) of the figures whose growth with N is reported.
CURVES = (("ready", "time to all Ready"), ("cpu", "operator CPU"), ("rss_growth", "RSS above idle"),
          ("requests", "operator requests"), ("cleanup", "collection"), ("raw", "raw: time to all ready"),
          ("raw_cleanup", "raw: collection"))


def exponent(n1: int, v1: float, n2: int, v2: float) -> float:
    """k in v ~ N^k between two sizes: 1 is linear, above 1 grows faster."""
    if v1 <= 0 or v2 <= 0:
        return float("nan")
    return math.log(v2 / v1) / math.log(n2 / n1)


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy, sampling the operator (all threads, native frames off) for `seconds`."""
    spy = shutil.which("py-spy")
    if spy is None:
        log("--profile: py-spy is not installed (pip install py-spy); no profile")
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                             "--format", "speedscope", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT (not on SIGTERM)
        spy.wait(120)


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=1)
    p.add_argument("--sizes", default="200,500,1000", help="comma-separated environment counts")
    p.add_argument("--timeout", type=float, default=1200, help="seconds to wait for all Ready")
    p.add_argument("--cleanup-timeout", type=float, default=1800,
                   help="seconds to wait for the operator to collect the N environments")
    p.add_argument("--idle-window", type=float, default=30,
                   help="seconds of idle traffic measured with all N Ready (0: not measured)")
    p.add_argument("--raw", action="store_true",
                   help="also apply the same N environments raw (rendered objects, server-side apply in dependency "
                        "order, 8 client threads): the control plane's own floor for N on this machine")
    p.add_argument("--profile", metavar="DIR",
                   help="py-spy the operator from apply to all Ready, and while it collects, at the largest N "
                        "(speedscope JSON in DIR)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[int, dict[str, Figure]] = {
        n: {
            "ready": Figure(f"N={n}: apply -> all Ready", "s", []),
            "median_env": Figure(f"N={n}: apply -> Ready, median env", "s", []),
            "rss_hwm": Figure(f"N={n}: operator peak RSS (VmHWM)", "MiB", []),
            "rss_idle": Figure(f"N={n}: operator RSS before apply", "MiB", []),
            "rss_growth": Figure(f"N={n}: operator peak RSS above its idle RSS", "MiB", []),
            "cpu": Figure(f"N={n}: operator CPU, apply -> all Ready", "s", []),
            "cp_cpu": Figure(f"N={n}: control plane CPU, apply -> all Ready", "s", []),
            "requests": Figure(f"N={n}: operator API requests, apply -> all Ready", "req", []),
            "per_env": Figure(f"N={n}: operator API requests per environment", "req", []),
            "idle": Figure(f"N={n}: idle requests/s with all Ready", "req/s", []),
            "cleanup": Figure(f"N={n}: delete all -> namespaces gone", "s", []),
            "cleanup_rate": Figure(f"N={n}: operator req/s while collecting", "req/s", []),
            "cleanup_cpu": Figure(f"N={n}: operator CPU while collecting", "s", []),
            "cleanup_cp_cpu": Figure(f"N={n}: control plane CPU while the operator collects", "s", []),
            "raw": Figure(f"N={n}: raw baseline, apply -> all ready", "s", []),
            "raw_cp_cpu": Figure(f"N={n}: raw baseline, control plane CPU", "s", []),
            "raw_writes": Figure(f"N={n}: raw baseline, writes per environment", "req", []),
            "raw_cleanup_cp_cpu": Figure(f"N={n}: control plane CPU while the raw namespaces go", "s", []),
            "raw_cleanup": Figure(f"N={n}: raw baseline, delete namespaces -> gone (namespace controller)", "s",
                                  []),
        }
        for n in sizes
    }
    errors = 0
    timed_out: list[int] = []
    kinds: dict[int, list[tuple[str, int]]] = {}
    idle_kinds: dict[int, list[tuple[str, int]]] = {}
    collect_kinds: dict[int, list[tuple[str, int]]] = {}
    settings = Settings()
    with session(args) as sess:
        envs = sess.environments(NAMESPACE)
        try:
            for repeat in range(args.repeats):
                for n in sizes:
                    f = figures[n]
                    operator = sess.operator()
                    operator.start()
                    try:
                        time.sleep(2)  # let its watches settle
                        before = operator.sample()
                        cp_before, mark = sess.bed.control_plane_cpu(), sess.audit.mark()
                        spy = None
                        profiles = Path(args.profile) if args.profile and n == max(sizes) and repeat == 0 else None
                        if profiles is not None:
                            profiles.mkdir(parents=True, exist_ok=True)
                            spy = profile(operator.pid, args.timeout, profiles / f"scale-{n}.speedscope.json")
                        names = [f"s{n}-{repeat}-{i}-{short_id()}" for i in range(n)]
                        started, applied = apply_many(envs, names, SMALL)
                        envs.wait_phases(names, {"Ready"}, args.timeout)
                        stop_profile(spy)
                        spy = None
                        times = [envs.phase_times[name]["Ready"] - started for name in names]
                        after = operator.sample()
                        cp_after = sess.bed.control_plane_cpu()
                        if cp_before is not None:
                            f["cp_cpu"].values.append(cp_after - cp_before)
                        if sess.audit.available:
                            requests = sess.audit.requests(mark, until_time=max(
                                envs.phase_times[name]["Ready"] for name in names), settle=0.5)
                            f["requests"].values.append(len(requests))
                            f["per_env"].values.append(len(requests) / n)
                            kinds[n] = breakdown(requests, top=30)
                        f["ready"].values.append(max(times))
                        f["median_env"].values.append(statistics.median(times))
                        f["rss_hwm"].values.append(after.hwm_kib / 1024)
                        f["rss_idle"].values.append(before.rss_kib / 1024)
                        f["rss_growth"].values.append((after.hwm_kib - before.rss_kib) / 1024)
                        f["cpu"].values.append(after.cpu_seconds - before.cpu_seconds)
                        log(f"N={n} repeat {repeat}: all Ready in {max(times):.1f}s (applied in "
                            f"{applied - started:.1f}s), HWM {after.hwm_kib / 1024:.0f} MiB, "
                            f"CPU {after.cpu_seconds - before.cpu_seconds:.1f}s")
                        if args.idle_window and sess.audit.available:
                            time.sleep(10)  # the last statuses and Events settle
                            mark, opened = sess.audit.mark(), time.time()
                            time.sleep(args.idle_window)
                            closed = time.time()
                            idle = [r for r in sess.audit.requests(mark) if opened <= r.at <= closed]
                            f["idle"].values.append(len(idle) / (closed - opened))
                            idle_kinds[n] = breakdown(idle, top=10)
                            log(f"N={n} repeat {repeat}: idle {len(idle) / (closed - opened):.2f} req/s")
                        errors += operator.logs().count("reconcile failed")
                        # Collection through the operator: delete every resource, wait for the namespaces.
                        mark, cleanup_started = sess.audit.mark(), time.time()
                        cpu0, cp0 = operator.sample().cpu_seconds, sess.bed.control_plane_cpu()
                        if profiles is not None:
                            spy = profile(operator.pid, args.cleanup_timeout,
                                          profiles / f"scale-{n}-collection.speedscope.json")
                        try:
                            f["cleanup"].values.append(envs.delete_all(timeout=args.cleanup_timeout))
                        except TimeoutError:
                            f["cleanup"].values.append(args.cleanup_timeout)
                            timed_out.append(n)
                            log(f"N={n}: collection not done after {args.cleanup_timeout:.0f}s")
                        stop_profile(spy)
                        took = time.time() - cleanup_started
                        f["cleanup_cpu"].values.append(operator.sample().cpu_seconds - cpu0)
                        if cp0 is not None:
                            f["cleanup_cp_cpu"].values.append(sess.bed.control_plane_cpu() - cp0)
                        if sess.audit.available:
                            collecting = sess.audit.requests(mark, settle=0.5)
                            f["cleanup_rate"].values.append(len(collecting) / took)
                            collect_kinds[n] = breakdown(collecting, top=20)
                        log(f"N={n} repeat {repeat}: collected in {took:.0f}s")
                    finally:
                        operator.stop()
                        force_clean(sess.api)
                    if args.raw:
                        cp_before = sess.bed.control_plane_cpu()
                        result = run_raw(sess, SMALL, n, settings, {}, args.timeout, cleanup=False)
                        cp_after = sess.bed.control_plane_cpu()
                        cleanup_started, cp0 = time.monotonic(), cp_after
                        delete_namespaces(sess.core, result.namespaces, timeout=args.cleanup_timeout)
                        f["raw_cleanup"].values.append(time.monotonic() - cleanup_started)
                        if cp0 is not None:
                            f["raw_cleanup_cp_cpu"].values.append(sess.bed.control_plane_cpu() - cp0)
                        f["raw"].values.append(max(result.durations()))
                        f["raw_writes"].values.append(result.writes / n)
                        if cp_before is not None:
                            f["raw_cp_cpu"].values.append(cp_after - cp_before)
                        log(f"N={n} repeat {repeat}: raw baseline all ready in {max(result.durations()):.1f}s, "
                            f"collected in {f['raw_cleanup'].values[-1]:.0f}s")
        finally:
            envs.stop()
    flat = [fig for n in sizes for fig in figures[n].values() if fig.values]
    report("scale: N environments x 3 components, applied at once", flat, notes(sizes, figures, args, timed_out,
                                                                                 errors, kinds, idle_kinds, collect_kinds), args)


def notes(sizes: list[int], figures: dict[int, dict[str, Figure]], args, timed_out: list[int], errors: int,
          kinds: dict[int, list[tuple[str, int]]], idle_kinds: dict[int, list[tuple[str, int]]],
          collect_kinds: dict[int, list[tuple[str, int]]]) -> list[str]:
    out = []

    def med(n: int, key: str) -> float:
        return figures[n][key].median()

    top = max(sizes)
    if args.raw:
        out.append("operator / raw, all Ready: " + ", ".join(f"N={n}: {med(n, 'ready') / med(n, 'raw'):.2f}"
                                                             for n in sizes))
        out.append("operator / namespace controller, collection: " + ", ".join(
            f"N={n}: {med(n, 'cleanup') / med(n, 'raw_cleanup'):.2f}" for n in sizes))
        out.append("requests per environment (operator, to all Ready) / raw writes: " + ", ".join(
            f"N={n}: {med(n, 'per_env'):.1f} / {med(n, 'raw_writes'):.1f}" for n in sizes))
    out.append("CPU per environment: " + ", ".join(f"N={n}: {med(n, 'cpu') / n * 1000:.0f} ms" for n in sizes))
    out.append("peak RSS above idle per environment: " + ", ".join(
        f"N={n}: {med(n, 'rss_growth') / n * 1024:.0f} KiB" for n in sizes))
    for a, b in zip(sizes, sizes[1:], strict=False):
        ks = [f"{label} {exponent(a, med(a, key), b, med(b, key)):.2f}" for key, label in CURVES
              if figures[a][key].values and figures[b][key].values]
        out.append(f"growth exponent N={a} -> {b} (1 = linear): " + ", ".join(ks))
    goals = [("all Ready within 1.2 x raw", med(top, "ready") / med(top, "raw") if args.raw else float("nan"), 1.2),
             ("peak RSS <= 300 MiB", med(top, "rss_hwm"), 300),
             ("idle < 1 request/s", med(top, "idle"), 1.0),
             ("collection within 1.2 x the namespace controller",
              med(top, "cleanup") / med(top, "raw_cleanup") if args.raw else float("nan"), 1.2)]
    for label, value, limit in goals:
        verdict = "not measured" if math.isnan(value) else ("holds" if value <= limit else "MISSED")
        out.append(f"goal at N={top}: {label}: {verdict} ({value:.2f})")
    for n, rows in kinds.items():
        out.append(f"N={n} requests to all Ready by verb/resource: " + ", ".join(f"{w}: {c}" for w, c in rows))
    for n, rows in idle_kinds.items():
        out.append(f"N={n} idle requests by verb/resource: " + (", ".join(f"{w}: {c}" for w, c in rows) or "none"))
    for n, rows in collect_kinds.items():
        out.append(f"N={n} requests while collecting by verb/resource: " + ", ".join(f"{w}: {c}" for w, c in rows))
    if timed_out:
        out.append(f"collection did NOT finish within {args.cleanup_timeout:.0f}s for N in {timed_out} "
                   "(the figure is then the timeout)")
    out.append(f"'reconcile failed' lines in the operator logs: {errors}")
    return out


if __name__ == "__main__":
    main()
