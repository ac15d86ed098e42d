"""Overhead ratio: apply-to-Ready of the design guide's environment through the
operator, divided by the same objects (rendered by the operator's own planner
and builders) applied raw with server-side apply in dependency order, each
object applied the moment its dependencies' Deployments are ready (and its
gating seeds done), on the same cluster in the same run. Target: <= 1.15 at
the median.

    python bench/overhead.py --repeats 5
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import COPY_SOURCE_NAMESPACE, Figure, log, parser, report, session, short_id
from raw import run_raw
from specs import GUIDE
from testenv.kube import Kube
from testenv.settings import Settings

NAMESPACE = "bench-overhead"


def operator_trial(envs, name: str, timeout: float) -> float:
    started = envs.apply(name, GUIDE)
    envs.wait_phases([name], {"Ready"}, timeout)
    took = envs.phase_times[name]["Ready"] - started
    return took


def raw_trial(sess, settings: Settings, copy_sources: dict[str, Any], timeout: float) -> tuple[float, int]:
    """The same objects applied raw, each as soon as what it waits for is ready."""
    result = run_raw(sess, GUIDE, 1, settings, copy_sources, timeout)
    return max(result.durations()), result.writes


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=5)
    p.add_argument("--warmup", type=int, default=1, help="unmeasured pairs first (the operator's discovery, caches)")
    p.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    with session(args) as sess:
        operator = sess.operator()
        operator.start()
        envs = sess.environments(NAMESPACE)
        settings = Settings(copy_allowlist=frozenset({COPY_SOURCE_NAMESPACE}))
        source = Kube(sess.api, "testenv-bench").read_copy_source(
            namespace=COPY_SOURCE_NAMESPACE, deployment="inventory-service")
        copy_sources = {"inventory-service": source}
        op_times, raw_times, ratios, op_cpu, op_requests, raw_requests = [], [], [], [], [], []
        try:
            for i in range(args.warmup + args.repeats):
                measured = i >= args.warmup
                pair: dict[str, float] = {}
                # Alternate which goes first, so drift in the machine's load hits both alike.
                for kind in (("operator", "raw") if i % 2 == 0 else ("raw", "operator")):
                    if kind == "operator":
                        name = f"ovh-{i}-{short_id()}"
                        mark, cpu0 = sess.audit.mark(), operator.sample().cpu_seconds
                        pair["operator"] = operator_trial(envs, name, args.timeout)
                        cpu = operator.sample().cpu_seconds - cpu0
                        reqs = len(sess.audit.requests(mark, settle=0.5)) if sess.audit.available else None
                        envs.delete_all()
                        if measured:
                            op_cpu.append(cpu)
                            if reqs is not None:
                                op_requests.append(reqs)
                    else:
                        pair["raw"], n = raw_trial(sess, settings, copy_sources, args.timeout)
                        if measured:
                            raw_requests.append(n)
                ratio = pair["operator"] / pair["raw"]
                log(f"{'pair' if measured else 'warm-up'} {i}: operator {pair['operator']:.2f}s, "
                    f"raw {pair['raw']:.2f}s, ratio {ratio:.2f}")
                if measured:
                    op_times.append(pair["operator"])
                    raw_times.append(pair["raw"])
                    ratios.append(ratio)
        finally:
            envs.stop()
            operator.stop()
        median_ratio = Figure("x", "", op_times).median() / Figure("x", "", raw_times).median()
        figures = [
            Figure("operator: apply -> Ready", "s", op_times),
            Figure("raw SSA in dependency order: -> all ready", "s", raw_times),
            Figure("ratio per pair (operator / raw)", "x", ratios),
            Figure("operator CPU per environment (to Ready)", "s", op_cpu),
            Figure("operator API requests per env (to Ready)", "req", op_requests),
            Figure("raw baseline API writes per env", "req", raw_requests),
        ]
        verdict = "holds" if median_ratio <= 1.15 else "MISSED"
        report("overhead ratio: guide example (5 components + 1 seed)", figures,
               [f"ratio of medians: {median_ratio:.3f} (target <= 1.15: {verdict})"], args,
               {"ratio_of_medians": median_ratio})


if __name__ == "__main__":
    main()
