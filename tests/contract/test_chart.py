"""The Helm chart against the test bed's API server: lint, render, dry-run,
install, and what the operator's ServiceAccount may and may not do."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_support import kubectl
from testbed_support import BIN, ROOT, Cluster, wait_for
from testenv.settings import Settings

pytestmark = pytest.mark.contract

CHART = ROOT / "charts" / "testenv-operator"
ALL_ON = CHART / "ci" / "all-on-values.yaml"
PEERING_CRDS = CHART / "crds" / "kopf-peerings.yaml"
# Kinds whose CRDs the test bed does not have (prometheus-operator).
FOREIGN_KINDS = {"ServiceMonitor"}


@pytest.fixture(scope="session")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


def helm(cluster: Cluster, home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # Helm's caches and config in a temporary home: nothing of the user's is read or written.
    env = dict(
        os.environ,
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    result = subprocess.run(
        [str(BIN / "helm"), "--kubeconfig", cluster.kubeconfig, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,  # failures are reported below, with helm's output
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(cluster: Cluster, home: Path, namespace: str, *args: str) -> list[dict[str, Any]]:
    out = helm(cluster, home, "template", "testenv", str(CHART), "--namespace", namespace, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"] if "value" in e}


def rules_with_wildcards(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for doc in docs
        if doc["kind"] in ("ClusterRole", "Role")
        for rule in doc.get("rules", [])
        if any("*" in item for key in ("apiGroups", "resources", "verbs", "resourceNames") for item in rule.get(key, []))
    ]


def dry_run_on_server(cluster: Cluster, docs: list[dict[str, Any]]) -> str:
    applied = [d for d in docs if d["kind"] not in FOREIGN_KINDS]
    result = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(applied), check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def peering_crds(cluster: Cluster) -> None:
    """The kopf peering CRDs, as `helm install` would create them from crds/."""
    kubectl(cluster, "apply", "--server-side", "-f", str(PEERING_CRDS))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/clusterkopfpeerings.kopf.dev", "crd/kopfpeerings.kopf.dev")


# --- lint and render -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", str(ALL_ON)]], ids=["defaults", "all-on"])
def test_chart_passes_strict_lint(cluster: Cluster, helm_home: Path, values: list[str]) -> None:
    helm(cluster, helm_home, "lint", "--strict", str(CHART), *values)


def test_default_render_is_accepted_by_the_api_server(cluster: Cluster, helm_home: Path, namespace: str) -> None:
    docs = render(cluster, helm_home, namespace)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"} <= kinds
    assert not kinds & {"ClusterKopfPeering", "ServiceMonitor", "ConfigMap", "Role", "RoleBinding"}, \
        "optional parts are off"
    out = dry_run_on_server(cluster, docs)
    assert "deployment.apps/testenv-testenv-operator created (server dry run)" in out


def test_everything_on_render_is_accepted_by_the_api_server(
    cluster: Cluster, helm_home: Path, namespace: str, peering_crds: None
) -> None:
    docs = render(cluster, helm_home, namespace, "-f", str(ALL_ON))
    kinds = {d["kind"] for d in docs}
    assert {"ClusterKopfPeering", "ServiceMonitor", "ConfigMap", "Role", "RoleBinding"} <= kinds
    out = dry_run_on_server(cluster, docs)
    assert "clusterkopfpeering.kopf.dev/testenv-all-on created (server dry run)" in out


def test_chart_crds_are_accepted_by_the_api_server(cluster: Cluster, helm_home: Path) -> None:
    # kopf's peering CRDs, which never change, stay in crds/; the TestEnvironment CRD is a template.
    crds = helm(cluster, helm_home, "show", "crds", str(CHART)).stdout
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(crds) if d}
    assert names == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    rendered = [d for d in render(cluster, helm_home, "testenv-system") if d["kind"] == "CustomResourceDefinition"]
    assert [d["metadata"]["name"] for d in rendered] == ["testenvironments.testenv.dev"]
    result = kubectl(cluster, "apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", "-",
                     input=crds + "\n---\n" + yaml.safe_dump(rendered[0]), check=False)
    assert result.returncode == 0, result.stderr


def test_chart_renders_the_generated_crd_with_the_release_labels_and_keep(cluster: Cluster, helm_home: Path) -> None:
    generated = yaml.safe_load((ROOT / "crds" / "testenvironment.yaml").read_text())
    rendered = one(render(cluster, helm_home, "testenv-system"), "CustomResourceDefinition")
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert rendered["metadata"]["labels"]["app.kubernetes.io/instance"] == "testenv"
    assert generated["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()
    assert {k: v for k, v in rendered.items() if k != "metadata"} == {k: v for k, v in generated.items() if k != "metadata"}
    assert "annotations" not in one(render(cluster, helm_home, "testenv-system", "--set", "crds.keep=false"),
                                    "CustomResourceDefinition")["metadata"]
    assert not [d for d in render(cluster, helm_home, "testenv-system", "--set", "crds.enabled=false")
                if d["kind"] == "CustomResourceDefinition"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ("replicaCount: two\n", "replicaCount"),
        ("replicas: 2\n", "replicas"),
        ("config:\n  podSecurityLevel: lax\n", "podSecurityLevel"),
        ("config:\n  maxActiveEnvironments: -1\n", "maxActiveEnvironments"),
        ("config:\n  shinyNewSetting: true\n", "shinyNewSetting"),
        ("config:\n  podTolerations: [{key: a, operator: Sometimes}]\n", "operator"),
        ("config:\n  imagePullSecrets: [{name: regcred}]\n", "imagePullSecrets"),
    ],
    ids=["replicaCount-not-a-number", "unknown-top-level-key", "unknown-pod-security-level",
         "negative-limit", "unknown-setting", "unknown-toleration-operator", "pull-secret-not-a-name"],
)
def test_schema_rejects_bad_values_at_template_time(
    cluster: Cluster, helm_home: Path, tmp_path: Path, values: str, complaint: str
) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(values)
    result = helm(cluster, helm_home, "template", "testenv", str(CHART), "-f", str(bad), check=False)
    assert result.returncode != 0, f"accepted:\n{values}"
    assert "schema" in result.stderr and complaint in result.stderr, result.stderr


def test_service_monitor_without_metrics_is_refused(cluster: Cluster, helm_home: Path) -> None:
    result = helm(cluster, helm_home, "template", "testenv", str(CHART), "--set", "metrics.enabled=false",
                  "--set", "metrics.serviceMonitor.enabled=true", check=False)
    assert result.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.enabled" in result.stderr


# --- what the rendered Deployment tells the operator ---------------------------------------------------


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the operator reads from exactly this environment."""
    for name in [n for n in os.environ if n.startswith("TESTENV_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_every_setting_reaches_the_operator_with_its_default(
    cluster: Cluster, helm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(render(cluster, helm_home, "testenv-system"))
    # The bucket's keys come from config.resultsS3CredentialsSecret, when one is named.
    from_secret = {"TESTENV_RESULTS_S3_ACCESS_KEY_ID", "TESTENV_RESULTS_S3_SECRET_ACCESS_KEY"}
    expected = {f"TESTENV_{name.upper()}" for name in Settings.model_fields} - from_secret
    assert expected <= set(env), f"not set by the chart: {sorted(expected - set(env))}"
    settings = settings_from(env, monkeypatch)
    defaults = Settings.model_construct()
    for name in Settings.model_fields:
        want = "testenv-system" if name == "operator_namespace" else getattr(defaults, name)
        assert getattr(settings, name) == want, name


def test_configured_values_reach_the_operator(
    cluster: Cluster, helm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(render(cluster, helm_home, "platform", "-f", str(ALL_ON)))
    settings = settings_from(env, monkeypatch)
    assert settings.operator_namespace == "platform"
    assert str(settings.engine_images["postgres"]) == "registry.example.com/postgres:16"
    assert settings.engine_images["redis"] == "redis:7", "unset engines keep the operator's image"
    assert settings.copy_allowlist == frozenset({"default"})
    assert settings.copy_secrets["default"].names == ["api-config"]
    assert settings.copy_secrets["default"].labels == {"testenv.dev/shareable": "true"}
    assert settings.pod_security_level == "baseline"
    assert (settings.default_quota_cpu, settings.default_quota_pods) == ("8", "100")
    assert settings.max_active_environments == 1_000_000, "large numbers are not rendered as 1e+06"
    assert settings.delete_resource_after_collection is True
    assert (settings.namespace_prefix, settings.field_manager) == ("ci", "testenv-ci")
    assert env["TESTENV_HEALTH_PORT"] == "8081" and env["TESTENV_METRICS_PORT"] == "9191"
    # The bucket's keys reach the operator from the named Secret, never as values.
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(
        render(cluster, helm_home, "platform", "-f", str(ALL_ON)))["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert from_secret["TESTENV_RESULTS_S3_ACCESS_KEY_ID"] == {"name": "results-bucket", "key": "accessKeyId"}
    assert from_secret["TESTENV_RESULTS_S3_SECRET_ACCESS_KEY"] == {"name": "results-bucket", "key": "secretAccessKey"}
    assert settings.results_store == "s3" and settings.results_s3_bucket == "ci-results"
    placement = settings.pod_placement()
    assert dict(placement.node_selector) == {"testenv.dev/pool": "ci"}
    assert [t.wire() for t in placement.tolerations] == [
        {"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]
    assert placement.image_pull_secrets == ("regcred", "mirror-cred")


def test_pull_secret_access_is_rendered_by_name_only(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "platform", "-f", str(ALL_ON))
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-pull-secrets"))
    assert role["metadata"]["namespace"] == "platform", "read only in the operator's own namespace"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": ["regcred", "mirror-cred"], "verbs": ["get"]}]
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"])
    assert binding["metadata"]["namespace"] == "platform"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    copies = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-pull-secret-copies"))
    assert copies["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                "resourceNames": ["regcred", "mirror-cred"], "verbs": ["patch"]}]


def test_secret_copying_is_rendered_per_source_namespace_and_by_name(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "platform", "-f", str(ALL_ON),
                  "--set-json", 'config.copySecrets={"default":{"names":["api-config"]},"shared-ci":{}}')
    roles = {d["metadata"]["namespace"]: d for d in docs
             if d["kind"] == "Role" and d["metadata"]["name"].endswith("-copy-secrets")}
    assert set(roles) == {"default", "shared-ci"}
    assert roles["default"]["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                          "resourceNames": ["api-config"], "verbs": ["get"]}]
    assert roles["shared-ci"]["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-copy-secrets")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["default", "shared-ci"]
    assert not any(d["kind"] == "Role" and d["metadata"]["name"].endswith("-copy-secrets")
                   for d in render(cluster, helm_home, "platform")), "no config.copySecrets: no Secret is read"


def test_one_replica_runs_standalone(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "testenv-system")
    env = env_of(docs)
    assert env["TESTENV_STANDALONE"] == "true"
    assert "TESTENV_PEERING" not in env
    assert not [d for d in docs if d["kind"] == "ClusterKopfPeering" or d["metadata"]["name"].endswith("-peering")]
    assert one(docs, "Deployment")["spec"]["strategy"]["type"] == "Recreate", "never two standalone operators at once"


@pytest.mark.parametrize("values", [["--set", "replicaCount=2"], ["--set", "peering.enabled=true"]],
                         ids=["two-replicas", "peering-enabled"])
def test_replicas_coordinate_through_kopf_peering(cluster: Cluster, helm_home: Path, values: list[str]) -> None:
    docs = render(cluster, helm_home, "testenv-system", *values)
    env = env_of(docs)
    peering = one(docs, "ClusterKopfPeering")
    assert env["TESTENV_STANDALONE"] == "false"
    assert env["TESTENV_PEERING"] == peering["metadata"]["name"]
    assert env["TESTENV_PEERING_PRIORITY"] == "auto"  # distinct per replica, so exactly one acts
    role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-peering"))
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [{"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
                      "resourceNames": [peering["metadata"]["name"]], "verbs": ["get", "patch"]}]


def test_operator_pod_is_locked_down(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "testenv-system")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    main = container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = main["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert main["resources"]["requests"] and main["resources"]["limits"]
    assert main["image"] == "ghcr.io/testenv-dev/testenv-operator:0.1.0"


def test_service_monitor_scrapes_the_metrics_service(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "testenv-system", "-f", str(ALL_ON))
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["testenv-system"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_dashboard_ships_in_a_grafana_sidecar_config_map(cluster: Cluster, helm_home: Path) -> None:
    docs = render(cluster, helm_home, "testenv-system", "-f", str(ALL_ON))
    dashboard = one(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert yaml.safe_load(dashboard["data"]["testenv.json"])["uid"] == "testenv-operator"


@pytest.mark.parametrize("values", [[], ["-f", str(ALL_ON)]], ids=["defaults", "all-on"])
def test_rbac_has_no_wildcards(cluster: Cluster, helm_home: Path, values: list[str]) -> None:
    docs = render(cluster, helm_home, "testenv-system", *values)
    assert [d for d in docs if d["kind"] == "ClusterRole"]
    assert not rules_with_wildcards(docs)


# --- installed into the test bed -------------------------------------------------------------------


def _create_namespace(cluster: Cluster, name: str) -> None:
    kubectl(cluster, "create", "namespace", name)


@pytest.fixture(scope="module")
def release(cluster: Cluster, helm_home: Path, peering_crds: None, crd: None) -> Iterator[dict[str, str]]:
    """The chart installed into a fresh namespace (peering on, one copy source); uninstalled after."""
    suffix = uuid.uuid4().hex[:6]
    info = {
        "name": f"chart-{suffix}",
        "namespace": f"t-chart-{suffix}",
        "source": f"t-chart-src-{suffix}",
        "other": f"t-chart-other-{suffix}",
        "pull_secret": f"regcred-{suffix}",
        "shared": f"t-chart-shared-{suffix}",
        "copied_secret": f"api-db-{suffix}",
    }
    info["fullname"] = f"{info['name']}-testenv-operator"
    info["sa"] = f"system:serviceaccount:{info['namespace']}:{info['fullname']}"
    for ns in ("namespace", "source", "other", "shared"):
        _create_namespace(cluster, info[ns])
    try:
        helm(cluster, helm_home, "install", info["name"], str(CHART), "--namespace", info["namespace"],
             # The test bed's TestEnvironment CRD is kubectl's (tests/conftest.py) and shared;
             # the chart's own handling of it is tested with a CRD of its own (below).
             "--set", "crds.enabled=false",
             "--set", "peering.enabled=true", "--set", f"config.copyAllowlist={{{info['source']}}}",
             "--set", f"config.imagePullSecrets={{{info['pull_secret']}}}",
             "--set-json", (f'config.copySecrets={{"{info["source"]}":{{"names":["{info["copied_secret"]}"]}},'
                            f'"{info["shared"]}":{{}}}}'),
             "--wait", "--timeout", "120s")
        yield info
        helm(cluster, helm_home, "uninstall", info["name"], "--namespace", info["namespace"],
             "--wait", "--timeout", "120s")

        def roles_gone() -> bool:
            left = kubectl(cluster, "get", "clusterroles,clusterrolebindings,clusterkopfpeerings",
                           "-l", f"app.kubernetes.io/instance={info['name']}", "-o", "name").stdout
            return not left.strip()

        wait_for(roles_gone, timeout=60, what="cluster-scoped objects of the release to be deleted")
    finally:
        helm(cluster, helm_home, "uninstall", info["name"], "--namespace", info["namespace"],
             "--ignore-not-found", check=False)
        for ns in ("namespace", "source", "other", "shared"):
            kubectl(cluster, "delete", "namespace", info[ns], "--wait=false", "--ignore-not-found", check=False)


def test_install_creates_the_operator_and_its_access(cluster: Cluster, release: dict[str, str]) -> None:
    ns, full = release["namespace"], release["fullname"]
    kubectl(cluster, "-n", ns, "get", f"deployment/{full}", f"serviceaccount/{full}", f"service/{full}-metrics")
    deployment = yaml.safe_load(kubectl(cluster, "-n", ns, "get", f"deployment/{full}", "-o", "yaml").stdout)
    assert deployment["status"].get("availableReplicas") == 1
    for concern in ("testenvironments", "kopf", "environments", "results", "copy-sources", "peering",
                    "pull-secret-copies"):
        kubectl(cluster, "get", f"clusterrole/{full}-{concern}")
    for concern in ("testenvironments", "kopf", "environments", "results", "peering", "pull-secret-copies"):
        binding = yaml.safe_load(kubectl(cluster, "get", f"clusterrolebinding/{full}-{concern}", "-o", "yaml").stdout)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": full, "namespace": ns}]
    kubectl(cluster, "-n", release["source"], "get", f"rolebinding/{full}-copy-source")
    kubectl(cluster, "-n", ns, "get", f"role/{full}-pull-secrets", f"rolebinding/{full}-pull-secrets")
    kubectl(cluster, "get", f"clusterkopfpeering/{full}")


def test_installed_cluster_roles_have_no_wildcards(cluster: Cluster, release: dict[str, str]) -> None:
    roles = yaml.safe_load(kubectl(cluster, "get", "clusterroles", "-l",
                                   f"app.kubernetes.io/instance={release['name']}", "-o", "yaml").stdout)["items"]
    assert len(roles) == 7
    assert not rules_with_wildcards(roles)


def can_i(cluster: Cluster, release: dict[str, str], *args: str) -> bool:
    result = kubectl(cluster, "auth", "can-i", f"--as={release['sa']}", *args, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


ALLOWED = [
    ("create", "namespaces"),
    ("delete", "namespaces"),
    ("patch", "testenvironments.testenv.dev", "--subresource=status", "-A"),
    ("patch", "testenvironments.testenv.dev", "-A"),
    ("watch", "testenvironments.testenv.dev", "-A"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "deployments.apps", "-A"),
    ("watch", "jobs.batch", "-A"),
    ("delete", "jobs.batch", "-A"),
    ("patch", "networkpolicies.networking.k8s.io", "-A"),
    ("create", "secrets", "-A"),
    ("create", "events", "-A"),
    ("create", "events.events.k8s.io", "-A"),
    ("list", "pods", "-A"),
    ("watch", "pods", "-A"),
    ("patch", "pods", "-A"),  # a suite's pods stopped at the environment's deadline
    ("watch", "events", "-A"),
    ("get", "pods", "--subresource=log", "-A"),
]

DENIED = [
    ("get", "secrets", "-A"),
    ("get", "configmaps", "-A"),
    ("list", "secrets", "-A"),
    ("watch", "secrets", "-A"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-A"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts", "-A"),
    ("create", "pods", "-A"),
    ("delete", "pods", "-A"),
    ("create", "pods", "--subresource=exec", "-A"),
    ("delete", "deployments.apps", "-A"),
    ("update", "testenvironments.testenv.dev", "-A"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("*", "*", "-A"),
]


@pytest.mark.parametrize("check", ALLOWED, ids=[" ".join(c) for c in ALLOWED])
def test_operator_account_can(cluster: Cluster, release: dict[str, str], check: tuple[str, ...]) -> None:
    assert can_i(cluster, release, *check)


@pytest.mark.parametrize("check", DENIED, ids=[" ".join(c) for c in DENIED])
def test_operator_account_cannot(cluster: Cluster, release: dict[str, str], check: tuple[str, ...]) -> None:
    assert not can_i(cluster, release, *check)


def test_copy_sources_are_readable_only_where_allowed(cluster: Cluster, release: dict[str, str]) -> None:
    for verb, resource in (("get", "deployments.apps"), ("list", "services"), ("get", "configmaps")):
        assert can_i(cluster, release, verb, resource, "-n", release["source"])
        assert not can_i(cluster, release, verb, resource, "-n", release["other"])
    # By name only: no ConfigMap of a source namespace is listed or watched.
    for verb in ("list", "watch", "update"):
        assert not can_i(cluster, release, verb, "configmaps", "-n", release["source"]), verb


def test_secrets_are_readable_only_as_config_copy_secrets_allows(cluster: Cluster, release: dict[str, str]) -> None:
    source, shared, other, name = release["source"], release["shared"], release["other"], release["copied_secret"]
    # A rule with names: those, and no other Secret of the namespace.
    assert can_i(cluster, release, "get", f"secrets/{name}", "-n", source)
    assert not can_i(cluster, release, "get", "secrets/someone-elses", "-n", source)
    # A rule without names: any Secret of that namespace, by name.
    assert can_i(cluster, release, "get", "secrets/anything", "-n", shared)
    # No rule: nothing, whatever the name.
    assert not can_i(cluster, release, "get", f"secrets/{name}", "-n", other)
    for ns in (source, shared):
        for verb in ("list", "watch", "update", "patch", "delete"):
            assert not can_i(cluster, release, verb, "secrets", "-n", ns), (verb, ns)


def test_peering_object_is_writable_only_by_name(cluster: Cluster, release: dict[str, str]) -> None:
    assert can_i(cluster, release, "patch", f"clusterkopfpeerings.kopf.dev/{release['fullname']}")
    assert not can_i(cluster, release, "patch", "clusterkopfpeerings.kopf.dev/someone-else")
    assert can_i(cluster, release, "watch", "clusterkopfpeerings.kopf.dev")


def test_pull_secrets_are_readable_by_name_in_the_operators_namespace_only(
    cluster: Cluster, release: dict[str, str]
) -> None:
    ns, other, secret = release["namespace"], release["other"], release["pull_secret"]
    assert can_i(cluster, release, "get", f"secrets/{secret}", "-n", ns)
    assert not can_i(cluster, release, "get", "secrets/someone-elses", "-n", ns)
    assert not can_i(cluster, release, "get", f"secrets/{secret}", "-n", other)
    for verb in ("list", "watch", "update", "delete"):
        assert not can_i(cluster, release, verb, "secrets", "-n", ns), verb


def test_pull_secret_copies_are_writable_by_name_only(cluster: Cluster, release: dict[str, str]) -> None:
    """Copies go into environment namespaces, created at run time: the name is the limit."""
    other, secret = release["other"], release["pull_secret"]
    assert can_i(cluster, release, "create", "secrets", "-n", other)
    assert can_i(cluster, release, "patch", f"secrets/{secret}", "-n", other)
    assert not can_i(cluster, release, "patch", "secrets/someone-elses", "-n", other)
    assert not can_i(cluster, release, "get", f"secrets/{secret}", "-n", other)


# --- the CRD upgrades with the chart ---------------------------------------------------------------


def _chart_with_crd(tmp: Path, crd: dict[str, Any], label: str) -> Path:
    """A copy of the chart whose CRD template is made, by the same script `make crds` runs, from `crd`."""
    crds, chart = tmp / f"crds-{label}", tmp / f"chart-{label}"
    crds.mkdir()
    (crds / "testenvironment.yaml").write_text(yaml.safe_dump(crd, sort_keys=False))
    shutil.copytree(CHART, chart)
    made = subprocess.run(["bash", str(ROOT / "hack" / "sync-chart-crds.sh"), "--crds", str(crds), "--chart", str(chart)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return chart


def _renamed_crd(suffix: str) -> tuple[dict[str, Any], str, str]:
    """The generated CRD under a group and names of a test's own, so the test
    bed's shared CRD (and `kubectl get tenv`) is not touched: (crd, group, kind)."""
    group, plural, kind = f"t{suffix}.testenv.dev", f"testenvironments{suffix}", f"TestEnvironmentX{suffix}"
    crd = yaml.safe_load((ROOT / "crds" / "testenvironment.yaml").read_text())
    crd["metadata"]["name"], crd["spec"]["group"] = f"{plural}.{group}", group
    crd["spec"]["names"] = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                            "singular": f"testenvironment{suffix}"}
    return crd, group, kind


def test_helm_upgrade_applies_a_changed_crd_and_uninstall_keeps_it(
    cluster: Cluster, helm_home: Path, tmp_path: Path
) -> None:
    """The chart's CRD (the generated schema, under a group and names of this
    test's own so the test bed's shared CRD, and `kubectl get tenv`, are not
    touched) gains a field in an upgrade: the API server keeps that field from
    then on, where before it pruned it; and uninstalling leaves the CRD and its
    objects."""
    suffix = uuid.uuid4().hex[:6]
    old, group, kind = _renamed_crd(suffix)
    crd_name = old["metadata"]["name"]
    release, ns = f"crd-{suffix}", f"t-crd-{suffix}"
    new = yaml.safe_load(yaml.safe_dump(old))
    for version in new["spec"]["versions"]:
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["upgradeProbe"] = {
            "type": "string", "description": "A field only the upgraded chart's CRD has."}
    old_chart, new_chart = _chart_with_crd(tmp_path, old, "old"), _chart_with_crd(tmp_path, new, "new")

    def environment(name: str) -> str:
        return yaml.safe_dump({"apiVersion": f"{group}/v1alpha1", "kind": kind,
                               "metadata": {"name": name, "namespace": ns},
                               "spec": {"tests": [{"name": "t", "image": "i"}], "upgradeProbe": "kept"}})

    def stored_probe(name: str) -> str | None:
        got = kubectl(cluster, "get", crd_name, name, "-n", ns, "-o", "yaml", check=False)
        return yaml.safe_load(got.stdout)["spec"].get("upgradeProbe") if got.returncode == 0 else None

    kubectl(cluster, "create", "namespace", ns)
    try:
        helm(cluster, helm_home, "install", release, str(old_chart), "--namespace", ns)
        kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd_name}")
        installed = yaml.safe_load(kubectl(cluster, "get", "crd", crd_name, "-o", "yaml").stdout)
        assert installed["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
        assert installed["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        # Before the upgrade the API server prunes the field it does not know
        # (a plain create: server-side apply refuses an undeclared field outright).
        applied = kubectl(cluster, "create", "--validate=false", "-f", "-", input=environment("before"), check=False)
        assert applied.returncode == 0, applied.stderr
        assert stored_probe("before") is None

        helm(cluster, helm_home, "upgrade", release, str(new_chart), "--namespace", ns)
        upgraded = yaml.safe_load(kubectl(cluster, "get", "crd", crd_name, "-o", "yaml").stdout)
        schema = upgraded["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        assert "upgradeProbe" in schema, "helm upgrade did not apply the changed CRD"

        # The API server serves the new schema moments after the CRD changes.
        def kept() -> bool:
            kubectl(cluster, "apply", "--server-side", "-f", "-", input=environment("after"), check=False)
            return stored_probe("after") == "kept"

        wait_for(kept, timeout=60, interval=1, what="the upgraded CRD's field to be stored")

        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--wait", "--timeout", "120s")
        left = kubectl(cluster, "get", "crd", crd_name, "-o", "name", check=False)
        assert left.returncode == 0 and left.stdout.strip(), "uninstalling deleted the CRD"
        assert stored_probe("after") == "kept", "the TestEnvironment went with the release"
    finally:
        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--ignore-not-found", check=False)
        kubectl(cluster, "delete", "crd", crd_name, "--ignore-not-found", "--wait=false", check=False)
        kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def test_uninstall_deletes_the_crd_only_when_asked_with_crds_keep_false(
    cluster: Cluster, helm_home: Path, tmp_path: Path
) -> None:
    """`crds.keep=false` is the way to have uninstall take the CRD (and with it
    every TestEnvironment): asked for, it does; the default keeps it (above)."""
    suffix = uuid.uuid4().hex[:6]
    crd, _, _ = _renamed_crd(suffix)
    crd_name = crd["metadata"]["name"]
    release, ns = f"crd-drop-{suffix}", f"t-crd-drop-{suffix}"
    chart = _chart_with_crd(tmp_path, crd, "drop")
    kubectl(cluster, "create", "namespace", ns)
    try:
        helm(cluster, helm_home, "install", release, str(chart), "--namespace", ns, "--set", "crds.keep=false")
        kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd_name}")
        installed = yaml.safe_load(kubectl(cluster, "get", "crd", crd_name, "-o", "yaml").stdout)
        assert "helm.sh/resource-policy" not in (installed["metadata"].get("annotations") or {})
        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--wait", "--timeout", "120s")
        wait_for(lambda: kubectl(cluster, "get", "crd", crd_name, "-o", "name", check=False).returncode != 0,
                 timeout=60, interval=0.5, what="the CRD to go with the release")
    finally:
        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--ignore-not-found", check=False)
        kubectl(cluster, "delete", "crd", crd_name, "--ignore-not-found", "--wait=false", check=False)
        kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def test_a_crd_that_kubectl_manages_is_left_as_it_is(cluster: Cluster, helm_home: Path, crd: None) -> None:
    """Helm cannot adopt an object another manager made (the test bed's CRD,
    applied by kubectl, or one an earlier chart installed from crds/): the
    chart installs without it, leaves it unchanged and says how to hand it over."""
    suffix = uuid.uuid4().hex[:6]
    release, ns = f"crd-kept-{suffix}", f"t-crd-kept-{suffix}"
    name = "testenvironments.testenv.dev"
    # The CRD as kubectl alone manages it: an earlier release on this cluster
    # (the real-node chart test, whose CRD is kept on uninstall) may have left
    # Helm's ownership on it.
    kubectl(cluster, "annotate", "crd", name, "meta.helm.sh/release-name-", "meta.helm.sh/release-namespace-")
    kubectl(cluster, "label", "crd", name, "app.kubernetes.io/managed-by-")
    kubectl(cluster, "create", "namespace", ns)
    try:
        installed = helm(cluster, helm_home, "install", release, str(CHART), "--namespace", ns)
        assert "left as it is" in installed.stdout and f"meta.helm.sh/release-name={release}" in installed.stdout
        meta = yaml.safe_load(kubectl(cluster, "get", "crd", name, "-o", "yaml").stdout)["metadata"]
        assert not any(key.startswith("meta.helm.sh/") for key in meta.get("annotations") or {}), meta
        assert "helm" not in {m["manager"] for m in meta.get("managedFields", [])}
        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--wait", "--timeout", "120s")
        kubectl(cluster, "get", "crd", name)
    finally:
        helm(cluster, helm_home, "uninstall", release, "--namespace", ns, "--ignore-not-found", check=False)
        kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
