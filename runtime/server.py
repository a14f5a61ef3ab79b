"""The runtime's HTTP front: SageMaker's wire protocols, guarded against anything not local.

- `POST /` with `X-Amz-Target: SageMaker.<Operation>` is the control plane (awsJson1.1), so
  `boto3.client("sagemaker", endpoint_url=...)` creates models, configs and endpoints here.
- `POST /endpoints/{name}/invocations` (and `-response-stream`) is the SageMaker Runtime
  protocol, so `boto3.client("sagemaker-runtime", endpoint_url=...)` invokes them unchanged.
- `/_local/...` are the extras the portal's local backend reads: metrics, logs, events.

It binds loopback by default and answers only requests addressed to itself: a foreign Host
header (DNS rebinding), any Origin header or a cross-site fetch (a web page in a browser) is
refused before any route runs.
"""

import json
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from runtime import MODEL_LATENCY_HEADER, eventstream
from runtime.host import MAX_BODY, ApiError, Host, Invocation
from runtime.storage import LocalStorage

CONTROL_OPERATIONS = {
    "CreateModel": "create_model",
    "DescribeModel": "describe_model",
    "DeleteModel": "delete_model",
    "ListModels": "list_models",
    "CreateEndpointConfig": "create_endpoint_config",
    "DescribeEndpointConfig": "describe_endpoint_config",
    "DeleteEndpointConfig": "delete_endpoint_config",
    "ListEndpointConfigs": "list_endpoint_configs",
    "CreateEndpoint": "create_endpoint",
    "DescribeEndpoint": "describe_endpoint",
    "DeleteEndpoint": "delete_endpoint",
    "UpdateEndpoint": "update_endpoint",
    "ListEndpoints": "list_endpoints",
}
# Application Auto Scaling, the same protocol under another target prefix.
SCALING_OPERATIONS = {
    "RegisterScalableTarget": "register_scalable_target",
    "DeregisterScalableTarget": "deregister_scalable_target",
    "DescribeScalableTargets": "describe_scalable_targets",
    "PutScalingPolicy": "put_scaling_policy",
    "DeleteScalingPolicy": "delete_scaling_policy",
    "DescribeScalingPolicies": "describe_scaling_policies",
    "DescribeScalingActivities": "describe_scaling_activities",
}
SERVICES = {"SageMaker": CONTROL_OPERATIONS, "AnyScaleFrontendService": SCALING_OPERATIONS}
# SageMaker Runtime's request headers, by the names the host uses.
HEADERS = {
    "content_type": "Content-Type",
    "accept": "Accept",
    "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "target_model": "X-Amzn-SageMaker-Target-Model",
    "target_variant": "X-Amzn-SageMaker-Target-Variant",
    "target_container": "X-Amzn-SageMaker-Target-Container-Hostname",
    "inference_id": "X-Amzn-SageMaker-Inference-Id",
}


def control_error(error: ApiError) -> web.Response:
    """An awsJson1.1 error, which botocore raises as ClientError with this code."""
    return web.json_response({"__type": error.code, "message": error.message}, status=error.status)


def runtime_error_parts(error: ApiError) -> tuple[dict, dict[str, str]]:
    """The JSON body and headers of a rest-json error in SageMaker Runtime's shape (ModelError
    carries its extra members); botocore reads the error code from x-amzn-ErrorType."""
    code = "ValidationError" if error.code == "ValidationException" else error.code
    return {"message": error.message, **error.extra}, {"x-amzn-ErrorType": code}


def runtime_error(error: ApiError) -> web.Response:
    body, headers = runtime_error_parts(error)
    return web.json_response(body, status=error.status, headers=headers)


def allowed_hosts(port: int, extra_hosts: list[str]) -> set[str]:
    """Host header values this runtime answers: loopback names and any named on purpose."""
    names = {"127.0.0.1", "localhost", "[::1]"} | set(extra_hosts)
    return {f"{name}:{port}" for name in names} | names


@web.middleware
async def local_only(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    if request.headers.get("Host", "") not in request.app["allowed_hosts"]:
        return web.Response(status=421, text="This runtime answers only requests addressed to it.")
    if "Origin" in request.headers or request.headers.get("Sec-Fetch-Site") == "cross-site":
        return web.Response(status=403, text="Browsers may not call the runtime directly.")
    return await handler(request)


async def ping(request: web.Request) -> web.Response:
    """Liveness for /healthz and compose: the runtime is up, how long, how many endpoints."""
    uptime = time.monotonic() - request.app["started"]
    endpoints = len(request.app["host"].endpoints)
    return web.json_response(
        {"status": "ok", "uptime_seconds": round(uptime, 1), "endpoints": endpoints}
    )


async def control(request: web.Request) -> web.Response:
    """SageMaker's control plane and Application Auto Scaling, both awsJson1.1: the service and
    operation are named by X-Amz-Target."""
    target = request.headers.get("X-Amz-Target", "")
    service, _, operation = target.partition(".")
    method = SERVICES.get(service, {}).get(operation)
    if method is None:
        error = ApiError(
            "UnknownOperationException", f"The local runtime does not serve {target!r}."
        )
        return control_error(error)
    try:
        parameters = json.loads(await request.read() or b"{}")
    except ValueError:
        return control_error(ApiError("SerializationException", "The body is not valid JSON."))
    try:
        answer = getattr(request.app["host"], method)(parameters)
    except ApiError as error:
        return control_error(error)
    return web.json_response(answer, content_type="application/x-amz-json-1.1")


def invocation_headers(request: web.Request) -> dict[str, str]:
    return checked_headers(request.headers)


def checked_headers(received: Mapping[str, str]) -> dict[str, str]:
    """The SageMaker Runtime headers of a request (`received`: its headers, looked up by the
    names HEADERS gives), checked as the API model says: at most 1024 printable ASCII
    characters, and a TargetModel that cannot climb out of its prefix."""
    headers = {name: received.get(header, "") for name, header in HEADERS.items()}
    if "X-Amzn-SageMaker-Accept" in received:  # the streaming API's name for Accept
        headers["accept"] = received["X-Amzn-SageMaker-Accept"]
    for name, value in headers.items():
        if len(value) > 1024 or any(not 0x20 <= ord(char) <= 0x7E for char in value):
            raise ApiError(
                "ValidationError", f"Header {HEADERS[name]} must be at most 1024 printable ASCII."
            )
    target = headers["target_model"]
    if target and (
        target.startswith("/")
        or any(char in target for char in "\\#?\0")
        or ".." in target.split("/")
    ):
        raise ApiError(
            "ValidationError",
            f"TargetModel {target!r} must be a relative path under the endpoint's model prefix, "
            "without '..', a leading '/', or the characters \\ # ?.",
        )
    return headers


async def read_body(request: web.Request) -> bytes:
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ApiError(
            "ValidationError", f"The request body is over {MAX_BODY} bytes, SageMaker's 6 MB cap."
        )
    return body


async def invoke(request: web.Request) -> web.Response:
    """InvokeEndpoint."""
    try:
        headers = invocation_headers(request)
        body = await read_body(request)
        result = await request.app["host"].invoke(request.match_info["name"], body, headers)
    except ApiError as error:
        return runtime_error(error)
    return web.Response(body=result.body, headers=invocation_response_headers(result))


def invocation_response_headers(result: Invocation) -> dict[str, str]:
    headers = {
        "Content-Type": result.content_type,
        "x-Amzn-Invoked-Production-Variant": result.variant,
        MODEL_LATENCY_HEADER: str(round(result.model_seconds * 1e6)),
    }
    if result.custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
    return headers


async def invoke_stream(request: web.Request) -> web.StreamResponse:
    """InvokeEndpointWithResponseStream: the model's chunks framed as AWS event stream
    PayloadPart events, sent as they arrive. A stream that breaks ends with ModelStreamError."""
    try:
        headers = invocation_headers(request)
        body = await read_body(request)
        variant, container, answer = await request.app["host"].invoke_stream(
            request.match_info["name"], body, headers
        )
    except ApiError as error:
        return runtime_error(error)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": answer.headers.get("Content-Type", ""),
            "x-Amzn-Invoked-Production-Variant": variant.name,
        }
    )
    await response.prepare(request)
    try:
        async for chunk in answer.content.iter_any():
            await response.write(eventstream.payload_part(chunk))
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as error:
        message = f"The model's stream from {container.hostname} broke: {error}"
        await response.write(eventstream.model_stream_error(message, "StreamBroken"))
    except TimeoutError:
        message = "The model sent nothing for the invocation timeout."
        await response.write(eventstream.model_stream_error(message, "ModelInvocationTimeExceeded"))
    finally:
        answer.release()  # if the caller left, this closes the container's stream: it stops
    await response.write_eof()
    return response


# InvokeEndpointAsync sends every parameter as an X-Amzn-SageMaker-* header, even the types.
ASYNC_HEADERS = {
    "content_type": "X-Amzn-SageMaker-Content-Type",
    "accept": "X-Amzn-SageMaker-Accept",
    "input_location": "X-Amzn-SageMaker-InputLocation",
    "ttl": "X-Amzn-SageMaker-RequestTTLSeconds",
    "timeout": "X-Amzn-SageMaker-InvocationTimeoutSeconds",
    "output_extension": "X-Amzn-SageMaker-S3OutputPathExtension",
    "filename": "X-Amzn-SageMaker-Filename",
}


async def invoke_async(request: web.Request) -> web.Response:
    """InvokeEndpointAsync: 202 once the request is safely queued, with where its output (or
    its failure) will be written."""
    try:
        headers = invocation_headers(request)
        headers |= {name: request.headers.get(header, "") for name, header in ASYNC_HEADERS.items()}
        body = await request.content.read(128_001)
        answer = request.app["host"].invoke_async(request.match_info["name"], body, headers)
    except ApiError as error:
        return runtime_error(error)
    response_headers = {"X-Amzn-SageMaker-OutputLocation": answer["OutputLocation"]}
    if answer["FailureLocation"]:
        response_headers["X-Amzn-SageMaker-FailureLocation"] = answer["FailureLocation"]
    return web.json_response(
        {"InferenceId": answer["InferenceId"]}, status=202, headers=response_headers
    )


async def local_metrics(request: web.Request) -> web.Response:
    """Per-minute datapoints of one endpoint: ?endpoint=NAME&start=EPOCH&end=EPOCH."""
    now = time.time()
    try:
        start = float(request.query.get("start", now - 3600))
        end = float(request.query.get("end", now + 60))
    except ValueError:
        return web.json_response({"message": "start and end are epoch seconds"}, status=400)
    points = request.app["host"].metrics.query(request.query.get("endpoint", ""), start, end)
    return web.json_response({"datapoints": points})


async def local_logs(request: web.Request) -> web.Response:
    try:
        logs = request.app["host"].logs(request.match_info["name"])
    except ApiError as error:
        return web.json_response({"message": error.message}, status=404)
    return web.json_response({"logs": logs})


async def local_events(request: web.Request) -> web.Response:
    try:
        endpoint = request.app["host"].endpoint(request.match_info["name"])
    except ApiError as error:
        return web.json_response({"message": error.message}, status=404)
    return web.json_response({"events": endpoint.events})


def create_app(
    port: int,
    *,
    state_dir: Path,
    storage_root: Path,
    extra_hosts: list[str] | None = None,
    **host_options: object,
) -> web.Application:
    # Bodies are read by the handlers with SageMaker's own cap and error, not aiohttp's 413.
    app = web.Application(middlewares=[local_only], client_max_size=MAX_BODY + 1024 * 1024)
    app["allowed_hosts"] = allowed_hosts(port, extra_hosts or [])
    app["started"] = time.monotonic()
    app["host"] = Host(state_dir, LocalStorage(storage_root), **host_options)

    async def start_host(app: web.Application) -> None:
        await app["host"].start()

    async def stop_host(app: web.Application) -> None:
        await app["host"].stop()

    app.on_startup.append(start_host)
    app.on_cleanup.append(stop_host)
    app.router.add_get("/ping", ping)
    app.router.add_post("/", control)
    app.router.add_post("/endpoints/{name}/invocations", invoke)
    app.router.add_post("/endpoints/{name}/async-invocations", invoke_async)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", invoke_stream)
    app.router.add_get("/_local/metrics", local_metrics)
    app.router.add_get("/_local/endpoints/{name}/logs", local_logs)
    app.router.add_get("/_local/endpoints/{name}/events", local_events)
    return app
