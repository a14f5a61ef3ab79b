"""Chat turns stream as server-sent events from the provider's response stream, on a real local
runtime: tokens as they come, timings kept, and a closed connection stops the model."""

import importlib.util
import json

import pytest
from django.urls import reverse

from playground.models import Invocation

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
needs_llm = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is optional: make llm installs it",
)


def chat_turn(client, endpoint, **fields):
    data = {
        "endpoint": endpoint.pk,
        "system": "You are terse.",
        "messages": "[]",
        "prompt": "Count from one to twenty in words.",
        "max_new_tokens": 48,
        "temperature": 0,
        "top_p": 0.9,
        "stop": "",
    } | fields
    return client.post(reverse("playground:stream"), data)


def events(response):
    """(event, data) pairs as the browser's reader sees them."""
    buffer = ""
    for chunk in response.streaming_content:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            lines = dict(line.split(": ", 1) for line in raw.splitlines())
            yield lines["event"], json.loads(lines["data"])


def leave(response) -> None:
    """What the server does when the browser goes away (Stop): close the response's iterator.
    The test client wraps it so that closing it closes the response the way a WSGI server
    does, while keeping the test's database connection open."""
    response._iterator.close()


def test_a_model_that_refuses_the_request_answers_with_its_message(client_for, deployed):
    tools = deployed("text-tools")["text-tools"]

    response = chat_turn(client_for("engineer"), tools, target_container="sentiment")

    assert response.status_code == 424
    assert "'text'" in response.json()["message"]  # the KeyError inside the model
    assert Invocation.objects.get().error_code == "ModelError"


def test_a_bad_chat_form_answers_with_what_to_fix(client_for, deployed):
    tools = deployed("text-tools")["text-tools"]

    response = chat_turn(client_for("engineer"), tools, temperature=5, messages="{}")

    message = response.json()["message"]
    assert response.status_code == 400
    assert "Temperature: Ensure this value is less than or equal to 2" in message
    assert "The conversation is not a list" in message


@needs_llm
def test_tokens_stream_as_events_and_the_turn_is_timed(client_for, deployed):
    chat = deployed("chat")["chat"]

    response = chat_turn(client_for("engineer"), chat)
    received = list(events(response))

    names = [name for name, _ in received]
    assert names[0] == "started" and names[-1] == "done"
    tokens = [data for name, data in received if name == "token"]
    assert len(tokens) > 5 and "".join(tokens).strip()
    row = Invocation.objects.get()
    assert row.state == "done" and row.tokens == len(tokens)
    assert row.ttft_ms > 0 and row.tokens_per_second > 0 and row.total_ms >= row.ttft_ms
    assert row.variant == "AllTraffic"  # as the provider says, not as the form asked


@needs_llm
def test_closing_the_stream_stops_the_model_and_keeps_the_answer_so_far(client_for, deployed):
    chat = deployed("chat")["chat"]
    client = client_for("engineer")

    response = chat_turn(client, chat, max_new_tokens=400, prompt="Tell a long story.")
    stream = events(response)
    first = [next(stream) for _ in range(4)]
    leave(response)
    after = chat_turn(client, chat, max_new_tokens=8, prompt="Say hi.")
    answered = list(events(after))

    row = Invocation.objects.order_by("pk").first()
    assert [name for name, _ in first] == ["started", "token", "token", "token"]
    assert row.state == "stopped" and row.error_message.startswith("Stopped after")
    assert row.response_size > 0
    # The model was free at once for the next request: it had stopped generating.
    assert answered[-1][0] == "done"
