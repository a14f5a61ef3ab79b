"""The demo LLM on a real runtime: prompted and streamed through boto3's response-stream API."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.runtime.test_endpoints import deploy

pytest.importorskip("llama_cpp", reason="llama-cpp-python is optional: make llm installs it")
pytestmark = pytest.mark.integration

CONTAINER = {"Image": "llm", "Environment": {"LLM_MODEL": "smollm2", "LLM_CONTEXT": "1024"}}


@pytest.fixture
def chat(aws):
    sagemaker, runtime = aws
    described = deploy(sagemaker, "chat", {"PrimaryContainer": CONTAINER})
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return runtime


def test_llm_answers_sagemakers_generated_text_shape(chat) -> None:
    request = {
        "inputs": "What is the capital of France?",
        "parameters": {"max_new_tokens": 16, "do_sample": False},
    }

    answer = chat.invoke_endpoint(
        EndpointName="chat", ContentType="application/json", Body=json.dumps(request)
    )

    generated = json.loads(answer["Body"].read())
    assert isinstance(generated, list) and generated[0]["generated_text"].strip()


def test_tokens_stream_as_event_stream_parts_before_the_answer_ends(chat) -> None:
    request = {
        "messages": [{"role": "user", "content": "Count from one to twenty in words."}],
        "max_tokens": 48,
        "temperature": 0,
    }

    response = chat.invoke_endpoint_with_response_stream(
        EndpointName="chat", ContentType="application/json", Body=json.dumps(request)
    )
    arrivals, chunks = [], []
    for event in response["Body"]:
        chunks.append(event["PayloadPart"]["Bytes"])
        arrivals.append(time.monotonic())

    text = b"".join(chunks).decode()
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(chunks) > 5
    assert arrivals[-1] - arrivals[0] > 0.05  # parts arrived over time, not all at the end
    assert text.rstrip().endswith("data: [DONE]")
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in text.split("\n\n")
        if line.startswith("data: {")
    ]
    assert "".join(deltas).strip()


def test_a_bad_llm_request_is_a_model_error_with_the_reason(chat) -> None:
    with pytest.raises(ClientError) as error:
        chat.invoke_endpoint_with_response_stream(
            EndpointName="chat",
            ContentType="application/json",
            Body=json.dumps({"messages": [], "max_tokens": 5}),
        )

    assert error.value.response["Error"]["Code"] == "ModelError"
    assert "messages" in error.value.response["Error"]["Message"]
