"""Insights settings: each is `getattr(settings, NAME, default)`, so portal/settings.py may
override it and a bare install runs with these defaults."""

from django.conf import settings

# Prices for the cost estimate (shared/reference/sagemaker.md §8), us-east-1, on demand, USD.
# They estimate, they do not bill; check them with the Price List API and override the whole
# table with settings.INSIGHTS_PRICES. Instance-hour prices come from the deploy wizard's table
# (settings.INSTANCE_PRICES_PER_HOUR) so the two pages never disagree.
DEFAULT_PRICES = {
    "region": "us-east-1",
    # Serverless on-demand compute: per second of duration for each GB of MemorySizeInMB
    # (1 GB = $0.0000200/s, linear in memory).
    "serverless_per_gb_second": 0.0000200,
    # Serverless data processed, in and out.
    "serverless_per_gb_data": 0.016,
    # Instance-backed endpoints also pay EBS storage for VolumeSizeInGB.
    "storage_per_gb_month": 0.14,
    "storage_gb": 30,
    "hours_per_month": 730,
}


def prices() -> dict:
    return {**DEFAULT_PRICES, **getattr(settings, "INSIGHTS_PRICES", {})}


def instance_prices() -> dict[str, float]:
    from endpoints.wizard import instance_prices as wizard_prices

    return wizard_prices()


# Ingestion: how many capture files one beat run reads per endpoint at most, so one run stays
# well inside Celery's task time limit (120 s soft); the next run goes on from there.
INGEST_MAX_FILES = getattr(settings, "INSIGHTS_INGEST_MAX_FILES", 500)
# A worker's claim on an endpoint's capture prefix, after which another may take it over.
INGEST_LEASE_SECONDS = getattr(settings, "INSIGHTS_INGEST_LEASE_SECONDS", 300)
# Rows written per transaction (files are never split): fewer, larger transactions write each
# page and rollup once instead of several times (bench: 5,000 to 25,000 took ~10% off ingestion).
# SQLite's write lock is held only while a batch is written: a few tenths of a second.
INGEST_BATCH = getattr(settings, "INSIGHTS_INGEST_BATCH", 25_000)

# Load tests from the browser: the most requests and the most at once one run may send.
LOADTEST_MAX_REQUESTS = getattr(settings, "INSIGHTS_LOADTEST_MAX_REQUESTS", 5000)
LOADTEST_MAX_CONCURRENCY = getattr(settings, "INSIGHTS_LOADTEST_MAX_CONCURRENCY", 16)
# How often a running load test saves its progress for the page to show.
LOADTEST_PROGRESS_SECONDS = getattr(settings, "INSIGHTS_LOADTEST_PROGRESS_SECONDS", 0.5)
# Records per page in the captured-records browser.
RECORDS_PER_PAGE = getattr(settings, "INSIGHTS_RECORDS_PER_PAGE", 50)
# Downloads stop at this many records: a retraining set, not a database dump.
DOWNLOAD_MAX_RECORDS = getattr(settings, "INSIGHTS_DOWNLOAD_MAX_RECORDS", 200_000)
