"""What every provider backend offers: one method per provider action, small frozen results, and
the two errors callers handle (`ProviderError`, and `ProviderBusy` for "try again later")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from environments.models import Environment


class ProviderError(Exception):
    """The provider refused or failed a call. `message` says so in plain words for the user;
    `code` is the provider's error code and `raw` its own text, shown behind a toggle."""

    def __init__(self, message: str, *, code: str = "", raw: str = "", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.raw = raw or message
        self.retryable = retryable

    def __reduce__(self) -> tuple:
        # Keyword-only arguments are lost by Exception's default pickling, which Celery uses
        # when a task fails with this error.
        return (_rebuild_error, (type(self), self.message, self.code, self.raw, self.retryable))


class ProviderBusy(ProviderError):
    """The provider throttled the call, timed out or is briefly unavailable: try again later."""

    def __init__(self, message: str, *, code: str = "", raw: str = "", retryable: bool = True):
        super().__init__(message, code=code, raw=raw, retryable=retryable)


def _rebuild_error(
    cls: type[ProviderError], message: str, code: str, raw: str, retryable: bool
) -> ProviderError:
    return cls(message, code=code, raw=raw, retryable=retryable)


@dataclass(frozen=True)
class VariantState:
    """One production variant of a live endpoint. `serverless` holds MemorySizeInMB and
    MaxConcurrency (and ProvisionedConcurrency) for a serverless variant, else None."""

    name: str
    current_instances: int | None
    desired_instances: int | None
    current_weight: float | None
    serverless: dict | None


@dataclass(frozen=True)
class EndpointState:
    """What the provider says about one endpoint right now."""

    name: str
    status: str
    failure_reason: str
    config_name: str
    variants: tuple[VariantState, ...]
    created: datetime | None
    modified: datetime | None


@dataclass(frozen=True)
class EndpointSummary:
    name: str
    status: str
    modified: datetime | None


@dataclass(frozen=True)
class Invocation:
    """One answer from an endpoint. `model_ms` is the model's own time where the provider
    reports it per call (the local runtime does; SageMaker only in CloudWatch)."""

    body: bytes
    content_type: str
    variant: str
    custom_attributes: str
    model_ms: float | None
    total_ms: float


class StreamedAnswer:
    """A streamed answer: iterate it for the parts as they arrive (arbitrary slices), with what
    the provider said up front: the model's content type and the variant answering. `close()`
    ends it early, and the model stops generating."""

    def __init__(self, parts: Iterator[bytes], *, content_type: str = "", variant: str = ""):
        self.parts = parts
        self.content_type = content_type
        self.variant = variant

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.parts)

    def close(self) -> None:
        close = getattr(self.parts, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class AsyncInvocation:
    """An accepted asynchronous request: its result appears later at one of the locations."""

    inference_id: str
    output_location: str
    failure_location: str


@dataclass(frozen=True)
class ScalingActivity:
    activity_id: str
    description: str
    cause: str
    status: str
    start: datetime
    end: datetime | None
    message: str


@dataclass(frozen=True)
class MetricPoint:
    time: datetime
    value: float


@dataclass(frozen=True)
class StoredObject:
    uri: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ConnectionCheck:
    """One permission the portal needs, tried for real: `detail` is "Allowed" or says why not."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class LogLine:
    time: datetime | None
    source: str
    message: str


class Backend:
    """The interface every provider implements. Abstract: use `get_backend(environment)`.

    Every method raises `ProviderError` (or `ProviderBusy`) on failure, never the provider
    SDK's own exceptions. `request` dicts use the provider API's own field names.
    """

    def __init__(self, environment: Environment):
        self.environment = environment

    # Models

    def create_model(self, request: dict) -> str:
        """Create a model from a CreateModel request; returns its ARN."""
        raise NotImplementedError

    def describe_model(self, name: str) -> dict | None:
        """The model's description, or None if there is no such model."""
        raise NotImplementedError

    def delete_model(self, name: str) -> None:
        """Delete a model; deleting one that is already gone is not an error."""
        raise NotImplementedError

    # Endpoint configs

    def create_endpoint_config(self, request: dict) -> str:
        """Create an endpoint config from a CreateEndpointConfig request; returns its ARN."""
        raise NotImplementedError

    def describe_endpoint_config(self, name: str) -> dict | None:
        """The endpoint config's description, or None if there is no such config."""
        raise NotImplementedError

    def delete_endpoint_config(self, name: str) -> None:
        """Delete an endpoint config; deleting one that is already gone is not an error."""
        raise NotImplementedError

    # Endpoints

    def create_endpoint(self, name: str, config_name: str) -> str:
        """Start creating an endpoint from a config; returns its ARN."""
        raise NotImplementedError

    def update_endpoint(self, name: str, config_name: str) -> None:
        """Start moving an endpoint to a new config, without downtime."""
        raise NotImplementedError

    def describe_endpoint(self, name: str) -> EndpointState | None:
        """The endpoint's state, or None if there is no such endpoint."""
        raise NotImplementedError

    def list_endpoints(self, name_contains: str = "") -> list[EndpointSummary]:
        """Every endpoint whose name contains `name_contains`, all pages read."""
        raise NotImplementedError

    def delete_endpoint(self, name: str) -> None:
        """Start deleting an endpoint; deleting one that is already gone is not an error."""
        raise NotImplementedError

    # Invocations

    def invoke(
        self,
        endpoint: str,
        body: bytes,
        *,
        content_type: str,
        accept: str = "",
        target_model: str = "",
        target_variant: str = "",
        target_container: str = "",
        custom_attributes: str = "",
        inference_id: str = "",
    ) -> Invocation:
        """Send one real-time request and wait for the answer. Never retried: not idempotent."""
        raise NotImplementedError

    def invoke_async(
        self,
        endpoint: str,
        *,
        input_location: str,
        content_type: str,
        accept: str = "",
        inference_id: str = "",
    ) -> AsyncInvocation:
        """Queue an asynchronous request whose input already lies at `input_location`."""
        raise NotImplementedError

    def invoke_stream(
        self,
        endpoint: str,
        body: bytes,
        *,
        content_type: str,
        accept: str = "",
        target_variant: str = "",
        target_container: str = "",
        custom_attributes: str = "",
    ) -> StreamedAnswer:
        """Send one request; the answer's parts come as they arrive."""
        raise NotImplementedError

    # Autoscaling

    def register_scalable_target(
        self, endpoint: str, variant: str, minimum: int, maximum: int
    ) -> None:
        """Let the variant's instance count be scaled between `minimum` and `maximum`."""
        raise NotImplementedError

    def put_scaling_policy(
        self,
        endpoint: str,
        variant: str,
        *,
        name: str,
        target_invocations_per_instance: float,
        scale_in_cooldown: int,
        scale_out_cooldown: int,
        backlog: bool = False,
    ) -> None:
        """Create or replace a target-tracking policy: invocations per instance per minute, or
        with `backlog` the async queue per instance (which may scale to zero)."""
        raise NotImplementedError

    def delete_scaling_policy(self, endpoint: str, variant: str, name: str) -> None:
        """Delete a scaling policy; deleting one that is already gone is not an error."""
        raise NotImplementedError

    def describe_scaling_activities(self, endpoint: str, variant: str) -> list[ScalingActivity]:
        """The variant's scaling history, newest first."""
        raise NotImplementedError

    # Metrics and logs

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
        """One metric of one variant (or of the endpoint if `variant` is empty), oldest first."""
        raise NotImplementedError

    def endpoint_logs(self, name: str, limit: int = 200) -> list[LogLine]:
        """The endpoint's newest log lines, oldest first; empty if it has written none."""
        raise NotImplementedError

    # Storage

    def list_objects(self, prefix_uri: str) -> list[StoredObject]:
        """Every object under an s3:// prefix in the environment's bucket."""
        raise NotImplementedError

    def read_object(self, uri: str) -> bytes:
        """The content of one object in the environment's bucket."""
        raise NotImplementedError

    def upload_object(self, uri: str, data: bytes) -> None:
        """Write one object in the environment's bucket, replacing any there."""
        raise NotImplementedError

    # Model cards

    def create_or_update_model_card(self, name: str, content: dict, status: str) -> str:
        """Make the provider's model card hold `content` and `status`; returns its ARN."""
        raise NotImplementedError

    # Set-up

    def test_connection(self) -> list[ConnectionCheck]:
        """Try the calls the portal depends on and say, for each, whether it is allowed."""
        raise NotImplementedError
