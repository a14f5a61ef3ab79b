"""Reachability of what the portal depends on: its database, its broker and the local runtime."""

import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from kombu import Connection


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    milliseconds: float


def timed(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; any exception means unreachable, with the exception as the detail."""
    started = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as error:  # noqa: BLE001 (a health check reports every failure, whatever it is)
        detail, ok = f"{type(error).__name__}: {error}", False
    return Check(name, ok, detail, round((time.perf_counter() - started) * 1000, 1))


def probe_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def probe_broker() -> str:
    timeout = settings.HEALTHZ_TIMEOUT_SECONDS
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options |= {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options
    ) as broker:
        broker.ensure_connection(max_retries=1, timeout=timeout)
        return broker.as_uri()  # the password, if any, is masked by kombu


def probe_runtime() -> str:
    url = f"{settings.LOCAL_RUNTIME_URL}/ping"
    # The URL comes from settings, never from a request, so this is no open fetch.
    with urllib.request.urlopen(url, timeout=settings.HEALTHZ_TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
        return f"{settings.LOCAL_RUNTIME_URL} answered {response.status}"


def probe_worker() -> str:
    """A worker is alive if it ran beat's heartbeat task recently (see portal.tasks)."""
    try:
        stamp = float(settings.WORKER_HEARTBEAT_FILE.read_text())
    except FileNotFoundError:
        raise RuntimeError("no heartbeat yet: is a Celery worker (and beat) running?") from None
    age = time.time() - stamp
    if age > settings.WORKER_HEARTBEAT_STALE_SECONDS:
        raise RuntimeError(f"last heartbeat {age:.0f} s ago: the worker or beat has stopped")
    return f"last heartbeat {age:.0f} s ago"


def check_all() -> list[Check]:
    """Every check; the network ones side by side, so the worst case is one timeout."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        broker = pool.submit(timed, "broker", probe_broker)
        runtime = pool.submit(timed, "runtime", probe_runtime)
        database = timed("database", probe_database)
        worker = timed("worker", probe_worker)
        return [database, broker.result(), worker, runtime.result()]
