"""PostgreSQL connections that give up on a server that does not answer (config.postgres), on
the real PostgreSQL behind the fault proxy (tests/faultproxy.py), and the database settings
that bound how long a request waits for the database (config/settings.py)."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from config.postgres import connection_class
from tests.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy():
    target = urlsplit(os.environ["DATABASE_URL"])
    with FaultProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        yield proxy


def connect(proxy, answer_timeout):
    # The server's own maintenance database: the tests' database need not exist yet.
    return connection_class(answer_timeout).connect(
        os.environ["DATABASE_URL"],
        host="127.0.0.1",
        port=proxy.port,
        dbname="postgres",
        autocommit=True,
    )


def test_a_blackholed_server_fails_the_statement_after_the_answer_timeout(proxy):
    with connect(proxy, 0.5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match=r"did not answer within 0\.5 s"):
            conn.execute("SELECT 2")
        assert 0.5 <= time.monotonic() - started < 1.5
        # Its protocol is out of step: closed, so a pool discards it instead of reusing it.
        assert conn.closed


def test_a_commit_is_bounded_too(proxy):
    with connect(proxy, 0.5) as conn:
        conn.autocommit = False
        conn.execute("SELECT 1")
        proxy.blackhole()
        with pytest.raises(psycopg.OperationalError, match="did not answer"):
            conn.commit()
        assert conn.closed


def test_a_server_that_answers_within_the_timeout_is_waited_for(proxy):
    with connect(proxy, 1.0) as conn:
        assert conn.execute("SELECT pg_sleep(0.3), 1").fetchone()[1] == 1
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_without_an_answer_timeout_a_slow_answer_is_waited_for(proxy):
    with connect(proxy, 0.0) as conn:
        proxy.blackhole()
        # Released after longer than any timeout above: the statement then completes.
        threading.Timer(0.8, proxy.heal).start()
        assert conn.execute("SELECT 3").fetchone() == (3,)


def _database_settings(*, command=False, **environ) -> dict:
    """The PostgreSQL settings a served process (or, with `command`, a manage.py command)
    gets from `environ`."""
    code = (
        "import json; from django.conf import settings; d = settings.DATABASES['default'];"
        "o = dict(d['OPTIONS']); p = dict(o.pop('pool'));"
        "p['answer_timeout'] = p.pop('connection_class').answer_timeout;"
        "print(json.dumps({'options': o, 'pool': p, 'checks': d['CONN_HEALTH_CHECKS']}))"
    )
    if command:
        argv = [sys.executable, "manage.py", "shell", "-c", code]
    else:
        argv = [sys.executable, "-c", f"import django; django.setup(); {code}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_DB_")}
    env.update(environ, DJANGO_SETTINGS_MODULE="config.settings")
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_database_is_waited_for_about_a_second_by_default():
    found = _database_settings()
    assert found["options"]["connect_timeout"] == 2
    assert found["options"]["options"] == "-c statement_timeout=1000"
    assert found["options"]["tcp_user_timeout"] == 1250
    assert found["pool"]["timeout"] == 1.0
    assert found["pool"]["reconnect_timeout"] == 2.0
    assert found["pool"]["answer_timeout"] == 1.25
    assert found["checks"] is True


def test_the_database_timeouts_come_from_the_environment():
    found = _database_settings(
        DJANGO_DB_CONNECT_TIMEOUT="5",
        DJANGO_DB_STATEMENT_TIMEOUT="3",
        DJANGO_DB_POOL_TIMEOUT="1.5",
        DJANGO_DB_RECONNECT_TIMEOUT="4",
    )
    assert found["options"]["connect_timeout"] == 5
    assert found["options"]["options"] == "-c statement_timeout=3000"
    assert found["pool"]["timeout"] == 1.5
    assert found["pool"]["reconnect_timeout"] == 4.0
    assert found["pool"]["answer_timeout"] == 3.25


def test_management_commands_run_without_the_statement_timeout():
    # Migrations and cleanups may run long statements; set the variable to bound them.
    found = _database_settings(command=True)
    assert "options" not in found["options"]
    assert found["pool"]["answer_timeout"] == 0
    found = _database_settings(command=True, DJANGO_DB_STATEMENT_TIMEOUT="2")
    assert found["options"]["options"] == "-c statement_timeout=2000"


def test_a_statement_timeout_of_zero_turns_both_timeouts_off():
    found = _database_settings(DJANGO_DB_STATEMENT_TIMEOUT="0")
    assert "options" not in found["options"]
    assert "tcp_user_timeout" not in found["options"]
    assert found["pool"]["answer_timeout"] == 0
