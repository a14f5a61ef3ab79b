"""R2: Redis paused, stopped or killed while a web request enqueues a deployment. The request
answers at once with the deployment recorded, and the work runs once Redis is back (beat's
reconciler re-sends what the broker never took)."""

import signal
import time
from pathlib import Path

import pytest
from django.urls import reverse

from endpoints.models import Deployment, Endpoint
from environments.models import Environment
from tests.fault.conftest import Broker, Processes, RedisServer, publishing_to, wait

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Above R2's 2 s (the request waits at most 1 s for the broker), below what a blocked
# publish costs (a paused Redis: until it resumes; a stopped one: 3 x the 5 s socket timeout):
# this catches a hang without timing a noisy machine.
HANG_SECONDS = 5
PAUSE_MS = 6000


@pytest.mark.runtime_env(LOCAL_RUNTIME_WARM_IMAGES="")
@pytest.mark.parametrize("outage", ["paused", "stopped", "killed"])
def test_a_request_during_a_redis_outage_answers_at_once_and_the_work_runs_after(
    outage: str,
    redis: RedisServer,
    processes: Processes,
    runtime_url: str,
    runtime_dirs: dict,
    tmp_path: Path,
    client_for,
) -> None:
    environment = Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    endpoint = Endpoint.objects.create(
        environment=environment,
        name="outage",
        status=Endpoint.Status.IN_SERVICE,
        spec={"variants": []},  # the provider never had it: the delete has little to do
    )
    broker = Broker(redis.url, tmp_path / "var")
    variables = processes.environment(
        broker, LOCAL_RUNTIME_URL=runtime_url, LOCAL_S3_ROOT=str(runtime_dirs["s3"])
    )
    processes.start("worker", "worker", variables)
    processes.start("beat", "beat", variables)
    heartbeat = broker.var_dir / "worker-heartbeat"
    wait(heartbeat.exists, 60, "the worker to start", processes.logs)
    deployer = client_for("deployer")

    if outage == "paused":
        redis.cli("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")
    elif outage == "stopped":
        redis.signal(signal.SIGSTOP)
    else:
        redis.kill()
    with publishing_to(broker):
        started = time.monotonic()
        response = deployer.post(
            reverse("endpoints:delete", args=[endpoint.pk]), {"confirm": "outage"}
        )
        took = time.monotonic() - started
    recorded = list(Deployment.objects.filter(endpoint=endpoint).values_list("action", flat=True))
    # A paused Redis resumes by itself after PAUSE_MS (it would hold CLIENT UNPAUSE too).
    if outage == "stopped":
        redis.signal(signal.SIGCONT)
    elif outage == "killed":
        redis.start()  # empty: whatever was in it is gone

    deployment = Deployment.objects.get(endpoint=endpoint)

    def finished() -> bool:
        deployment.refresh_from_db()
        return deployment.is_finished

    # R2: work starts within 60 s of Redis returning (beat reconciles every RECONCILE s here).
    wait(finished, 60, "the deployment to run after the outage", processes.logs)

    assert response.status_code == 302
    assert took < HANG_SECONDS, f"the request hung for {took:.1f} s"
    assert recorded == [Deployment.Action.DELETE]  # in the database before Redis came back
    endpoint.refresh_from_db()
    assert deployment.step == Deployment.Step.DONE, deployment.last_error
    assert endpoint.status == Endpoint.Status.DELETED
