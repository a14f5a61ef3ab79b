"""Data capture: sampled requests and responses written as JSON Lines in exactly SageMaker's record
format and S3 key layout.

Model Monitor and anything else that reads real SageMaker captures must be able to read ours, so
the record's fields, their order, the encodings and the key layout follow SageMaker's own files.
"""

import base64
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

INPUT_MODES = {"Input", "InputAndOutput"}
OUTPUT_MODES = {"Output", "InputAndOutput"}


@dataclass(frozen=True)
class CaptureConfig:
    """An endpoint's DataCaptureConfig, in the words the writer needs."""

    enabled: bool
    sampling_percentage: int
    destination: str
    capture_input: bool
    capture_output: bool
    csv_content_types: tuple[str, ...] = ()
    json_content_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percentage <= 100:
            raise ValueError("Use a sampling percentage from 0 to 100.")

    @classmethod
    def from_api(cls, data: dict) -> "CaptureConfig":
        """Read SageMaker's DataCaptureConfig, as sent to CreateEndpointConfig."""
        modes = {option["CaptureMode"] for option in data["CaptureOptions"]}
        header = data.get("CaptureContentTypeHeader") or {}
        return cls(
            enabled=data.get("EnableCapture", True),
            sampling_percentage=data["InitialSamplingPercentage"],
            destination=data["DestinationS3Uri"],
            capture_input=bool(modes & INPUT_MODES),
            capture_output=bool(modes & OUTPUT_MODES),
            csv_content_types=tuple(header.get("CsvContentTypes", ())),
            json_content_types=tuple(header.get("JsonContentTypes", ())),
        )


def media_type(content_type: str) -> str:
    """`Text/CSV; charset=utf-8` -> `text/csv`: the part SageMaker's lists are matched against."""
    return content_type.split(";", 1)[0].strip().lower()


def encode_body(body: bytes, content_type: str, config: CaptureConfig) -> tuple[str, str]:
    """The captured (data, encoding) of a body: text for listed CSV and JSON types, else base64."""
    observed = media_type(content_type)
    if observed in {media_type(listed) for listed in config.csv_content_types}:
        text_encoding = "CSV"
    elif observed in {media_type(listed) for listed in config.json_content_types}:
        text_encoding = "JSON"
    else:
        text_encoding = None
    if text_encoding is not None:
        try:
            return body.decode("utf-8"), text_encoding
        except UnicodeDecodeError:
            pass  # a JSON Lines file holds text only, so bytes that are not UTF-8 go as base64
    return base64.b64encode(body).decode("ascii"), "BASE64"


def captured_half(body: bytes, content_type: str, mode: str, config: CaptureConfig) -> dict:
    """endpointInput or endpointOutput: the body as observed, with how it was encoded."""
    data, encoding = encode_body(body, content_type, config)
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def capture_record(
    *,
    request_body: bytes,
    request_content_type: str,
    response_body: bytes | None,
    response_content_type: str,
    config: CaptureConfig,
    inference_time: datetime,
    inference_id: str | None = None,
    custom_attributes: str | None = None,
    event_id: str | None = None,
) -> dict:
    """One capture record as SageMaker writes it. A response_body of None (the model failed)
    leaves endpointOutput out, as does a config that captures input only."""
    capture_data = {}
    if config.capture_input:
        capture_data["endpointInput"] = captured_half(
            request_body, request_content_type, "INPUT", config
        )
    if config.capture_output and response_body is not None:
        capture_data["endpointOutput"] = captured_half(
            response_body, response_content_type, "OUTPUT", config
        )
    # Key order follows SageMaker's files: eventId, inferenceId, inferenceTime.
    metadata = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    # SageMaker writes whole seconds.
    metadata["inferenceTime"] = as_utc(inference_time).strftime("%Y-%m-%dT%H:%M:%SZ")
    if custom_attributes is not None:
        metadata["customAttributes"] = custom_attributes
    return {"captureData": capture_data, "eventMetadata": metadata, "eventVersion": "0"}


def capture_key(destination: str, endpoint: str, variant: str, when: datetime, file_id: str) -> str:
    """The URI of a capture file, partitioned by the UTC hour:
    `{destination}/{endpoint}/{variant}/yyyy/mm/dd/HH/MM-SS-mmm-{file_id}.jsonl`."""
    moment = as_utc(when)
    milliseconds = moment.microsecond // 1000
    name = f"{moment:%M-%S}-{milliseconds:03d}-{file_id}.jsonl"
    return f"{destination.rstrip('/')}/{endpoint}/{variant}/{moment:%Y/%m/%d/%H}/{name}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class CaptureWriter:
    """Samples an endpoint variant's invocations and writes them in batches as capture files.

    Requests arrive on many threads, so the buffer sits behind a lock. A file holds one UTC hour
    only, because its key is filed under the hour of its first record.
    """

    def __init__(
        self,
        write_object: Callable[[str, bytes], None],
        endpoint: str,
        variant: str,
        config: CaptureConfig,
        rng: random.Random | None = None,
        max_records: int = 1000,
        max_age_seconds: float = 60,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.write_object = write_object
        self.endpoint = endpoint
        self.variant = variant
        self.config = config
        # Sampling needs a fair coin, not a secret one.
        self.rng = rng or random.Random()  # noqa: S311
        self.max_records = max_records
        self.max_age_seconds = max_age_seconds
        self.clock = clock or utc_now
        self.lock = threading.Lock()
        self.lines: list[str] = []
        self.first_time: datetime | None = None
        self.opened_at: datetime | None = None

    def sampled(self) -> bool:
        """Whether this invocation is captured: with probability sampling_percentage / 100."""
        if not self.config.enabled or self.config.sampling_percentage == 0:
            return False
        return self.rng.random() * 100 < self.config.sampling_percentage

    def offer(self, **record_kwargs: Any) -> bool:
        """Capture one invocation if the sample picks it; True when it was buffered.

        Takes capture_record's keyword arguments except config; inference_time defaults to now.
        The buffer is written first if the record falls in another hour or the buffer is too old,
        and after it if the buffer is full.
        """
        with self.lock:
            # The random generator is not safe to share between threads without the lock.
            if not self.sampled():
                return False
        record_kwargs.setdefault("inference_time", self.clock())
        record = capture_record(config=self.config, **record_kwargs)
        line = json.dumps(record, separators=(",", ":")) + "\n"
        inference_time = as_utc(record_kwargs["inference_time"])
        hour = inference_time.replace(minute=0, second=0, microsecond=0)
        batches = []
        with self.lock:
            if self.lines and (self.hour_of_buffer() != hour or self.too_old()):
                batches.append(self.take())
            if not self.lines:
                self.first_time = inference_time
                self.opened_at = self.clock()
            self.lines.append(line)
            if len(self.lines) >= self.max_records:
                batches.append(self.take())
        for batch in batches:
            self.write(*batch)
        return True

    def flush(self) -> str | None:
        """Write whatever is buffered as one file and return its URI; None when nothing was."""
        with self.lock:
            batch = self.take()
        return self.write(*batch)

    def flush_if_due(self) -> str | None:
        """Flush when the buffer has waited max_age_seconds: for a timer, so a quiet endpoint's
        last records still reach storage."""
        with self.lock:
            if not self.too_old():
                return None
            batch = self.take()
        return self.write(*batch)

    def hour_of_buffer(self) -> datetime | None:
        if self.first_time is None:
            return None
        return self.first_time.replace(minute=0, second=0, microsecond=0)

    def too_old(self) -> bool:
        if self.opened_at is None:
            return False
        return (self.clock() - self.opened_at).total_seconds() >= self.max_age_seconds

    def take(self) -> tuple[list[str], datetime | None]:
        """Empty the buffer, returning its lines and the time of its first record. Call under
        the lock."""
        batch = (self.lines, self.first_time)
        self.lines = []
        self.first_time = None
        self.opened_at = None
        return batch

    def write(self, lines: list[str], first_time: datetime | None) -> str | None:
        """Write one batch outside the lock, so a slow store never stalls other requests."""
        if not lines or first_time is None:
            return None
        uri = capture_key(
            self.config.destination, self.endpoint, self.variant, first_time, str(uuid.uuid4())
        )
        self.write_object(uri, "".join(lines).encode("utf-8"))
        return uri


def read_capture_file(data: bytes) -> tuple[list[dict], int]:
    """Parse a capture file into (records, torn_lines). A line that is not a JSON object, such as
    the last line of a file cut short while it was written, is counted and skipped."""
    records = []
    torn_lines = 0
    for raw_line in data.split(b"\n"):
        if not raw_line.strip():
            continue
        try:
            record = json.loads(raw_line)
        except ValueError:  # covers JSONDecodeError and bytes that are not UTF-8
            torn_lines += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn_lines += 1
    return records, torn_lines
