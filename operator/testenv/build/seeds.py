"""Seed Jobs: a `sql` seed runs its script through the datastore engine's own
client with stop-on-error; an `image` seed runs the user's image."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from ..models import Datastore, Engine, Seed
from .common import (
    LABEL_RUN,
    EnvRef,
    component_labels,
    container_security_context,
    env_list,
    merge_env,
    object_meta,
    pod_security_context,
)
from .datastores import ENGINE_UID, secret_env
from .placement import NO_PLACEMENT, PodPlacement, place
from .results import Collector, deadlines, with_results

SCRIPT_DIR = "/seed"
SCRIPT_PATH = f"{SCRIPT_DIR}/script"
# The datastore Secret's keys as the seed container's env; seed_command reads
# these, and image seeds with a datastore may too.
DATASTORE_ENV: dict[str, str] = {
    "DATASTORE_HOST": "host",
    "DATASTORE_PORT": "port",
    "DATASTORE_USER": "username",
    "DATASTORE_PASSWORD": "password",
    "DATASTORE_DATABASE": "database",
    "DATASTORE_URL": "url",
}
# Pod readiness does not mean the Service routes to the pod yet, and with
# backoffLimit 0 a refused connection would fail the environment: wait a minute.
_WAIT = """i=0
until {{ {check}; }} >/dev/null 2>&1; do
  i=$((i+1))
  if [ "$i" -ge 30 ]; then echo "{engine} at $DATASTORE_HOST:$DATASTORE_PORT is not reachable" >&2; exit 1; fi
  sleep 2
done
"""
# redis-cli reading stdin runs every line whatever the replies and exits 0, so
# each line runs on its own and a reply of "(error) ..." (which --no-raw keeps
# apart from a string value, always printed quoted) stops the seed. Empty output
# means no reply at all (connection refused); "Invalid argument(s)" is a line
# redis-cli could not parse. The price: MULTI/EXEC or SELECT cannot span lines.
_REDIS_LOOP = """n=0
while read -r line || [ -n "$line" ]; do
  n=$((n+1))
  case "$line" in ''|'#'*) continue ;; esac
  out=$(printf '%s\\n' "$line" | redis-cli --no-raw -h "$DATASTORE_HOST" -p "$DATASTORE_PORT")
  printf '%s\\n' "$out"
  if [ -z "$out" ] || printf '%s\\n' "$out" | grep -Eq '^[ 0-9)]*\\(error\\) |^Invalid argument'; then
    echo "seed stopped at line $n: $line" >&2
    exit 1
  fi
done < {script}
"""


def seed_command(engine: Engine | str, script_path: str = SCRIPT_PATH) -> list[str]:
    """The argv that runs the script at `script_path` through the engine's own
    client, stopping at the first error with a non-zero exit."""
    script = shlex.quote(script_path)
    prelude = ""
    match engine:
        case Engine.POSTGRES:
            check = 'pg_isready -d "$DATASTORE_URL"'
            # One transaction: a failed seed leaves nothing half-done behind.
            # -X: no ~/.psqlrc can change the behaviour.
            run = f'exec psql -X -v ON_ERROR_STOP=1 --single-transaction -f {script} "$DATASTORE_URL"'
        case Engine.MYSQL:
            check = 'mysqladmin ping --silent --protocol=tcp -h "$DATASTORE_HOST" -P "$DATASTORE_PORT"'
            # Reading a file from stdin, mysql stops at the first error (no --force).
            run = (
                'exec mysql --batch --protocol=tcp -h "$DATASTORE_HOST" -P "$DATASTORE_PORT" '
                '-u "$DATASTORE_USER" --password="$DATASTORE_PASSWORD" "$DATASTORE_DATABASE"'
                f" < {script}"
            )
        case Engine.REDIS:
            # REDISCLI_AUTH keeps the password out of argv and its warning out of the log.
            prelude = 'export REDISCLI_AUTH="$DATASTORE_PASSWORD"\n'
            check = 'redis-cli -h "$DATASTORE_HOST" -p "$DATASTORE_PORT" ping | grep -q PONG'
            run = _REDIS_LOOP.format(script=script)
        case Engine.MONGODB:
            check = """mongosh "$DATASTORE_URL" --quiet --eval 'db.adminCommand("ping")'"""
            # mongosh exits non-zero on an uncaught error, ending the file there.
            run = f'exec mongosh "$DATASTORE_URL" --quiet --file {script}'
        case _:
            raise ValueError(f"unknown datastore engine {engine!r}")
    return ["sh", "-c", prelude + _WAIT.format(check=check, engine=engine) + run]


# The seed's own container (beside the results collector).
SEED_CONTAINER = "seed"


def run_name(seed: str, run: int) -> str:
    return f"{seed}-r{run}"


def script_configmap_name(seed: str, run: int) -> str:
    return f"{seed}-script-r{run}"


def datastore_env(ds: Datastore) -> list[dict[str, Any]]:
    return [secret_env(name, ds.name, key) for name, key in DATASTORE_ENV.items()]


def seed_objects(
    seed: Seed,
    ds: Datastore | None,
    env: EnvRef,
    image: str,
    run: int,
    injected_env: list[dict[str, Any]],
    placement: PodPlacement = NO_PLACEMENT,
    credentials: Mapping[tuple[str, str, str], str] | None = None,
    collector: Collector | None = None,
) -> list[dict[str, Any]]:
    """The seed's Job for this run (and its script's ConfigMap for a `sql` seed).

    `image` is the datastore's image, whose client runs a `sql` seed; an
    `image` seed runs `seed.image`. Env precedence: the seed's own env, then
    the datastore's keys, then the injected `<NAME>_URL` variables.
    """
    labels = {**component_labels(env, seed.name, "seed"), LABEL_RUN: str(run)}
    own = env_list(seed.env, credentials)
    if ds is not None:
        own = merge_env(datastore_env(ds), own)
    container: dict[str, Any] = {"name": SEED_CONTAINER, "env": merge_env(injected_env, own)}
    pod: dict[str, Any] = {}
    objects: list[dict[str, Any]] = []
    run_as: int | None = None  # an image seed runs as its image's (non-root) user

    if seed.sql is not None:
        if ds is None:
            raise ValueError(f"seed {seed.name!r}: a sql seed needs its datastore")
        configmap = script_configmap_name(seed.name, run)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": object_meta(configmap, env, labels),
                "data": {"script": seed.sql},
            }
        )
        run_as = ENGINE_UID
        container.update(
            image=image,
            command=seed_command(ds.engine),
            volumeMounts=[{"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True}],
            resources={
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"},  # mongosh is Node.js
            },
        )
        pod["volumes"] = [{"name": "script", "configMap": {"name": configmap}}]
    else:
        container["image"] = seed.image
        if seed.command is not None:
            container["command"] = seed.command
        if seed.args is not None:
            container["args"] = seed.args

    container.update(
        securityContext=container_security_context(run_as),
        # The tail of the log becomes the failure message in status.
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    job_spec: dict[str, Any] = {
        # A retry would re-run a half-applied script; a failed seed is final.
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels, "annotations": dict(seed.pod_annotations)},
            "spec": place(with_results({
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                # The env is what the spec and the datastores give, nothing else.
                "enableServiceLinks": False,
                "securityContext": pod_security_context(run_as),
                "containers": [container],
                **pod,
            }, collector), placement),
        },
    }
    job_spec = deadlines(job_spec, seed.timeout_seconds, 1)
    objects.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": object_meta(run_name(seed.name, run), env, labels),
            "spec": job_spec,
        }
    )
    return objects
