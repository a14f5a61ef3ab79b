"""boto3 clients are made once per process and shared: making one costs tens of milliseconds of
CPU, which every page, poll and invocation would otherwise pay."""

from datetime import UTC, datetime, timedelta

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
