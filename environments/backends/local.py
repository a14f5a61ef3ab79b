"""The local backend: the local runtime on this machine.

The runtime speaks SageMaker's own wire protocols, so every control-plane, invocation and
autoscaling call is the aws backend's boto3 call, sent to the runtime instead of AWS. What AWS
keeps in other services is read from this machine: objects from the runtime's storage folder,
metrics and container logs from the runtime's `/_local` API.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from django.conf import settings

from environments.backends.aws import AwsBackend, call, local_session, shared_client
from environments.backends.base import (
    ConnectionCheck,
    LogLine,
    MetricPoint,
    ProviderBusy,
    ProviderError,
    StoredObject,
)
from runtime import MODEL_LATENCY_HEADER
from runtime.metrics import percentile
from runtime.storage import LocalStorage, StorageError

if TYPE_CHECKING:
    from environments.models import Environment

STATISTICS = {"Sum", "Average", "Minimum", "Maximum", "SampleCount"}
PERCENTILE = re.compile(r"^p(100|\d{1,2}(\.\d{1,2})?)$")


class LocalBackend(AwsBackend):
    def __init__(self, environment: Environment | None, runtime_url: str | None = None):
        super().__init__(environment)
        self.runtime_url = (runtime_url or settings.LOCAL_RUNTIME_URL).rstrip("/")
        self.storage = LocalStorage(settings.LOCAL_S3_ROOT)

    @cached_property
    def session(self) -> boto3.Session:
        # Made only when a client is (once per process): a boto3 session alone costs ~25 ms.
        return local_session()

    def client(self, service: str, config: Config) -> BaseClient:
        def make() -> BaseClient:
            return call(
                self.session.client,
                service_name=service,
                endpoint_url=self.runtime_url,
                config=config,
            )

        return shared_client(("local", service, self.runtime_url, id(config), "local"), make)

    @classmethod
    def warm_up(cls, runtime_url: str | None = None) -> BaseClient:
        """Make this process's invocation client for the local runtime now. boto3 reads the
        service's model to make one (100-250 ms on a 2-core machine), which the first person
        to invoke in each web process would otherwise wait for. Reads no rows."""
        return cls(environment=None, runtime_url=runtime_url).runtime

    def reported_model_ms(self, response: dict) -> float | None:
        """The runtime says how long the model itself took for each call."""
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        value = headers.get(MODEL_LATENCY_HEADER.lower())
        try:
            return int(value) / 1000 if value is not None else None
        except ValueError:
            return None

    def local_api(self, path: str, **query: str) -> dict:
        """GET one of the runtime's own resources (`/ping`, `/_local/...`) as JSON."""
        url = f"{self.runtime_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            # The URL is the configured runtime's, never one a user typed.
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  # nosec B310 (the runtime URL from settings)
                return json.load(answer)
        except urllib.error.HTTPError as error:
            message = json.loads(error.read() or b"{}").get("message", str(error))
            raise ProviderError(message, code=str(error.code), raw=message) from error
        except OSError as error:
            raise ProviderBusy(
                f"The local runtime at {self.runtime_url} does not answer. Is it running "
                "(make run starts it)?",
                code="RuntimeUnreachable",
                raw=str(error),
            ) from error

    def metric_series(
        self,
        endpoint: str,
        variant: str,
        metric: str,
        start: datetime,
        end: datetime,
        period: int = 60,
        stat: str = "Sum",
    ) -> list[MetricPoint]:
        if stat not in STATISTICS and not (PERCENTILE.match(stat) and metric.endswith("Latency")):
            raise ProviderError(
                f"The local runtime keeps {', '.join(sorted(STATISTICS))}, and percentiles "
                "(p50, p99, ...) of latencies only."
            )
        answer = self.local_api(
            "/_local/metrics",
            endpoint=endpoint,
            start=str(start.timestamp()),
            end=str(end.timestamp()),
        )
        # The runtime keeps one point per minute; a longer period adds minutes together.
        buckets: dict[int, list[dict]] = {}
        for point in answer["datapoints"]:
            if point["MetricName"] == metric and (not variant or point["VariantName"] == variant):
                bucket = int(point["Timestamp"] // period * period)
                buckets.setdefault(bucket, []).append(point)
        return [
            MetricPoint(datetime.fromtimestamp(moment, UTC), combine(points, stat))
            for moment, points in sorted(buckets.items())
        ]

    def endpoint_logs(self, name: str, limit: int = 200) -> list[LogLine]:
        try:
            answer = self.local_api(f"/_local/endpoints/{urllib.parse.quote(name)}/logs")
        except ProviderError as error:
            if error.code == "404":
                return []
            raise
        lines = [
            LogLine(
                time=None,
                source=f"{log['variant']}-{log['instance']}/{log['container']}",
                message=line,
            )
            for log in answer["logs"]
            for line in log["log"].splitlines()
        ]
        return lines[-limit:]

    def list_objects(self, prefix_uri: str) -> list[StoredObject]:
        try:
            found = self.storage.list(prefix_uri)
        except StorageError as error:
            raise ProviderError(str(error), code="InvalidLocation") from error
        return [StoredObject(item.uri, item.size, item.modified) for item in found]

    def read_object(self, uri: str) -> bytes:
        try:
            return self.storage.get(uri)
        except StorageError as error:
            raise ProviderError(str(error), code="NoSuchKey") from error

    def upload_object(self, uri: str, data: bytes) -> None:
        try:
            self.storage.put(uri, data)
        except StorageError as error:
            raise ProviderError(str(error), code="InvalidLocation") from error

    def create_or_update_model_card(self, name: str, content: dict, status: str) -> str:
        """The local runtime keeps no model cards: the portal's own copy is the card."""
        return ""

    def test_connection(self) -> list[ConnectionCheck]:
        runtime, storage = f"Local runtime at {self.runtime_url}", self.environment.storage_uri
        checks = []
        try:
            answer = self.local_api("/ping")
            uptime, count = answer["uptime_seconds"], answer["endpoints"]
            detail = f"Running for {uptime:.0f} s, serving {count} endpoints"
            checks.append(ConnectionCheck(runtime, ok=True, detail=detail))
        except ProviderError as error:
            checks.append(ConnectionCheck(runtime, ok=False, detail=error.message))
        probe = f"{storage.rstrip('/')}/.portal-connection-check"
        try:
            self.upload_object(probe, b"ok")
            self.storage.delete(probe)
            checks.append(ConnectionCheck(f"Storage {storage}", ok=True, detail="Writable"))
        except (ProviderError, OSError) as error:
            checks.append(ConnectionCheck(f"Storage {storage}", ok=False, detail=str(error)))
        return checks


def combine(points: list[dict], stat: str) -> float:
    """Minute points folded into one, as CloudWatch folds a longer period. Percentiles
    (`p50`, `p99.9`) come from the latencies' histograms."""
    if PERCENTILE.match(stat):
        return percentile([point.get("Histogram") or {} for point in points], float(stat[1:]) / 100)
    if stat == "Sum":
        return sum(point["Sum"] for point in points)
    if stat == "SampleCount":
        return sum(point["SampleCount"] for point in points)
    if stat == "Minimum":
        return min(point["Minimum"] for point in points)
    if stat == "Maximum":
        return max(point["Maximum"] for point in points)
    count = sum(point["SampleCount"] for point in points)
    return sum(point["Sum"] for point in points) / count if count else 0.0
