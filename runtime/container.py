"""One serving container: a process implementing SageMaker's container contract for one image.

    python -m runtime.container --image sklearn --model-dir DIR --port PORT [--multi-model]

It loads the model before it listens, so a `GET /ping` that answers means ready. A model that
fails to load writes why to `--failure-file` and exits 3; the runtime makes that the endpoint's
FailureReason. `POST /invocations` answers one request; with the header `X-Portal-Stream: 1` it
streams the answer chunk by chunk as the model produces it. With `--multi-model` it serves the
multi-model container API instead (`/models`, `/models/{name}/invoke`).
"""

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from runtime import new_loop
from runtime.images import Image, ModelError, image_class

STREAM_HEADER = "X-Portal-Stream"
ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
# A call this quick costs less than the hand-off to a worker thread and back. That hand-off is
# a GIL convoy: the loop waits for the worker's switch interval, so answers leave in bursts and
# the container idles between them (make bench: behind the router, 0.78 of direct throughput
# with the hand-off, 1.0 without). Once an image's last QUICK_STREAK calls each took under
# QUICK_CALL_S, its calls with small bodies run on the event loop; any slower call sends the
# next ones back to worker threads until the streak builds again. A call that hangs on the loop
# leaves /ping unanswered, which the runtime treats as stuck (it restarts the container).
QUICK_CALL_S = 0.001
QUICK_STREAK = 32
QUICK_BODY_BYTES = 64 * 1024

# The application's state (aiohttp AppKeys).
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
WORKERS = web.AppKey("workers", int)  # worker threads for model calls
BUSY = web.AppKey("busy", dict)  # a call's key -> when it started, while it runs
HUNG_AFTER = web.AppKey("hung_after", float)  # seconds on one call that count as stuck; 0: never
IMAGE_CLASS = web.AppKey("image_class", type)
MODELS = web.AppKey("models", dict)  # "" for a single-model container, else TargetModel names
STANDBY = web.AppKey("standby", bool)  # a warm spare waiting for /_adopt


def tracked(busy: dict, call: object, *arguments: object) -> object:
    """Run one model call on a worker thread, noting since when: /ping reports the container
    stuck once every worker has been on one call past the runtime's invocation timeout."""
    key = object()
    busy[key] = time.monotonic()
    try:
        return call(*arguments)
    finally:
        busy.pop(key, None)


def timed_invoke(model: Image, *arguments: object) -> tuple[bytes, str]:
    """`model.invoke`, counting whether it was quick (see QUICK_CALL_S)."""
    started = time.perf_counter()
    try:
        return model.invoke(*arguments)
    finally:
        quick = time.perf_counter() - started < QUICK_CALL_S
        model.quick_calls = model.quick_calls + 1 if quick else 0


def runs_inline(model: Image, body: bytes) -> bool:
    return (
        model.inline_when_quick
        and model.quick_calls >= QUICK_STREAK
        and len(body) <= QUICK_BODY_BYTES
    )


def stuck(app: web.Application) -> bool:
    started = list(app[BUSY].values())
    limit = app[HUNG_AFTER]
    return bool(limit) and len(started) >= app[WORKERS] and time.monotonic() - min(started) > limit


def error_response(error: ModelError) -> web.Response:
    return web.Response(status=error.status, text=error.message)


async def answer(request: web.Request, model: Image) -> web.StreamResponse:
    """Run one invocation on a worker thread (models block, the event loop must not), or on
    the loop itself when the image's calls are known to be quick."""
    body = await request.read()
    content_type = request.headers.get("Content-Type", "application/json")
    accept = request.headers.get("Accept", "")
    attributes = request.headers.get(ATTRIBUTES_HEADER, "")
    executor = request.app[EXECUTOR]
    if request.headers.get(STREAM_HEADER) == "1":
        return await stream(request, model, (body, content_type, accept, attributes))
    loop = asyncio.get_running_loop()
    arguments = (body, content_type, accept, attributes)
    try:
        if runs_inline(model, body):
            result, result_type = timed_invoke(model, *arguments)
        else:
            result, result_type = await loop.run_in_executor(
                executor, tracked, request.app[BUSY], timed_invoke, model, *arguments
            )
    except ModelError as error:
        return error_response(error)
    except Exception as error:  # noqa: BLE001 (any failure inside a model is the model's error)
        return error_response(ModelError(500, f"{type(error).__name__}: {error}"))
    return web.Response(body=result, headers={"Content-Type": result_type})


async def stream(request: web.Request, model: Image, arguments: tuple) -> web.StreamResponse:
    """Send chunks as the model yields them. When the caller goes away the generator is closed,
    which frees the model for the next request (an LLM stops generating)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        chunks = None
        try:
            # Created inside the try: an image may refuse a request as soon as it is asked.
            chunks = model.invoke_stream(*arguments)
            for chunk in chunks:
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
        except ModelError as error:
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error))
        except Exception as error:  # noqa: BLE001 (the model's failure, reported to the caller)
            failure = ModelError(500, f"{type(error).__name__}: {error}")
            loop.call_soon_threadsafe(queue.put_nowait, ("error", failure))
        finally:
            if chunks is not None:
                chunks.close()

    producer = loop.run_in_executor(request.app[EXECUTOR], tracked, request.app[BUSY], produce)
    kind, value = await queue.get()
    if kind == "error":
        return error_response(value)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    try:
        while kind == "chunk":
            await response.write(value)
            kind, value = await queue.get()
        if kind == "error":
            # Headers are gone: break the connection so the runtime reports a broken stream.
            request.transport.close()
            return response
        await response.write_eof()
    finally:
        stop.set()
        await producer
    return response


async def ping(request: web.Request) -> web.Response:
    """Ready once a model is loaded (or, for a multi-model container, at once). A standby
    spare answers 503 until it is adopted, and so does a container whose every worker is
    stuck in one call: the runtime then replaces it."""
    if stuck(request.app):
        return web.Response(status=503, text="Every worker is stuck in one invocation.")
    return web.Response(status=503 if request.app[STANDBY] else 200)


async def adopt(request: web.Request) -> web.Response:
    """Turn a warm standby spare into a serving container: its libraries are imported already,
    so only the model itself loads now. That is what keeps serverless cold starts short."""
    if not request.app[STANDBY]:
        return web.json_response({"message": "This container already serves a model."}, status=409)
    data = await request.json()
    os.environ.update(data.get("environment", {}))
    os.chdir(data["work_dir"])
    loop = asyncio.get_running_loop()
    if not data.get("multi_model"):
        try:
            request.app[MODELS][""] = await loop.run_in_executor(
                request.app[EXECUTOR],
                request.app[IMAGE_CLASS],
                Path(data["model_dir"]),
                dict(os.environ),
            )
        except Exception as error:  # noqa: BLE001 (whatever stops the model loading is the reason)
            reason = str(error) if isinstance(error, RuntimeError | ValueError) else repr(error)
            print(f"The model failed to load: {reason}", file=sys.stderr, flush=True)
            return web.json_response({"message": reason}, status=500)
    request.app[STANDBY] = False
    print(f"Adopted: serving {data['model_dir']}", flush=True)
    return web.json_response({"status": "serving"})


async def invocations(request: web.Request) -> web.StreamResponse:
    return await answer(request, request.app[MODELS][""])


async def load_model(request: web.Request) -> web.Response:
    """Multi-model API: load `url` under `model_name` (409 if loaded, 507 if out of memory)."""
    data = await request.json()
    name, url = data.get("model_name"), data.get("url")
    models = request.app[MODELS]
    if not name or not url:
        return web.json_response({"message": "model_name and url are required"}, status=400)
    if name in models:
        return web.json_response({"message": f"Model {name} is already loaded"}, status=409)
    loop = asyncio.get_running_loop()
    image = request.app[IMAGE_CLASS]
    try:
        models[name] = await loop.run_in_executor(
            request.app[EXECUTOR], image, Path(url), dict(os.environ)
        )
    except MemoryError:
        return web.json_response({"message": "Out of memory loading the model"}, status=507)
    except Exception as error:  # noqa: BLE001 (a model that fails to load: say why)
        return web.json_response({"message": f"{type(error).__name__}: {error}"}, status=500)
    return web.json_response({"status": f"Model {name} loaded"})


async def list_models(request: web.Request) -> web.Response:
    models = request.app[MODELS]
    listed = [
        {"modelName": name, "modelUrl": str(model.model_dir)} for name, model in models.items()
    ]
    return web.json_response({"models": listed})


async def describe_model(request: web.Request) -> web.Response:
    model = request.app[MODELS].get(request.match_info["name"])
    if model is None:
        return web.json_response({"message": "Model not loaded"}, status=404)
    return web.json_response(
        {"modelName": request.match_info["name"], "modelUrl": str(model.model_dir)}
    )


async def unload_model(request: web.Request) -> web.Response:
    model = request.app[MODELS].pop(request.match_info["name"], None)
    if model is None:
        return web.json_response({"message": "Model not loaded"}, status=404)
    model.close()
    return web.json_response({"status": "unloaded"})


async def invoke_model(request: web.Request) -> web.StreamResponse:
    model = request.app[MODELS].get(request.match_info["name"])
    if model is None:
        return web.json_response({"message": "Model not loaded"}, status=404)
    return await answer(request, model)


def build_app(
    image: str, model_dir: Path | None, multi_model: bool, standby: bool = False
) -> web.Application:
    """Load the model (single-model containers, unless a standby spare) and wire the routes."""
    app = web.Application(client_max_size=7 * 1024 * 1024)
    workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "4"))
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=workers)
    app[WORKERS] = workers
    app[BUSY] = {}
    app[HUNG_AFTER] = float(os.environ.get("PORTAL_HUNG_AFTER_SECONDS") or 0)
    app[IMAGE_CLASS] = image_class(image)
    app[IMAGE_CLASS].preload()
    app[MODELS] = {}
    app[STANDBY] = standby
    if not multi_model and not standby:
        app[MODELS][""] = app[IMAGE_CLASS](model_dir, dict(os.environ))
    app.router.add_get("/ping", ping)
    app.router.add_post("/_adopt", adopt)
    app.router.add_post("/invocations", invocations)
    app.router.add_post("/models", load_model)
    app.router.add_get("/models", list_models)
    app.router.add_get("/models/{name}", describe_model)
    app.router.add_delete("/models/{name}", unload_model)
    app.router.add_post("/models/{name}/invoke", invoke_model)
    return app


def die_with_parent() -> None:
    """A container must not outlive the runtime that started it (a killed runtime would leave
    orphans holding ports and memory). Linux tells us at once; elsewhere a watchdog polls."""
    # The runtime passes its pid: if it died before this line ran, getppid() would already
    # name the process that adopted us, and comparing against that would notice nothing.
    parent = int(os.environ.get("PORTAL_RUNTIME_PID", os.getppid()))
    if os.getppid() != parent:
        sys.exit(0)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            sys.exit(0)

    def watchdog() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="parent-watchdog").start()


def limit_resources() -> None:
    """Bound what one model can take from the machine (reliability.md S11): no core dumps, a
    cap on open files and on the size of any file it writes, and, when the runtime passes
    `PORTAL_MODEL_MEMORY_MB`, on its address space, so a runaway model fails with MemoryError
    (a ModelError to the caller) instead of starving the portal."""
    import resource

    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 4096,
        resource.RLIMIT_FSIZE: 8 * 1024**3,
    }
    memory_mb = int(os.environ.get("PORTAL_MODEL_MEMORY_MB") or 0)
    if memory_mb > 0:
        limits[resource.RLIMIT_AS] = memory_mb * 1024**2
    for which, value in limits.items():
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def main() -> None:
    die_with_parent()
    limit_resources()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", required=True)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--standby", action="store_true", help="import, wait for /_adopt")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))
    )
    parser.add_argument("--multi-model", action="store_true")
    parser.add_argument("--failure-file", type=Path)
    options = parser.parse_args()
    try:
        app = build_app(options.image, options.model_dir, options.multi_model, options.standby)
    except Exception as error:  # noqa: BLE001 (whatever stops the model loading is the reason)
        reason = str(error) if isinstance(error, RuntimeError | ValueError) else repr(error)
        print(f"The model failed to load: {reason}", file=sys.stderr)
        if options.failure_file:
            options.failure_file.write_text(reason)
        sys.exit(3)
    print(f"Serving {options.image} on 127.0.0.1:{options.port}", flush=True)
    web.run_app(
        app, host="127.0.0.1", port=options.port, print=None, access_log=None, loop=new_loop()
    )


if __name__ == "__main__":
    main()
