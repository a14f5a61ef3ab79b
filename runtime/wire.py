"""A lean HTTP/1.1 client for the router's hop to its own container processes.

The router's CPU per request bounds its throughput next to the model processes on a small
machine (make bench), and a general-purpose client spends most of it on features this hop never
needs. Here the peer is always our own runtime.container on loopback, answering with a
Content-Length; header values were already checked to be printable ASCII (no CR/LF). Streamed
answers still go through aiohttp.
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


class Pool:
    """Keep-alive connections to one container port, reused one request at a time each."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.closed = False

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        reused = bool(self.idle)
        try:
            return await self.exchange(path, body, headers)
        except ConnectionLost:
            if not reused:
                raise
            # An idle connection the container had closed (it restarted, or timed the
            # connection out) fails before a byte of answer: the request never ran, so one
            # retry on a fresh connection is safe.
            return await self.exchange(path, body, headers, fresh=True)

    async def exchange(
        self, path: str, body: bytes, headers: dict[str, str], fresh: bool = False
    ) -> Answer:
        if self.idle and not fresh:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        keep = False
        try:
            lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionLost("the container closed the connection")
            status = int(status_line.split(b" ", 2)[1])
            answer_headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n"):
                    break
                if not line:
                    raise ConnectionLost("the container closed the connection mid-answer")
                name, _, value = line.decode("latin-1").partition(":")
                answer_headers[name.strip().lower()] = value.strip()
            length = int(answer_headers.get("content-length", "0"))
            payload = await reader.readexactly(length)
            keep = answer_headers.get("connection", "").lower() != "close"
            return Answer(status, answer_headers, payload)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as error:
            raise ConnectionLost(str(error) or type(error).__name__) from error
        finally:
            if keep and not self.closed:  # a request in flight at close() ends its connection
                self.idle.append((reader, writer))
            else:
                writer.close()

    def close(self) -> None:
        """Close the idle connections; the container's process is stopped or replaced, and a
        connection it closed stays open here (CLOSE_WAIT) until we close ours."""
        self.closed = True
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
