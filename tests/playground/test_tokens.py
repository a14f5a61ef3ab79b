"""Streamed parts are arbitrary byte slices: the reader rebuilds tokens across any split."""

import json

import pytest

from playground.invoke import TokenReader


def openai_stream(words: list[str]) -> bytes:
    events = [
        "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": word}}]})
        for word in words
    ]
    return ("\n\n".join([*events, "data: [DONE]"]) + "\n\n").encode()


def sagemaker_stream(words: list[str]) -> bytes:
    lines = [json.dumps({"token": {"text": word}}) for word in words]
    lines.append(json.dumps({"generated_text": "".join(words), "details": {}}))
    return ("\n".join(lines) + "\n").encode()


def read(data: bytes, size: int) -> list[str]:
    reader = TokenReader()
    pieces = []
    for start in range(0, len(data), size):
        pieces += reader.feed(data[start : start + size])
    return pieces + reader.finish()


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
@pytest.mark.parametrize("stream", [openai_stream, sagemaker_stream])
def test_tokens_survive_any_split(stream, size):
    words = ["Pa", "ris", " é", "tait", " 🗼"]

    assert read(stream(words), size) == words


def test_plain_text_passes_through():
    assert "".join(read("héllo wörld".encode(), 1)) == "héllo wörld"


def test_json_lines_in_no_llm_shape_pass_through_as_lines():
    assert read(b'{"label": "positive"}', 4) == ['{"label": "positive"}\n']
