"""The router's fast path for InvokeEndpoint (runtime/front.py): what it takes, and that every
other request, on the same connection too, is still answered by aiohttp exactly as before."""

import asyncio
import json
import socket

import pytest

from runtime import front
from runtime.host import MAX_BODY

HOSTS = {"127.0.0.1:8081", "127.0.0.1"}


def raw(head: str, body: bytes = b"") -> bytearray:
    return bytearray(head.replace("\n", "\r\n").encode("latin-1") + body)


def invocation(
    extra: str = "", body: bytes = b"0.5,1", target: str = "/endpoints/iris/invocations"
):
    return raw(
        f"POST {target} HTTP/1.1\nHost: 127.0.0.1:8081\nContent-Type: text/csv\n"
        f"{extra}Content-Length: {len(body)}\n\n",
        body,
    )


def test_a_plain_invocation_takes_the_fast_path() -> None:
    buffer = invocation("X-Amzn-SageMaker-Target-Variant: blue\n") + b"GET /ping"

    request, used = front.parse(buffer, HOSTS)

    assert request.endpoint == "iris"
    assert request.body == b"0.5,1"
    assert request.headers["x-amzn-sagemaker-target-variant"] == "blue"
    assert request.headers.get("X-AMZN-SAGEMAKER-TARGET-VARIANT") == "blue"
    assert "Content-Type" in request.headers
    assert not request.close
    assert buffer[used:] == b"GET /ping"


def test_connection_close_is_noted() -> None:
    request, _ = front.parse(invocation("Connection: close\n"), HOSTS)

    assert request.close


@pytest.mark.parametrize(
    "buffer",
    [
        invocation()[:20],  # the head is still arriving
        invocation()[:-2],  # the body is still arriving
    ],
)
def test_a_partial_request_waits_for_more(buffer) -> None:
    assert front.parse(buffer, HOSTS) is front.INCOMPLETE


@pytest.mark.parametrize(
    ("buffer", "why"),
    [
        (bytearray(b"GET /pi"), "another method, known from its first bytes"),
        (raw("GET /ping HTTP/1.1\nHost: 127.0.0.1\n\n"), "not an invocation"),
        (invocation(target="/endpoints/iris/invocations-response-stream"), "a stream"),
        (invocation(target="/endpoints/iris/async-invocations"), "async"),
        (invocation(target="/endpoints/iris/invocations?x=1"), "a query string"),
        (invocation(target="/endpoints/ir%69s/invocations"), "percent-encoding"),
        (invocation(target="/endpoints/-iris/invocations"), "not an endpoint name"),
        (invocation().replace(b"HTTP/1.1", b"HTTP/1.0"), "HTTP/1.0"),
        (invocation("Transfer-Encoding: chunked\n"), "a chunked body"),
        (invocation("Expect: 100-continue\n"), "Expect"),
        (invocation("Content-Length: 5\n"), "a repeated header"),
        (invocation("X-Long: a\n  folded\n"), "obsolete line folding"),
        (invocation("X-Odd : a\n"), "a space before the colon"),
        (invocation("X-Odd: a\x01b\n"), "a control character"),
        (invocation("X-Odd: caf\xe9\n"), "a byte beyond ASCII"),
        (invocation("Origin: http://127.0.0.1:8000\n"), "a browser"),
        (invocation("Sec-Fetch-Site: cross-site\n"), "a cross-site fetch"),
        (invocation().replace(b"Host: 127.0.0.1:8081", b"Host: evil.example"), "a foreign Host"),
        (invocation().replace(b"Content-Length: 5", b"Content-Length: +5"), "a signed length"),
        (invocation().replace(b"Content-Length: 5\r\n", b""), "no length"),
        (
            invocation().replace(b"Content-Length: 5", f"Content-Length: {MAX_BODY + 1}".encode()),
            "over 6 MB",
        ),
        (raw("POST /endpoints/iris/invocations HTTP/1.1\nX: " + "a" * 70_000), "a head over 64 KB"),
    ],
)
def test_anything_unusual_is_left_to_aiohttp(buffer, why) -> None:
    assert front.parse(buffer, HOSTS) is None, why


def exchange(sock: socket.socket, data: bytes, answers: int = 1) -> list[tuple[int, dict, bytes]]:
    """Send `data`, then read `answers` HTTP answers (each with a Content-Length)."""
    sock.sendall(data)
    pending, results = b"", []
    while len(results) < answers:
        while b"\r\n\r\n" not in pending:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(results)} answers"
            pending += chunk
        head, pending = pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(pending) < length:
            pending += sock.recv(65536)
        results.append((int(lines[0].split()[1]), headers, pending[:length]))
        pending = pending[length:]
    return results


def post(name: str, port: int, extra: str = "") -> bytes:
    return (
        f"POST /endpoints/{name}/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{extra}Content-Length: 2\r\n\r\n{{}}"
    ).encode()


def connect(runtime_url: str) -> tuple[socket.socket, int]:
    port = int(runtime_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10), port


def message(answer: tuple[int, dict, bytes]) -> str:
    return json.loads(answer[2])["message"]


def test_answers_come_back_in_order_on_one_connection(runtime_url) -> None:
    sock, port = connect(runtime_url)
    with sock:
        answers = exchange(sock, post("first", port) + post("second", port), answers=2)

    assert [status for status, _, _ in answers] == [400, 400]
    assert [headers["x-amzn-errortype"] for _, headers, _ in answers] == ["ValidationError"] * 2
    assert message(answers[0]) == "Endpoint first of account 000000000000 not found."
    assert message(answers[1]) == "Endpoint second of account 000000000000 not found."


def test_a_connection_moves_to_aiohttp_at_its_first_other_request(runtime_url) -> None:
    sock, port = connect(runtime_url)
    ping = f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with sock:
        fast = exchange(sock, post("one", port))[0]
        pinged = exchange(sock, ping)[0]
        after = exchange(sock, post("two", port))[0]

    assert fast[0] == 400 and message(fast).startswith("Endpoint one ")
    assert pinged[0] == 200 and json.loads(pinged[2])["status"] == "ok"
    # aiohttp answers the same request with the same status, error type and message.
    assert after[0] == 400
    assert after[1]["x-amzn-errortype"] == "ValidationError"
    assert message(after) == "Endpoint two of account 000000000000 not found."


def test_a_chunked_invocation_is_answered_by_aiohttp_the_same_way(runtime_url) -> None:
    sock, port = connect(runtime_url)
    chunked = (
        f"POST /endpoints/three/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    with sock:
        answer = exchange(sock, chunked)[0]

    assert answer[0] == 400
    assert message(answer) == "Endpoint three of account 000000000000 not found."


def test_connection_close_closes_after_the_answer(runtime_url) -> None:
    sock, port = connect(runtime_url)
    with sock:
        answer = exchange(sock, post("four", port, "Connection: close\r\n"))[0]
        rest = sock.recv(100)

    assert answer[0] == 400
    assert answer[1]["connection"] == "close"
    assert rest == b""


def test_a_malformed_invocation_gets_aiohttps_400(runtime_url) -> None:
    sock, port = connect(runtime_url)
    bad = (
        f"POST /endpoints/five/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ).encode()
    with sock:
        sock.sendall(bad)
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]

    assert status_line.split(b" ")[1] == b"400"


class Transport:
    """What Front uses of an asyncio transport, recording what it is asked to do."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused = False
        self.closed = False

    def get_extra_info(self, name: str) -> None:
        return None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_reading_pauses_while_a_client_sends_far_ahead_of_its_answers() -> None:
    from runtime.host import Invocation as Result

    class SlowHost:
        def __init__(self) -> None:
            self.release = asyncio.Event()
            self.calls = 0

        async def invoke(self, name, body, headers):
            self.calls += 1
            await self.release.wait()
            return Result(b"ok", "text/plain", "AllTraffic", "", 0.001)

    async def scenario():
        host = SlowHost()
        protocol = front.Front({"host": host, "allowed_hosts": HOSTS}, web_server=None)
        transport = Transport()
        protocol.connection_made(transport)
        big = bytes(MAX_BODY)
        protocol.data_received(bytes(invocation(body=b"first")))
        await asyncio.sleep(0)
        for _ in range(3):  # 18 MB sent ahead while the first invocation runs
            protocol.data_received(bytes(invocation(body=big)))
        paused_while_busy = transport.paused
        host.release.set()
        await asyncio.sleep(0.01)
        return host, transport, paused_while_busy

    host, transport, paused_while_busy = asyncio.run(scenario())

    assert paused_while_busy
    assert not transport.paused  # resumed once the first answer was written
    assert transport.written[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.written[0].endswith(b"\r\n\r\nok")
    assert host.calls >= 2  # and the requests sent ahead are being answered in turn
