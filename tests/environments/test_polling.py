"""A status cycle lists in pages and describes only what moved."""

import pytest
from moto import mock_aws

from environments.backends.aws import AwsBackend
from environments.models import Environment
from environments.polling import naive_cycle, status_cycle


@pytest.fixture
def backend_with_endpoints(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        backend = AwsBackend(Environment(name="p", kind="aws", region="us-east-1", bucket="b-1"))
        backend.create_model(
            {
                "ModelName": "m",
                "ExecutionRoleArn": "arn:aws:iam::123456789012:role/Exec",
                "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x"},
            }
        )
        backend.create_endpoint_config(
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [
                    {
                        "VariantName": "v",
                        "ModelName": "m",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                    }
                ],
            }
        )
        for number in range(250):
            backend.create_endpoint(f"portal-{number}", "c")
        calls: list[str] = []
        backend.sagemaker.meta.events.register(
            "before-call.sagemaker.*", lambda model, **kwargs: calls.append(model.name)
        )
        yield backend, calls


def test_a_cycle_lists_in_pages_and_describes_only_endpoints_that_moved(backend_with_endpoints):
    backend, calls = backend_with_endpoints
    known = {f"portal-{number}": "InService" for number in range(250)}
    known["portal-7"] = "Creating"  # the portal last saw it creating: it moved since
    known["portal-gone"] = "InService"  # deleted behind the portal's back

    cycle = status_cycle(backend, known)

    assert calls.count("ListEndpoints") == 3  # 100 + 100 + 50
    assert calls.count("DescribeEndpoint") == 1
    assert set(cycle.described) == {"portal-7"}
    assert cycle.gone == {"portal-gone"}
    assert len(cycle.listed) == 250


def test_the_naive_way_describes_every_endpoint(backend_with_endpoints):
    backend, calls = backend_with_endpoints
    known = {f"portal-{number}": "InService" for number in range(250)}

    naive_cycle(backend, known)

    assert calls.count("DescribeEndpoint") == 250
