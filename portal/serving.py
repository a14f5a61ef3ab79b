"""Gunicorn's thread worker with two lanes, so pages stay quick while models are busy.

A playground invocation holds a thread for as long as the model takes (an LLM stream, seconds),
and with one FIFO queue 50 people prompting put every page behind 50 invocations (reliability
goal R6: dashboard pages p95 < 300 ms while 50 invocations are in flight). Here each request is
classified from its request line, read with MSG_PEEK before a thread takes it, as *bulk*
(invocations: POST under /playground/) or *interactive* (everything else). Interactive requests
go first, and bulk ones may hold at most `threads - reserved` threads, so a page never waits for
a model. Nothing is consumed by the peek: gunicorn parses the request as usual.

Across processes, an invocation goes to a process that has none. gunicorn's processes share
one listening socket and whichever wakes first accepts, so with keep-alive connections two
invocations often land on one process: they share its GIL while the other process idles (make
loadtest: 2 clients got no more done than 1). Here a process running an invocation stops
watching the listener and takes a new connection only once it has waited `HANDOFF_WAIT_S`
unclaimed (every process busy), and an invocation's answer closes its connection
(`Connection: close`), so the next one is dispatched afresh. Pages keep their connections.

Use it with `--worker-class portal.serving.PriorityThreadWorker` (gunicorn.conf.py sets it).
"""

from __future__ import annotations

import errno
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, TConn, ThreadWorker

BULK_PREFIXES = (b"POST /playground/",)
PEEK_BYTES = 64
# How long a connection waits for a process with no invocation before a busy one takes it. Up
# to this, waiting connections are served first come, first served as processes free up (make
# loadtest, 50 clients: p99/p50 1.3 with 20 ms, 2.1 with 2 ms); a page on a new connection
# while every process is busy waits at most this long.
HANDOFF_WAIT_S = 0.02


def is_bulk(sock: socket.socket) -> bool:
    """Whether the request waiting on `sock` is an invocation. Unknown (no bytes yet, TLS,
    anything unreadable) counts as interactive: being quick is never wrong for one request."""
    try:
        head = sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (OSError, ValueError):
        return False
    return head.startswith(BULK_PREFIXES)


class LanedExecutor:
    """A fixed pool of threads taking interactive work before bulk work, with at most
    `bulk_limit` threads on bulk work at once. Only the parts gunicorn uses of
    concurrent.futures.Executor: submit and shutdown."""

    def __init__(self, threads: int, bulk_limit: int, classify: Callable[..., bool]) -> None:
        self.classify = classify
        self.bulk_limit = max(1, min(bulk_limit, threads))
        self.interactive: deque = deque()
        self.bulk: deque = deque()
        self.bulk_running = 0
        self.stopping = False
        self.condition = threading.Condition()
        self.threads = [
            threading.Thread(target=self._work, name=f"lane-{number}", daemon=True)
            for number in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, function: Callable, *arguments: object) -> Future:
        future: Future = Future()
        bulk = self.classify(*arguments)
        with self.condition:
            if self.stopping:
                raise RuntimeError("cannot schedule new work after shutdown")
            (self.bulk if bulk else self.interactive).append((future, function, arguments))
            self.condition.notify()
        return future

    def _next(self) -> tuple[Future, Callable, tuple, bool] | None:
        with self.condition:
            while True:
                if self.interactive:
                    return (*self.interactive.popleft(), False)
                if self.bulk and self.bulk_running < self.bulk_limit:
                    self.bulk_running += 1
                    return (*self.bulk.popleft(), True)
                if self.stopping:
                    return None
                self.condition.wait()

    def _work(self) -> None:
        while (task := self._next()) is not None:
            future, function, arguments, bulk = task
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function(*arguments))
                    except BaseException as error:  # noqa: BLE001 (gunicorn reads the future)
                        future.set_exception(error)
            finally:
                if bulk:
                    with self.condition:
                        self.bulk_running -= 1
                        self.condition.notify()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self.condition:
            self.stopping = True
            if cancel_futures:
                for future, _, _ in (*self.interactive, *self.bulk):
                    future.cancel()
                self.interactive.clear()
                self.bulk.clear()
            self.condition.notify_all()
        if wait:
            for thread in self.threads:
                thread.join()


class PriorityThreadWorker(ThreadWorker):
    """gthread with the two lanes above. One thread (of at least two) is kept for pages.

    gthread hands a new connection to a thread at once, before its request has arrived, so
    there would be nothing to peek at: here a new connection waits on the poller until it is
    readable, as gthread's own deferred connections do."""

    reserved_for_pages = 1
    invocations = 0  # bulk requests queued or running here; read and written by the main thread
    waiting_since = 0.0  # when the listener was first seen with a connection nobody took

    def enqueue_req(self, connection: TConn) -> None:
        connection.bulk = is_bulk(connection.sock)
        if connection.bulk:
            self.invocations += 1
            self.set_accept_enabled(False)  # gunicorn's loop enables it again once idle
        super().enqueue_req(connection)

    def finish_request(self, connection: TConn, future: Future) -> None:
        if getattr(connection, "bulk", False):
            connection.bulk = False
            self.invocations -= 1
        super().finish_request(connection, future)

    def handle_request(self, request: object, connection: TConn) -> bool:
        if getattr(connection, "bulk", False):
            request.must_close = True  # gunicorn answers "Connection: close", then closes
        return super().handle_request(request, connection)

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn's loop enables accepting whenever it has room: not while an invocation
        runs here."""
        super().set_accept_enabled(enabled and not self.invocations)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """While busy, look at the listener every HANDOFF_WAIT_S: a connection seen waiting
        twice in a row found no idle process, and this one takes it (a page must not wait
        for invocations to end)."""
        if self.invocations and self.alive:
            timeout = min(timeout, HANDOFF_WAIT_S)
            waiting = [
                listener for listener in self.sockets if select.select([listener], [], [], 0)[0]
            ]
            now = time.monotonic()
            if not waiting:
                self.waiting_since = 0.0
            elif not self.waiting_since:
                self.waiting_since = now
            elif now - self.waiting_since >= HANDOFF_WAIT_S:
                self.waiting_since = 0.0
                for listener in waiting:
                    self.accept(listener)
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        connection = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        connection.timeout = time.monotonic() + DEFAULT_WORKER_DATA_TIMEOUT + self.cfg.keepalive
        self.pending_conns.append(connection)
        self.poller.register(
            connection.sock,
            selectors.EVENT_READ,
            partial(self.on_pending_socket_readable, connection),
        )

    def get_thread_pool(self) -> LanedExecutor:
        threads = self.cfg.threads
        bulk_limit = threads - self.reserved_for_pages if threads > 1 else 1
        return LanedExecutor(threads, bulk_limit, classify=lambda connection: connection.bulk)
