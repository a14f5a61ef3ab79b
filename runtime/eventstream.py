"""AWS event stream framing (application/vnd.amazon.eventstream), as
InvokeEndpointWithResponseStream answers.

Each message is: total length and headers length (uint32 big-endian), a CRC32 of those eight
bytes, the headers, the payload, and a CRC32 of everything before it. botocore's
`EventStreamBuffer` reads these frames back, and its rest-json event parser turns them into
`{'PayloadPart': {'Bytes': b'...'}}` or raises `EventStreamError`.
"""

import json
import struct
import zlib

STRING_HEADER = 7
PRELUDE_LENGTH = 12
CRC_LENGTH = 4
MAX_HEADER_NAME_BYTES = 255
MAX_HEADER_VALUE_BYTES = 32767
# The event stream specification caps a whole message at 16 MiB; botocore refuses payloads above
# 24 MiB. Staying under the specification keeps every client able to read what we send.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def encode_header(name: str, value: str) -> bytes:
    """One header: name length (uint8), name, type 7 (string), value length (uint16), value."""
    name_bytes = name.encode("utf-8")
    value_bytes = value.encode("utf-8")
    if not 0 < len(name_bytes) <= MAX_HEADER_NAME_BYTES:
        raise ValueError(f"Header name {name!r} must be 1 to 255 bytes of UTF-8.")
    # The format allows 65535 in two bytes, but the specification limits strings to 32767.
    if len(value_bytes) > MAX_HEADER_VALUE_BYTES:
        raise ValueError(f"Header {name!r} has a value over 32767 bytes of UTF-8.")
    return (
        struct.pack(">B", len(name_bytes))
        + name_bytes
        + struct.pack(">BH", STRING_HEADER, len(value_bytes))
        + value_bytes
    )


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message carrying string headers and a raw payload."""
    header_bytes = b"".join(encode_header(name, value) for name, value in headers.items())
    total_length = PRELUDE_LENGTH + len(header_bytes) + len(payload) + CRC_LENGTH
    if total_length > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"An event stream message may be at most {MAX_MESSAGE_BYTES} bytes; "
            f"this one would be {total_length}. Send the payload in smaller parts."
        )
    prelude = struct.pack(">II", total_length, len(header_bytes))
    prelude_crc = struct.pack(">I", zlib.crc32(prelude))
    message = prelude + prelude_crc + header_bytes + payload
    return message + struct.pack(">I", zlib.crc32(message))


def payload_part(data: bytes) -> bytes:
    """A PayloadPart event whose payload is `data` itself.

    PayloadPart's only member, Bytes, is a blob marked `eventpayload` in botocore's model, so
    botocore hands the message payload over untouched: no JSON and no base64 around it.
    """
    headers = {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    return encode_message(headers, data)


def exception_message(exception_type: str, members: dict[str, str]) -> bytes:
    """A modelled exception event: botocore matches `:exception-type` to a member of the
    ResponseStream shape and reads `Message` from the JSON payload."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps(members).encode("utf-8"))


def model_stream_error(message: str, error_code: str) -> bytes:
    """ModelStreamError: the model failed mid-stream. SageMaker's codes are
    `ModelInvocationTimeExceeded` and `StreamBroken`."""
    return exception_message("ModelStreamError", {"Message": message, "ErrorCode": error_code})


def internal_stream_failure(message: str) -> bytes:
    """InternalStreamFailure: the stream failed for a reason of the runtime's own."""
    return exception_message("InternalStreamFailure", {"Message": message})
