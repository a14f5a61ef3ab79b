"""Fixtures for runtime tests: boto3 clients pointed at a real local runtime."""

import boto3
import pytest
from botocore.config import Config


@pytest.fixture
def aws(runtime_url, monkeypatch):
    """boto3 clients pointed at the local runtime, exactly as a user's own code would be."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=70)

    def client(service: str):
        return boto3.client(
            service, endpoint_url=runtime_url, region_name="us-east-1", config=config
        )

    return client("sagemaker"), client("sagemaker-runtime")
