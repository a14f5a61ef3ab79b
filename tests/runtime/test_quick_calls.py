"""Quick calls run on the container's event loop (runtime/container.py, QUICK_CALL_S): after a
streak of quick calls an image that allows it skips the hand-off to a worker thread; a slow
call, a large body, or an image that does not allow it (a user's inference.py) keeps threads."""

import asyncio
import threading
import time

from aiohttp.test_utils import TestClient, TestServer

from runtime import container
from runtime.images import ModelError
from runtime.images.base import Image


class Recorder(Image):
    """Answers with nothing; notes the thread of each call. A body `slow` takes 5 ms, a body
    `refuse` is a bad request."""

    inline_when_quick = True

    def __init__(self) -> None:
        super().__init__(None, {})
        self.threads: list[int] = []

    def invoke(self, body, content_type, accept, custom_attributes=""):
        self.threads.append(threading.get_ident())
        if body == b"slow":
            time.sleep(0.005)
        if body == b"refuse":
            raise ModelError(400, "refused")
        return b"ok", "text/plain"


def calls(model: Image, bodies: list[bytes]) -> tuple[list[int], int, list[int]]:
    """Post each body to a container serving `model`: the threads its calls ran on, the
    event loop's thread, and the answers' statuses."""

    async def run() -> tuple[int, list[int]]:
        app = container.build_app("sklearn", None, multi_model=False, standby=True)
        app[container.STANDBY] = False
        app[container.MODELS][""] = model
        statuses = []
        async with TestClient(TestServer(app)) as client:
            for body in bodies:
                answer = await client.post("/invocations", data=body)
                await answer.read()
                statuses.append(answer.status)
        return threading.get_ident(), statuses

    loop_thread, statuses = asyncio.run(run())
    return model.threads, loop_thread, statuses


def test_after_a_streak_of_quick_calls_they_run_on_the_event_loop() -> None:
    streak = container.QUICK_STREAK
    threads, loop, statuses = calls(Recorder(), [b"x"] * (streak + 5))
    assert statuses == [200] * (streak + 5)
    assert loop not in threads[:streak]  # worker threads until the streak is built
    assert threads[streak:] == [loop] * 5


def test_a_slow_call_sends_the_next_ones_back_to_worker_threads() -> None:
    streak = container.QUICK_STREAK
    threads, loop, _ = calls(Recorder(), [b"x"] * streak + [b"slow"] + [b"x"] * 3)
    assert threads[streak] == loop  # the slow call itself was expected to be quick
    assert loop not in threads[streak + 1 :]


def test_a_large_body_goes_to_a_worker_thread_even_when_calls_are_quick() -> None:
    streak = container.QUICK_STREAK
    large = b"1" * (container.QUICK_BODY_BYTES + 1)
    threads, loop, _ = calls(Recorder(), [b"x"] * streak + [large, b"x"])
    assert threads[streak] != loop
    assert threads[streak + 1] == loop  # a large body is not a slow call


def test_an_image_that_does_not_allow_it_always_uses_worker_threads() -> None:
    model = Recorder()
    model.inline_when_quick = False
    threads, loop, _ = calls(model, [b"x"] * (container.QUICK_STREAK + 5))
    assert loop not in threads


def test_a_model_error_on_the_event_loop_is_still_the_models_answer() -> None:
    streak = container.QUICK_STREAK
    threads, loop, statuses = calls(Recorder(), [b"x"] * streak + [b"refuse", b"x"])
    assert threads[streak:] == [loop, loop]
    assert statuses[streak:] == [400, 200]
