"""Capture ingestion from the local object store: incremental, idempotent, torn lines counted."""

import base64
import json
from datetime import timedelta

import orjson
import pytest
from django.db.models import Sum

from insights import ingest
from insights.models import CapturedRecord, CaptureFile, CaptureSource, MinuteRollup
from runtime.storage import LocalStorage
from tests.insights.helpers import (
    binary_record,
    capturing_endpoint,
    minutes_ago,
    record_line,
    write_file,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(runtime_dirs):
    return runtime_dirs["s3"]


def total_rollup(endpoint) -> int:
    return MinuteRollup.objects.filter(endpoint=endpoint).aggregate(n=Sum("count"))["n"] or 0


def test_ingestion_stores_records_and_per_minute_rollups(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(10).replace(second=5)
    lines = [record_line(start, n) for n in range(3)]
    lines += [record_line(start + timedelta(minutes=1), 9, answered=False)]
    write_file(store, "iris", start, lines)

    result = ingest.ingest_endpoint(endpoint)

    records = CapturedRecord.objects.filter(endpoint=endpoint).order_by("time", "inference_id")
    rollups = MinuteRollup.objects.filter(endpoint=endpoint).order_by("minute")
    assert result.records == 4
    assert [r.inference_id for r in records] == ["order-0", "order-1", "order-2", "order-9"]
    assert records[0].input_data == "0,1"
    assert records[0].output_data == '{"predictions": [1]}'
    assert records[0].variant == "AllTraffic"
    assert records[3].has_output is False
    assert [(r.count, r.without_output) for r in rollups] == [(3, 0), (1, 1)]
    assert rollups[0].request_bytes == 9
    assert rollups[0].content_types == {
        "in": {"text/csv": 3},
        "out": {"application/json": 3},
    }


def test_reading_twice_never_counts_twice(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    write_file(store, "iris", start, [record_line(start, n) for n in range(5)])

    first = ingest.ingest_endpoint(endpoint)
    second = ingest.ingest_endpoint(endpoint)

    assert (first.records, second.records) == (5, 0)
    assert CapturedRecord.objects.count() == 5
    assert total_rollup(endpoint) == 5


def test_a_file_that_grew_is_read_from_where_the_last_read_stopped(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    lines = [record_line(start, n) for n in range(4)]
    uri = write_file(store, "iris", start, lines[:2])
    ingest.ingest_endpoint(endpoint)

    LocalStorage(store).put(uri, "".join(lines).encode())
    again = ingest.ingest_endpoint(endpoint)

    assert again.records == 2
    assert sorted(CapturedRecord.objects.values_list("inference_id", flat=True)) == [
        "order-0",
        "order-1",
        "order-2",
        "order-3",
    ]
    assert total_rollup(endpoint) == 4


def test_a_torn_last_line_waits_until_it_is_complete(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    whole = [record_line(start, n) for n in range(3)]
    cut = whole[2][: len(whole[2]) // 2]  # the writer was half-way through the last line
    uri = write_file(store, "iris", start, [whole[0], whole[1], cut])

    first = ingest.ingest_endpoint(endpoint)
    waiting = CaptureFile.objects.get(uri=uri)
    LocalStorage(store).put(uri, "".join(whole).encode())
    second = ingest.ingest_endpoint(endpoint)

    assert first.records == 2
    assert waiting.pending_bytes == len(cut)
    assert second.records == 1
    assert CaptureFile.objects.get(uri=uri).pending_bytes == 0
    assert total_rollup(endpoint) == 3


def test_broken_lines_are_skipped_and_counted_never_an_exception(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    lines = [record_line(start, 1), "{not json\n", '["a list"]\n', '{"eventVersion":"0"}\n']
    uri = write_file(store, "iris", start, [*lines, record_line(start, 2)])

    result = ingest.ingest_endpoint(endpoint)

    assert result.records == 2
    assert result.torn_lines == 3
    assert CaptureFile.objects.get(uri=uri).torn_lines == 3


def test_base64_payloads_are_decoded_for_search_when_they_are_text(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    write_file(store, "iris", start, [binary_record(start)])

    ingest.ingest_endpoint(endpoint)

    record = CapturedRecord.objects.get()
    assert record.input_encoding == "BASE64"
    assert record.input_decoded is True
    assert record.input_data == "hello needle world"
    assert record.output_decoded is False  # not UTF-8: kept as base64
    assert record.output_bytes == 3


def test_files_of_each_variant_are_counted_under_that_variant(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    write_file(store, "iris", start, [record_line(start, 1)], variant="blue", file_id="a")
    write_file(store, "iris", start, [record_line(start, 2)] * 2, variant="green", file_id="b")

    ingest.ingest_endpoint(endpoint)

    counts = dict(MinuteRollup.objects.filter(endpoint=endpoint).values_list("variant", "count"))
    assert counts == {"blue": 1, "green": 2}


def test_a_held_lease_makes_a_second_run_skip_the_endpoint(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    write_file(store, "iris", start, [record_line(start, 1)])
    assert ingest.claim(endpoint)  # another beat run is reading it

    result = ingest.ingest_endpoint(endpoint)

    assert result.skipped == ["iris"]
    assert CapturedRecord.objects.count() == 0


def test_a_file_whose_offset_another_reader_moved_is_not_written_again(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    uri = write_file(store, "iris", start, [record_line(start, 1), record_line(start, 2)])
    reader = ingest.Reader(endpoint, endpoint.environment.backend, ingest.capture_prefix(endpoint))
    found = endpoint.environment.backend.list_objects(reader.prefix)[0]
    row = CaptureFile.objects.create(environment=endpoint.environment, endpoint=endpoint, uri=uri)
    parsed = reader.parse(row, found, LocalStorage(store).get(uri))
    CaptureFile.objects.filter(pk=row.pk).update(bytes_read=found.size)  # the other reader

    reader.pending = [parsed]
    reader.write()

    assert CapturedRecord.objects.count() == 0
    assert total_rollup(endpoint) == 0


def test_an_unreadable_prefix_is_reported_and_the_lease_released(store, settings) -> None:
    endpoint = capturing_endpoint()
    endpoint.spec["capture"]["destination"] = "s3://NOT A BUCKET/x"
    endpoint.save()

    result = ingest.ingest_endpoint(endpoint)

    source = CaptureSource.objects.get(endpoint=endpoint)
    assert "iris" in result.errors
    assert "bucket" in source.last_error
    assert ingest.claim(endpoint)  # released


def test_the_beat_task_ingests_every_capturing_endpoint(store) -> None:
    from insights.tasks import ingest_capture

    first, second = capturing_endpoint("one"), capturing_endpoint("two")
    capturing_endpoint("off", capture={"enabled": False})
    start = minutes_ago(5)
    write_file(store, "one", start, [record_line(start, 1)])
    write_file(store, "two", start, [record_line(start, 2), record_line(start, 3)])

    assert ingest_capture() == 3
    assert (total_rollup(first), total_rollup(second)) == (1, 2)


def capture_line(when, number: int = 1, **changes: object) -> str:
    """A capture record as a JSON line, with fields of eventMetadata (keys as SageMaker spells
    them) or whole halves (`endpointInput`, `endpointOutput`, None to leave one out) changed."""
    record = json.loads(record_line(when, number))
    for key, value in changes.items():
        if key in ("endpointInput", "endpointOutput"):
            if value is None:
                record["captureData"].pop(key, None)
            else:
                record["captureData"][key] = value
        else:
            record["eventMetadata"][key] = value
    return json.dumps(record) + "\n"


def stored(record: CapturedRecord) -> dict:
    return {field: getattr(record, field) for field in (*ingest.ROW_COLUMNS, "variant")}


def test_odd_but_valid_records_are_stored_as_text_within_the_column_limits(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    lines = [
        capture_line(
            start,
            1,
            eventId=12345,
            inferenceId=None,
            customAttributes="c" * 2000,
            targetModel="model-b.tar.gz",
            endpointInput={
                "observedContentType": "application/" + "x" * 300,
                "mode": "INPUT",
                "data": {"numbers": [1, 2]},  # not a string: kept as its JSON text
                "encoding": "JSON-VERY-LONG",
            },
            endpointOutput={"observedContentType": "text/csv", "data": "é,ü"},  # no encoding
        ),
        capture_line(start, 2, endpointOutput=None),  # the model failed: no output
    ]
    write_file(store, "iris", start, lines)

    result = ingest.ingest_endpoint(endpoint)

    odd, failed = CapturedRecord.objects.order_by("id")
    assert (result.records, result.torn_lines) == (2, 0)
    assert (odd.event_id, odd.inference_id, odd.target_model) == ("12345", "", "model-b.tar.gz")
    assert odd.custom_attributes == "c" * 1024
    assert odd.input_content_type == ("application/" + "x" * 300)[:256]
    assert (odd.input_encoding, odd.input_data) == ("JSON-VERY-", '{"numbers": [1, 2]}')
    assert odd.input_bytes == len('{"numbers": [1, 2]}')
    assert (odd.output_encoding, odd.output_data, odd.output_bytes) == ("", "é,ü", 5)  # UTF-8
    assert (failed.has_output, failed.output_data, failed.output_bytes) == (False, "", 0)
    rollups = {
        r.target_model: (r.count, r.without_output)
        for r in MinuteRollup.objects.filter(endpoint=endpoint)
    }
    assert rollups == {"model-b.tar.gz": (1, 0), "": (1, 1)}


def test_lines_that_are_not_capture_records_are_counted_and_blank_lines_ignored(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    good = record_line(start, 1)
    lines = [
        good,
        "\n",
        "   \n",  # blank: no record, no damage
        '{"captureData": {}, "eventMetadata": {"inferenceTime": NaN}}\n',  # NaN is not JSON
        '{"captureData": {}, "eventMetadata": {"inferenceTime": "\\ud800"}}\n',  # lone surrogate
        "5\n",
        '  ["a list with spaces before"]\n',
        '"a string"\n',
        good.replace('"captureData":{', '"captureData":["x",{').replace(
            ',"eventMetadata"', '],"eventMetadata"', 1
        ),
        capture_line(start, 3, inferenceTime="yesterday-ish"),
        capture_line(start, 4, inferenceTime=1700000000),
        record_line(start, 5),
    ]
    body = "".join(lines).encode()
    body += b'{"captureData": "\xff\xfe not UTF-8"}\n'  # only this line is lost
    uri = write_file(store, "iris", start, [])
    LocalStorage(store).put(uri, body + record_line(start, 6).encode())

    result = ingest.ingest_endpoint(endpoint)

    assert sorted(CapturedRecord.objects.values_list("inference_id", flat=True)) == [
        "order-1",
        "order-5",
        "order-6",
    ]
    assert result.torn_lines == 9
    assert CaptureFile.objects.get(uri=uri).torn_lines == 9
    assert total_rollup(endpoint) == 3


@pytest.mark.parametrize(
    "payload",
    [
        "it's 100%s done, 50%% off; DROP TABLE x; --",
        "ünïcödé ✓ 'quoted' \"double\"",
        "nul\x00inside",
        "ł" * 1500,  # longer than every column it goes to: cut alike, in characters
    ],
)
def test_a_record_is_stored_the_same_whether_its_file_repeats_its_values_or_not(
    store, payload
) -> None:
    """On SQLite, values every record of a file shares are written once into the INSERT: the
    same record must come out the same from a file where everything repeats (literals) as from
    a file where everything varies (parameters)."""
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    shared = {
        "customAttributes": payload,
        "targetModel": payload,
        "eventId": payload,
        "inferenceId": payload[:10],
        "endpointInput": {
            "observedContentType": payload,
            "mode": "INPUT",
            "data": payload,
            "encoding": "CSV",
        },
    }
    alike = [capture_line(start, 1, **shared) for _ in range(3)]
    varied = [capture_line(start, 1, **shared), capture_line(start + timedelta(seconds=1), 2)]
    varied.append(capture_line(start, 9, endpointOutput=None, customAttributes="x"))
    write_file(store, "iris", start, alike, variant="o'brien%s", file_id="alike")
    write_file(store, "iris", start, varied, variant="o'brien%s", file_id="varied")

    result = ingest.ingest_endpoint(endpoint)

    assert result.records == 6
    from_alike = CapturedRecord.objects.filter(file__uri__contains="alike")
    from_varied = CapturedRecord.objects.filter(file__uri__contains="varied").order_by("id")
    expected = stored(from_varied[0])
    text = payload.replace("\x00", "\ufffd")  # PostgreSQL's text holds no NUL: both DBs alike
    assert expected["custom_attributes"] == text[:1024]
    assert expected["event_id"] == text[:64]
    assert expected["input_content_type"] == text[:256]
    assert expected["input_data"] == text
    assert expected["input_bytes"] == len(text.encode())
    assert expected["variant"] == "o'brien%s"
    assert [stored(record) for record in from_alike] == [expected] * 3


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a\x00b", "a\ufffdb"),
        ("\\u0000 is how JSON writes NUL", "\\u0000 is how JSON writes NUL"),  # no NUL in it
        ("\\\x00", "\\\ufffd"),
        ("\x00\x00", "\ufffd\ufffd"),
    ],
)
def test_nul_in_a_json_string_becomes_the_replacement_character(text, kept) -> None:
    line = json.dumps({"data": text}).encode()

    assert orjson.loads(ingest.without_nul(line)) == {"data": kept}


def test_base64_that_decodes_to_text_with_nul_is_kept_as_base64(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    encoded = base64.b64encode(b"header\x00body").decode()
    half = {"observedContentType": "application/x-bin", "data": encoded, "encoding": "BASE64"}
    write_file(store, "iris", start, [capture_line(start, 1, endpointInput=half)])

    ingest.ingest_endpoint(endpoint)

    record = CapturedRecord.objects.get()
    assert (record.input_decoded, record.input_data, record.input_bytes) == (False, encoded, 11)


def test_a_file_of_many_records_is_stored_record_for_record(store) -> None:
    """SQLite inserts many records a statement: none may be lost, doubled or mixed up, whether
    the file's values vary (parameters) or repeat (literals only)."""
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    varied = [
        capture_line(
            start + timedelta(seconds=n % 7),
            n,
            endpointInput={
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": f"{n}," + "x" * (n % 5),
                "encoding": "CSV",
            },
        )
        for n in range(123)  # two statements of many and some left over
    ]
    alike = [capture_line(start, 500, eventId="same")] * 61
    write_file(store, "iris", start, varied, file_id="varied")
    write_file(store, "iris", start, alike, file_id="alike")

    result = ingest.ingest_endpoint(endpoint)

    assert result.records == 184
    rows = CapturedRecord.objects.filter(file__uri__contains="varied").order_by("id")
    assert [(r.inference_id, r.input_data, r.input_bytes, r.time) for r in rows] == [
        (
            f"order-{n}",
            f"{n}," + "x" * (n % 5),
            len(f"{n},") + n % 5,
            start + timedelta(seconds=n % 7),
        )
        for n in range(123)
    ]
    same = CapturedRecord.objects.filter(file__uri__contains="alike")
    assert set(same.values_list("inference_id", "event_id")) == {("order-500", "same")}
    assert same.count() == 61
    assert total_rollup(endpoint) == 184


def test_a_files_row_keeps_its_offset_size_and_counts_across_reads(store) -> None:
    endpoint = capturing_endpoint()
    start = minutes_ago(5)
    lines = [record_line(start, n) for n in range(3)]
    uri = write_file(store, "iris", start, [*lines[:2], "{torn\n"])
    ingest.ingest_endpoint(endpoint)
    first = CaptureFile.objects.get(uri=uri)

    LocalStorage(store).put(uri, "".join([*lines[:2], "{torn\n", lines[2]]).encode())
    ingest.ingest_endpoint(endpoint)
    second = CaptureFile.objects.get(uri=uri)

    stored = endpoint.environment.backend.list_objects(ingest.capture_prefix(endpoint))[0]
    assert (first.lines_read, first.torn_lines, second.lines_read, second.torn_lines) == (
        2,
        1,
        3,
        1,
    )
    assert second.bytes_read == second.size == stored.size
    assert second.modified == stored.modified
    assert second.read_at >= first.read_at is not None


def test_times_are_stored_as_the_orm_stores_them_whatever_their_format(store) -> None:
    """SageMaker's whole-second UTC times take a shortcut on SQLite; every format must still be
    stored exactly as Django stores that moment, or filtering by time would miss records."""
    endpoint = capturing_endpoint()
    moment = minutes_ago(30).replace(second=7)
    formats = {
        "sagemaker": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offset": (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        "fraction": moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "naive": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "space": moment.strftime("%Y-%m-%d %H:%M:%SZ"),
    }
    lines = [capture_line(moment, n, inferenceTime=text) for n, text in enumerate(formats.values())]
    write_file(store, "iris", moment, lines)

    ingest.ingest_endpoint(endpoint)

    assert CapturedRecord.objects.filter(time=moment).count() == len(formats)
    assert CapturedRecord.objects.filter(
        time__gte=moment, time__lt=moment + timedelta(seconds=1)
    ).count() == len(formats)
    rollup = MinuteRollup.objects.get(endpoint=endpoint)
    assert (rollup.minute, rollup.count) == (moment.replace(second=0), len(formats))
