"""What the fault tests share: real worker, beat and Redis processes they can kill, and a way to
point this test process's Celery publisher at the same broker as the processes it started."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import pools as kombu_pools

from portal.celery import app as celery_app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Short timers for the processes under test: a killed worker's lease runs out after LEASE
# seconds, and beat's reconciler looks for stranded work every RECONCILE seconds.
LEASE = 2
RECONCILE = 1
POLL = 2


def database_url() -> str:
    """The test database, for processes started from here."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait(
    condition: Callable[[], object], timeout: float, what: str, details: Callable[[], str] = str
) -> None:
    """Wait for `condition`; on timeout, fail saying what was awaited, with `details()`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")
        time.sleep(0.1)


class Broker:
    """Where Celery messages go: a filesystem folder or a Redis URL, as both this process and
    the processes it starts see it."""

    def __init__(self, url: str, var_dir: Path):
        self.url = url
        self.var_dir = var_dir  # PORTAL_VAR_DIR of the started processes
        if url.startswith("filesystem://"):
            # The started processes inherit PYTEST_VERSION, so theirs is the test session's folder.
            broker_dir = var_dir / settings.BROKER_DIR.name
            folders = {name: broker_dir / name for name in ("out", "processed")}
            for folder in folders.values():
                folder.mkdir(parents=True, exist_ok=True)
            # What portal/settings.py derives from PORTAL_VAR_DIR, for this process to match.
            self.transport_options = {
                "data_folder_in": str(folders["out"]),
                "data_folder_out": str(folders["out"]),
                "processed_folder": str(folders["processed"]),
                "store_processed": False,
            }
        else:
            self.transport_options = {
                "visibility_timeout": 900,
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
            }


@contextmanager
def publishing_to(broker: Broker) -> Iterator[None]:
    """This process's Celery app publishes to `broker` (the env var wins over the setting, so
    both change), with fresh connection pools; restored afterwards."""
    conf = celery_app.conf
    saved = os.environ.get("CELERY_BROKER_URL"), conf.broker_url, conf.broker_transport_options
    os.environ["CELERY_BROKER_URL"] = broker.url
    conf.broker_url, conf.broker_transport_options = broker.url, broker.transport_options
    fresh_pools()
    try:
        yield
    finally:
        variable, conf.broker_url, conf.broker_transport_options = saved
        if variable is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = variable
        fresh_pools()


def fresh_pools() -> None:
    """Close every kombu pool and forget them: kombu keeps producer pools in a global registry
    keyed by broker, which would hand back a closed one."""
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


class Processes:
    """Worker and beat processes started for one test, each in its own process group."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def environment(self, broker: Broker, **extra: str) -> dict[str, str]:
        variables = os.environ | {
            "DJANGO_SETTINGS_MODULE": "tests.fault.settings",
            "PORTAL_VAR_DIR": str(broker.var_dir),
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker.url,
            "ENDPOINT_POLL_SECONDS": str(POLL),
            "RECONCILE_AFTER_SECONDS": str(RECONCILE),
            "DEPLOYMENT_LEASE_SECONDS": str(LEASE),
        }
        variables.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        return variables | extra

    def start(self, kind: str, name: str, environment: dict[str, str]) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "portal", kind, "-l", "INFO"]
        if kind == "worker":
            command += ["--pool", "solo", "-Q", "celery", "-n", f"{name}@%h"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=log, start_new_session=True
        )
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def stop_all(self) -> None:
        """SIGKILL: the test has its result, and its broker and var folder go with it."""
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


class RedisServer:
    """Our own redis-server on a free port: stopped, paused and killed by the tests, never the
    machine's shared Redis."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--maxmemory-policy", "noeviction"],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        wait(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        try:
            found = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, timeout=2
            )
        except subprocess.TimeoutExpired:
            return False
        return found.stdout.strip() == b"PONG"

    def cli(self, *arguments: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *arguments],
            capture_output=True,
            check=True,
            timeout=5,
        ).stdout.decode()

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot die of SIGKILL late
            self.process.kill()
            self.process.wait()


def redis_server(folder: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        reason = "the Redis fault tests need redis-server (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, on a free port."""
    yield from redis_server(tmp_path / "redis")


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own, on a free port, shared by its tests."""
    yield from redis_server(tmp_path_factory.mktemp("redis"))
