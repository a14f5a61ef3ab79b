"""Event stream frames, read back by botocore's own decoder, parser and client."""

import json
import struct
import zlib

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import create_parser

from runtime.eventstream import (
    encode_message,
    internal_stream_failure,
    model_stream_error,
    payload_part,
)

OPERATION = "InvokeEndpointWithResponseStream"


class ChunkedBody:
    """Stands in for urllib3's response: botocore's EventStream reads it through stream()."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def stream(self, *args: object, **kwargs: object):
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


def decode(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def slices(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def parse_stream(chunks: list[bytes]):
    """The Body that botocore's rest-json parser makes of the operation's real output shape."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    operation = model.operation_model(OPERATION)
    response = {
        "status_code": 200,
        "headers": {"x-amzn-sagemaker-content-type": "text/plain"},
        "body": ChunkedBody(chunks),
        "context": {"operation_name": OPERATION},
    }
    parsed = create_parser("rest-json").parse(response, operation.output_shape)
    return parsed["Body"]


def test_message_carries_its_headers_and_payload_with_valid_checksums():
    frame = encode_message({":event-type": "Custom", "note": "ünïcode"}, b"\x00\x01raw")

    (message,) = decode(frame)

    assert message.headers == {":event-type": "Custom", "note": "ünïcode"}
    assert message.payload == b"\x00\x01raw"
    assert message.prelude.total_length == len(frame)
    assert message.crc == zlib.crc32(frame[:-4])


def test_corrupted_payload_fails_botocores_checksum():
    frame = bytearray(encode_message({":event-type": "Custom"}, b"payload"))
    frame[-6] ^= 0xFF

    with pytest.raises(ChecksumMismatch):
        decode(bytes(frame))


def test_prelude_holds_total_and_header_lengths_and_their_checksum():
    frame = encode_message({"a": "b"}, b"xyz")

    total_length, headers_length, prelude_crc = struct.unpack(">III", frame[:12])

    assert total_length == len(frame)
    assert headers_length == 1 + 1 + 1 + 2 + 1
    assert prelude_crc == zlib.crc32(frame[:8])


def test_empty_message_is_sixteen_bytes():
    assert len(encode_message({}, b"")) == 16
    assert decode(encode_message({}, b""))[0].payload == b""


def test_header_value_over_the_string_limit_is_refused():
    with pytest.raises(ValueError, match="32767"):
        encode_message({"big": "x" * 32768}, b"")


def test_payload_part_is_an_octet_stream_event_with_the_bytes_untouched():
    data = bytes(range(256)) + b'{"not": "wrapped"}'

    (message,) = decode(payload_part(data))

    assert message.headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert message.payload == data


def test_model_stream_error_is_a_json_exception_with_message_and_error_code():
    (message,) = decode(model_stream_error("Model took too long.", "ModelInvocationTimeExceeded"))

    assert message.headers == {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(message.payload) == {
        "Message": "Model took too long.",
        "ErrorCode": "ModelInvocationTimeExceeded",
    }


def test_internal_stream_failure_is_a_json_exception_with_a_message():
    (message,) = decode(internal_stream_failure("Runtime stopped."))

    assert message.headers[":exception-type"] == "InternalStreamFailure"
    assert message.headers[":message-type"] == "exception"
    assert json.loads(message.payload) == {"Message": "Runtime stopped."}


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 1000, 100_000])
def test_botocore_parser_yields_parts_in_order_then_raises_the_model_stream_error(chunk_size):
    parts = [b"Hello", b", ", b"w\xc3\xb6rld", b"", b"\n" * 40]
    body = b"".join(payload_part(part) for part in parts)
    body += model_stream_error("Connection reset by the model.", "StreamBroken")

    stream = iter(parse_stream(slices(body, chunk_size)))
    events = [next(stream) for _ in parts]

    assert events == [{"PayloadPart": {"Bytes": part}} for part in parts]
    with pytest.raises(EventStreamError) as raised:
        next(stream)
    assert raised.value.response["Error"] == {
        "Code": "ModelStreamError",
        "Message": "Connection reset by the model.",
    }


def test_botocore_parser_raises_internal_stream_failure_by_name():
    body = payload_part(b"partial") + internal_stream_failure("Runtime stopped.")

    stream = iter(parse_stream([body]))

    assert next(stream) == {"PayloadPart": {"Bytes": b"partial"}}
    with pytest.raises(EventStreamError) as raised:
        next(stream)
    assert raised.value.response["Error"]["Code"] == "InternalStreamFailure"
    assert raised.value.response["Error"]["Message"] == "Runtime stopped."


def test_boto3_client_iterates_the_stream_and_raises_event_stream_error():
    parts = [b'{"token": "a"}\n{"tok', b'en": "b"}\n']
    body = b"".join(payload_part(part) for part in parts) + model_stream_error("Late.", "X")
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def answer(request, **kwargs):
        headers = {
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": "application/jsonlines",
            "x-Amzn-Invoked-Production-Variant": "AllTraffic",
        }
        return AWSResponse(request.url, 200, headers, ChunkedBody(slices(body, 5)))

    client.meta.events.register(f"before-send.sagemaker-runtime.{OPERATION}", answer)

    response = client.invoke_endpoint_with_response_stream(EndpointName="ep", Body=b"{}")
    received = []
    with pytest.raises(EventStreamError) as raised:
        for event in response["Body"]:
            received.append(event["PayloadPart"]["Bytes"])

    assert response["ContentType"] == "application/jsonlines"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert received == parts
    assert raised.value.response["Error"]["Code"] == "ModelStreamError"
