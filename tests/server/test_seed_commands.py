"""The exact argv of `seed_command`, run with the env a seed Job gets, against
real PostgreSQL and Redis servers: data lands, and the first error stops it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from datastore_servers import Server, redis_cli
from testenv.build.datastores import connection
from testenv.build.seeds import DATASTORE_ENV, seed_command
from testenv.models import Datastore, Engine

pytestmark = pytest.mark.server


def run_seed(
    engine: Engine, ds: Datastore, server: Server, script: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Runs the seed as its Job would: the Secret's keys (pointed at the local
    server) as env, and nothing else from this process but PATH."""
    path = tmp_path / "seed script"  # a space: the path must be quoted
    path.write_text(script)
    conn = connection(ds, server.password, host=server.host, port=server.port)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env |= {name: conn[key] for name, key in DATASTORE_ENV.items()}
    return subprocess.run(
        seed_command(engine, script_path=str(path)), env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- PostgreSQL ---------------------------------------------------------------


def psql(server: Server, ds: Datastore, query: str) -> str:
    """A query's result through the same URL the seed uses."""
    url = connection(ds, server.password, host=server.host, port=server.port)["url"]
    done = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query, url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def orders_db(postgres_database: str) -> Datastore:
    return Datastore(name="orders-db", engine=Engine.POSTGRES, database=postgres_database)


def test_postgres_seed_lands_its_data(postgres_server: Server, orders_db: Datastore, tmp_path: Path) -> None:
    script = """
        CREATE TABLE orders (id text PRIMARY KEY, status text, total numeric);
        INSERT INTO orders VALUES ('o-1', 'new', 12.50), ('o-2', 'paid', 99);
    """
    done = run_seed(Engine.POSTGRES, orders_db, postgres_server, script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert psql(postgres_server, orders_db, "SELECT count(*), sum(total) FROM orders") == "2|111.50"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("SELEC 1;", id="syntax-error"),
        pytest.param("INSERT INTO orders VALUES ('o-1', 'dup', 1);", id="constraint-violation"),
    ],
)
def test_postgres_seed_stops_at_the_first_error_and_keeps_nothing(
    postgres_server: Server, orders_db: Datastore, tmp_path: Path, bad: str
) -> None:
    script = f"""
        CREATE TABLE orders (id text PRIMARY KEY, status text);
        INSERT INTO orders VALUES ('o-1', 'new');
        {bad}
        CREATE TABLE after_the_error (id int);
    """
    done = run_seed(Engine.POSTGRES, orders_db, postgres_server, script, tmp_path)
    assert done.returncode != 0
    assert "ERROR" in done.stderr
    # One transaction: what ran before the error is rolled back too.
    assert psql(postgres_server, orders_db, "SELECT to_regclass('orders') IS NULL") == "t"
    assert psql(postgres_server, orders_db, "SELECT to_regclass('after_the_error') IS NULL") == "t"


# --- Redis --------------------------------------------------------------------

CACHE = Datastore(name="cache", engine=Engine.REDIS)


def test_redis_seed_lands_its_data(redis_db: Server, tmp_path: Path) -> None:
    script = (
        "# comments and blank lines are skipped\n"
        "\n"
        'SET greeting "hello world"\n'
        "RPUSH queue a b c\n"
        "  HSET order:1 status new total 12.5\n"
        'SET looks-like-an-error "(error) not really"\n'
        "SET last-line-without-newline yes"
    )
    done = run_seed(Engine.REDIS, CACHE, redis_db, script, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert redis_cli(redis_db, "GET", "greeting") == "hello world"
    assert redis_cli(redis_db, "LLEN", "queue") == "3"
    assert redis_cli(redis_db, "HGET", "order:1", "total") == "12.5"
    assert redis_cli(redis_db, "GET", "last-line-without-newline") == "yes"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param("BOGUS x", "unknown command", id="unknown-command"),
        pytest.param("LPUSH before y", "WRONGTYPE", id="wrong-type"),
        pytest.param("SET", "wrong number of arguments", id="wrong-arity"),
        pytest.param('SET unterminated "quote', "Invalid argument", id="unparsable-line"),
    ],
)
def test_redis_seed_stops_at_the_first_error(redis_db: Server, tmp_path: Path, bad: str, message: str) -> None:
    script = f"SET before 1\n{bad}\nSET after 1\n"
    done = run_seed(Engine.REDIS, CACHE, redis_db, script, tmp_path)
    assert done.returncode != 0
    assert message in done.stdout
    assert "seed stopped at line 2" in done.stderr
    # Redis has no transaction to roll back: what ran before the error stays.
    assert redis_cli(redis_db, "GET", "before") == "1"
    assert redis_cli(redis_db, "EXISTS", "after") == "0"
