"""Async inference: the durable queue, capacity per instance, outputs, failures, TTL, restarts."""

import asyncio
import json

import pytest

from runtime.asyncinference import MAX_ATTEMPTS, AsyncConfig, AsyncQueue
from runtime.storage import LocalStorage

OUTPUT_PATH = "s3://results/async/out"
FAILURE_PATH = "s3://results/async/failed"
INPUT = "s3://inputs/requests/one.csv"


class FakeModel:
    """Stands in for the runtime's invoke: answers "out:<body>", and counts how many run at once.

    While `gate` is set to an unset Event, every call waits on it, so a test can hold calls open.
    """

    def __init__(self, error: Exception | None = None, delay: float = 0.0) -> None:
        self.error = error
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.running = 0
        self.most_at_once = 0

    async def __call__(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, str]:
        self.calls.append((body, headers))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.error is not None:
                raise self.error
            return b"out:" + body, "text/plain"
        finally:
            self.running -= 1


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "s3")


def make_queue(tmp_path, storage, model, instances=lambda: 1, clock=None, **config) -> AsyncQueue:
    config.setdefault("output_path", OUTPUT_PATH)
    return AsyncQueue(
        endpoint="scorer",
        config=AsyncConfig(**config),
        storage=storage,
        queue_dir=tmp_path / "queue",
        invoke=model,
        instance_count=instances,
        **({"clock": clock} if clock else {}),
    )


def submit(queue: AsyncQueue, **request):
    fields = {
        "body": None,
        "input_location": None,
        "content_type": "text/csv",
        "accept": "text/plain",
        "custom_attributes": "",
        "inference_id": None,
        "ttl_seconds": None,
        "invocation_timeout": None,
    }
    return queue.submit(**(fields | request))


async def wait_until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def give_it_time() -> None:
    """For asserting that something does not happen: long enough for a started request to have
    gone through its thread hops and reached the model."""
    await asyncio.sleep(0.2)


def queued_files(tmp_path) -> list[str]:
    return sorted(path.name for path in (tmp_path / "queue").iterdir())


def test_request_from_input_location_writes_model_output_to_output_path(tmp_path, storage):
    storage.put(INPUT, b"1,2,3")
    model = FakeModel()

    async def scenario():
        queue = make_queue(tmp_path, storage, model)
        worker = queue.start()
        request = submit(queue, input_location=INPUT, inference_id="order-42")
        await wait_until(lambda: queue.processed == 1)
        await queue.stop()
        assert worker.done()
        return request

    request = asyncio.run(scenario())

    assert request.output_location == f"{OUTPUT_PATH}/order-42.out"
    assert storage.get(request.output_location) == b"out:1,2,3"
    assert model.calls[0][1] == {
        "content_type": "text/csv",
        "accept": "text/plain",
        "custom_attributes": "",
        "inference_id": "order-42",
    }
    assert queued_files(tmp_path) == []


def test_inline_body_reaches_the_model_and_its_output_is_written(tmp_path, storage):
    model = FakeModel()

    async def scenario():
        queue = make_queue(tmp_path, storage, model)
        worker = queue.start()
        request = submit(queue, body=b"inline")
        await wait_until(lambda: queue.processed == 1)
        await queue.stop()
        assert worker.done()
        return request

    request = asyncio.run(scenario())

    assert model.calls[0][0] == b"inline"
    assert storage.get(request.output_location) == b"out:inline"
    assert queued_files(tmp_path) == []


def test_accepted_request_and_its_body_are_on_disk_when_submit_returns(tmp_path, storage):
    queue = make_queue(tmp_path, storage, FakeModel())

    request = submit(queue, body=b"keep me", inference_id="abc")

    saved = json.loads((tmp_path / "queue" / f"{request.queue_name}.json").read_text())
    assert saved["inference_id"] == "abc"
    assert (tmp_path / "queue" / saved["body_file"]).read_bytes() == b"keep me"
    assert queue.backlog() == 1


def test_model_failure_is_written_to_failure_path_with_its_message(tmp_path, storage):
    model = FakeModel(error=RuntimeError("Received server error (500) from primary"))

    async def scenario():
        queue = make_queue(tmp_path, storage, model, failure_path=FAILURE_PATH)
        worker = queue.start()
        request = submit(queue, body=b"x", inference_id="bad-1")
        await wait_until(lambda: queue.failed == 1)
        await queue.stop()
        assert worker.done()
        return queue, request

    queue, request = asyncio.run(scenario())

    assert request.failure_location == f"{FAILURE_PATH}/bad-1-error.out"
    assert storage.get(request.failure_location) == b"Received server error (500) from primary"
    assert not storage.exists(request.output_location)
    assert queue.processed == 0
    assert queued_files(tmp_path) == []


def test_model_failure_without_failure_path_writes_nothing_to_output_path(tmp_path, storage):
    model = FakeModel(error=RuntimeError("model crashed"))

    async def scenario():
        queue = make_queue(tmp_path, storage, model)
        worker = queue.start()
        request = submit(queue, body=b"x")
        await wait_until(lambda: queue.failed == 1)
        await queue.stop()
        assert worker.done()
        return queue, request

    queue, request = asyncio.run(scenario())

    assert request.failure_location is None
    assert not storage.exists(request.output_location)
    outcome = queue.recent[-1]
    assert (outcome.status, outcome.location, outcome.message) == ("Failed", None, "model crashed")


def test_model_slower_than_invocation_timeout_fails_with_a_timeout_message(tmp_path, storage):
    model = FakeModel(delay=30)

    async def scenario():
        queue = make_queue(tmp_path, storage, model, failure_path=FAILURE_PATH)
        worker = queue.start()
        request = submit(queue, body=b"x", invocation_timeout=1)
        await wait_until(lambda: queue.failed == 1, seconds=10)
        await queue.stop()
        assert worker.done()
        return request

    request = asyncio.run(scenario())

    message = storage.get(request.failure_location).decode()
    assert "InvocationTimeoutSeconds (1 s)" in message
    assert not storage.exists(request.output_location)


def test_requests_in_flight_never_exceed_max_concurrent_per_instance_times_instances(
    tmp_path, storage
):
    model = FakeModel()

    async def scenario():
        model.gate = asyncio.Event()
        queue = make_queue(
            tmp_path, storage, model, instances=lambda: 3, max_concurrent_per_instance=2
        )
        worker = queue.start()
        for number in range(20):
            submit(queue, body=str(number).encode())
        await wait_until(lambda: model.running == 6)
        await give_it_time()
        held = (model.running, queue.in_flight(), queue.backlog())
        model.gate.set()
        await wait_until(lambda: queue.processed == 20)
        await queue.stop()
        assert worker.done()
        return held

    held = asyncio.run(scenario())

    assert held == (6, 6, 14)
    assert model.most_at_once == 6


def test_requests_start_oldest_first(tmp_path, storage):
    model = FakeModel()
    instances = [0]

    async def scenario():
        queue = make_queue(
            tmp_path, storage, model, instances=lambda: instances[0], max_concurrent_per_instance=1
        )
        worker = queue.start()
        for name in ("first", "second", "third"):
            submit(queue, body=name.encode(), inference_id=name)
        instances[0] = 1
        queue.capacity_changed()
        await wait_until(lambda: queue.processed == 3)
        await queue.stop()
        assert worker.done()

    asyncio.run(scenario())

    assert [headers["inference_id"] for _, headers in model.calls] == ["first", "second", "third"]


def test_zero_instances_keep_the_backlog_until_capacity_returns(tmp_path, storage):
    model = FakeModel()
    instances = [0]
    clock = Clock()

    async def scenario():
        queue = make_queue(tmp_path, storage, model, instances=lambda: instances[0], clock=clock)
        worker = queue.start()
        for number in range(3):
            submit(queue, body=str(number).encode())
        clock.now += 30
        queue.capacity_changed()
        await give_it_time()
        waiting = (len(model.calls), queue.backlog(), queue.oldest_age_seconds())
        instances[0] = 1
        queue.capacity_changed()
        await wait_until(lambda: queue.processed == 3)
        await queue.stop()
        assert worker.done()
        return waiting, queue.backlog()

    waiting, backlog_after = asyncio.run(scenario())

    assert waiting == (0, 3, 30.0)
    assert backlog_after == 0


def test_request_accepted_before_a_restart_runs_on_the_new_queue(tmp_path, storage):
    storage.put(INPUT, b"survivor")

    async def before_restart():
        queue = make_queue(tmp_path, storage, FakeModel(), instances=lambda: 0)
        worker = queue.start()
        request = submit(queue, input_location=INPUT)
        await queue.stop()
        assert worker.done()
        return request

    async def after_restart():
        queue = make_queue(tmp_path, storage, FakeModel())
        recovered = queue.backlog()
        worker = queue.start()
        await wait_until(lambda: queue.processed == 1)
        await queue.stop()
        assert worker.done()
        return recovered

    request = asyncio.run(before_restart())
    recovered = asyncio.run(after_restart())

    assert recovered == 1
    assert storage.get(request.output_location) == b"out:survivor"
    assert queued_files(tmp_path) == []


def test_request_in_flight_when_the_runtime_stops_runs_again_after_restart(tmp_path, storage):
    first_model, second_model = FakeModel(), FakeModel()

    async def before_restart():
        first_model.gate = asyncio.Event()  # never set: the model is busy when we stop
        queue = make_queue(tmp_path, storage, first_model)
        worker = queue.start()
        request = submit(queue, body=b"twice")
        await wait_until(lambda: first_model.running == 1)
        await queue.stop()
        assert worker.done()
        return request

    async def after_restart():
        queue = make_queue(tmp_path, storage, second_model)
        worker = queue.start()
        await wait_until(lambda: queue.processed == 1)
        await queue.stop()
        assert worker.done()

    request = asyncio.run(before_restart())
    asyncio.run(after_restart())

    assert [body for body, _ in second_model.calls] == [b"twice"]
    assert storage.get(request.output_location) == b"out:twice"


def test_request_the_runtime_keeps_stopping_in_is_failed_instead_of_run_again(tmp_path, storage):
    model = FakeModel()
    queue = make_queue(tmp_path, storage, model, failure_path=FAILURE_PATH)
    request = submit(queue, body=b"poison")
    path = tmp_path / "queue" / f"{request.queue_name}.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps(saved | {"attempts": MAX_ATTEMPTS}))

    async def scenario():
        restarted = make_queue(tmp_path, storage, model, failure_path=FAILURE_PATH)
        worker = restarted.start()
        await wait_until(lambda: restarted.failed == 1)
        await restarted.stop()
        assert worker.done()

    asyncio.run(scenario())

    assert model.calls == []
    assert f"started {MAX_ATTEMPTS} times" in storage.get(request.failure_location).decode()


def test_request_waiting_longer_than_its_ttl_expires_without_running(tmp_path, storage):
    model = FakeModel()
    clock = Clock()

    async def scenario():
        queue = make_queue(
            tmp_path, storage, model, instances=lambda: 0, clock=clock, failure_path=FAILURE_PATH
        )
        worker = queue.start()
        request = submit(queue, body=b"late", ttl_seconds=60)
        clock.now += 61
        queue.capacity_changed()
        await wait_until(lambda: queue.expired == 1)
        await queue.stop()
        assert worker.done()
        return queue, request

    queue, request = asyncio.run(scenario())

    assert model.calls == []
    assert storage.get(request.failure_location).startswith(b"ExpiredRequest")
    assert (queue.failed, queue.backlog()) == (0, 0)
    assert queued_files(tmp_path) == []


def test_request_within_its_ttl_still_runs(tmp_path, storage):
    model = FakeModel()
    clock = Clock()

    async def scenario():
        queue = make_queue(tmp_path, storage, model, clock=clock)
        submit(queue, body=b"on time", ttl_seconds=60)
        clock.now += 60
        worker = queue.start()
        await wait_until(lambda: queue.processed == 1)
        await queue.stop()
        assert worker.done()
        return queue

    queue = asyncio.run(scenario())

    assert queue.expired == 0


def test_output_path_extension_and_filename_shape_the_output_location(tmp_path, storage):
    queue = make_queue(tmp_path, storage, FakeModel(), output_path=OUTPUT_PATH + "/")

    request = submit(
        queue, body=b"x", output_path_extension="batch/7", filename="result.json", inference_id="i"
    )

    assert request.output_location == f"{OUTPUT_PATH}/batch/7/result.json"


def test_inline_body_of_exactly_128000_bytes_is_accepted(tmp_path, storage):
    queue = make_queue(tmp_path, storage, FakeModel())

    submit(queue, body=b"x" * 128_000)

    assert queue.backlog() == 1


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"body": b"x", "input_location": INPUT}, "not both"),
        ({}, "Send the input as an inline Body"),
        ({"body": b"x" * 128_001}, "128,001 bytes; the limit is 128,000"),
        ({"input_location": "s3://inputs/missing.csv"}, "does not exist; upload the input there"),
        ({"input_location": "/tmp/one.csv"}, "is not an s3:// URI"),  # noqa: S108 (only a name)
        ({"body": b"x", "ttl_seconds": 59}, "RequestTTLSeconds must be .* from 60 to 21600"),
        ({"body": b"x", "ttl_seconds": 21_601}, "RequestTTLSeconds"),
        ({"body": b"x", "invocation_timeout": 0}, "InvocationTimeoutSeconds .* 1 to 3600"),
        ({"body": b"x", "invocation_timeout": 3_601}, "InvocationTimeoutSeconds"),
        ({"body": b"x", "filename": "a.b.c"}, "Filename must be"),
        ({"body": b"x", "output_path_extension": "s3://elsewhere/x"}, "not a URI"),
        ({"body": b"x", "inference_id": "x" * 65}, "InferenceId must be 1 to 64"),
    ],
)
def test_invalid_request_is_refused_and_nothing_is_queued(
    tmp_path, storage, request_fields, message
):
    storage.put(INPUT, b"1,2,3")
    queue = make_queue(tmp_path, storage, FakeModel())

    with pytest.raises(ValueError, match=message):
        submit(queue, **request_fields)

    assert queued_files(tmp_path) == []
    assert queue.backlog() == 0


def test_config_reads_sagemaker_async_inference_config():
    config = AsyncConfig.from_api(
        {
            "OutputConfig": {"S3OutputPath": OUTPUT_PATH, "S3FailurePath": FAILURE_PATH},
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 7},
        }
    )

    assert config == AsyncConfig(OUTPUT_PATH, FAILURE_PATH, 7)


def test_config_without_client_config_runs_four_at_a_time_per_instance():
    config = AsyncConfig.from_api({"OutputConfig": {"S3OutputPath": OUTPUT_PATH}})

    assert (config.failure_path, config.max_concurrent_per_instance) == (None, 4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "needs OutputConfig.S3OutputPath"),
        ({"OutputConfig": {"S3FailurePath": FAILURE_PATH}}, "needs OutputConfig.S3OutputPath"),
        ({"OutputConfig": {"S3OutputPath": "results/out"}}, "is not an s3:// URI"),
        (
            {
                "OutputConfig": {"S3OutputPath": OUTPUT_PATH},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1001},
            },
            "from 1 to 1000",
        ),
    ],
)
def test_config_without_a_usable_output_path_or_concurrency_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        AsyncConfig.from_api(data)


def test_files_half_written_by_a_crash_are_cleared_and_unreadable_ones_set_aside(tmp_path, storage):
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    (queue_dir / ".tmp-abc.part").write_bytes(b"half a request")
    (queue_dir / "00000000000000000001-orphan.body").write_bytes(b"its request never landed")
    (queue_dir / "00000000000000000002-broken.json").write_text("{not json")

    queue = make_queue(tmp_path, storage, FakeModel())

    assert queue.backlog() == 0
    assert queued_files(tmp_path) == ["00000000000000000002-broken.bad"]
