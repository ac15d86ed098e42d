"""Seed builders: the engine clients' argv, the script ConfigMap and the Job."""

from __future__ import annotations

from typing import Any

import pytest
from testenv.build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN, EnvRef
from testenv.build.datastores import url_env
from testenv.build.seeds import DATASTORE_ENV, seed_command, seed_objects
from testenv.models import Datastore, Engine, EnvVar, Seed

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")
DB = Datastore(name="orders-db", engine=Engine.POSTGRES)
CACHE = Datastore(name="cache", engine=Engine.REDIS)
INJECTED = [url_env(DB), url_env(CACHE)]


def sql_seed(**kw: Any) -> Seed:
    return Seed(name="schema", datastore="orders-db", sql="CREATE TABLE t (id int);", **kw)


def image_seed(**kw: Any) -> Seed:
    return Seed(name="fixtures", image="ghcr.io/acme/fixtures:1", **kw)


def build(seed: Seed, ds: Datastore | None = DB, run: int = 3, image: str = "postgres:16") -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in seed_objects(seed, ds, ENV, image, run, INJECTED)}


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    [c] = pod_of(job)["containers"]
    return c


def env_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container_of(job)["env"]}


# --- seed_command -----------------------------------------------------------


@pytest.mark.parametrize("engine", list(Engine))
def test_command_is_a_shell_running_the_engines_client(engine: Engine) -> None:
    argv = seed_command(engine)
    assert argv[:2] == ["sh", "-c"] and len(argv) == 3
    client = {"postgres": "psql", "mysql": "mysql", "redis": "redis-cli", "mongodb": "mongosh"}[engine]
    assert client in argv[2]
    assert "/seed/script" in argv[2]


def test_postgres_stops_on_error_in_one_transaction() -> None:
    script = seed_command(Engine.POSTGRES)[2]
    assert "-v ON_ERROR_STOP=1" in script
    assert "--single-transaction" in script
    assert '"$DATASTORE_URL"' in script


def test_mysql_reads_the_script_from_stdin_without_force() -> None:
    script = seed_command(Engine.MYSQL)[2]
    assert "--batch" in script and "< /seed/script" in script
    assert "--force" not in script
    assert '--password="$DATASTORE_PASSWORD"' in script


def test_redis_checks_every_reply_for_an_error() -> None:
    script = seed_command(Engine.REDIS)[2]
    assert 'REDISCLI_AUTH="$DATASTORE_PASSWORD"' in script
    assert "--no-raw" in script and r"\(error\)" in script
    assert "exit 1" in script
    assert " -a " not in script  # the password stays out of argv


def test_mongodb_runs_the_file_with_mongosh() -> None:
    assert 'mongosh "$DATASTORE_URL" --quiet --file /seed/script' in seed_command(Engine.MONGODB)[2]


@pytest.mark.parametrize("engine", list(Engine))
def test_command_waits_a_bounded_time_for_the_server(engine: Engine) -> None:
    script = seed_command(engine)[2]
    assert "until " in script and '-ge 30 ]' in script


@pytest.mark.parametrize("engine", list(Engine))
def test_script_path_is_substitutable_and_quoted(engine: Engine) -> None:
    script = seed_command(engine, script_path="/tmp/my seed.sql")[2]
    assert "'/tmp/my seed.sql'" in script
    assert "/seed/script" not in script


def test_command_refuses_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown datastore engine"):
        seed_command("oracle")


# --- sql seeds ----------------------------------------------------------------


def test_sql_seed_is_a_configmap_and_a_job_per_run() -> None:
    built = build(sql_seed(), run=3)
    assert set(built) == {"ConfigMap", "Job"}
    assert built["ConfigMap"]["metadata"]["name"] == "schema-script-r3"
    assert built["Job"]["metadata"]["name"] == "schema-r3"


def test_configmap_holds_the_script_verbatim() -> None:
    sql = "INSERT INTO t VALUES ('a;b');\n-- comment\n"
    cm = build(Seed(name="schema", datastore="orders-db", sql=sql))["ConfigMap"]
    assert cm["data"] == {"script": sql}


def test_sql_job_mounts_the_script_and_runs_the_seed_command() -> None:
    job = build(sql_seed())["Job"]
    c = container_of(job)
    assert c["command"] == seed_command(Engine.POSTGRES)
    assert c["volumeMounts"] == [{"name": "script", "mountPath": "/seed", "readOnly": True}]
    assert pod_of(job)["volumes"] == [{"name": "script", "configMap": {"name": "schema-script-r3"}}]


def test_sql_job_runs_the_datastores_image() -> None:
    job = build(sql_seed(), image="postgres:15.4")["Job"]
    assert container_of(job)["image"] == "postgres:15.4"


def test_sql_job_gets_the_datastore_secret_keys_as_env() -> None:
    env = env_of(build(sql_seed())["Job"])
    for name, key in DATASTORE_ENV.items():
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "orders-db-connection", "key": key}


def test_sql_job_runs_as_the_images_user() -> None:
    pod = pod_of(build(sql_seed())["Job"])
    assert pod["securityContext"]["runAsUser"] == 999


def test_sql_seed_without_its_datastore_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs its datastore"):
        build(sql_seed(), ds=None)


def test_configmap_carries_the_run_label_for_cleanup() -> None:
    labels = build(sql_seed(), run=7)["ConfigMap"]["metadata"]["labels"]
    assert labels[LABEL_RUN] == "7"


# --- image seeds --------------------------------------------------------------


def test_image_seed_is_only_a_job_running_the_given_image() -> None:
    built = build(image_seed(command=["python", "-m", "fixtures"], args=["--fast"]), ds=None)
    assert set(built) == {"Job"}
    c = container_of(built["Job"])
    assert c["image"] == "ghcr.io/acme/fixtures:1"
    assert c["command"] == ["python", "-m", "fixtures"]
    assert c["args"] == ["--fast"]
    assert "volumeMounts" not in c


def test_image_seed_keeps_the_images_entrypoint_when_unset() -> None:
    c = container_of(build(image_seed(), ds=None)["Job"])
    assert "command" not in c and "args" not in c


def test_image_seed_gets_the_injected_urls() -> None:
    env = env_of(build(image_seed(), ds=None)["Job"])
    assert env["ORDERS_DB_URL"] == url_env(DB)
    assert env["CACHE_URL"] == url_env(CACHE)


def test_seed_env_wins_over_injected_env() -> None:
    seed = image_seed(env=[EnvVar(name="CACHE_URL", value="redis://elsewhere"), EnvVar(name="MODE", value="ci")])
    job = build(seed, ds=None)["Job"]
    env = env_of(job)
    assert env["CACHE_URL"] == {"name": "CACHE_URL", "value": "redis://elsewhere"}
    assert env["MODE"]["value"] == "ci"
    assert [e["name"] for e in container_of(job)["env"]].count("CACHE_URL") == 1


def test_seed_env_wins_over_the_datastore_keys() -> None:
    env = env_of(build(sql_seed(env=[EnvVar(name="DATASTORE_HOST", value="other")]))["Job"])
    assert env["DATASTORE_HOST"] == {"name": "DATASTORE_HOST", "value": "other"}


def test_image_seed_with_a_datastore_gets_its_keys_too() -> None:
    env = env_of(build(image_seed(datastore="orders-db"))["Job"])
    assert env["DATASTORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "orders-db-connection"


def test_image_seed_runs_as_its_images_non_root_user() -> None:
    pod = pod_of(build(image_seed(), ds=None)["Job"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in pod["securityContext"]


# --- the Job's shape, either kind ------------------------------------------------

BOTH = [pytest.param(sql_seed(), DB, id="sql"), pytest.param(image_seed(), None, id="image")]


@pytest.mark.parametrize(("seed", "ds"), BOTH)
def test_job_runs_once_and_is_never_retried(seed: Seed, ds: Datastore | None) -> None:
    job = build(seed, ds)["Job"]
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["backoffLimit"] == 0
    assert pod_of(job)["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" not in job["spec"]


@pytest.mark.parametrize(("seed", "ds"), BOTH)
def test_job_has_no_deadline_unless_a_timeout_is_set(seed: Seed, ds: Datastore | None) -> None:
    assert "activeDeadlineSeconds" not in build(seed, ds)["Job"]["spec"]
    timed = seed.model_copy(update={"timeout_seconds": 120})
    job = build(timed, ds)["Job"]["spec"]
    assert job["template"]["spec"]["activeDeadlineSeconds"] == 120
    assert job["activeDeadlineSeconds"] == 120 + 60


@pytest.mark.parametrize(("seed", "ds"), BOTH)
def test_job_and_pod_are_labelled_with_the_seed_and_run(seed: Seed, ds: Datastore | None) -> None:
    job = build(seed, ds, run=5)["Job"]
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[LABEL_COMPONENT] == seed.name
        assert labels[LABEL_KIND] == "seed"
        assert labels[LABEL_RUN] == "5"
    assert job["metadata"]["namespace"] == ENV.target_namespace


@pytest.mark.parametrize(("seed", "ds"), BOTH)
def test_job_pod_is_restricted(seed: Seed, ds: Datastore | None) -> None:
    job = build(seed, ds)["Job"]
    pod, c = pod_of(job), container_of(job)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize(("seed", "ds"), BOTH)
def test_job_keeps_the_log_tail_as_termination_message(seed: Seed, ds: Datastore | None) -> None:
    assert container_of(build(seed, ds)["Job"])["terminationMessagePolicy"] == "FallbackToLogsOnError"
