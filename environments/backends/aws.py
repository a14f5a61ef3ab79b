"""The Amazon SageMaker backend: each provider action as boto3 calls, each error in plain words.

This is the only module that imports boto3. Every call goes through `call`, `call_or_none` or
`pages`, so every boto3 error passes through `provider_error`, the one place that words it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from environments.backends.base import (
    AsyncInvocation,
    Backend,
    ConnectionCheck,
    EndpointState,
    EndpointSummary,
    Invocation,
    LogLine,
    MetricPoint,
    ProviderBusy,
    ProviderError,
    ScalingActivity,
    StoredObject,
    StreamedAnswer,
    VariantState,
)
from environments.outbound import OutboundRefused

if TYPE_CHECKING:
    from environments.models import Environment

# botocore's default retry mode is still "legacy" (5 attempts), so say "standard" explicitly.
CONTROL_PLANE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=30
)
# An invocation is not idempotent: botocore retries read timeouts, which would replay a request
# the model may already be working on. One attempt, and 70 s because a container has 60 s.
RUNTIME_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=70
)
# While a person waits on a page: fewer and shorter tries. An AWS (or a proxy) that takes the
# connection and never answers then costs a page about 17 s, where the control plane's 3 tries of
# 30 s cost 90 s a call (Test connection took 271 s). Celery tasks keep the control plane's.
INTERACTIVE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=3, read_timeout=8
)
_patience: ContextVar[Config] = ContextVar("provider_patience", default=CONTROL_PLANE_CONFIG)


@contextmanager
def person_waiting() -> Iterator[None]:
    """Control-plane calls made inside use INTERACTIVE_CONFIG; environments.middleware wraps
    every web request in it. Invocations keep RUNTIME_CONFIG: a model has its 60 s."""
    token = _patience.set(INTERACTIVE_CONFIG)
    try:
        yield
    finally:
        _patience.reset(token)


def control_plane_config() -> Config:
    """The control plane's config here: INTERACTIVE_CONFIG inside `person_waiting`."""
    return _patience.get()


ROLE_SESSION_NAME = "endpoint-portal"
LOCAL_REGION = "us-east-1"  # any valid Region: botocore needs one to sign for the local runtime
REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
# Assumed-role credentials, shared by every backend in the process, keyed by (role, external id).
_role_credentials: dict[tuple[str, str], dict] = {}
_role_credentials_lock = threading.Lock()
# boto3 clients, made once per process: making one costs tens of milliseconds of CPU (it loads
# the service model), which every page, poll and invocation would otherwise pay. Clients are
# thread-safe. Keyed by where they point and whose credentials they carry.
_clients: dict[tuple, BaseClient] = {}
_clients_lock = threading.Lock()


def shared_client(key: tuple, make: Callable[[], BaseClient]) -> BaseClient:
    """The process's client for `key`, made by `make` the first time. `key[-1]` names the
    credentials: a client for the same place with newer credentials replaces the old one."""
    client = _clients.get(key)
    if client is None:
        client = make()
        with _clients_lock:
            for stale in [other for other in _clients if other[:-1] == key[:-1]]:
                del _clients[stale]
            _clients[key] = client
    return client


def forget_clients() -> None:
    """Drop every shared client (tests: each test's mocks get clients of their own)."""
    with _clients_lock:
        _clients.clear()


SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# These metrics live in the endpoint's instance namespace; every other one in AWS/SageMaker.
INSTANCE_METRICS = frozenset(
    {
        "CPUUtilization",
        "MemoryUtilization",
        "DiskUtilization",
        "GPUUtilization",
        "GPUMemoryUtilization",
        "LoadedModelCount",
    }
)
# The Logs page shows an endpoint's newest lines of its last hour. FilterLogEvents reads oldest
# first, so the hour is read in windows, newest first, until enough lines are found: a busy
# endpoint's last minute holds them, and its whole hour (36 pages of 10,000 events at 100 lines
# a second) is never read.
LOG_WINDOWS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)

# botocore/retries/standard.py: the codes botocore itself treats as throttling.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ObjectNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NotFound",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
VALIDATION_CODES = frozenset({"ValidationException", "ValidationError"})
# SageMaker reports a missing model, config or endpoint as a ValidationException:
# "Could not find endpoint 'arn:...'"; the runtime says "Endpoint x of account y not found.";
# Application Auto Scaling says "No scaling policy found for ...".
NOT_FOUND_WORDS = re.compile(
    r"could not find|does not exist|not found|\bno [\w ]+ found\b", re.IGNORECASE
)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
DENIED_ACTION = re.compile(r"perform: ([\w-]+:\w+)")
QUOTA_NAME = re.compile(r"service limit '([^']+)'")


def session_for(environment: Environment) -> boto3.Session:
    """A session on the default credential chain, or on the environment's role if it names one."""
    region = environment.region or None
    if not environment.assume_role_arn:
        return call(boto3.Session, region_name=region)  # a bad AWS_PROFILE fails here
    credentials = role_credentials(environment.assume_role_arn, environment.external_id, region)
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def local_session() -> boto3.Session:
    """A session for the local runtime. It checks no signature, but botocore signs every request,
    so it gets placeholder keys that are not secrets and open nothing."""
    return boto3.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 (a placeholder the local runtime ignores)
        region_name=LOCAL_REGION,
    )


def role_credentials(role_arn: str, external_id: str, region: str | None) -> dict:
    """Temporary credentials for the role, reused until 5 minutes before they expire."""
    key = (role_arn, external_id)
    # One lock for every role: AssumeRole is rare and quick, and the lock keeps a burst of
    # requests from assuming the same role many times over.
    with _role_credentials_lock:
        credentials = _role_credentials.get(key)
        if credentials and credentials["Expiration"] - datetime.now(UTC) > REFRESH_BEFORE_EXPIRY:
            return credentials
        request = {"RoleArn": role_arn, "RoleSessionName": ROLE_SESSION_NAME}
        if external_id:
            request["ExternalId"] = external_id
        sts = call(
            boto3.Session(region_name=region).client,
            service_name="sts",
            config=control_plane_config(),
        )
        credentials = call(sts.assume_role, **request)["Credentials"]
        _role_credentials[key] = credentials
        return credentials


class AwsBackend(Backend):
    """One environment's AWS account and Region. Clients are made on first use, so building a
    backend calls nothing; the local backend overrides `session` and `client`."""

    def __init__(self, environment: Environment, session: boto3.Session | None = None):
        super().__init__(environment)
        self.shares_clients = session is None
        self.control_plane_clients: dict[tuple[str, int], BaseClient] = {}
        if session is not None:
            self.session = session  # injected in tests; takes the place of the property below

    @cached_property
    def session(self) -> boto3.Session:
        return session_for(self.environment)

    def client(self, service: str, config: Config) -> BaseClient:
        """A boto3 client for `service` in the environment's Region, shared by the process."""

        def make() -> BaseClient:
            # Made before any `call` runs, so its own errors (no Region, an unknown profile)
            # are worded here.
            return call(
                self.session.client,
                service_name=service,
                region_name=self.environment.region or None,
                config=config,
            )

        if not self.shares_clients:
            return make()
        environment = self.environment
        if environment.assume_role_arn:
            credentials = role_credentials(
                environment.assume_role_arn, environment.external_id, environment.region or None
            )
            whose = ("role", environment.assume_role_arn, credentials["AccessKeyId"])
        else:
            whose = ("chain",)  # botocore refreshes the default chain's credentials itself
        return shared_client(("aws", service, environment.region, id(config), whose), make)

    def control_plane(self, service: str) -> BaseClient:
        """This backend's client for `service` with the config in force here (a page's
        INTERACTIVE_CONFIG, a task's CONTROL_PLANE_CONFIG), made once for each."""
        config = control_plane_config()
        key = (service, id(config))
        if key not in self.control_plane_clients:
            self.control_plane_clients[key] = self.client(service, config)
        return self.control_plane_clients[key]

    @property
    def sagemaker(self) -> BaseClient:
        return self.control_plane("sagemaker")

    @cached_property
    def runtime(self) -> BaseClient:
        return self.client("sagemaker-runtime", RUNTIME_CONFIG)

    @property
    def autoscaling(self) -> BaseClient:
        return self.control_plane("application-autoscaling")

    @property
    def cloudwatch(self) -> BaseClient:
        return self.control_plane("cloudwatch")

    @property
    def s3(self) -> BaseClient:
        return self.control_plane("s3")

    @property
    def logs(self) -> BaseClient:
        return self.control_plane("logs")

    @property
    def sts(self) -> BaseClient:
        return self.control_plane("sts")

    # Models: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html

    def create_model(self, request: dict) -> str:
        return call(self.sagemaker.create_model, **request)["ModelArn"]

    def describe_model(self, name: str) -> dict | None:
        return without_metadata(call_or_none(self.sagemaker.describe_model, ModelName=name))

    def delete_model(self, name: str) -> None:
        call_or_none(self.sagemaker.delete_model, ModelName=name)

    # Endpoint configs

    def create_endpoint_config(self, request: dict) -> str:
        return call(self.sagemaker.create_endpoint_config, **request)["EndpointConfigArn"]

    def describe_endpoint_config(self, name: str) -> dict | None:
        found = call_or_none(self.sagemaker.describe_endpoint_config, EndpointConfigName=name)
        return without_metadata(found)

    def delete_endpoint_config(self, name: str) -> None:
        call_or_none(self.sagemaker.delete_endpoint_config, EndpointConfigName=name)

    # Endpoints

    def create_endpoint(self, name: str, config_name: str) -> str:
        response = call(
            self.sagemaker.create_endpoint, EndpointName=name, EndpointConfigName=config_name
        )
        return response["EndpointArn"]

    def update_endpoint(self, name: str, config_name: str) -> None:
        call(self.sagemaker.update_endpoint, EndpointName=name, EndpointConfigName=config_name)

    def describe_endpoint(self, name: str) -> EndpointState | None:
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
        found = call_or_none(self.sagemaker.describe_endpoint, EndpointName=name)
        if found is None:
            return None
        return EndpointState(
            name=found["EndpointName"],
            status=found["EndpointStatus"],
            failure_reason=found.get("FailureReason", ""),
            config_name=found.get("EndpointConfigName", ""),
            variants=tuple(
                VariantState(
                    name=variant["VariantName"],
                    current_instances=variant.get("CurrentInstanceCount"),
                    desired_instances=variant.get("DesiredInstanceCount"),
                    current_weight=variant.get("CurrentWeight"),
                    # While a serverless endpoint is created only the desired config exists.
                    serverless=variant.get("CurrentServerlessConfig")
                    or variant.get("DesiredServerlessConfig"),
                )
                for variant in found.get("ProductionVariants", [])
            ),
            created=found.get("CreationTime"),
            modified=found.get("LastModifiedTime"),
        )

    def list_endpoints(self, name_contains: str = "") -> list[EndpointSummary]:
        # MaxResults defaults to 10; 100 is the most one page may hold.
        params: dict[str, Any] = {"PaginationConfig": {"PageSize": 100}}
        if name_contains:
            params["NameContains"] = name_contains
        return [
            EndpointSummary(
                name=summary["EndpointName"],
                status=summary["EndpointStatus"],
                modified=summary.get("LastModifiedTime"),
            )
            for page in pages(self.sagemaker, "list_endpoints", **params)
            for summary in page["Endpoints"]
        ]

    def delete_endpoint(self, name: str) -> None:
        call_or_none(self.sagemaker.delete_endpoint, EndpointName=name)

    # Invocations: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html

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
        params = given(
            EndpointName=endpoint,
            Body=body,
            ContentType=content_type,
            Accept=accept,
            TargetModel=target_model,
            TargetVariant=target_variant,
            TargetContainerHostname=target_container,
            CustomAttributes=custom_attributes,
            InferenceId=inference_id,
        )
        runtime = self.runtime  # made before the clock starts: the first one takes 100-250 ms
        started = time.perf_counter()
        try:
            response = runtime.invoke_endpoint(**params)
            answer = response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise provider_error(error) from error
        return Invocation(
            body=answer,
            content_type=response.get("ContentType", ""),
            variant=response.get("InvokedProductionVariant", ""),
            custom_attributes=response.get("CustomAttributes", ""),
            model_ms=self.reported_model_ms(response),
            total_ms=(time.perf_counter() - started) * 1000,
        )

    def reported_model_ms(self, response: dict) -> float | None:
        """The model's own time for one call: SageMaker reports ModelLatency only to
        CloudWatch, so none here."""
        return None

    def invoke_async(
        self,
        endpoint: str,
        *,
        input_location: str,
        content_type: str,
        accept: str = "",
        inference_id: str = "",
    ) -> AsyncInvocation:
        params = given(
            EndpointName=endpoint,
            InputLocation=input_location,
            ContentType=content_type,
            Accept=accept,
            InferenceId=inference_id,
        )
        response = call(self.runtime.invoke_endpoint_async, **params)
        return AsyncInvocation(
            inference_id=response.get("InferenceId", ""),
            output_location=response.get("OutputLocation", ""),
            failure_location=response.get("FailureLocation", ""),
        )

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
    ) -> Iterator[bytes]:
        # The request is sent now, so a refused request fails here rather than at the first part.
        params = given(
            EndpointName=endpoint,
            Body=body,
            ContentType=content_type,
            Accept=accept,
            TargetVariant=target_variant,
            TargetContainerHostname=target_container,
            CustomAttributes=custom_attributes,
        )
        response = call(self.runtime.invoke_endpoint_with_response_stream, **params)
        return StreamedAnswer(
            payload_parts(response["Body"]),
            content_type=response.get("ContentType", ""),
            variant=response.get("InvokedProductionVariant", ""),
        )

    # Autoscaling: https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling.html

    def register_scalable_target(
        self, endpoint: str, variant: str, minimum: int, maximum: int
    ) -> None:
        call(
            self.autoscaling.register_scalable_target,
            ServiceNamespace="sagemaker",
            ResourceId=variant_resource_id(endpoint, variant),
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=minimum,
            MaxCapacity=maximum,
        )

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
        if backlog:
            # Async endpoints scale on their queue and may scale to zero (sagemaker.md §4).
            metric = {
                "CustomizedMetricSpecification": {
                    "MetricName": "ApproximateBacklogSizePerInstance",
                    "Namespace": "AWS/SageMaker",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                    "Statistic": "Average",
                }
            }
        else:
            metric = {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                }
            }
        call(
            self.autoscaling.put_scaling_policy,
            PolicyName=name,
            ServiceNamespace="sagemaker",
            ResourceId=variant_resource_id(endpoint, variant),
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(target_invocations_per_instance),
                **metric,
                "ScaleInCooldown": scale_in_cooldown,
                "ScaleOutCooldown": scale_out_cooldown,
            },
        )

    def delete_scaling_policy(self, endpoint: str, variant: str, name: str) -> None:
        call_or_none(
            self.autoscaling.delete_scaling_policy,
            PolicyName=name,
            ServiceNamespace="sagemaker",
            ResourceId=variant_resource_id(endpoint, variant),
            ScalableDimension=SCALABLE_DIMENSION,
        )

    def describe_scaling_activities(self, endpoint: str, variant: str) -> list[ScalingActivity]:
        activities = [
            ScalingActivity(
                activity_id=activity["ActivityId"],
                description=activity.get("Description", ""),
                cause=activity.get("Cause", ""),
                status=activity["StatusCode"],
                start=activity["StartTime"],
                end=activity.get("EndTime"),
                message=activity.get("StatusMessage", ""),
            )
            for page in pages(
                self.autoscaling,
                "describe_scaling_activities",
                ServiceNamespace="sagemaker",
                ResourceId=variant_resource_id(endpoint, variant),
                ScalableDimension=SCALABLE_DIMENSION,
            )
            for activity in page["ScalingActivities"]
        ]
        return sorted(activities, key=lambda activity: activity.start, reverse=True)

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
        # https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
        namespace = "/aws/sagemaker/Endpoints" if metric in INSTANCE_METRICS else "AWS/SageMaker"
        dimensions = [{"Name": "EndpointName", "Value": endpoint}]
        if variant:  # async backlog metrics carry only EndpointName
            dimensions.append({"Name": "VariantName", "Value": variant})
        query = {
            "Id": "series",  # an Id starts with a lowercase letter
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
        }
        points = [
            MetricPoint(time=moment, value=float(value))
            for page in pages(
                self.cloudwatch,
                "get_metric_data",
                MetricDataQueries=[query],
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for result in page["MetricDataResults"]
            for moment, value in zip(result["Timestamps"], result["Values"], strict=True)
        ]
        return sorted(points, key=lambda point: point.time)

    def endpoint_logs(self, name: str, limit: int = 200) -> list[LogLine]:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        end_ms, windows, found = now_ms, [], 0
        paginator = self.logs.get_paginator("filter_log_events")
        try:
            for reach in LOG_WINDOWS:  # newest first; each one ends where the next one began
                start_ms = now_ms - int(reach.total_seconds() * 1000)
                window: deque[dict] = deque(maxlen=limit)  # its newest lines
                for page in paginator.paginate(
                    logGroupName=f"/aws/sagemaker/Endpoints/{name}",
                    startTime=start_ms,
                    endTime=end_ms,  # inclusive
                ):
                    window.extend(page["events"])
                windows.insert(0, window)
                found += len(window)
                if found >= limit:
                    break
                end_ms = start_ms - 1
        except ClientError as error:
            if is_not_found(error):
                return []  # the log group appears with the endpoint's first container
            raise provider_error(error) from error
        except BotoCoreError as error:
            raise provider_error(error) from error
        newest = [event for window in windows for event in window][-limit:]
        return [
            LogLine(
                time=datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                if "timestamp" in event
                else None,
                source=event.get("logStreamName", ""),
                message=event.get("message", "").rstrip("\n"),
            )
            for event in newest
        ]

    # Storage

    def list_objects(self, prefix_uri: str) -> list[StoredObject]:
        bucket, prefix = self.s3_location(prefix_uri)
        return [
            StoredObject(
                uri=f"s3://{bucket}/{found['Key']}",
                size=found["Size"],
                modified=found["LastModified"],
            )
            for page in pages(self.s3, "list_objects_v2", Bucket=bucket, Prefix=prefix)
            for found in page.get("Contents", [])
        ]

    def read_object(self, uri: str) -> bytes:
        bucket, key = self.s3_location(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise provider_error(error) from error

    def upload_object(self, uri: str, data: bytes) -> None:
        bucket, key = self.s3_location(uri)
        call(self.s3.put_object, Bucket=bucket, Key=key, Body=data)

    def s3_location(self, uri: str) -> tuple[str, str]:
        """The bucket and key of an s3:// URI in this environment's bucket."""
        # Not urlsplit: an S3 key may hold "?" and "#".
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket:
            raise ProviderError(
                f"Use an s3:// address such as {self.environment.storage_uri}data.jsonl, "
                f"not {uri!r}.",
                code="InvalidLocation",
            )
        if bucket != self.environment.bucket:
            raise ProviderError(
                f"The portal reads and writes only in this environment's bucket, "
                f"{self.environment.bucket}; {uri} lies outside it.",
                code="OutsideBucket",
            )
        return bucket, key

    # Model cards: https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards.html

    def create_or_update_model_card(self, name: str, content: dict, status: str) -> str:
        document = json.dumps(content)
        found = call_or_none(self.sagemaker.describe_model_card, ModelCardName=name)
        if found is None:
            response = call(
                self.sagemaker.create_model_card,
                ModelCardName=name,
                Content=document,
                ModelCardStatus=status,
            )
            return response["ModelCardArn"]
        # UpdateModelCard refuses content and status together, and each content change makes a
        # new version: send only what differs, one change per call.
        changes = []
        if json.loads(found.get("Content") or "{}") != content:
            changes.append({"Content": document})
        if found.get("ModelCardStatus") != status:
            changes.append({"ModelCardStatus": status})
        if found.get("ModelCardStatus") == "Archived":
            changes.reverse()  # an archived card takes no edits, so leave Archived first
        for change in changes:
            call(self.sagemaker.update_model_card, ModelCardName=name, **change)
        return found["ModelCardArn"]

    # Set-up

    def test_connection(self) -> list[ConnectionCheck]:
        bucket, prefix = self.environment.bucket, self.environment.prefix
        checks = []
        if self.environment.assume_role_arn:
            role = self.environment.assume_role_arn
            checks.append(connection_check(f"sts:AssumeRole {role}", lambda: self.session))
        calls = [
            ("sts:GetCallerIdentity", "sts", "get_caller_identity", {}),
            ("sagemaker:ListEndpoints", "sagemaker", "list_endpoints", {"MaxResults": 1}),
            (
                f"s3:ListBucket on s3://{bucket}/{prefix}",
                "s3",
                "list_objects_v2",
                {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1},
            ),
        ]
        # The clients are made here, one after another (a boto3 session is not thread-safe),
        # and the calls then go out together: an AWS that never answers costs the page the
        # time of one call, not of three.
        attempts: dict[str, Callable[[], object] | ProviderError] = {}
        for name, service, method, params in calls:
            try:
                attempts[name] = partial(getattr(self.control_plane(service), method), **params)
            except ProviderError as error:
                attempts[name] = error
        with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
            checks += pool.map(connection_check, attempts.keys(), attempts.values())
        return checks


def connection_check(name: str, attempt: Callable[[], object] | ProviderError) -> ConnectionCheck:
    """Whether `attempt` (or the client it needed, when that failed) is allowed, in words."""
    try:
        if isinstance(attempt, ProviderError):
            raise attempt
        call(attempt)
    except ProviderError as error:
        denied = error.code in ACCESS_DENIED_CODES or error.code in CREDENTIAL_CODES
        verdict = "Denied" if denied else "Failed"
        return ConnectionCheck(name, ok=False, detail=f"{verdict}: {error.message}")
    return ConnectionCheck(name, ok=True, detail="Allowed")


def call(operation: Callable[..., Any], **params: Any) -> Any:
    """Run one boto3 call, turning its errors into ProviderError."""
    try:
        return operation(**params)
    except (ClientError, BotoCoreError) as error:
        raise provider_error(error) from error


def call_or_none(operation: Callable[..., Any], **params: Any) -> Any:
    """Like `call`, but None where the thing named does not exist (a delete of something
    already gone, a describe of something never made)."""
    try:
        return operation(**params)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise provider_error(error) from error
    except BotoCoreError as error:
        raise provider_error(error) from error


def pages(client: BaseClient, operation: str, **params: Any) -> Iterator[dict]:
    """Every page of a paginated call, turning its errors into ProviderError."""
    try:
        yield from client.get_paginator(operation).paginate(**params)
    except (ClientError, BotoCoreError) as error:
        raise provider_error(error) from error


def payload_parts(events: Iterable[dict]) -> Iterator[bytes]:
    """The bytes of each PayloadPart in a response stream; an error event becomes
    ProviderError. Parts are arbitrary slices: a line or a token may span two."""
    try:
        for event in events:
            part = event.get("PayloadPart")
            if part and part.get("Bytes"):
                yield part["Bytes"]
    except (ClientError, BotoCoreError) as error:  # EventStreamError is a ClientError
        raise provider_error(error) from error
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a reader that stops early frees the connection


def given(**params: Any) -> dict[str, Any]:
    """The parameters that have a value: botocore refuses empty strings for most optional ones."""
    return {name: value for name, value in params.items() if value not in ("", None)}


def without_metadata(response: dict | None) -> dict | None:
    if response is not None:
        response.pop("ResponseMetadata", None)
    return response


def variant_resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_not_found(error: ClientError) -> bool:
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    if code in NOT_FOUND_CODES:
        return True
    return code in VALIDATION_CODES and NOT_FOUND_WORDS.search(message) is not None


def resource_noun(operation: str) -> str:
    """What an operation acts on, in words: "DeleteEndpointConfig" → "endpoint config"."""
    words = re.findall(r"[A-Z][a-z]+", operation)[1:]
    if "With" in words:
        words = words[: words.index("With")]
    return " ".join(word for word in words if word != "Async").lower() or "resource"


def raw_text(error: Exception) -> str:
    """The provider's own text, with any extra members (OriginalMessage, LogStreamArn, ...)."""
    text = str(error)
    if isinstance(error, ClientError):
        extra = {
            name: value
            for name, value in error.response.items()
            if name not in ("Error", "ResponseMetadata")
        }
        if extra:
            text += "\n" + json.dumps(extra, default=str)
    return text


def outbound_refusal(error: BaseException) -> OutboundRefused | None:
    """The S9 guard's refusal behind a botocore connection error, if that is what it was
    (botocore keeps urllib3's error in kwargs["error"], urllib3 chains ours as the cause)."""
    seen: list[BaseException] = []
    while error is not None and len(seen) < 10:
        if isinstance(error, OutboundRefused):
            return error
        seen.append(error)
        inner = getattr(error, "kwargs", {}).get("error") if hasattr(error, "kwargs") else None
        error = inner or error.__cause__ or error.__context__
    return None


def provider_error(error: Exception) -> ProviderError:
    """The one place a boto3 error becomes words a user can act on."""
    raw = raw_text(error)
    if refusal := outbound_refusal(error):
        # Not busy: retrying cannot help, and the user should see where it was going.
        return ProviderError(
            f"The portal does not connect there: {refusal}. Its outbound traffic goes only to "
            "AWS endpoints on public addresses and to the local runtime; an administrator can "
            "allow a proxy or VPC endpoint in PORTAL_OUTBOUND_ALLOW.",
            code="OutboundRefused",
            raw=raw,
        )
    if isinstance(error, BotoConnectionError | HTTPClientError):
        # Refused or dropped connections and connect or read timeouts (ReadTimeoutError is an
        # HTTPClientError).
        return ProviderBusy(
            "AWS did not answer in time or the connection failed; try again in a minute.",
            code=type(error).__name__,
            raw=raw,
        )
    if isinstance(error, NoCredentialsError):
        return ProviderError(
            "The portal found no AWS credentials. Give its process a role (an instance profile "
            "or task role) or set up the default credential chain.",
            code=type(error).__name__,
            raw=raw,
        )
    if isinstance(error, NoRegionError):
        return ProviderError(
            "The environment names no AWS Region; set one, like eu-west-1.",
            code=type(error).__name__,
            raw=raw,
        )
    if not isinstance(error, ClientError):
        return ProviderError(
            f"The AWS SDK refused the call: {error}", code=type(error).__name__, raw=raw
        )

    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "") or code
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    operation = error.operation_name or "the call"
    noun = resource_noun(error.operation_name or "")

    if "iam:PassRole" in message:
        found = ROLE_ARN.search(message)
        role = found.group(0).rstrip(".") if found else "the execution role"
        return ProviderError(
            "The portal may not pass the execution role to SageMaker: allow iam:PassRole on "
            f"{role} for the portal's principal.",
            code=code,
            raw=raw,
        )
    if code in THROTTLING_CODES:
        return ProviderBusy(
            f"AWS is throttling the portal's calls ({operation}); try again shortly.",
            code=code,
            raw=raw,
        )
    if code == "ModelNotReadyException":
        return ProviderBusy(
            "The model is not ready yet: a serverless variant is still starting, or a "
            "multi-model target is still loading. Try again in a few seconds.",
            code=code,
            raw=raw,
        )
    if code == "InternalStreamFailure" or code in UNAVAILABLE_CODES or 500 <= status <= 504:
        return ProviderBusy(
            f"AWS had a passing problem with {operation} ({code}); try again in a minute.",
            code=code,
            raw=raw,
        )
    if code == "ModelError":
        original_status = error.response.get("OriginalStatusCode", "an error")
        original_message = error.response.get("OriginalMessage") or message
        return ProviderError(
            f"The model answered {original_status}: {original_message.rstrip('.')}. "
            "Its container's log has the details.",
            code=code,
            raw=raw,
        )
    if code == "ModelStreamError":
        return ProviderError(
            f"The model stopped part-way through its answer: {message}", code=code, raw=raw
        )
    if code == "ResourceLimitExceeded":
        quota = QUOTA_NAME.search(message)
        return ProviderError(
            f"The account's quota for {quota.group(1) if quota else noun + 's'} is reached; "
            f"ask AWS for more (Service Quotas) or delete unused {noun}s. AWS says: {message}",
            code=code,
            raw=raw,
        )
    if code == "ResourceInUse":
        return ProviderError(
            f"The {noun} is in use: {message.rstrip('.')}. Wait until what uses it has "
            "finished, or remove that first.",
            code=code,
            raw=raw,
            retryable=True,
        )
    if is_not_found(error):
        if not message.lower().startswith("could not find"):
            message = f"Could not find the {noun}: {message}"
        return ProviderError(message, code=code, raw=raw)
    if code in ACCESS_DENIED_CODES:
        action = DENIED_ACTION.search(message)
        return ProviderError(
            f"The portal's AWS principal may not call {action.group(1) if action else operation};"
            f" add it to the principal's IAM policy (see docs/iam-policy.json). AWS says: "
            f"{message}",
            code=code,
            raw=raw,
        )
    if code in CREDENTIAL_CODES:
        return ProviderError(
            f"AWS did not accept the portal's credentials ({code}): they are unknown, expired "
            "or wrong. Check the default credential chain or the role to assume.",
            code=code,
            raw=raw,
        )
    if code in VALIDATION_CODES:
        return ProviderError(f"AWS rejected the request: {message}", code=code, raw=raw)
    return ProviderError(f"AWS refused {operation}: {message}", code=code, raw=raw)
