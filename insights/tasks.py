"""Celery tasks: ingest capture files (beat), run load tests (started from the browser)."""

import logging

from celery import shared_task
from django.db import OperationalError

from insights import ingest, loadtest

log = logging.getLogger(__name__)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=2, max_retries=5)
def ingest_capture() -> int:
    """Read new capture records of every capturing endpoint; returns how many. Safe to run
    twice or at once: each file's offset moves with the rows it wrote."""
    result = ingest.ingest_all()
    if result.records or result.errors:
        log.info(
            "ingested %d records from %d files (%d torn lines), errors: %s",
            result.records,
            result.files,
            result.torn_lines,
            result.errors or "none",
        )
    return result.records


# A run may take minutes (bounded by the settings on requests and concurrency), longer than
# the deployment steps' default limits.
@shared_task(soft_time_limit=900, time_limit=960)
def run_load_test(run_id: int) -> None:
    """Send one load test's requests. A second delivery finds the run claimed and does nothing."""
    loadtest.run(run_id)
