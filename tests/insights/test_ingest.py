"""Capture ingestion from the local object store: incremental, idempotent, torn lines counted."""

from datetime import timedelta

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
