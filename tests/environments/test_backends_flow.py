"""The same portal flow against both backends: aws (boto3 under moto) and local (a real runtime).

Register a model, create its endpoint config and endpoint, poll to InService, invoke it, read
its metrics, delete everything. The code under test is identical for both; only what answers
differs.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from environments.backends.aws import AwsBackend
from environments.backends.local import LocalBackend
from environments.models import Environment
from tests.runtime import artifacts

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.5"
ROLE = "arn:aws:iam::123456789012:role/PortalSageMakerExecution"


@pytest.fixture(params=["aws", "local"])
def backend(request, monkeypatch):
    if request.param == "aws":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            environment = Environment(
                name="prod", kind="aws", region="us-east-1", bucket="acme-ml", prefix="portal/"
            )
            aws = AwsBackend(environment)
            aws.s3.create_bucket(Bucket="acme-ml")
            yield aws
    else:
        runtime_url = request.getfixturevalue("runtime_url")
        environment = Environment(name="local", kind="local", bucket="acme-ml", prefix="portal/")
        yield LocalBackend(environment, runtime_url=runtime_url)


@pytest.mark.integration
def test_the_portal_flow_works_the_same_on_both_backends(backend) -> None:
    uri = "s3://acme-ml/portal/models/iris/model.tar.gz"

    backend.upload_object(uri, artifacts.iris_like_classifier())
    backend.create_model(
        {
            "ModelName": "portal-iris",
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": uri},
        }
    )
    backend.create_endpoint_config(
        {
            "EndpointConfigName": "portal-iris-c1",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "portal-iris",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        }
    )
    backend.create_endpoint("portal-iris", "portal-iris-c1")
    deadline = time.monotonic() + 60
    state = backend.describe_endpoint("portal-iris")
    while state.status == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        state = backend.describe_endpoint("portal-iris")
    invocation = backend.invoke("portal-iris", b"9,1", content_type="text/csv")
    now = datetime.now(UTC)
    series = backend.metric_series(
        "portal-iris",
        "AllTraffic",
        "Invocations",
        now - timedelta(minutes=5),
        now + timedelta(minutes=1),
    )
    latency = (
        backend.metric_series(
            "portal-iris",
            "AllTraffic",
            "ModelLatency",
            now - timedelta(minutes=5),
            now + timedelta(minutes=1),
            stat="p99",
        )
        if isinstance(backend, LocalBackend)
        else []
    )
    listed = [summary.name for summary in backend.list_endpoints()]
    stored = [item.uri for item in backend.list_objects("s3://acme-ml/portal/models/")]
    backend.delete_endpoint("portal-iris")
    backend.delete_endpoint_config("portal-iris-c1")
    backend.delete_model("portal-iris")

    assert state.status == "InService"
    assert state.config_name == "portal-iris-c1"
    assert listed == ["portal-iris"]
    assert stored == [uri]
    assert invocation.body
    assert invocation.total_ms > 0
    assert backend.describe_model("portal-iris") is None
    assert backend.describe_endpoint_config("portal-iris-c1") is None
    if isinstance(backend, LocalBackend):  # a real model answers, and the runtime counts it
        assert invocation.body == b'{"predictions": [1]}'
        assert invocation.variant == "AllTraffic"
        assert 0 < invocation.model_ms < invocation.total_ms
        # the one call's model time, as a p99 from the runtime's histogram (buckets 5% wide)
        assert [point.value for point in latency] == [
            pytest.approx(invocation.model_ms * 1000, rel=0.05)
        ]
        assert sum(point.value for point in series) == 1
    else:  # moto answers a canned body and keeps no metrics
        assert invocation.model_ms is None
        assert series == []


@pytest.mark.integration
def test_local_backend_reports_a_missing_runtime_plainly() -> None:
    environment = Environment(name="local", kind="local", bucket="acme-ml")
    backend = LocalBackend(environment, runtime_url="http://127.0.0.1:9")

    checks = backend.test_connection()

    assert checks[0].ok is False
    assert "does not answer. Is it running (make run starts it)?" in checks[0].detail
    assert checks[1].ok is True  # storage is on this machine


@pytest.mark.integration
def test_local_backend_logs_show_the_container_output(runtime_url, runtime_dirs) -> None:
    environment = Environment(name="local", kind="local", bucket="acme-ml")
    backend = LocalBackend(environment, runtime_url=runtime_url)
    backend.upload_object("s3://acme-ml/m/model.tar.gz", artifacts.iris_like_classifier())
    backend.create_model(
        {
            "ModelName": "logged",
            "PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://acme-ml/m/model.tar.gz"},
        }
    )
    backend.create_endpoint_config(
        {
            "EndpointConfigName": "logged",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "logged",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        }
    )
    backend.create_endpoint("logged", "logged")
    deadline = time.monotonic() + 30
    while backend.describe_endpoint("logged").status == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    lines = backend.endpoint_logs("logged")

    assert any("Serving sklearn on 127.0.0.1" in line.message for line in lines)
    assert lines[0].source == "AllTraffic-0/primary"
