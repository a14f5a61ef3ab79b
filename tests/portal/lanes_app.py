"""A WSGI app for tests/portal/test_serving.py: POST /playground/... sleeps `?seconds=`, and every
answer names the path, when it finished and which process served it."""

import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["0"])[0])
        time.sleep(seconds)
    body = f"{environ['PATH_INFO']} {time.monotonic():.6f} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
