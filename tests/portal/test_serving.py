"""The two-lane gunicorn worker (portal/serving.py): pages are served while invocations hold
every thread they may have (reliability goal R6)."""

import socket
import subprocess  # nosec B404
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from portal.serving import LanedExecutor, is_bulk

ROOT = Path(__file__).resolve().parents[2]


def test_requests_are_classified_from_a_peek_that_consumes_nothing() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert not is_bulk(right)  # nothing sent yet: interactive
        left.sendall(b"POST /playground/invoke/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert is_bulk(right)
        assert right.recv(100).startswith(b"POST /playground/invoke/")  # still all there
        left.sendall(b"GET /playground/ HTTP/1.1\r\n\r\n")
        assert not is_bulk(right)
        right.recv(100)
        left.sendall(b"POST /endpoints/3/delete/ HTTP/1.1\r\n\r\n")
        assert not is_bulk(right)


def test_interactive_work_goes_first_and_bulk_work_never_takes_the_last_thread() -> None:
    executor = LanedExecutor(threads=2, bulk_limit=1, classify=lambda kind, _name: kind == "bulk")
    release = threading.Event()
    order: list[str] = []

    def job(kind: str, name: str) -> str:
        if name == "bulk-1":
            release.wait(10)
        order.append(name)
        return name

    try:
        first = executor.submit(job, "bulk", "bulk-1")  # takes the one bulk slot and blocks
        queued = [executor.submit(job, "bulk", f"bulk-{n}") for n in (2, 3)]
        pages = [executor.submit(job, "page", f"page-{n}") for n in (1, 2, 3)]
        assert [page.result(timeout=5) for page in pages] == ["page-1", "page-2", "page-3"]
        assert not any(future.done() for future in (first, *queued))  # waiting for the slot
        release.set()
        assert [future.result(timeout=5) for future in (first, *queued)] == [
            "bulk-1", "bulk-2", "bulk-3"
        ]  # fmt: skip
        assert order == ["page-1", "page-2", "page-3", "bulk-1", "bulk-2", "bulk-3"]
    finally:
        release.set()
        executor.shutdown(wait=True)


def test_a_failing_job_hands_its_exception_to_the_future_and_the_thread_lives_on() -> None:
    executor = LanedExecutor(threads=1, bulk_limit=1, classify=lambda _: True)
    try:
        failed = executor.submit(lambda _: 1 / 0, None)
        with pytest.raises(ZeroDivisionError):
            failed.result(timeout=5)
        assert executor.submit(lambda value: value * 2, 21).result(timeout=5) == 42
    finally:
        executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(lambda _: None, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(tmp_path: Path, settings: object, workers: int):
    """Real gunicorn with the repository's gunicorn.conf.py, `workers` processes of 2 threads."""
    port = free_port()
    settings.PORTAL_OUTBOUND_ALLOW = [f"127.0.0.1:{port}"]  # requests goes through S9's guard
    log = (tmp_path / "gunicorn.log").open("ab")
    process = subprocess.Popen(  # nosec B603 (our own command)
        [sys.executable, "-m", "gunicorn", "tests.portal.lanes_app", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "2"],
        cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                requests.get(f"{url}/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def gunicorn_with_lanes(tmp_path: Path, settings: object):
    yield from start_gunicorn(tmp_path, settings, workers=1)


@pytest.fixture
def two_gunicorn_processes(tmp_path: Path, settings: object):
    yield from start_gunicorn(tmp_path, settings, workers=2)


def test_gunicorn_serves_a_page_while_invocations_hold_every_thread_they_may(
    gunicorn_with_lanes: str,
) -> None:
    """Two slow invocations on two threads: plain gthread would put the page behind them."""
    url = gunicorn_with_lanes
    with ThreadPoolExecutor(max_workers=2) as pool:
        invocations = [
            pool.submit(requests.post, f"{url}/playground/invoke/?seconds=2", data=b"x", timeout=30)
            for _ in range(2)
        ]
        time.sleep(0.5)  # both sent: one runs, one waits for the bulk slot
        page = requests.get(f"{url}/endpoints/", timeout=30)
        finished = sorted(float(future.result().text.split()[1]) for future in invocations)
    page_finished = float(page.text.split()[1])
    assert page.text.startswith("/endpoints/")
    assert page_finished < finished[0]  # before the first invocation ended
    assert finished[1] - finished[0] >= 1.5  # the invocations ran one after the other


def test_an_invocation_closes_its_connection_and_a_page_keeps_it(gunicorn_with_lanes: str) -> None:
    url = gunicorn_with_lanes
    with requests.Session() as session:
        page = session.get(f"{url}/endpoints/", timeout=30)
        invocation = session.post(f"{url}/playground/invoke/", data=b"x", timeout=30)
    assert page.status_code == invocation.status_code == 200
    assert page.headers.get("Connection", "keep-alive").lower() == "keep-alive"
    assert invocation.headers["Connection"].lower() == "close"


def test_an_invocation_goes_to_a_process_that_has_none(two_gunicorn_processes: str) -> None:
    """One slow invocation holds a process; each of the next ones, on a new connection, is
    served by the other process. gunicorn alone lets either process accept (about half would
    queue behind the slow one)."""
    url = two_gunicorn_processes
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(
            requests.post, f"{url}/playground/invoke/?seconds=3", data=b"x", timeout=30
        )
        time.sleep(0.5)  # the slow one has been accepted and is running
        quick = [
            requests.post(f"{url}/playground/invoke/", data=b"x", timeout=30) for _ in range(12)
        ]
        busy_process = slow.result().text.split()[2]
    served_by = {answer.text.split()[2] for answer in quick}
    assert len(served_by) == 1
    assert busy_process not in served_by


def test_a_busy_process_still_takes_a_page_when_no_process_is_idle(
    gunicorn_with_lanes: str,
) -> None:
    """The only process runs an invocation: a page on a new connection is taken after the
    hand-off wait, long before the invocation ends."""
    url = gunicorn_with_lanes
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(
            requests.post, f"{url}/playground/invoke/?seconds=3", data=b"x", timeout=30
        )
        time.sleep(0.5)
        started = time.monotonic()
        page = requests.get(f"{url}/endpoints/", timeout=30)
        waited = time.monotonic() - started
        slow_finished = float(slow.result().text.split()[1])
    assert page.status_code == 200
    assert float(page.text.split()[1]) < slow_finished
    assert waited < 1.5
