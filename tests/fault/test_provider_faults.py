"""R4 and a Failed endpoint: the aws backend and the deployment tasks against a SageMaker that
throttles, or that fails the endpoint, over real HTTP so botocore's own retries run."""

import re
import time
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from django.urls import reverse
from django.utils import timezone

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from endpoints.tasks import (
    BACKOFF_MAX,
    advance_deployment,
    backoff,
    poll_endpoints,
    reconcile_deployments,
)
from environments.backends.aws import AwsBackend
from environments.models import Environment
from portal.celery import app as celery_app
from tests.fault.fake_sagemaker import FakeSageMaker

pytestmark = [pytest.mark.fault, pytest.mark.django_db]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1"
REASON = "The primary container for production variant AllTraffic did not pass the ping check."


@pytest.fixture
def fake(
    monkeypatch: pytest.MonkeyPatch, settings: object, aws_test_keys: None
) -> Iterator[FakeSageMaker]:
    """The AWS backend's clients sent to a fake SageMaker on 127.0.0.1, with test keys; tasks
    run in the caller (as in tests/endpoints/test_deploy.py) and the reconciler acts at once."""
    server = FakeSageMaker()
    settings.PORTAL_OUTBOUND_ALLOW = [server.url.removeprefix("http://")]  # S9's guard lets it in
    original = AwsBackend.client

    def client_at_fake(self: AwsBackend, service: str, config: Config) -> object:
        if service != "sagemaker":
            return original(self, service, config)
        session = boto3.Session(region_name="eu-west-1")
        return session.client(service, endpoint_url=server.url, config=config)

    monkeypatch.setattr(AwsBackend, "client", client_at_fake)
    settings.RECONCILE_AFTER_SECONDS = 0
    celery_app.conf.task_always_eager = True
    yield server
    celery_app.conf.task_always_eager = False
    server.stop()


@pytest.fixture
def endpoint(db: None) -> Endpoint:
    environment = Environment.objects.create(
        name="prod", kind="aws", region="eu-west-1", bucket="acme-ml"
    )
    model = RegisteredModel.objects.create(
        environment=environment,
        name="iris",
        containers=[{"Image": IMAGE, "ModelDataUrl": "s3://acme-ml/portal/iris.tar.gz"}],
        execution_role_arn="arn:aws:iam::123456789012:role/PortalSageMakerExecution",
    )
    variant = {"name": "AllTraffic", "model_id": model.pk, "instance_type": "ml.m5.large"}
    return Endpoint.objects.create(
        environment=environment,
        name="iris",
        spec={"variants": [variant | {"instance_count": 1, "weight": 1.0}]},
    )


def beat_until_finished(deployment: Deployment, timeout: float = 60) -> Deployment:
    """What beat does, in this process: send what is due, poll, until the deployment ends."""
    deadline = time.monotonic() + timeout
    while True:
        deployment.refresh_from_db()
        if deployment.is_finished:
            return deployment
        assert time.monotonic() < deadline, (deployment.step, deployment.last_error)
        if deployment.lease_until <= timezone.now():
            advance_deployment.delay(deployment.pk)  # the task's retry, once it is due
        poll_endpoints()
        time.sleep(0.1)


def test_a_throttling_storm_is_retried_three_times_a_call_backs_off_and_converges(
    fake: FakeSageMaker, endpoint: Endpoint
) -> None:
    fake.throttle = 7  # two calls throttled on every attempt, then one retried once
    deployment = deploy.start(endpoint, Deployment.Action.CREATE)

    advance_deployment.delay(deployment.pk)
    deployment.refresh_from_db()
    attempts_used = deployment.attempts
    finished = beat_until_finished(deployment)

    attempts_per_call = Counter(request.invocation for request in fake.requests)
    assert max(attempts_per_call.values()) == 3  # botocore's standard mode, never legacy's 5
    assert sum(request.throttled for request in fake.requests) == 7
    # Throttling uses up none of the attempts after which the reconciler gives a step up.
    assert attempts_used == 0
    messages = [event.message for event in endpoint.events.all()]
    retrying = [message for message in messages if "Throttled, retrying at" in message]
    assert retrying, messages  # the storm also hits beat's poll, which simply polls again
    assert "AWS is throttling the portal's calls (DescribeModel)" in retrying[0]
    first_backoff = int(
        re.search(r"retrying at \d\d:\d\d:\d\d \w+ \(backoff (\d+) s\)", retrying[0])[1]
    )
    assert 0 <= first_backoff <= 2  # the first retry: within 2 s, jittered
    assert finished.step == Deployment.Step.DONE, finished.last_error
    endpoint.refresh_from_db()
    assert endpoint.status == Endpoint.Status.IN_SERVICE
    assert len(fake.models) == len(fake.configs) == len(fake.endpoints) == 1
    assert len(fake.calls("CreateModel")) == 1


def test_the_retry_backoff_grows_with_full_jitter_and_stops_at_ten_minutes() -> None:
    for retries in range(40):
        delays = [backoff(retries) for _ in range(50)]
        assert all(0 <= delay <= min(BACKOFF_MAX, 2 * 2**retries) for delay in delays)
    late = [backoff(30) for _ in range(200)]
    assert len(set(late)) > 100  # jittered: many throttled deployments do not return together
    assert max(late) > BACKOFF_MAX / 2  # the cap, not an earlier ceiling, bounds it
    assert BACKOFF_MAX == 600


def test_an_endpoint_the_provider_fails_fails_the_deployment_once_with_its_reason(
    fake: FakeSageMaker, endpoint: Endpoint, client_for
) -> None:
    fake.failure_reason = REASON
    deployment = deploy.start(endpoint, Deployment.Action.CREATE)

    advance_deployment.delay(deployment.pk)
    finished = beat_until_finished(deployment)
    creates_then = len(fake.requests)
    for _ in range(3):  # beat keeps running: nothing is retried
        assert reconcile_deployments() == 0
        poll_endpoints()
    page = client_for("viewer").get(reverse("endpoints:detail", args=[endpoint.pk]))

    endpoint.refresh_from_db()
    assert finished.step == Deployment.Step.FAILED
    assert finished.last_error == REASON
    assert endpoint.status == Endpoint.Status.FAILED
    assert endpoint.failure_reason == REASON
    assert len(fake.calls("CreateEndpoint")) == 1
    assert not [r for r in fake.requests[creates_then:] if r.operation.startswith("Create")]
    assert endpoint.events.filter(message=f"Failed: {REASON}").count() == 1
    assert REASON in page.content.decode()
