"""The runtime's front door: loopback only, no browsers, SageMaker's error shape."""

import json
import urllib.error
import urllib.request

import pytest


def request(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    prepared = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(prepared, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_ping_answers_on_loopback(runtime_url) -> None:
    status, _, body = request(f"{runtime_url}/ping")

    assert status == 200
    assert json.loads(body)["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example.com"}, 421),
        ({"Origin": "http://127.0.0.1:8000"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
    ],
)
def test_foreign_hosts_origins_and_cross_site_fetches_are_refused(runtime_url, headers, status):
    for method in ("GET", "POST"):
        path = "/ping" if method == "GET" else "/endpoints/any/invocations"
        body = b"{}" if method == "POST" else None

        got, _, _ = request(f"{runtime_url}{path}", method, headers, body)

        assert got == status


def test_unknown_endpoint_is_a_sagemaker_validation_error(runtime_url) -> None:
    status, headers, body = request(
        f"{runtime_url}/endpoints/nope/invocations",
        "POST",
        {"Content-Type": "application/json"},
        b"{}",
    )

    assert status == 400
    assert headers["x-amzn-ErrorType"] == "ValidationError"
    assert json.loads(body)["message"] == "Endpoint nope of account 000000000000 not found."
