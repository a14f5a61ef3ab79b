"""Provider calls per status cycle for 1,000 endpoints: paged listing against one describe each.

The AWS API is moto's here (no AWS is reachable), so the numbers are call counts, which is what
AWS rate-limits and bills for, not latencies.
"""

import os
import time

from moto import mock_aws

from environments.backends.aws import AwsBackend
from environments.models import Environment
from environments.polling import naive_cycle, status_cycle

ENDPOINTS = 1_000
IN_TRANSITION = 20  # endpoints whose status moved since the last cycle


def run() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with mock_aws():
        backend = AwsBackend(Environment(name="b", kind="aws", region="us-east-1", bucket="b-1"))
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
        for number in range(ENDPOINTS):
            backend.create_endpoint(f"portal-{number}", "c")
        known = {f"portal-{number}": "InService" for number in range(ENDPOINTS)}
        for number in range(IN_TRANSITION):
            known[f"portal-{number}"] = "Creating"
        calls: list[str] = []
        backend.sagemaker.meta.events.register(
            "before-call.sagemaker.*", lambda model, **kwargs: calls.append(model.name)
        )
        rows = []
        for label, cycle in (("paged list", status_cycle), ("describe each", naive_cycle)):
            calls.clear()
            started = time.perf_counter()
            cycle(backend, known)
            seconds = time.perf_counter() - started
            rows.append(
                (
                    label,
                    calls.count("ListEndpoints"),
                    calls.count("DescribeEndpoint"),
                    len(calls),
                    seconds,
                )
            )
    print(
        f"Status polling: one cycle over {ENDPOINTS} endpoints, {IN_TRANSITION} of them moved "
        "(moto answering)"
    )
    print(f"{'way':<16}{'List':>7}{'Describe':>10}{'calls':>8}{'vs naive':>10}{'moto s':>9}")
    naive_calls = rows[1][3]
    for label, lists, describes, total, seconds in rows:
        print(
            f"{label:<16}{lists:>7}{describes:>10}{total:>8}{total / naive_calls:>10.3f}"
            f"{seconds:>9.2f}"
        )
    print("(ListEndpoints pages of 100; DescribeEndpoint only for endpoints that moved)\n")
