"""The playground, for Engineers and above: invoking an endpoint runs a model.

Everyone sees only their own invocations (history is per user); pinned examples are shared
with the team on the endpoint's page of the playground."""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.roles import Role, role_required
from endpoints import validators
from endpoints.models import Endpoint
from environments.backends.base import ProviderError
from playground import invoke, rendering, snippets
from playground.forms import ChatForm, CompareForm, InvokeForm, PinForm
from playground.models import Invocation, PinnedExample

# The most the playground reads of a body: SageMaker's real-time cap. Endpoint kinds with a
# lower cap are checked against theirs afterwards (validators.validate_body_size).
READ_CAP = validators.BODY_LIMITS[validators.REAL_TIME][0]
TOO_BIG_FOR_FORM = (
    "The body typed into the page is over 2.5 MB; send it with “Or send a file” instead "
    "(up to 6 MB)."
)


def is_id(value: str) -> bool:
    """Whether a query parameter can be a row id: "²" and 5000 digits pass isdigit() but not
    int(), and would end the request in an error."""
    return value.isdecimal() and len(value) <= 18


def selected_endpoint(request: HttpRequest) -> Endpoint | None:
    pk = request.GET.get("endpoint", "")
    if not is_id(pk):
        return None
    return Endpoint.objects.live().select_related("environment").filter(pk=pk).first()


def workbench_context(endpoint: Endpoint | None, request: HttpRequest) -> dict:
    """What the page needs for the chosen endpoint: its targets, a working example, the pins."""
    context: dict = {"endpoint": endpoint}
    if endpoint is None:
        context["form"] = InvokeForm()
        return context
    shape = invoke.shape_of(endpoint)
    try:
        models = invoke.target_models(endpoint, shape)
    except ProviderError as error:
        models, context["targets_error"] = [], error
    pin = None
    if is_id(request.GET.get("pin", "")):
        pin = PinnedExample.objects.filter(endpoint=endpoint, pk=request.GET["pin"]).first()
    container = request.GET.get("container", "") or (
        shape.containers[0] if shape.containers else ""
    )
    example = invoke.example_for(endpoint, shape, container)
    initial = {
        "endpoint": endpoint,
        "content_type": example.content_type,
        "accept": example.accept,
        "body": example.body,
        "target_model": models[0] if models else "",
        "target_container": container,
    }
    if pin is not None:
        initial |= {
            "content_type": pin.content_type,
            "accept": pin.accept,
            "custom_attributes": pin.custom_attributes,
            "body": pin.body,
            "target_model": pin.target_model,
            "target_variant": pin.target_variant,
            "target_container": pin.target_container,
        }
        example = invoke.Example(
            pin.content_type, pin.accept, pin.body, f"pinned example “{pin.name}”"
        )
    context |= {
        "shape": shape,
        "models": models,
        "example": example,
        "form": InvokeForm(initial=initial),
        "chat_form": ChatForm(initial={"endpoint": endpoint, "target_container": container})
        if shape.is_llm
        else None,
        "pins": endpoint.pinned_examples.select_related("pinned_by"),
        "recent": Invocation.objects.filter(user=request.user, endpoint=endpoint)[:5],
    }
    return context


@require_safe
@role_required(Role.ENGINEER)
def playground(request: HttpRequest) -> HttpResponse:
    endpoint = selected_endpoint(request)
    template = "playground/playground.html"
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        template += "#workbench"
    context = workbench_context(endpoint, request)
    context["endpoints"] = Endpoint.objects.live().select_related("environment").order_by("name")
    return render(request, template, context)


def posted_body(request: HttpRequest) -> tuple[bytes, int]:
    """The request body and its full size: a file part (the page's script sends the editor's
    text as one, so a body beyond DATA_UPLOAD_MAX_MEMORY_SIZE never passes through POST) or a
    plain text field. Never more than READ_CAP + 1 bytes are read into memory."""
    upload = request.FILES.get("upload") or request.FILES.get("body")
    if upload is not None:
        return upload.read(READ_CAP + 1), upload.size
    body = request.POST.get("body", "").encode()
    return body, len(body)


def result_response(request: HttpRequest, invocation: Invocation) -> HttpResponse:
    if request.htmx:
        return render(request, "playground/_result.html", result_context(invocation))
    return redirect("playground:invocation", invocation.pk)


def result_context(invocation: Invocation) -> dict:
    context: dict = {"invocation": invocation}
    if invocation.state in (Invocation.State.DONE, Invocation.State.STOPPED):
        body = invocation.response_body()
        context["rendered"] = rendering.render(body, invocation.response_content_type)
        if invocation.mode == Invocation.Mode.STREAM:
            # The answer as the model wrote it; the stream's events stay one click away.
            context["raw_stream"] = context["rendered"]
            text = "".join(invoke.answer_text(body))
            context["rendered"] = rendering.Rendered("text", text=text, size=len(body))
    context["snippets"] = snippets.snippets(invocation)
    context["pin_form"] = PinForm(initial={"name": invocation.target or invocation.endpoint_name})
    return context


@require_POST
@role_required(Role.ENGINEER)
def invoke_endpoint(request: HttpRequest) -> HttpResponse:
    """Send one request (real-time, or queued for an async endpoint) and show what came back."""
    try:
        form = InvokeForm(request.POST, request.FILES)
        valid = form.is_valid()
    except RequestDataTooBig:
        return render(request, "playground/_refused.html", {"message": TOO_BIG_FOR_FORM})
    if not valid:
        return render(request, "playground/_refused.html", {"form": form})
    body, size = posted_body(request)
    if size > READ_CAP:
        # Only READ_CAP + 1 bytes were read: refuse here, naming the body's real size.
        try:
            validators.validate_body_size(size, validators.REAL_TIME)
        except ValidationError as error:
            refusal = invoke.Refused(error.messages[0], code="ValidationError", status=413)
        invocation = invoke.refused_row(
            form.request_for(b""), request.user, refusal, Invocation.Mode.REAL_TIME, size=size
        )
        return result_response(request, invocation)
    invocation = invoke.run(form.request_for(body), request.user)
    return result_response(request, invocation)


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@require_POST
@role_required(Role.ENGINEER)
def stream(request: HttpRequest) -> HttpResponseBase:
    """A chat turn, streamed: server-sent events `token` (a piece of text), then `done` with the
    URL of the finished result, or `failed` with a message. Closing the connection (Stop)
    closes the provider's stream, so the model stops generating."""
    form = ChatForm(request.POST)
    if not form.is_valid():
        errors = [
            f"{form.fields[name].label or name}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
        return JsonResponse({"message": " ".join(errors)}, status=400)
    data = form.cleaned_data
    turns = [*data["messages"], {"role": "user", "content": data["prompt"]}]
    body = invoke.chat_body(
        data["system"],
        turns,
        max_new_tokens=data["max_new_tokens"],
        temperature=data["temperature"],
        top_p=data["top_p"],
        stop=data["stop"],
    )
    chat_request = invoke.Request(
        endpoint=data["endpoint"],
        body=body,
        content_type="application/json",
        accept="",
        target_variant=data["target_variant"],
        target_container=data["target_container"],
    )
    invocation, pieces = invoke.stream(chat_request, request.user)
    if invocation.is_failed:
        return JsonResponse(
            {
                "message": invocation.error_message,
                "url": reverse("playground:result", args=[invocation.pk]),
            },
            status=invocation.status_code or 400,
        )
    result_url = reverse("playground:result", args=[invocation.pk])

    def events() -> object:
        try:
            yield sse("started", {"url": result_url})
            for piece in pieces:
                yield sse("token", piece)
        except ProviderError as error:
            yield sse("failed", {"message": error.message, "url": result_url})
            return
        finally:
            pieces.close()  # runs when the browser goes away too: the model stops
        yield sse("done", {"url": result_url})

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy must pass each token on at once
    return response


def own_invocation(request: HttpRequest, pk: int) -> Invocation:
    """History is per user: someone else's invocation does not exist for you."""
    return get_object_or_404(
        Invocation.objects.select_related("endpoint__environment"), pk=pk, user=request.user
    )


@require_safe
@role_required(Role.ENGINEER)
def invocation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    invocation = own_invocation(request, pk)
    context = result_context(invocation)
    context["body_kept"] = invoke.body_kept(invocation)
    # The request as the user wrote it: JSON indented, anything else as plain text.
    kind = "application/json" if "json" in invocation.content_type else "text/plain"
    preview = rendering.render(invocation.request_body(), kind)
    if context["body_kept"] and preview.kind in ("json", "text"):
        context["request_preview"] = preview
    return render(request, "playground/invocation_detail.html", context)


@require_safe
@role_required(Role.ENGINEER)
def invocation_result(request: HttpRequest, pk: int) -> HttpResponse:
    """The result card alone: polled while an async answer is pending, and loaded when a
    stream ends."""
    invocation = own_invocation(request, pk)
    return render(request, "playground/_result.html", result_context(invocation))


@require_safe
@role_required(Role.ENGINEER)
def invocation_body(request: HttpRequest, pk: int, part: str) -> HttpResponse:
    """A stored request or response body. Images of the four safe raster types are served
    inline for <img>; everything else downloads, so the browser never renders it as a page."""
    invocation = own_invocation(request, pk)
    if part == "response":
        data, content_type = invocation.response_body(), invocation.response_content_type
    elif part == "request":
        if not invoke.body_kept(invocation):
            raise Http404(
                "The portal refused this request before sending it; its body was not kept."
            )
        data, content_type = invocation.request_body(), invocation.content_type
    else:
        raise Http404("No such part.")
    response = HttpResponse(data)
    response["X-Content-Type-Options"] = "nosniff"
    if rendering.is_image(content_type) and "download" not in request.GET:
        response["Content-Type"] = rendering.media_type(content_type)
        response["Content-Disposition"] = "inline"
    else:
        response["Content-Type"] = "application/octet-stream"
        response["Content-Disposition"] = (
            f'attachment; filename="invocation-{invocation.pk}-{part}.bin"'
        )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_safe
@role_required(Role.ENGINEER)
def history(request: HttpRequest) -> HttpResponse:
    invocations = Invocation.objects.filter(user=request.user).select_related("endpoint")
    endpoint = request.GET.get("endpoint", "")
    if is_id(endpoint):
        invocations = invocations.filter(endpoint_id=endpoint)
    page = Paginator(invocations, 25).get_page(request.GET.get("page"))
    return render(
        request, "playground/history.html", {"page": page, "invocations": page.object_list}
    )


@require_POST
@role_required(Role.ENGINEER)
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """Send an earlier request again, exactly as it was; the answer is a new history row."""
    previous = own_invocation(request, pk)
    try:
        again = invoke.Request.again(previous)
    except invoke.Refused as refusal:
        messages.error(request, refusal.message)
        return redirect("playground:history")
    # A streamed chat turn is rerun as one real-time call: its answer arrives whole.
    invocation = invoke.run(again, request.user)
    return result_response(request, invocation)


@require_POST
@role_required(Role.ENGINEER)
def pin(request: HttpRequest, pk: int) -> HttpResponse:
    """Pin an invocation's request to its endpoint as a named example for the team."""
    invocation = own_invocation(request, pk)
    form = PinForm(request.POST)
    if invocation.endpoint is None or not invocation.endpoint.is_live:
        messages.error(request, "The endpoint was deleted; nothing to pin the example to.")
        return redirect("playground:invocation", invocation.pk)
    body = invocation.request_body()
    problem = ""
    if not form.is_valid():
        problem = "Give the example a name of at most 100 characters."
    elif len(body) > invoke.conf.PIN_MAX_BYTES:
        problem = "Only bodies up to 256 KB can be pinned; this one is larger."
    else:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            problem = "Only text bodies can be pinned; this one is binary."
    if not problem:
        try:
            with transaction.atomic():
                PinnedExample.objects.create(
                    endpoint=invocation.endpoint,
                    name=form.cleaned_data["name"],
                    target_model=invocation.target_model,
                    target_variant=invocation.target_variant,
                    target_container=invocation.target_container,
                    content_type=invocation.content_type,
                    accept=invocation.accept,
                    custom_attributes=invocation.custom_attributes,
                    body=text,
                    pinned_by=request.user,
                )
        except IntegrityError:
            name = form.cleaned_data["name"]
            problem = (
                f"{invocation.endpoint_name} already has an example named “{name}”; "
                "choose another name."
            )
    if problem:
        messages.error(request, problem)
    else:
        messages.success(
            request,
            f"Pinned “{form.cleaned_data['name']}” to {invocation.endpoint_name} for the team.",
        )
    url = reverse("playground:index") + "?" + urlencode({"endpoint": invocation.endpoint_id})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_POST
@role_required(Role.ENGINEER)
def unpin(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a pinned example: whoever pinned it, or a Deployer."""
    example = get_object_or_404(PinnedExample, pk=pk)
    url = reverse("playground:index") + "?" + urlencode({"endpoint": example.endpoint_id})
    if example.pinned_by_id != request.user.pk and not request.user.has_role(Role.DEPLOYER):
        messages.error(
            request, "Only the person who pinned an example, or a Deployer, may unpin it."
        )
        return redirect(url)
    example.delete()
    messages.success(request, f"Unpinned “{example.name}”.")
    return redirect(url)


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(Role.ENGINEER)
def compare(request: HttpRequest) -> HttpResponse:
    """The same input to two targets (or two endpoints) at once, side by side with timings."""
    context: dict = {}
    if request.method == "POST":
        form = CompareForm(request.POST)
        if form.is_valid():
            left, right = invoke.run_pair(*form.requests(), request.user)
            context["sides"] = [result_context(left), result_context(right)]
    else:
        initial = {}
        endpoint = selected_endpoint(request)
        if endpoint is not None:
            shape = invoke.shape_of(endpoint)
            example = invoke.example_for(
                endpoint, shape, shape.containers[0] if shape.containers else ""
            )
            initial = {
                "left_endpoint": endpoint,
                "right_endpoint": endpoint,
                "content_type": example.content_type,
                "accept": example.accept,
                "body": example.body,
            }
            choices = target_choices(endpoint)
            if len(choices) > 1:
                initial["left_target"] = choices[0][0]
                initial["right_target"] = choices[1][0]
        form = CompareForm(initial=initial)
    context["form"] = form
    for side in ("left", "right"):
        choices = target_choices(form_endpoint(form, side))
        sent = form[f"{side}_target"].value() if form.is_bound else None
        if sent and sent not in [value for value, _ in choices]:
            # Keep what was sent chosen, even a target the endpoint lacks, so the page shows
            # what the error (or the refusal) is about rather than quietly picking another.
            choices = [(sent, sent), *choices]
        context[f"{side}_choices"] = choices
    return render(request, "playground/compare.html", context)


def form_endpoint(form: CompareForm, side: str) -> Endpoint | None:
    name = f"{side}_endpoint"
    if form.is_bound:
        return form.cleaned_data.get(name) if hasattr(form, "cleaned_data") else None
    return form.initial.get(name)


def target_choices(endpoint: Endpoint | None) -> list[tuple[str, str]]:
    """Every target a caller may name on the endpoint, as (value, label) for a select."""
    if endpoint is None:
        return []
    shape = invoke.shape_of(endpoint)
    try:
        models = invoke.target_models(endpoint, shape)
    except ProviderError:
        models = []
    choices = [(f"model:{name}", f"Model {name}") for name in models]
    choices += [(f"container:{name}", f"Container {name}") for name in shape.containers]
    if len(shape.variants) > 1:
        if not choices:
            choices.append(("", "Weighted routing (default)"))
        choices += [(f"variant:{name}", f"Variant {name}") for name in shape.variants]
    return choices or [("", "The endpoint's only target")]


@require_safe
@role_required(Role.ENGINEER)
def compare_targets(request: HttpRequest) -> HttpResponse:
    """The target options of one endpoint, for a side of the Compare form."""
    side = request.GET.get("side", "left")
    if side not in ("left", "right"):
        raise Http404("No such side.")
    endpoint = None
    pk = request.GET.get(f"{side}_endpoint", "")
    if is_id(pk):
        endpoint = Endpoint.objects.live().filter(pk=pk).first()
    return render(
        request,
        "playground/_target_options.html",
        {"choices": target_choices(endpoint), "side": side},
    )
