"""The runtime's HTTP front: SageMaker Runtime's routes, guarded against anything not local.

It binds loopback by default and answers only requests addressed to itself: a foreign Host
header (DNS rebinding), any Origin header or a cross-site fetch (a web page in a browser) is
refused before any route runs.
"""

import json
import time

from aiohttp import web

ENDPOINT_NOT_FOUND = "Endpoint {name} of account local not found."


def sagemaker_error(status: int, code: str, message: str) -> web.Response:
    """An error in SageMaker Runtime's rest-json shape, which boto3 turns into a ClientError."""
    body = json.dumps({"message": message})
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        headers={
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"
        },
    )


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]"}


def allowed_hosts(port: int, extra_hosts: list[str]) -> set[str]:
    """Host header values this runtime answers: loopback names and any named on purpose."""
    names = LOOPBACK_NAMES | set(extra_hosts)
    return {f"{name}:{port}" for name in names} | names


@web.middleware
async def local_only(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    app_hosts = request.app["allowed_hosts"]
    if request.headers.get("Host", "") not in app_hosts:
        return web.Response(status=421, text="This runtime answers only requests addressed to it.")
    if "Origin" in request.headers or request.headers.get("Sec-Fetch-Site") == "cross-site":
        return web.Response(status=403, text="Browsers may not call the runtime directly.")
    return await handler(request)


async def ping(request: web.Request) -> web.Response:
    """Liveness for /healthz and compose: the runtime is up and how long it has been."""
    uptime = time.monotonic() - request.app["started"]
    return web.json_response({"status": "ok", "uptime_seconds": round(uptime, 1), "endpoints": 0})


async def invoke(request: web.Request) -> web.Response:
    """InvokeEndpoint and its async and streaming forms. No endpoint runs here yet, so every name
    is unknown, answered exactly as SageMaker answers an unknown endpoint."""
    name = request.match_info["name"]
    return sagemaker_error(400, "ValidationError", ENDPOINT_NOT_FOUND.format(name=name))


def create_app(port: int, extra_hosts: list[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[local_only], client_max_size=6 * 1024 * 1024 + 1)
    app["allowed_hosts"] = allowed_hosts(port, extra_hosts or [])
    app["started"] = time.monotonic()
    app.router.add_get("/ping", ping)
    app.router.add_post("/endpoints/{name}/invocations", invoke)
    app.router.add_post("/endpoints/{name}/async-invocations", invoke)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", invoke)
    return app
