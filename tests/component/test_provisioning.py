"""Provisioning on the real control plane: the namespace, datastores, stubs
and services of an environment, created in dependency order and reported on
the resource; bad input ends in Error with nothing created."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator

import pytest
from guide import guide_spec
from kubernetes import client, watch
from operator_support import COPY_SOURCE_NAMESPACE, kubectl
from testbed_support import wait_for

pytestmark = pytest.mark.component

# The example without its suites: a preview environment that stays Ready.
GUIDE_ENVIRONMENT = guide_spec(copy_namespace=COPY_SOURCE_NAMESPACE, with_tests=False)


@pytest.fixture(scope="module")
def copy_source(apps: client.AppsV1Api, core: client.CoreV1Api, operator) -> None:
    """A staging-like Deployment and Service for copyFrom, as a team would have."""
    labels = {"app": "inventory-service"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="inventory-service", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=3,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="inventory",
                            image="ghcr.io/acme/inventory-service:v1.8.0",
                            env=[client.V1EnvVar(name="LOG_LEVEL", value="info")],
                        )
                    ]
                ),
            ),
        ),
    )
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="inventory-service"),
        spec=client.V1ServiceSpec(
            type="NodePort", selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)]
        ),
    )
    for create, body in (
        (apps.create_namespaced_deployment, deployment),
        (core.create_namespaced_service, service),
    ):
        try:
            create(COPY_SOURCE_NAMESPACE, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise


class DeploymentLog:
    """Every event of one environment's Deployments, in the API server's
    order, watched from before the environment exists."""

    def __init__(self, apps: client.AppsV1Api, selector: str) -> None:
        self.events: list[tuple[str, str, int]] = []
        self._watch = watch.Watch()
        self._apps, self._selector = apps, selector
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        stream = self._watch.stream(
            self._apps.list_deployment_for_all_namespaces, label_selector=self._selector, timeout_seconds=180
        )
        try:
            for event in stream:
                obj = event["object"]
                self.events.append((event["type"], obj.metadata.name, (obj.status.ready_replicas or 0)))
        except Exception:  # noqa: BLE001 - the watch is closed under us when the test ends
            return

    def __enter__(self) -> DeploymentLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def first_added(self, name: str) -> int:
        return next(i for i, (kind, n, _) in enumerate(self.events) if kind == "ADDED" and n == name)

    def first_ready(self, name: str) -> int:
        return next(i for i, (_, n, ready) in enumerate(self.events) if n == name and ready >= 1)


@pytest.fixture
def ready_environment(environments, apps, copy_source) -> Iterator[tuple[dict, dict]]:
    selector = f"testenv.dev/environment=pr-1234,testenv.dev/environment-namespace={environments.namespace}"
    with DeploymentLog(apps, selector) as log:
        created = environments.apply("pr-1234", GUIDE_ENVIRONMENT)
        status = environments.wait_phase("pr-1234", "Ready", timeout=120)
    yield created, status | {"_log": log}


def test_guide_example_becomes_ready_with_every_component(ready_environment, core, apps):
    created, status = ready_environment
    ns = status["namespace"]
    assert ns.startswith("te-pr-1234-") and len(ns) <= 63
    assert status["readyComponents"] == "5/5"
    assert [c["name"] for c in status["components"] if c["ready"]] == [
        "orders-db", "cache", "payment-gateway", "order-service", "inventory-service"
    ]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["observedGeneration"] == 1 and status["run"] == 1

    namespace = core.read_namespace(ns)
    labels = namespace.metadata.labels
    assert labels["testenv.dev/environment"] == "pr-1234"
    assert labels["testenv.dev/environment-uid"] == created["metadata"]["uid"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(ns).items}
    assert deployments == {"orders-db", "cache", "payment-gateway", "order-service", "inventory-service"}
    services = {s.metadata.name: s for s in core.list_namespaced_service(ns).items}
    assert {"orders-db", "cache", "payment-gateway", "order-service", "inventory-service"} <= set(services)
    assert services["inventory-service"].spec.type == "ClusterIP"  # the NodePort source is not reopened
    assert core.list_namespaced_resource_quota(ns).items[0].spec.hard["pods"] == "30"
    assert client.NetworkingV1Api(core.api_client).list_namespaced_network_policy(ns).items


def test_datastore_secret_holds_connection_and_is_injected_by_reference(ready_environment, core, apps):
    _, status = ready_environment
    ns = status["namespace"]
    secret = core.read_namespaced_secret("orders-db-connection", ns)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert set(data) >= {"host", "port", "username", "password", "database", "url"}
    assert data["url"].startswith("postgresql://") and data["database"] == "orders_test"
    assert len(data["password"]) >= 16

    order_service = apps.read_namespaced_deployment("order-service", ns)
    env = {e.name: e for e in order_service.spec.template.spec.containers[0].env}
    assert env["ORDERS_DB_URL"].value_from.secret_key_ref.name == "orders-db-connection"
    assert env["CACHE_URL"].value_from.secret_key_ref.key == "url"
    assert env["PAYMENT_URL"].value == "http://payment-gateway:8080"
    assert data["password"] not in str(order_service.to_dict())
    assert data["password"] not in str(status)


def test_components_start_only_after_their_dependencies_are_ready(ready_environment, batch):
    _, status = ready_environment
    log = status["_log"]
    started = log.first_added("order-service")
    for dependency in ("orders-db", "cache", "payment-gateway"):
        assert log.first_ready(dependency) < started, f"order-service was created before {dependency} was ready"
    # The schema seed fills orders-db, which order-service uses: it ran first.
    # (It counts as done when its container exited 0; its Job completes a
    # moment later, once the results collector and the pod have stopped.)
    assert {s["name"]: s["phase"] for s in status["seeds"]} == {"schema": "Succeeded", "fixtures": "Succeeded"}

    def completed() -> bool:
        (job,) = batch.list_namespaced_job(status["namespace"], label_selector="testenv.dev/component=schema").items
        return job.status.succeeded == 1

    wait_for(completed, timeout=30, what="the schema seed's Job to complete")


def test_copied_service_keeps_source_config_with_overrides(ready_environment, apps):
    _, status = ready_environment
    copy = apps.read_namespaced_deployment("inventory-service", status["namespace"])
    container = copy.spec.template.spec.containers[0]
    assert container.image == "ghcr.io/acme/inventory-service:sha-def456"
    assert {e.name: e.value for e in container.env}["LOG_LEVEL"] == "info"
    assert copy.spec.replicas == 1
    assert not copy.metadata.owner_references
    assert copy.spec.template.spec.security_context.run_as_non_root is True


def test_kubectl_get_shows_phase_and_readiness(ready_environment, cluster, environments):
    out = kubectl(cluster, "get", "tenv", "-n", environments.namespace).stdout
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "PHASE", "READY", "TESTS"]
    assert row.split()[:3] == ["pr-1234", "Ready", "5/5"]


def test_every_phase_change_is_an_event(ready_environment, cluster, environments):
    """As `kubectl describe` and `kubectl events --for` show them: both select
    an object's Events by its kind and name (an Event without the kind is
    missing there)."""
    shown = ""

    def both_shown() -> bool:
        nonlocal shown
        described = kubectl(cluster, "describe", "tenv", "pr-1234", "-n", environments.namespace).stdout
        listed = kubectl(cluster, "events", "--for", "tenv/pr-1234", "-n", environments.namespace).stdout
        shown = f"{described}\n--- kubectl events:\n{listed}"
        return all(re.search(rf"\sNormal\s+{phase}\s", text) for phase in ("Provisioning", "Ready")
                   for text in (described.partition("\nEvents:")[2], listed))

    try:
        wait_for(both_shown, timeout=15, what="the phase-change Events in kubectl describe and kubectl events")
    except AssertionError as failed:
        raise AssertionError(f"{failed}; kubectl showed:\n{shown[-3000:]}") from None


def test_reapplying_the_same_spec_creates_no_duplicates(ready_environment, environments, apps):
    _, status = ready_environment
    environments.apply("pr-1234", GUIDE_ENVIRONMENT)
    again = environments.wait_phase("pr-1234", "Ready")
    assert again["run"] == 1
    assert len(apps.list_namespaced_deployment(status["namespace"]).items) == 5


def test_a_new_image_rolls_the_service_and_starts_run_two(ready_environment, environments, apps):
    _, status = ready_environment
    spec = {**GUIDE_ENVIRONMENT, "services": [dict(GUIDE_ENVIRONMENT["services"][0], image="ghcr.io/acme/order-service:sha-new"),
                                              GUIDE_ENVIRONMENT["services"][1]]}
    environments.apply("pr-1234", spec)
    wait_for(lambda: environments.status("pr-1234").get("run") == 2, timeout=30, what="run 2")
    again = environments.wait_phase("pr-1234", "Ready")
    assert again["observedGeneration"] == 2
    image = apps.read_namespaced_deployment("order-service", status["namespace"]).spec.template.spec.containers[0].image
    assert image == "ghcr.io/acme/order-service:sha-new"


def _our_namespaces(core: client.CoreV1Api, uid: str) -> list[str]:
    return [n.metadata.name for n in core.list_namespace(label_selector=f"testenv.dev/environment-uid={uid}").items]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"services": [{"name": "a", "image": "x", "dependsOn": ["b"]}, {"name": "b", "image": "x", "dependsOn": ["a"]}]},
            "dependsOn",
            "cycle",
        ),
        ({"services": [{"name": "a", "image": "x", "dependsOn": ["nope"]}]}, "spec.services[0].dependsOn", "'nope'"),
        (
            {"seed": [{"name": "s", "datastore": "missing-db", "sql": "select 1"}]},
            "spec.seed[0].datastore",
            "'missing-db'",
        ),
        (
            {"services": [{"name": "a", "copyFrom": {"namespace": "kube-system", "deployment": "coredns"}}]},
            "spec.services[0].copyFrom.namespace",
            "not allowed",
        ),
    ],
    ids=["cycle", "unknown-dependency", "unknown-datastore", "copy-not-allowed"],
)
def test_whole_spec_errors_end_in_error_and_create_nothing(environments, core, spec, field, words):
    created = environments.apply("broken", spec)
    status = environments.wait_phase("broken", "Error", timeout=30)
    assert field in status["message"] and words in status["message"]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert _our_namespaces(core, created["metadata"]["uid"]) == []
    def error_event() -> bool:
        events = core.list_namespaced_event(environments.namespace, field_selector="involvedObject.name=broken")
        return any(e.reason == "Error" and field in e.message for e in events.items)

    wait_for(error_event, timeout=15, what="an Error Event naming the field")


def test_fixing_an_invalid_spec_provisions_it(environments):
    environments.apply("fixable", {"services": [{"name": "a", "image": "x", "dependsOn": ["nope"]}]})
    environments.wait_phase("fixable", "Error", timeout=30)
    environments.apply("fixable", {"services": [{"name": "a", "image": "x"}]})
    status = environments.wait_phase("fixable", "Ready", timeout=60)
    assert status["readyComponents"] == "1/1"


def test_deleting_the_environment_deletes_its_namespace_then_the_finalizer(environments, core):
    created = environments.apply("short-lived", {"datastores": [{"name": "cache", "engine": "redis"}]})
    status = environments.wait_phase("short-lived", "Ready", timeout=60)
    assert "testenv.dev/cleanup" in environments.get("short-lived")["metadata"]["finalizers"]
    environments.delete("short-lived")
    wait_for(lambda: not environments.exists("short-lived"), timeout=90, what="TestEnvironment gone")
    def terminating_posted() -> bool:
        events = core.list_namespaced_event(environments.namespace, field_selector="involvedObject.name=short-lived")
        return any(e.reason == "Terminating" and status["namespace"] in e.message for e in events.items)

    wait_for(terminating_posted, timeout=10, what="the Terminating Event naming the namespace")
    assert _our_namespaces(core, created["metadata"]["uid"]) == []
    assert status["namespace"] not in {n.metadata.name for n in core.list_namespace().items}
