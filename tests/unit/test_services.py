"""Service builders: a Deployment (and Service) from an image, or a copy of a
source Deployment and the Services selecting it, re-homed in the environment."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from testenv.build.common import (
    LABEL_COMPONENT,
    LABEL_ENV_UID,
    LABEL_KIND,
    RESTRICTED_CONTAINER_SECURITY,
    EnvRef,
)
from testenv.build.datastores import url_env
from testenv.build.services import (
    CopySource,
    copied_service_objects,
    image_service_objects,
    selects,
)
from testenv.models import Datastore, Service

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")
INJECTED = [
    url_env(Datastore(name="orders-db", engine="postgres")),
    {"name": "PAYMENTS_URL", "value": "http://payments:8080"},
]


def svc(**fields: Any) -> Service:
    return Service.model_validate({"name": "inventory", **fields})


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# --- from an image ----------------------------------------------------------------------


def image_objects(**fields: Any) -> dict[str, list[dict[str, Any]]]:
    return by_kind(image_service_objects(svc(image="ghcr.io/acme/inventory:1", **fields), ENV, INJECTED))


def test_image_service_is_a_deployment_named_after_it() -> None:
    [deployment] = image_objects()["Deployment"]
    assert deployment["metadata"]["name"] == "inventory"
    assert deployment["metadata"]["namespace"] == ENV.target_namespace
    [container] = pod_spec(deployment)["containers"]
    assert container["name"] == "inventory" and container["image"] == "ghcr.io/acme/inventory:1"


def test_image_service_runs_restricted_with_no_token() -> None:
    [deployment] = image_objects()["Deployment"]
    spec = pod_spec(deployment)
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["containers"][0]["securityContext"] == RESTRICTED_CONTAINER_SECURITY


def test_image_service_selects_its_pods_by_component() -> None:
    [deployment] = image_objects()["Deployment"]
    assert deployment["spec"]["selector"] == {"matchLabels": {LABEL_COMPONENT: "inventory"}}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_COMPONENT] == "inventory" and labels[LABEL_KIND] == "service"
    assert labels[LABEL_ENV_UID] == "uid-1"


def test_image_service_replicas_command_args_and_probe() -> None:
    probe = {"httpGet": {"path": "/health", "port": 8080}}
    [deployment] = image_objects(replicas=2, command=["serve"], args=["--fast"], readinessProbe=probe)["Deployment"]
    container = pod_spec(deployment)["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert (container["command"], container["args"], container["readinessProbe"]) == (["serve"], ["--fast"], probe)


def test_image_service_without_command_keeps_the_images_entrypoint() -> None:
    container = pod_spec(image_objects()["Deployment"][0])["containers"][0]
    assert "command" not in container and "args" not in container and "readinessProbe" not in container


def test_image_service_gets_injected_env_and_its_own_env_wins() -> None:
    container = pod_spec(image_objects(env=[{"name": "PAYMENTS_URL", "value": "http://mine"}])["Deployment"][0])[
        "containers"
    ][0]
    env = env_of(container)
    assert env["ORDERS_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "orders-db-connection"
    assert env["PAYMENTS_URL"]["value"] == "http://mine"
    assert [e["name"] for e in container["env"]].count("PAYMENTS_URL") == 1


def test_image_service_with_ports_gets_a_service_of_its_name() -> None:
    objects = image_objects(ports=[{"port": 80, "targetPort": 8080}, {"port": 9090, "name": "metrics"}])
    [service] = objects["Service"]
    assert service["metadata"]["name"] == "inventory"
    assert service["spec"]["selector"] == {LABEL_COMPONENT: "inventory", LABEL_KIND: "service"}
    assert service["spec"]["ports"] == [
        {"name": "p80", "port": 80, "targetPort": 8080},
        {"name": "metrics", "port": 9090, "targetPort": 9090},
    ]
    container = pod_spec(objects["Deployment"][0])["containers"][0]
    assert container["ports"] == [{"containerPort": 8080}, {"containerPort": 9090}]


def test_two_service_ports_to_one_container_port_list_it_once_in_the_container() -> None:
    """A container's ports are keyed by number for server-side apply: listed
    twice, every apply of the Deployment failed with a 500."""
    objects = image_objects(ports=[{"port": 80, "targetPort": 8080}, {"port": 8080}])
    assert [p["port"] for p in objects["Service"][0]["spec"]["ports"]] == [80, 8080]
    assert pod_spec(objects["Deployment"][0])["containers"][0]["ports"] == [{"containerPort": 8080}]


def test_image_service_without_ports_gets_no_service() -> None:
    assert "Service" not in image_objects()


# --- copied from a source Deployment ---------------------------------------------------------


def source_deployment(**spec_overrides: Any) -> dict[str, Any]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "inventory-service",
            "namespace": "staging",
            "uid": "src-uid",
            "resourceVersion": "123",
            "generation": 7,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "Application", "name": "argo"}],
            "finalizers": ["example.com/keep"],
            "labels": {"app": "inventory", "team": "stock"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "deployment.kubernetes.io/revision": "12",
                "team.example.com/owner": "stock",
            },
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "inventory"}},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"app": "inventory"}, "creationTimestamp": None},
                "spec": {
                    "serviceAccountName": "inventory",
                    "nodeName": "staging-node-3",
                    "containers": [
                        {
                            "name": "inventory",
                            "image": "ghcr.io/acme/inventory:v1.8.0",
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "MODE", "value": "staging"}],
                        },
                        {"name": "proxy", "image": "envoy:1", "securityContext": {"runAsUser": 101}},
                    ],
                },
            },
        },
        "status": {"readyReplicas": 3, "replicas": 3},
    }
    deployment["spec"].update(spec_overrides)
    return deployment


def source_service(name: str = "inventory-service", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "staging",
            "uid": "svc-uid",
            "resourceVersion": "9",
            "ownerReferences": [{"kind": "Application", "name": "argo"}],
        },
        "spec": {
            "selector": {"app": "inventory"},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "clusterIP": "10.0.0.12",
            "clusterIPs": ["10.0.0.12"],
            "type": "ClusterIP",
            **spec,
        },
        "status": {"loadBalancer": {}},
    }


def copied(service: Service | None = None, deployment: dict | None = None, services: list | None = None):
    source = CopySource(
        deployment=deployment or source_deployment(), services=[source_service()] if services is None else services
    )
    return by_kind(
        copied_service_objects(
            service or svc(copyFrom={"namespace": "staging", "deployment": "inventory-service"}), source, ENV, INJECTED
        )
    )


COPY = {"copyFrom": {"namespace": "staging", "deployment": "inventory-service"}}


def test_copy_is_named_after_the_service_in_the_environments_namespace() -> None:
    [deployment] = copied()["Deployment"]
    assert deployment["metadata"]["name"] == "inventory"
    assert deployment["metadata"]["namespace"] == ENV.target_namespace


@pytest.mark.parametrize(
    "field",
    ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences", "finalizers"],
)
def test_copy_strips_cluster_set_metadata(field: str) -> None:
    [deployment] = copied()["Deployment"]
    assert field not in deployment["metadata"]


def test_copy_strips_status() -> None:
    objects = copied()
    assert "status" not in objects["Deployment"][0]
    assert "status" not in objects["Service"][0]


def test_copy_drops_apply_and_revision_annotations_but_keeps_others() -> None:
    [deployment] = copied()["Deployment"]
    assert deployment["metadata"]["annotations"] == {"team.example.com/owner": "stock"}


def test_copy_without_annotations_left_has_no_annotations_key() -> None:
    source = source_deployment()
    source["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    [deployment] = copied(deployment=source)["Deployment"]
    assert "annotations" not in deployment["metadata"]


def test_copy_keeps_source_labels_and_adds_ours() -> None:
    [deployment] = copied()["Deployment"]
    labels = deployment["metadata"]["labels"]
    assert labels["team"] == "stock"
    assert labels[LABEL_COMPONENT] == "inventory" and labels[LABEL_ENV_UID] == "uid-1"
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert template_labels["app"] == "inventory" and template_labels[LABEL_COMPONENT] == "inventory"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "inventory", LABEL_COMPONENT: "inventory"}


def test_copy_drops_the_template_creation_timestamp() -> None:
    assert "creationTimestamp" not in copied()["Deployment"][0]["spec"]["template"]["metadata"]


def test_copy_takes_the_services_replicas_not_the_sources() -> None:
    assert copied()["Deployment"][0]["spec"]["replicas"] == 1
    assert copied(svc(replicas=0, **COPY))["Deployment"][0]["spec"]["replicas"] == 0


def test_copy_keeps_the_rest_of_the_source_spec() -> None:
    assert copied()["Deployment"][0]["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_copy_drops_source_namespace_only_pod_settings() -> None:
    spec = pod_spec(copied()["Deployment"][0])
    assert "serviceAccountName" not in spec and "nodeName" not in spec


def test_copy_overrides_image_of_the_first_container_only() -> None:
    containers = pod_spec(copied(svc(image="ghcr.io/acme/inventory:sha-def456", **COPY))["Deployment"][0])["containers"]
    assert containers[0]["image"] == "ghcr.io/acme/inventory:sha-def456"
    assert containers[1]["image"] == "envoy:1"
    assert "env" not in containers[1]


def test_copy_without_image_keeps_the_source_image() -> None:
    assert pod_spec(copied()["Deployment"][0])["containers"][0]["image"] == "ghcr.io/acme/inventory:v1.8.0"


def test_copy_keeps_source_env_adds_injected_env_and_own_env_wins() -> None:
    service = svc(env=[{"name": "MODE", "value": "test"}, {"name": "PAYMENTS_URL", "value": "http://mine"}], **COPY)
    container = pod_spec(copied(service)["Deployment"][0])["containers"][0]
    env = env_of(container)
    assert env["LOG_LEVEL"]["value"] == "info"
    assert env["MODE"]["value"] == "test"
    assert env["PAYMENTS_URL"]["value"] == "http://mine"
    assert env["ORDERS_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "orders-db-connection"
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))


def test_copy_points_injected_urls_at_the_environments_datastores_not_the_sources() -> None:
    source = source_deployment()
    source["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "ORDERS_DB_URL", "value": "postgresql://staging-db:5432/orders"}
    )
    container = pod_spec(copied(deployment=source)["Deployment"][0])["containers"][0]
    assert "valueFrom" in env_of(container)["ORDERS_DB_URL"]


def test_copy_overrides_command_args_and_probe_when_given() -> None:
    probe = {"httpGet": {"path": "/ready", "port": 8080}}
    service = svc(command=["run"], args=["--x"], readinessProbe=probe, **COPY)
    container = pod_spec(copied(service)["Deployment"][0])["containers"][0]
    assert (container["command"], container["args"], container["readinessProbe"]) == (["run"], ["--x"], probe)


def test_copy_hardens_unset_security_settings() -> None:
    spec = pod_spec(copied()["Deployment"][0])
    assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["containers"][0]["securityContext"] == RESTRICTED_CONTAINER_SECURITY
    assert spec["automountServiceAccountToken"] is False


def test_copy_keeps_security_settings_the_source_made() -> None:
    source = source_deployment()
    template = source["spec"]["template"]["spec"]
    template["securityContext"] = {"runAsNonRoot": False, "fsGroup": 2000}
    template["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    template["automountServiceAccountToken"] = True
    spec = pod_spec(copied(deployment=source)["Deployment"][0])
    assert spec["securityContext"] == {
        "runAsNonRoot": False,
        "fsGroup": 2000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container_context = spec["containers"][0]["securityContext"]
    assert container_context["allowPrivilegeEscalation"] is True
    assert container_context["capabilities"] == {"drop": ["ALL"]}
    assert spec["containers"][1]["securityContext"]["runAsUser"] == 101
    assert spec["automountServiceAccountToken"] is True


def test_copy_hardens_init_containers_too() -> None:
    source = source_deployment()
    source["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "m:1"}]
    spec = pod_spec(copied(deployment=source)["Deployment"][0])
    assert spec["initContainers"][0]["securityContext"] == RESTRICTED_CONTAINER_SECURITY


def test_copy_does_not_change_the_source() -> None:
    source = source_deployment()
    before = copy.deepcopy(source)
    services = [source_service(type="NodePort")]
    services_before = copy.deepcopy(services)
    copied(svc(image="new", env=[{"name": "A", "value": "b"}], **COPY), deployment=source, services=services)
    assert source == before and services == services_before


# --- copied Services ---------------------------------------------------------------------------


def test_copied_service_keeps_its_name_and_ports_and_selects_the_copy() -> None:
    [service] = copied()["Service"]
    assert service["metadata"]["name"] == "inventory-service"
    assert service["metadata"]["namespace"] == ENV.target_namespace
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
    assert service["spec"]["selector"] == {LABEL_COMPONENT: "inventory", LABEL_KIND: "service"}


def test_copied_service_strips_allocated_addresses_and_metadata() -> None:
    [service] = copied()["Service"]
    for field in ("clusterIP", "clusterIPs"):
        assert field not in service["spec"]
    for field in ("uid", "resourceVersion", "ownerReferences"):
        assert field not in service["metadata"]


def test_node_port_service_becomes_cluster_ip_without_node_ports() -> None:
    node_port = source_service(
        type="NodePort",
        externalTrafficPolicy="Local",
        ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}],
    )
    [service] = copied(services=[node_port])["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert "externalTrafficPolicy" not in service["spec"]
    assert "nodePort" not in service["spec"]["ports"][0]


def test_load_balancer_service_becomes_cluster_ip_without_balancer_fields() -> None:
    balancer = source_service(
        type="LoadBalancer",
        loadBalancerIP="1.2.3.4",
        loadBalancerSourceRanges=["0.0.0.0/0"],
        allocateLoadBalancerNodePorts=True,
        loadBalancerClass="x",
        healthCheckNodePort=31000,
        externalIPs=["5.6.7.8"],
    )
    spec = copied(services=[balancer])["Service"][0]["spec"]
    assert spec["type"] == "ClusterIP"
    for field in (
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "healthCheckNodePort",
        "externalIPs",
    ):
        assert field not in spec, field


def test_headless_service_stays_headless() -> None:
    headless = source_service(clusterIP="None", clusterIPs=["None"])
    assert copied(services=[headless])["Service"][0]["spec"].get("clusterIP") == "None"


def test_copy_with_ports_and_no_source_service_of_its_name_gets_its_own() -> None:
    objects = copied(svc(ports=[{"port": 80}], **COPY))
    assert sorted(s["metadata"]["name"] for s in objects["Service"]) == ["inventory", "inventory-service"]


def test_copy_whose_source_service_has_its_name_gets_no_second_service() -> None:
    objects = copied(svc(ports=[{"port": 80}], **COPY), services=[source_service(name="inventory")])
    assert [s["metadata"]["name"] for s in objects["Service"]] == ["inventory"]


def test_copy_without_ports_or_source_services_has_no_service() -> None:
    assert "Service" not in copied(services=[])


# --- selects() -------------------------------------------------------------------------------


def test_a_service_selects_a_deployment_whose_pod_labels_match() -> None:
    assert selects(source_service(), source_deployment()) is True


def test_a_service_with_another_selector_does_not_select() -> None:
    assert selects(source_service(selector={"app": "other"}), source_deployment()) is False


def test_a_service_without_selector_selects_nothing() -> None:
    assert selects(source_service(selector={}), source_deployment()) is False
    assert selects({"spec": {}}, source_deployment()) is False
