"""Two operator replicas with kopf peering (as the chart runs them): one acts,
the other stands by, and takes over when the first one dies."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import replace

import pytest
from kubernetes import client
from operator_support import free_ports, kubectl
from prometheus_client.parser import text_string_to_metric_families
from testbed_support import ROOT, wait_for

pytestmark = pytest.mark.component


@contextlib.contextmanager
def _peering(cluster, operator):
    """The standalone test operator stopped for a peering object of the test's
    own; yields the replicas' environment. Restores the operator after."""
    name = f"testenv-pytest-{uuid.uuid4().hex[:6]}"
    kubectl(cluster, "apply", "--server-side", "-f", str(ROOT / "charts/testenv-operator/crds/kopf-peerings.yaml"))
    kubectl(cluster, "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    kubectl(cluster, "apply", "-f", "-", input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: {name}\n")
    operator.stop()
    try:
        yield operator.env | {"TESTENV_STANDALONE": "false", "TESTENV_PEERING": name, "TESTENV_METRICS_PORT": "0"}
    finally:
        kubectl(cluster, "delete", "clusterkopfpeering", name, "--wait=false", check=False)
        operator.start()


def _replica(operator, env, log_path, priority: str, health_port: int, metrics_port: int = 0):
    return replace(operator, env=dict(env, TESTENV_PEERING_PRIORITY=priority, TESTENV_HEALTH_PORT=str(health_port),
                                      TESTENV_METRICS_PORT=str(metrics_port)),
                   log_path=log_path, process=None, health_port=health_port, metrics_port=metrics_port)


@pytest.fixture
def peered_pair(cluster, operator, tmp_path):
    """Stop the standalone test operator; run two peered replicas instead."""
    with _peering(cluster, operator) as env:
        replicas = []
        try:
            # Distinct priorities, as the chart's "auto" gives; the later replica is
            # the higher one, so the first must step back when it appears.
            for i, priority in enumerate(("100", "200")):
                replica = _replica(operator, env, tmp_path / f"replica-{i}.log", priority,
                                   int(operator.env["TESTENV_HEALTH_PORT"]) + 100 + i)
                replica.start()
                replicas.append(replica)
            yield replicas
        finally:
            for replica in replicas:
                replica.stop()


def _acting(replica) -> bool:
    # kopf starts paused until it has seen the peering object, resumes when no
    # live peer has a higher priority, and pauses again when one appears.
    logs = replica.logs()
    return logs.rfind("Resuming operations after the pause") > logs.rfind("Pausing operations in favour of")


def test_one_replica_acts_and_the_other_takes_over_when_it_dies(peered_pair, environments, batch, core):
    standby, active = peered_pair  # started in this order; the second has the higher priority
    wait_for(lambda: "Pausing operations in favour of" in standby.logs(), timeout=60,
             what="the lower-priority replica stepping back")
    wait_for(lambda: _acting(active) and not _acting(standby), timeout=60, what="exactly one replica acting")

    spec = {"datastores": [{"name": "cache", "engine": "redis"}],
            "tests": [{"name": "smoke", "image": "t",
                       "podAnnotations": {"testenv.dev/simulate-termination-message": '{"passed": 1}'}}]}
    environments.apply("peered", spec)
    status = environments.wait_phase("peered", "Succeeded", timeout=90)
    assert [j.metadata.name for j in batch.list_namespaced_job(status["namespace"]).items] == ["smoke-r1"]

    assert not _acting(standby), "the standby acted while the active replica was alive"

    # The orphan sweep is no kopf handler, so it reads the peering object
    # itself: the acting replica sweeps, the paused one does not.
    orphan = f"te-orphan-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=orphan, labels={
        "app.kubernetes.io/managed-by": "testenv-operator",
        "testenv.dev/environment": "gone",
        "testenv.dev/environment-namespace": "ci",
        "testenv.dev/environment-uid": str(uuid.uuid4()),
    })))
    wait_for(lambda: f"deleting namespace {orphan}: orphaned" in active.logs(), timeout=60,
             what="the acting replica sweeping an orphan")
    assert orphan not in standby.logs()

    active.kill()
    # The dead replica's keep-alive expires (kopf's 60 s lifetime), then the standby resumes.
    wait_for(lambda: _acting(standby), timeout=150, what="the standby taking over")
    environments.apply("after-failover", spec)
    assert environments.wait_phase("after-failover", "Succeeded", timeout=90)["summary"]["passed"] == 1


def test_a_replica_back_from_a_pause_forgets_what_was_deleted_meanwhile(cluster, operator, environments, core,
                                                                      tmp_path):
    """A paused replica's watches stop; on resuming it lists again, and gets no
    delete for what went in between (kopf 1.45). It must not keep counting,
    indexing and remembering those (relist.py)."""
    low_ports, high_ports = free_ports(2), free_ports(2)
    with _peering(cluster, operator) as env:
        low = _replica(operator, env, tmp_path / "low.log", "100", low_ports[1], metrics_port=low_ports[0])
        high = _replica(operator, env, tmp_path / "high.log", "200", high_ports[1])
        try:
            low.start()
            wait_for(lambda: _acting(low), timeout=60, what="the only replica acting")
            environments.apply("gap", {"datastores": [{"name": "cache", "engine": "redis"}]})
            target = environments.wait_phase("gap", "Ready", timeout=90)["namespace"]

            def ready_count() -> float:
                return sum(s.value for family in text_string_to_metric_families(low.metrics()) for s in family.samples
                           if s.name == "testenv_environments" and s.labels.get("phase") == "Ready")

            wait_for(lambda: ready_count() >= 1, timeout=30, what="the run counted Ready")

            high.start()
            wait_for(lambda: "Pausing operations in favour of" in low.logs(), timeout=60, what="the first replica pausing")
            environments.delete("gap")
            wait_for(lambda: not environments.exists("gap") and target not in
                     {ns.metadata.name for ns in core.list_namespace().items}, timeout=120,
                     what="the run and its namespace gone, collected by the second replica")
            assert ready_count() >= 1  # paused: the first replica has seen nothing of it

            def events_about_gap() -> list:
                return core.list_namespaced_event(environments.namespace, field_selector="involvedObject.name=gap").items

            before = len(events_about_gap())
            high.stop()  # a clean stop takes its peering record with it: the first resumes at once
            wait_for(lambda: _acting(low), timeout=60, what="the first replica resuming")
            wait_for(lambda: ready_count() == 0, timeout=30, what="the deleted run no longer counted")
            logs = low.logs()
            for resource in ("testenvironments", "namespaces", "pods"):
                assert re.search(rf"{resource}[^:]*: \d+ deleted while the watch was down", logs), logs[-3000:]
            # Its loop for the run stopped there, with no pass on what is gone.
            assert len(events_about_gap()) == before, [e.message for e in events_about_gap()]
            assert "/testenvironments/gap/status HTTP/1.1\" 404" not in logs
        finally:
            high.stop()
            low.stop()
