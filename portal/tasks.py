"""Project-wide tasks: the worker's heartbeat, which /healthz reads to tell a live worker."""

import time

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def heartbeat() -> float:
    """Stamp var/worker-heartbeat with the time a worker last ran a task. Beat sends it."""
    now = time.time()
    path = settings.WORKER_HEARTBEAT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{now:.3f}")
    temporary.replace(path)  # atomic: a reader never sees half a number
    return now
