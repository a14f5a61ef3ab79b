"""Capture ingestion rate and chart query times over 1,000,000 captured records.

Writes 1,000,000 records in SageMaker's capture format and key layout as local capture files
(1,000 files of 1,000 records, two variants, spread over the last 20 hours), ingests them
through the local backend as beat would, then times the chart queries and the chart pages."""

import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

from accounts.roles import Role
from endpoints.models import Endpoint
from environments.models import Environment
from runtime.capture import capture_key

RECORDS = 1_000_000
PER_FILE = 1_000
GOAL_RECORDS_PER_SECOND = 50_000
GOAL_MS = 300
REPEATS = 10
DESTINATION = "s3://bench-capture/data"
LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"%d.1,3.5,1.4,0.2","encoding":"CSV"},"endpointOutput":{"observedContentType":'
    '"application/json","mode":"OUTPUT","data":"{\\"predictions\\": [%d]}","encoding":"JSON"}},'
    '"eventMetadata":{"eventId":"%08x-0000-4000-8000-%012x","inferenceId":"order-%d",'
    '"inferenceTime":"%s"},"eventVersion":"0"}\n'
)


def write_capture_files(root: Path, endpoint: str, now: datetime) -> None:
    """1,000 files; file n holds 1,000 records from one minute, 72 s after file n-1."""
    first = now - timedelta(hours=20)
    number = 0
    for file_number in range(RECORDS // PER_FILE):
        start = first + timedelta(seconds=72 * file_number)
        variant = "AllTraffic" if file_number % 4 else "Challenger"
        lines = []
        for index in range(PER_FILE):
            moment = (start + timedelta(seconds=index * 60 // PER_FILE)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            lines.append(LINE % (index % 9, index % 2, number, number, number, moment))
            number += 1
        uri = capture_key(DESTINATION, endpoint, variant, start, f"{file_number:06d}")
        path = root / uri.removeprefix("s3://")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines))
    # A hand-made non-capture line and a torn last line, as real stores have now and then.
    extra = capture_key(DESTINATION, endpoint, "AllTraffic", now, "torn")
    path = root / extra.removeprefix("s3://")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not json\n" + json.dumps({"captureData": {}})[:10])


def timed(samples: int, call: object) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each call: on a busy machine the two differ, and CPU time
    is what the code itself costs."""
    times, cpu = [], []
    for _ in range(samples):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return times, cpu


def run() -> None:
    from insights import charts, ingest

    root = Path(tempfile.mkdtemp(prefix="portal-bench-s3-"))
    now = datetime.now(UTC)
    try:
        with override_settings(LOCAL_S3_ROOT=root):
            environment = Environment.objects.create(
                name="bench-insights", bucket="bench-capture", prefix="p/"
            )
            endpoint = Endpoint.objects.create(
                environment=environment,
                name="bench-capture",
                status=Endpoint.Status.IN_SERVICE,
                spec={
                    "variants": [
                        {"name": "AllTraffic", "instance_type": "ml.m5.large", "instance_count": 1},
                        {"name": "Challenger", "instance_type": "ml.m5.large", "instance_count": 1},
                    ],
                    "capture": {"enabled": True, "sampling": 100, "destination": DESTINATION},
                },
            )
            started = time.perf_counter()
            write_capture_files(root, endpoint.name, now)
            written = time.perf_counter() - started

            print(f"Capture ingestion: {RECORDS:,} records in {RECORDS // PER_FILE:,} files")
            started, cpu_started = time.perf_counter(), time.process_time()
            result = ingest.Result()
            while True:  # beat runs until nothing is new; each run reads a bounded number of files
                found = ingest.ingest_endpoint(endpoint)
                result.add(found)
                if not found.files:
                    break
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            rate = result.records / seconds
            again = ingest.ingest_endpoint(endpoint)
            print(
                f"{'records':>12}{'seconds':>10}{'records/s':>12}{'rate/goal':>11}"
                f"{'CPU s':>8}{'per CPU s':>11}"
            )
            print(
                f"{result.records:>12,}{seconds:>10.2f}{rate:>12,.0f}"
                f"{rate / GOAL_RECORDS_PER_SECOND:>11.2f}{cpu_seconds:>8.2f}"
                f"{result.records / cpu_seconds:>11,.0f}"
            )
            print(
                f"(goal: {GOAL_RECORDS_PER_SECOND:,} records/s or more, so rate/goal over 1; "
                f"files written in {written:.1f} s; {result.torn_lines} torn lines counted; "
                f"a second run read {again.records} records)\n"
            )

            user = get_user_model().objects.create(username="bench-insights")
            user.set_role(Role.VIEWER)
            client = Client(HTTP_HOST="127.0.0.1")
            client.force_login(user)
            page = reverse("insights:endpoint", args=[endpoint.pk])
            queries = [
                (f"traffic {key}", lambda key=key: charts.traffic(endpoint, charts.window(key)))
                for key in ("1h", "24h", "7d")
            ]
            queries += [
                (f"page {key}", lambda key=key: ok(client.get(page, {"range": key})))
                for key in ("24h", "7d")
            ]
            records = reverse("insights:records", args=[endpoint.pk])
            queries.append(("records page", lambda: ok(client.get(records))))
            search = ("records search", lambda: ok(client.get(records, {"q": "order-99999"})))
            print(f"Chart queries and pages over {RECORDS:,} records, {REPEATS} runs each")
            print(f"{'query':<18}{'p50 ms':>9}{'max ms':>9}{'max/goal':>10}{'CPU p50 ms':>12}")
            with override_settings(DEBUG=False):
                for label, call in [*queries, search]:
                    samples, cpu = timed(REPEATS if label != search[0] else 3, call)
                    worst = max(samples)
                    ratio = f"{worst / GOAL_MS:>10.3f}" if label != search[0] else f"{'(none)':>10}"
                    print(
                        f"{label:<18}{statistics.median(samples):>9.1f}{worst:>9.1f}{ratio}"
                        f"{statistics.median(cpu):>12.1f}"
                    )
            print(
                f"(goal: chart queries and pages under {GOAL_MS} ms server time, so every "
                "max/goal under 1; the payload search scans the range's records and has no goal)\n"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ok(response: object) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"answered {response.status_code}")
