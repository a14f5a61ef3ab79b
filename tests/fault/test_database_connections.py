"""R3: PostgreSQL kills every connection of the portal's database (pg_terminate_backend, as a
restart or a failover does). The web server's next requests all succeed: its persistent
connection is health-checked before use (CONN_HEALTH_CHECKS) and replaced."""

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.test import Client

from tests.conftest import free_port
from tests.fault.conftest import ROOT, database_url, wait

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (CI runs it; set DATABASE_URL)")


@pytest.fixture
def web_server(postgresql: None, tmp_path) -> Iterator[int]:
    """gunicorn as in production, one process and one thread, so one persistent connection."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("ab")
    variables = os.environ | {"DATABASE_URL": database_url(), "DATABASE_CONN_MAX_AGE": "60"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "1"],
        cwd=ROOT, env=variables, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        wait(lambda: status(port, "/accounts/login/") == 200, 60, "gunicorn to answer")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def status(port: int, path: str, cookie: str = "") -> int:
    """The status of one GET, without following redirects; 0 if nothing answered."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        return client.getresponse().status
    except OSError:
        return 0
    finally:
        client.close()


def backends(killer: psycopg.Connection) -> set[int]:
    """The other server processes connected to the test database."""
    rows = killer.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    ).fetchall()
    return {pid for (pid,) in rows}


def test_requests_after_the_database_killed_every_connection_succeed(
    web_server: int, user_for
) -> None:
    browser = Client()
    browser.force_login(user_for("viewer"))
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    settings = connection.settings_dict
    killer = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    )
    try:
        before = status(web_server, "/endpoints/", cookie)
        connected = backends(killer)
        # One by one: in a single query PostgreSQL may terminate the killer before filtering.
        killed = sum(
            killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
            for pid in connected
        )
        after = [status(web_server, "/endpoints/", cookie) for _ in range(3)]
        reconnected = backends(killer) - connected
    finally:
        killer.close()
        connection.close()  # this test's own connection was killed too

    assert before == 200
    assert killed >= 1  # the web server's persistent connection among them
    assert after == [200, 200, 200]  # 0 errors once the connections are gone
    assert reconnected  # the web server opened a new connection
