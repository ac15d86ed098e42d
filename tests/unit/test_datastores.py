"""Datastore builders: connection Secret, Deployment and Service per engine."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from testenv.build.common import (
    LABEL_COMPONENT,
    LABEL_KIND,
    EnvRef,
    selector_labels,
    service_selector,
)
from testenv.build.datastores import (
    SECRET_KEYS,
    connection,
    datastore_image,
    datastore_objects,
    datastore_secret,
    generate_password,
    url_env,
)
from testenv.models import Datastore, Engine
from testenv.settings import Settings

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")
PASSWORD = "p@ss:w/rd?#&%+ x"
ENGINES = list(Engine)
IMAGES = dict(Settings().engine_images)


def ds(engine: Engine | str = Engine.POSTGRES, **kw: Any) -> Datastore:
    return Datastore(name=kw.pop("name", "orders-db"), engine=engine, **kw)


def objects(engine: Engine | str, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    d = ds(engine, **kw)
    deployment, service = datastore_objects(d, ENV, datastore_image(d, IMAGES))
    return deployment, service


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


# --- image -----------------------------------------------------------------


def test_image_is_the_configured_default_without_version() -> None:
    assert datastore_image(ds(Engine.POSTGRES), IMAGES) == "postgres:16"


def test_version_replaces_the_tag() -> None:
    assert datastore_image(ds(Engine.REDIS, version="7.2-alpine"), IMAGES) == "redis:7.2-alpine"


def test_version_keeps_a_registry_port_and_drops_a_digest() -> None:
    images = {Engine.MYSQL: "registry.local:5000/lib/mysql:8.4@sha256:" + "a" * 64}
    assert datastore_image(ds(Engine.MYSQL, version="9.0"), images) == "registry.local:5000/lib/mysql:9.0"


def test_version_tags_an_untagged_image() -> None:
    assert datastore_image(ds(Engine.MONGODB, version="6"), {Engine.MONGODB: "mongo"}) == "mongo:6"


# --- connection -------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "url"),
    [
        (Engine.POSTGRES, "postgresql://testenv:s3cret@orders-db:5432/orders_db"),
        (Engine.MYSQL, "mysql://testenv:s3cret@orders-db:3306/orders_db"),
        (Engine.REDIS, "redis://default:s3cret@orders-db:6379/0"),
        (Engine.MONGODB, "mongodb://testenv:s3cret@orders-db:27017/orders_db?authSource=admin"),
    ],
)
def test_url_has_the_engines_usual_form(engine: Engine, url: str) -> None:
    assert connection(ds(engine), "s3cret")["url"] == url


@pytest.mark.parametrize("engine", ENGINES)
def test_url_quotes_a_password_with_special_characters(engine: Engine) -> None:
    url = connection(ds(engine), PASSWORD)["url"]
    parts = urlsplit(url)
    assert parts.hostname == "orders-db"
    assert unquote(parts.password or "") == PASSWORD
    assert PASSWORD not in url


PORTS = [(Engine.POSTGRES, 5432), (Engine.MYSQL, 3306), (Engine.REDIS, 6379), (Engine.MONGODB, 27017)]


@pytest.mark.parametrize(("engine", "port"), PORTS)
def test_host_is_the_service_and_port_the_engines(engine: Engine, port: int) -> None:
    conn = connection(ds(engine), "x")
    assert (conn["host"], conn["port"]) == ("orders-db", str(port))


def test_database_defaults_to_the_name_with_underscores() -> None:
    assert connection(ds(Engine.POSTGRES), "x")["database"] == "orders_db"


def test_database_is_taken_from_the_spec() -> None:
    conn = connection(ds(Engine.MYSQL, database="orders_test"), "x")
    assert conn["database"] == "orders_test"
    assert conn["url"].endswith("/orders_test")


def test_redis_database_is_the_index_in_the_url() -> None:
    assert connection(ds(Engine.REDIS), "x")["database"] == "0"


def test_connection_can_point_at_another_host_and_port() -> None:
    conn = connection(ds(Engine.POSTGRES), "x", host="127.0.0.1", port=15432)
    assert conn["url"] == "postgresql://testenv:x@127.0.0.1:15432/orders_db"
    assert conn["port"] == "15432"


def test_generated_passwords_are_long_url_safe_and_fresh() -> None:
    a, b = generate_password(), generate_password()
    assert a != b and len(a) >= 24
    assert connection(ds(Engine.POSTGRES), a)["url"].count(a) == 1  # nothing to quote


# --- secret -----------------------------------------------------------------


def test_secret_is_named_after_the_datastore_and_holds_every_key() -> None:
    secret = datastore_secret(ds(Engine.POSTGRES), ENV, PASSWORD)
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "orders-db-connection"
    assert secret["metadata"]["namespace"] == ENV.target_namespace
    assert set(secret["stringData"]) == set(SECRET_KEYS)
    assert secret["stringData"]["password"] == PASSWORD


def test_secret_is_labelled_as_the_datastore() -> None:
    labels = datastore_secret(ds(), ENV, "x")["metadata"]["labels"]
    assert labels[LABEL_COMPONENT] == "orders-db"
    assert labels[LABEL_KIND] == "datastore"


def test_url_env_reads_the_url_key_of_the_secret() -> None:
    assert url_env(ds(name="orders-db")) == {
        "name": "ORDERS_DB_URL",
        "valueFrom": {"secretKeyRef": {"name": "orders-db-connection", "key": "url"}},
    }


# --- deployment and service -------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_objects_are_a_deployment_and_a_service_without_the_secret(engine: Engine) -> None:
    built = datastore_objects(ds(engine), ENV, "img:1")
    assert [o["kind"] for o in built] == ["Deployment", "Service"]
    assert all(o["metadata"]["name"] == "orders-db" for o in built)


@pytest.mark.parametrize("engine", ENGINES)
def test_password_never_appears_in_the_deployment(engine: Engine) -> None:
    d = ds(engine)
    secret = datastore_secret(d, ENV, PASSWORD)
    text = json.dumps(datastore_objects(d, ENV, "img:1"))
    assert secret["stringData"]["password"] not in text
    assert secret["stringData"]["url"] not in text
    # Only non-secret literals: every credential is a secretKeyRef.
    literal = {e["name"] for e in container(objects(engine)[0])["env"] if "value" in e}
    assert literal <= {"PGDATA"}


@pytest.mark.parametrize(
    ("engine", "names"),
    [
        (Engine.POSTGRES, {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}),
        (Engine.MYSQL, {"MYSQL_ROOT_PASSWORD", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE"}),
        (Engine.REDIS, {"REDIS_PASSWORD"}),
        (Engine.MONGODB, {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD", "MONGO_INITDB_DATABASE"}),
    ],
)
def test_engine_env_comes_from_the_secret(engine: Engine, names: set[str]) -> None:
    env = {e["name"]: e for e in container(objects(engine)[0])["env"]}
    assert names <= set(env)
    for name in names:
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "orders-db-connection"


def test_redis_requires_the_password_through_env_expansion() -> None:
    c = container(objects(Engine.REDIS)[0])
    args = c["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert any(e["name"] == "REDIS_PASSWORD" and "valueFrom" in e for e in c["env"])


@pytest.mark.parametrize(
    ("engine", "needle"),
    [
        (Engine.POSTGRES, ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "testenv", "-d", "orders_db"]),
        (Engine.MYSQL, ["mysqladmin", "ping"]),
        (Engine.REDIS, ["redis-cli -h 127.0.0.1 ping"]),
        (Engine.MONGODB, ['db.adminCommand("ping")']),
    ],
)
def test_readiness_probe_uses_the_engines_own_check(engine: Engine, needle: list[str]) -> None:
    command = " ".join(container(objects(engine)[0])["readinessProbe"]["exec"]["command"])
    assert " ".join(needle) in command


def test_redis_probe_authenticates_and_wants_a_pong() -> None:
    c = container(objects(Engine.REDIS)[0])
    assert "grep -q PONG" in c["readinessProbe"]["exec"]["command"][-1]
    assert any(e["name"] == "REDISCLI_AUTH" and "valueFrom" in e for e in c["env"])


def test_mongodb_probe_skips_the_init_servers_loopback() -> None:
    c = container(objects(Engine.MONGODB)[0])
    assert '--host "$POD_IP"' in c["readinessProbe"]["exec"]["command"][-1]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in c["env"]


@pytest.mark.parametrize("engine", ENGINES)
def test_pods_run_restricted_as_the_images_user(engine: Engine) -> None:
    deployment = objects(engine)[0]
    pod = deployment["spec"]["template"]["spec"]
    sc = container(deployment)["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True


@pytest.mark.parametrize("engine", ENGINES)
def test_deployment_is_one_recreated_replica_on_an_empty_dir(engine: Engine) -> None:
    deployment = objects(engine)[0]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert container(deployment)["volumeMounts"][0]["name"] == "data"


@pytest.mark.parametrize("engine", ENGINES)
def test_resources_have_requests_and_limits(engine: Engine) -> None:
    resources = container(objects(engine)[0])["resources"]
    for part in ("requests", "limits"):
        assert set(resources[part]) == {"cpu", "memory"}


def test_deployment_runs_the_given_image() -> None:
    deployment = objects(Engine.POSTGRES, version="15")[0]
    assert container(deployment)["image"] == "postgres:15"


@pytest.mark.parametrize(("engine", "port"), PORTS)
def test_service_selects_the_pods_on_the_engine_port(engine: Engine, port: int) -> None:
    deployment, service = objects(engine)
    assert service["spec"]["selector"] == service_selector("orders-db", "datastore")
    assert service["spec"]["ports"][0]["port"] == port
    assert container(deployment)["ports"][0]["containerPort"] == port
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == selector_labels("orders-db")


def test_objects_are_labelled_and_namespaced_for_the_environment() -> None:
    for obj in objects(Engine.POSTGRES):
        assert obj["metadata"]["namespace"] == ENV.target_namespace
        assert obj["metadata"]["labels"][LABEL_KIND] == "datastore"
