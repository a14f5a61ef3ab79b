"""R1: a real Celery worker dies by SIGKILL right after each deployment step's provider work, on
either broker; the other worker and beat's reconciler finish the deployment with exactly one
model, one endpoint configuration and one endpoint, each step recorded once."""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment
from tests.conftest import free_port, start_runtime, wait_for_http
from tests.fault.conftest import LEASE, RECONCILE, Broker, Processes, publishing_to, wait
from tests.runtime import artifacts

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MODEL_URI = "s3://demo/portal/iris.tar.gz"
STEP_EVENTS = [
    "Create models: done.",
    "Create endpoint configuration: done.",
    "Create or update endpoint: done.",
    "Wait for the provider: done.",
]


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One real runtime for the module (its endpoints carry each test's own names), without
    warm spares, to leave the two cores to the workers."""
    root = tmp_path_factory.mktemp("runtime")
    dirs = {"s3": root / "s3", "state": root / "state"}
    artifacts.write(dirs["s3"], MODEL_URI, artifacts.iris_like_classifier())
    port = free_port()
    process = start_runtime(port, dirs, LOCAL_RUNTIME_WARM_IMAGES="")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ping")
        yield {"url": url, **dirs}
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def runtime(shared_runtime: dict, settings: object) -> dict:
    settings.LOCAL_RUNTIME_URL = shared_runtime["url"]
    settings.LOCAL_S3_ROOT = shared_runtime["s3"]
    settings.LOCAL_RUNTIME_STATE_DIR = shared_runtime["state"]
    return shared_runtime


@pytest.fixture(params=["filesystem", "redis"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Broker:
    if request.param == "filesystem":
        return Broker("filesystem://localhost//", tmp_path / "var")
    redis = request.getfixturevalue("module_redis")
    redis.cli("flushall")  # nothing left over from the module's other tests
    return Broker(redis.url, tmp_path / "var")


@pytest.mark.parametrize("step", ["model", "config", "endpoint", "polling"])
def test_a_worker_killed_after_a_step_leaves_exactly_one_of_each_resource(
    step: str, broker: Broker, runtime: dict, processes: Processes, tmp_path: Path
) -> None:
    environment = Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    model = RegisteredModel.objects.create(
        environment=environment,
        name="iris",
        containers=[{"Image": "sklearn", "ModelDataUrl": MODEL_URI}],
    )
    name = f"killed-{step}-{broker.url.split(':')[0]}"
    variant = {"name": "AllTraffic", "model_id": model.pk, "instance_type": "ml.m5.large"}
    endpoint = Endpoint.objects.create(
        environment=environment,
        name=name,
        spec={"variants": [variant | {"instance_count": 1, "weight": 1.0}]},
    )
    once = tmp_path / "killed"
    variables = processes.environment(
        broker,
        LOCAL_RUNTIME_URL=runtime["url"],
        LOCAL_S3_ROOT=str(runtime["s3"]),
        PORTAL_FAULT_KILL_AT_STEP=step,
        PORTAL_FAULT_ONCE_FILE=str(once),
    )
    # Both workers carry the fault; whichever reaches the step first dies there, the other
    # finishes once the lease runs out and the reconciler sends the step again.
    workers = [processes.start("worker", f"w{number}", variables) for number in (1, 2)]
    processes.start("beat", "beat", variables)

    with publishing_to(broker):
        deployment = deploy.start(endpoint, Deployment.Action.CREATE)  # commits: a real enqueue

        def details() -> str:
            deployment.refresh_from_db()
            events = "\n".join(str(event) for event in endpoint.events.all())
            return f"{deployment.__dict__}\n{events}\n{processes.logs()}"

        wait(once.exists, 90, f"a worker to reach the {step} kill point", details)
        wait(lambda: any(w.poll() is not None for w in workers), 10, "the worker to die")
        # R1: converged within two reconcile periods (after the dead worker's lease) + 30 s.
        wait(lambda: finished(deployment), LEASE + 2 * RECONCILE + 30, "convergence", details)

    killed = [worker.returncode for worker in workers if worker.poll() is not None]
    assert killed == [-signal.SIGKILL]
    endpoint.refresh_from_db()
    assert deployment.step == Deployment.Step.DONE, deployment.last_error
    assert endpoint.status == Endpoint.Status.IN_SERVICE
    backend = environment.backend
    prefix = f"portal-{endpoint.pk}-"  # the module's runtime also holds other tests' resources
    configs = backend.sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
    models = backend.sagemaker.list_models(MaxResults=100)["Models"]
    assert [e.name for e in backend.list_endpoints() if e.name == name] == [name]
    assert [c for c in names(configs, "EndpointConfigName") if c.startswith(prefix)] == [
        f"{prefix}g1"
    ]
    assert [m for m in names(models, "ModelName") if m.startswith(prefix)] == [f"{prefix}g1-v0"]
    steps = [event.message for event in endpoint.events.filter(kind="step")]
    assert [steps.count(message) for message in STEP_EVENTS] == [1, 1, 1, 1], steps
    assert Deployment.objects.count() == 1
    backend.delete_endpoint(name)  # its instance process is not needed by the next test


def names(items: list[dict], key: str) -> list[str]:
    return [item[key] for item in items]


def finished(deployment: Deployment) -> bool:
    deployment.refresh_from_db()
    return deployment.is_finished
