"""Invoking an endpoint from the playground: check a request as SageMaker would, call the
provider, and keep what happened (answer or error, with timings) as an `Invocation` row.

The provider call itself (`call`) touches no database, so Compare can run two of them at once in
threads; everything that reads or writes rows happens in the caller's thread.
"""

from __future__ import annotations

import codecs
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from endpoints import deploy, validators
from endpoints.models import Endpoint, RegisteredModel
from environments.backends.base import Backend, ProviderError
from playground import conf
from playground.models import Invocation, PinnedExample

# Provider error codes as the HTTP status SageMaker answers them with (sagemaker.md §2.5).
ERROR_STATUS = {
    "ValidationError": 400,
    "ValidationException": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "ThrottlingException": 429,
    "ModelStreamError": 424,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
}
LLM_IMAGE_WORDS = ("llm", "tgi", "lmi", "djl-inference", "vllm")
# An update builds the new fleet beside the old one and shifts traffic with no loss of
# availability (sagemaker.md §1.4): an endpoint in these states still answers InvokeEndpoint.
SERVING = {
    Endpoint.Status.IN_SERVICE,
    Endpoint.Status.UPDATING,
    Endpoint.Status.SYSTEM_UPDATING,
    Endpoint.Status.ROLLING_BACK,
    Endpoint.Status.UPDATE_ROLLBACK_FAILED,
}


class Refused(Exception):
    """The portal refuses the request before calling the provider; the message says what to fix."""

    def __init__(self, message: str, code: str = "Refused", status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# -- what an endpoint offers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a caller may name when invoking an endpoint, read from its spec and models."""

    variants: tuple[str, ...]
    multi_model_prefix: str  # the S3 prefix TargetModel paths are relative to; "" if none
    containers: tuple[str, ...]  # Direct multi-container hostnames; () if none
    image: str  # the (first) serving image, e.g. "sklearn", "python", "llm"
    model_names: tuple[str, ...]

    @property
    def is_multi_model(self) -> bool:
        return bool(self.multi_model_prefix)

    @property
    def is_llm(self) -> bool:
        image = self.image.rsplit("/", 1)[-1].lower()
        return any(word in image for word in LLM_IMAGE_WORDS)

    @property
    def image_name(self) -> str:
        """`sklearn` for sklearn, `…/sklearn:1.5` or `sklearn:1.5`."""
        return self.image.rsplit("/", 1)[-1].split(":", 1)[0].lower()


def shape_of(endpoint: Endpoint) -> Shape:
    variants = endpoint.spec.get("variants", [])
    models = deploy.variant_models(endpoint) if variants else []
    prefix, containers, image = "", [], ""
    for model in models:
        first = model.containers[0] if model.containers else {}
        image = image or first.get("Image", "")
        if model.kind == RegisteredModel.Kind.MULTI_MODEL and not prefix:
            prefix = first.get("ModelDataUrl", "")
        if (
            model.kind == RegisteredModel.Kind.MULTI_CONTAINER
            and model.inference_mode == RegisteredModel.Mode.DIRECT
        ):
            for container in model.containers:
                hostname = container.get("ContainerHostname", "")
                if hostname and hostname not in containers:
                    containers.append(hostname)
    return Shape(
        variants=tuple(variant["name"] for variant in variants),
        multi_model_prefix=prefix,
        containers=tuple(containers),
        image=image,
        model_names=tuple(model.name for model in models),
    )


def target_models(endpoint: Endpoint, shape: Shape) -> list[str]:
    """The TargetModel names a caller may use: the archives under the multi-model prefix."""
    if not shape.is_multi_model:
        return []
    prefix = shape.multi_model_prefix
    if not prefix.endswith("/"):
        prefix += "/"
    return [
        item.uri.removeprefix(prefix)
        for item in endpoint.environment.backend.list_objects(prefix)
        if item.uri.endswith(".tar.gz")
    ]


# Examples for the demo models (endpoints/demo.py), by registered model name: one real row.
DEMO_EXAMPLES = {
    "iris-classifier": ("text/csv", "5.1,3.5,1.4,0.2"),
    "diabetes-regressors": (
        "application/json",
        "[[0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]]",
    ),
}
TEXT_EXAMPLES = {
    "sentiment": '{"text": "The new release is great and fast"}',
    "statistics": '{"text": "Endpoints answer questions all day long"}',
}
CHAT_EXAMPLE = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "max_tokens": 64,
    "temperature": 0.7,
}


@dataclass(frozen=True)
class Example:
    content_type: str
    accept: str
    body: str
    source: str  # where it came from, in words


def example_for(endpoint: Endpoint, shape: Shape, target_container: str = "") -> Example:
    """A body that works for the chosen model: the first pin for this target, else one derived
    from the serving image."""
    pin = PinnedExample.objects.filter(endpoint=endpoint, target_container=target_container).first()
    if pin:
        return Example(pin.content_type, pin.accept, pin.body, f"pinned example “{pin.name}”")
    for name in shape.model_names:
        if name in DEMO_EXAMPLES:
            content_type, body = DEMO_EXAMPLES[name]
            return Example(content_type, "application/json", body, "an example for this model")
    if shape.is_llm:
        body = json.dumps(CHAT_EXAMPLE, indent=2)
        return Example("application/json", "application/json", body, "a chat request")
    if shape.image_name == "sklearn":
        return Example(
            "text/csv",
            "application/json",
            "1.0,2.0,3.0,4.0",
            "a CSV row: give one value per feature the model was trained on",
        )
    if shape.containers or shape.image_name == "python":
        text = TEXT_EXAMPLES.get(target_container, '{"text": "Hello"}')
        return Example("application/json", "application/json", text, "a JSON request")
    return Example("application/json", "", "{}", "an empty JSON object: replace it")


# -- checking a request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One invocation as the user asked for it."""

    endpoint: Endpoint
    body: bytes
    content_type: str
    accept: str = ""
    custom_attributes: str = ""
    target_model: str = ""
    target_variant: str = ""
    target_container: str = ""

    @classmethod
    def again(cls, invocation: Invocation) -> Request:
        """The request an earlier invocation sent, to send again."""
        if invocation.endpoint is None:
            raise Refused(f"The endpoint {invocation.endpoint_name} no longer exists.")
        if not body_kept(invocation):
            raise Refused(
                "The portal refused this request before sending it and kept only the size of "
                f"its body ({invocation.request_size:,} bytes); send the body again from the "
                "playground."
            )
        return cls(
            endpoint=invocation.endpoint,
            body=invocation.request_body(),
            content_type=invocation.content_type,
            accept=invocation.accept,
            custom_attributes=invocation.custom_attributes,
            target_model=invocation.target_model,
            target_variant=invocation.target_variant,
            target_container=invocation.target_container,
        )


def check(request: Request, shape: Shape, *, streaming: bool = False) -> None:
    """Refuse, with words that say what to fix, what SageMaker would refuse (reliability §3.5)."""
    endpoint = request.endpoint
    if not endpoint.is_live:
        raise Refused(f"The endpoint {endpoint.name} was deleted; pick another one.")
    if endpoint.status not in SERVING:
        raise Refused(
            f"The endpoint {endpoint.name} is {endpoint.get_status_display()}, not In service: "
            "it can be invoked once it is InService.",
            code="EndpointNotInService",
        )
    try:
        validators.validate_content_type(request.content_type)
        if request.accept:
            validators.validate_header_value(request.accept, "Accept")
        if request.custom_attributes:
            validators.validate_header_value(request.custom_attributes, "Custom attributes")
        if request.target_model:
            validators.validate_target_model(request.target_model)
        kind = validators.ASYNC if endpoint.kind == Endpoint.Kind.ASYNC else endpoint.kind
        if kind != validators.ASYNC:  # async input goes through storage, not inline
            validators.validate_body_size(len(request.body), kind)
    except ValidationError as error:
        raise Refused(error.messages[0], code="ValidationError") from error
    if not request.body:
        raise Refused("Write a request body; SageMaker requires one.")
    if shape.is_multi_model and not request.target_model and not streaming:
        raise Refused(
            "This is a multi-model endpoint: choose a target model, such as one of those listed."
        )
    if request.target_model and not shape.is_multi_model:
        raise Refused(
            f"{endpoint.name} is not a multi-model endpoint; leave the target model empty."
        )
    if streaming and request.target_model:
        raise Refused("Response streaming takes no target model; use a plain invocation instead.")
    if shape.containers and request.target_container not in shape.containers:
        if not request.target_container:
            raise Refused(
                f"{endpoint.name} runs containers in Direct mode: choose one of "
                f"{', '.join(shape.containers)}."
            )
        raise Refused(
            f"{endpoint.name} has no container named {request.target_container}; choose one of "
            f"{', '.join(shape.containers)}.",
            code="TargetNotFound",
        )
    if request.target_container and not shape.containers:
        raise Refused(f"{endpoint.name} is not a Direct multi-container endpoint.")
    if request.target_variant and request.target_variant not in shape.variants:
        raise Refused(
            f"{endpoint.name} has no variant named {request.target_variant}; choose one of "
            f"{', '.join(shape.variants)}.",
            code="TargetNotFound",
        )


def explain(error: ProviderError, request: Request) -> str:
    """The provider's error in words for the playground, naming the target where it is to blame."""
    raw = f"{error.raw} {error.message}".lower()
    if error.code in ("ValidationError", "ValidationException"):
        if request.target_model and "targetmodel" in raw.replace(" ", ""):
            return (
                f"There is no model {request.target_model} under this endpoint's model prefix. "
                "Pick one of the listed models, or upload it there first. "
                f"({error.raw.splitlines()[0]})"
            )
        if request.target_container and ("container" in raw or "hostname" in raw):
            return f"The endpoint has no container named {request.target_container}."
        if "not found" in raw and "endpoint" in raw:
            return f"The provider has no endpoint named {request.endpoint.name}."
    if error.code in ("ThrottlingException", "ModelNotReadyException") or "throttl" in raw:
        if error.code == "ModelNotReadyException":
            return error.message
        return (
            "The endpoint is throttling requests: it is already serving as many as it may "
            "(a serverless endpoint's MaxConcurrency, or the account's rate). Wait a moment and "
            "try again."
        )
    return error.message


# -- calling the provider -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one provider call gave, before it is recorded."""

    request: Request
    body: bytes = b""
    content_type: str = ""
    variant: str = ""
    custom_attributes: str = ""
    total_ms: float | None = None
    model_ms: float | None = None
    error: ProviderError | None = None
    started: float = field(default_factory=time.perf_counter)


def call(backend: Backend, request: Request) -> Outcome:
    """One real-time invocation. Reads no rows: safe in a worker thread."""
    outcome = Outcome(request)
    try:
        answer = backend.invoke(
            request.endpoint.name,
            request.body,
            content_type=request.content_type,
            accept=request.accept,
            target_model=request.target_model,
            target_variant=request.target_variant,
            target_container=request.target_container,
            custom_attributes=request.custom_attributes,
        )
    except ProviderError as error:
        outcome.error = error
        outcome.total_ms = (time.perf_counter() - outcome.started) * 1000
        return outcome
    outcome.body = answer.body
    outcome.content_type = answer.content_type
    outcome.variant = answer.variant
    outcome.custom_attributes = answer.custom_attributes
    outcome.total_ms = answer.total_ms
    outcome.model_ms = answer.model_ms
    return outcome


def new_row(
    request: Request, user: object, mode: str, compare_group: str = "", *, keep_body: bool = True
) -> Invocation:
    invocation = Invocation(
        user=user,
        endpoint=request.endpoint,
        endpoint_name=request.endpoint.name,
        mode=mode,
        target_model=request.target_model,
        target_variant=request.target_variant,
        target_container=request.target_container,
        content_type=request.content_type,
        accept=request.accept,
        custom_attributes=request.custom_attributes,
        compare_group=compare_group,
    )
    if keep_body:
        invocation.set_request_body(request.body)
    return invocation


def refused_row(
    request: Request,
    user: object,
    refusal: Refused,
    mode: str,
    *,
    size: int | None = None,
    compare_group: str = "",
) -> Invocation:
    """A request the portal refused is history too: the user sees why, and the body's size
    (`size` when the caller read only part of it). A refused body is never written to the body
    store, or every body refused for its size would still fill the disk; one small enough to
    live in the row stays there, so the request can be run again once the cause is fixed."""
    invocation = new_row(request, user, mode, compare_group, keep_body=False)
    if len(request.body) <= conf.INLINE_BODY_BYTES:
        invocation.request_inline = request.body
    invocation.request_size = len(request.body) if size is None else size
    invocation.state = Invocation.State.FAILED
    invocation.status_code = refusal.status
    invocation.error_code = refusal.code
    invocation.error_message = refusal.message
    invocation.finished_at = timezone.now()
    invocation.save()
    return invocation


def body_kept(invocation: Invocation) -> bool:
    """Whether the row holds the whole request body; a refused request may keep only its size."""
    return (
        bool(invocation.request_blob) or len(invocation.request_inline) == invocation.request_size
    )


def record(outcome: Outcome, user: object, compare_group: str = "") -> Invocation:
    invocation = new_row(outcome.request, user, Invocation.Mode.REAL_TIME, compare_group)
    invocation.total_ms = outcome.total_ms
    invocation.finished_at = timezone.now()
    if outcome.error is not None:
        invocation.state = Invocation.State.FAILED
        invocation.status_code = ERROR_STATUS.get(outcome.error.code, 500)
        invocation.error_code = outcome.error.code or "ProviderError"
        invocation.error_message = explain(outcome.error, outcome.request)
        invocation.error_raw = outcome.error.raw
    else:
        invocation.state = Invocation.State.DONE
        invocation.status_code = 200
        invocation.set_response_body(outcome.body)
        invocation.response_content_type = outcome.content_type
        invocation.variant = outcome.variant
        invocation.response_headers = response_headers(
            outcome.content_type, outcome.variant, outcome.custom_attributes
        )
        invocation.model_ms = outcome.model_ms
        if outcome.model_ms is not None and outcome.total_ms is not None:
            invocation.overhead_ms = max(outcome.total_ms - outcome.model_ms, 0.0)
    invocation.save()
    return invocation


def response_headers(content_type: str, variant: str, custom_attributes: str) -> dict[str, str]:
    """The headers SageMaker's runtime answers with (the SDK hands back no others)."""
    headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant}
    if custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
    return {name: value for name, value in headers.items() if value}


def run(request: Request, user: object) -> Invocation:
    """Check, invoke and record one real-time (or async) request; refusals are recorded too."""
    shape = shape_of(request.endpoint)
    if request.endpoint.kind == Endpoint.Kind.ASYNC:
        return start_async(request, user, shape)
    try:
        check(request, shape)
    except Refused as refusal:
        return refused_row(request, user, refusal, Invocation.Mode.REAL_TIME)
    return record(call(request.endpoint.environment.backend, request), user)


def run_pair(left: Request, right: Request, user: object) -> tuple[Invocation, Invocation]:
    """Compare: the two requests checked here, sent at the same time, recorded side by side."""
    from concurrent.futures import ThreadPoolExecutor

    group = uuid.uuid4().hex
    sides: list[Invocation | Outcome | None] = []
    for request in (left, right):
        try:
            check(request, shape_of(request.endpoint))
        except Refused as refusal:
            sides.append(
                refused_row(request, user, refusal, Invocation.Mode.REAL_TIME, compare_group=group)
            )
        else:
            if request.endpoint.kind == Endpoint.Kind.ASYNC:
                refusal = Refused("Compare sends real-time requests; pick a real-time endpoint.")
                sides.append(
                    refused_row(
                        request, user, refusal, Invocation.Mode.REAL_TIME, compare_group=group
                    )
                )
            else:
                sides.append(None)
    pending = [
        (index, request)
        for index, (request, side) in enumerate(zip((left, right), sides, strict=True))
        if side is None
    ]
    # Backends are built here: the thread only makes the HTTP call.
    backends = {index: request.endpoint.environment.backend for index, request in pending}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {index: pool.submit(call, backends[index], request) for index, request in pending}
        for index, future in futures.items():
            sides[index] = future.result()
    rows = [
        side if isinstance(side, Invocation) else record(side, user, group)
        for side in sides  # type: ignore[misc]
    ]
    return rows[0], rows[1]


# -- async ----------------------------------------------------------------------------------------


def start_async(request: Request, user: object, shape: Shape) -> Invocation:
    """Upload the input to the environment's storage, queue the request, and leave the row
    pending: `check_async` turns it into the answer or the failure when one lands."""
    try:
        check(request, shape)
    except Refused as refusal:
        return refused_row(request, user, refusal, Invocation.Mode.ASYNC)
    environment = request.endpoint.environment
    invocation = new_row(request, user, Invocation.Mode.ASYNC)
    key = f"{environment.storage_uri}playground/{uuid.uuid4().hex}/input"
    started = time.perf_counter()
    try:
        environment.backend.upload_object(key, request.body)
        queued = environment.backend.invoke_async(
            request.endpoint.name,
            input_location=key,
            content_type=request.content_type,
            accept=request.accept,
        )
    except ProviderError as error:
        refused_by_provider(invocation, request, error, started)
        return invocation
    invocation.status_code = 202
    invocation.input_location = key
    invocation.inference_id = queued.inference_id
    invocation.output_location = queued.output_location
    invocation.failure_location = queued.failure_location
    invocation.next_check_at = timezone.now()
    invocation.save()
    return invocation


def check_async(invocation: Invocation) -> None:
    """Look once for the async answer or failure; record whichever has landed."""
    if invocation.endpoint is None:
        finish_async(invocation, failure="The endpoint was deleted before its answer came.")
        return
    backend = invocation.endpoint.environment.backend
    for location, failed in (
        (invocation.output_location, False),
        (invocation.failure_location, True),
    ):
        if not location or not any(item.uri == location for item in backend.list_objects(location)):
            continue
        data = backend.read_object(location)
        if failed:
            message = data.decode(errors="replace").strip()[:4000]
            finish_async(invocation, failure=f"The model failed: {message}")
        else:
            finish_async(invocation, answer=data)
        return
    waited = timezone.now() - invocation.created_at
    if waited > timedelta(seconds=conf.ASYNC_GIVE_UP_SECONDS):
        finish_async(
            invocation,
            failure=f"No answer and no failure after {waited.total_seconds() / 60:.0f} minutes; "
            f"look for it at {invocation.output_location}.",
        )


def finish_async(invocation: Invocation, answer: bytes | None = None, failure: str = "") -> None:
    invocation.finished_at = timezone.now()
    invocation.next_check_at = None
    invocation.total_ms = (invocation.finished_at - invocation.created_at).total_seconds() * 1000
    if answer is not None:
        invocation.state = Invocation.State.DONE
        invocation.status_code = 200
        invocation.set_response_body(answer)
        invocation.response_content_type = invocation.accept or sniff(answer)
    else:
        invocation.state = Invocation.State.FAILED
        invocation.error_code = "AsyncFailure"
        invocation.error_message = failure
    # Only a row still pending moves, so two watchers never both finish it.
    fields = {
        name: getattr(invocation, name)
        for name in (
            "finished_at",
            "next_check_at",
            "total_ms",
            "state",
            "status_code",
            "response_inline",
            "response_blob",
            "response_size",
            "response_content_type",
            "error_code",
            "error_message",
        )
    }
    Invocation.objects.filter(pk=invocation.pk, state=Invocation.State.PENDING).update(**fields)


def sniff(data: bytes) -> str:
    """A content type for an answer stored without one (async outputs in storage)."""
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        pass
    else:
        return "application/json"
    try:
        data.decode()
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


# -- streaming ------------------------------------------------------------------------------------


class TokenReader:
    """Turns a model's streamed bytes (arbitrary slices) into text pieces: OpenAI-style server-
    sent events, SageMaker LLM JSON Lines (`{"token": {"text": ...}}`), or plain text."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.buffer = ""
        self.format = ""  # "sse", "jsonlines" or "text", decided by the first bytes

    def feed(self, data: bytes) -> list[str]:
        self.buffer += self.decoder.decode(data)
        if not self.format:
            start = self.buffer.lstrip()
            if len(start) < len("data:") and "\n" not in start:
                return []  # too little to tell the format yet
            self.decide(start)
        if self.format == "text":
            text, self.buffer = self.buffer, ""
            return [text] if text else []
        separator = "\n\n" if self.format == "sse" else "\n"
        *complete, self.buffer = self.buffer.split(separator)
        return [piece for line in complete if (piece := self.piece(line))]

    def decide(self, start: str) -> None:
        self.format = (
            "sse" if start.startswith("data:") else "jsonlines" if start[:1] == "{" else "text"
        )

    def finish(self) -> list[str]:
        rest, self.buffer = self.buffer + self.decoder.decode(b"", final=True), ""
        if not self.format:
            self.decide(rest.lstrip())
        if self.format == "text":
            return [rest] if rest else []
        piece = self.piece(rest)
        return [piece] if piece else []

    def piece(self, line: str) -> str:
        """The text of one event or line; a line in neither LLM shape is passed on as it is."""
        line = line.strip()
        if not line:
            return ""
        data = line.removeprefix("data:").strip() if self.format == "sse" else line
        if data == "[DONE]":
            return ""
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):
            event = None
        if isinstance(event, dict) and self.format == "sse" and "choices" in event:
            choices = event["choices"] or [{}]
            return (choices[0].get("delta") or {}).get("content") or ""
        if isinstance(event, dict) and self.format == "jsonlines":
            if "token" in event:
                return (event["token"] or {}).get("text") or ""
            if "generated_text" in event:
                return ""  # the closing summary repeats the tokens already sent
        return data + "\n"


def answer_text(body: bytes) -> list[str]:
    """The text pieces of a whole recorded stream."""
    reader = TokenReader()
    return reader.feed(body) + reader.finish()


def stream(request: Request, user: object) -> tuple[Invocation, Iterator[str]]:
    """Open a streamed answer. Returns the row (already failed if refused or refused by the
    provider) and the text pieces as they arrive; closing the iterator early closes the
    provider's stream too, so the model stops generating, and records the answer so far."""
    shape = shape_of(request.endpoint)
    try:
        check(request, shape, streaming=True)
    except Refused as refusal:
        return refused_row(request, user, refusal, Invocation.Mode.STREAM), iter(())
    invocation = new_row(request, user, Invocation.Mode.STREAM)
    started = time.perf_counter()
    try:
        parts = request.endpoint.environment.backend.invoke_stream(
            request.endpoint.name,
            request.body,
            content_type=request.content_type,
            accept=request.accept,
            target_variant=request.target_variant,
            target_container=request.target_container,
            custom_attributes=request.custom_attributes,
        )
    except ProviderError as error:
        refused_by_provider(invocation, request, error, started)
        return invocation, iter(())
    invocation.save()  # pending, so the history shows it while it streams
    return invocation, _pieces(invocation, parts, started)


def _pieces(invocation: Invocation, parts: Iterator[bytes], started: float) -> Iterator[str]:
    reader = TokenReader()
    received: list[bytes] = []
    first: float | None = None
    count = 0
    state, error = Invocation.State.STOPPED, None
    try:
        for part in parts:
            received.append(part)
            for piece in reader.feed(part):
                if first is None:
                    first = time.perf_counter()
                count += 1
                yield piece
        for piece in reader.finish():
            count += 1
            yield piece
        state = Invocation.State.DONE
    except ProviderError as provider_error:
        state, error = Invocation.State.FAILED, provider_error
        raise
    finally:
        close = getattr(parts, "close", None)
        if close is not None:
            close()  # the user pressed Stop (or left): the model stops generating
        ended = time.perf_counter()
        invocation.state = state
        invocation.status_code = 200 if error is None else ERROR_STATUS.get(error.code, 500)
        invocation.set_response_body(b"".join(received))
        invocation.response_content_type = getattr(parts, "content_type", "") or {
            "sse": "text/event-stream",
            "jsonlines": "application/jsonlines",
        }.get(reader.format, "text/plain")
        invocation.variant = getattr(parts, "variant", "") or invocation.target_variant
        invocation.total_ms = (ended - started) * 1000
        invocation.tokens = count
        if first is not None:
            invocation.ttft_ms = (first - started) * 1000
            if count > 1 and ended > first:
                invocation.tokens_per_second = (count - 1) / (ended - first)
        if error is not None:
            invocation.error_code = error.code
            invocation.error_message = error.message
            invocation.error_raw = error.raw
        elif state == Invocation.State.STOPPED:
            invocation.error_code = "Stopped"
            invocation.error_message = f"Stopped after {count} tokens."
        invocation.finished_at = timezone.now()
        invocation.save()


def refused_by_provider(
    invocation: Invocation, request: Request, error: ProviderError, started: float
) -> None:
    """Record a request the provider refused before answering anything."""
    invocation.state = Invocation.State.FAILED
    invocation.status_code = ERROR_STATUS.get(error.code, 500)
    invocation.error_code = error.code or "ProviderError"
    invocation.error_message = explain(error, request)
    invocation.error_raw = error.raw
    invocation.total_ms = (time.perf_counter() - started) * 1000
    invocation.finished_at = timezone.now()
    invocation.save()


def chat_body(
    system: str,
    messages: list[dict],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop: list[str],
) -> bytes:
    """An OpenAI-style chat request, the shape the portal's llm image (and most LLM containers
    on SageMaker) take."""
    conversation = [{"role": "system", "content": system}] if system.strip() else []
    conversation += messages
    request: dict = {
        "messages": conversation,
        "max_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
    }
    if stop:
        request["stop"] = stop
    return json.dumps(request).encode()
