"""boto3 clients are made once per process and shared: making one costs tens of milliseconds of
CPU, which every page, poll and invocation would otherwise pay."""

import logging
import runpy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from environments.backends import aws
from environments.backends.aws import AwsBackend
from environments.backends.local import LocalBackend
from environments.models import Environment


def test_backends_of_one_place_share_their_clients_and_other_places_get_their_own() -> None:
    local = Environment(name="local", kind="local", bucket="b", prefix="p/")

    first = LocalBackend(local, runtime_url="http://127.0.0.1:8081")
    second = LocalBackend(
        Environment(name="other", kind="local"), runtime_url="http://127.0.0.1:8081"
    )
    elsewhere = LocalBackend(local, runtime_url="http://127.0.0.1:9")

    assert first.runtime is second.runtime
    assert first.sagemaker is second.sagemaker and first.sagemaker is not first.runtime
    assert elsewhere.runtime is not first.runtime


def test_a_role_environment_gets_a_new_client_when_its_credentials_are_renewed(monkeypatch):
    environment = Environment(
        name="prod",
        kind="aws",
        region="eu-west-1",
        assume_role_arn="arn:aws:iam::123456789012:role/Portal",
    )
    later = datetime.now(UTC) + timedelta(hours=1)

    def credentials(key: str) -> dict:
        return {
            "AccessKeyId": key,
            "SecretAccessKey": "s",
            "SessionToken": "t",
            "Expiration": later,
        }

    monkeypatch.setattr(aws, "role_credentials", lambda *args: credentials("ASIA1"))
    before = AwsBackend(environment).sagemaker
    again = AwsBackend(environment).sagemaker
    monkeypatch.setattr(aws, "role_credentials", lambda *args: credentials("ASIA2"))
    renewed = AwsBackend(environment).sagemaker

    assert again is before
    assert renewed is not before
    assert renewed.meta.region_name == "eu-west-1"


def test_a_backend_given_its_own_session_shares_nothing() -> None:
    import boto3

    environment = Environment(name="prod", kind="aws", region="us-east-1")
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s")

    assert AwsBackend(environment, session=session).s3 is not AwsBackend(environment).s3


GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_a_web_process_makes_its_local_runtime_client_before_its_first_request(monkeypatch):
    monkeypatch.setattr(aws, "_clients", {})
    post_worker_init = runpy.run_path(str(GUNICORN_CONF))["post_worker_init"]

    post_worker_init(SimpleNamespace(log=logging.getLogger("gunicorn.error")))
    made = list(aws._clients.values())
    first_request = LocalBackend(Environment(name="local", kind="local"))

    assert len(made) == 1
    assert first_request.runtime is made[0]
    assert made[0].meta.service_model.service_name == "sagemaker-runtime"


def test_a_client_that_cannot_be_made_does_not_keep_a_web_process_from_starting(
    monkeypatch, caplog: pytest.LogCaptureFixture
):
    def broken(cls, runtime_url=None):
        raise ValueError("Invalid endpoint: nowhere")

    monkeypatch.setattr(LocalBackend, "warm_up", classmethod(broken))
    post_worker_init = runpy.run_path(str(GUNICORN_CONF))["post_worker_init"]

    post_worker_init(SimpleNamespace(log=logging.getLogger("gunicorn.error")))

    assert "The local runtime's client could not be made now" in caplog.text
    assert "Invalid endpoint: nowhere" in caplog.text
