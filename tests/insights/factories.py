"""Insights rows for tests that need one of each."""

from datetime import UTC, datetime

from endpoints.models import Endpoint
from insights.models import CapturedRecord, CaptureFile, LoadTestRun
from tests.factories import EnvironmentFactory


def insights_endpoint() -> Endpoint:
    return Endpoint.objects.create(
        environment=EnvironmentFactory(),
        name="iris",
        status=Endpoint.Status.IN_SERVICE,
        spec={
            "variants": [
                {"name": "AllTraffic", "instance_type": "ml.m5.large", "instance_count": 1}
            ],
            "capture": {"enabled": True, "sampling": 100, "destination": "s3://b/capture"},
        },
    )


def captured_record(endpoint: Endpoint | None = None, **fields: object) -> CapturedRecord:
    endpoint = endpoint or insights_endpoint()
    file = CaptureFile.objects.create(
        environment=endpoint.environment,
        endpoint=endpoint,
        uri=f"s3://b/capture/{endpoint.name}/AllTraffic/2026/01/01/00/00-00-000-{CaptureFile.objects.count()}.jsonl",
    )
    values = {
        "time": datetime.now(UTC),
        "variant": "AllTraffic",
        "event_id": "e-1",
        "inference_id": "order-1",
        "input_content_type": "text/csv",
        "input_encoding": "CSV",
        "input_data": "5.1,3.5",
        "input_bytes": 7,
        "output_content_type": "application/json",
        "output_encoding": "JSON",
        "output_data": '{"predictions": [1]}',
        "output_bytes": 20,
    }
    return CapturedRecord.objects.create(endpoint=endpoint, file=file, **(values | fields))


def finished_load_test() -> LoadTestRun:
    return LoadTestRun.objects.create(
        endpoint=insights_endpoint(),
        payloads=["1,1"],
        content_type="text/csv",
        requests=10,
        concurrency=2,
        status=LoadTestRun.Status.DONE,
        sent=10,
        summary={"ok": 10, "failed": 0, "errors": {}, "latency_ms": {"p50": 1.0}},
    )
