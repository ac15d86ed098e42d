"""The environment's namespace and what contains it: its name, labels,
quota, limits, default ServiceAccount and NetworkPolicy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from testenv.build.common import (
    LABEL_ENV_NAME,
    LABEL_ENV_NAMESPACE,
    LABEL_ENV_UID,
    LABEL_MANAGED_BY,
    EnvRef,
    component_labels,
    env_labels,
    env_var_name,
    environment_namespace_name,
    merge_env,
)
from testenv.build.namespace import (
    default_service_account,
    limit_range,
    namespace,
    namespace_objects,
    network_policy,
    owned_by,
    resource_quota,
)
from testenv.models import Isolation

ENV = EnvRef(
    namespace="ci", name="pr-1234", uid="6f1c2d3e-0000-4000-8000-000000000001", target_namespace="te-pr-1234-7f3a2"
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUOTA_DEFAULTS = {"cpu": "4", "memory": "8Gi", "pods": "50"}
CONTAINER_DEFAULTS = {"cpu": "500m", "memory": "512Mi"}


def objects(isolation: Isolation | None = None, level: str = "restricted") -> dict[str, dict[str, Any]]:
    built = namespace_objects(
        ENV,
        isolation or Isolation(),
        pod_security_level=level,
        operator_namespace="testenv-system",
        quota_defaults=QUOTA_DEFAULTS,
        container_defaults=CONTAINER_DEFAULTS,
    )
    return {o["kind"]: o for o in built}


# --- the namespace's name ------------------------------------------------------------------


def test_namespace_name_is_prefix_name_and_a_short_hash() -> None:
    name = environment_namespace_name(namespace="ci", name="pr-1234", uid="uid-1")
    assert re.fullmatch(r"te-pr-1234-[0-9a-f]{5}", name)


def test_namespace_name_is_stable() -> None:
    first = environment_namespace_name(namespace="ci", name="pr-1234", uid="uid-1")
    assert first == environment_namespace_name(namespace="ci", name="pr-1234", uid="uid-1")


def test_environments_of_one_name_in_two_namespaces_get_two_namespaces() -> None:
    team_a = environment_namespace_name(namespace="team-a", name="pr-1", uid="u")
    assert team_a != environment_namespace_name(namespace="team-b", name="pr-1", uid="u")


def test_a_recreated_environment_gets_a_new_namespace() -> None:
    first = environment_namespace_name(namespace="ci", name="pr-1", uid="uid-1")
    assert first != environment_namespace_name(namespace="ci", name="pr-1", uid="uid-2")


def test_namespace_name_uses_the_configured_prefix() -> None:
    assert environment_namespace_name(namespace="ci", name="pr-1", uid="u", prefix="testenv").startswith("testenv-pr-1-")


@pytest.mark.parametrize("length", [1, 40, 56, 57, 58, 63, 120, 253])
def test_namespace_name_is_a_dns_label_of_at_most_63_characters(length: int) -> None:
    name = environment_namespace_name(namespace="ci", name="a" * length, uid="uid-1")
    assert len(name) <= 63
    assert DNS_LABEL.fullmatch(name), name


def test_truncation_never_leaves_a_double_dash() -> None:
    # The cut falls right after a dash in the environment's name.
    name = environment_namespace_name(namespace="ci", name="x" * 53 + "-" + "y" * 20, uid="uid-1")
    assert "--" not in name and DNS_LABEL.fullmatch(name)


def test_long_names_that_share_a_prefix_still_differ_by_hash() -> None:
    a = environment_namespace_name(namespace="ci", name="p" * 70 + "a", uid="uid-1")
    b = environment_namespace_name(namespace="ci", name="p" * 70 + "b", uid="uid-1")
    assert a != b


def test_namespace_name_of_a_dotted_environment_name_is_a_dns_label() -> None:
    assert DNS_LABEL.fullmatch(environment_namespace_name(namespace="ci", name="release.v2", uid="uid-1"))


# --- labels ------------------------------------------------------------------------------


def test_env_labels_link_back_to_the_owning_resource() -> None:
    assert env_labels(ENV) == {
        LABEL_MANAGED_BY: "testenv-operator",
        LABEL_ENV_NAME: "pr-1234",
        LABEL_ENV_NAMESPACE: "ci",
        LABEL_ENV_UID: ENV.uid,
    }


def test_component_labels_add_component_and_kind() -> None:
    labels = component_labels(ENV, "orders-db", "datastore")
    assert labels["testenv.dev/component"] == "orders-db" and labels["testenv.dev/kind"] == "datastore"
    assert env_labels(ENV).items() <= labels.items()


def test_labels_are_valid_for_a_long_environment_name() -> None:
    target = environment_namespace_name(namespace="ci", name="e" * 80, uid="u")
    env = EnvRef(namespace="ci", name="e" * 80, uid="u", target_namespace=target)
    for value in env_labels(env).values():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value


def test_namespace_is_labelled_with_owner_and_pod_security() -> None:
    ns = namespace(ENV, "restricted")
    labels = ns["metadata"]["labels"]
    assert ns["metadata"]["name"] == ENV.target_namespace
    assert labels[LABEL_ENV_UID] == ENV.uid and labels[LABEL_ENV_NAME] == "pr-1234"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_namespace_uses_the_configured_pod_security_level() -> None:
    labels = objects(level="baseline")["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"


def test_namespace_has_no_owner_reference() -> None:
    # Cross-namespace owner references are not allowed: labels and a finalizer link it instead.
    assert "ownerReferences" not in namespace(ENV, "restricted")["metadata"]


def test_owned_by_checks_the_uid_label() -> None:
    ns = namespace(ENV, "restricted")
    assert owned_by(ns, ENV.uid) is True
    assert owned_by(ns, "someone-else") is False
    assert owned_by({"metadata": {}}, ENV.uid) is False


# --- the bundle ---------------------------------------------------------------------------


def test_bundle_is_namespace_quota_limits_account_and_policy_in_order() -> None:
    built = namespace_objects(
        ENV,
        Isolation(),
        pod_security_level="restricted",
        operator_namespace="testenv-system",
        quota_defaults=QUOTA_DEFAULTS,
        container_defaults=CONTAINER_DEFAULTS,
    )
    assert [o["kind"] for o in built] == ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "NetworkPolicy"]


def test_bundle_without_network_policy_when_disabled() -> None:
    assert "NetworkPolicy" not in objects(Isolation(network_policy=False))


def test_everything_but_the_namespace_lives_in_it_with_our_labels() -> None:
    for kind, obj in objects().items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == ENV.target_namespace, kind
        assert env_labels(ENV).items() <= obj["metadata"]["labels"].items(), kind


def test_quota_defaults_apply_when_the_environment_sets_none() -> None:
    hard = resource_quota(ENV, Isolation(), QUOTA_DEFAULTS)["spec"]["hard"]
    assert hard == {
        "requests.cpu": "4",
        "limits.cpu": "4",
        "requests.memory": "8Gi",
        "limits.memory": "8Gi",
        "pods": "50",
    }


def test_quota_takes_the_environments_values_and_defaults_for_the_rest() -> None:
    isolation = Isolation.model_validate({"resourceQuota": {"cpu": 2, "pods": "30"}})
    hard = resource_quota(ENV, isolation, QUOTA_DEFAULTS)["spec"]["hard"]
    assert (hard["requests.cpu"], hard["limits.cpu"], hard["pods"], hard["limits.memory"]) == ("2", "2", "30", "8Gi")


def test_quota_values_are_strings() -> None:
    isolation = Isolation.model_validate({"resourceQuota": {"cpu": 2, "memory": 1024, "pods": 10}})
    assert all(isinstance(v, str) for v in resource_quota(ENV, isolation, QUOTA_DEFAULTS)["spec"]["hard"].values())


def test_limit_range_gives_every_container_limits_and_requests() -> None:
    [limit] = limit_range(ENV, "500m", "512Mi")["spec"]["limits"]
    assert limit["type"] == "Container"
    assert limit["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert set(limit["defaultRequest"]) == {"cpu", "memory"}


def test_default_service_account_mounts_no_token() -> None:
    account = default_service_account(ENV)
    assert account["metadata"]["name"] == "default"
    assert account["automountServiceAccountToken"] is False


def test_network_policy_selects_every_pod_for_ingress() -> None:
    spec = network_policy(ENV, "testenv-system")["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress"]


def test_network_policy_allows_the_environment_itself_and_the_operator_only() -> None:
    [rule] = network_policy(ENV, "testenv-system")["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "testenv-system"}}},
    ]


# --- env helpers shared by the builders ----------------------------------------------------


def test_env_var_name_upper_cases_and_replaces_dashes() -> None:
    assert env_var_name("payment-gateway") == "PAYMENT_GATEWAY_URL"
    assert env_var_name("orders-db", "HOST") == "ORDERS_DB_HOST"


def test_merge_env_lets_the_components_own_env_win() -> None:
    injected = [{"name": "A", "value": "injected"}, {"name": "B", "value": "injected"}]
    own = [{"name": "B", "value": "own"}]
    assert merge_env(injected, own) == [{"name": "A", "value": "injected"}, {"name": "B", "value": "own"}]
