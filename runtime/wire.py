"""A lean HTTP/1.1 client for the router's hop to its own container processes.

The router's CPU per request bounds its throughput next to the model processes on a small
machine (make bench), and a general-purpose client spends most of it on features this hop never
needs. Here the peer is always our own runtime.container on loopback, answering with a
Content-Length; header values were already checked to be printable ASCII (no CR/LF). Each
connection is an asyncio protocol that parses the answer from its buffer in one go when it is
whole, rather than a stream read line by line. Streamed answers still go through aiohttp.
"""

import asyncio
from dataclasses import dataclass


class ConnectionLost(ConnectionError):
    """The container closed the connection or died before answering in full."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def parse_answer(buffer: bytearray) -> tuple[Answer, int] | None:
    """The answer at the start of `buffer` and its length in bytes, or None until it is whole."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as error:
        raise ConnectionLost(f"not an HTTP answer: {lines[0][:80]!r}") from error
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    stop = end + 4 + int(headers.get("content-length", "0"))
    if len(buffer) < stop:
        return None
    return Answer(status, headers, bytes(buffer[end + 4 : stop])), stop


class Connection(asyncio.Protocol):
    """One keep-alive connection to a container, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = parse_answer(self.buffer)
        except ConnectionLost as error:
            waiter.set_exception(error)
            return
        if parsed is not None:
            answer, used = parsed
            del self.buffer[:used]
            waiter.set_result(answer)

    def eof_received(self) -> bool:
        self.fail("the container closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"the container closed the connection ({exc})" if exc else "")

    def fail(self, reason: str) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(
                ConnectionLost(reason or "the container closed the connection mid-answer")
            )

    async def exchange(self, request: bytes) -> Answer:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Keep-alive connections to one container port, reused one request at a time each."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[Connection] = []
        self.closed = False

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        while self.idle:
            connection = self.idle.pop()
            if connection.lost:
                connection.close()
                continue
            try:
                return await self.exchange(connection, request)
            except ConnectionLost:
                if connection.buffer:
                    raise  # part of an answer came: the request may have run
                # An idle connection the container had closed (it restarted, or timed the
                # connection out) fails before a byte of answer: the request never ran, so one
                # retry on a fresh connection is safe.
                break
        _, connection = await asyncio.get_running_loop().create_connection(
            Connection, "127.0.0.1", self.port
        )
        return await self.exchange(connection, request)

    async def exchange(self, connection: Connection, request: bytes) -> Answer:
        keep = False
        try:
            answer = await connection.exchange(request)
            keep = answer.headers.get("connection", "").lower() != "close"
            return answer
        finally:
            # A request cut short (timeout, cancel) leaves its answer unread: never reuse it.
            if keep and not self.closed and not connection.lost and not connection.buffer:
                self.idle.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        """Close the idle connections; the container's process is stopped or replaced, and a
        connection it closed stays open here (CLOSE_WAIT) until we close ours."""
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()
