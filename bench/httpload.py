"""A lean HTTP/1.1 load generator for the benchmarks: closed and open loop, keep-alive, asyncio.

On a 2-core machine the load generator shares the CPU with what it measures. Python threads on
http.client spend 400-700 us of CPU a request (requests more), GIL hand-offs included, which the
system under test then competes with, so a ratio measured that way is partly the client's. Here
each client is a coroutine on a keep-alive connection in one uvloop thread, at tens of
microseconds a request; the benchmarks print what it spent beside the other processes' CPU.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvloop

# What a request's answer must satisfy: None if it is fine, else the error to count.
Check = Callable[[bytes, bytes], str | None]


def status_200(status: bytes, body: bytes) -> str | None:
    return None if status.startswith(b"HTTP/1.1 200") else f"HTTP {status[9:12].decode()}"


@dataclass
class Outcome:
    """Milliseconds of each request that passed its check, the errors, and the wall time."""

    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0


def request_bytes(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", **headers, "Content-Length": str(len(body))}
    lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
) -> tuple[bytes, bytes, bool]:
    """Send one request, read its whole answer (Content-Length, chunked, or up to the close of
    a `Connection: close` answer): (status, body, whether the connection may carry another)."""
    writer.write(head)
    status = await reader.readline()
    if not status:
        raise ConnectionError("the server closed the connection")
    length, chunked, close = None, False, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        parts = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        return status, b"".join(parts), not close
    if length is None:
        if not close:
            raise ValueError("an answer with neither a length nor chunks kept the connection")
        return status, await reader.read(), False
    return status, await reader.readexactly(length), not close


async def timed(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    head: bytes,
    check: Check,
    outcome: Outcome,
) -> bool:
    """One request on `connection`, recorded in `outcome`; whether the connection is reusable
    (the server may close it after any answer, saying so with `Connection: close`)."""
    started = time.perf_counter()
    try:
        status, body, reusable = await exchange(*connection, head)
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        outcome.errors.append(type(error).__name__)
        return False
    error = check(status, body)
    if error:
        outcome.errors.append(error)
    else:
        outcome.samples.append((time.perf_counter() - started) * 1000)
    return reusable


def closed_loop(
    port: int,
    heads: list[bytes],
    clients: int,
    *,
    count: int = 0,
    seconds: float = 0.0,
    check: Check = status_200,
) -> Outcome:
    """`clients` connections, each sending its next request when the last one is answered,
    client n sending heads[n % len(heads)]: `count` requests in all, or for `seconds`."""
    outcome = Outcome()

    async def client(number: int, stop: float) -> None:
        head = heads[number % len(heads)]
        connection = await asyncio.open_connection("127.0.0.1", port)
        sent = 0
        while (count and sent < count // clients) or (seconds and time.perf_counter() < stop):
            sent += 1
            if not await timed(connection, head, check, outcome):
                connection[1].close()
                connection = await asyncio.open_connection("127.0.0.1", port)
        connection[1].close()

    async def run() -> None:
        started = time.perf_counter()
        await asyncio.gather(*(client(n, started + seconds) for n in range(clients)))
        outcome.seconds = time.perf_counter() - started

    uvloop.run(run())
    return outcome


def open_loop(
    port: int,
    heads: list[bytes],
    rate: float,
    seconds: float,
    *,
    check: Check = status_200,
    seed: int = 7,
) -> Outcome:
    """Poisson arrivals at `rate` a second for `seconds`, each sent at its time whatever is in
    flight, on an idle keep-alive connection or a new one; arrival n sends heads[n % len]."""
    outcome = Outcome()
    chooser = random.Random(seed)  # noqa: S311 (arrival times, not security)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        idle: list[tuple[float, tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = []

        async def one(head: bytes) -> None:
            # gunicorn closes a kept-alive connection idle for its keepalive (2 s): never reuse
            # one idle for over a second, or the request would race the server's close.
            while idle and loop.time() - idle[-1][0] > 1.0:
                idle.pop()[1][1].close()
            if idle:
                connection = idle.pop()[1]
            else:
                connection = await asyncio.open_connection("127.0.0.1", port)
            if await timed(connection, head, check, outcome):
                idle.append((loop.time(), connection))
            else:
                connection[1].close()

        started = loop.time()
        next_at, number, tasks = started, 0, []
        while next_at < started + seconds:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            tasks.append(asyncio.create_task(one(heads[number % len(heads)])))
            number += 1
            next_at += chooser.expovariate(rate)
        await asyncio.gather(*tasks)
        outcome.seconds = loop.time() - started
        for _, (_, writer) in idle:
            writer.close()

    uvloop.run(run())
    return outcome
