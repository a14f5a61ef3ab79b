"""The AWS backend: every provider call, its errors in plain words, retries, and credentials.

moto answers the calls it implements. botocore's Stubber answers the rest (UpdateEndpoint,
DescribeScalingActivities, the runtime's invocations and errors) and checks each request against
the real service model. Retries and response streams run against a small HTTP server on
127.0.0.1, because the Stubber answers before botocore's retry handler ever runs.
"""

import ast
import io
import itertools
import json
import pickle
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import boto3
import botocore.client
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from botocore.retries.standard import ExponentialBackoff
from botocore.stub import Stubber
from moto import mock_aws

from environments.backends import aws, get_backend
from environments.backends.aws import AwsBackend, payload_parts, provider_error
from environments.backends.base import (
    EndpointState,
    LogLine,
    MetricPoint,
    ProviderBusy,
    ProviderError,
    VariantState,
)
from environments.models import Environment
from runtime.eventstream import model_stream_error, payload_part

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PortalSageMakerExecution"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sklearn:1"


# Fixtures


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, aws_test_keys: None) -> Iterator[None]:
    """Fake credentials, no config files, an empty role cache and no retry sleeps."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    aws._role_credentials.clear()
    yield
    aws._role_credentials.clear()


@pytest.fixture
def environment() -> Environment:
    return Environment(name="prod", kind="aws", region=REGION, bucket="acme-ml", prefix="portal/")


@pytest.fixture
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def backend(environment: Environment, session: boto3.Session) -> AwsBackend:
    return AwsBackend(environment, session=session)


@pytest.fixture
def moto(backend: AwsBackend) -> Iterator[AwsBackend]:
    """The backend, with every AWS call answered by moto."""
    with mock_aws():
        yield backend


@pytest.fixture
def bucket(moto: AwsBackend) -> str:
    moto.s3.create_bucket(
        Bucket="acme-ml", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return "acme-ml"


class FakeAws:
    """A tiny HTTP server on 127.0.0.1 that answers each request with the next scripted answer
    and remembers what it was sent."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[SimpleNamespace] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append(
                    SimpleNamespace(path=self.path, headers=self.headers, body=body)
                )
                status, headers, payload = fake.answers.pop(0)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def throttle_json(self) -> None:
        """A control-plane (awsJson1.1) throttling answer."""
        body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        self.answers.append(
            (400, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode())
        )

    def answer_json(self, body: dict) -> None:
        self.answers.append(
            (200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode())
        )


class BackendAt(AwsBackend):
    """The AWS backend pointed at another URL, as the local backend points at its runtime."""

    def __init__(self, environment: Environment, session: boto3.Session, url: str):
        super().__init__(environment, session=session)
        self.url = url

    def client(self, service: str, config: Config) -> botocore.client.BaseClient:
        return self.session.client(
            service, region_name=REGION, endpoint_url=self.url, config=config
        )


@pytest.fixture
def fake_aws(settings: object) -> Iterator[FakeAws]:
    fake = FakeAws()
    settings.PORTAL_OUTBOUND_ALLOW = [fake.url.removeprefix("http://")]  # S9's guard lets it in
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def backend_at_fake(environment: Environment, session: boto3.Session, fake_aws: FakeAws):
    return BackendAt(environment, session, fake_aws.url)


def make_endpoint(backend: AwsBackend, name: str, config_name: str = "portal-config") -> None:
    if backend.describe_model("portal-model") is None:
        backend.create_model(
            {
                "ModelName": "portal-model",
                "PrimaryContainer": {"Image": IMAGE},
                "ExecutionRoleArn": EXECUTION_ROLE,
            }
        )
    if backend.describe_endpoint_config(config_name) is None:
        backend.create_endpoint_config(
            {
                "EndpointConfigName": config_name,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "portal-model",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 2,
                    }
                ],
            }
        )
    backend.create_endpoint(name, config_name)


def streaming(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


# get_backend


def test_aws_environment_gets_the_aws_backend_without_calling_aws(environment):
    with mock.patch.object(botocore.client.BaseClient, "_make_api_call") as api_call:
        backend = get_backend(environment)

    assert isinstance(backend, AwsBackend)
    assert backend.environment is environment
    api_call.assert_not_called()


def test_unknown_environment_kind_is_refused(environment):
    environment.kind = "gcp"

    with pytest.raises(ValueError, match="gcp"):
        get_backend(environment)


# Client configuration


def control_plane_clients(backend: AwsBackend) -> list[botocore.client.BaseClient]:
    return [
        backend.sagemaker,
        backend.autoscaling,
        backend.cloudwatch,
        backend.s3,
        backend.logs,
        backend.sts,
    ]


def test_control_plane_clients_retry_three_times_in_standard_mode(backend):
    for client in control_plane_clients(backend):
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert client.meta.config.connect_timeout == 5
        assert client.meta.config.read_timeout == 30
        assert client.meta.region_name == REGION


def test_runtime_client_tries_once_and_waits_seventy_seconds(backend):
    config = backend.runtime.meta.config

    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.connect_timeout == 5
    assert config.read_timeout == 70


def test_a_pages_control_plane_clients_try_twice_for_at_most_eight_seconds(backend):
    """A person waits on a page (environments.middleware): fewer, shorter tries."""
    with aws.person_waiting():
        for client in control_plane_clients(backend):
            assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
            assert client.meta.config.connect_timeout == 3
            assert client.meta.config.read_timeout == 8
        # An invocation is sent once and a model keeps its 60 s, on a page too.
        assert backend.runtime.meta.config.read_timeout == 70
        assert backend.sagemaker is backend.sagemaker

    # Outside a page (a Celery task) the same backend uses the control plane's three tries.
    assert backend.sagemaker.meta.config.retries["total_max_attempts"] == 3
    assert backend.sagemaker.meta.config.read_timeout == 30


def test_clients_are_made_once_per_backend(backend):
    assert backend.sagemaker is backend.sagemaker
    assert backend.runtime is not backend.sagemaker


# Retries, against a real HTTP server


DESCRIBED = {
    "EndpointName": "portal-demo",
    "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/portal-demo",
    "EndpointConfigName": "portal-demo-1",
    "EndpointStatus": "InService",
    "CreationTime": 1_700_000_000,
    "LastModifiedTime": 1_700_000_100,
}


def test_throttled_control_plane_call_is_retried_and_succeeds_on_the_third_attempt(
    backend_at_fake, fake_aws
):
    fake_aws.throttle_json()
    fake_aws.throttle_json()
    fake_aws.answer_json(DESCRIBED)

    state = backend_at_fake.describe_endpoint("portal-demo")

    assert state.status == "InService"
    assert len(fake_aws.requests) == 3
    assert all(
        request.headers["X-Amz-Target"] == "SageMaker.DescribeEndpoint"
        for request in fake_aws.requests
    )


def test_throttling_on_every_attempt_surfaces_as_provider_busy_after_three(
    backend_at_fake, fake_aws
):
    for _ in range(4):
        fake_aws.throttle_json()

    with pytest.raises(ProviderBusy) as raised:
        backend_at_fake.describe_endpoint("portal-demo")

    assert len(fake_aws.requests) == 3  # the fourth answer is never asked for
    assert raised.value.code == "ThrottlingException"
    assert raised.value.retryable
    assert "throttling" in raised.value.message


def test_throttled_invocation_is_not_retried(backend_at_fake, fake_aws):
    fake_aws.answers.append(
        (400, {"x-amzn-ErrorType": "ThrottlingException"}, b'{"message": "Slow down"}')
    )
    fake_aws.answers.append((200, {"Content-Type": "application/json"}, b"{}"))

    with pytest.raises(ProviderBusy):
        backend_at_fake.invoke("portal-demo", b"{}", content_type="application/json")

    assert len(fake_aws.requests) == 1


def test_unreachable_provider_is_busy_not_broken(environment, session, settings):
    with socket.socket() as probe:  # bound but never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        settings.PORTAL_OUTBOUND_ALLOW = [f"127.0.0.1:{probe.getsockname()[1]}"]  # past S9
        backend = BackendAt(environment, session, f"http://127.0.0.1:{probe.getsockname()[1]}")

        with pytest.raises(ProviderBusy) as raised:
            backend.describe_endpoint("portal-demo")

    assert raised.value.code == "EndpointConnectionError"


# Models and endpoint configs (moto)


def test_model_is_created_described_and_deleted(moto):
    arn = moto.create_model(
        {
            "ModelName": "portal-model",
            "PrimaryContainer": {"Image": IMAGE, "Environment": {"A": "1"}},
            "ExecutionRoleArn": EXECUTION_ROLE,
        }
    )

    described = moto.describe_model("portal-model")
    moto.delete_model("portal-model")

    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/portal-model"
    assert described["PrimaryContainer"]["Environment"] == {"A": "1"}
    assert "ResponseMetadata" not in described
    assert moto.describe_model("portal-model") is None


def test_missing_model_is_described_as_none_and_deleting_it_is_fine(moto):
    assert moto.describe_model("portal-missing") is None
    moto.delete_model("portal-missing")


def test_endpoint_config_is_created_described_and_deleted(moto):
    moto.create_model({"ModelName": "portal-model", "PrimaryContainer": {"Image": IMAGE}})

    arn = moto.create_endpoint_config(
        {
            "EndpointConfigName": "portal-config",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "portal-model",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
        }
    )

    described = moto.describe_endpoint_config("portal-config")
    moto.delete_endpoint_config("portal-config")
    moto.delete_endpoint_config("portal-config")  # already gone: still fine

    assert arn.endswith(":endpoint-config/portal-config")
    assert described["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"] == 5
    assert moto.describe_endpoint_config("portal-config") is None


def test_invalid_model_request_is_refused_before_it_leaves(moto):
    with pytest.raises(ProviderError) as raised:
        moto.create_model({"ModelName": "portal-model", "PrimaryContainer": {"Image": 7}})

    assert raised.value.code == "ParamValidationError"
    assert not isinstance(raised.value, ProviderBusy)


# Endpoints


def test_created_endpoint_is_described_with_its_variants(moto):
    make_endpoint(moto, "portal-demo")

    state = moto.describe_endpoint("portal-demo")

    assert state.name == "portal-demo"
    assert state.status == "InService"  # moto skips Creating
    assert state.config_name == "portal-config"
    assert state.failure_reason == ""
    (variant,) = state.variants
    assert (variant.name, variant.current_instances, variant.desired_instances) == (
        "AllTraffic",
        2,
        2,
    )
    assert variant.serverless is None
    assert isinstance(state.created, datetime)


def test_describe_endpoint_returns_none_for_a_missing_endpoint(moto):
    assert moto.describe_endpoint("portal-missing") is None


def test_failed_serverless_endpoint_is_described_with_its_reason(backend):
    response = {
        "EndpointName": "portal-demo",
        "EndpointArn": DESCRIBED["EndpointArn"],
        "EndpointConfigName": "portal-demo-1",
        "EndpointStatus": "Failed",
        "FailureReason": "The container failed its ping health check.",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "DesiredServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    }
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response("describe_endpoint", response, {"EndpointName": "portal-demo"})

        state = backend.describe_endpoint("portal-demo")

        stubber.assert_no_pending_responses()
    assert state == EndpointState(
        name="portal-demo",
        status="Failed",
        failure_reason="The container failed its ping health check.",
        config_name="portal-demo-1",
        variants=(
            VariantState(
                name="AllTraffic",
                current_instances=None,
                desired_instances=None,
                current_weight=None,
                serverless={"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            ),
        ),
        created=datetime(2026, 1, 1, tzinfo=UTC),
        modified=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    )


def test_list_endpoints_pages_through_more_than_one_hundred(moto):
    for number in range(205):
        make_endpoint(moto, f"portal-e{number:03}")
    asked: list[dict] = []
    moto.sagemaker.meta.events.register(
        "provide-client-params.sagemaker.ListEndpoints",
        lambda params, **kwargs: asked.append(dict(params)),
    )

    summaries = moto.list_endpoints()

    assert len(summaries) == 205
    assert {summary.name for summary in summaries} == {f"portal-e{n:03}" for n in range(205)}
    assert len(asked) == 3
    assert all(params["MaxResults"] == 100 for params in asked)
    assert summaries[0].status == "InService"


def test_list_endpoints_filters_by_name(moto):
    make_endpoint(moto, "portal-alpha")
    make_endpoint(moto, "portal-beta")

    summaries = moto.list_endpoints(name_contains="beta")

    assert [summary.name for summary in summaries] == ["portal-beta"]


def test_endpoint_is_deleted_and_deleting_it_again_is_fine(moto):
    make_endpoint(moto, "portal-demo")

    moto.delete_endpoint("portal-demo")
    moto.delete_endpoint("portal-demo")

    assert moto.describe_endpoint("portal-demo") is None


def test_update_endpoint_sends_the_new_config(backend):
    # moto has no UpdateEndpoint.
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response(
            "update_endpoint",
            {"EndpointArn": DESCRIBED["EndpointArn"]},
            {"EndpointName": "portal-demo", "EndpointConfigName": "portal-demo-2"},
        )

        backend.update_endpoint("portal-demo", "portal-demo-2")

        stubber.assert_no_pending_responses()


def test_create_endpoint_returns_its_arn(backend):
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response(
            "create_endpoint",
            {"EndpointArn": DESCRIBED["EndpointArn"]},
            {"EndpointName": "portal-demo", "EndpointConfigName": "portal-demo-1"},
        )

        assert backend.create_endpoint("portal-demo", "portal-demo-1") == DESCRIBED["EndpointArn"]


# Invocations


def test_invoke_sends_every_given_header_and_times_the_call(backend):
    response = {
        "Body": streaming(b'{"score": 0.9}'),
        "ContentType": "application/json",
        "InvokedProductionVariant": "Blue",
        "CustomAttributes": "trace=1",
    }
    with Stubber(backend.runtime) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            response,
            {
                "EndpointName": "portal-demo",
                "Body": b'{"x": 1}',
                "ContentType": "application/json",
                "Accept": "application/json",
                "TargetModel": "model-a.tar.gz",
                "TargetVariant": "Blue",
                "TargetContainerHostname": "first",
                "CustomAttributes": "trace=1",
                "InferenceId": "abc-1",
            },
        )

        invocation = backend.invoke(
            "portal-demo",
            b'{"x": 1}',
            content_type="application/json",
            accept="application/json",
            target_model="model-a.tar.gz",
            target_variant="Blue",
            target_container="first",
            custom_attributes="trace=1",
            inference_id="abc-1",
        )

        stubber.assert_no_pending_responses()
    assert invocation.body == b'{"score": 0.9}'
    assert invocation.content_type == "application/json"
    assert invocation.variant == "Blue"
    assert invocation.custom_attributes == "trace=1"
    assert invocation.model_ms is None
    assert invocation.total_ms >= 0


def test_an_invocations_time_leaves_out_making_the_client(backend, session, monkeypatch):
    """The first invocation in a process makes the runtime client (100-250 ms on a 2-core
    machine): the portal's own set-up, not the endpoint's time, so not in total_ms."""
    clock = [1000.0]
    monkeypatch.setattr(aws, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    make = session.client

    def slow_client(*args, **kwargs):
        clock[0] += 0.3  # what making the client took
        client = make(*args, **kwargs)
        stubber = Stubber(client)
        stubber.add_response(
            "invoke_endpoint", {"Body": streaming(b"{}"), "ContentType": "application/json"}
        )
        stubber.activate()
        return client

    monkeypatch.setattr(session, "client", slow_client)

    invocation = backend.invoke("portal-demo", b"{}", content_type="application/json")

    assert invocation.body == b"{}"
    assert invocation.total_ms == 0  # the clock moved only while the client was made


def test_invoke_leaves_out_headers_not_given(backend):
    with Stubber(backend.runtime) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": streaming(b"ok")},
            {"EndpointName": "portal-demo", "Body": b"x", "ContentType": "text/csv"},
        )

        invocation = backend.invoke("portal-demo", b"x", content_type="text/csv")

    assert invocation.body == b"ok"
    assert invocation.variant == ""


def test_invoke_async_returns_where_the_result_will_be(moto):
    queued = moto.invoke_async(
        "portal-demo",
        input_location="s3://acme-ml/portal/async/in.json",
        content_type="application/json",
        inference_id="req-1",
    )

    assert queued.inference_id == "req-1"
    assert queued.output_location.startswith("s3://")
    assert queued.failure_location.startswith("s3://")


def test_invoke_async_sends_its_headers(backend):
    with Stubber(backend.runtime) as stubber:
        stubber.add_response(
            "invoke_endpoint_async",
            {
                "InferenceId": "generated",
                "OutputLocation": "s3://acme-ml/portal/out/generated.out",
                "FailureLocation": "s3://acme-ml/portal/fail/generated.out",
            },
            {
                "EndpointName": "portal-demo",
                "InputLocation": "s3://acme-ml/portal/in.json",
                "ContentType": "application/json",
                "Accept": "application/json",
            },
        )

        queued = backend.invoke_async(
            "portal-demo",
            input_location="s3://acme-ml/portal/in.json",
            content_type="application/json",
            accept="application/json",
        )

    assert queued.inference_id == "generated"
    assert queued.output_location == "s3://acme-ml/portal/out/generated.out"


STREAM_HEADERS = {
    "Content-Type": "application/vnd.amazon.eventstream",
    "X-Amzn-SageMaker-Content-Type": "application/jsonlines",
    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
}


def test_invoke_stream_yields_each_part_as_sent(backend_at_fake, fake_aws):
    parts = [b'{"token": "Hel', b'lo"}\n', b'{"token": "!"}\n']
    fake_aws.answers.append((200, STREAM_HEADERS, b"".join(map(payload_part, parts))))

    received = list(
        backend_at_fake.invoke_stream(
            "portal-demo",
            b'{"inputs": "Hi"}',
            content_type="application/json",
            accept="application/jsonlines",
            custom_attributes="trace=1",
        )
    )

    assert received == parts
    request = fake_aws.requests[0]
    assert request.path == "/endpoints/portal-demo/invocations-response-stream"
    assert request.headers["X-Amzn-SageMaker-Accept"] == "application/jsonlines"
    assert request.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=1"
    assert request.body == b'{"inputs": "Hi"}'


def test_error_event_mid_stream_becomes_provider_error(backend_at_fake, fake_aws):
    body = payload_part(b"partial") + model_stream_error("Model took too long.", "StreamBroken")
    fake_aws.answers.append((200, STREAM_HEADERS, body))
    stream = backend_at_fake.invoke_stream("portal-demo", b"{}", content_type="application/json")

    assert next(stream) == b"partial"
    with pytest.raises(ProviderError) as raised:
        next(stream)

    assert raised.value.code == "ModelStreamError"
    assert "Model took too long." in raised.value.message


def test_payload_parts_reads_any_iterable_of_events():
    events = [{"PayloadPart": {"Bytes": b"a"}}, {"Other": {}}, {"PayloadPart": {"Bytes": b"b"}}]

    assert list(payload_parts(events)) == [b"a", b"b"]


def test_payload_parts_turns_a_stream_failure_into_provider_busy():
    def events():
        yield {"PayloadPart": {"Bytes": b"a"}}
        raise EventStreamError(
            {"Error": {"Code": "InternalStreamFailure", "Message": "Broken."}},
            "InvokeEndpointWithResponseStream",
        )

    parts = payload_parts(events())

    assert next(parts) == b"a"
    with pytest.raises(ProviderBusy):
        next(parts)


# Autoscaling


def test_scalable_target_and_policy_are_registered(moto):
    make_endpoint(moto, "portal-demo")

    moto.register_scalable_target("portal-demo", "AllTraffic", 1, 4)
    moto.put_scaling_policy(
        "portal-demo",
        "AllTraffic",
        name="portal-invocations",
        target_invocations_per_instance=70,
        scale_in_cooldown=300,
        scale_out_cooldown=60,
    )

    targets = moto.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    policies = moto.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    (target,) = targets["ScalableTargets"]
    (policy,) = policies["ScalingPolicies"]
    assert target["ResourceId"] == "endpoint/portal-demo/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    configuration = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyName"] == "portal-invocations"
    assert configuration["TargetValue"] == 70.0
    assert configuration["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert (configuration["ScaleInCooldown"], configuration["ScaleOutCooldown"]) == (300, 60)


def test_scaling_policy_is_deleted_and_deleting_it_again_is_fine(moto):
    make_endpoint(moto, "portal-demo")
    moto.register_scalable_target("portal-demo", "AllTraffic", 1, 4)
    moto.put_scaling_policy(
        "portal-demo",
        "AllTraffic",
        name="portal-invocations",
        target_invocations_per_instance=70,
        scale_in_cooldown=300,
        scale_out_cooldown=300,
    )

    moto.delete_scaling_policy("portal-demo", "AllTraffic", "portal-invocations")
    moto.delete_scaling_policy("portal-demo", "AllTraffic", "portal-invocations")

    policies = moto.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    assert policies["ScalingPolicies"] == []


def test_scaling_activities_are_read_from_every_page_newest_first(backend):
    # moto has no DescribeScalingActivities.
    def activity(number: int, status: str, end: bool = True) -> dict:
        found = {
            "ActivityId": f"act-{number}",
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/portal-demo/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "Description": f"Setting desired instance count to {number}.",
            "Cause": "monitor alarm TargetTracking-AlarmHigh in state ALARM",
            "StartTime": datetime(2026, 1, 1, number, tzinfo=UTC),
            "StatusCode": status,
            "StatusMessage": "Failed to set desired instance count." if status == "Failed" else "",
        }
        if end:
            found["EndTime"] = datetime(2026, 1, 1, number, 5, tzinfo=UTC)
        return found

    asked = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/portal-demo/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    with Stubber(backend.autoscaling) as stubber:
        stubber.add_response(
            "describe_scaling_activities",
            {"ScalingActivities": [activity(2, "Successful")], "NextToken": "page-2"},
            asked,
        )
        stubber.add_response(
            "describe_scaling_activities",
            {"ScalingActivities": [activity(3, "InProgress", end=False), activity(1, "Failed")]},
            {**asked, "NextToken": "page-2"},
        )

        activities = backend.describe_scaling_activities("portal-demo", "AllTraffic")

        stubber.assert_no_pending_responses()
    assert [item.activity_id for item in activities] == ["act-3", "act-2", "act-1"]
    assert activities[0].end is None
    assert activities[0].status == "InProgress"
    assert activities[2].message == "Failed to set desired instance count."
    assert activities[1].description == "Setting desired instance count to 2."


# Metrics and logs


def test_metric_series_reads_one_variant_oldest_first(moto):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for variant, minutes, value in [("Blue", 3, 5), ("Blue", 1, 7), ("Green", 2, 100)]:
        moto.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": "portal-demo"},
                        {"Name": "VariantName", "Value": variant},
                    ],
                    "Timestamp": now - timedelta(minutes=minutes),
                    "Value": value,
                }
            ],
        )

    points = moto.metric_series(
        "portal-demo", "Blue", "Invocations", now - timedelta(minutes=10), now
    )

    assert points == [
        MetricPoint(time=now - timedelta(minutes=3), value=5.0),
        MetricPoint(time=now - timedelta(minutes=1), value=7.0),
    ]


def test_instance_metric_is_read_from_the_endpoint_namespace_without_a_variant(backend):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    with Stubber(backend.cloudwatch) as stubber:
        stubber.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "series",
                        "Timestamps": [start + timedelta(minutes=5)],
                        "Values": [42.5],
                        "StatusCode": "Complete",
                    }
                ]
            },
            {
                "MetricDataQueries": [
                    {
                        "Id": "series",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "/aws/sagemaker/Endpoints",
                                "MetricName": "CPUUtilization",
                                "Dimensions": [{"Name": "EndpointName", "Value": "portal-demo"}],
                            },
                            "Period": 300,
                            "Stat": "Average",
                        },
                    }
                ],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            },
        )

        points = backend.metric_series(
            "portal-demo", "", "CPUUtilization", start, end, period=300, stat="Average"
        )

    assert points == [MetricPoint(time=start + timedelta(minutes=5), value=42.5)]


def filter_calls(backend: AwsBackend) -> list[dict]:
    """The parameters of each FilterLogEvents call the backend's logs client sends."""
    calls: list[dict] = []
    backend.logs.meta.events.register(
        "before-parameter-build.cloudwatch-logs.FilterLogEvents",
        lambda params, **kwargs: calls.append(dict(params)),
    )
    return calls


def put_lines(backend: AwsBackend, lines: list[tuple[int, str]]) -> int:
    """(milliseconds ago, message) into portal-demo's log group; returns "now" in ms."""
    group = "/aws/sagemaker/Endpoints/portal-demo"
    backend.logs.create_log_group(logGroupName=group)
    backend.logs.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-1")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    backend.logs.put_log_events(
        logGroupName=group,
        logStreamName="AllTraffic/i-1",
        logEvents=[
            {"timestamp": now_ms - ago, "message": text}
            for ago, text in sorted(lines, reverse=True)  # oldest first, as CloudWatch asks
        ],
    )
    return now_ms


def test_endpoint_logs_are_its_newest_lines_oldest_first(moto):
    now_ms = put_lines(moto, [(5000 - n * 1000, f"line {n}\n") for n in range(5)])

    lines = moto.endpoint_logs("portal-demo", limit=3)

    assert [line.message for line in lines] == ["line 2", "line 3", "line 4"]
    assert lines[0] == LogLine(
        time=datetime.fromtimestamp((now_ms - 3000) / 1000, UTC),
        source="AllTraffic/i-1",
        message="line 2",
    )


def test_a_busy_endpoints_logs_are_read_from_its_last_minute_only(moto):
    recent = [(30_000 - n * 100, f"recent {n}") for n in range(5)]
    put_lines(moto, [(50 * 60_000, "a line from 50 minutes ago"), *recent])
    calls = filter_calls(moto)

    lines = moto.endpoint_logs("portal-demo", limit=3)

    assert [line.message for line in lines] == ["recent 2", "recent 3", "recent 4"]
    assert len(calls) == 1
    assert calls[0]["endTime"] - calls[0]["startTime"] == 60_000


def test_a_quiet_endpoints_logs_gather_its_hour_newest_window_first_with_no_line_twice(moto):
    ago = [(55 * 60_000, "55 min"), (12 * 60_000, "12 min"), (3 * 60_000, "3 min"), (9_000, "9 s")]
    put_lines(moto, ago)
    calls = filter_calls(moto)

    lines = moto.endpoint_logs("portal-demo", limit=200)

    assert [line.message for line in lines] == ["55 min", "12 min", "3 min", "9 s"]
    # Four windows, newest first, each ending 1 ms before the one after it began.
    assert len(calls) == 4
    assert all(
        newer["startTime"] == older["endTime"] + 1 for newer, older in itertools.pairwise(calls)
    )
    assert calls[0]["startTime"] > calls[-1]["startTime"]


def test_endpoint_without_logs_has_no_lines(moto):
    assert moto.endpoint_logs("portal-demo") == []


# Storage


def test_objects_are_uploaded_listed_and_read(moto, bucket):
    moto.upload_object("s3://acme-ml/portal/capture/a.jsonl", b'{"a": 1}\n')
    moto.upload_object("s3://acme-ml/portal/capture/b.jsonl", b'{"b": 2}\n')
    moto.upload_object("s3://acme-ml/elsewhere/c.jsonl", b"{}")

    listed = moto.list_objects("s3://acme-ml/portal/capture/")

    assert [found.uri for found in listed] == [
        "s3://acme-ml/portal/capture/a.jsonl",
        "s3://acme-ml/portal/capture/b.jsonl",
    ]
    assert listed[0].size == 9
    assert isinstance(listed[0].modified, datetime)
    assert moto.read_object("s3://acme-ml/portal/capture/b.jsonl") == b'{"b": 2}\n'


def test_listing_reads_every_page(moto, bucket):
    for number in range(1005):  # ListObjectsV2 answers at most 1000 keys a page
        moto.s3.put_object(Bucket="acme-ml", Key=f"portal/many/{number:04}", Body=b"")

    assert len(moto.list_objects("s3://acme-ml/portal/many/")) == 1005


def test_reading_a_missing_object_says_could_not_find(moto, bucket):
    with pytest.raises(ProviderError) as raised:
        moto.read_object("s3://acme-ml/portal/missing.json")

    assert raised.value.code == "NoSuchKey"
    assert raised.value.message.startswith("Could not find the object")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("s3://other-bucket/portal/x.json", "only in this environment's bucket, acme-ml"),
        ("https://acme-ml.s3.amazonaws.com/portal/x.json", "Use an s3:// address"),
        ("acme-ml/portal/x.json", "Use an s3:// address"),
        ("s3:///portal/x.json", "Use an s3:// address"),
    ],
)
def test_storage_refuses_locations_outside_the_environments_bucket(backend, uri, says):
    with Stubber(backend.s3):  # any call that got through would fail: nothing is queued
        for attempt in (
            lambda: backend.read_object(uri),
            lambda: backend.upload_object(uri, b"x"),
            lambda: backend.list_objects(uri),
        ):
            with pytest.raises(ProviderError, match=says):
                attempt()


# Model cards


def test_model_card_is_created_when_absent(moto):
    arn = moto.create_or_update_model_card("portal-card", {"model_overview": {}}, "Draft")

    described = moto.sagemaker.describe_model_card(ModelCardName="portal-card")
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/portal-card"
    assert json.loads(described["Content"]) == {"model_overview": {}}
    assert described["ModelCardStatus"] == "Draft"


CARD_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/portal-card"


def described_card(content: dict, status: str) -> dict:
    return {
        "ModelCardArn": CARD_ARN,
        "ModelCardName": "portal-card",
        "ModelCardVersion": 1,
        "Content": json.dumps(content),
        "ModelCardStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "CreatedBy": {},
    }


def test_model_card_content_and_status_change_in_separate_calls(backend):
    # AWS refuses both in one UpdateModelCard; moto accepts it, so only the Stubber can tell.
    new = {"intended_uses": {"risk_rating": "Low"}}
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response(
            "describe_model_card",
            described_card({"intended_uses": {}}, "Draft"),
            {"ModelCardName": "portal-card"},
        )
        stubber.add_response(
            "update_model_card",
            {"ModelCardArn": CARD_ARN},
            {"ModelCardName": "portal-card", "Content": json.dumps(new)},
        )
        stubber.add_response(
            "update_model_card",
            {"ModelCardArn": CARD_ARN},
            {"ModelCardName": "portal-card", "ModelCardStatus": "PendingReview"},
        )

        arn = backend.create_or_update_model_card("portal-card", new, "PendingReview")

        stubber.assert_no_pending_responses()
    assert arn == CARD_ARN


def test_unchanged_model_card_makes_no_new_version(backend):
    content = {"model_overview": {"model_name": "portal-model"}}
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response(
            "describe_model_card",
            described_card(content, "Approved"),
            {"ModelCardName": "portal-card"},
        )

        assert backend.create_or_update_model_card("portal-card", content, "Approved") == CARD_ARN

        stubber.assert_no_pending_responses()


def test_archived_model_card_is_unarchived_before_its_content_changes(backend):
    new = {"model_overview": {"model_description": "v2"}}
    with Stubber(backend.sagemaker) as stubber:
        stubber.add_response(
            "describe_model_card", described_card({}, "Archived"), {"ModelCardName": "portal-card"}
        )
        stubber.add_response(
            "update_model_card",
            {"ModelCardArn": CARD_ARN},
            {"ModelCardName": "portal-card", "ModelCardStatus": "Draft"},
        )
        stubber.add_response(
            "update_model_card",
            {"ModelCardArn": CARD_ARN},
            {"ModelCardName": "portal-card", "Content": json.dumps(new)},
        )

        backend.create_or_update_model_card("portal-card", new, "Draft")

        stubber.assert_no_pending_responses()


# Connection test


def test_connection_check_reports_each_permission_allowed(moto, bucket):
    checks = moto.test_connection()

    assert [(check.name, check.ok, check.detail) for check in checks] == [
        ("sts:GetCallerIdentity", True, "Allowed"),
        ("sagemaker:ListEndpoints", True, "Allowed"),
        ("s3:ListBucket on s3://acme-ml/portal/", True, "Allowed"),
    ]


def test_connection_check_says_why_each_call_was_denied(backend):
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/Portal/endpoint-portal is not authorized "
        "to perform: sagemaker:ListEndpoints because no identity-based policy allows it"
    )
    with (
        Stubber(backend.sts) as sts,
        Stubber(backend.sagemaker) as sagemaker,
        Stubber(backend.s3) as s3,
    ):
        sts.add_response(
            "get_caller_identity",
            {
                "UserId": "AROA:endpoint-portal",
                "Account": ACCOUNT,
                "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Portal/endpoint-portal",
            },
        )
        sagemaker.add_client_error(
            "list_endpoints",
            "AccessDeniedException",
            denied,
            400,
            expected_params={"MaxResults": 1},
        )
        s3.add_client_error(
            "list_objects_v2",
            "NoSuchBucket",
            "The specified bucket does not exist",
            404,
            expected_params={"Bucket": "acme-ml", "Prefix": "portal/", "MaxKeys": 1},
        )

        checks = backend.test_connection()

    assert [check.ok for check in checks] == [True, False, False]
    assert checks[1].detail.startswith(
        "Denied: The portal's AWS principal may not call sagemaker:ListEndpoints"
    )
    assert checks[2].detail.startswith("Failed: Could not find")


def test_connection_check_tries_the_role_first(environment):
    environment.assume_role_arn = f"arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    with mock_aws():
        backend = AwsBackend(environment)
        backend.s3.create_bucket(
            Bucket="acme-ml", CreateBucketConfiguration={"LocationConstraint": REGION}
        )

        checks = backend.test_connection()

    assert checks[0].name == f"sts:AssumeRole arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    assert all(check.ok for check in checks)
    assert len(checks) == 4


# Credentials


@pytest.fixture
def api_calls() -> Iterator[list[tuple[str, dict]]]:
    """Every boto3 call made, as (operation, params), whoever made it."""
    calls: list[tuple[str, dict]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client, operation_name, params):
        calls.append((operation_name, params))
        return original(client, operation_name, params)

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
        yield calls


def assume_role_calls(api_calls: list[tuple[str, dict]]) -> list[dict]:
    return [params for operation, params in api_calls if operation == "AssumeRole"]


def test_assumed_role_credentials_are_shared_by_later_backends(environment, api_calls):
    environment.assume_role_arn = f"arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    environment.external_id = "acme-portal"
    with mock_aws():
        first = AwsBackend(environment)
        first.list_endpoints()
        second = AwsBackend(environment)
        second.list_endpoints()

    assert assume_role_calls(api_calls) == [
        {
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/PortalAccess",
            "RoleSessionName": "endpoint-portal",
            "ExternalId": "acme-portal",
        }
    ]
    credentials = second.session.get_credentials()
    assert credentials.access_key != "testing"
    assert credentials.token


def test_role_credentials_are_renewed_five_minutes_before_they_expire(environment, api_calls):
    environment.assume_role_arn = f"arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    with mock_aws():
        AwsBackend(environment).session  # noqa: B018 - the session assumes the role
        (cached,) = aws._role_credentials.values()
        cached["Expiration"] = datetime.now(UTC) + timedelta(minutes=4)
        AwsBackend(environment).session  # noqa: B018

    assert len(assume_role_calls(api_calls)) == 2
    assert "ExternalId" not in assume_role_calls(api_calls)[0]


def test_each_external_id_gets_its_own_credentials(environment, api_calls):
    environment.assume_role_arn = f"arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    with mock_aws():
        environment.external_id = "tenant-a"
        AwsBackend(environment).session  # noqa: B018
        environment.external_id = "tenant-b"
        AwsBackend(environment).session  # noqa: B018

    assert [call["ExternalId"] for call in assume_role_calls(api_calls)] == [
        "tenant-a",
        "tenant-b",
    ]


def test_without_a_role_the_default_chain_is_used(environment, api_calls):
    with mock_aws():
        backend = AwsBackend(environment)
        backend.list_endpoints()

    assert assume_role_calls(api_calls) == []
    assert backend.session.region_name == REGION
    assert backend.session.get_credentials().method == "env"


def test_a_refused_role_is_a_provider_error(environment, backend):
    environment.assume_role_arn = f"arn:aws:iam::{ACCOUNT}:role/PortalAccess"
    refused = (
        "User: arn:aws:iam::123456789012:user/portal is not authorized to perform: "
        "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/PortalAccess"
    )
    sts = backend.sts
    with (
        Stubber(sts) as stubber,
        mock.patch.object(aws.boto3.Session, "client", return_value=sts),
    ):
        stubber.add_client_error("assume_role", "AccessDenied", refused, 403)

        with pytest.raises(ProviderError, match="may not call sts:AssumeRole"):
            aws.session_for(environment)


# Error translation: one function, every class of error


def client_error(backend, client_name, operation, params, code, message, status, **fields):
    """The ProviderError raised when `operation` answers with this error."""
    client = getattr(backend, client_name)
    with Stubber(client) as stubber:
        stubber.add_client_error(operation, code, message, status, modeled_fields=fields or None)
        with pytest.raises(ProviderError) as raised:
            getattr(backend, params[0])(*params[1:])
    return raised.value


CREATE_MODEL = ("create_model", {"ModelName": "portal-model", "ExecutionRoleArn": EXECUTION_ROLE})
CREATE_ENDPOINT = ("create_endpoint", "portal-demo", "portal-demo-1")


def test_validation_exception_passes_on_the_message(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_endpoint",
        CREATE_ENDPOINT,
        "ValidationException",
        "Cannot create already existing endpoint.",
        400,
    )

    assert error.message == "AWS rejected the request: Cannot create already existing endpoint."
    assert error.code == "ValidationException"
    assert not isinstance(error, ProviderBusy)
    assert not error.retryable


def test_quota_reached_names_the_quota_and_what_to_do(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_endpoint",
        CREATE_ENDPOINT,
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 2 Instances, "
        "with current utilization of 2 Instances and a request delta of 1 Instances.",
        400,
    )

    assert error.message.startswith(
        "The account's quota for ml.g5.xlarge for endpoint usage is reached; ask AWS for more "
        "(Service Quotas) or delete unused endpoints."
    )


def test_resource_in_use_says_to_wait(backend):
    error = client_error(
        backend,
        "sagemaker",
        "delete_endpoint_config",
        ("delete_endpoint_config", "portal-demo-1"),
        "ResourceInUse",
        "Endpoint config is in use by endpoint portal-demo",
        400,
    )

    assert error.message.startswith("The endpoint config is in use:")
    assert "Wait until" in error.message
    assert error.retryable
    assert not isinstance(error, ProviderBusy)


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        (
            "ResourceNotFound",
            "Resource not found.",
            "Could not find the endpoint: Resource not found.",
        ),
        (
            "ValidationException",
            "Could not find endpoint configuration 'portal-demo-1'.",
            "Could not find endpoint configuration 'portal-demo-1'.",
        ),
    ],
)
def test_not_found_says_could_not_find(backend, code, message, says):
    error = client_error(
        backend, "sagemaker", "create_endpoint", CREATE_ENDPOINT, code, message, 400
    )

    assert error.message.startswith(says)


def test_access_denied_names_the_action_to_allow(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_endpoint",
        CREATE_ENDPOINT,
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/Portal/endpoint-portal is not authorized "
        "to perform: sagemaker:CreateEndpoint on resource: arn:aws:sagemaker:eu-west-1:"
        "123456789012:endpoint/demo because no identity-based policy allows it",
        400,
    )

    assert error.message.startswith(
        "The portal's AWS principal may not call sagemaker:CreateEndpoint; add it to the "
        "principal's IAM policy (see docs/iam-policy.json)."
    )


def test_missing_pass_role_names_the_role(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_model",
        CREATE_MODEL,
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/Portal/endpoint-portal is not authorized "
        f"to perform: iam:PassRole on resource: {EXECUTION_ROLE} because no identity-based "
        "policy allows the iam:PassRole action",
        400,
    )

    assert error.message == (
        "The portal may not pass the execution role to SageMaker: allow iam:PassRole on "
        f"{EXECUTION_ROLE} for the portal's principal."
    )
    assert "not authorized" in error.raw


@pytest.mark.parametrize(
    "code",
    ["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"],
)
def test_throttling_is_provider_busy(backend, code):
    error = client_error(
        backend, "sagemaker", "create_endpoint", CREATE_ENDPOINT, code, "Rate exceeded", 400
    )

    assert isinstance(error, ProviderBusy)
    assert error.retryable


def test_service_unavailable_is_provider_busy(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_endpoint",
        CREATE_ENDPOINT,
        "ServiceUnavailable",
        "Please try again.",
        503,
    )

    assert isinstance(error, ProviderBusy)


INVOKE = ("invoke", "portal-demo", b"{}")


def test_model_error_quotes_what_the_container_answered(backend):
    client = backend.runtime
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_endpoint",
            "ModelError",
            'Received server error (500) from primary with message "boom".',
            424,
            modeled_fields={
                "OriginalStatusCode": 500,
                "OriginalMessage": "division by zero",
                "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/x",
            },
        )
        with pytest.raises(ProviderError) as raised:
            backend.invoke("portal-demo", b"{}", content_type="application/json")

    error = raised.value
    assert error.message == (
        "The model answered 500: division by zero. Its container's log has the details."
    )
    assert error.code == "ModelError"
    assert "LogStreamArn" in error.raw
    assert not isinstance(error, ProviderBusy)


def test_model_not_ready_is_provider_busy(backend):
    with Stubber(backend.runtime) as stubber:
        stubber.add_client_error(
            "invoke_endpoint", "ModelNotReadyException", "Model is still loading.", 429
        )
        with pytest.raises(ProviderBusy) as raised:
            backend.invoke("portal-demo", b"{}", content_type="application/json")

    assert "not ready yet" in raised.value.message


def test_runtime_validation_error_for_a_missing_endpoint_says_could_not_find(backend):
    with Stubber(backend.runtime) as stubber:
        stubber.add_client_error(
            "invoke_endpoint",
            "ValidationError",
            "Endpoint portal-demo of account 123456789012 not found.",
            400,
        )
        with pytest.raises(ProviderError) as raised:
            backend.invoke("portal-demo", b"{}", content_type="application/json")

    assert raised.value.message.startswith("Could not find the endpoint")


def test_expired_credentials_say_so(backend):
    error = client_error(
        backend,
        "sagemaker",
        "create_endpoint",
        CREATE_ENDPOINT,
        "ExpiredTokenException",
        "The security token included in the request is expired",
        400,
    )

    assert "credentials" in error.message


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com/x"),
        ConnectTimeoutError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com/"),
        EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com/"),
    ],
)
def test_timeouts_and_lost_connections_are_provider_busy(error):
    translated = provider_error(error)

    assert isinstance(translated, ProviderBusy)
    assert translated.code == type(error).__name__
    assert "try again" in translated.message


def test_environment_without_a_region_is_told_to_set_one(environment):
    environment.region = ""
    backend = AwsBackend(
        environment, session=boto3.Session(aws_access_key_id="k", aws_secret_access_key="s")
    )

    with pytest.raises(ProviderError, match="names no AWS Region"):
        backend.describe_endpoint("portal-demo")


def test_missing_credentials_say_where_they_come_from():
    translated = provider_error(NoCredentialsError())

    assert "no AWS credentials" in translated.message
    assert not isinstance(translated, ProviderBusy)


def test_provider_errors_survive_pickling_for_celery():
    error = ProviderBusy("Throttled.", code="ThrottlingException", raw="raw text")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object

    assert type(copy) is ProviderBusy
    assert (copy.message, copy.code, copy.raw, copy.retryable) == (
        "Throttled.",
        "ThrottlingException",
        "raw text",
        True,
    )


# The IAM policy the portal ships


POLICY = ROOT / "docs" / "iam-policy.json"
SAMPLE = {
    "model": "arn:aws:sagemaker:REGION:ACCOUNT:model/portal-demo",
    "config": "arn:aws:sagemaker:REGION:ACCOUNT:endpoint-config/portal-demo-1",
    "endpoint": "arn:aws:sagemaker:REGION:ACCOUNT:endpoint/portal-demo",
    "card": "arn:aws:sagemaker:REGION:ACCOUNT:model-card/portal-demo",
    "role": "arn:aws:iam::ACCOUNT:role/PortalSageMakerExecution",
    "bucket": "arn:aws:s3:::BUCKET",
    "object": "arn:aws:s3:::BUCKET/portal/capture/a.jsonl",
    "logs": "arn:aws:logs:REGION:ACCOUNT:log-group:/aws/sagemaker/Endpoints/portal-demo",
}
# Every boto3 call in aws.py: (client, method) -> the IAM actions it needs, each with a sample
# resource. None: the call needs no permission from this policy.
BACKEND_CALLS: dict[tuple[str, str], list[tuple[str, str]] | None] = {
    ("sagemaker", "create_model"): [
        ("sagemaker:CreateModel", SAMPLE["model"]),
        ("iam:PassRole", SAMPLE["role"]),
    ],
    ("sagemaker", "describe_model"): [("sagemaker:DescribeModel", SAMPLE["model"])],
    ("sagemaker", "delete_model"): [("sagemaker:DeleteModel", SAMPLE["model"])],
    ("sagemaker", "create_endpoint_config"): [("sagemaker:CreateEndpointConfig", SAMPLE["config"])],
    ("sagemaker", "describe_endpoint_config"): [
        ("sagemaker:DescribeEndpointConfig", SAMPLE["config"])
    ],
    ("sagemaker", "delete_endpoint_config"): [("sagemaker:DeleteEndpointConfig", SAMPLE["config"])],
    ("sagemaker", "create_endpoint"): [("sagemaker:CreateEndpoint", SAMPLE["endpoint"])],
    ("sagemaker", "update_endpoint"): [("sagemaker:UpdateEndpoint", SAMPLE["endpoint"])],
    ("sagemaker", "describe_endpoint"): [("sagemaker:DescribeEndpoint", SAMPLE["endpoint"])],
    ("sagemaker", "list_endpoints"): [("sagemaker:ListEndpoints", "*")],
    ("sagemaker", "delete_endpoint"): [("sagemaker:DeleteEndpoint", SAMPLE["endpoint"])],
    ("sagemaker", "describe_model_card"): [("sagemaker:DescribeModelCard", SAMPLE["card"])],
    ("sagemaker", "create_model_card"): [("sagemaker:CreateModelCard", SAMPLE["card"])],
    ("sagemaker", "update_model_card"): [("sagemaker:UpdateModelCard", SAMPLE["card"])],
    ("runtime", "invoke_endpoint"): [("sagemaker:InvokeEndpoint", SAMPLE["endpoint"])],
    ("runtime", "invoke_endpoint_async"): [("sagemaker:InvokeEndpointAsync", SAMPLE["endpoint"])],
    # The API reference asks for sagemaker:InvokeEndpoint; the policy grants both names.
    ("runtime", "invoke_endpoint_with_response_stream"): [
        ("sagemaker:InvokeEndpoint", SAMPLE["endpoint"]),
        ("sagemaker:InvokeEndpointWithResponseStream", SAMPLE["endpoint"]),
    ],
    ("autoscaling", "register_scalable_target"): [
        ("application-autoscaling:RegisterScalableTarget", "*")
    ],
    ("autoscaling", "put_scaling_policy"): [("application-autoscaling:PutScalingPolicy", "*")],
    ("autoscaling", "delete_scaling_policy"): [
        ("application-autoscaling:DeleteScalingPolicy", "*")
    ],
    ("autoscaling", "describe_scaling_activities"): [
        ("application-autoscaling:DescribeScalingActivities", "*")
    ],
    ("cloudwatch", "get_metric_data"): [("cloudwatch:GetMetricData", "*")],
    ("logs", "filter_log_events"): [("logs:FilterLogEvents", SAMPLE["logs"])],
    ("s3", "list_objects_v2"): [("s3:ListBucket", SAMPLE["bucket"])],
    ("s3", "get_object"): [("s3:GetObject", SAMPLE["object"])],
    ("s3", "put_object"): [("s3:PutObject", SAMPLE["object"])],
    # GetCallerIdentity needs no permission at all.
    ("sts", "get_caller_identity"): None,
    # AssumeRole is granted by the role's trust policy to the base principal, not by this
    # policy, which is the policy of the role once assumed.
    ("sts", "assume_role"): None,
}
CLIENTS = {"sagemaker", "runtime", "autoscaling", "cloudwatch", "s3", "logs", "sts"}


def calls_in_aws_module() -> set[tuple[str, str]]:
    """(client, method) for every boto3 call written in aws.py."""
    tree = ast.parse((ROOT / "environments" / "backends" / "aws.py").read_text())
    found = set()
    for node in ast.walk(tree):
        # self.sagemaker.describe_endpoint, or sts.assume_role and the like on a local name
        if isinstance(node, ast.Attribute) and node.attr not in {"get_paginator", "meta"}:
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr in CLIENTS:
                if isinstance(owner.value, ast.Name) and owner.value.id == "self":
                    found.add((owner.attr, node.attr))
            elif isinstance(owner, ast.Name) and owner.id in CLIENTS:
                found.add((owner.id, node.attr))  # runtime = self.runtime; runtime.invoke_endpoint
        # test_connection's table: ("sts:GetCallerIdentity", "sts", "get_caller_identity", {})
        if isinstance(node, ast.Tuple) and len(node.elts) == 4:
            service, method = node.elts[1], node.elts[2]
            if isinstance(service, ast.Constant) and service.value in CLIENTS:
                found.add((service.value, method.value))
        # pages(self.s3, "list_objects_v2", ...) and self.logs.get_paginator("filter_log_events")
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            if isinstance(function, ast.Name) and function.id == "pages":
                found.add((node.args[0].attr, node.args[1].value))
            if (
                isinstance(function, ast.Attribute)
                and function.attr == "get_paginator"
                and isinstance(function.value, ast.Attribute)
            ):
                found.add((function.value.attr, node.args[0].value))
    return found


def allowed(policy: dict, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        actions = statement["Action"]
        resources = statement["Resource"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if statement["Effect"] != "Allow":
            continue
        # IAM action names are case-insensitive; resource ARNs are not.
        if any(fnmatchcase(action.lower(), pattern.lower()) for pattern in actions) and any(
            fnmatchcase(resource, pattern) for pattern in resources
        ):
            return True
    return False


def test_iam_policy_parses_and_restricts_mutations_to_portal_names():
    policy = json.loads(POLICY.read_text())

    assert policy["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert len(sids) == len(set(sids))
    assert not allowed(
        policy, "sagemaker:DeleteEndpoint", SAMPLE["endpoint"].replace("portal-", "")
    )
    assert not allowed(policy, "sagemaker:DeleteModelCard", SAMPLE["card"])
    assert not allowed(policy, "iam:PassRole", "arn:aws:iam::ACCOUNT:role/Admin")


def test_iam_policy_allows_every_action_the_aws_backend_calls():
    policy = json.loads(POLICY.read_text())

    refused = [
        (action, resource)
        for needs in BACKEND_CALLS.values()
        if needs
        for action, resource in needs
        if not allowed(policy, action, resource)
    ]

    assert refused == []


def test_the_list_of_backend_calls_is_complete():
    assert calls_in_aws_module() == set(BACKEND_CALLS)
