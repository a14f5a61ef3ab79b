"""Two beat schedulers at once (a second beat replica by mistake): two threads each run the
reconciler and the poller, and the tasks they send, against the same deployment at the same
time. Every step still runs once, and the provider gets one of each resource."""

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from endpoints.tasks import poll_endpoints, reconcile_deployments
from environments.backends.local import LocalBackend
from environments.models import Environment
from portal.celery import app as celery_app
from tests.runtime import artifacts

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CREATES = ("create_model", "create_endpoint_config", "create_endpoint")


@pytest.fixture
def eager(settings: object):
    """Tasks run in the thread that sends them, so each scheduler thread is also a worker;
    the reconciler sends anything whose lease has run out, at once."""
    celery_app.conf.task_always_eager = True
    settings.RECONCILE_AFTER_SECONDS = 0
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def provider_creates(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often each create reaches the runtime (the real call still runs)."""
    calls: Counter = Counter()
    lock = threading.Lock()

    def counted(name: str, method: Callable) -> Callable:
        def create(self: LocalBackend, *args: object) -> object:
            with lock:
                calls[name] += 1
            return method(self, *args)

        return create

    for name in CREATES:
        monkeypatch.setattr(LocalBackend, name, counted(name, getattr(LocalBackend, name)))
    return calls


@pytest.mark.runtime_env(LOCAL_RUNTIME_WARM_IMAGES="")
def test_two_schedulers_at_once_run_every_step_once(
    eager: None, provider_creates: Counter, runtime_url: str, runtime_dirs: dict
) -> None:
    environment = Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    artifacts.write(runtime_dirs["s3"], "s3://demo/iris.tar.gz", artifacts.iris_like_classifier())
    model = RegisteredModel.objects.create(
        environment=environment,
        name="iris",
        containers=[{"Image": "sklearn", "ModelDataUrl": "s3://demo/iris.tar.gz"}],
    )
    variant = {"name": "AllTraffic", "model_id": model.pk, "instance_type": "ml.m5.large"}
    endpoint = Endpoint.objects.create(
        environment=environment,
        name="twice",
        spec={"variants": [variant | {"instance_count": 1, "weight": 1.0}]},
    )
    deployment = deploy.start(endpoint, Deployment.Action.CREATE)  # autocommit: sent inline
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def scheduler() -> None:
        try:
            start.wait()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reconcile_deployments()
                poll_endpoints()
                if Deployment.objects.get(pk=deployment.pk).is_finished:
                    return
                time.sleep(0.05)
        except BaseException as error:  # noqa: BLE001 (reported by the test below)
            errors.append(error)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    redriven_after = reconcile_deployments()

    deployment.refresh_from_db()
    endpoint.refresh_from_db()
    assert errors == []
    assert deployment.step == Deployment.Step.DONE, deployment.last_error
    assert endpoint.status == Endpoint.Status.IN_SERVICE
    assert provider_creates == dict.fromkeys(CREATES, 1)
    steps = Counter(event.message for event in endpoint.events.filter(kind="step"))
    assert steps == {
        "Create models: done.": 1,
        "Create endpoint configuration: done.": 1,
        "Create or update endpoint: done.": 1,
        "Wait for the provider: done.": 1,
        "Apply autoscaling: done.": 1,
        "Create finished.": 1,
    }
    assert endpoint.events.filter(message="Status: Creating.").count() == 1
    assert redriven_after == 0
    backend = environment.backend
    assert [e.name for e in backend.list_endpoints()] == ["twice"]
    assert len(backend.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(backend.sagemaker.list_models()["Models"]) == 1
