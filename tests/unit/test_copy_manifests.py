"""A copy brings what its pod template references (ConfigMaps; Secrets only as
config.copySecrets allows), claims become emptyDir, the source's
ServiceAccount stays behind; a spec borrows one key of an allowed Secret.
Pure: the planner and builders, no cluster."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from plan_fixtures import (
    NS,
    SETTINGS,
    applied,
    component_status,
    make_spec,
    run_plan,
    suite,
    suite_status,
)
from pydantic import ValidationError
from testenv.build.copies import (
    ANNOTATION_CONFIG_HASH,
    MAX_SECRET_BYTES,
    SecretRule,
    references,
)
from testenv.build.services import CopySource
from testenv.models import EnvVar
from testenv.observe import Observed
from testenv.validate import validate

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVl"  # base64 of super-secret-value
PLAIN_VALUE = "super-secret-value"
COPIED = {"name": "api", "copyFrom": {"namespace": "staging", "deployment": "api"}}


def source_deployment(**pod: Any) -> dict[str, Any]:
    container = {
        "name": "api",
        "image": "ghcr.io/acme/api:1",
        "envFrom": [{"configMapRef": {"name": "api-config"}}],
        "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "api-db", "key": "password"}}}],
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/api"}, {"name": "data", "mountPath": "/data"}],
    }
    spec = {
        "serviceAccountName": "api-deployer",
        "containers": [container],
        "volumes": [
            {"name": "settings", "configMap": {"name": "api-files", "items": [{"key": "app.toml", "path": "a"}]}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "api-data"}},
            {"name": "token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"secret": {"name": "api-tls"}},
            ]}},
        ],
        **pod,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "staging", "uid": "u", "resourceVersion": "7"},
        "spec": {"selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": spec}},
    }


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "staging", "labels": {}}, "data": data}


def secret(name: str, labels: dict[str, str] | None = None, version: str = "1", **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "staging", "labels": labels or {}, "resourceVersion": version},
            "type": "Opaque", "data": data}


CONFIG_MAPS = {"api-config": config_map("api-config", MODE="copied"),
               "api-files": config_map("api-files", **{"app.toml": "x = 1"})}
SECRETS = {"api-db": secret("api-db", password=SECRET_VALUE), "api-tls": secret("api-tls", crt="Y3J0")}
ANY_SECRET = SETTINGS.model_copy(update={"copy_secrets": {"staging": SecretRule()}})


def source(deployment: dict[str, Any] | None = None, config_maps: dict[str, Any] | None = None,
           secrets: dict[str, Any] | None = None) -> CopySource:
    return CopySource(deployment=deployment or source_deployment(),
                      config_maps=CONFIG_MAPS if config_maps is None else config_maps,
                      secrets=SECRETS if secrets is None else secrets)


def plan_copy(copy_source: CopySource, settings: Any = ANY_SECRET, spec: Any = None) -> Any:
    return run_plan(spec or make_spec(services=[COPIED]), observed=Observed(copy_sources={"api": copy_source}),
                    settings=settings)


def pod_spec(p: Any) -> dict[str, Any]:
    [deployment] = [d for d in applied(p, "Deployment") if d["metadata"]["name"] == "api"]
    return deployment["spec"]["template"]["spec"]


def everything_said(p: Any) -> str:
    return json.dumps([p.status.wire(), [e.message for e in p.events]])


# --- what a pod template references ---------------------------------------------


def test_references_are_found_in_env_envfrom_volumes_projections_and_pull_secrets() -> None:
    spec = source_deployment(imagePullSecrets=[{"name": "pull"}],
                             initContainers=[{"name": "init", "envFrom": [{"secretRef": {"name": "init-env",
                                                                                          "optional": True}}]}])
    found = {(r.kind, r.name, r.where, r.keys, r.optional) for r in references(spec["spec"]["template"]["spec"])}
    assert found == {
        ("Secret", "init-env", "container init envFrom", (), True),
        ("ConfigMap", "api-config", "container api envFrom", (), False),
        ("Secret", "api-db", "container api env DB_PASSWORD", ("password",), False),
        ("ConfigMap", "api-files", "volume settings", ("app.toml",), False),
        ("Secret", "api-tls", "volume token", (), False),
        ("Secret", "pull", "imagePullSecrets", (), False),
    }


def test_the_clusters_root_ca_config_map_is_never_copied() -> None:
    spec = {"volumes": [{"name": "ca", "configMap": {"name": "kube-root-ca.crt"}}]}
    assert references(spec) == []


# --- ConfigMaps ------------------------------------------------------------------


def test_copy_brings_its_config_maps_under_their_names_before_the_deployment() -> None:
    p = plan_copy(source())
    kinds = [(o["kind"], o["metadata"]["name"]) for o in p.apply if o["kind"] in ("ConfigMap", "Deployment")]
    assert kinds == [("ConfigMap", "api-config"), ("ConfigMap", "api-files"), ("Deployment", "api")]
    config = applied(p, "ConfigMap")[0]
    assert config["metadata"]["namespace"] == NS
    assert config["data"] == {"MODE": "copied"}
    assert config["metadata"]["labels"]["testenv.dev/environment-uid"] == "uid-1234"
    assert config["metadata"]["annotations"]["testenv.dev/copied-from"] == "staging/api-config"


def test_the_environments_own_env_still_wins_over_copied_config() -> None:
    spec = make_spec(services=[{**COPIED, "env": [{"name": "MODE", "value": "ours"}]}])
    container = pod_spec(plan_copy(source(), spec=spec))["containers"][0]
    assert {"name": "MODE", "value": "ours"} in container["env"]
    assert container["envFrom"] == [{"configMapRef": {"name": "api-config"}}]  # MODE from it loses to env


def test_changed_config_rolls_the_copy_on_a_new_run() -> None:
    first = applied(plan_copy(source()), "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]
    changed = dict(CONFIG_MAPS, **{"api-config": config_map("api-config", MODE="changed")})
    second = applied(plan_copy(source(config_maps=changed)), "Deployment")[0]["spec"]["template"]["metadata"]
    assert first[ANNOTATION_CONFIG_HASH] != second["annotations"][ANNOTATION_CONFIG_HASH]


def test_a_missing_config_map_holds_the_copy_and_names_it() -> None:
    p = plan_copy(source(config_maps={"api-files": CONFIG_MAPS["api-files"], "api-config": None}))
    status = component_status(p, "api")
    assert status.message == ("ConfigMap staging/api-config (container api envFrom) not found; "
                              "create it in staging or mark the reference optional")
    assert applied(p, "Deployment") == [] and p.create == []
    assert p.wake_after is not None


def test_a_missing_key_holds_the_copy_and_names_it() -> None:
    p = plan_copy(source(config_maps={**CONFIG_MAPS, "api-files": config_map("api-files", other="1")}))
    assert component_status(p, "api").message == (
        "ConfigMap staging/api-files (volume settings) has no key 'app.toml'; add it or fix the reference")
    assert applied(p, "Deployment") == []


def test_a_missing_optional_config_map_does_not_hold_the_copy() -> None:
    deployment = source_deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["optional"] = True
    p = plan_copy(source(deployment, config_maps={**CONFIG_MAPS, "api-config": None}))
    assert component_status(p, "api").message == "starting"
    assert [o["metadata"]["name"] for o in applied(p, "ConfigMap")] == ["api-files"]


def test_a_config_map_named_like_the_operators_own_is_an_error() -> None:
    deployment = source_deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "payments-mappings"}}]
    cms = {**CONFIG_MAPS, "payments-mappings": config_map("payments-mappings")}
    p = plan_copy(source(deployment, config_maps=cms), spec=make_spec(services=[COPIED], stubs=[{"name": "payments"}]))
    assert p.status.phase == "Error"
    assert "spec.services[0].copyFrom: ConfigMap staging/payments-mappings" in p.status.message
    assert "stub payments's mappings" in p.status.message
    assert p.apply == [] and p.create == []


def test_two_copies_disagreeing_on_a_config_map_is_an_error() -> None:
    other = {"name": "worker", "copyFrom": {"namespace": "staging", "deployment": "worker"}}
    differing = source(config_maps={**CONFIG_MAPS, "api-config": config_map("api-config", MODE="other")})
    p = run_plan(make_spec(services=[COPIED, other]),
                 observed=Observed(copy_sources={"api": source(), "worker": differing}), settings=ANY_SECRET)
    assert p.status.phase == "Error"
    assert "spec.services[1].copyFrom: ConfigMap api-config differs from the one spec.services[0].copyFrom" \
        in p.status.message


# --- Secrets ---------------------------------------------------------------------


def test_without_a_secret_rule_a_referenced_secret_is_an_error_and_nothing_starts() -> None:
    p = plan_copy(source(secrets={}), settings=SETTINGS)
    assert p.status.phase == "Error"
    assert ("spec.services[0].copyFrom: service api: Secret staging/api-db (container api env DB_PASSWORD) is referenced, "
            "but copying Secrets from it is not allowed; an administrator can allow it in the operator's "
            "config.copySecrets.staging") in p.status.message
    assert "api-tls" in p.status.message
    assert p.apply == [] and p.create == []
    assert p.events[0].reason == "Error" and "config.copySecrets.staging" in p.events[0].message


def test_a_secret_outside_the_rules_names_is_an_error() -> None:
    settings = SETTINGS.model_copy(update={"copy_secrets": {"staging": SecretRule(names=["api-db"])}})
    p = plan_copy(source(secrets={"api-db": SECRETS["api-db"]}), settings=settings)
    assert p.status.phase == "Error"
    assert "Secret staging/api-tls (volume token) is referenced, but only names ['api-db'] may be copied" \
        in p.status.message
    assert "Secret staging/api-db" not in p.status.message


def test_a_secret_without_the_rules_labels_is_an_error() -> None:
    settings = SETTINGS.model_copy(update={"copy_secrets": {"staging": SecretRule(labels={"share": "yes"})}})
    labelled = {"api-db": secret("api-db", {"share": "yes"}, password=SECRET_VALUE), "api-tls": SECRETS["api-tls"]}
    p = plan_copy(source(secrets=labelled), settings=settings)
    assert p.status.phase == "Error"
    assert "Secret staging/api-tls (volume token) lacks the labels" in p.status.message
    assert "api-db" not in p.status.message


def test_a_secret_too_large_is_an_error() -> None:
    big = secret("api-db", password="A" * (MAX_SECRET_BYTES * 4 // 3 + 8))
    p = plan_copy(source(secrets={**SECRETS, "api-db": big}))
    assert p.status.phase == "Error"
    assert "Secret staging/api-db (container api env DB_PASSWORD) is larger than 256 KiB" in p.status.message


def test_allowed_secrets_are_created_once_under_content_names_and_referenced_so() -> None:
    p = plan_copy(source())
    created = {o["metadata"]["annotations"]["testenv.dev/copied-from"]: o for o in p.create}
    assert set(created) == {"staging/api-db", "staging/api-tls"}
    db = created["staging/api-db"]
    assert db["metadata"]["name"].startswith("api-db-") and db["immutable"] is True
    assert db["data"] == {"password": SECRET_VALUE} and db["metadata"]["namespace"] == NS
    assert applied(p, "Secret") == []  # never applied: the operator may not patch Secrets
    pod = pod_spec(p)
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": db["metadata"]["name"], "key": "password"}
    projected = next(v for v in pod["volumes"] if v["name"] == "token")["projected"]["sources"]
    assert projected == [{"secret": {"name": created["staging/api-tls"]["metadata"]["name"]}}]
    assert SECRET_VALUE not in everything_said(p) and PLAIN_VALUE not in everything_said(p)


def test_a_changed_secret_is_a_new_secret_and_rolls_the_copy() -> None:
    first = plan_copy(source())
    changed = plan_copy(source(secrets={**SECRETS, "api-db": secret("api-db", version="2", password="bmV3")}))
    names = {o["metadata"]["name"] for o in first.create}
    assert names != {o["metadata"]["name"] for o in changed.create}
    assert applied(first, "Deployment")[0] != applied(changed, "Deployment")[0]


def test_source_pull_secrets_follow_the_secret_rule() -> None:
    deployment = source_deployment(imagePullSecrets=[{"name": "staging-pull"}])
    allowed = plan_copy(source(deployment, secrets={**SECRETS, "staging-pull": secret("staging-pull", x="eA==")}))
    [pull] = [o for o in allowed.create if o["metadata"]["name"].startswith("staging-pull-")]
    assert pod_spec(allowed)["imagePullSecrets"] == [{"name": pull["metadata"]["name"]}]
    named_only = SETTINGS.model_copy(update={"copy_secrets": {"staging": SecretRule(names=["api-db", "api-tls"])}})
    left_out = plan_copy(source(deployment), settings=named_only)
    assert left_out.status.phase != "Error"
    assert "imagePullSecrets" not in pod_spec(left_out)
    assert any("image pull Secret staging-pull of the source left out" in n
               for n in component_status(left_out, "api").notes)


# --- what is handled on purpose -----------------------------------------------------


def test_claims_become_empty_dirs_and_the_service_account_stays_behind_as_the_status_says() -> None:
    p = plan_copy(source())
    pod = pod_spec(p)
    assert next(v for v in pod["volumes"] if v["name"] == "data") == {"name": "data", "emptyDir": {}}
    assert "serviceAccountName" not in pod and "serviceAccount" not in pod
    assert pod["automountServiceAccountToken"] is False
    projected = next(v for v in pod["volumes"] if v["name"] == "token")["projected"]["sources"]
    assert not any("serviceAccountToken" in s for s in projected)
    notes = component_status(p, "api").notes
    assert any(n.startswith("volume data: PersistentVolumeClaim api-data replaced by an emptyDir") for n in notes)
    assert any(n.startswith("ServiceAccount api-deployer of the source not used") for n in notes)
    assert any(n.startswith("volume token: its ServiceAccount token left out") for n in notes)
    assert any("ConfigMap api-config" in n and "Secret api-db (as api-db-" in n for n in notes)


def test_an_image_service_has_no_notes() -> None:
    p = run_plan(make_spec(services=[{"name": "web", "image": "nginx:1"}]))
    assert component_status(p, "web").notes is None
    assert "notes" not in p.status.wire()["components"][0]


# --- credentials: one key of an allowed Secret -------------------------------------------


CREDENTIAL = {"name": "STRIPE_KEY",
              "valueFrom": {"secretKeyRef": {"namespace": "shared-ci", "name": "stripe", "key": "api-key"}}}
SHARED = SETTINGS.model_copy(update={"copy_secrets": {"shared-ci": SecretRule(names=["stripe"])}})
STRIPE = {"metadata": {"name": "stripe", "namespace": "shared-ci", "labels": {}},
          "data": {"api-key": SECRET_VALUE, "other-key": "b3RoZXI="}}


def test_env_takes_value_or_value_from_not_both() -> None:
    with pytest.raises(ValidationError, match="set value or valueFrom, not both"):
        EnvVar.model_validate({**CREDENTIAL, "value": "x"})


def test_borrowing_from_a_namespace_not_allowed_names_the_field() -> None:
    spec = make_spec(tests=[suite("e2e", env=[{"name": "A", "value": "1"}, CREDENTIAL])])
    [error] = validate(spec, frozenset(), SETTINGS.copy_secrets)
    assert error.field == "spec.tests[0].env[1].valueFrom.secretKeyRef"
    assert "Secrets of namespace 'shared-ci' may not be used (allowed: none are configured)" in error.message
    assert "config.copySecrets" in error.message
    assert validate(spec, frozenset(), SHARED.copy_secrets) == []
    assert validate(spec, frozenset()) == []  # the CLI does not know the operator's configuration


def test_borrowing_a_name_the_rule_does_not_list_names_the_field() -> None:
    other = {**CREDENTIAL, "valueFrom": {"secretKeyRef": {**CREDENTIAL["valueFrom"]["secretKeyRef"], "name": "x"}}}
    spec = make_spec(services=[{"name": "api", "image": "a:1", "env": [other]}])
    [error] = validate(spec, frozenset(), SHARED.copy_secrets)
    assert error.field == "spec.services[0].env[0].valueFrom.secretKeyRef"
    assert "only names ['stripe'] of namespace 'shared-ci' may be used" in error.message


def test_a_suite_gets_only_the_borrowed_key_by_reference() -> None:
    spec = make_spec(tests=[suite("e2e", env=[CREDENTIAL])])
    p = run_plan(spec, observed=Observed(credentials={("shared-ci", "stripe"): STRIPE}), settings=SHARED)
    [job] = applied(p, "Job")
    [created] = [o for o in p.create if o["metadata"]["name"].startswith("credential-")]
    assert created["data"] == {"api-key": SECRET_VALUE}  # that key only
    assert created["metadata"]["annotations"]["testenv.dev/copied-from"] == "shared-ci/stripe#api-key"
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STRIPE_KEY"] == {"name": "STRIPE_KEY", "valueFrom": {"secretKeyRef": {
        "name": created["metadata"]["name"], "key": "api-key"}}}
    assert SECRET_VALUE not in json.dumps(p.apply) and SECRET_VALUE not in everything_said(p)


def test_services_and_seeds_borrow_keys_too() -> None:
    spec = make_spec(services=[{"name": "api", "image": "a:1", "env": [CREDENTIAL]}],
                     seed=[{"name": "fixtures", "image": "f:1", "env": [CREDENTIAL]}])
    p = run_plan(spec, observed=Observed(credentials={("shared-ci", "stripe"): STRIPE}), settings=SHARED)
    for obj in applied(p, "Deployment") + applied(p, "Job"):
        env = {e["name"]: e for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["STRIPE_KEY"]["valueFrom"]["secretKeyRef"]["name"].startswith("credential-"), obj["kind"]


def test_a_missing_borrowed_secret_or_key_holds_the_suite_and_names_it() -> None:
    spec = make_spec(tests=[suite("e2e", env=[CREDENTIAL])])
    missing = run_plan(spec, observed=Observed(credentials={("shared-ci", "stripe"): None}), settings=SHARED)
    assert suite_status(missing, "e2e").message == (
        "Secret shared-ci/stripe not found; create it or fix env[].valueFrom.secretKeyRef")
    no_key = {**STRIPE, "data": {"other-key": "b3RoZXI="}}
    keyless = run_plan(spec, observed=Observed(credentials={("shared-ci", "stripe"): no_key}), settings=SHARED)
    assert suite_status(keyless, "e2e").message == (
        "Secret shared-ci/stripe has no key 'api-key'; add it or fix env[].valueFrom.secretKeyRef")
    assert applied(missing, "Job") == applied(keyless, "Job") == []


def test_a_borrowed_secret_without_the_rules_labels_is_an_error() -> None:
    settings = SETTINGS.model_copy(update={"copy_secrets": {"shared-ci": SecretRule(labels={"share": "yes"})}})
    spec = make_spec(tests=[suite("e2e", env=[CREDENTIAL])])
    p = run_plan(spec, observed=Observed(credentials={("shared-ci", "stripe"): STRIPE}), settings=settings)
    assert p.status.phase == "Error"
    assert p.status.message.startswith("spec.tests[0].env[0].valueFrom.secretKeyRef: Secret shared-ci/stripe "
                                       "lacks the labels config.copySecrets.shared-ci requires (labels share=yes)")
    assert p.apply == [] and p.create == []


def test_a_borrowed_key_too_large_is_an_error() -> None:
    big = {**STRIPE, "data": {"api-key": base64.b64encode(b"x" * (MAX_SECRET_BYTES + 1)).decode()}}
    p = run_plan(make_spec(tests=[suite("e2e", env=[CREDENTIAL])]),
                 observed=Observed(credentials={("shared-ci", "stripe"): big}), settings=SHARED)
    assert p.status.phase == "Error" and "larger than 256 KiB" in p.status.message


def test_copies_leave_the_source_objects_untouched() -> None:
    deployment, cms, secrets = source_deployment(), copy.deepcopy(CONFIG_MAPS), copy.deepcopy(SECRETS)
    before = copy.deepcopy((deployment, cms, secrets))
    plan_copy(source(deployment, cms, secrets))
    assert (deployment, cms, secrets) == before


def test_a_reference_to_a_datastores_connection_secret_means_the_environments_own() -> None:
    deployment = source_deployment()
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-db-connection", "key": "password"}}}]
    pod["volumes"] = pod["volumes"][:2]  # no api-tls
    staging_own = {"orders-db-connection": secret("orders-db-connection", password=SECRET_VALUE)}
    spec = make_spec(services=[COPIED], datastores=[{"name": "orders-db", "engine": "postgres"}])
    p = plan_copy(source(deployment, secrets=staging_own), spec=spec)  # staging's namesake is never copied
    assert p.status.phase != "Error"
    env = {e["name"]: e for e in pod_spec(p)["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "orders-db-connection"
    assert [o["metadata"]["name"] for o in p.create] == ["orders-db-connection"]  # the datastore's, made by us
    assert p.create[0]["metadata"].get("annotations", {}).get("testenv.dev/copied-from") is None
    assert "Secret orders-db-connection is the environment's own (datastore orders-db's connection), not copied" \
        in component_status(p, "api").notes
    no_rule = plan_copy(source(deployment, secrets={}), settings=SETTINGS, spec=spec)
    assert no_rule.status.phase != "Error"  # no copy, so no rule needed


# --- when sources are read (the reconciler, against a counting fake) --------------------


class CountingKube:
    def __init__(self, copy_source: CopySource, secret_data: dict[str, str]) -> None:
        self.copy_source, self.secret_data = copy_source, secret_data
        self.source_reads: list[Any] = []
        self.secret_reads = 0

    def read_copy_source(self, *, namespace: str, deployment: str, rule: Any = None) -> CopySource:
        self.source_reads.append(rule)
        return self.copy_source

    def read_secret(self, *, namespace: str, name: str) -> dict[str, Any]:
        self.secret_reads += 1
        return {"metadata": {"name": name, "namespace": namespace}, "data": dict(self.secret_data)}


def test_sources_are_read_once_per_run_and_again_while_incomplete() -> None:
    from testenv.reconcile import Memory, _copy_sources, _credentials

    spec = make_spec(services=[COPIED], tests=[suite("e2e", env=[CREDENTIAL])])
    memory, kube = Memory(), CountingKube(source(), {"api-key": SECRET_VALUE})
    for _ in range(3):
        _copy_sources(spec, 1, kube, memory, ANY_SECRET)  # type: ignore[arg-type]
        _credentials(spec, 1, kube, memory)  # type: ignore[arg-type]
    assert len(kube.source_reads) == 1 and kube.secret_reads == 1
    assert kube.source_reads[0] == SecretRule()  # the namespace's rule goes with the read
    _copy_sources(spec, 2, kube, memory, ANY_SECRET)  # type: ignore[arg-type]
    _credentials(spec, 2, kube, memory)  # type: ignore[arg-type]
    assert len(kube.source_reads) == 2 and kube.secret_reads == 2  # a new run reads the source again
    incomplete = CountingKube(source(config_maps={**CONFIG_MAPS, "api-config": None}), {"other": "eA=="})
    memory = Memory()
    for _ in range(2):
        _copy_sources(spec, 1, incomplete, memory, ANY_SECRET)  # type: ignore[arg-type]
        _credentials(spec, 1, incomplete, memory)  # type: ignore[arg-type]
    assert len(incomplete.source_reads) == 2 and incomplete.secret_reads == 2  # looked for again
