"""The local runtime under load, each number beside its baseline from the same run: the router
against the container it forwards to, a multi-model cold load against a warm hit, two instances
against one, and a serverless first call against a provisioned endpoint's.

The runtime is `manage.py runtime` in its own process, as `make run` starts it, with its object
store and state in a throwaway folder. Endpoints are deployed through boto3's sagemaker client,
as a user's own code would; invocations go over plain keep-alive HTTP (http.client one at a time,
bench/httpload.py for concurrent clients), so the numbers are the runtime's and not botocore's
request signing or the client's threads.
"""

import http.client
import importlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.test import override_settings

from bench import httpload
from bench.pages import percentile
from tests.runtime import artifacts

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60
WARMUP_REQUESTS = 200
SEQUENTIAL_REQUESTS = 2000
CONCURRENT_REQUESTS = 4000
CONCURRENT_CLIENTS = 8
MULTI_MODEL_TARGETS = 5
WARM_HITS_PER_TARGET = 40
CPU_CLIENTS = 4
CPU_SECONDS = 10
BURN_MS = 20
GOAL_ADDED_P50_MS = 1.0
GOAL_THROUGHPUT_RATIO = 0.9
GOAL_COLD_START_S = {"sklearn": 0.5, "llm": 1.5}

IRIS_ROW = {"body": b"0.5,1", "headers": {"Content-Type": "text/csv"}}
LLM_PROMPT = {
    "body": json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 1}}).encode(),
    "headers": {"Content-Type": "application/json"},
}
# Every request spins the same loop the same number of turns: BURN_MS of pure-Python CPU, as
# calibrated here (burn_model), however many threads share the model process's GIL.
SPIN = """
def spin(turns):
    total = 0
    for turn in range(turns):
        total += turn
    return total
"""


@dataclass
class Runtime:
    """A running `manage.py runtime`: where it listens, where it keeps things, its client."""

    port: int
    pid: int
    s3: Path
    state: Path
    sagemaker: object

    def deploy(self, name: str, container: dict, variant: dict | None = None) -> float:
        """CreateModel, CreateEndpointConfig and CreateEndpoint without waiting; returns the
        perf_counter() time CreateEndpoint was sent."""
        self.sagemaker.create_model(ModelName=name, PrimaryContainer=container)
        variant = variant or {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, **variant}],
        )
        sent = time.perf_counter()
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return sent

    def wait_in_service(self, name: str, since: float) -> float:
        """Seconds from `since` until DescribeEndpoint says InService (polled every 25 ms); a
        RuntimeError with the FailureReason if it fails or takes too long."""
        deadline = since + STARTUP_TIMEOUT_S + 30
        while True:
            described = self.sagemaker.describe_endpoint(EndpointName=name)
            status = described["EndpointStatus"]
            if status == "InService":
                return time.perf_counter() - since
            if status not in {"Creating", "Updating"}:
                raise RuntimeError(f"{name} is {status}: {described.get('FailureReason', '')}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} was still {status} after {STARTUP_TIMEOUT_S + 30} s")
            time.sleep(0.025)

    def container_port(self, endpoint: str, instance: str = "AllTraffic-0") -> int:
        """The port of an instance's primary container, from the line its process logs when it
        starts listening (the last one, should it have been restarted)."""
        log = self.state / "instances" / endpoint / instance / "primary" / "container.log"
        ports = re.findall(r"Serving \w+ on 127\.0\.0\.1:(\d+)", log.read_text())
        if not ports:
            raise RuntimeError(f"{log} names no port")
        return int(ports[-1])

    def container_pid(self, endpoint: str, instance: str = "AllTraffic-0") -> int:
        """The process id of an instance's primary container, found by its working folder."""
        pids = processes_in(self.state / "instances" / endpoint / instance / "primary")
        if len(pids) != 1:
            raise RuntimeError(f"{endpoint} {instance} has {len(pids)} container processes")
        return pids[0]

    def invocations_path(self, endpoint: str) -> str:
        return f"/endpoints/{endpoint}/invocations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_runtime() -> Iterator[Runtime]:
    """Start the runtime on a free port with its own S3 and state folders; always stop it."""
    folder = Path(tempfile.mkdtemp(prefix="runtime-", dir=os.environ.get("PORTAL_VAR_DIR")))
    s3, state = folder / "s3", folder / "state"
    state.mkdir(parents=True)
    port = free_port()
    environment = os.environ | {
        "LOCAL_S3_ROOT": str(s3),
        "LOCAL_RUNTIME_STATE_DIR": str(state),
        "LOCAL_RUNTIME_STARTUP_TIMEOUT": str(STARTUP_TIMEOUT_S),
    }
    with (folder / "runtime.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own manage.py, with our own interpreter)
            [sys.executable, "manage.py", "runtime", "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_ping(port, process, folder)
        config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=70)
        sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (the runtime checks no signature)
            config=config,
        )
        # This runtime is the one the outbound guard (S9) lets the boto3 client reach.
        with override_settings(LOCAL_RUNTIME_URL=f"http://127.0.0.1:{port}"):
            yield Runtime(port=port, pid=process.pid, s3=s3, state=state, sagemaker=sagemaker)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            print(f"(the runtime did not stop within 20 s of SIGTERM; killed. See {folder})")
        report_leftovers(state)


def wait_for_ping(port: int, process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            log = (folder / "runtime.log").read_text(errors="replace")
            raise RuntimeError(f"the runtime exited with {process.returncode}:\n{log[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the runtime did not answer /ping within 30 s; see {folder}")
        time.sleep(0.05)


def processes_in(folder: Path) -> list[int]:
    """Ids of the processes working in `folder` or below it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == str(folder) or cwd.startswith(f"{folder}/"):
                found.append(int(entry))
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used so far, from /proc (10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_leftovers(state: Path) -> None:
    """Model processes still running from the runtime's folders after it stopped: say so, and
    end them (they are this benchmark's children's children)."""
    leftovers = processes_in(state)
    if leftovers:
        print(f"(warning: {len(leftovers)} model processes outlived the runtime; ending them)")
        for pid in leftovers:
            os.kill(pid, signal.SIGTERM)


def burn_model() -> bytes:
    """A python-image model.tar.gz whose every request costs BURN_MS of CPU on this machine."""
    namespace: dict = {}
    exec(SPIN, namespace)  # noqa: S102  # nosec B102 (our own constant, timed as the model runs it)
    started = time.thread_time()
    namespace["spin"](1_000_000)
    turns = int(1_000_000 * BURN_MS / 1000 / (time.thread_time() - started))
    code = f"""{SPIN}
def model_fn(model_dir):
    return {turns}

def transform_fn(turns, data, content_type, accept):
    return str(spin(turns)), "text/plain"
"""
    return artifacts.python_model(code)


def post(connection: http.client.HTTPConnection, path: str, request: dict) -> bytes:
    """One POST on a keep-alive connection; anything but 200 stops the benchmark."""
    connection.request("POST", path, body=request["body"], headers=request["headers"])
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {body[:300]!r}")
    return body


def timed_posts(port: int, path: str, request: dict, count: int) -> list[float]:
    """Milliseconds of each of `count` POSTs, one after the other on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=70)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        post(connection, path, request)
        samples.append((time.perf_counter() - started) * 1000)
    connection.close()
    return samples


def head(port: int, path: str, request: dict) -> list[bytes]:
    return [httpload.request_bytes(port, path, request["body"], request["headers"])]


def concurrent_posts(
    port: int, path: str, request: dict, clients: int, count: int
) -> tuple[list[float], float]:
    """`count` POSTs shared by `clients` keep-alive connections of one asyncio client
    (bench/httpload.py: its CPU a request is a fraction of threads'): (milliseconds of every
    request, requests per second over the whole run)."""
    outcome = httpload.closed_loop(port, head(port, path, request), clients, count=count)
    if outcome.errors:
        raise RuntimeError(f"POST {path}: {sorted(set(outcome.errors))[:3]}")
    return outcome.samples, outcome.throughput


def posts_for(port: int, path: str, request: dict, clients: int, seconds: float) -> list[float]:
    """`clients` connections posting back to back for `seconds`: milliseconds of every request."""
    outcome = httpload.closed_loop(port, head(port, path, request), clients, seconds=seconds)
    if outcome.errors:
        raise RuntimeError(f"POST {path}: {sorted(set(outcome.errors))[:3]}")
    return outcome.samples


def first_posts(port: int, path: str, request: dict) -> tuple[float, float]:
    """Milliseconds of the first POST (on a new connection, as a new client's would be) and of
    the one right after it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=70)
    started = time.perf_counter()
    post(connection, path, request)
    first = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    post(connection, path, request)
    second = (time.perf_counter() - started) * 1000
    connection.close()
    return first, second


def run() -> None:
    with running_runtime() as runtime:
        load = os.getloadavg()[0]
        print(
            f"Local runtime (manage.py runtime on port {runtime.port}, {os.cpu_count()} CPU "
            f"cores, 1-minute load average {load:.2f} before it starts serving)\n"
        )
        artifacts.write(
            runtime.s3, "s3://bench/iris/model.tar.gz", artifacts.iris_like_classifier()
        )
        for number in range(MULTI_MODEL_TARGETS):
            artifacts.write(
                runtime.s3, f"s3://bench/mme/slope-{number}.tar.gz", artifacts.linear_model(number)
            )
        artifacts.write(runtime.s3, "s3://bench/burn/model.tar.gz", burn_model())
        iris = {"Image": "sklearn", "ModelDataUrl": "s3://bench/iris/model.tar.gz"}
        burn = {"Image": "python", "ModelDataUrl": "s3://bench/burn/model.tar.gz"}
        multi_model = {"Image": "sklearn", "ModelDataUrl": "s3://bench/mme/", "Mode": "MultiModel"}
        sent = {
            "iris": runtime.deploy("iris", iris),
            "mme": runtime.deploy("mme", multi_model),
            "burn-1": runtime.deploy("burn-1", burn),
            "burn-2": runtime.deploy(
                "burn-2", burn, {"InstanceType": "ml.m5.large", "InitialInstanceCount": 2}
            ),
        }
        for name, since in sent.items():
            runtime.wait_in_service(name, since)
        router_overhead(runtime)
        multi_model_loads(runtime)
        instance_scaling(runtime)
        cold_starts(runtime, iris)


def router_overhead(runtime: Runtime) -> None:
    paths = {
        "direct": (runtime.container_port("iris"), "/invocations"),
        "router": (runtime.port, runtime.invocations_path("iris")),
    }
    model_pid = runtime.container_pid("iris")
    for port, path in paths.values():
        timed_posts(port, path, IRIS_ROW, WARMUP_REQUESTS)
    results = {}
    for clients, count in ((1, SEQUENTIAL_REQUESTS), (CONCURRENT_CLIENTS, CONCURRENT_REQUESTS)):
        for label, (port, path) in paths.items():
            before = (time.process_time(), cpu_seconds(runtime.pid), cpu_seconds(model_pid))
            samples, throughput = concurrent_posts(port, path, IRIS_ROW, clients, count)
            after = (time.process_time(), cpu_seconds(runtime.pid), cpu_seconds(model_pid))
            cpu = [
                (end - start) * 1e6 / len(samples) for start, end in zip(before, after, strict=True)
            ]
            results[label, clients] = samples, throughput, cpu
    print(
        "Runtime router overhead: a tiny sklearn predict through /endpoints/{name}/invocations "
        "(router) and on the container's own /invocations (direct), one keep-alive connection "
        "a client"
    )
    print(
        f"{'path':<8}{'clients':>8}{'requests':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'req/s':>9}{'client':>8}{'runtime':>9}{'model':>8}"
    )
    for (label, clients), (samples, throughput, cpu) in results.items():
        print(
            f"{label:<8}{clients:>8}{len(samples):>10}{statistics.median(samples):>9.3f}"
            f"{percentile(samples, 0.95):>9.3f}{percentile(samples, 0.99):>9.3f}"
            f"{throughput:>9.0f}{cpu[0]:>8.0f}{cpu[1]:>9.0f}{cpu[2]:>8.0f}"
        )
    print(
        "(client, runtime, model: CPU microseconds per request of the benchmark's own process, "
        f"the runtime process and the model process; {os.cpu_count()} CPU cores)"
    )
    print(f"{'clients':<8}{'p50 added ms':>14}{'added/goal':>12}{'router/direct req/s':>21}")
    for clients in (1, CONCURRENT_CLIENTS):
        added = statistics.median(results["router", clients][0]) - statistics.median(
            results["direct", clients][0]
        )
        ratio = results["router", clients][1] / results["direct", clients][1]
        print(f"{clients:<8}{added:>14.3f}{added / GOAL_ADDED_P50_MS:>12.3f}{ratio:>21.3f}")
    print(
        f"(goal: p50 added under {GOAL_ADDED_P50_MS:g} ms, so added/goal under 1; router "
        f"throughput at least {GOAL_THROUGHPUT_RATIO:.0%} of direct, so router/direct at least "
        f"{GOAL_THROUGHPUT_RATIO})\n"
    )


def multi_model_loads(runtime: Runtime) -> None:
    path = runtime.invocations_path("mme")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=70)

    def target(number: int) -> dict:
        headers = IRIS_ROW["headers"] | {"X-Amzn-SageMaker-Target-Model": f"slope-{number}.tar.gz"}
        return {"body": b"1", "headers": headers}

    cold, warm = [], []
    for number in range(MULTI_MODEL_TARGETS):
        started = time.perf_counter()
        post(connection, path, target(number))
        cold.append((time.perf_counter() - started) * 1000)
    for _ in range(WARM_HITS_PER_TARGET):
        for number in range(MULTI_MODEL_TARGETS):
            started = time.perf_counter()
            post(connection, path, target(number))
            warm.append((time.perf_counter() - started) * 1000)
    connection.close()
    print(
        f"Multi-model endpoint, {MULTI_MODEL_TARGETS} sklearn targets: each target's first "
        "invocation (cold: unpack and load) and the invocations after it (warm), through the router"
    )
    print(f"{'load':<22}{'requests':>10}{'p50 ms':>9}{'max ms':>9}{'p50/warm':>10}")
    warm_p50 = statistics.median(warm)
    # The container imports the image's libraries with its first model, so the first cold load
    # is shown apart from the others.
    for label, samples in (
        ("cold, first target", cold[:1]),
        ("cold, other targets", cold[1:]),
        ("warm", warm),
    ):
        p50 = statistics.median(samples)
        print(
            f"{label:<22}{len(samples):>10}{p50:>9.3f}{max(samples):>9.3f}{p50 / warm_p50:>10.1f}"
        )
    print("(no goal set; for reference)\n")


def instance_scaling(runtime: Runtime) -> None:
    results = {}
    request = {"body": b"x", "headers": {"Content-Type": "text/plain"}}
    for name, instances in (("burn-1", 1), ("burn-2", 2)):
        path = runtime.invocations_path(name)
        models = processes_in(runtime.state / "instances" / name)
        posts_for(runtime.port, path, request, CPU_CLIENTS, 1)  # warm up
        started = time.perf_counter()
        before = cpu_seconds(runtime.pid), sum(cpu_seconds(pid) for pid in models)
        samples = posts_for(runtime.port, path, request, CPU_CLIENTS, CPU_SECONDS)
        after = cpu_seconds(runtime.pid), sum(cpu_seconds(pid) for pid in models)
        wall = time.perf_counter() - started
        cpu = [
            (end - start) * 1000 / len(samples) for start, end in zip(before, after, strict=True)
        ]
        results[instances] = samples, len(samples) / wall, cpu, (after[1] - before[1]) / wall
    print(
        f"Instances of a CPU-bound python model ({BURN_MS} ms of pure-Python CPU a request), "
        f"{CPU_CLIENTS} client threads for {CPU_SECONDS} s each, {os.cpu_count()} CPU cores"
    )
    print(
        f"{'instances':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'vs 1':>8}"
        f"{'runtime':>9}{'model':>8}{'cores':>7}"
    )
    for instances, (samples, throughput, cpu, model_cores) in results.items():
        print(
            f"{instances:<10}{len(samples):>10}{throughput:>9.1f}"
            f"{statistics.median(samples):>9.1f}{percentile(samples, 0.95):>9.1f}"
            f"{throughput / results[1][1]:>8.2f}{cpu[0]:>9.2f}{cpu[1]:>8.2f}{model_cores:>7.2f}"
        )
    print(
        f"(one instance serves at most {1000 / BURN_MS:.0f} req/s, its GIL; two instances on two "
        "cores could reach 2.00 vs 1, less the router's and the clients' own CPU. runtime, "
        "model: CPU milliseconds per request of the runtime process and the model processes; "
        "cores: the model processes' CPU over the run, in cores)\n"
    )


def cold_starts(runtime: Runtime, iris: dict) -> None:
    """CreateEndpoint to InService, then the first invocation and the one after it: serverless
    for sklearn and the LLM, and a provisioned sklearn instance for reference."""

    def serverless(memory: int) -> dict:
        return {"ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": 1}}

    cases = [("sklearn serverless", "sklearn", iris, serverless(2048), IRIS_ROW)]
    notes = []
    try:
        importlib.import_module("runtime.images.llm")
    except ImportError as error:
        notes.append(f"LLM serverless cold start: skipped (runtime.images.llm: {error})")
    else:
        llm = {"Image": "llm", "Environment": {"LLM_MODEL": "smollm2"}}
        cases.append(("llm serverless", "llm", llm, serverless(4096), LLM_PROMPT))
    cases.append(("sklearn provisioned", "", iris, None, IRIS_ROW))
    rows = []
    for number, (label, kind, container, variant, request) in enumerate(cases):
        try:
            measured = deploy_and_call(runtime, f"cold-{number}", container, variant, request)
        except (ClientError, BotoCoreError, RuntimeError) as error:
            if kind == "sklearn":
                notes.insert(
                    0,
                    "serverless cold start: not measured (runtime does not serve serverless "
                    f"yet: {reason(error)})",
                )
            elif kind == "llm":
                notes.append(f"LLM serverless cold start: not measured ({reason(error)})")
            else:
                raise
        else:
            rows.append((label, kind, *measured))
    print(
        "Cold start: CreateEndpoint to InService (DescribeEndpoint polled every 25 ms), then "
        "the first invocation on a new connection and the one after it"
    )
    print(
        f"{'endpoint':<21}{'to InService s':>15}{'first call s':>13}{'second ms':>11}"
        f"{'goal s':>8}{'first/goal':>12}"
    )
    for label, kind, in_service, first, second in rows:
        goal = GOAL_COLD_START_S.get(kind)
        judged = f"{goal:>8.1f}{first / 1000 / goal:>12.3f}" if goal else f"{'-':>8}{'-':>12}"
        print(f"{label:<21}{in_service:>15.3f}{first / 1000:>13.3f}{second:>11.2f}{judged}")
    for note in notes:
        print(note)
    print(
        "(goal: a serverless first call under "
        f"{GOAL_COLD_START_S['sklearn']} s for sklearn and {GOAL_COLD_START_S['llm']} s for the "
        "LLM (1 new token), so first/goal under 1; provisioned is for reference)\n"
    )


def deploy_and_call(
    runtime: Runtime, name: str, container: dict, variant: dict | None, request: dict
) -> tuple[float, float, float]:
    """(seconds from CreateEndpoint to InService, first call ms, second call ms)."""
    in_service = runtime.wait_in_service(name, runtime.deploy(name, container, variant))
    first, second = first_posts(runtime.port, runtime.invocations_path(name), request)
    return in_service, first, second


def reason(error: Exception) -> str:
    """The error's message on one line."""
    if isinstance(error, ClientError):
        return " ".join(error.response["Error"].get("Message", str(error)).split())
    return " ".join(str(error).split())
