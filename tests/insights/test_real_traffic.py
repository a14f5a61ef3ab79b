"""Real traffic through a real local endpoint with data capture and autoscaling on: a load test
sends it, beat's ingestion reads the capture files, and the chart data shows the invocations,
the captured records and the scale-out."""

import time

import pytest

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment
from insights import charts, cost, loadtest
from insights.models import CapturedRecord, LoadTestRun
from insights.tasks import ingest_capture
from portal.celery import app as celery_app
from tests.endpoints.test_deploy import drive
from tests.runtime import artifacts

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REQUESTS = 1000  # the runtime writes a capture file every 1,000 records (or every minute)


@pytest.fixture
def eager(settings):
    celery_app.conf.task_always_eager = True
    settings.RECONCILE_AFTER_SECONDS = 0
    yield
    celery_app.conf.task_always_eager = False


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.runtime_env(LOCAL_RUNTIME_AUTOSCALING_PERIOD="1")
def test_load_test_traffic_shows_in_the_charts_with_captured_records_and_a_scale_out(
    eager, runtime_url, runtime_dirs
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
        name="watched",
        spec={
            "variants": [
                {
                    "name": "AllTraffic",
                    "model_id": model.pk,
                    "instance_type": "ml.m5.large",
                    "instance_count": 1,
                    "weight": 1.0,
                }
            ],
            "capture": {
                "enabled": True,
                "sampling": 100,
                "destination": "s3://demo/capture",
                "input": True,
                "output": True,
                "csv_types": ["text/csv"],
                "json_types": ["application/json"],
            },
            "autoscaling": {
                "enabled": True,
                "min": 1,
                "max": 2,
                "target": 60,
                "scale_in_cooldown": 600,
                "scale_out_cooldown": 0,
            },
        },
    )
    assert drive(deploy.start(endpoint, Deployment.Action.CREATE)).step == Deployment.Step.DONE
    run = LoadTestRun.objects.create(
        endpoint=endpoint,
        payloads=["9,1", "0,1", "10,1"],
        content_type="text/csv",
        requests=REQUESTS,
        concurrency=4,
    )

    loadtest.run(run.pk)
    backend = environment.backend
    wait_until(
        lambda: any(
            activity.status == "Successful"
            for activity in backend.describe_scaling_activities("watched", "AllTraffic")
        ),
        "the scale-out",
    )
    wait_until(lambda: ingest_capture() or CapturedRecord.objects.exists(), "capture files")
    span = charts.window("1h")
    traffic = charts.traffic(endpoint, span)
    metrics = charts.provider(endpoint, span)
    estimate = cost.estimate(endpoint, span)

    run.refresh_from_db()
    assert run.status == LoadTestRun.Status.DONE
    assert run.summary["ok"] == REQUESTS
    assert traffic["total"] == REQUESTS
    assert traffic["per_variant"] == {"AllTraffic": REQUESTS}
    bars = traffic["figures"]["invocations"]["data"][0]["y"]
    assert sum(bars) == REQUESTS
    assert CapturedRecord.objects.filter(endpoint=endpoint, input_data="10,1").exists()
    assert not metrics.errors
    assert metrics.facts["max_instances"] == 2
    assert metrics.facts["scale_outs"] >= 1
    assert any(row["after"] == 2 and row["status"] == "Successful" for row in metrics.activities)
    latency = metrics.figures["latency"]["data"][0]["y"]
    assert any(value and value > 0 for value in latency)
    assert estimate.observed == REQUESTS
    assert ingest_capture() == 0  # read again: nothing counted twice
    assert charts.traffic(endpoint, span)["total"] == REQUESTS
