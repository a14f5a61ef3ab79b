"""A real Celery worker is killed in the middle of a deployment; a new one finishes it, with
exactly one model, one endpoint configuration and one endpoint (reliability R1)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment
from tests.runtime import artifacts

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, for processes started from here."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start(kind: str, environment: dict[str, str], tmp_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "portal", kind, "-l", "INFO"]
    if kind == "worker":
        command += ["--pool", "solo", "-Q", "celery"]
    else:
        command += ["--schedule", str(tmp_path / "beat-schedule")]
    log = (tmp_path / f"{kind}.log").open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=log, stderr=log, start_new_session=True
    )


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_worker_killed_mid_deployment_leaves_exactly_one_endpoint_in_service(
    runtime_url, runtime_dirs, tmp_path
) -> None:
    environment = Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    artifacts.write(
        runtime_dirs["s3"], "s3://demo/portal/iris.tar.gz", artifacts.iris_like_classifier()
    )
    model = RegisteredModel.objects.create(
        environment=environment,
        name="iris",
        containers=[{"Image": "sklearn", "ModelDataUrl": "s3://demo/portal/iris.tar.gz"}],
    )
    endpoint = Endpoint.objects.create(
        environment=environment,
        name="iris",
        spec={
            "variants": [
                {
                    "name": "AllTraffic",
                    "model_id": model.pk,
                    "instance_type": "ml.m5.large",
                    "instance_count": 1,
                    "weight": 1.0,
                }
            ]
        },
    )
    variables = os.environ | {
        "DATABASE_URL": database_url(),
        "LOCAL_RUNTIME_URL": runtime_url,
        "LOCAL_S3_ROOT": str(runtime_dirs["s3"]),
        "ENDPOINT_POLL_SECONDS": "1",
        "RECONCILE_AFTER_SECONDS": "2",
        "DEPLOYMENT_LEASE_SECONDS": "5",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    variables.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    first = start("worker", variables, tmp_path)
    processes = [first]
    try:
        deployment = deploy.start(endpoint, Deployment.Action.CREATE)  # commits: a real enqueue

        def reached_endpoint_step() -> bool:
            deployment.refresh_from_db()
            return deployment.step in {Deployment.Step.ENDPOINT, Deployment.Step.WAITING}

        wait(reached_endpoint_step, 60, "the first worker to reach the endpoint step")
        os.killpg(first.pid, signal.SIGKILL)  # no warm shutdown, no acknowledgement
        first.wait()
        processes += [start("worker", variables, tmp_path), start("beat", variables, tmp_path)]

        def finished() -> bool:
            deployment.refresh_from_db()
            return deployment.is_finished

        wait(finished, 90, "the deployment to finish after the kill")
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)

    endpoint.refresh_from_db()
    backend = environment.backend
    assert deployment.step == Deployment.Step.DONE, deployment.last_error
    assert endpoint.status == Endpoint.Status.IN_SERVICE
    assert [summary.name for summary in backend.list_endpoints()] == ["iris"]
    assert len(backend.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(backend.sagemaker.list_models()["Models"]) == 1
    assert Endpoint.objects.count() == 1
