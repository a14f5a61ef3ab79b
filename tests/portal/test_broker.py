"""The laptop broker hands a consumer only whole messages, however fast they are sent."""

import threading
import time
from queue import Empty

from kombu import Connection

from portal.broker import Transport
from portal.celery import app


def test_the_portal_sends_tasks_through_the_whole_message_transport():
    """The laptop broker's URL scheme names our transport; a Redis URL (CI) stays Redis."""
    with Connection("filesystem://") as connection:
        assert isinstance(connection.transport, Transport)
    with Connection("redis://127.0.0.1:6379/0") as connection:
        assert not isinstance(connection.transport, Transport)
    if app.conf.broker_url.startswith("filesystem://"):
        with app.connection_for_write() as connection:
            assert isinstance(connection.transport, Transport)


def test_a_consumer_never_reads_a_message_still_being_written(tmp_path):
    for folder in ("queue", "control"):
        (tmp_path / folder).mkdir()
    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
    }
    body = "x" * 2_000_000  # a long write: kombu's own transport is read half-way most times
    sent = 40

    def produce() -> None:
        with Connection(transport=Transport, transport_options=options) as connection:
            queue = connection.SimpleQueue("race")
            for _ in range(sent):
                queue.put(body)

    whole = []
    with Connection(transport=Transport, transport_options=options) as connection:
        queue = connection.SimpleQueue("race")
        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + 60
        while len(whole) < sent and time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.01)
            except Empty:
                continue
            whole.append(message.payload == body)
            message.ack()
        producer.join()

    assert whole == [True] * sent
