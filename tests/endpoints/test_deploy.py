"""Deployments driven step by step against a real local runtime: created, updated, deleted,
with exactly one of each provider resource however often a step runs."""

import time

import pytest
from django.utils import timezone

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from endpoints.tasks import advance_deployment, poll_endpoints, reconcile_deployments
from environments.models import Environment
from portal.celery import app as celery_app
from tests.runtime import artifacts

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def eager(settings):
    """Tasks run in the caller, so a test sees each step's effect at once."""
    celery_app.conf.task_always_eager = True
    settings.RECONCILE_AFTER_SECONDS = 0
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def local(runtime_url, runtime_dirs):
    environment = Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    artifacts.write(
        runtime_dirs["s3"], "s3://demo/portal/iris.tar.gz", artifacts.iris_like_classifier()
    )
    model = RegisteredModel.objects.create(
        environment=environment,
        name="iris",
        containers=[{"Image": "sklearn", "ModelDataUrl": "s3://demo/portal/iris.tar.gz"}],
    )
    return environment, model


def new_endpoint(environment, model, **spec) -> Endpoint:
    variant = {
        "name": "AllTraffic",
        "model_id": model.pk,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "weight": 1.0,
    }
    return Endpoint.objects.create(
        environment=environment, name="iris", spec={"variants": [variant], **spec}
    )


def drive(deployment: Deployment, timeout: float = 60) -> Deployment:
    """What beat and the workers do: nudge, poll, until the deployment finishes."""
    deadline = time.monotonic() + timeout
    advance_deployment(deployment.pk)
    deployment.refresh_from_db()
    while not deployment.is_finished:
        assert time.monotonic() < deadline, deployment.step
        time.sleep(0.2)
        poll_endpoints()
        deployment.refresh_from_db()
    return deployment


def test_create_goes_through_every_step_to_in_service(eager, local) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)

    deployment = drive(deploy.start(endpoint, Deployment.Action.CREATE))

    endpoint.refresh_from_db()
    steps = [event.message for event in endpoint.events.filter(kind="step")]
    assert deployment.step == Deployment.Step.DONE
    assert endpoint.status == Endpoint.Status.IN_SERVICE
    assert endpoint.config_name == f"portal-{endpoint.pk}-g1"
    assert steps[:4] == [
        "Create models: done.",
        "Create endpoint configuration: done.",
        "Create or update endpoint: done.",
        "Wait for the provider: done.",
    ]
    assert all(event.seconds is not None for event in endpoint.events.filter(kind="step"))
    answer = environment.backend.invoke("iris", b"9,1", content_type="text/csv")
    assert answer.body == b'{"predictions": [1]}'


def test_every_step_run_twice_still_makes_exactly_one_of_each_resource(eager, local) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)
    deployment = deploy.start(endpoint, Deployment.Action.CREATE)
    backend = environment.backend

    while deployment.step not in {Deployment.Step.WAITING, Deployment.Step.DONE}:
        step = deployment.step
        assert deploy.run_step(deployment, endpoint, backend, step)  # a worker died after this
        deploy.advance(deployment)  # ...and the reconciler ran the step again
        deployment.refresh_from_db()
    drive(deployment)

    names = [summary.name for summary in backend.list_endpoints()]
    configs = backend.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    models = backend.sagemaker.list_models()["Models"]
    assert names == ["iris"]
    assert [c["EndpointConfigName"] for c in configs] == [f"portal-{endpoint.pk}-g1"]
    assert [m["ModelName"] for m in models] == [f"portal-{endpoint.pk}-g1-v0"]


def test_two_workers_cannot_run_the_same_step_at_once(local) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)
    deployment = Deployment.objects.create(endpoint=endpoint, action="create", generation=1)

    first = deploy.claim(deployment)
    second = deploy.claim(deployment)

    assert first and not second


def test_update_keeps_the_old_config_for_rollback_and_delete_cleans_up(eager, local) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)
    drive(deploy.start(endpoint, Deployment.Action.CREATE))
    endpoint.refresh_from_db()
    endpoint.spec["variants"][0]["instance_count"] = 2
    endpoint.save()

    update = drive(deploy.start(endpoint, Deployment.Action.UPDATE))
    endpoint.refresh_from_db()
    state = environment.backend.describe_endpoint("iris")
    delete = drive(deploy.start(endpoint, Deployment.Action.DELETE))
    endpoint.refresh_from_db()

    assert update.step == Deployment.Step.DONE
    assert state.variants[0].current_instances == 2
    assert state.config_name == f"portal-{endpoint.pk}-g2"
    assert delete.step == Deployment.Step.DONE
    assert endpoint.status == Endpoint.Status.DELETED and endpoint.deleted_at is not None
    backend = environment.backend
    assert backend.sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert backend.sagemaker.list_models()["Models"] == []
    assert endpoint.events.exists()  # the history stays


def test_a_model_that_fails_to_load_fails_the_deployment_with_the_reason(
    eager, local, runtime_dirs
):
    environment, _ = local
    artifacts.write(
        runtime_dirs["s3"],
        "s3://demo/portal/broken.tar.gz",
        artifacts.python_model(artifacts.BROKEN_LOAD),
    )
    broken = RegisteredModel.objects.create(
        environment=environment,
        name="broken",
        containers=[{"Image": "python", "ModelDataUrl": "s3://demo/portal/broken.tar.gz"}],
    )
    endpoint = new_endpoint(environment, broken)

    deployment = drive(deploy.start(endpoint, Deployment.Action.CREATE))

    endpoint.refresh_from_db()
    assert deployment.step == Deployment.Step.FAILED
    assert "weights.bin is missing from the archive" in deployment.last_error
    assert endpoint.status == Endpoint.Status.FAILED
    assert "weights.bin is missing" in endpoint.failure_reason


def test_the_reconciler_re_drives_a_deployment_whose_message_was_lost(eager, local) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)
    deployment = Deployment.objects.create(endpoint=endpoint, action="create", generation=1)

    sent = reconcile_deployments()  # the broker never delivered the first nudge

    deployment.refresh_from_db()
    assert sent == 1
    assert deployment.step != Deployment.Step.QUEUED


def test_the_endpoint_page_shows_its_containers_output(eager, local, client_for) -> None:
    environment, model = local
    endpoint = new_endpoint(environment, model)
    drive(deploy.start(endpoint, Deployment.Action.CREATE))

    from django.urls import reverse

    response = client_for("viewer").get(reverse("endpoints:logs", args=[endpoint.pk]))

    html = response.content.decode()
    assert "AllTraffic-0/primary" in html
    assert "Serving sklearn on 127.0.0.1" in html


def test_throttling_is_retried_and_shown_on_the_timeline(local, monkeypatch) -> None:
    from environments.backends.base import ProviderBusy
    from environments.backends.local import LocalBackend

    environment, model = local
    endpoint = new_endpoint(environment, model)
    deployment = Deployment.objects.create(
        endpoint=endpoint, action="create", generation=1, step=Deployment.Step.MODEL
    )
    throttled = ProviderBusy(
        "SageMaker is throttling requests (ThrottlingException).", code="ThrottlingException"
    )

    def slow_down(self, name):
        raise throttled

    monkeypatch.setattr(LocalBackend, "describe_model", slow_down)

    with pytest.raises(ProviderBusy):
        deploy.advance(deployment)

    deployment.refresh_from_db()
    assert deployment.step == Deployment.Step.MODEL  # nothing moved; the task will retry
    assert deployment.lease_until <= timezone.now()  # released for the retry
    assert "throttling" in endpoint.events.last().message
    assert "Retrying with backoff" in endpoint.events.last().message
