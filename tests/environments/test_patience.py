"""A page's provider calls give up sooner than a Celery task's: a person is waiting.

An AWS, or a proxy in front of it, that takes the connection and never answers cost Test
connection 271 s with the control plane's config (3 tries of 30 s, three checks one after
another). A page now makes 2 tries of at most 8 s, and its checks go out together. (The configs
themselves: test_aws_backend.py.)"""

import socket
import threading

import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from django.urls import reverse

from environments.backends import aws
from environments.models import Environment

REGION = "eu-west-1"


class SilentAws:
    """Takes every connection and reads each request, and never answers. It counts the
    requests and the most that waited for an answer at one time."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.requests = self.waiting = self.most_waiting = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self.hold, args=(connection,), daemon=True).start()

    def hold(self, connection: socket.socket) -> None:
        with connection:
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                received += chunk
            with self.lock:
                self.requests += 1
                self.waiting += 1
                self.most_waiting = max(self.most_waiting, self.waiting)
            while connection.recv(65536):  # until the client gives up and closes
                pass
            with self.lock:
                self.waiting -= 1

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def silent_aws(settings, monkeypatch, aws_test_keys):
    """Every boto3 client of this process pointed at SilentAws, which S9's guard lets in; a
    page's tries shortened to 0.5 s (their number, 2, stays) and no sleep between them."""
    silent = SilentAws()
    settings.PORTAL_OUTBOUND_ALLOW = [silent.address]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{silent.address}")
    monkeypatch.setattr(
        aws,
        "INTERACTIVE_CONFIG",
        Config(retries=aws.INTERACTIVE_CONFIG.retries, connect_timeout=1, read_timeout=0.5),
    )
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    yield silent
    silent.close()


def test_test_connection_on_an_aws_that_never_answers_tries_each_check_twice_at_once(
    client_for, silent_aws
):
    environment = Environment.objects.create(
        name="prod-eu", kind="aws", region=REGION, bucket="acme-ml", prefix="portal/"
    )

    response = client_for("admin").post(
        reverse("environments:test_connection", args=[environment.pk])
    )

    checks = response.context["checks"]
    assert [check.name for check in checks] == [
        "sts:GetCallerIdentity",
        "sagemaker:ListEndpoints",
        "s3:ListBucket on s3://acme-ml/portal/",
    ]
    assert not any(check.ok for check in checks)
    assert all("AWS did not answer in time" in check.detail for check in checks)
    assert b"AWS did not answer in time" in response.content
    assert silent_aws.requests == 6  # 2 tries for each of the 3 checks: a page's config
    assert silent_aws.most_waiting == 3  # the three checks waited together, not in turn
