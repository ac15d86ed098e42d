"""API writes per environment against the minimum: the operator's mutating
requests (create/patch/update/delete), from the API server's audit log of its
own ServiceAccount, for the whole life of one order-flow environment
(create -> Succeeded -> collected after a 1 s TTL -> TestEnvironment deleted).
The minimum is one write per object the operator creates plus one per phase
change (the status patch that carries it). Each environment has a namespace of
its own for its TestEnvironment, so every request is attributed exactly: its
TestEnvironment namespace (the resource, its status, its Events), its
environment namespace (the children) and the Namespace object itself.

    python bench/api_writes.py --repeats 3
"""

from __future__ import annotations

import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    COPY_SOURCE_NAMESPACE,
    Figure,
    Request,
    log,
    parser,
    report,
    session,
    short_id,
    target_namespace,
)
from kubernetes.client.exceptions import ApiException
from specs import order_flow, render
from testenv.build.common import EnvRef
from testenv.kube import Kube
from testenv.settings import Settings

CATEGORIES = (
    ("object writes (apply/create)", lambda r, te_ns: r.verb in ("create", "patch", "update")
     and r.resource not in ("testenvironments", "events")),
    ("status writes", lambda r, te_ns: r.resource == "testenvironments" and r.subresource == "status"
     and r.mutating),
    ("TestEnvironment metadata writes (finalizer, kopf annotations)",
     lambda r, te_ns: r.resource == "testenvironments" and not r.subresource and r.mutating),
    ("Event posts", lambda r, te_ns: r.resource == "events" and r.mutating),
    ("deletes", lambda r, te_ns: r.verb in ("delete", "deletecollection")
     and r.resource not in ("testenvironments", "events")),
)


def attribute(requests: list[Request], te_namespace: str, env_namespace: str) -> list[Request]:
    return [r for r in requests if r.namespace in (te_namespace, env_namespace)
            or (r.resource == "namespaces" and r.name in (te_namespace, env_namespace))]


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=3)
    p.add_argument("--timeout", type=float, default=180)
    args = p.parse_args()
    spec = order_flow(ttl_seconds=1)
    figures = {
        "writes": Figure("mutating requests per environment", "req", []),
        "minimum": Figure("minimum (objects + phase changes)", "req", []),
        "ratio": Figure("writes / minimum", "x", []),
        "reads": Figure("reads per environment (get/list/watch)", "req", []),
        **{name: Figure(f"  {name}", "req", []) for name, _ in CATEGORIES},
        "objects": Figure("  distinct objects written", "obj", []),
        "phases": Figure("  phase changes", "", []),
    }
    details: dict[str, int] = {}
    status_changes: dict[str, int] = {}  # which status fields each successive status write changed
    with session(args) as sess:
        if not sess.audit.available:
            raise SystemExit("API writes need the audit log: use the bench test bed or --audit-log")
        source = Kube(sess.api, "testenv-bench").read_copy_source(
            namespace=COPY_SOURCE_NAMESPACE, deployment="inventory-service")
        settings = Settings(copy_allowlist=frozenset({COPY_SOURCE_NAMESPACE}))
        fake = EnvRef(name="x", namespace="x", uid=str(uuid.uuid4()), target_namespace="x")
        rendered = len(render(spec, fake, settings, {"inventory-service": source}).objects)
        operator = sess.operator()
        operator.start()
        try:
            time.sleep(2)
            for i in range(args.repeats):
                te_ns = f"bench-writes-{i}-{short_id()}"
                envs = sess.environments(te_ns)
                try:
                    name = "order-flow"
                    mark = sess.audit.mark()
                    envs.apply(name, spec)
                    envs.wait_phases([name], {"Succeeded", "Failed", "Error", "TimedOut"}, args.timeout)
                    env_ns = target_namespace(envs.get(name))
                    # Collected after the TTL: the namespace goes; then the resource is deleted.
                    deadline = time.monotonic() + args.timeout
                    while time.monotonic() < deadline:
                        try:
                            sess.core.read_namespace(env_ns)
                        except ApiException as exc:
                            if exc.status == 404:
                                break
                            raise
                        time.sleep(0.2)
                    envs.delete_all(timeout=args.timeout)
                    time.sleep(1)
                    history = envs.phase_history[name]
                    statuses = envs.status_history[name]
                    requests = attribute(sess.audit.requests(mark), te_ns, env_ns)
                finally:
                    envs.stop()
                    try:
                        sess.core.delete_namespace(te_ns)
                    except ApiException:
                        pass
                writes = [r for r in requests if r.mutating]
                objects = {(r.resource, r.namespace, r.name) for r in writes
                           if r.verb in ("create", "patch", "update")
                           and r.resource not in ("testenvironments", "events")}
                minimum = len(objects) + len(history)
                figures["writes"].values.append(len(writes))
                figures["minimum"].values.append(minimum)
                figures["ratio"].values.append(len(writes) / minimum)
                figures["reads"].values.append(len(requests) - len(writes))
                figures["objects"].values.append(len(objects))
                figures["phases"].values.append(len(history))
                for cat, match in CATEGORIES:
                    figures[cat].values.append(sum(1 for r in writes if match(r, te_ns)))
                for r in requests:
                    details[r.what] = details.get(r.what, 0) + 1
                for before, after in pairwise(statuses):
                    changed = "+".join(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))
                    status_changes[changed] = status_changes.get(changed, 0) + 1
                log(f"env {i}: {len(writes)} writes vs minimum {minimum} ({len(objects)} objects + "
                    f"{len(history)} phases: {' -> '.join(history)}); {len(requests) - len(writes)} reads")
        finally:
            operator.stop()
    n = max(args.repeats, 1)
    notes = [
        f"objects the planner renders for this spec: {rendered} (the audit's distinct objects should match)",
        "all requests per environment, by verb/resource (mean over repeats): "
        + ", ".join(f"{w}: {c / n:.1f}" for w, c in sorted(details.items(), key=lambda kv: -kv[1])),
        "successive statuses (as the watch saw them) by the fields that changed (mean over repeats): "
        + "; ".join(f"{w}: {c / n:.1f}" for w, c in sorted(status_changes.items(), key=lambda kv: -kv[1])),
    ]
    report("API writes per environment: order flow, whole life", list(figures.values()), notes, args,
           {"by_request": {w: c / n for w, c in details.items()},
            "status_changes": {w: c / n for w, c in status_changes.items()}})


if __name__ == "__main__":
    main()
