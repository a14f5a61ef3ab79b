"""A real Celery worker, on whichever broker the settings name, runs what the portal sends."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

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
    try:
        sent_at = time.time()
        heartbeat.apply_async()
        deadline = time.monotonic() + 60
        while not stamp.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]

    assert stamp.exists(), output[-3000:]
    assert float(stamp.read_text()) >= sent_at
