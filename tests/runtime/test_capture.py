"""Data capture: SageMaker's record format, encodings, sampling, key layout and batching."""

import base64
import json
import random
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runtime.capture import (
    CaptureConfig,
    CaptureWriter,
    capture_key,
    capture_record,
    encode_body,
    read_capture_file,
)

# The reference's literal example, on one line as SageMaker writes it.
REFERENCE_LINE = (
    '{"captureData":{'
    '"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"69,0,153.7,109,194.0,105,256.1,114,14.1,6,1","encoding":"CSV"},'
    '"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
    '"data":"0.0254181120544672","encoding":"CSV"}},'
    '"eventMetadata":{"eventId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","inferenceId":"order-42",'
    '"inferenceTime":"2022-02-14T17:25:49Z"},'
    '"eventVersion":"0"}'
)
DESTINATION = "s3://bucket/capture"


def config_for(**changes: object) -> CaptureConfig:
    fields = {
        "enabled": True,
        "sampling_percentage": 100,
        "destination": DESTINATION,
        "capture_input": True,
        "capture_output": True,
        "csv_content_types": ("text/csv",),
        "json_content_types": ("application/json",),
    }
    fields.update(changes)
    return CaptureConfig(**fields)


def record_for(config: CaptureConfig, **changes: object) -> dict:
    arguments = {
        "request_body": b"1,2",
        "request_content_type": "text/csv",
        "response_body": b"0.5",
        "response_content_type": "text/csv",
        "config": config,
        "inference_time": datetime(2024, 1, 15, 10, 32, 18, tzinfo=UTC),
    }
    arguments.update(changes)
    return capture_record(**arguments)


def offer_at(writer: CaptureWriter, when: datetime | None = None, body: bytes = b"1,2") -> bool:
    """Offer one CSV invocation; without a time the writer's clock says when it happened."""
    timing = {} if when is None else {"inference_time": when}
    return writer.offer(
        request_body=body,
        request_content_type="text/csv",
        response_body=b"0.5",
        response_content_type="text/csv",
        **timing,
    )


class Store:
    """The runtime's storage put(uri, data), recorded."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, uri: str, data: bytes) -> None:
        self.objects[uri] = data


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_reference_example_is_reproduced_exactly_from_its_inputs():
    config = config_for(json_content_types=())

    record = capture_record(
        request_body=b"69,0,153.7,109,194.0,105,256.1,114,14.1,6,1",
        request_content_type="text/csv",
        response_body=b"0.0254181120544672",
        response_content_type="text/csv; charset=utf-8",
        config=config,
        inference_time=datetime(2022, 2, 14, 17, 25, 49, 731000, tzinfo=UTC),
        inference_id="order-42",
        event_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    )

    assert json.dumps(record, separators=(",", ":")) == REFERENCE_LINE


def test_config_is_read_from_sagemakers_data_capture_config():
    config = CaptureConfig.from_api(
        {
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    )

    assert config == CaptureConfig(
        enabled=True,
        sampling_percentage=20,
        destination="s3://bucket/capture",
        capture_input=True,
        capture_output=False,
        csv_content_types=(),
        json_content_types=("application/json",),
    )


def test_config_reads_input_and_output_mode_and_disabled_capture():
    config = CaptureConfig.from_api(
        {
            "EnableCapture": False,
            "InitialSamplingPercentage": 0,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
        }
    )

    assert not config.enabled
    assert config.capture_input and config.capture_output
    assert config.csv_content_types == config.json_content_types == ()


def test_sampling_percentage_outside_zero_to_hundred_is_refused():
    with pytest.raises(ValueError, match="0 to 100"):
        config_for(sampling_percentage=101)


def test_json_body_listed_as_json_is_stored_as_text():
    body = b'{"instances": [[1, 2]], "note": "\xc3\xa9"}'

    assert encode_body(body, "application/json", config_for()) == (
        '{"instances": [[1, 2]], "note": "é"}',
        "JSON",
    )


def test_unlisted_content_type_is_stored_as_base64():
    body = b"\x93NUMPY\x01\x00"

    data, encoding = encode_body(body, "application/x-npy", config_for())

    assert encoding == "BASE64"
    assert base64.b64decode(data) == body


def test_without_a_content_type_header_everything_is_base64():
    config = config_for(csv_content_types=(), json_content_types=())

    assert encode_body(b"1,2", "text/csv", config) == ("MSwy", "BASE64")
    assert encode_body(b"{}", "application/json", config) == ("e30=", "BASE64")


def test_charset_parameter_and_letter_case_are_ignored_when_matching():
    config = config_for(csv_content_types=("Text/CSV",))

    assert encode_body(b"1,2", "text/csv; charset=utf-8", config) == ("1,2", "CSV")
    assert encode_body(b"{}", "APPLICATION/JSON;charset=UTF-8", config) == ("{}", "JSON")


def test_listed_type_whose_body_is_not_utf8_falls_back_to_base64():
    assert encode_body(b"\xff\xfe1,2", "text/csv", config_for()) == ("//4xLDI=", "BASE64")


def test_input_only_capture_omits_the_output():
    record = record_for(config_for(capture_output=False))

    assert list(record["captureData"]) == ["endpointInput"]
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"


def test_output_only_capture_omits_the_input():
    record = record_for(config_for(capture_input=False))

    assert list(record["captureData"]) == ["endpointOutput"]
    assert record["captureData"]["endpointOutput"] == {
        "observedContentType": "text/csv",
        "mode": "OUTPUT",
        "data": "0.5",
        "encoding": "CSV",
    }


def test_failed_invocation_without_a_response_captures_only_the_input():
    record = record_for(config_for(), response_body=None)

    assert list(record["captureData"]) == ["endpointInput"]


def test_metadata_has_a_fresh_event_id_and_no_optional_keys_unless_given():
    first = record_for(config_for())
    second = record_for(config_for())

    assert list(first["eventMetadata"]) == ["eventId", "inferenceTime"]
    assert len(first["eventMetadata"]["eventId"]) == 36
    assert first["eventMetadata"]["eventId"] != second["eventMetadata"]["eventId"]
    assert first["eventVersion"] == "0"


def test_custom_attributes_are_kept_and_inference_time_is_whole_seconds_in_utc():
    paris = timezone(timedelta(hours=1))
    record = record_for(
        config_for(),
        custom_attributes="trace=abc",
        inference_time=datetime(2024, 1, 15, 11, 32, 18, 999999, tzinfo=paris),
    )

    assert record["eventMetadata"]["customAttributes"] == "trace=abc"
    assert record["eventMetadata"]["inferenceTime"] == "2024-01-15T10:32:18Z"


def test_key_follows_sagemakers_layout_in_utc():
    when = datetime(2024, 1, 15, 11, 32, 18, 648123, tzinfo=timezone(timedelta(hours=1)))
    file_id = "cee08c3a-02ce-4790-b8ba-3173cfc12813"

    key = capture_key("s3://b/capture", "my-ep", "AllTraffic", when, file_id)

    assert key == (
        "s3://b/capture/my-ep/AllTraffic/2024/01/15/10/"
        "32-18-648-cee08c3a-02ce-4790-b8ba-3173cfc12813.jsonl"
    )


def test_key_has_no_double_slash_when_destination_ends_with_one():
    when = datetime(2024, 3, 5, 7, 8, 9, 5000, tzinfo=UTC)

    key = capture_key("s3://b/capture/", "ep", "v1", when, "id")

    assert key == "s3://b/capture/ep/v1/2024/03/05/07/08-09-005-id.jsonl"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sampling_percentage": 0}, 0),
        ({"sampling_percentage": 100}, 1000),
        ({"sampling_percentage": 100, "enabled": False}, 0),
    ],
)
def test_sampling_zero_never_hundred_always_and_disabled_never_captures(changes, expected):
    writer = CaptureWriter(Store().put, "ep", "v", config_for(**changes), max_records=10_000)

    taken = sum(offer_at(writer) for _ in range(1000))

    assert taken == expected


def test_sampling_fifty_captures_about_half_and_the_same_half_for_a_seed():
    def run(seed: int) -> list[bool]:
        writer = CaptureWriter(
            Store().put,
            "ep",
            "v",
            config_for(sampling_percentage=50),
            rng=random.Random(seed),  # noqa: S311 - a seeded coin, nothing secret
            max_records=10_000,
        )
        return [offer_at(writer) for _ in range(2000)]

    first = run(7)

    assert 900 <= sum(first) <= 1100
    assert run(7) == first
    assert run(8) != first


def test_writer_flushes_a_file_when_the_buffer_reaches_max_records():
    store = Store()
    start = datetime(2024, 1, 15, 10, 32, 18, 648000, tzinfo=UTC)
    writer = CaptureWriter(store.put, "ep", "AllTraffic", config_for(), max_records=3)

    for second in range(7):
        offer_at(writer, start + timedelta(seconds=second), body=str(second).encode())

    assert len(store.objects) == 2
    contents = [read_capture_file(data) for data in store.objects.values()]
    bodies = [
        [record["captureData"]["endpointInput"]["data"] for record in records]
        for records, _ in contents
    ]
    assert sorted(bodies) == [["0", "1", "2"], ["3", "4", "5"]]
    assert all(torn == 0 for _, torn in contents)
    assert writer.flush() is not None
    assert len(store.objects) == 3


def test_flushed_file_is_compact_json_lines_under_the_first_records_key():
    store = Store()
    start = datetime(2024, 1, 15, 10, 32, 18, 648000, tzinfo=UTC)
    writer = CaptureWriter(store.put, "my-ep", "AllTraffic", config_for())
    offer_at(writer, start)
    offer_at(writer, start + timedelta(seconds=5))

    uri = writer.flush()

    assert uri is not None
    assert uri.startswith(f"{DESTINATION}/my-ep/AllTraffic/2024/01/15/10/32-18-648-")
    assert uri.endswith(".jsonl")
    lines = store.objects[uri].decode().split("\n")
    assert lines[2] == ""
    assert [json.loads(line) for line in lines[:2]] == read_capture_file(store.objects[uri])[0]
    assert ": " not in lines[0] and ", " not in lines[0].replace('"1,2"', "")


def test_flush_with_nothing_buffered_writes_nothing():
    store = Store()
    writer = CaptureWriter(store.put, "ep", "v", config_for())

    assert writer.flush() is None
    assert store.objects == {}


def test_writer_starts_a_new_file_when_the_hour_changes():
    store = Store()
    writer = CaptureWriter(store.put, "ep", "v", config_for())
    offer_at(writer, datetime(2024, 1, 15, 10, 59, 59, tzinfo=UTC))
    offer_at(writer, datetime(2024, 1, 15, 10, 59, 59, 500000, tzinfo=UTC))

    offer_at(writer, datetime(2024, 1, 15, 11, 0, 0, tzinfo=UTC))

    (first_uri,) = store.objects
    assert "/2024/01/15/10/59-59-000-" in first_uri
    assert len(read_capture_file(store.objects[first_uri])[0]) == 2
    second_uri = writer.flush()
    assert "/2024/01/15/11/00-00-000-" in second_uri
    assert len(read_capture_file(store.objects[second_uri])[0]) == 1


def test_writer_flushes_a_buffer_older_than_max_age():
    store = Store()
    clock = Clock(datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC))
    writer = CaptureWriter(store.put, "ep", "v", config_for(), max_age_seconds=60, clock=clock)
    offer_at(writer, clock.now)
    clock.now += timedelta(seconds=59)
    assert writer.flush_if_due() is None

    clock.now += timedelta(seconds=1)
    offer_at(writer, clock.now)

    assert len(store.objects) == 1
    assert len(read_capture_file(next(iter(store.objects.values())))[0]) == 1


def test_timer_flush_writes_a_quiet_endpoints_last_records():
    store = Store()
    clock = Clock(datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC))
    writer = CaptureWriter(store.put, "ep", "v", config_for(), max_age_seconds=60, clock=clock)
    offer_at(writer)
    clock.now += timedelta(seconds=61)

    uri = writer.flush_if_due()

    assert uri is not None
    assert "/2024/01/15/10/00-00-000-" in uri
    assert writer.flush_if_due() is None


def test_offers_from_many_threads_lose_no_record():
    store = Store()
    writer = CaptureWriter(store.put, "ep", "v", config_for(), max_records=7)
    when = datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC)

    def offer_many() -> None:
        for _ in range(100):
            offer_at(writer, when)

    threads = [threading.Thread(target=offer_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()

    total = sum(len(read_capture_file(data)[0]) for data in store.objects.values())
    assert total == 800


def test_torn_last_line_is_skipped_and_counted():
    line = json.dumps(record_for(config_for()), separators=(",", ":"))
    data = f"{line}\n{line}\n{line[:40]}".encode()

    records, torn_lines = read_capture_file(data)

    assert len(records) == 2
    assert records[0]["eventVersion"] == "0"
    assert torn_lines == 1


def test_invalid_lines_anywhere_are_counted_and_blank_lines_ignored():
    line = json.dumps(record_for(config_for()), separators=(",", ":"))
    data = f"{line}\nnot json\n\n[1, 2]\n{line}\n".encode() + b"\xff\xfe\n"

    records, torn_lines = read_capture_file(data)

    assert len(records) == 2
    assert torn_lines == 3
