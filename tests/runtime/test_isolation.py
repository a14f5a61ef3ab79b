"""A model process is fenced in (reliability.md S11): a scrubbed environment, its own working
directory, and resource limits, so one model cannot read the portal's secrets or starve it."""

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.runtime import artifacts
from tests.runtime.test_endpoints import deploy

pytestmark = [pytest.mark.integration, pytest.mark.security]

INSPECTOR = """
import json, os, resource

def model_fn(model_dir):
    return model_dir

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(request, model_dir):
    if request.get("allocate_mb"):
        return len(bytearray(request["allocate_mb"] * 1024 * 1024))
    return {
        "variables": sorted(os.environ),
        "cwd": os.getcwd(),
        "model_dir": str(model_dir),
        "limits": {
            name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_FSIZE")
        },
    }

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""


@pytest.mark.runtime_env(
    LOCAL_RUNTIME_MODEL_MEMORY_MB="3072",
    SECRET_KEY="portal-secret-key-that-must-not-leak",
    AWS_SECRET_ACCESS_KEY="aws-secret-that-must-not-leak",
    AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
)
def test_a_model_sees_no_portal_secret_works_in_its_own_folder_and_is_resource_limited(
    aws, runtime_dirs
) -> None:
    sagemaker, runtime = aws
    uri = "s3://models/inspector/model.tar.gz"
    artifacts.write(runtime_dirs["s3"], uri, artifacts.python_model(INSPECTOR))
    deploy(sagemaker, "inspector", {"PrimaryContainer": {"Image": "python", "ModelDataUrl": uri}})

    seen = json.loads(
        runtime.invoke_endpoint(
            EndpointName="inspector", ContentType="application/json", Body=b"{}"
        )["Body"].read()
    )
    with pytest.raises(ClientError) as too_big:
        runtime.invoke_endpoint(
            EndpointName="inspector",
            ContentType="application/json",
            Body=json.dumps({"allocate_mb": 4096}),
        )
    after = runtime.invoke_endpoint(
        EndpointName="inspector", ContentType="application/json", Body=b"{}"
    )

    leaked = {"SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "DATABASE_URL"}
    assert leaked.isdisjoint(seen["variables"])
    assert seen["cwd"] != str(Path.cwd())
    assert not seen["cwd"].startswith(seen["model_dir"])
    assert seen["limits"] == {
        "RLIMIT_AS": 3072 * 1024**2,
        "RLIMIT_CORE": 0,
        "RLIMIT_NOFILE": 4096,
        "RLIMIT_FSIZE": 8 * 1024**3,
    }
    assert too_big.value.response["Error"]["Code"] == "ModelError"
    assert "MemoryError" in too_big.value.response["Error"]["Message"]
    assert after["ResponseMetadata"]["HTTPStatusCode"] == 200
