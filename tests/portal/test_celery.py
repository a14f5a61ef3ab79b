"""A real Celery worker, on whichever broker the settings name, runs what the portal sends,
and its log leaves out beat's routine lines."""

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS
from django.conf import settings

from portal.celery import app
from portal.tasks import heartbeat

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_a_real_worker_runs_a_task_sent_through_the_broker(tmp_path, monkeypatch) -> None:
    stamp = tmp_path / "heartbeat"
    monkeypatch.setattr(settings, "WORKER_HEARTBEAT_FILE", stamp)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "-l", "INFO"],
        cwd=ROOT,
        env=os.environ | {"WORKER_HEARTBEAT_FILE": str(stamp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
    reader.start()

    def other_task_done() -> bool:
        return any("celery.accumulate[" in line and "succeeded" in line for line in lines)

    try:
        sent_at = time.time()
        heartbeat.apply_async()
        app.send_task("celery.accumulate", args=(42,))  # not on beat's schedule
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if stamp.exists() and other_task_done():
                break
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)

    assert stamp.exists(), output[-3000:]
    assert float(stamp.read_text()) >= sent_at
    # At INFO the other task's lines show and the heartbeat's (a routine task) do not.
    assert other_task_done(), output[-3000:]
    assert any("celery.accumulate[" in line and "received" in line for line in lines)
    assert "portal.tasks.heartbeat[" not in output, output[-3000:]


def log_line(logger: str, level: int, template: str, arguments: object) -> None:
    """Log as Celery itself does: trace and the worker pass one mapping, beat a tuple."""
    if isinstance(arguments, dict):
        logging.getLogger(logger).log(level, template, arguments)
    else:
        logging.getLogger(logger).log(level, template, *arguments)


def seen(caplog: pytest.LogCaptureFixture, logger: str, level: int, template: str, arguments):
    caplog.clear()
    log_line(logger, level, template, arguments)
    return [record.getMessage() for record in caplog.records]


def task(name: str) -> dict:
    return {"id": "d6a1", "name": name, "return_value": 0, "runtime": 0.004, "exc": "throttled"}


SENDING = "Scheduler: Sending due task %s (%s)"


def test_beats_routine_lines_are_left_out_at_info(caplog) -> None:
    caplog.set_level(logging.INFO)
    poll = task("endpoints.tasks.poll_endpoints")

    assert seen(caplog, "celery.worker.strategy", logging.INFO, LOG_RECEIVED, poll) == []
    assert seen(caplog, "celery.app.trace", logging.INFO, LOG_SUCCESS, poll) == []
    sending = ("poll-endpoints", "endpoints.tasks.poll_endpoints")
    assert seen(caplog, "celery.beat", logging.INFO, SENDING, sending) == []


def test_every_other_task_and_what_goes_wrong_still_show(caplog) -> None:
    caplog.set_level(logging.INFO)
    deploy = task("endpoints.tasks.advance_deployment")
    poll = task("endpoints.tasks.poll_endpoints")

    assert seen(caplog, "celery.worker.strategy", logging.INFO, LOG_RECEIVED, deploy) == [
        "Task endpoints.tasks.advance_deployment[d6a1] received"
    ]
    assert seen(caplog, "celery.app.trace", logging.INFO, LOG_SUCCESS, deploy)
    assert seen(caplog, "celery.app.trace", logging.INFO, LOG_RETRY, poll) == [
        "Task endpoints.tasks.poll_endpoints[d6a1] retry: throttled"
    ]
    failed = "Task %(name)s[%(id)s] raised unexpected: %(exc)s"
    assert seen(caplog, "celery.app.trace", logging.ERROR, failed, poll)
    sending = ("deploy-now", "endpoints.tasks.advance_deployment")
    assert seen(caplog, "celery.beat", logging.INFO, SENDING, sending)


def test_at_debug_every_line_shows(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    poll = task("endpoints.tasks.poll_endpoints")

    assert seen(caplog, "celery.app.trace", logging.INFO, LOG_SUCCESS, poll)
    sending = ("poll-endpoints", "endpoints.tasks.poll_endpoints")
    assert seen(caplog, "celery.beat", logging.INFO, SENDING, sending)


def test_every_task_on_beats_schedule_is_one_the_worker_knows() -> None:
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "alerts.tasks.send_due_alerts" in scheduled
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)
