"""Serverless endpoints, autoscaling, data capture and metrics on a real runtime, via boto3."""

import json
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from runtime.capture import read_capture_file
from tests.runtime import artifacts
from tests.runtime.test_endpoints import deploy

pytestmark = pytest.mark.integration

SLOW = """
import time

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    time.sleep(1.0)
    return '{"slow": true}', "application/json"
"""


def serverless_variant(model: str, **config: int) -> list[dict]:
    return [
        {
            "VariantName": "AllTraffic",
            "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2, **config},
        }
    ]


def events(runtime_url: str, endpoint: str) -> list[str]:
    with urllib.request.urlopen(f"{runtime_url}/_local/endpoints/{endpoint}/events") as answer:
        return [event["message"] for event in json.load(answer)["events"]]


@pytest.mark.runtime_env(LOCAL_RUNTIME_SERVERLESS_IDLE_SECONDS="1")
def test_serverless_starts_on_first_request_and_scales_to_zero_when_idle(
    aws, runtime_dirs, runtime_url
):
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    container = {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}

    described = deploy(
        sagemaker, "lazy", {"PrimaryContainer": container}, variants=serverless_variant("lazy")
    )
    before = events(runtime_url, "lazy")
    answer = runtime.invoke_endpoint(EndpointName="lazy", ContentType="text/csv", Body=b"9,1")
    deadline = time.monotonic() + 20
    while not any("scaled to zero" in message for message in events(runtime_url, "lazy")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    again = runtime.invoke_endpoint(EndpointName="lazy", ContentType="text/csv", Body=b"0,1")

    assert described["EndpointStatus"] == "InService"
    assert not any("is up" in message for message in before)  # no process before a request
    assert answer["Body"].read() == b'{"predictions": [1]}'
    assert again["Body"].read() == b'{"predictions": [0]}'
    assert sum("Cold start" in message for message in events(runtime_url, "lazy")) == 2


def test_serverless_max_concurrency_throttles_the_excess(aws, runtime_dirs, runtime_url) -> None:
    sagemaker, runtime = aws
    uri = "s3://models/slow/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, artifacts.python_model(SLOW))
    deploy(
        sagemaker,
        "narrow",
        {"PrimaryContainer": {"Image": "python", "ModelDataUrl": uri}},
        variants=serverless_variant("narrow", ProvisionedConcurrency=1),
    )
    outcomes: list[str] = []

    def call() -> None:
        try:
            runtime.invoke_endpoint(
                EndpointName="narrow", ContentType="application/json", Body=b"{}"
            )
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with urllib.request.urlopen(f"{runtime_url}/_local/metrics?endpoint=narrow") as answer:
        points = json.load(answer)["datapoints"]
    used = [p for p in points if p["MetricName"] == "ServerlessConcurrentExecutionsUtilization"]

    assert sorted(outcomes) == ["ThrottlingException", "ThrottlingException", "ok", "ok"]
    assert max(point["Maximum"] for point in used) == 1.0  # both of MaxConcurrency 2 in use


def test_serverless_refuses_memory_sizes_sagemaker_does_not_offer(aws) -> None:
    sagemaker, _ = aws
    sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": "sklearn"})

    with pytest.raises(ClientError) as error:
        sagemaker.create_endpoint_config(
            EndpointConfigName="odd",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "m",
                    "ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 1},
                }
            ],
        )

    assert "Member must satisfy enum value set: [1024, 2048" in str(error.value)


@pytest.mark.runtime_env(LOCAL_RUNTIME_AUTOSCALING_PERIOD="2")
def test_target_tracking_scales_out_under_load_and_records_the_activity(
    aws, runtime_dirs, runtime_url
):
    import boto3

    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    deploy(
        sagemaker,
        "elastic",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
    )
    scaling = boto3.client(
        "application-autoscaling", endpoint_url=runtime_url, region_name="us-east-1"
    )
    resource = "endpoint/elastic/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=1,
        MaxCapacity=2,
    )
    scaling.put_scaling_policy(
        PolicyName="per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 60.0,
            "ScaleOutCooldown": 0,
            "ScaleInCooldown": 600,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )

    deadline = time.monotonic() + 30
    while (
        sagemaker.describe_endpoint(EndpointName="elastic")["ProductionVariants"][0][
            "CurrentInstanceCount"
        ]
        < 2
    ):
        runtime.invoke_endpoint(EndpointName="elastic", ContentType="text/csv", Body=b"1,1")
        assert time.monotonic() < deadline

    activities = scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource
    )["ScalingActivities"]
    assert activities[0]["StatusCode"] == "Successful"
    assert activities[0]["Description"] == "Setting desired instance count to 2."
    assert "InvocationsPerInstance was" in activities[0]["Cause"]


def test_data_capture_writes_sagemakers_records_and_metrics_count_invocations(
    aws, runtime_dirs, runtime_url
):
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    deploy(
        sagemaker,
        "watched",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://capture/data",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        },
    )

    for row in (b"9,1", b"0,1", b"10,1"):
        runtime.invoke_endpoint(
            EndpointName="watched",
            ContentType="text/csv",
            Body=row,
            InferenceId=f"id-{row.decode()}",
        )
    sagemaker.delete_endpoint(EndpointName="watched")  # flushes the capture buffer
    deadline = time.monotonic() + 20
    files = []
    while not files:
        files = list(
            (runtime_dirs["s3"] / "capture" / "data" / "watched" / "AllTraffic").rglob("*.jsonl")
        )
        assert time.monotonic() < deadline
        time.sleep(0.1)
    records, torn = read_capture_file(files[0].read_bytes())
    with urllib.request.urlopen(f"{runtime_url}/_local/metrics?endpoint=watched") as answer:
        points = json.load(answer)["datapoints"]

    assert torn == 0
    assert [r["captureData"]["endpointInput"]["data"] for r in records] == ["9,1", "0,1", "10,1"]
    assert records[0]["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert records[0]["captureData"]["endpointOutput"] == {
        "observedContentType": "application/json",
        "mode": "OUTPUT",
        "data": '{"predictions": [1]}',
        "encoding": "JSON",
    }
    assert records[0]["eventMetadata"]["inferenceId"] == "id-9,1"
    assert sum(p["Sum"] for p in points if p["MetricName"] == "Invocations") == 3
    latency = [p for p in points if p["MetricName"] == "ModelLatency"]
    assert latency and all(p["Minimum"] > 0 for p in latency)  # microseconds, measured


def test_async_endpoint_queues_requests_and_writes_outputs_to_s3(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    artifacts.write(runtime_dirs["s3"], "s3://inputs/rows.csv", b"9,1\n0,1\n")
    deploy(
        sagemaker,
        "batchy",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
        AsyncInferenceConfig={
            "OutputConfig": {
                "S3OutputPath": "s3://outputs/batchy",
                "S3FailurePath": "s3://outputs/batchy-failures",
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
        },
    )

    accepted = runtime.invoke_endpoint_async(
        EndpointName="batchy",
        InputLocation="s3://inputs/rows.csv",
        ContentType="text/csv",
        InferenceId="order-42",
    )
    bad = runtime.invoke_endpoint_async(
        EndpointName="batchy",
        InputLocation="s3://inputs/rows.csv",
        ContentType="image/png",
    )
    with pytest.raises(ClientError) as sync_call:
        runtime.invoke_endpoint(EndpointName="batchy", ContentType="text/csv", Body=b"1,1")
    output = runtime_dirs["s3"] / "outputs" / "batchy" / "order-42.out"
    failure = runtime_dirs["s3"] / "outputs" / "batchy-failures" / f"{bad['InferenceId']}-error.out"
    deadline = time.monotonic() + 20
    while not (output.exists() and failure.exists()):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    assert accepted["InferenceId"] == "order-42"
    assert accepted["OutputLocation"] == "s3://outputs/batchy/order-42.out"
    assert json.loads(output.read_bytes()) == {"predictions": [1, 0]}
    assert "image/png" in failure.read_text()
    assert "InvokeEndpointAsync" in str(sync_call.value)


@pytest.mark.runtime_env(LOCAL_RUNTIME_AUTOSCALING_PERIOD="1")
def test_async_endpoint_scales_to_zero_and_wakes_for_a_backlog(aws, runtime_dirs, runtime_url):
    import boto3

    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    artifacts.write(runtime_dirs["s3"], "s3://inputs/row.csv", b"9,1\n")
    deploy(
        sagemaker,
        "sleepy",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://outputs/sleepy"}},
    )
    scaling = boto3.client(
        "application-autoscaling", endpoint_url=runtime_url, region_name="us-east-1"
    )
    resource, dimension = (
        "endpoint/sleepy/variant/AllTraffic",
        "sagemaker:variant:DesiredInstanceCount",
    )
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=0,
        MaxCapacity=1,
    )
    scaling.put_scaling_policy(
        PolicyName="backlog",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 1.0,
            "ScaleInCooldown": 0,
            "ScaleOutCooldown": 0,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": "sleepy"}],
                "Statistic": "Average",
            },
        },
    )

    def instances() -> int:
        described = sagemaker.describe_endpoint(EndpointName="sleepy")
        return described["ProductionVariants"][0]["CurrentInstanceCount"]

    deadline = time.monotonic() + 20
    while instances() != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    accepted = runtime.invoke_endpoint_async(
        EndpointName="sleepy", InputLocation="s3://inputs/row.csv", ContentType="text/csv"
    )
    output = runtime_dirs["s3"] / "outputs" / "sleepy" / f"{accepted['InferenceId']}.out"
    while not output.exists():
        assert time.monotonic() < deadline + 20
        time.sleep(0.2)

    causes = [
        a["Description"]
        for a in scaling.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=resource
        )["ScalingActivities"]
    ]
    assert json.loads(output.read_bytes()) == {"predictions": [1]}
    assert causes[:2] == [
        "Setting desired instance count to 1.",
        "Setting desired instance count to 0.",
    ]


@pytest.mark.runtime_env(LOCAL_RUNTIME_MULTI_MODEL_BUDGET_MB="0.0001")  # less than one model
def test_multi_model_unloads_the_least_recently_used_model_beyond_its_budget(
    aws, runtime_dirs, runtime_url
):
    sagemaker, runtime = aws
    for slope in (2, 3):
        artifacts.write(
            runtime_dirs["s3"], f"s3://models/lru/s{slope}.tar.gz", artifacts.linear_model(slope)
        )
    deploy(
        sagemaker,
        "lru",
        {
            "PrimaryContainer": {
                "Image": "sklearn",
                "Mode": "MultiModel",
                "ModelDataUrl": "s3://models/lru/",
            }
        },
    )

    answers = [
        json.loads(
            runtime.invoke_endpoint(
                EndpointName="lru", TargetModel=target, ContentType="text/csv", Body=b"1"
            )["Body"].read()
        )
        for target in ("s2.tar.gz", "s3.tar.gz", "s2.tar.gz")
    ]

    assert [answer["predictions"][0] for answer in answers] == pytest.approx([2, 3, 2])
    unloaded = [m for m in events(runtime_url, "lru") if m.startswith("Unloaded")]
    assert unloaded == [
        "Unloaded s2.tar.gz from AllTraffic-0 (LRU).",
        "Unloaded s3.tar.gz from AllTraffic-0 (LRU).",
    ]
