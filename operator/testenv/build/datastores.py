"""A datastore's objects: its connection Secret, a single-replica Deployment of
the engine's official image, and a Service named after the datastore."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from ..models import Datastore, Engine
from .common import (
    LABEL_RUN,
    EnvRef,
    component_labels,
    container_security_context,
    env_var_name,
    object_meta,
    pod_security_context,
    selector_labels,
    service_selector,
)
from .placement import NO_PLACEMENT, PodPlacement, place

PORTS: dict[str, int] = {Engine.POSTGRES: 5432, Engine.MYSQL: 3306, Engine.REDIS: 6379, Engine.MONGODB: 27017}
# The numeric uid of the official images' own user (postgres, mysql, redis,
# mongodb): numeric so that runAsNonRoot can be verified by the kubelet.
ENGINE_UID = 999
# The engines' users. Redis has no user of its own but its ACL "default" one.
USERNAMES: dict[str, str] = {
    Engine.POSTGRES: "testenv",
    Engine.MYSQL: "testenv",
    Engine.REDIS: "default",
    Engine.MONGODB: "testenv",
}
DATA_PATHS: dict[str, str] = {
    Engine.POSTGRES: "/var/lib/postgresql/data",
    Engine.MYSQL: "/var/lib/mysql",
    Engine.REDIS: "/data",
    Engine.MONGODB: "/data/db",
}
# Limits are set because a namespace quota on limits.cpu/memory rejects pods
# without them; MySQL and MongoDB need more memory to start at all.
_MEMORY_LIMITS: dict[str, str] = {
    Engine.POSTGRES: "512Mi",
    Engine.MYSQL: "1Gi",
    Engine.REDIS: "256Mi",
    Engine.MONGODB: "1Gi",
}
SECRET_KEYS = ("host", "port", "username", "password", "database", "url")


def generate_password() -> str:
    """The only impure function here: a fresh password for a new environment."""
    return secrets.token_urlsafe(24)


def secret_name(datastore: str) -> str:
    return f"{datastore}-connection"


def secret_env(name: str, datastore: str, key: str) -> dict[str, Any]:
    """An env var that reads `key` of the datastore's Secret."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name(datastore), "key": key}}}


def datastore_image(ds: Datastore, engine_images: dict[Any, str]) -> str:
    """The configured image of the engine, with `ds.version` as its tag when set."""
    image = engine_images[ds.engine]
    if not ds.version:
        return image
    repo = image.split("@", 1)[0]  # a digest pins the old tag; drop it
    if ":" in repo.rsplit("/", 1)[-1]:  # a ':' before the last '/' is a registry port
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}:{ds.version}"


def database_name(ds: Datastore) -> str:
    if ds.engine == Engine.REDIS:
        return "0"  # redis has numbered databases only; the url selects 0
    return ds.database or ds.name.replace("-", "_")


def connection(ds: Datastore, password: str, *, host: str | None = None, port: int | None = None) -> dict[str, str]:
    """The Secret's keys. `host`/`port` default to the in-cluster Service; tests
    point them at a local server."""
    host = host or ds.name
    port = port or PORTS[ds.engine]
    user, db = USERNAMES[ds.engine], database_name(ds)
    pw = quote(password, safe="")
    url = {
        Engine.POSTGRES: f"postgresql://{user}:{pw}@{host}:{port}/{db}",
        Engine.MYSQL: f"mysql://{user}:{pw}@{host}:{port}/{db}",
        # The ACL user by name: redis-cli 7.0 sends an empty user name for
        # `redis://:pw@` and the server refuses it (WRONGPASS); seen on the
        # real node. Every Redis >= 6 client takes the named form.
        Engine.REDIS: f"redis://{user}:{pw}@{host}:{port}/{db}",
        # The root user lives in the admin database, not in `db`.
        Engine.MONGODB: f"mongodb://{user}:{pw}@{host}:{port}/{db}?authSource=admin",
    }[ds.engine]
    return {"host": host, "port": str(port), "username": user, "password": password, "database": db, "url": url}


def datastore_secret(ds: Datastore, env: EnvRef, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(secret_name(ds.name), env, component_labels(env, ds.name, "datastore")),
        "type": "Opaque",
        "stringData": connection(ds, password),
    }


def url_env(ds: Datastore) -> dict[str, Any]:
    """`<NAME>_URL`, injected into every service, seed and test container."""
    return secret_env(env_var_name(ds.name), ds.name, "url")


def _engine_env(ds: Datastore) -> list[dict[str, Any]]:
    # Every credential comes from the Secret, so none is written into the
    # Deployment and the operator never has to read the Secret back.
    def ref(name: str, key: str) -> dict[str, Any]:
        return secret_env(name, ds.name, key)

    match ds.engine:
        case Engine.POSTGRES:
            return [
                ref("POSTGRES_USER", "username"),
                ref("POSTGRES_PASSWORD", "password"),
                ref("POSTGRES_DB", "database"),
                # A subdirectory, so initdb never meets a mount point (and newer
                # images' changed default PGDATA does not matter).
                {"name": "PGDATA", "value": f"{DATA_PATHS[Engine.POSTGRES]}/pgdata"},
            ]
        case Engine.MYSQL:
            return [
                ref("MYSQL_ROOT_PASSWORD", "password"),
                ref("MYSQL_USER", "username"),
                ref("MYSQL_PASSWORD", "password"),
                ref("MYSQL_DATABASE", "database"),
            ]
        case Engine.REDIS:
            # REDISCLI_AUTH lets the probe authenticate without the password in argv.
            return [ref("REDIS_PASSWORD", "password"), ref("REDISCLI_AUTH", "password")]
        case _:
            return [
                ref("MONGO_INITDB_ROOT_USERNAME", "username"),
                ref("MONGO_INITDB_ROOT_PASSWORD", "password"),
                ref("MONGO_INITDB_DATABASE", "database"),
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            ]


def _readiness_check(ds: Datastore) -> list[str]:
    # The images' first-start init runs a temporary server that must not count
    # as ready: postgres' listens on no TCP port and mysql's skips networking,
    # hence 127.0.0.1 below; mongo's binds 127.0.0.1, hence the pod IP.
    match ds.engine:
        case Engine.POSTGRES:
            user, db = USERNAMES[Engine.POSTGRES], database_name(ds)
            return ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", user, "-d", db]
        case Engine.MYSQL:
            # Exits 0 whenever the server answers, even "access denied".
            return ["mysqladmin", "ping", "-h", "127.0.0.1", "--protocol=tcp", "--silent"]
        case Engine.REDIS:
            # redis-cli exits 0 on an error reply (NOAUTH, LOADING): look for PONG.
            return ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
        case _:
            return ["sh", "-c", """mongosh --quiet --host "$POD_IP" --eval 'db.adminCommand("ping")'"""]


def _engine_args(ds: Datastore) -> list[str] | None:
    if ds.engine == Engine.REDIS:
        # $(REDIS_PASSWORD) is expanded by the kubelet, not a shell.
        return ["redis-server", "--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no"]
    return None  # the image's own entrypoint and command


def datastore_objects(
    ds: Datastore, env: EnvRef, image: str, placement: PodPlacement = NO_PLACEMENT, run: int = 1
) -> list[dict[str, Any]]:
    """The Deployment and Service; the Secret is created once, separately, so
    that its password survives re-provisioning."""
    labels = component_labels(env, ds.name, "datastore")
    port = PORTS[ds.engine]
    container: dict[str, Any] = {
        "name": str(ds.engine),
        "image": image,
        "env": _engine_env(ds),
        "ports": [{"name": "db", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": _readiness_check(ds)},
            # Every environment waits for its datastores: a check every 2 s
            # (pg_isready, mysqladmin and redis-cli are small C programs) lets
            # it go on within 2 s of the server's start, not up to 5 s late.
            # mongosh is a Node.js program: slow to start on a small CPU
            # limit, so it is asked less often and given longer.
            "initialDelaySeconds": 5 if ds.engine == Engine.MONGODB else 2,
            "periodSeconds": 5 if ds.engine == Engine.MONGODB else 2,
            "timeoutSeconds": 10 if ds.engine == Engine.MONGODB else 5,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": _MEMORY_LIMITS[ds.engine]},
        },
        "securityContext": container_security_context(ENGINE_UID),
        "volumeMounts": [{"name": "data", "mountPath": DATA_PATHS[ds.engine]}],
    }
    if (args := _engine_args(ds)) is not None:
        container["args"] = args
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(ds.name, env, labels),
        "spec": {
            "replicas": 1,
            # Never two servers on one (emptyDir) data set.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(ds.name)},
            "template": {
                # Each run starts from an empty datastore: its seeds assume
                # one, and a run must not see the last run's test data. A new
                # run number rolls out a new pod with a new emptyDir.
                "metadata": {"labels": labels, "annotations": {LABEL_RUN: str(run)}},
                "spec": place({
                    "automountServiceAccountToken": False,
                    # Service links would add e.g. REDIS_PORT=tcp://... beside
                    # the variables the images read.
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(ENGINE_UID),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                }, placement),
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(ds.name, env, labels),
        "spec": {
            "selector": service_selector(ds.name, "datastore"),
            "ports": [{"name": "db", "port": port, "targetPort": "db", "protocol": "TCP"}],
        },
    }
    return [deployment, service]
