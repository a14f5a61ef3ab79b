"""Capture files in SageMaker's format, written with the local runtime's own capture code, and
an endpoint that captures into them."""

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from endpoints.models import Endpoint
from environments.models import Environment
from runtime.capture import CaptureConfig, capture_key, capture_record
from runtime.storage import LocalStorage

DESTINATION = "s3://capture-bucket/data"
CONFIG = CaptureConfig(
    enabled=True,
    sampling_percentage=100,
    destination=DESTINATION,
    capture_input=True,
    capture_output=True,
    csv_content_types=("text/csv",),
    json_content_types=("application/json",),
)


def capturing_endpoint(name: str = "iris", **spec: object) -> Endpoint:
    environment = Environment.objects.create(name=f"local-{name}", bucket="demo", prefix="p/")
    variants = [
        {"name": "AllTraffic", "model_id": 1, "instance_type": "ml.m5.large", "instance_count": 1}
    ]
    return Endpoint.objects.create(
        environment=environment,
        name=name,
        status=Endpoint.Status.IN_SERVICE,
        spec={
            "variants": variants,
            "capture": {
                "enabled": True,
                "sampling": 100,
                "destination": DESTINATION,
                "input": True,
                "output": True,
            },
            **spec,
        },
    )


def record_line(when: datetime, number: int, answered: bool = True, **extra: object) -> str:
    import json

    record = capture_record(
        request_body=f"{number},1".encode(),
        request_content_type="text/csv",
        response_body=b'{"predictions": [1]}' if answered else None,
        response_content_type="application/json",
        config=CONFIG,
        inference_time=when,
        inference_id=f"order-{number}",
        **extra,
    )
    return json.dumps(record, separators=(",", ":")) + "\n"


def write_file(
    root: Path,
    endpoint: str,
    when: datetime,
    lines: list[str],
    variant: str = "AllTraffic",
    file_id: str = "f1",
) -> str:
    uri = capture_key(DESTINATION, endpoint, variant, when, file_id)
    LocalStorage(root).put(uri, "".join(lines).encode())
    return uri


def minutes_ago(minutes: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def binary_record(when: datetime) -> str:
    """A record whose input was not a listed type, so it is base64, with UTF-8 text inside."""
    import json

    record = capture_record(
        request_body=b"hello needle world",
        request_content_type="application/x-text",
        response_body=bytes([0xFF, 0x00, 0x10]),
        response_content_type="application/octet-stream",
        config=CONFIG,
        inference_time=when,
    )
    assert (
        record["captureData"]["endpointInput"]["data"]
        == base64.b64encode(b"hello needle world").decode()
    )
    return json.dumps(record) + "\n"
