"""kombu's filesystem transport, the broker `make run` uses, with messages that appear whole.

kombu creates a message's file in the queue folder and then writes it, while a consumer takes
any file there without waiting for the writer's lock: it can read a message empty or cut, and
the worker then dies on "Expecting value: line 1 column 1" (celery/kombu#1551; `make soak` met
it after 7 minutes). Here a message is written under a name no queue matches and renamed into
place once complete, which is atomic.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        # kombu's own name: consumers take messages in the order of their names.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = f"{path}.partial"  # ends in no "<queue>.msg": no consumer takes it
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as error:
            raise ChannelError(f"Cannot add file {path!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
