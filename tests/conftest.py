"""Fixtures shared by the whole suite: users per role, a running runtime, a real browser."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client

from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"viewer": Role.VIEWER, "engineer": Role.ENGINEER, "deployer": Role.DEPLOYER}
ROLES["admin"] = Role.ADMIN
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def own_boto3_clients() -> Iterator[None]:
    """boto3 clients are shared per process; each test gets its own, so one test's moto mock
    or Stubber never answers another's calls."""
    from environments.backends.aws import forget_clients

    forget_clients()
    yield
    forget_clients()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: object) -> None:
    """Argon2 is slow on purpose; tests that are not about hashing use a fast hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def aws_test_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 with test keys and no profile, role or config file of this machine's."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def user_for(db: None) -> Callable:
    """user_for("deployer") makes a new user holding that role; "none" makes one without."""

    def make(role_name: str, **fields: object):
        return UserFactory(role=ROLES.get(role_name), **fields)

    return make


@pytest.fixture
def client_for(user_for: Callable) -> Callable[[str], Client]:
    """client_for("viewer") is a test client signed in as a new Viewer; "anon" is signed out."""

    def make(role_name: str) -> Client:
        client = Client()
        if role_name != "anon":
            client.force_login(user_for(role_name))
        return client

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def runtime_dirs(tmp_path: Path, settings: object) -> dict[str, Path]:
    """A private object store and state folder for one test's runtime."""
    dirs = {"s3": tmp_path / "s3", "state": tmp_path / "runtime"}
    settings.LOCAL_S3_ROOT = dirs["s3"]
    settings.LOCAL_RUNTIME_STATE_DIR = dirs["state"]
    return dirs


def start_runtime(port: int, dirs: dict[str, Path], **variables: str) -> subprocess.Popen:
    """`manage.py runtime` as its own process, as `make run` starts it."""
    environment = os.environ | {
        "LOCAL_S3_ROOT": str(dirs["s3"]),
        "LOCAL_RUNTIME_STATE_DIR": str(dirs["state"]),
        "LOCAL_RUNTIME_STARTUP_TIMEOUT": "30",
    }
    (dirs["state"]).mkdir(parents=True, exist_ok=True)
    log = (dirs["state"] / "runtime.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "manage.py", "runtime", "--port", str(port)],
        cwd=ROOT,
        env=environment | variables,
        stdout=log,
        stderr=log,
    )


@pytest.fixture
def runtime_url(
    settings: object, runtime_dirs: dict[str, Path], request: pytest.FixtureRequest
) -> Iterator[str]:
    """A real local runtime process (`manage.py runtime`) on a free port, stopped afterwards.
    `@pytest.mark.runtime_env(NAME="value")` sets its environment (short timers in tests)."""
    marker = request.node.get_closest_marker("runtime_env")
    port = free_port()
    process = start_runtime(port, runtime_dirs, **(marker.kwargs if marker else {}))
    url = f"http://127.0.0.1:{port}"
    try:
        # Generous: a loaded 2-core machine can take a while to import Django and aiohttp.
        deadline = time.monotonic() + 90
        while True:
            try:
                wait_for_http(f"{url}/ping", timeout=1)
                break
            except OSError:
                log = runtime_dirs["state"] / "runtime.log"
                assert process.poll() is None, f"the runtime exited: {log.read_text()[-2000:]}"
                if time.monotonic() > deadline:
                    raise
        settings.LOCAL_RUNTIME_URL = url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright, headless. Skips where chromium is absent, except
    under REQUIRE_BROWSER=1 (CI), where its absence fails the run.

    Module-scoped: Playwright's sync API keeps an event loop running while it is started, which
    would break later tests that run their own (asyncio.run), so it stops after each module."""
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    # Playwright's sync API runs an event loop in this thread; the Django ORM calls the tests
    # make between browser steps are plain synchronous code, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser: object, live_server: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser tab on the live server. Console errors and CSP violations fail the test;
    a failing test leaves a screenshot in test-artifacts/."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.console_problems = problems  # a test that expects an error status clears what it caused
    yield tab
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems, f"browser console errors: {problems}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def sign_in(tab: object, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would."""
    tab.goto("/accounts/login/")
    tab.fill("#id_username", username)
    tab.fill("#id_password", password)
    tab.click("button[type=submit]")
