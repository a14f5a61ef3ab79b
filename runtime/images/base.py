"""What every serving image implements, and the error a model reports to its caller."""

from collections.abc import Iterator, Mapping
from pathlib import Path


class ModelError(Exception):
    """The model refused or failed a request. `status` is the HTTP status the container answers
    (4xx for bad input, 5xx for a failure); SageMaker relays it to the caller as a ModelError
    carrying OriginalStatusCode and OriginalMessage."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Image:
    """A serving image: loads one model from `model_dir` once, then answers invocations.

    Instances live inside a container process (runtime.container), one per loaded model: a
    single-model container holds one, a multi-model container one per TargetModel loaded.
    `invoke` runs in a worker thread, so it may block and may run concurrently with itself.
    """

    #: Whether the image answers `invoke_stream` token by token (LLMs) or only as a whole.
    streams = False
    #: Whether `invoke` may run on the container's event loop once its calls prove quick
    #: (runtime.container.QUICK_CALL_S). Only for images whose code we wrote: a user's
    #: inference.py may block or run an event loop of its own, so it keeps worker threads.
    inline_when_quick = False
    #: How many calls in a row finished under QUICK_CALL_S (written by the container).
    quick_calls = 0

    def __init__(self, model_dir: Path, environment: Mapping[str, str]):
        self.model_dir = model_dir
        self.environment = environment

    @classmethod
    def preload(cls) -> None:
        """Import the image's heavy libraries before the container reports ready, so loading a
        model later (a multi-model target, an adopted spare) pays only for the model."""

    def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> tuple[bytes, str]:
        """Answer one request: (response body, response content type). Raise ModelError."""
        raise NotImplementedError

    def invoke_stream(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> Iterator[bytes]:
        """Answer one request as a sequence of byte chunks. Images that do not stream send
        their whole answer as one chunk."""
        answer, _ = self.invoke(body, content_type, accept, custom_attributes)
        yield answer

    def close(self) -> None:
        """Free what the model holds (called when a multi-model container unloads it)."""
