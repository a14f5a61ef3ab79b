"""The router's client for its hop to container processes (runtime/wire.py), against a real
socket server whose behaviour each test sets: keep-alive reuse, a safe retry when an idle
connection was closed, and no reuse of a connection whose answer was cut short."""

import asyncio

import pytest

from runtime import wire

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nX-Extra: yes\r\nContent-Length: 3\r\n\r\n1.5"
)


class Container:
    """A stand-in container on loopback: it counts connections and requests, and answers each
    request with what `answer(number)` returns (None: close the connection without a word)."""

    def __init__(self, answer=lambda number: ANSWER):
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                self.closed_by_client += 1
                writer.close()
                return
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            self.requests.append(head + body)
            reply = self.answer(len(self.requests))
            if reply is None:
                writer.close()
                return
            if reply:
                writer.write(reply)
                await writer.drain()

    async def __aenter__(self) -> tuple["Container", wire.Pool]:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self, wire.Pool(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_answers_are_parsed_and_the_connection_is_kept_alive() -> None:
    async def scenario():
        async with Container() as (container, pool):
            first = await pool.post("/invocations", b"0.5,1", {"Content-Type": "text/csv"})
            second = await pool.post("/invocations", b"0.7,2", {"Content-Type": "text/csv"})
            return container, first, second

    container, first, second = run(scenario())

    assert (first.status, first.body) == (200, b"1.5")
    assert first.headers["content-type"] == "text/csv" and first.headers["x-extra"] == "yes"
    assert second.body == b"1.5"
    assert container.connections == 1
    assert container.requests[0].startswith(b"POST /invocations HTTP/1.1\r\n")
    assert container.requests[0].endswith(b"Content-Length: 5\r\n\r\n0.5,1")
    assert container.requests[1].endswith(b"0.7,2")


def test_an_idle_connection_the_container_closed_is_retried_on_a_new_one() -> None:
    async def scenario():
        async with Container() as (container, pool):
            await pool.post("/invocations", b"a", {})
            container.writers[0].close()  # the container restarts or times the connection out
            await asyncio.sleep(0.05)
            answer = await pool.post("/invocations", b"b", {})
            return container, answer

    container, answer = run(scenario())

    assert answer.body == b"1.5"
    assert container.connections == 2
    assert [request[-1:] for request in container.requests] == [b"a", b"b"]


def test_a_connection_closed_without_an_answer_after_the_request_is_retried_once() -> None:
    # The kept connection is closed by the container as the request arrives (keep-alive race):
    # no byte of answer came, so the request never ran; one retry on a fresh connection.
    async def scenario():
        async with Container(lambda number: None if number == 2 else ANSWER) as (container, pool):
            await pool.post("/invocations", b"a", {})
            answer = await pool.post("/invocations", b"b", {})
            return container, answer

    container, answer = run(scenario())

    assert answer.status == 200
    assert container.connections == 2


def test_an_answer_cut_short_is_an_error_and_is_not_retried() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"

    async def with_close():
        container = Container(lambda number: partial)
        async with container as (_, pool):
            task = asyncio.create_task(pool.post("/invocations", b"a", {}))
            await asyncio.sleep(0.1)
            container.writers[0].close()
            with pytest.raises(wire.ConnectionLost):
                await task
            return container

    container = run(with_close())

    assert len(container.requests) == 1  # it ran once, and was not sent again


def test_a_request_cut_short_by_a_timeout_never_lends_its_connection_again() -> None:
    slow = [True]

    async def scenario():
        container = Container(lambda number: b"" if slow[0] else ANSWER)
        async with container as (_, pool):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await pool.post("/invocations", b"a", {})
            slow[0] = False
            answer = await pool.post("/invocations", b"b", {})
            await asyncio.sleep(0.05)
            return container, answer

    container, answer = run(scenario())

    assert answer.body == b"1.5"
    assert container.connections == 2  # the first one's late answer can never be misread
    assert container.closed_by_client == 1


def test_connection_close_answers_and_close_end_the_connections() -> None:
    closing = ANSWER.replace(b"Content-Length", b"Connection: close\r\nContent-Length")

    async def scenario():
        container = Container(lambda number: closing if number == 1 else ANSWER)
        async with container as (_, pool):
            await pool.post("/invocations", b"a", {})
            await pool.post("/invocations", b"b", {})
            kept = len(pool.idle)
            pool.close()
            await asyncio.sleep(0.05)
            return container, kept

    container, kept = run(scenario())

    assert container.connections == 2
    assert kept == 1
    assert container.closed_by_client == 2


def test_a_container_that_is_not_listening_is_a_connection_error() -> None:
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await wire.Pool(port).post("/invocations", b"a", {})

    with pytest.raises(OSError):
        run(scenario())
