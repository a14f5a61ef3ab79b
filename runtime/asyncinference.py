"""Async inference: requests queued durably on disk, run at most N at a time per instance, outputs
written to S3OutputPath, failures to S3FailurePath.

InvokeEndpointAsync answers 202 only once the request is safe in the queue folder, so an accepted
request survives a runtime restart. Each request is one JSON file there (and its inline body one
file beside it), written through a temp file, fsync and rename; it leaves the folder only after
its output or failure has been written. Delivery is therefore at least once: a request that was
running when the runtime stopped runs again after the restart, up to MAX_ATTEMPTS starts.

One AsyncQueue per endpoint and per queue folder. Everything runs on the runtime's event loop;
storage and queue-folder work of the worker goes to threads so a 1 GB input never blocks it.
"""

import asyncio
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("runtime")

# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointAsync.html
MAX_INLINE_BODY = 128_000
TTL_RANGE = (60, 21_600)
DEFAULT_TTL = 21_600  # 6 hours
TIMEOUT_RANGE = (1, 3_600)
DEFAULT_INVOCATION_TIMEOUT = 900
CONCURRENCY_RANGE = (1, 1_000)
# SageMaker "chooses an optimal value" when ClientConfig.MaxConcurrentInvocationsPerInstance is
# unset and does not say which. 4 is the value in the Developer Guide's own async example
# (async-inference-create-endpoint.md): a small number a local model process copes with.
DEFAULT_MAX_CONCURRENT = 4
MAX_INPUT_LOCATION = 1_024
MAX_S3_PATH = 512
MAX_INFERENCE_ID = 64
MAX_FILENAME = 32
FILENAME_PATTERN = re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9\-_.]*")
# A request the runtime stopped in the middle of this many times is failed rather than started
# again: a request that itself brings the runtime down must not do so forever.
MAX_ATTEMPTS = 3
RECENT_OUTCOMES = 100
TEMP_PREFIX = ".tmp-"


class Storage(Protocol):
    """What the queue needs of the runtime's storage (runtime.storage.LocalStorage)."""

    def put(self, uri: str, data: bytes) -> None: ...

    def get(self, uri: str) -> bytes: ...

    def exists(self, uri: str) -> bool: ...


def check_s3_path(value: object, member: str) -> str:
    """An S3OutputPath or S3FailurePath: an s3:// URI of at most 512 characters."""
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise ValueError(
            f"{member} {value!r} is not an s3:// URI. The local runtime keeps results in its own "
            "storage; use s3://bucket/prefix."
        )
    if len(value) > MAX_S3_PATH:
        raise ValueError(f"{member} is {len(value)} characters long; use at most {MAX_S3_PATH}.")
    return value


@dataclass(frozen=True)
class AsyncConfig:
    """An endpoint config's AsyncInferenceConfig, in the words the queue needs."""

    output_path: str
    failure_path: str | None = None
    max_concurrent_per_instance: int = DEFAULT_MAX_CONCURRENT

    def __post_init__(self) -> None:
        check_s3_path(self.output_path, "S3OutputPath")
        if self.failure_path is not None:
            check_s3_path(self.failure_path, "S3FailurePath")
        low, high = CONCURRENCY_RANGE
        concurrency = self.max_concurrent_per_instance
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise ValueError(
                f"MaxConcurrentInvocationsPerInstance must be a whole number; got {concurrency!r}."
            )
        if not low <= concurrency <= high:
            raise ValueError(
                f"MaxConcurrentInvocationsPerInstance must be from {low} to {high}; "
                f"got {concurrency}."
            )

    @classmethod
    def from_api(cls, data: dict) -> "AsyncConfig":
        """Read SageMaker's AsyncInferenceConfig, as sent to CreateEndpointConfig."""
        output = data.get("OutputConfig") or {}
        if not output.get("S3OutputPath"):
            raise ValueError(
                "AsyncInferenceConfig needs OutputConfig.S3OutputPath: the s3://bucket/prefix "
                "where the endpoint writes its results."
            )
        client = data.get("ClientConfig") or {}
        return cls(
            output_path=output["S3OutputPath"],
            failure_path=output.get("S3FailurePath") or None,
            max_concurrent_per_instance=client.get(
                "MaxConcurrentInvocationsPerInstance", DEFAULT_MAX_CONCURRENT
            ),
        )


@dataclass
class AsyncRequest:
    """One accepted InvokeEndpointAsync request, as kept in the queue folder."""

    inference_id: str
    endpoint: str
    input_location: str | None  # the s3:// input, or None for an inline body
    body_file: str | None  # the inline body's file name in the queue folder
    content_type: str
    accept: str
    custom_attributes: str
    received: float  # epoch seconds
    ttl_seconds: int
    invocation_timeout: int
    output_location: str
    failure_location: str | None
    attempts: int = 0  # how many times a worker has started it
    queue_name: str = ""  # its file is queue_name + ".json"; names sort oldest first

    def expires_at(self) -> float:
        return self.received + self.ttl_seconds


@dataclass(frozen=True)
class AsyncOutcome:
    """How one request ended: what an SNS success or error notification would say."""

    inference_id: str
    status: str  # "Completed", "Failed" or "Expired"
    location: str | None  # where the output or failure message was written; None if nowhere
    message: str = ""
    content_type: str = ""  # of the output, which the local storage does not keep


def join_s3(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temp file, fsync and rename, then fsync the folder so the rename itself
    survives a power cut: a reader finds the old file or the whole new one."""
    handle, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def check_range(value: int | None, default: int, limits: tuple[int, int], member: str) -> int:
    if value is None:
        return default
    low, high = limits
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{member} must be a whole number from {low} to {high}; got {value!r}.")
    return value


def check_inference_id(value: str) -> str:
    if len(value) > MAX_INFERENCE_ID or value[0].isspace() or not value.isprintable():
        raise ValueError(
            f"InferenceId must be 1 to {MAX_INFERENCE_ID} printable characters, not starting "
            f"with a space; got {value!r}."
        )
    return value


def check_extension(value: str | None) -> str | None:
    """S3OutputPathExtension: a path added after S3OutputPath, never a URI of its own."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_S3_PATH or value.lower().startswith(("s3:", "https:")):
        raise ValueError(
            f"S3OutputPathExtension must be 1 to {MAX_S3_PATH} characters of path to add after "
            f"S3OutputPath, such as results/2024, not a URI; got {value!r}."
        )
    return value


def check_filename(value: str) -> None:
    if len(value) > MAX_FILENAME or not FILENAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"Filename must be 1 to {MAX_FILENAME} letters, digits, hyphens, underscores and at "
            f"most one dot, starting with a letter or digit; got {value!r}."
        )


def check_input_location(value: str, storage: Storage) -> None:
    if not value.startswith("s3://") or len(value) > MAX_INPUT_LOCATION:
        raise ValueError(
            f"InputLocation {value!r} is not an s3:// URI of at most {MAX_INPUT_LOCATION} "
            "characters. Upload the input to the runtime's storage and send its s3://bucket/key."
        )
    if not storage.exists(value):
        raise ValueError(f"InputLocation {value} does not exist; upload the input there first.")


class AsyncQueue:
    """One async endpoint's queue: accepts requests, runs them as capacity allows, writes results.

    Call start() on the runtime's loop and `await queue.stop()` to end the worker; call submit()
    and capacity_changed() from that loop too. The backlog runs only while
    instance_count() is above zero, so an endpoint scaled to zero keeps its requests until an
    instance is back and capacity_changed() says so.
    """

    def __init__(
        self,
        endpoint: str,
        config: AsyncConfig,
        storage: Storage,
        queue_dir: Path,
        invoke: Callable[[bytes, dict[str, str]], Awaitable[tuple[bytes, str]]],
        instance_count: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.storage = storage
        self.queue_dir = Path(queue_dir)
        self.invoke = invoke
        self.instance_count = instance_count
        self.clock = clock
        # InvocationsProcesssed, InvocationFailures and ExpiredRequests, counted since start.
        self.processed = 0
        self.failed = 0
        self.expired = 0
        self.recent: deque[AsyncOutcome] = deque(maxlen=RECENT_OUTCOMES)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self._pending: deque[AsyncRequest] = deque(self._load())
        self._clear_leftovers(list(self._pending))
        self._started: dict[str, AsyncRequest] = {}  # queue_name -> request, on the model now
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None  # the one running run()

    # -- accepting ------------------------------------------------------------------------

    def submit(
        self,
        *,
        body: bytes | None,
        input_location: str | None,
        content_type: str,
        accept: str,
        custom_attributes: str,
        inference_id: str | None,
        ttl_seconds: int | None,
        invocation_timeout: int | None,
        output_path_extension: str | None = None,
        filename: str | None = None,
    ) -> AsyncRequest:
        """Check an InvokeEndpointAsync request and queue it; once this returns, the request is
        on disk and the caller may answer 202. Raises ValueError saying what to fix."""
        if body is not None and input_location is not None:
            raise ValueError("Send either an inline Body or an InputLocation, not both.")
        if body is None and not input_location:
            raise ValueError(
                f"Send the input as an inline Body (at most {MAX_INLINE_BODY:,} bytes) or upload "
                "it to S3 and send its InputLocation."
            )
        if body is not None and len(body) > MAX_INLINE_BODY:
            raise ValueError(
                f"The inline Body is {len(body):,} bytes; the limit is {MAX_INLINE_BODY:,}. "
                "Upload the input to S3 and send its InputLocation instead."
            )
        ttl = check_range(ttl_seconds, DEFAULT_TTL, TTL_RANGE, "RequestTTLSeconds")
        timeout = check_range(
            invocation_timeout,
            DEFAULT_INVOCATION_TIMEOUT,
            TIMEOUT_RANGE,
            "InvocationTimeoutSeconds",
        )
        inference_id = check_inference_id(inference_id) if inference_id else str(uuid.uuid4())
        extension = check_extension(output_path_extension)
        if filename is not None:
            check_filename(filename)
        if input_location is not None:
            check_input_location(input_location, self.storage)

        folders = [extension] if extension else []
        output_location = join_s3(
            self.config.output_path, *folders, filename or f"{inference_id}.out"
        )
        failure_location = None
        if self.config.failure_path:
            failure_location = join_s3(self.config.failure_path, f"{inference_id}-error.out")
        # exists() vets a URI as put() will, so a key the storage refuses is refused now, not
        # after the model has run.
        for location in (output_location, failure_location):
            if location:
                self.storage.exists(location)

        queue_name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        request = AsyncRequest(
            inference_id=inference_id,
            endpoint=self.endpoint,
            input_location=input_location,
            body_file=f"{queue_name}.body" if body is not None else None,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            received=self.clock(),
            ttl_seconds=ttl,
            invocation_timeout=timeout,
            output_location=output_location,
            failure_location=failure_location,
            queue_name=queue_name,
        )
        if body is not None:  # the body first: the JSON file is what makes the request real
            write_atomically(self.queue_dir / request.body_file, body)
        self._save(request)
        self._pending.append(request)
        self._wake.set()
        return request

    # -- what the metrics read ------------------------------------------------------------

    def backlog(self) -> int:
        """Requests queued and not yet started. SageMaker's ApproximateBacklogSize also counts
        the ones being processed: backlog() + in_flight()."""
        return len(self._pending)

    def in_flight(self) -> int:
        """Requests started and not yet finished."""
        return len(self._started)

    def oldest_age_seconds(self) -> float:
        """ApproximateAgeOfOldestRequest: seconds since the oldest unfinished request came in."""
        waiting = [*self._pending, *self._started.values()]
        if not waiting:
            return 0.0
        return max(0.0, self.clock() - min(request.received for request in waiting))

    def capacity(self) -> int:
        return self.config.max_concurrent_per_instance * max(self.instance_count(), 0)

    def capacity_changed(self) -> None:
        """Tell the worker the instance count changed (or the clock moved on), so it looks again."""
        self._wake.set()

    # -- the worker -----------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        """Run the worker as a task on the running loop; stop() ends it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"async queue {self.endpoint}")
        return self._task

    async def run(self) -> None:
        """Start queued requests, oldest first, as long as capacity allows, until stop().

        Prefer start(): stop() cannot see a task made with create_task(queue.run()) that has not
        begun yet.
        """
        if self._task is None:
            self._task = asyncio.current_task()
        elif self._task is not asyncio.current_task():
            raise RuntimeError(f"The async queue of {self.endpoint} is already running.")
        self._wake = asyncio.Event()
        # The folder is the truth: it holds what a previous runtime accepted and did not finish.
        self._pending = deque(self._load())
        try:
            while True:
                self._start_what_fits()
                try:
                    async with asyncio.timeout(self._seconds_to_next_expiry()):
                        await self._wake.wait()
                except TimeoutError:
                    pass  # a queued request's TTL ran out: expire it even with no instances
                self._wake.clear()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._started.clear()
            # Requests cancelled in flight are still in the folder and will run again.
            self._pending = deque(self._load())
            self._task = None

    async def stop(self) -> None:
        """End the worker and every request in flight; those stay queued and run again on the
        next start, in this process or after a restart (at least once, never lost)."""
        task = self._task
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _start_what_fits(self) -> None:
        now = self.clock()
        for request in [request for request in self._pending if now > request.expires_at()]:
            self._pending.remove(request)
            self._spawn(self._expire(request, now))
        capacity = self.capacity()
        while self._pending and len(self._started) < capacity:
            request = self._pending.popleft()
            self._started[request.queue_name] = request
            self._spawn(self._run_one(request))

    def _seconds_to_next_expiry(self) -> float | None:
        if not self._pending:
            return None
        first = min(request.expires_at() for request in self._pending)
        return max(0.0, first - self.clock()) + 0.01  # just past it: expiry is strictly after

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async inference task failed", exc_info=task.exception())
        self._wake.set()

    async def _run_one(self, request: AsyncRequest) -> None:
        """Run one request on the model and write its output or its failure."""
        try:
            request.attempts += 1
            await asyncio.to_thread(self._save, request)  # so a restart knows it is a retry
            if request.attempts > MAX_ATTEMPTS:
                await self._fail(
                    request,
                    f"Inference {request.inference_id} was started {MAX_ATTEMPTS} times and the "
                    "runtime stopped each time before it finished, so it was not run again.",
                )
                return
            try:
                body = await asyncio.to_thread(self._read_input, request)
            except (OSError, ValueError) as error:
                await self._fail(request, f"Could not read the input: {error}")
                return
            try:
                output, content_type = await asyncio.wait_for(
                    self.invoke(body, self._headers(request)), request.invocation_timeout
                )
            except TimeoutError:
                await self._fail(
                    request,
                    f"The model did not answer within InvocationTimeoutSeconds "
                    f"({request.invocation_timeout} s); the invocation was stopped.",
                )
                return
            # The model's failure is this request's failure, whatever its type; str() is the
            # message the runtime's invoke gives it.
            except Exception as error:  # noqa: BLE001
                await self._fail(request, str(error) or type(error).__name__)
                return
            try:
                await asyncio.to_thread(self.storage.put, request.output_location, output)
            except (OSError, ValueError) as error:
                await self._fail(request, f"Could not write the output: {error}")
                return
            self.processed += 1
            self.recent.append(
                AsyncOutcome(
                    request.inference_id, "Completed", request.output_location, "", content_type
                )
            )
            self._forget(request)
        finally:
            self._started.pop(request.queue_name, None)

    async def _expire(self, request: AsyncRequest, now: float) -> None:
        await self._fail(
            request,
            f"ExpiredRequest: inference {request.inference_id} waited {now - request.received:.0f}"
            f" s in the queue, longer than its RequestTTLSeconds ({request.ttl_seconds} s), and "
            "was not run.",
            status="Expired",
        )

    async def _fail(self, request: AsyncRequest, message: str, status: str = "Failed") -> None:
        """Count a failure and write its message to the failure location.

        Without an S3FailurePath SageMaker writes a failure nowhere in S3 (only the error
        notification and the metric see it). Writing it to the output location instead would
        make a client, the SageMaker Python SDK among them, read the error as the prediction, so
        it goes to the log and to `recent` only.
        """
        log.warning(
            "endpoint %s: async inference %s %s: %s",
            self.endpoint,
            request.inference_id,
            status.lower(),
            message,
        )
        location = request.failure_location
        if location:
            try:
                await asyncio.to_thread(self.storage.put, location, message.encode())
            except (OSError, ValueError):
                log.exception("could not write the failure of %s", request.inference_id)
                location = None
        # Counted once written, so a reader of the counters finds the failure file there.
        if status == "Expired":
            self.expired += 1
        else:
            self.failed += 1
        self.recent.append(AsyncOutcome(request.inference_id, status, location, message))
        self._forget(request)

    # -- the queue folder -----------------------------------------------------------------

    def _save(self, request: AsyncRequest) -> None:
        data = json.dumps(asdict(request)).encode()
        write_atomically(self.queue_dir / f"{request.queue_name}.json", data)

    def _forget(self, request: AsyncRequest) -> None:
        """Take a finished request out of the folder: the JSON file first, as it is the request."""
        (self.queue_dir / f"{request.queue_name}.json").unlink(missing_ok=True)
        if request.body_file:
            (self.queue_dir / request.body_file).unlink(missing_ok=True)

    def _load(self) -> list[AsyncRequest]:
        """Every request in the folder, oldest first."""
        requests = []
        for path in sorted(self.queue_dir.glob("*.json")):
            try:
                requests.append(AsyncRequest(**json.loads(path.read_bytes())))
            except (OSError, ValueError, TypeError) as error:
                # Kept for a person to look at, but out of the way of the queue.
                log.error("unreadable async request %s (%s); renamed to .bad", path, error)
                path.rename(path.with_suffix(".bad"))
        return requests

    def _clear_leftovers(self, requests: list[AsyncRequest]) -> None:
        """Remove what a crash left half-written: temp files, and bodies whose request file was
        never written. Only before the worker runs, as its threads write temp files."""
        bodies = {request.body_file for request in requests}
        for path in self.queue_dir.iterdir():
            orphan_body = path.suffix == ".body" and path.name not in bodies
            if path.name.startswith(TEMP_PREFIX) or orphan_body:
                path.unlink(missing_ok=True)

    def _read_input(self, request: AsyncRequest) -> bytes:
        if request.body_file:
            return (self.queue_dir / request.body_file).read_bytes()
        return self.storage.get(request.input_location)

    def _headers(self, request: AsyncRequest) -> dict[str, str]:
        """The request's headers by the names the runtime's invoke takes."""
        return {
            "content_type": request.content_type,
            "accept": request.accept,
            "custom_attributes": request.custom_attributes,
            "inference_id": request.inference_id,
        }
