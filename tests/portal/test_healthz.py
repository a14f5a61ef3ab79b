"""/healthz reports the database, the broker, the worker and the local runtime."""

import time

from django.urls import reverse

from portal.tasks import heartbeat
from tests.conftest import free_port


def test_healthz_is_ok_when_everything_answers(client, db, runtime_url, settings, tmp_path) -> None:
    settings.WORKER_HEARTBEAT_FILE = tmp_path / "heartbeat"
    heartbeat()

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok", body
    assert set(body["checks"]) == {"database", "broker", "worker", "runtime"}
    assert body["checks"]["runtime"]["detail"] == f"{runtime_url} answered 200"


def test_healthz_says_degraded_and_why_when_the_runtime_is_down(client, db, settings) -> None:
    settings.LOCAL_RUNTIME_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["runtime"]["ok"] is False
    assert "Connection refused" in body["checks"]["runtime"]["detail"]


def test_healthz_reports_a_stale_worker(client, db, settings, tmp_path) -> None:
    settings.WORKER_HEARTBEAT_FILE = tmp_path / "heartbeat"
    settings.WORKER_HEARTBEAT_FILE.write_text(str(time.time() - 600))

    check = client.get(reverse("healthz")).json()["checks"]["worker"]

    assert check["ok"] is False
    assert "worker or beat has stopped" in check["detail"]


def test_healthz_answers_fast_when_the_broker_is_unreachable(client, db, settings) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.HEALTHZ_TIMEOUT_SECONDS = 1

    started = time.monotonic()
    body = client.get(reverse("healthz")).json()
    elapsed = time.monotonic() - started

    assert body["checks"]["broker"]["ok"] is False
    assert body["status"] == "degraded"
    assert elapsed < 10  # a dead broker is reported, never waited on for long
