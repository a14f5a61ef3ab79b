"""Provider charts for an aws environment, with CloudWatch and Application Auto Scaling
answered by moto: the instance count comes from Invocations ÷ InvocationsPerInstance, since
CloudWatch has no instance-count metric."""

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from endpoints.models import Endpoint
from environments.backends import aws
from environments.models import Environment
from insights import charts

pytestmark = pytest.mark.django_db


@pytest.fixture
def aws_endpoint(monkeypatch, aws_test_keys):
    aws._role_credentials.clear()
    environment = Environment.objects.create(
        name="prod", kind="aws", region="eu-west-1", bucket="acme-ml", prefix="portal/"
    )
    with mock_aws():
        yield Endpoint.objects.create(
            environment=environment,
            name="churn",
            status=Endpoint.Status.IN_SERVICE,
            spec={
                "variants": [
                    {"name": "AllTraffic", "instance_type": "ml.m5.large", "instance_count": 1}
                ],
                "autoscaling": {"enabled": True, "min": 1, "max": 4, "target": 70},
            },
        )
    aws._role_credentials.clear()


def put(endpoint: Endpoint, metric: str, value: float, when: datetime) -> None:
    endpoint.environment.backend.cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint.name},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                "Timestamp": when,
                "Value": value,
            }
        ],
    )


def test_instance_count_on_aws_is_invocations_over_invocations_per_instance(aws_endpoint):
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    put(aws_endpoint, "Invocations", 300, minute)
    put(aws_endpoint, "InvocationsPerInstance", 100, minute)
    scaling = aws_endpoint.environment.backend.autoscaling
    # moto has no DescribeScalingActivities (shared/reference/sagemaker.md §9): stub it.
    stubber = Stubber(scaling)
    stubber.add_response(
        "describe_scaling_activities",
        {
            "ScalingActivities": [
                {
                    "ActivityId": "a-1",
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": "endpoint/churn/variant/AllTraffic",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "Description": "Setting desired instance count to 3.",
                    "Cause": "monitor alarm TargetTracking-AlarmHigh in state ALARM",
                    "StartTime": minute + timedelta(seconds=30),
                    "EndTime": minute + timedelta(minutes=4),
                    "StatusCode": "Successful",
                }
            ]
        },
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/churn/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )

    with stubber:
        metrics = charts.provider(aws_endpoint, charts.window("1h"))

    assert "instances" not in metrics.errors
    assert [(row["before"], row["after"], row["status"]) for row in metrics.activities] == [
        (1, 3, "Successful")
    ]
    assert metrics.facts["scale_outs"] == 1
    assert metrics.facts["instances"] == {"AllTraffic": [3]}
    target = metrics.figures["per_instance"]["data"][-1]
    assert target["name"] == "target 70"
    assert target["y"] == [70.0, 70.0]
