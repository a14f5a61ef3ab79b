"""Captured records for people: filtering, a decoded view of one record, and downloads as
SageMaker JSON Lines or CSV (with spreadsheet formulas defused) for retraining."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterator

from django.db.models import Q, QuerySet

from endpoints.models import Endpoint
from insights import conf
from insights.charts import Window
from insights.models import CapturedRecord

CSV_COLUMNS = [
    "time",
    "variant",
    "target_model",
    "inference_id",
    "event_id",
    "input_content_type",
    "input",
    "output_content_type",
    "output",
]
# A cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def matching(endpoint: Endpoint, span: Window, filters: dict) -> QuerySet[CapturedRecord]:
    """The endpoint's records in the window that pass the filters, newest first. The payload
    search is a case-insensitive substring match (icontains): a scan of the window's records."""
    records = CapturedRecord.objects.filter(
        endpoint=endpoint, time__gte=span.start, time__lt=span.end
    )
    if filters.get("variant"):
        records = records.filter(variant=filters["variant"])
    if filters.get("target"):
        records = records.filter(target_model=filters["target"])
    if filters.get("status") == "answered":
        records = records.filter(has_output=True)
    elif filters.get("status") == "no-output":
        records = records.filter(has_output=False)
    if filters.get("q"):
        text = filters["q"]
        records = records.filter(
            Q(input_data__icontains=text)
            | Q(output_data__icontains=text)
            | Q(inference_id__icontains=text)
        )
    return records.order_by("-time", "-pk")


def pretty(text: str, content_type: str) -> tuple[str, str]:
    """(text to show, how it was shown): JSON indented, anything else as it is."""
    if "json" in content_type.lower() or text[:1] in "{[":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False), "JSON"
        except ValueError:
            pass
    return text, "text"


def sagemaker_half(record: CapturedRecord, direction: str, mode: str) -> dict:
    data = getattr(record, f"{direction}_data")
    encoding = getattr(record, f"{direction}_encoding")
    if encoding == "BASE64" and getattr(record, f"{direction}_decoded"):
        data = base64.b64encode(data.encode("utf-8")).decode("ascii")
    return {
        "observedContentType": getattr(record, f"{direction}_content_type"),
        "mode": mode,
        "data": data,
        "encoding": encoding,
    }


def as_sagemaker(record: CapturedRecord) -> dict:
    """The record in SageMaker's capture format again, as Model Monitor and retraining jobs
    read it."""
    capture = {}
    if record.input_encoding:
        capture["endpointInput"] = sagemaker_half(record, "input", "INPUT")
    if record.has_output and record.output_encoding:
        capture["endpointOutput"] = sagemaker_half(record, "output", "OUTPUT")
    metadata = {"eventId": record.event_id}
    if record.inference_id:
        metadata["inferenceId"] = record.inference_id
    metadata["inferenceTime"] = record.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if record.custom_attributes:
        metadata["customAttributes"] = record.custom_attributes
    return {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def limited(records: QuerySet[CapturedRecord]) -> Iterator[CapturedRecord]:
    return records[: conf.DOWNLOAD_MAX_RECORDS].iterator(chunk_size=2000)


def jsonl_lines(records: QuerySet[CapturedRecord]) -> Iterator[str]:
    for record in limited(records):
        yield json.dumps(as_sagemaker(record), separators=(",", ":")) + "\n"


class Echo:
    """A file-like object whose write returns the line, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(records: QuerySet[CapturedRecord]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for record in limited(records):
        yield writer.writerow(
            [
                safe_cell(value)
                for value in (
                    record.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    record.variant,
                    record.target_model,
                    record.inference_id,
                    record.event_id,
                    record.input_content_type,
                    record.input_data,  # base64 where the bytes are not text
                    record.output_content_type,
                    record.output_data,
                )
            ]
        )
