"""The router's front door: InvokeEndpoint answered without aiohttp's web layer, everything else
handed to it.

Every real-time invocation passes through the router, so what it costs per request is added to
every prediction, and on a small machine it takes CPU from the models themselves. aiohttp's web
layer (request and response objects, middlewares, URL dispatch) cost about 300 µs a request
here; this path parses the common shape of `POST /endpoints/{name}/invocations` itself, calls
the same Host.invoke, and writes the answer in one go (make bench: router CPU and p50 added).

It is deliberately narrow. Only a well-formed HTTP/1.1 POST to exactly that path, in printable
ASCII, with one Content-Length of at most 6 MB, addressed to this runtime (Host) and not from a
browser (no Origin, no cross-site fetch), no Transfer-Encoding or Expect, takes it. Anything else
(the control plane, streams, async invocations, /ping, a chunked or oversized body, a foreign
Host, a malformed request) hands the connection, with every byte read so far, to aiohttp's own
protocol, which answers it and the rest of that connection exactly as it always did.
"""

import asyncio
import json
import logging
import re
import socket
import time
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDict

from runtime.host import MAX_BODY, ApiError, Host
from runtime.server import checked_headers, invocation_response_headers, runtime_error_parts

log = logging.getLogger(__name__)

# SageMaker endpoint names: letters, digits and single hyphens, at most 63 characters.
INVOCATION_TARGET = re.compile(r"/endpoints/([A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/invocations")
# Control characters other than tab, and bytes beyond ASCII: aiohttp decides what those mean.
UNUSUAL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f-\xff]")
MAX_HEAD = 64 * 1024
PREFIX = b"POST /endpoints/"
# What a connection may send ahead while its invocation runs before reading stops.
BUFFER_LIMIT = 2 * MAX_BODY


class Invocation:
    """One request the fast path takes: the endpoint, its headers and its whole body."""

    __slots__ = ("body", "close", "endpoint", "headers")

    def __init__(self, endpoint: str, headers: CIMultiDict, body: bytes, close: bool):
        self.endpoint, self.headers, self.body, self.close = endpoint, headers, body, close


INCOMPLETE = object()


def parse(buffer: bytearray, allowed_hosts: set[str]) -> tuple[Invocation, int] | object | None:
    """The first request in `buffer` and how many bytes it took; INCOMPLETE if more bytes are
    needed; None if it is not one for the fast path (aiohttp must answer it)."""
    if not buffer.startswith(PREFIX[: len(buffer)] if len(buffer) < len(PREFIX) else PREFIX):
        return None
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None if len(buffer) > MAX_HEAD else INCOMPLETE
    head = bytes(buffer[:end])
    if UNUSUAL.search(head.replace(b"\r\n", b"")):
        return None
    lines = head.decode("ascii").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    target = INVOCATION_TARGET.fullmatch(parts[1])
    if target is None:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.lower()
        if not colon or not name or name != name.strip() or name in headers:
            return None  # obsolete folding, a space before the colon, a repeated header
        headers[name] = value.strip(" \t")
    length = headers.get("content-length", "")
    if (
        not length.isdigit()
        or int(length) > MAX_BODY
        or "transfer-encoding" in headers
        or "expect" in headers
        or headers.get("host", "") not in allowed_hosts
        or "origin" in headers
        or headers.get("sec-fetch-site") == "cross-site"
    ):
        return None
    start = end + 4
    stop = start + int(length)
    if len(buffer) < stop:
        return INCOMPLETE
    close = headers.get("connection", "").lower() == "close"
    return Invocation(target.group(1), headers, bytes(buffer[start:stop]), close), stop


class Clock:
    """The Date header, formatted once a second rather than once a request."""

    second = -1
    value = ""

    @classmethod
    def date(cls) -> str:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, formatdate(now, usegmt=True)
        return cls.value


def http_response(status: int, headers: dict[str, str], body: bytes, close: bool) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    lines.append(f"Date: {Clock.date()}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def answer(host: Host, request: Invocation) -> bytes:
    """InvokeEndpoint, as runtime.server.invoke answers it."""
    try:
        headers = checked_headers(request.headers)
        result = await host.invoke(request.endpoint, request.body, headers)
    except ApiError as error:
        body, error_headers = runtime_error_parts(error)
        error_headers["Content-Type"] = "application/json; charset=utf-8"
        return http_response(error.status, error_headers, json.dumps(body).encode(), request.close)
    except Exception:
        log.exception("InvokeEndpoint on %s failed", request.endpoint)
        body = json.dumps({"message": "The runtime failed to route the request; see its log."})
        failure = {"x-amzn-ErrorType": "InternalFailure", "Content-Type": "application/json"}
        return http_response(500, failure, body.encode(), request.close)
    return http_response(200, invocation_response_headers(result), result.body, request.close)


class Front(asyncio.Protocol):
    """One client connection: invocations answered here, one at a time and in order, until a
    request that is not one arrives; from then on aiohttp's protocol owns the connection."""

    def __init__(self, app: web.Application, web_server: web.Server):
        self.host: Host = app["host"]
        self.allowed_hosts: set[str] = app["allowed_hosts"]
        self.web_server = web_server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.delegate: asyncio.Protocol | None = None
        self.busy = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.delegate is not None:
            self.delegate.data_received(data)
            return
        self.buffer += data
        if not self.busy:
            self.next_request()
        elif len(self.buffer) > BUFFER_LIMIT and not self.paused and self.transport is not None:
            self.transport.pause_reading()  # requests sent ahead: read on once one is answered
            self.paused = True

    def next_request(self) -> None:
        parsed = parse(self.buffer, self.allowed_hosts)
        if parsed is INCOMPLETE:
            return
        if parsed is None:
            self.hand_over()
            return
        request, used = parsed  # type: ignore[misc]
        del self.buffer[:used]
        self.busy = True
        asyncio.get_running_loop().create_task(self.respond(request))

    async def respond(self, request: Invocation) -> None:
        response = await answer(self.host, request)
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # the caller left; the invocation still ran and was counted
        transport.write(response)
        self.busy = False
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if request.close:
            transport.close()
        elif self.buffer:
            self.next_request()

    def hand_over(self) -> None:
        """From here on aiohttp's protocol serves this connection, starting with the bytes
        already read."""
        self.delegate = self.web_server()
        self.delegate.connection_made(self.transport)
        data = bytes(self.buffer)
        self.buffer.clear()
        if data:
            self.delegate.data_received(data)

    def eof_received(self) -> bool | None:
        if self.delegate is not None:
            return self.delegate.eof_received()
        return None  # the transport closes; an answer in flight is dropped

    def connection_lost(self, exc: Exception | None) -> None:
        if self.delegate is not None:
            self.delegate.connection_lost(exc)
        self.transport = None

    def pause_writing(self) -> None:
        if self.delegate is not None:
            self.delegate.pause_writing()

    def resume_writing(self) -> None:
        if self.delegate is not None:
            self.delegate.resume_writing()


def run(app: web.Application, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
    """Serve `app` on host:port until SIGINT or SIGTERM, as web.run_app would, with Front in
    front of aiohttp's protocol; the app's cleanup (stopping every model process) runs last."""
    asyncio.set_event_loop(loop)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    server = None
    try:
        loop.run_until_complete(runner.setup())
        server = loop.run_until_complete(
            loop.create_server(lambda: Front(app, runner.server), host, port, reuse_address=True)
        )
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if server is not None:
            server.close()
        loop.run_until_complete(runner.cleanup())
        loop.close()
