"""Deploying and invoking every endpoint kind on a real runtime, through boto3 itself.

The runtime is `manage.py runtime` in its own process; models are real archives built here;
every call goes through boto3's sagemaker and sagemaker-runtime clients, unchanged.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from endpoints.demo import tarball
from tests.runtime import artifacts

pytestmark = pytest.mark.integration


def wait_for(sagemaker, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = sagemaker.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in {"Creating", "Updating"}:
            return described
        assert time.monotonic() < deadline, described
        time.sleep(0.1)


def one_variant(model: str, instances: int = 1) -> dict:
    """A provisioned production variant named AllTraffic serving `model`."""
    return {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instances,
    }


def deploy(sagemaker, name: str, containers: dict, variants: list[dict] | None = None, **config):
    sagemaker.create_model(ModelName=name, **containers)
    variants = variants or [one_variant(name)]
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, **config)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_for(sagemaker, name)


def test_sklearn_endpoint_predicts_from_csv_and_json(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    container = {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}

    described = deploy(sagemaker, "iris", {"PrimaryContainer": container})
    from_csv = runtime.invoke_endpoint(
        EndpointName="iris", ContentType="text/csv", Accept="text/csv", Body=b"0.5,1\n9.5,1\n"
    )
    from_json = runtime.invoke_endpoint(
        EndpointName="iris", ContentType="application/json", Body=json.dumps([[10, 1]])
    )

    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert from_csv["Body"].read() == b"0\n1\n"
    assert from_csv["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads(from_json["Body"].read()) == {"predictions": [1]}


def test_users_own_inference_py_serves_its_model(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    uri = "s3://models/greeter/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, artifacts.python_model(artifacts.UPPERCASE))

    deploy(sagemaker, "greeter", {"PrimaryContainer": {"Image": "python", "ModelDataUrl": uri}})
    answer = runtime.invoke_endpoint(
        EndpointName="greeter", ContentType="application/json", Body=b'{"text": "world"}'
    )

    assert json.loads(answer["Body"].read()) == {"answer": "hello WORLD"}


def test_multi_model_endpoint_answers_by_target_model(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    for slope in (2, 3):
        artifacts.write(
            runtime_dirs["s3"],
            f"s3://models/mme/slope-{slope}.tar.gz",
            artifacts.linear_model(slope),
        )
    container = {"Image": "sklearn", "ModelDataUrl": "s3://models/mme/", "Mode": "MultiModel"}
    deploy(sagemaker, "slopes", {"PrimaryContainer": container})

    def predict(target: str) -> float:
        answer = runtime.invoke_endpoint(
            EndpointName="slopes", TargetModel=target, ContentType="text/csv", Body=b"10"
        )
        return json.loads(answer["Body"].read())["predictions"][0]

    assert predict("slope-2.tar.gz") == pytest.approx(20)
    assert predict("slope-3.tar.gz") == pytest.approx(30)
    assert predict("slope-2.tar.gz") == pytest.approx(20)  # warm hit
    with pytest.raises(ClientError) as missing:
        predict("slope-9.tar.gz")
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert "does not exist under s3://models/mme/" in str(missing.value)
    with pytest.raises(ClientError) as climbing:
        predict("../iris/model.tar.gz")
    assert "without '..'" in str(climbing.value)


def test_multi_container_direct_and_serial(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    containers = []
    for name in ("first", "second"):
        uri = f"s3://models/{name}/model.tar.gz"
        artifacts.write(
            runtime_dirs["s3"],
            uri,
            artifacts.python_model(artifacts.APPEND.replace("{name}", name)),
        )
        containers.append({"Image": "python", "ModelDataUrl": uri, "ContainerHostname": name})
    deploy(
        sagemaker,
        "direct",
        {"Containers": containers, "InferenceExecutionConfig": {"Mode": "Direct"}},
    )
    deploy(sagemaker, "serial", {"Containers": containers})

    direct = runtime.invoke_endpoint(
        EndpointName="direct",
        TargetContainerHostname="second",
        ContentType="application/json",
        Body=b"{}",
    )
    serial = runtime.invoke_endpoint(
        EndpointName="serial", ContentType="application/json", Body=b"{}"
    )
    with pytest.raises(ClientError) as unknown:
        runtime.invoke_endpoint(
            EndpointName="direct",
            TargetContainerHostname="third",
            ContentType="application/json",
            Body=b"{}",
        )

    assert json.loads(direct["Body"].read()) == {"trail": ["second"]}
    assert json.loads(serial["Body"].read()) == {"trail": ["first", "second"]}
    assert "send one of: first, second" in unknown.value.response["Error"]["Message"]


def test_two_variants_split_traffic_and_target_variant_picks_one(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    sagemaker.create_model(
        ModelName="iris-b",
        PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"},
    )
    variants = [
        {
            "VariantName": name,
            "ModelName": "iris-b",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
        }
        for name in ("Blue", "Green")
    ]
    deploy(
        sagemaker,
        "ab",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
        variants=variants,
    )

    seen = {
        runtime.invoke_endpoint(EndpointName="ab", ContentType="text/csv", Body=b"1,1")[
            "InvokedProductionVariant"
        ]
        for _ in range(40)
    }
    targeted = runtime.invoke_endpoint(
        EndpointName="ab", TargetVariant="Green", ContentType="text/csv", Body=b"1,1"
    )

    assert seen == {"Blue", "Green"}
    assert targeted["InvokedProductionVariant"] == "Green"


def test_a_model_that_fails_to_load_leaves_the_endpoint_failed_with_the_reason(aws, runtime_dirs):
    sagemaker, _ = aws
    uri = "s3://models/broken/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, artifacts.python_model(artifacts.BROKEN_LOAD))

    described = deploy(
        sagemaker, "broken", {"PrimaryContainer": {"Image": "python", "ModelDataUrl": uri}}
    )

    assert described["EndpointStatus"] == "Failed"
    assert "weights.bin is missing from the archive" in described["FailureReason"]


def test_a_model_joblib_that_is_not_one_fails_with_words_a_person_can_act_on(aws, runtime_dirs):
    sagemaker, _ = aws
    uri = "s3://models/not-joblib/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, tarball({"model.joblib": b"not a joblib file"}))

    described = deploy(
        sagemaker, "not-joblib", {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": uri}}
    )

    assert described["EndpointStatus"] == "Failed"
    assert "model.joblib could not be loaded with joblib" in described["FailureReason"]
    assert "joblib.dump" in described["FailureReason"]


def test_tar_slip_archive_is_refused_and_nothing_is_written_outside(aws, runtime_dirs, tmp_path):
    sagemaker, _ = aws
    uri = "s3://models/slip/model.tar.gz"
    artifacts.write(
        runtime_dirs["s3"],
        uri,
        artifacts.tarball({"../../../escaped.txt": b"pwned", "model.joblib": b""}),
    )

    described = deploy(
        sagemaker, "slip", {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": uri}}
    )

    assert described["EndpointStatus"] == "Failed"
    assert "Could not unpack s3://models/slip/model.tar.gz" in described["FailureReason"]
    assert not list(tmp_path.rglob("escaped.txt"))


def test_model_error_carries_the_models_status_and_message(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    deploy(
        sagemaker,
        "iris-err",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
    )

    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName="iris-err", ContentType="text/csv", Body=b"a,b")

    response = error.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 400
    assert "Could not read the CSV body as numbers" in response["OriginalMessage"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_killed_instance_is_restarted_and_the_next_request_succeeds(aws, runtime_dirs) -> None:
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    deploy(
        sagemaker,
        "phoenix",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}},
    )
    pid_before = container_pid(runtime_dirs, "phoenix")

    os.kill(pid_before, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName="phoenix", ContentType="text/csv", Body=b"9,1"
            )
            break
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ModelError"  # in flight: fails fast, no hang
            assert time.monotonic() < deadline
            time.sleep(0.1)

    assert answer["Body"].read() == b'{"predictions": [1]}'
    assert container_pid(runtime_dirs, "phoenix") != pid_before
    assert sagemaker.describe_endpoint(EndpointName="phoenix")["EndpointStatus"] == "InService"


def container_pid(runtime_dirs, endpoint: str) -> int:
    """The pid of the endpoint's (only) container process, found by its working directory."""
    folder = str(runtime_dirs["state"] / "instances" / endpoint)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(folder):
                    return int(entry)
            except OSError:
                continue
    raise AssertionError(f"no container process for {endpoint}")


def half_closed_connections(pid: int) -> list[str]:
    """The process's TCP connections that the other end has closed and it has not
    (CLOSE_WAIT): each holds a file descriptor until the process closes it."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    rows = [line.split() for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]]
    return [row[2] for row in rows if row[3] == "08" and f"socket:[{row[9]}]" in sockets]


def test_an_update_leaves_no_connection_to_the_stopped_instance_open(aws, runtime_dirs):
    sagemaker, runtime = aws
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    container = {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}
    deploy(sagemaker, "rolling", {"PrimaryContainer": container})
    old = container_pid(runtime_dirs, "rolling")
    runtime_pid = int(Path(f"/proc/{old}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for _ in range(3):  # keep-alive connections from the runtime to the container
        runtime.invoke_endpoint(EndpointName="rolling", ContentType="text/csv", Body=b"9,1")
    sagemaker.create_model(ModelName="rolling-2", PrimaryContainer=container)
    sagemaker.create_endpoint_config(
        EndpointConfigName="rolling-2",
        ProductionVariants=[one_variant("rolling-2")],
    )

    sagemaker.update_endpoint(EndpointName="rolling", EndpointConfigName="rolling-2")
    wait_for(sagemaker, "rolling")
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{old}"):  # the old instance is stopped after traffic moved
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answer = runtime.invoke_endpoint(EndpointName="rolling", ContentType="text/csv", Body=b"9,1")

    assert answer["Body"].read() == b'{"predictions": [1]}'
    assert half_closed_connections(runtime_pid) == []


def test_control_plane_errors_speak_sagemakers_words(aws) -> None:
    sagemaker, runtime = aws

    with pytest.raises(ClientError) as missing:
        sagemaker.describe_endpoint(EndpointName="nope")
    with pytest.raises(ClientError) as bad_name:
        sagemaker.create_model(ModelName="bad_name!", PrimaryContainer={"Image": "sklearn"})
    with pytest.raises(ClientError) as unknown_image:
        sagemaker.create_model(ModelName="x", PrimaryContainer={"Image": "tensorflow"})
    with pytest.raises(ClientError) as not_found:
        runtime.invoke_endpoint(EndpointName="nope", Body=b"{}")

    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert 'Could not find endpoint "arn:aws:sagemaker:local:000000000000:endpoint/nope"' in str(
        missing.value
    )
    assert "Member must satisfy regular expression pattern" in str(bad_name.value)
    assert "The local runtime serves: llm, python, sklearn" in str(unknown_image.value) or (
        "The local runtime serves: python, sklearn" in str(unknown_image.value)
    )
    assert not_found.value.response["Error"]["Code"] == "ValidationError"


def test_update_moves_traffic_to_a_new_config_and_delete_stops_everything(aws, runtime_dirs):
    sagemaker, runtime = aws
    for slope in (2, 5):
        artifacts.write(
            runtime_dirs["s3"], f"s3://models/v{slope}/model.tar.gz", artifacts.linear_model(slope)
        )
    deploy(
        sagemaker,
        "versions",
        {"PrimaryContainer": {"Image": "sklearn", "ModelDataUrl": "s3://models/v2/model.tar.gz"}},
    )
    sagemaker.create_model(
        ModelName="versions-2",
        PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "s3://models/v5/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="versions-2",
        ProductionVariants=[one_variant("versions-2", 2)],
    )

    sagemaker.update_endpoint(EndpointName="versions", EndpointConfigName="versions-2")
    described = wait_for(sagemaker, "versions")
    answer = runtime.invoke_endpoint(EndpointName="versions", ContentType="text/csv", Body=b"1")
    sagemaker.delete_endpoint(EndpointName="versions")
    deadline = time.monotonic() + 30
    while any(e["EndpointName"] == "versions" for e in sagemaker.list_endpoints()["Endpoints"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    assert described["EndpointConfigName"] == "versions-2", described.get("FailureReason")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert json.loads(answer["Body"].read())["predictions"][0] == pytest.approx(5)
    with pytest.raises(AssertionError):
        container_pid(runtime_dirs, "versions")


def test_runtime_restart_brings_endpoints_back_and_leaves_no_orphans(
    runtime_dirs, monkeypatch, settings
):
    import boto3

    from tests.conftest import free_port, start_runtime, wait_for_http

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings.LOCAL_RUNTIME_URL = url  # this runtime is the one S9's guard lets the clients reach
    process = start_runtime(port, runtime_dirs)
    try:
        wait_for_http(f"{url}/ping")
        sagemaker = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")
        deploy(
            sagemaker,
            "durable",
            {
                "PrimaryContainer": {
                    "Image": "sklearn",
                    "ModelDataUrl": "s3://models/iris/model.tar.gz",
                }
            },
        )
        first_pid = container_pid(runtime_dirs, "durable")

        process.kill()  # no goodbye: the runtime's children must notice on their own
        process.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{first_pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
        orphan_left = os.path.exists(f"/proc/{first_pid}")
        process = start_runtime(port, runtime_dirs)
        wait_for_http(f"{url}/ping")
        described = wait_for(sagemaker, "durable")
        answer = runtime.invoke_endpoint(
            EndpointName="durable", ContentType="text/csv", Body=b"9,1"
        )
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert not orphan_left
    assert described["EndpointStatus"] == "InService"
    assert answer["Body"].read() == b'{"predictions": [1]}'
