"""The runtime's state and work: models, endpoint configs and endpoints with SageMaker's rules;
instance processes started, watched and restarted; every invocation routed to one of them.

Everything here runs on the runtime's event loop. Model processes are separate OS processes
(runtime.container), so a model that blocks, leaks or crashes never takes the runtime down.
The definitions (models, configs, endpoints) are saved in `state.json` after every change and
brought back up when the runtime restarts.
"""

import asyncio
import functools
import hashlib
import json
import logging
import math
import os
import random
import re
import socket
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from runtime import wire
from runtime.asyncinference import AsyncConfig, AsyncQueue
from runtime.capture import CaptureConfig, CaptureWriter
from runtime.images import image_class
from runtime.metrics import Metrics
from runtime.storage import LocalStorage, StorageError, safe_extract

log = logging.getLogger("runtime")

REGION = "local"
ACCOUNT = "000000000000"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MODEL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$")
SERVERLESS_MEMORY = {1024, 2048, 3072, 4096, 5120, 6144}
SPARE_REPLACEMENT_DELAY_S = 5.0
MAX_BODY = 6 * 1024 * 1024  # 6 MiB, SageMaker's real-time request and response cap
SERVERLESS_MAX_BODY = 4_000_000
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Variables a model process may inherit; everything else (SECRET_KEY, DATABASE_URL, AWS_*) stays
# behind. The container's own Environment is added on top.
INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR")
RESTART_LIMIT = 5  # restarts within RESTART_WINDOW before the endpoint is Failed
RESTART_WINDOW = 600.0


class ApiError(Exception):
    """An error in SageMaker's shape: `code` is the exception name boto3 raises."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def now() -> float:
    return time.time()


def check_name(value: object, member: str, pattern: re.Pattern = NAME_PATTERN) -> str:
    """A SageMaker resource name, refused in AWS's own words when it breaks the pattern."""
    if not isinstance(value, str) or not pattern.match(value):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern.pattern} "
            "(1 to 63 letters, digits or hyphens, starting and ending with a letter or digit)"
        )
    return value


def free_port(taken: set[int]) -> int:
    """A loopback port nobody listens on and that no starting container has been given yet (a
    child binds its port a moment after it is chosen, so the OS could hand it out twice)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def containers_of(model: dict) -> list[dict]:
    return model["Containers"] if model.get("Containers") else [model["PrimaryContainer"]]


def model_mode(model: dict) -> str:
    """single, multi-model, serial or direct."""
    if model.get("Containers"):
        return model.get("InferenceExecutionConfig", {}).get("Mode", "Serial").lower()
    if model["PrimaryContainer"].get("Mode") == "MultiModel":
        return "multi-model"
    return "single"


@dataclass
class ContainerProcess:
    """One container of one instance: a runtime.container process on its own port."""

    hostname: str
    image: str
    model_dir: Path
    work_dir: Path
    environment: dict[str, str]
    multi_model: bool
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    restarts: list[float] = field(default_factory=list)
    standby: bool = False  # a warm spare: libraries imported, waiting to be adopted
    pool: wire.Pool | None = None  # keep-alive connections for invocations
    log_file: Path | None = None  # an adopted spare keeps writing to its own log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_file or self.work_dir / "container.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass
class Instance:
    """One instance of a variant: its containers, co-located as on a SageMaker instance."""

    number: int
    containers: list[ContainerProcess]
    in_flight: int = 0
    loaded: OrderedDict = field(default_factory=OrderedDict)  # multi-model: target -> bytes
    stopping: bool = False
    watchers: list[asyncio.Task] = field(default_factory=list)


@dataclass
class Variant:
    name: str
    model_name: str
    weight: float
    instance_type: str
    desired_count: int
    serverless: dict | None
    instances: list[Instance] = field(default_factory=list)
    capture: CaptureWriter | None = None
    active: int = 0  # requests in flight, for serverless MaxConcurrency
    last_used: float = field(default_factory=now)
    cold_start: asyncio.Lock = field(default_factory=asyncio.Lock)
    recent: deque = field(default_factory=lambda: deque(maxlen=100_000))  # invocation times
    last_scale_out: float = 0.0
    last_scale_in: float = 0.0

    def live_instances(self) -> list[Instance]:
        return [instance for instance in self.instances if not instance.stopping]

    @property
    def scales_to_zero(self) -> bool:
        """Serverless without provisioned concurrency: no process while nobody calls."""
        return bool(self.serverless) and not self.serverless.get("ProvisionedConcurrency")

    def next_number(self) -> int:
        return max((instance.number for instance in self.instances), default=-1) + 1


@dataclass
class Endpoint:
    name: str
    config_name: str
    status: str = "Creating"
    failure_reason: str = ""
    created: float = field(default_factory=now)
    modified: float = field(default_factory=now)
    variants: dict[str, Variant] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    task: asyncio.Task | None = None
    async_queue: AsyncQueue | None = None  # async endpoints only

    def event(self, message: str) -> None:
        self.events.append({"time": now(), "message": message})
        del self.events[:-200]
        log.info("endpoint %s: %s", self.name, message)


@dataclass(frozen=True)
class Invocation:
    """What the caller gets back from one invocation."""

    body: bytes
    content_type: str
    variant: str
    custom_attributes: str = ""
    model_seconds: float = 0.0  # the containers' own time (ModelLatency of this one call)


class Host:
    """The runtime's state and everything that changes it."""

    def __init__(
        self,
        root: Path,
        storage: LocalStorage,
        *,
        startup_timeout: float = 60.0,
        invocation_timeout: float = 60.0,
        max_instances: int = 4,
        multi_model_budget_bytes: int = 512 * 1024 * 1024,
        serverless_idle_seconds: float = 300.0,
        autoscaling_period: float = 60.0,
        warm_images: tuple[str, ...] = ("sklearn", "python", "llm"),
        model_memory_mb: int = 0,
    ):
        self.root = root
        self.storage = storage
        self.startup_timeout = startup_timeout
        self.invocation_timeout = invocation_timeout
        self.max_instances = max_instances
        self.multi_model_budget = multi_model_budget_bytes
        self.serverless_idle = serverless_idle_seconds
        self.autoscaling_period = autoscaling_period
        self.housekeeping_seconds = min(5.0, serverless_idle_seconds / 2, autoscaling_period / 2)
        self.scalable_targets: dict[str, dict] = {}  # "resource|dimension" -> target
        self.policies: dict[str, dict] = {}  # "name|resource|dimension" -> policy
        self.activities: list[dict] = []
        self.last_autoscale = 0.0
        self.models: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.metrics = Metrics()
        self.session: aiohttp.ClientSession | None = None
        self.ports: set[int] = set()  # given to container processes that may still be starting
        self.warm_images = warm_images
        self.model_memory_mb = model_memory_mb  # each model process's address-space cap; 0: none
        self.warm_spares = bool(warm_images)
        self.spares: dict[str, ContainerProcess] = {}  # image -> warm standby process
        self.spare_tasks: dict[str, asyncio.Task] = {}
        self.spares_launching: set[str] = set()  # images whose spare process is starting
        self.unpacking: dict[str, asyncio.Lock] = {}
        self.random = random.Random()  # noqa: S311 (traffic splitting, not security)
        root.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and bring back every endpoint saved before a restart."""
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2),
        )
        self.housekeeping = asyncio.create_task(self.keep_house())
        for image in self.warm_images:
            try:
                image_class(image)
            except ValueError:  # e.g. llm without llama-cpp-python installed
                continue
            self.want_spare(image)
        saved = self.load_state()
        self.models = saved.get("models", {})
        self.configs = saved.get("configs", {})
        self.scalable_targets = saved.get("scalable_targets", {})
        self.policies = saved.get("policies", {})
        for name, data in saved.get("endpoints", {}).items():
            endpoint = Endpoint(name=name, config_name=data["config"], created=data["created"])
            endpoint.event("The runtime restarted; bringing the endpoint back up.")
            self.endpoints[name] = endpoint
            endpoint.task = asyncio.create_task(self.bring_up(endpoint))

    async def keep_house(self) -> None:
        """Every few seconds: write captured records that have waited long enough, scale idle
        serverless variants to zero, and run the autoscaling controller when it is due."""
        while True:
            await asyncio.sleep(self.housekeeping_seconds)
            for endpoint in list(self.endpoints.values()):
                for variant in list(endpoint.variants.values()):
                    try:
                        if variant.capture is not None:
                            await asyncio.to_thread(variant.capture.flush_if_due)
                        await self.scale_to_zero_if_idle(endpoint, variant)
                    except Exception:  # one endpoint's trouble must not stop the loop
                        log.exception("housekeeping failed for %s", endpoint.name)
                queue = endpoint.async_queue
                if queue is not None:
                    backlog = queue.backlog() + queue.in_flight()
                    instances = queue.instance_count()
                    for variant_name in endpoint.variants:
                        gauge = functools.partial(self.metrics.gauge, endpoint.name, variant_name)
                        gauge("ApproximateBacklogSize", backlog)
                        gauge("ApproximateBacklogSizePerInstance", backlog / max(instances, 1))
                        gauge("HasBacklogWithoutCapacity", int(backlog > 0 and instances == 0))
            if time.monotonic() - self.last_autoscale >= self.autoscaling_period:
                self.last_autoscale = time.monotonic()
                try:
                    await self.autoscale()
                except Exception:  # the controller runs again next period
                    log.exception("autoscaling failed")

    async def scale_to_zero_if_idle(self, endpoint: Endpoint, variant: Variant) -> None:
        idle = now() - variant.last_used
        if (
            variant.scales_to_zero
            and variant.live_instances()
            and variant.active == 0
            and idle >= self.serverless_idle
            and endpoint.status == "InService"
        ):
            stopping, variant.instances = variant.instances, []
            for instance in stopping:
                await self.stop_instance(instance)
            self.metrics.gauge(endpoint.name, variant.name, "CurrentInstanceCount", 0)
            endpoint.event(f"{variant.name} scaled to zero after {idle:.0f} s without requests.")

    async def stop(self) -> None:
        """Stop every model process (SIGTERM, then SIGKILL after 5 s) and close the client."""
        self.housekeeping.cancel()
        for task in self.spare_tasks.values():
            task.cancel()
        stopping = [self.kill(spare) for spare in self.spares.values()]
        for endpoint in self.endpoints.values():
            if endpoint.task:
                endpoint.task.cancel()
            if endpoint.async_queue is not None:
                await endpoint.async_queue.stop()
            for variant in endpoint.variants.values():
                stopping += [self.stop_instance(instance) for instance in variant.instances]
                if variant.capture:
                    variant.capture.flush()
        await asyncio.gather(*stopping, return_exceptions=True)
        if self.session:
            await self.session.close()

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    def save_state(self) -> None:
        state = {
            "models": self.models,
            "configs": self.configs,
            "scalable_targets": self.scalable_targets,
            "policies": self.policies,
            "endpoints": {
                name: {"config": endpoint.config_name, "created": endpoint.created}
                for name, endpoint in self.endpoints.items()
            },
        }
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1))
        temporary.replace(self.state_path)

    # -- models -------------------------------------------------------------------------

    def create_model(self, request: dict) -> dict:
        name = check_name(request.get("ModelName"), "modelName", MODEL_NAME_PATTERN)
        if name.lower() in {existing.lower() for existing in self.models}:
            raise validation(f'Cannot create already existing model "{arn("model", name)}".')
        primary, containers = request.get("PrimaryContainer"), request.get("Containers")
        if bool(primary) == bool(containers):
            raise validation("Provide either PrimaryContainer or Containers, not both.")
        if containers is not None and not 1 <= len(containers) <= 15:
            raise validation("A model has at most 15 containers.")
        mode = request.get("InferenceExecutionConfig", {}).get("Mode", "Serial")
        if mode not in {"Serial", "Direct"}:
            raise validation("InferenceExecutionConfig.Mode must be Serial or Direct.")
        hostnames = [container.get("ContainerHostname") for container in containers or []]
        if containers and mode == "Direct" and not all(hostnames):
            raise validation("Direct mode needs a ContainerHostname on every container.")
        if len([h for h in hostnames if h]) != len({h for h in hostnames if h}):
            raise validation("Container hostnames must be unique within a model.")
        for container in containers or [primary]:
            self.check_container(container)
        multi = [c for c in containers or [primary] if c.get("Mode") == "MultiModel"]
        if containers and multi:
            raise validation(
                "The local runtime serves multi-model containers only as a model's "
                "PrimaryContainer."
            )
        self.models[name] = {**request, "CreationTime": now()}
        self.save_state()
        return {"ModelArn": arn("model", name)}

    def check_container(self, container: dict) -> None:
        image = container.get("Image", "")
        try:
            image_class(image)
        except ValueError as error:
            raise validation(str(error)) from error
        url = container.get("ModelDataUrl")
        if url:
            # A multi-model URL is a prefix: check it as the folder of a key under it.
            probe = (
                url.rstrip("/") + "/model.tar.gz" if container.get("Mode") == "MultiModel" else url
            )
            try:
                self.storage.path_for(probe)
            except StorageError as error:
                raise validation(f"ModelDataUrl {url}: {error}") from error
        environment = container.get("Environment", {})
        if len(environment) > 100 or any(
            len(key) > 1024 or len(str(value)) > 1024 for key, value in environment.items()
        ):
            raise validation("Environment holds at most 100 entries of at most 1024 bytes each.")
        if container.get("ContainerHostname"):
            check_name(container["ContainerHostname"], "containerHostname")

    def describe_model(self, request: dict) -> dict:
        name = request.get("ModelName", "")
        model = self.models.get(name)
        if model is None:
            raise validation(f'Could not find model "{arn("model", name)}".')
        return {**model, "ModelArn": arn("model", name)}

    def delete_model(self, request: dict) -> dict:
        self.describe_model(request)
        del self.models[request["ModelName"]]
        self.save_state()
        return {}

    def list_models(self, request: dict) -> dict:
        summaries = [
            {
                "ModelName": name,
                "ModelArn": arn("model", name),
                "CreationTime": model["CreationTime"],
            }
            for name, model in self.models.items()
        ]
        return page(summaries, request, "Models")

    # -- endpoint configs -----------------------------------------------------------------

    def create_endpoint_config(self, request: dict) -> dict:
        name = check_name(request.get("EndpointConfigName"), "endpointConfigName")
        if name.lower() in {existing.lower() for existing in self.configs}:
            raise validation(
                "Cannot create already existing endpoint configuration "
                f'"{arn("endpoint-config", name)}".'
            )
        variants = request.get("ProductionVariants") or []
        if not 1 <= len(variants) <= 10:
            raise validation("An endpoint configuration has 1 to 10 production variants.")
        names = [variant.get("VariantName") for variant in variants]
        if len(set(names)) != len(names):
            raise validation("Variant names must be unique within an endpoint configuration.")
        for variant in variants:
            self.check_variant(variant)
        serverless = [variant for variant in variants if variant.get("ServerlessConfig")]
        if serverless and len(variants) > 1:
            raise validation("A serverless endpoint has exactly one production variant.")
        if serverless and request.get("DataCaptureConfig"):
            raise validation("Data capture is not available on serverless endpoints.")
        if request.get("AsyncInferenceConfig"):
            if serverless:
                raise validation("Serverless endpoints cannot be asynchronous.")
            try:
                AsyncConfig.from_api(request["AsyncInferenceConfig"])
            except (TypeError, ValueError) as error:
                raise validation(f"AsyncInferenceConfig: {error}") from error
        if request.get("DataCaptureConfig"):
            try:
                CaptureConfig.from_api(request["DataCaptureConfig"])
                self.storage.path_for(request["DataCaptureConfig"]["DestinationS3Uri"])
            except (KeyError, TypeError, ValueError, StorageError) as error:
                raise validation(f"DataCaptureConfig: {error}") from error
        self.configs[name] = {**request, "CreationTime": now()}
        self.save_state()
        return {"EndpointConfigArn": arn("endpoint-config", name)}

    def check_variant(self, variant: dict) -> None:
        check_name(variant.get("VariantName"), "variantName")
        model_name = variant.get("ModelName", "")
        if model_name not in self.models:
            raise validation(f'Could not find model "{arn("model", model_name)}".')
        serverless = variant.get("ServerlessConfig")
        if serverless:
            if "InstanceType" in variant or "InitialInstanceCount" in variant:
                raise validation(
                    "A serverless variant has no InstanceType or InitialInstanceCount."
                )
            if serverless.get("MemorySizeInMB") not in SERVERLESS_MEMORY:
                raise validation(
                    "1 validation error detected: Value at 'memorySizeInMB' failed to satisfy "
                    "constraint: Member must satisfy enum value set: [1024, 2048, 3072, 4096, "
                    "5120, 6144]"
                )
            maximum = serverless.get("MaxConcurrency")
            if not isinstance(maximum, int) or not 1 <= maximum <= 200:
                raise validation("ServerlessConfig.MaxConcurrency must be 1 to 200.")
            provisioned = serverless.get("ProvisionedConcurrency")
            if provisioned is not None and not 1 <= provisioned <= maximum:
                raise validation("ProvisionedConcurrency must be 1 to MaxConcurrency.")
            if model_mode(self.models[model_name]) == "multi-model":
                raise validation("Serverless endpoints cannot host multi-model containers.")
            return
        count = variant.get("InitialInstanceCount")
        if not variant.get("InstanceType") or not isinstance(count, int) or count < 1:
            raise validation(
                f"Variant {variant['VariantName']} needs an InstanceType and an "
                "InitialInstanceCount of at least 1 (or a ServerlessConfig)."
            )
        if count > self.max_instances:
            raise ApiError(
                "ResourceLimitExceeded",
                f"The local runtime runs at most {self.max_instances} instances per variant; "
                f"{count} were asked for.",
            )
        weight = variant.get("InitialVariantWeight", 1.0)
        if not isinstance(weight, int | float) or weight < 0:
            raise validation("InitialVariantWeight must be a number of at least 0.")

    def describe_endpoint_config(self, request: dict) -> dict:
        name = request.get("EndpointConfigName", "")
        config = self.configs.get(name)
        if config is None:
            raise validation(
                f'Could not find endpoint configuration "{arn("endpoint-config", name)}".'
            )
        return {**config, "EndpointConfigArn": arn("endpoint-config", name)}

    def delete_endpoint_config(self, request: dict) -> dict:
        self.describe_endpoint_config(request)
        del self.configs[request["EndpointConfigName"]]
        self.save_state()
        return {}

    def list_endpoint_configs(self, request: dict) -> dict:
        summaries = [
            {
                "EndpointConfigName": name,
                "EndpointConfigArn": arn("endpoint-config", name),
                "CreationTime": config["CreationTime"],
            }
            for name, config in self.configs.items()
        ]
        return page(summaries, request, "EndpointConfigs")

    # -- endpoints ----------------------------------------------------------------------

    def create_endpoint(self, request: dict) -> dict:
        name = check_name(request.get("EndpointName"), "endpointName")
        if name.lower() in {existing.lower() for existing in self.endpoints}:
            raise validation(f'Cannot create already existing endpoint "{arn("endpoint", name)}".')
        config_name = request.get("EndpointConfigName", "")
        self.describe_endpoint_config({"EndpointConfigName": config_name})
        endpoint = Endpoint(name=name, config_name=config_name)
        endpoint.event(f"Creating with configuration {config_name}.")
        for spec in self.configs[config_name]["ProductionVariants"]:
            if spec.get("ServerlessConfig"):
                for container in containers_of(self.models[spec["ModelName"]]):
                    self.want_spare(container["Image"])
        self.endpoints[name] = endpoint
        self.save_state()
        endpoint.task = asyncio.create_task(self.bring_up(endpoint))
        return {"EndpointArn": arn("endpoint", name)}

    def endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise validation(f'Could not find endpoint "{arn("endpoint", name)}".')
        return endpoint

    def describe_endpoint(self, request: dict) -> dict:
        endpoint = self.endpoint(request.get("EndpointName", ""))
        config = self.configs.get(endpoint.config_name, {})
        variants = []
        for spec in config.get("ProductionVariants", []):
            variant = endpoint.variants.get(spec["VariantName"])
            model = self.models.get(spec["ModelName"], {})
            summary = {
                "VariantName": spec["VariantName"],
                "DeployedImages": [
                    {"SpecifiedImage": c["Image"], "ResolvedImage": c["Image"]}
                    for c in (containers_of(model) if model else [])
                ],
                "CurrentWeight": variant.weight if variant else 0.0,
                "DesiredWeight": spec.get("InitialVariantWeight", 1.0),
            }
            if spec.get("ServerlessConfig"):
                summary["CurrentServerlessConfig"] = spec["ServerlessConfig"]
                summary["DesiredServerlessConfig"] = spec["ServerlessConfig"]
            else:
                summary["CurrentInstanceCount"] = len(variant.live_instances()) if variant else 0
                summary["DesiredInstanceCount"] = (
                    variant.desired_count if variant else spec["InitialInstanceCount"]
                )
            variants.append(summary)
        answer = {
            "EndpointName": endpoint.name,
            "EndpointArn": arn("endpoint", endpoint.name),
            "EndpointConfigName": endpoint.config_name,
            "ProductionVariants": variants,
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
        }
        if endpoint.failure_reason:
            answer["FailureReason"] = endpoint.failure_reason[:1024]
        capture = config.get("DataCaptureConfig")
        if capture:
            answer["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"],
                "KmsKeyId": capture.get("KmsKeyId", ""),
            }
        return answer

    def list_endpoints(self, request: dict) -> dict:
        summaries = [
            {
                "EndpointName": endpoint.name,
                "EndpointArn": arn("endpoint", endpoint.name),
                "CreationTime": endpoint.created,
                "LastModifiedTime": endpoint.modified,
                "EndpointStatus": endpoint.status,
            }
            for endpoint in self.endpoints.values()
            if request.get("NameContains", "").lower() in endpoint.name.lower()
            and request.get("StatusEquals", endpoint.status) == endpoint.status
        ]
        sort_key = {"Name": "EndpointName", "Status": "EndpointStatus"}.get(
            request.get("SortBy", "CreationTime"), "CreationTime"
        )
        summaries.sort(
            key=lambda summary: summary[sort_key],
            reverse=request.get("SortOrder", "Descending") == "Descending",
        )
        return page(summaries, request, "Endpoints")

    def delete_endpoint(self, request: dict) -> dict:
        endpoint = self.endpoint(request.get("EndpointName", ""))
        if endpoint.status == "Deleting":
            return {}
        endpoint.status = "Deleting"
        endpoint.modified = now()
        endpoint.event("Deleting.")
        if endpoint.task:
            endpoint.task.cancel()
        endpoint.task = asyncio.create_task(self.tear_down(endpoint))
        return {}

    def update_endpoint(self, request: dict) -> dict:
        endpoint = self.endpoint(request.get("EndpointName", ""))
        config_name = request.get("EndpointConfigName", "")
        self.describe_endpoint_config({"EndpointConfigName": config_name})
        if endpoint.status != "InService":
            raise validation(
                f'Cannot update in-progress endpoint "{arn("endpoint", endpoint.name)}".'
            )
        if config_name == endpoint.config_name:
            raise validation("UpdateEndpoint needs a new endpoint configuration.")
        endpoint.status = "Updating"
        endpoint.modified = now()
        endpoint.event(f"Updating to configuration {config_name}.")
        endpoint.task = asyncio.create_task(self.update(endpoint, config_name))
        return {"EndpointArn": arn("endpoint", endpoint.name)}

    # -- bringing instances up and down ------------------------------------------------

    async def bring_up(self, endpoint: Endpoint) -> None:
        """Start every variant's instances; InService when all answer /ping, else Failed."""
        try:
            endpoint.variants = await self.start_variants(endpoint, endpoint.config_name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 (any failure to start is the FailureReason)
            endpoint.status = "Failed"
            endpoint.failure_reason = str(error)
            endpoint.event(f"Failed: {error}")
        else:
            self.start_async_queue(endpoint)
            endpoint.status = "InService"
            endpoint.failure_reason = ""
            endpoint.event("InService.")
            for variant in endpoint.variants.values():
                if variant.serverless:
                    for container in containers_of(self.models[variant.model_name]):
                        self.want_spare(container["Image"])
        endpoint.modified = now()

    def start_async_queue(self, endpoint: Endpoint) -> None:
        """An async endpoint's durable queue: requests accepted before a restart run now."""
        config = self.configs[endpoint.config_name].get("AsyncInferenceConfig")
        if not config:
            return

        async def run_model(body: bytes, headers: dict[str, str]) -> tuple[bytes, str]:
            variant = self.pick_variant(endpoint, "")
            try:
                result = await self.invoke_variant(
                    endpoint, variant, body, headers, time.perf_counter()
                )
            except ApiError as error:
                raise RuntimeError(error.message) from error
            return result.body, result.content_type

        endpoint.async_queue = AsyncQueue(
            endpoint=endpoint.name,
            config=AsyncConfig.from_api(config),
            storage=self.storage,
            queue_dir=self.root / "async" / endpoint.name,
            invoke=run_model,
            instance_count=lambda: sum(len(v.live_instances()) for v in endpoint.variants.values()),
        )
        endpoint.async_queue.start()

    def invoke_async(self, name: str, body: bytes, headers: dict[str, str]) -> dict:
        """InvokeEndpointAsync: the request is on disk before the 202 answer."""
        endpoint = self.serving_endpoint(name)
        if endpoint.async_queue is None:
            raise ApiError(
                "ValidationError",
                f"Endpoint {name} is not an asynchronous endpoint; use InvokeEndpoint.",
            )
        try:
            request = endpoint.async_queue.submit(
                body=body or None,
                input_location=headers.get("input_location") or None,
                content_type=headers.get("content_type") or "application/octet-stream",
                accept=headers.get("accept", ""),
                custom_attributes=headers.get("custom_attributes", ""),
                inference_id=headers.get("inference_id") or None,
                ttl_seconds=int(headers["ttl"]) if headers.get("ttl") else None,
                invocation_timeout=int(headers["timeout"]) if headers.get("timeout") else None,
                output_path_extension=headers.get("output_extension") or None,
                filename=headers.get("filename") or None,
            )
        except ValueError as error:
            raise ApiError("ValidationError", str(error)) from error
        return {
            "InferenceId": request.inference_id,
            "OutputLocation": request.output_location,
            "FailureLocation": request.failure_location,
        }

    async def update(self, endpoint: Endpoint, config_name: str) -> None:
        """Blue/green: start the new fleet, switch traffic, then stop the old one. If the new
        fleet fails, the old one keeps serving and the reason is kept."""
        try:
            new_variants = await self.start_variants(endpoint, config_name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 (a failed update rolls back and says why)
            endpoint.failure_reason = f"Update to {config_name} failed and was rolled back: {error}"
            endpoint.event(endpoint.failure_reason)
        else:
            old = endpoint.variants
            endpoint.variants = new_variants
            endpoint.config_name = config_name
            endpoint.failure_reason = ""
            self.save_state()
            endpoint.event(f"Traffic moved to configuration {config_name}.")
            if endpoint.async_queue is not None:
                await endpoint.async_queue.stop()
                endpoint.async_queue = None
            self.start_async_queue(endpoint)
            await self.stop_variants(old)
        endpoint.status = "InService"
        endpoint.modified = now()

    async def tear_down(self, endpoint: Endpoint) -> None:
        if endpoint.async_queue is not None:
            await endpoint.async_queue.stop()
        await self.stop_variants(endpoint.variants)
        endpoint.event("Deleted.")
        self.endpoints.pop(endpoint.name, None)
        self.save_state()

    async def stop_variants(self, variants: dict[str, Variant]) -> None:
        stopping = []
        for variant in variants.values():
            if variant.capture:
                variant.capture.flush()
            stopping += [self.stop_instance(instance) for instance in variant.instances]
        await asyncio.gather(*stopping, return_exceptions=True)

    async def start_variants(self, endpoint: Endpoint, config_name: str) -> dict[str, Variant]:
        config = self.configs[config_name]
        variants: dict[str, Variant] = {}
        try:
            for spec in config["ProductionVariants"]:
                variant = Variant(
                    name=spec["VariantName"],
                    model_name=spec["ModelName"],
                    weight=float(spec.get("InitialVariantWeight", 1.0)),
                    instance_type=spec.get("InstanceType", "serverless"),
                    # A serverless variant keeps one warm process only with provisioned
                    # concurrency; otherwise its first request starts one (a cold start).
                    desired_count=spec.get(
                        "InitialInstanceCount",
                        1 if spec.get("ServerlessConfig", {}).get("ProvisionedConcurrency") else 0,
                    ),
                    serverless=spec.get("ServerlessConfig"),
                )
                capture = config.get("DataCaptureConfig")
                if capture:
                    variant.capture = CaptureWriter(
                        write_object=self.storage.put,
                        endpoint=endpoint.name,
                        variant=variant.name,
                        config=CaptureConfig.from_api(capture),
                    )
                variants[variant.name] = variant
                starting = [
                    self.start_instance(endpoint, variant, number)
                    for number in range(variant.desired_count)
                ]
                variant.instances = list(await asyncio.gather(*starting))
                self.metrics.gauge(
                    endpoint.name, variant.name, "CurrentInstanceCount", len(variant.instances)
                )
        except BaseException:
            await self.stop_variants(variants)
            raise
        return variants

    def model_dirs(self, model_name: str) -> list[Path]:
        """Each container's artifacts, unpacked once into models/<name>/<index>-<version>, where
        the version changes with the archive (a re-uploaded model.tar.gz is unpacked afresh)."""
        model = self.models[model_name]
        folders = []
        for index, container in enumerate(containers_of(model)):
            url = container.get("ModelDataUrl")
            multi = container.get("Mode") == "MultiModel"
            archive = self.storage.path_for(url) if url and not multi else None
            version = "empty"
            if archive is not None and archive.is_file():
                stat = archive.stat()
                version = hashlib.sha256(f"{url}:{stat.st_size}:{stat.st_mtime_ns}".encode())
                version = version.hexdigest()[:12]
            folder = self.root / "models" / model_name / f"{index}-{version}"
            if not folder.exists():
                if archive is not None:
                    if not archive.is_file():
                        raise RuntimeError(
                            f"Failed to download model data from {url}: no such object. "
                            "Upload model.tar.gz there, or fix the model's ModelDataUrl."
                        )
                    try:
                        safe_extract(archive, folder)
                    except StorageError as error:
                        raise RuntimeError(f"Could not unpack {url}: {error}") from error
                else:
                    folder.mkdir(parents=True)
            folders.append(folder)
        return folders

    async def start_instance(self, endpoint: Endpoint, variant: Variant, number: int) -> Instance:
        model = self.models[variant.model_name]
        # Instances start side by side; the first unpacks the model, the others wait for it.
        lock = self.unpacking.setdefault(variant.model_name, asyncio.Lock())
        async with lock:
            folders = await asyncio.to_thread(self.model_dirs, variant.model_name)
        containers = []
        for index, (container, folder) in enumerate(
            zip(containers_of(model), folders, strict=True)
        ):
            hostname = container.get("ContainerHostname") or (
                "primary" if index == 0 else f"c{index}"
            )
            work_dir = (
                self.root / "instances" / endpoint.name / f"{variant.name}-{number}" / hostname
            )
            containers.append(
                ContainerProcess(
                    hostname=hostname,
                    image=container["Image"],
                    model_dir=folder,
                    work_dir=work_dir,
                    environment={k: str(v) for k, v in container.get("Environment", {}).items()},
                    multi_model=container.get("Mode") == "MultiModel",
                )
            )
        instance = Instance(number=number, containers=containers)
        try:
            for container in containers:
                if not (variant.serverless and await self.adopt_spare(container)):
                    await self.launch(container)
        except BaseException:
            await self.stop_instance(instance)
            raise
        for container in containers:
            instance.watchers.append(
                asyncio.create_task(self.watch(endpoint, variant, instance, container))
            )
        endpoint.event(f"Instance {variant.name}-{number} is up.")
        return instance

    def want_spare(self, image: str, delay: float = 0.0) -> None:
        """Keep one warm standby process for `image`, for serverless cold starts; started after
        `delay` seconds."""
        if self.warm_spares and image not in self.spares and image not in self.spare_tasks:
            self.spare_tasks[image] = asyncio.create_task(self.make_spare(image, delay))

    async def make_spare(self, image: str, delay: float = 0.0) -> None:
        if delay:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.spare_tasks.pop(image, None)
                raise
        self.spares_launching.add(image)
        spare = ContainerProcess(
            hostname="spare",
            image=image,
            model_dir=None,
            work_dir=self.root
            / "spares"
            / f"{image.replace('/', '_').replace(':', '_')}-{now():.0f}",
            environment={},
            multi_model=False,
            standby=True,
        )
        try:
            await self.launch(spare)
            self.spares[image] = spare
        except Exception:  # a spare is an optimisation: without one, cold starts launch anew
            log.exception("could not start a warm spare for %s", image)
        finally:
            self.spares_launching.discard(image)
            self.spare_tasks.pop(image, None)

    async def adopt_spare(self, container: ContainerProcess) -> bool:
        """Hand the model to a warm spare of the same image, if one is ready. A model that fails
        to load is the same failure as at launch; any other trouble falls back to a launch."""
        if container.image in self.spares_launching:  # sooner than a new launch
            await asyncio.shield(self.spare_tasks[container.image])
        spare = self.spares.pop(container.image, None)
        # The replacement waits a moment: importing an image's libraries takes a core for a
        # second or two, which the model that just took this spare's place needs to load and
        # answer its first request (make bench: the LLM's first call, 2.3 s with it at once).
        self.want_spare(container.image, delay=SPARE_REPLACEMENT_DELAY_S)
        if spare is None or spare.process is None or spare.process.returncode is not None:
            return False
        container.work_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "model_dir": str(container.model_dir),
            "environment": container.environment,
            "multi_model": container.multi_model,
            "work_dir": str(container.work_dir),
        }
        try:
            async with self.session.post(
                f"{spare.url}/_adopt", json=payload, timeout=self.startup_timeout
            ) as answer:
                body = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            await self.kill(spare)
            return False
        if answer.status != 200:
            await self.kill(spare)
            raise RuntimeError(
                f"Container {container.hostname} failed to start: {body.get('message', '')}"
            )
        container.process, container.port, container.log_file = (
            spare.process,
            spare.port,
            spare.log_path,
        )
        return True

    async def kill(self, container: ContainerProcess) -> None:
        self.ports.discard(container.port)
        if container.process is not None and container.process.returncode is None:
            container.process.kill()
            await container.process.wait()

    async def launch(self, container: ContainerProcess) -> None:
        """Start the container process and wait until /ping answers, or say why it did not."""
        container.work_dir.mkdir(parents=True, exist_ok=True)
        failure_file = container.work_dir / "failure-reason"
        failure_file.unlink(missing_ok=True)
        self.ports.discard(container.port)
        container.port = free_port(self.ports)
        environment = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        environment |= container.environment
        environment |= {
            "PYTHONPATH": str(PROJECT_ROOT),
            "SAGEMAKER_BIND_TO_PORT": str(container.port),
            "PORTAL_RUNTIME_PID": str(os.getpid()),
            "PORTAL_MODEL_MEMORY_MB": str(self.model_memory_mb),
            # A call this old has timed out for its caller: all workers on such calls is stuck.
            "PORTAL_HUNG_AFTER_SECONDS": str(self.invocation_timeout * 0.9),
            "PYTHONUNBUFFERED": "1",
        }
        if container.multi_model:
            environment["SAGEMAKER_MULTI_MODEL"] = "true"
        command = [
            sys.executable, "-m", "runtime.container",
            "--image", container.image,
            "--port", str(container.port),
            "--failure-file", str(failure_file),
        ]  # fmt: skip
        if container.standby:
            command.append("--standby")
        else:
            command += ["--model-dir", str(container.model_dir)]
        if container.multi_model:
            command.append("--multi-model")
        with container.log_path.open("ab") as log_file:
            container.process = await asyncio.create_subprocess_exec(
                *command,
                cwd=container.work_dir,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if container.process.returncode is not None:
                reason = (
                    failure_file.read_text() if failure_file.exists() else container.log_tail(5)
                )
                raise RuntimeError(f"Container {container.hostname} failed to start: {reason}")
            try:
                async with self.session.get(f"{container.url}/ping", timeout=2) as answer:
                    if answer.status == 200 or (container.standby and answer.status == 503):
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Container {container.hostname} did not pass its /ping health check "
                    f"within {self.startup_timeout:.0f} s. Its log ends: {container.log_tail(5)}"
                )
            await asyncio.sleep(0.05)

    async def watch(
        self, endpoint: Endpoint, variant: Variant, instance: Instance, container: ContainerProcess
    ) -> None:
        """Restart a container process that dies, with a capped backoff; after RESTART_LIMIT
        restarts within RESTART_WINDOW the endpoint is Failed, with the process's last words."""
        while not instance.stopping:
            process = container.process
            code = await process.wait()
            if instance.stopping or container.process is not process:
                return
            container.restarts = [t for t in container.restarts if now() - t < RESTART_WINDOW]
            container.restarts.append(now())
            endpoint.event(
                f"Instance {variant.name}-{instance.number} container {container.hostname} "
                f"exited with code {code}; restarting."
            )
            if len(container.restarts) > RESTART_LIMIT:
                endpoint.status = "Failed"
                endpoint.failure_reason = (
                    f"Container {container.hostname} of variant {variant.name} exited "
                    f"{len(container.restarts)} times in {RESTART_WINDOW / 60:.0f} minutes. "
                    f"Its log ends: {container.log_tail(5)}"
                )
                endpoint.event(endpoint.failure_reason)
                return
            await asyncio.sleep(min(0.25 * 2 ** (len(container.restarts) - 1), 10))
            try:
                instance.loaded.clear()  # a new process has no multi-model targets loaded
                await self.launch(container)
                endpoint.event(f"Container {container.hostname} restarted.")
            except Exception as error:  # noqa: BLE001 (a failed restart counts as another exit)
                endpoint.event(f"Restart of {container.hostname} failed: {error}")

    async def stop_instance(self, instance: Instance) -> None:
        instance.stopping = True
        for watcher in instance.watchers:
            watcher.cancel()
        for container in instance.containers:
            self.ports.discard(container.port)
            if container.pool is not None:
                container.pool.close()
            process = container.process
            if process is None or process.returncode is not None:
                continue
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()

    # -- invocations --------------------------------------------------------------------

    def pick_variant(self, endpoint: Endpoint, target_variant: str) -> Variant:
        if target_variant:
            variant = endpoint.variants.get(target_variant)
            if variant is None:
                raise ApiError(
                    "ValidationError",
                    f"Variant {target_variant} of endpoint {endpoint.name} does not exist.",
                )
            return variant
        candidates = [
            v
            for v in endpoint.variants.values()
            if v.weight > 0 and (v.live_instances() or v.serverless)
        ]
        if not candidates:
            raise ApiError(
                "ValidationError", f"Endpoint {endpoint.name} has no variant taking traffic."
            )
        return self.random.choices(candidates, weights=[v.weight for v in candidates])[0]

    def serving_endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ApiError("ValidationError", f"Endpoint {name} of account {ACCOUNT} not found.")
        if endpoint.status not in {"InService", "Updating"}:
            raise ApiError(
                "ValidationError",
                f"Endpoint {name} is {endpoint.status}, not InService; it cannot be invoked.",
            )
        return endpoint

    async def invoke(
        self,
        name: str,
        body: bytes,
        headers: dict[str, str],
    ) -> Invocation:
        """InvokeEndpoint: route to a variant, an instance and a container; relay its answer."""
        started = time.perf_counter()
        endpoint = self.serving_endpoint(name)
        if len(body) > MAX_BODY:
            raise ApiError(
                "ValidationError",
                f"The request body is {len(body)} bytes; the limit is {MAX_BODY} bytes (6 MB).",
            )
        if endpoint.async_queue is not None:
            raise ApiError(
                "ValidationError",
                f"Endpoint {name} is an asynchronous endpoint; call InvokeEndpointAsync.",
            )
        variant = self.pick_variant(endpoint, headers.get("target_variant", ""))
        if variant.serverless:
            if len(body) > SERVERLESS_MAX_BODY:
                raise ApiError(
                    "ValidationError",
                    f"The request body is {len(body)} bytes; serverless endpoints take at most "
                    f"{SERVERLESS_MAX_BODY} bytes (4 MB).",
                )
            limit = variant.serverless["MaxConcurrency"]
            if variant.active >= limit:
                self.metrics.add(endpoint.name, variant.name, "Invocation4XXErrors", 1)
                raise ApiError(
                    "ThrottlingException",
                    f"Rate exceeded: endpoint {name} already serves {limit} concurrent requests, "
                    "its MaxConcurrency. Retry with backoff, or raise MaxConcurrency.",
                    status=429,
                )
        variant.active += 1
        variant.last_used = now()
        if variant.serverless:
            # As CloudWatch names it: requests in flight over MaxConcurrency (1.0: all used).
            self.metrics.add(
                endpoint.name,
                variant.name,
                "ServerlessConcurrentExecutionsUtilization",
                variant.active / variant.serverless["MaxConcurrency"],
            )
        try:
            return await self.invoke_variant(endpoint, variant, body, headers, started)
        finally:
            variant.active -= 1
            variant.last_used = now()

    async def ready_instance(self, endpoint: Endpoint, variant: Variant) -> Instance:
        """The least busy live instance; for a serverless variant at zero, a cold start whose
        duration is recorded as ModelSetupTime. Concurrent first requests share one start."""
        if not variant.live_instances():
            if not variant.serverless:
                raise ApiError(
                    "ModelNotReadyException",
                    f"Variant {variant.name} has no running instance; retry shortly.",
                    status=429,
                )
            async with variant.cold_start:
                if not variant.live_instances():
                    started = time.perf_counter()
                    instance = await self.start_instance(endpoint, variant, variant.next_number())
                    variant.instances = [*variant.live_instances(), instance]
                    setup = time.perf_counter() - started
                    self.metrics.add(endpoint.name, variant.name, "ModelSetupTime", setup * 1e6)
                    self.metrics.gauge(endpoint.name, variant.name, "CurrentInstanceCount", 1)
                    endpoint.event(f"Cold start of {variant.name} took {setup:.2f} s.")
        return min(variant.live_instances(), key=lambda candidate: candidate.in_flight)

    async def invoke_variant(
        self,
        endpoint: Endpoint,
        variant: Variant,
        body: bytes,
        headers: dict[str, str],
        started: float,
    ) -> Invocation:
        name = endpoint.name
        instance = await self.ready_instance(endpoint, variant)
        instances = variant.live_instances()
        model = self.models[variant.model_name]
        mode = model_mode(model)
        instance.in_flight += 1
        model_seconds = 0.0
        status = 200
        try:
            if mode == "multi-model":
                container, path = await self.target_model(endpoint, variant, instance, headers)
                answer, model_seconds = await self.call(container, path, body, headers)
            elif mode == "direct":
                hostname = headers.get("target_container", "")
                matches = [c for c in instance.containers if c.hostname == hostname]
                if not matches:
                    known = ", ".join(c.hostname for c in instance.containers)
                    raise ApiError(
                        "ValidationError",
                        f"TargetContainerHostname {hostname!r} is not a container of endpoint "
                        f"{name}; send one of: {known}.",
                    )
                answer, model_seconds = await self.call(matches[0], "/invocations", body, headers)
            else:
                if headers.get("target_container"):
                    raise ApiError(
                        "ValidationError",
                        "TargetContainerHostname applies only to multi-container endpoints in "
                        "Direct mode.",
                    )
                answer = None
                request_body, request_headers = body, headers
                for container in instance.containers:  # Serial: each output feeds the next
                    answer, seconds = await self.call(
                        container, "/invocations", request_body, request_headers
                    )
                    model_seconds += seconds
                    request_body = answer.body
                    request_headers = headers | {"content_type": answer.content_type}
            result = Invocation(
                answer.body,
                answer.content_type,
                variant.name,
                answer.custom_attributes,
                model_seconds,
            )
        except ApiError as error:
            status = error.status if error.code != "ModelError" else 500
            raise
        finally:
            instance.in_flight -= 1
            total = time.perf_counter() - started
            self.record(endpoint, variant, status, total, model_seconds, len(instances))
        if variant.capture is not None:
            variant.capture.offer(
                request_body=body,
                request_content_type=headers.get("content_type", ""),
                response_body=result.body,
                response_content_type=result.content_type,
                inference_time=datetime.now(UTC),
                inference_id=headers.get("inference_id") or None,
                custom_attributes=headers.get("custom_attributes") or None,
            )
        return result

    def record(
        self,
        endpoint: Endpoint,
        variant: Variant,
        status: int,
        total: float,
        model_seconds: float,
        instance_count: int,
    ) -> None:
        metrics, name, variant_name = self.metrics, endpoint.name, variant.name
        variant.recent.append(now())
        metrics.add(name, variant_name, "Invocations", 1)
        metrics.add(name, variant_name, "InvocationsPerInstance", 1 / max(instance_count, 1))
        metrics.add(name, variant_name, "Invocation4XXErrors", 1 if 400 <= status < 500 else 0)
        metrics.add(name, variant_name, "Invocation5XXErrors", 1 if status >= 500 else 0)
        if model_seconds:
            metrics.add(name, variant_name, "ModelLatency", model_seconds * 1e6)
            metrics.add(name, variant_name, "OverheadLatency", (total - model_seconds) * 1e6)

    async def target_model(
        self, endpoint: Endpoint, variant: Variant, instance: Instance, headers: dict[str, str]
    ) -> tuple[ContainerProcess, str]:
        """Multi-model: make sure TargetModel is loaded on this instance (least recently used
        models are unloaded beyond the memory budget) and return where to invoke it."""
        target = headers.get("target_model", "")
        if not target:
            raise ApiError("ValidationError", "A multi-model endpoint needs a TargetModel.")
        container = instance.containers[0]
        prefix = containers_of(self.models[variant.model_name])[0]["ModelDataUrl"]
        uri = prefix.rstrip("/") + "/" + target
        try:
            archive = self.storage.path_for(uri)
        except StorageError as error:
            raise ApiError("ValidationError", f"TargetModel {target!r}: {error}") from error
        if not archive.is_file():
            raise ApiError(
                "ValidationError",
                f"TargetModel {target} does not exist under {prefix}. "
                "Upload it there, or pick one of the models listed under the prefix.",
            )
        key = hashlib.sha256(target.encode()).hexdigest()[:16]
        name = f"m-{key}"
        if target in instance.loaded:
            instance.loaded.move_to_end(target)
            self.metrics.add(endpoint.name, variant.name, "ModelCacheHit", 1)
            return container, f"/models/{name}/invoke"
        self.metrics.add(endpoint.name, variant.name, "ModelCacheHit", 0)
        started = time.perf_counter()
        folder = self.root / "mme" / endpoint.name / variant.name / key
        if not folder.exists():
            try:
                await asyncio.to_thread(safe_extract, archive, folder)
            except StorageError as error:
                raise ApiError("ValidationError", f"TargetModel {target}: {error}") from error
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        while instance.loaded and sum(instance.loaded.values()) + size > self.multi_model_budget:
            evicted, _ = instance.loaded.popitem(last=False)
            evicted_name = "m-" + hashlib.sha256(evicted.encode()).hexdigest()[:16]
            async with self.session.delete(f"{container.url}/models/{evicted_name}"):
                pass
            endpoint.event(f"Unloaded {evicted} from {variant.name}-{instance.number} (LRU).")
        payload = {"model_name": name, "url": str(folder)}
        async with self.session.post(f"{container.url}/models", json=payload) as answer:
            if answer.status not in {200, 409}:
                message = (await answer.json()).get("message", "")
                raise ApiError(
                    "ModelError",
                    f"Received server error ({answer.status}) from model with message "
                    f'"{message}" loading {target}.',
                    status=424,
                    OriginalStatusCode=answer.status,
                    OriginalMessage=message,
                )
        instance.loaded[target] = size
        self.metrics.add(
            endpoint.name, variant.name, "ModelLoadingTime", (time.perf_counter() - started) * 1e6
        )
        self.metrics.gauge(endpoint.name, variant.name, "LoadedModelCount", len(instance.loaded))
        return container, f"/models/{name}/invoke"

    async def replace_if_stuck(self, container: ContainerProcess) -> None:
        """After a timeout: a container that no longer answers its ping, or says every worker
        is stuck, is killed, and its watcher restarts it (counted like any other exit), so one
        hung model does not make every later request time out too."""
        try:
            async with self.session.get(f"{container.url}/ping", timeout=2) as answer:
                healthy = answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            healthy = False
        process = container.process
        if not healthy and process is not None and process.returncode is None:
            log.warning("container %s is stuck: killing it to restart it", container.hostname)
            process.kill()

    async def call(
        self, container: ContainerProcess, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[Invocation, float]:
        """One request to one container; its non-2xx answers become SageMaker's ModelError."""
        forwarded = {"Content-Type": headers.get("content_type") or "application/octet-stream"}
        if headers.get("accept"):
            forwarded["Accept"] = headers["accept"]
        if headers.get("custom_attributes"):
            forwarded["X-Amzn-SageMaker-Custom-Attributes"] = headers["custom_attributes"]
        if headers.get("target_model"):
            forwarded["X-Amzn-SageMaker-Target-Model"] = headers["target_model"]
        started = time.perf_counter()
        if container.pool is None or container.pool.port != container.port:
            if container.pool is not None:
                container.pool.close()  # to the process that was restarted
            container.pool = wire.Pool(container.port)  # a restarted container has a new port
        try:
            async with asyncio.timeout(self.invocation_timeout):
                answer = await container.pool.post(path, body, forwarded)
        except TimeoutError as error:
            await self.replace_if_stuck(container)
            raise ApiError(
                "ModelError",
                f"Your invocation timed out while waiting for a response from container "
                f"{container.hostname}: no answer within {self.invocation_timeout:.0f} s.",
                status=424,
                OriginalStatusCode=504,
                OriginalMessage="timed out",
            ) from error
        except OSError as error:  # refused, reset, closed: the container is gone or going
            raise ApiError(
                "ModelError",
                f"Container {container.hostname} stopped while answering ({error}). The runtime "
                "restarts it; retry the request.",
                status=424,
                OriginalStatusCode=502,
                OriginalMessage=str(error),
            ) from error
        seconds = time.perf_counter() - started
        if answer.status >= 300:
            message = answer.body.decode(errors="replace")[:1024]
            kind = "client" if answer.status < 500 else "server"
            raise ApiError(
                "ModelError",
                f"Received {kind} error ({answer.status}) from {container.hostname} with "
                f'message "{message}". See the endpoint\'s logs in the portal.',
                status=424,
                OriginalStatusCode=answer.status,
                OriginalMessage=message,
            )
        return (
            Invocation(
                answer.body,
                answer.headers.get("content-type", "application/octet-stream"),
                "",
                answer.headers.get("x-amzn-sagemaker-custom-attributes", ""),
            ),
            seconds,
        )

    async def invoke_stream(
        self, name: str, body: bytes, headers: dict[str, str]
    ) -> tuple[Variant, ContainerProcess, aiohttp.ClientResponse]:
        """InvokeEndpointWithResponseStream: open a streamed answer from one container. The
        caller reads chunks from the returned response and must release it."""
        endpoint = self.serving_endpoint(name)
        if len(body) > MAX_BODY:
            raise ApiError("ValidationError", f"The request body is over {MAX_BODY} bytes.")
        variant = self.pick_variant(endpoint, headers.get("target_variant", ""))
        model = self.models[variant.model_name]
        if model_mode(model) not in {"single", "direct"}:
            raise ApiError(
                "ValidationError",
                "Response streaming needs a single-container or Direct multi-container endpoint.",
            )
        instance = min(variant.live_instances(), key=lambda candidate: candidate.in_flight)
        container = instance.containers[0]
        if model_mode(model) == "direct":
            matches = [
                c for c in instance.containers if c.hostname == headers.get("target_container")
            ]
            if not matches:
                raise ApiError("ValidationError", "TargetContainerHostname names no container.")
            container = matches[0]
        forwarded = {
            "Content-Type": headers.get("content_type") or "application/json",
            "X-Portal-Stream": "1",
        }
        if headers.get("accept"):
            forwarded["Accept"] = headers["accept"]
        answer = await self.session.post(
            f"{container.url}/invocations",
            data=body,
            headers=forwarded,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=self.invocation_timeout),
        )
        if answer.status >= 300:
            message = (await answer.read()).decode(errors="replace")[:1024]
            answer.release()
            kind = "client" if answer.status < 500 else "server"
            raise ApiError(
                "ModelError",
                f"Received {kind} error ({answer.status}) from {container.hostname} with message "
                f'"{message}".',
                status=424,
                OriginalStatusCode=answer.status,
                OriginalMessage=message,
            )
        self.metrics.add(endpoint.name, variant.name, "Invocations", 1)
        return variant, container, answer

    # -- autoscaling (Application Auto Scaling's API and a target-tracking controller) -------

    def scaling_variant(self, resource_id: str) -> tuple[str, str]:
        match = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)", resource_id or "")
        if not match:
            raise validation(
                f"ResourceId {resource_id!r} must look like endpoint/<EndpointName>/variant/"
                "<VariantName>."
            )
        return match.group(1), match.group(2)

    def check_dimension(self, request: dict) -> str:
        dimension = request.get("ScalableDimension")
        if request.get("ServiceNamespace") != "sagemaker":
            raise validation("ServiceNamespace must be sagemaker.")
        if dimension != "sagemaker:variant:DesiredInstanceCount":
            raise validation(
                "The local runtime scales sagemaker:variant:DesiredInstanceCount only."
            )
        return dimension

    def register_scalable_target(self, request: dict) -> dict:
        dimension = self.check_dimension(request)
        resource = request.get("ResourceId", "")
        endpoint_name, variant_name = self.scaling_variant(resource)
        key = f"{resource}|{dimension}"
        existing = self.scalable_targets.get(key, {})
        minimum = request.get("MinCapacity", existing.get("MinCapacity"))
        maximum = request.get("MaxCapacity", existing.get("MaxCapacity"))
        if minimum is None or maximum is None:
            raise validation("MinCapacity and MaxCapacity are required on first registration.")
        if not 0 <= minimum <= maximum:
            raise validation("MinCapacity must be at least 0 and at most MaxCapacity.")
        if maximum > self.max_instances:
            raise validation(
                f"MaxCapacity {maximum} is over the local runtime's {self.max_instances} "
                "instances per variant."
            )
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None or variant_name not in endpoint.variants:
            raise validation(f"No variant {variant_name} on endpoint {endpoint_name}.")
        self.scalable_targets[key] = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dimension,
            "MinCapacity": minimum,
            "MaxCapacity": maximum,
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/local-autoscaling",
            "CreationTime": existing.get("CreationTime", now()),
        }
        self.save_state()
        return {
            "ScalableTargetARN": f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:"
            f"scalable-target/{hashlib.sha256(key.encode()).hexdigest()[:20]}"
        }

    def deregister_scalable_target(self, request: dict) -> dict:
        key = f"{request.get('ResourceId')}|{self.check_dimension(request)}"
        if self.scalable_targets.pop(key, None) is None:
            raise ApiError("ObjectNotFoundException", "No scalable target found.")
        for name in [name for name in self.policies if name.endswith(f"|{key}")]:
            del self.policies[name]
        self.save_state()
        return {}

    def describe_scalable_targets(self, request: dict) -> dict:
        wanted = set(request.get("ResourceIds") or [])
        targets = [
            t for t in self.scalable_targets.values() if not wanted or t["ResourceId"] in wanted
        ]
        return {"ScalableTargets": targets}

    def put_scaling_policy(self, request: dict) -> dict:
        dimension = self.check_dimension(request)
        resource = request.get("ResourceId", "")
        target_key = f"{resource}|{dimension}"
        if target_key not in self.scalable_targets:
            raise ApiError(
                "ObjectNotFoundException",
                f"No scalable target registered for {resource}; call RegisterScalableTarget first.",
            )
        if request.get("PolicyType", "StepScaling") != "TargetTrackingScaling":
            raise validation("The local runtime runs TargetTrackingScaling policies only.")
        configuration = request.get("TargetTrackingScalingPolicyConfiguration") or {}
        target_value = configuration.get("TargetValue")
        if not isinstance(target_value, int | float) or target_value <= 0:
            raise validation("TargetTrackingScalingPolicyConfiguration.TargetValue must be > 0.")
        metric = self.policy_metric(configuration)
        if metric not in {"InvocationsPerInstance", "ApproximateBacklogSizePerInstance"}:
            raise validation(
                "The local runtime tracks SageMakerVariantInvocationsPerInstance or the custom "
                "metric ApproximateBacklogSizePerInstance."
            )
        name = request.get("PolicyName", "")
        if not 1 <= len(name) <= 256:
            raise validation("PolicyName must be 1 to 256 characters.")
        policy_arn = (
            f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:local:resource/sagemaker/"
            f"{resource}:policyName/{name}"
        )
        self.policies[f"{name}|{target_key}"] = {
            **{
                key: request[key]
                for key in (
                    "PolicyName",
                    "ServiceNamespace",
                    "ResourceId",
                    "ScalableDimension",
                    "PolicyType",
                )
            },
            "TargetTrackingScalingPolicyConfiguration": configuration,
            "PolicyARN": policy_arn,
            "Alarms": [],
            "CreationTime": now(),
        }
        self.save_state()
        return {"PolicyARN": policy_arn, "Alarms": []}

    @staticmethod
    def policy_metric(configuration: dict) -> str:
        predefined = configuration.get("PredefinedMetricSpecification", {})
        if predefined.get("PredefinedMetricType") == "SageMakerVariantInvocationsPerInstance":
            return "InvocationsPerInstance"
        return configuration.get("CustomizedMetricSpecification", {}).get("MetricName", "")

    def delete_scaling_policy(self, request: dict) -> dict:
        dimension = self.check_dimension(request)
        key = f"{request.get('PolicyName')}|{request.get('ResourceId')}|{dimension}"
        if self.policies.pop(key, None) is None:
            raise ApiError("ObjectNotFoundException", "No scaling policy found.")
        self.save_state()
        return {}

    def describe_scaling_policies(self, request: dict) -> dict:
        resource = request.get("ResourceId")
        policies = [
            p for p in self.policies.values() if not resource or p["ResourceId"] == resource
        ]
        return {"ScalingPolicies": policies}

    def describe_scaling_activities(self, request: dict) -> dict:
        resource = request.get("ResourceId")
        activities = [a for a in self.activities if not resource or a["ResourceId"] == resource]
        maximum = request.get("MaxResults", 50)
        if not isinstance(maximum, int) or not 1 <= maximum <= 50:
            raise validation("MaxResults must be 1 to 50.")
        offset = int(request.get("NextToken") or 0)
        newest_first = list(reversed(activities))
        answer: dict = {"ScalingActivities": newest_first[offset : offset + maximum]}
        if offset + maximum < len(newest_first):
            answer["NextToken"] = str(offset + maximum)
        return answer

    def invocations_per_instance(self, variant: Variant) -> float:
        """Invocations per instance per minute over the last controller period."""
        window = max(self.autoscaling_period, 1.0)
        horizon = now() - window
        count = sum(1 for moment in variant.recent if moment >= horizon)
        return count * (60.0 / window) / max(len(variant.live_instances()), 1)

    async def autoscale(self) -> None:
        """Target tracking: for each registered variant, the capacity that brings each policy's
        metric to its target, within min and max, after the cooldowns. Every change is a
        scaling activity, as DescribeScalingActivities reports."""
        for key, target in list(self.scalable_targets.items()):
            endpoint_name, variant_name = self.scaling_variant(target["ResourceId"])
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None or endpoint.status != "InService":
                continue
            variant = endpoint.variants.get(variant_name)
            if variant is None:
                continue
            current = variant.desired_count
            desired, causes = current, []
            scale_out_cooldown = scale_in_cooldown = 300  # SageMaker's defaults
            for policy in [p for name, p in self.policies.items() if name.endswith(f"|{key}")]:
                configuration = policy["TargetTrackingScalingPolicyConfiguration"]
                metric = self.policy_metric(configuration)
                if metric == "InvocationsPerInstance":
                    value = self.invocations_per_instance(variant)
                else:
                    value = self.backlog_per_instance(endpoint, variant)
                goal = configuration["TargetValue"]
                wanted = math.ceil(max(current, 1) * value / goal) if value > 0 else 0
                if value > 0 and current == 0:
                    wanted = max(wanted, 1)
                scale_in_allowed = not configuration.get("DisableScaleIn", False)
                if wanted < current and not scale_in_allowed:
                    wanted = current
                if wanted != current:
                    causes.append(
                        f"{metric} was {value:.1f} against the target {goal:g} of policy "
                        f"{policy['PolicyName']}"
                    )
                desired = max(desired, wanted) if wanted > current else min(desired, wanted)
                scale_out_cooldown = configuration.get("ScaleOutCooldown", 300)
                scale_in_cooldown = configuration.get("ScaleInCooldown", 300)
            desired = min(max(desired, target["MinCapacity"]), target["MaxCapacity"])
            if desired > current and now() - variant.last_scale_out < scale_out_cooldown:
                continue
            if desired < current and now() - variant.last_scale_in < scale_in_cooldown:
                continue
            if desired != current:
                cause = (
                    "; ".join(causes)
                    or f"capacity kept within {target['MinCapacity']}-{target['MaxCapacity']}"
                )
                await self.scale(endpoint, variant, key, desired, cause)

    def backlog_per_instance(self, endpoint: Endpoint, variant: Variant) -> float:
        queue = endpoint.async_queue
        if queue is None:
            return 0.0
        # SageMaker's ApproximateBacklogSize counts requests queued and in progress.
        return (queue.backlog() + queue.in_flight()) / max(len(variant.live_instances()), 1)

    async def scale(
        self, endpoint: Endpoint, variant: Variant, key: str, desired: int, cause: str
    ) -> None:
        current = len(variant.live_instances())
        resource, dimension = key.split("|")
        activity = {
            "ActivityId": hashlib.sha256(f"{key}{now()}".encode()).hexdigest()[:32],
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dimension,
            "Description": f"Setting desired instance count to {desired}.",
            "Cause": cause,
            "StartTime": now(),
            "StatusCode": "InProgress",
            "Details": json.dumps({"From": current, "To": desired}),
        }
        self.activities.append(activity)
        del self.activities[:-1000]
        try:
            if desired > current:
                variant.last_scale_out = now()
                started = [
                    await self.start_instance(endpoint, variant, variant.next_number() + offset)
                    for offset in range(desired - current)
                ]
                variant.instances = [*variant.live_instances(), *started]
            else:
                variant.last_scale_in = now()
                live = sorted(variant.live_instances(), key=lambda instance: instance.number)
                keep, remove = live[:desired], live[desired:]
                variant.instances = keep
                for instance in remove:
                    await self.stop_instance(instance)
            variant.desired_count = desired
            activity["StatusCode"] = "Successful"
            activity["StatusMessage"] = f"Successfully set desired instance count to {desired}."
        except Exception as error:  # noqa: BLE001 (a failed scaling is an activity, not a crash)
            activity["StatusCode"] = "Failed"
            activity["StatusMessage"] = str(error)
        activity["EndTime"] = now()
        self.metrics.gauge(
            endpoint.name, variant.name, "CurrentInstanceCount", len(variant.live_instances())
        )
        endpoint.event(
            f"Scaling {variant.name} from {current} to {desired}: "
            f"{activity['StatusCode']}. Cause: {cause}."
        )
        if endpoint.async_queue is not None:
            endpoint.async_queue.capacity_changed()

    def logs(self, name: str, lines: int = 200) -> list[dict]:
        """Each container process's log tail, for the endpoint's page in the portal."""
        endpoint = self.endpoint(name)
        return [
            {
                "variant": variant.name,
                "instance": instance.number,
                "container": container.hostname,
                "log": container.log_tail(lines),
            }
            for variant in endpoint.variants.values()
            for instance in variant.instances
            for container in instance.containers
        ]


def page(items: list[dict], request: dict, key: str) -> dict:
    """One page of a List* answer: MaxResults (1-100, default 10) and an opaque NextToken."""
    maximum = request.get("MaxResults", 10)
    if not isinstance(maximum, int) or not 1 <= maximum <= 100:
        raise validation("MaxResults must be 1 to 100.")
    try:
        offset = int(request.get("NextToken") or 0)
    except ValueError as error:
        raise validation("NextToken is not one this runtime gave out.") from error
    answer: dict = {key: items[offset : offset + maximum]}
    if offset + maximum < len(items):
        answer["NextToken"] = str(offset + maximum)
    return answer
