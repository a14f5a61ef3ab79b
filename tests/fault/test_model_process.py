"""R5: a model process killed mid-request, hung, or crashing over and over, on the real local
runtime, with a user's own inference.py that sleeps, hangs or exits on a magic input."""

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from endpoints.models import Endpoint
from endpoints.tasks import poll_endpoints
from environments.models import Environment
from tests.conftest import free_port, start_runtime, wait_for_http
from tests.fault.conftest import wait
from tests.runtime import artifacts

pytestmark = [pytest.mark.fault, pytest.mark.integration]

# Sleeps, hangs or exits on command; says where it runs, and leaves a file when a slow request
# has started, so the test knows it is in flight without guessing.
MOODY = """
import json
import os
import time
from pathlib import Path

def model_fn(model_dir):
    return None

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(payload, model):
    action = payload.get("do")
    if action in ("sleep", "hang"):
        Path("in-flight").write_text(action)
    if action == "sleep":
        time.sleep(30)
    if action == "hang":
        while True:
            time.sleep(1)
    if action == "crash":
        os._exit(3)
    return {"pid": os.getpid()}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""
SLEEP_SECONDS = 30  # what the model's "sleep" takes: an in-flight request must fail well before
INVOCATION_TIMEOUT = 3  # the runtime's limit per invocation in these tests
RESTART_LIMIT = 5  # runtime.host.RESTART_LIMIT: more exits than this and the endpoint is Failed


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One real runtime for the module (each test deploys its own endpoint), without warm
    spares, and with a short limit per invocation."""
    root = tmp_path_factory.mktemp("runtime")
    dirs = {"s3": root / "s3", "state": root / "state"}
    port = free_port()
    process = start_runtime(
        port,
        dirs,
        LOCAL_RUNTIME_WARM_IMAGES="",
        LOCAL_RUNTIME_INVOCATION_TIMEOUT=str(INVOCATION_TIMEOUT),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ping")
        yield {"url": url, **dirs}
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def runtime_dirs(shared_runtime: dict, settings: object) -> dict:
    settings.LOCAL_RUNTIME_URL = shared_runtime["url"]
    settings.LOCAL_S3_ROOT = shared_runtime["s3"]
    settings.LOCAL_RUNTIME_STATE_DIR = shared_runtime["state"]
    return shared_runtime


@pytest.fixture
def clients(runtime_dirs: dict, monkeypatch: pytest.MonkeyPatch) -> tuple:
    runtime_url = runtime_dirs["url"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=70)
    return tuple(
        boto3.client(service, endpoint_url=runtime_url, region_name="us-east-1", config=config)
        for service in ("sagemaker", "sagemaker-runtime")
    )


def deploy_moody(sagemaker: object, runtime_dirs: dict, name: str, **environment: str) -> None:
    uri = f"s3://models/{name}/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, artifacts.python_model(MOODY))
    container = {"Image": "python", "ModelDataUrl": uri, "Environment": environment}
    sagemaker.create_model(ModelName=name, PrimaryContainer=container)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": name,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
    }
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait(
        lambda: status_of(sagemaker, name) != "Creating",
        60,
        f"{name} to leave Creating",
    )
    assert status_of(sagemaker, name) == "InService"


def status_of(sagemaker: object, name: str) -> str:
    return sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]


def invoke(runtime: object, name: str, action: str = "") -> dict:
    answer = runtime.invoke_endpoint(
        EndpointName=name, ContentType="application/json", Body=json.dumps({"do": action})
    )
    return json.loads(answer["Body"].read())


class InFlight:
    """One invocation running in a thread; its outcome (answer or error) once it ends."""

    def __init__(self, runtime: object, name: str, action: str):
        self.outcome: object = None
        self.thread = threading.Thread(target=self.run, args=(runtime, name, action), daemon=True)
        self.thread.start()

    def run(self, runtime: object, name: str, action: str) -> None:
        try:
            self.outcome = invoke(runtime, name, action)
        except ClientError as error:
            self.outcome = error

    def result(self, within: float) -> object:
        self.thread.join(within)
        assert not self.thread.is_alive(), f"the request was still running after {within} s"
        return self.outcome


def in_flight_marker(runtime_dirs: dict, name: str) -> Iterator[Path]:
    return (runtime_dirs["state"] / "instances" / name).rglob("in-flight")


def container_pid(runtime_dirs: dict, name: str) -> int:
    """The pid of the endpoint's (only) container process, found by its working directory."""
    folder = str(runtime_dirs["state"] / "instances" / name)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(folder):
                    return int(entry)
            except OSError:
                continue
    raise AssertionError(f"no container process for {name}")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def zombie_children(parent: int) -> list[int]:
    zombies = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == parent:
                zombies.append(int(entry))
    return zombies


def answers_normally(runtime: object, name: str) -> dict | None:
    try:
        return invoke(runtime, name)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ModelError", error  # restarting: fails fast
        return None


def test_a_killed_model_process_fails_its_request_at_once_and_is_restarted(
    clients: tuple, runtime_dirs: dict
) -> None:
    sagemaker, runtime = clients
    deploy_moody(sagemaker, runtime_dirs, "killed")
    pid_before = container_pid(runtime_dirs, "killed")
    slow = InFlight(runtime, "killed", "sleep")
    wait(lambda: any(in_flight_marker(runtime_dirs, "killed")), 30, "the request to start")

    os.kill(pid_before, signal.SIGKILL)
    failed = slow.result(within=SLEEP_SECONDS / 3)  # far sooner than the model would answer
    answers = []
    wait(lambda: answers.append(answers_normally(runtime, "killed")) or answers[-1], 30, "restart")

    assert isinstance(failed, ClientError)
    assert failed.response["Error"]["Code"] == "ModelError"
    assert "stopped while answering" in failed.response["Error"]["Message"]
    assert answers[-1]["pid"] != pid_before
    assert container_pid(runtime_dirs, "killed") == answers[-1]["pid"]
    assert status_of(sagemaker, "killed") == "InService"


def test_a_hung_model_fails_its_request_at_the_time_limit_and_others_still_answer(
    clients: tuple, runtime_dirs: dict
) -> None:
    sagemaker, runtime = clients
    deploy_moody(sagemaker, runtime_dirs, "hung")

    hung = InFlight(runtime, "hung", "hang")
    failed = hung.result(within=INVOCATION_TIMEOUT * 10)  # at the limit, not forever
    answer = invoke(runtime, "hung")

    assert isinstance(failed, ClientError)
    assert failed.response["Error"]["Code"] == "ModelError"
    assert f"no answer within {INVOCATION_TIMEOUT} s" in failed.response["Error"]["Message"]
    assert answer["pid"] == container_pid(runtime_dirs, "hung")


def test_a_model_process_whose_every_thread_hangs_is_restarted(
    clients: tuple, runtime_dirs: dict
) -> None:
    sagemaker, runtime = clients
    deploy_moody(sagemaker, runtime_dirs, "stuck", SAGEMAKER_MODEL_SERVER_WORKERS="1")
    pid_before = container_pid(runtime_dirs, "stuck")

    InFlight(runtime, "stuck", "hang").result(within=INVOCATION_TIMEOUT * 10)
    # Requests fail fast while the stuck process is replaced, then answer again.
    answers: list[dict | None] = []
    wait(lambda: answers.append(answers_normally(runtime, "stuck")) or answers[-1], 30, "an answer")

    assert answers[-1]["pid"] != pid_before


@pytest.mark.django_db
def test_a_model_that_keeps_crashing_fails_the_endpoint_with_a_reason_and_no_zombies(
    clients: tuple, runtime_dirs: dict
) -> None:
    sagemaker, runtime = clients
    deploy_moody(sagemaker, runtime_dirs, "crashy")
    environment = Environment.objects.create(name="local", bucket="models", prefix="portal/")
    endpoint = Endpoint.objects.create(
        environment=environment, name="crashy", status=Endpoint.Status.IN_SERVICE
    )
    runtime_pid = parent_of(container_pid(runtime_dirs, "crashy"))

    for crash in range(RESTART_LIMIT + 1):
        with pytest.raises(ClientError) as crashed:
            invoke(runtime, "crashy", "crash")
        assert crashed.value.response["Error"]["Code"] == "ModelError"
        if crash < RESTART_LIMIT:  # restarted, with a growing (capped) pause first
            wait(lambda: answers_normally(runtime, "crashy"), 30, f"restart {crash + 1}")
    wait(lambda: status_of(sagemaker, "crashy") == "Failed", 30, "the endpoint to be Failed")
    reason = sagemaker.describe_endpoint(EndpointName="crashy")["FailureReason"]
    poll_endpoints()  # beat's poll brings the provider's verdict into the portal
    endpoint.refresh_from_db()

    assert f"exited {RESTART_LIMIT + 1} times" in reason
    assert endpoint.status == Endpoint.Status.FAILED
    assert endpoint.failure_reason == reason
    assert zombie_children(runtime_pid) == []
