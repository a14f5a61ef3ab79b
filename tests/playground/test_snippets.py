"""The code shown for a request sends exactly that request: values are quoted for Python and
for the shell, so quotes, $(...) and newlines in a body stay data."""

import ast
import subprocess

import pytest

from playground import snippets
from playground.models import Invocation
from tests.factories import EnvironmentFactory
from tests.playground.factories import endpoint, invocation

pytestmark = pytest.mark.django_db
NASTY = """{"text": "it's $(touch pwned) `id` \\"quoted\\"\nnext line"}"""


def nasty_invocation(**fields):
    return invocation(
        content_type="application/json",
        request_inline=NASTY.encode(),
        request_size=len(NASTY.encode()),
        custom_attributes="a='b'; c=$(id)",
        **fields,
    )


def test_shell_snippets_write_the_exact_body(tmp_path):
    row = nasty_invocation()
    for code, command in (
        (snippets.cli_snippet(row), "\naws "),
        (snippets.curl_snippet(row), "\ncurl "),
    ):
        writes_body = code.split(command)[0]

        subprocess.run(["bash", "-c", writes_body], cwd=tmp_path, check=True)

        assert (tmp_path / "body.bin").read_text() == NASTY
        assert not (tmp_path / "pwned").exists()


def test_shell_snippets_pass_header_values_as_single_words():
    row = nasty_invocation()

    code = snippets.cli_snippet(row)

    command = code.split("\naws ")[1].split("\ncat ")[0]
    words = subprocess.run(
        ["bash", "-c", 'printf "%s\\n" ' + command],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert words[words.index("--custom-attributes") + 1] == "a='b'; c=$(id)"
    assert words[words.index("--endpoint-name") + 1] == "iris"


def test_boto3_snippet_is_python_that_sends_the_same_body_and_parameters():
    row = nasty_invocation(target_model="ridge.tar.gz")

    tree = ast.parse(snippets.boto3_snippet(row))

    call = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "invoke_endpoint"
    )
    keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    assert keywords == {
        "EndpointName": "iris",
        "ContentType": "application/json",
        "CustomAttributes": "a='b'; c=$(id)",
        "TargetModel": "ridge.tar.gz",
        "Body": NASTY,
    }


def test_large_or_binary_bodies_are_read_from_a_file():
    row = invocation(request_inline=b"\xff\x00" * 10, request_size=20)

    code = snippets.boto3_snippet(row)

    assert "Body=body," in code
    assert "open('body.bin', 'rb')" in code


def test_aws_environments_get_no_curl_and_name_their_region():
    environment = EnvironmentFactory(kind="aws", region="eu-west-1", bucket="acme-ml")
    row = invocation(endpoint=endpoint(environment=environment))

    found = dict(snippets.snippets(row))

    assert set(found) == {"boto3", "AWS CLI"}
    assert "--region eu-west-1" in found["AWS CLI"]
    assert "region_name='eu-west-1'" in found["boto3"]


def test_async_snippets_send_the_input_location():
    row = invocation(
        mode=Invocation.Mode.ASYNC, input_location="s3://portal-test/portal/playground/x/input"
    )

    found = dict(snippets.snippets(row))

    assert "invoke_endpoint_async(" in found["boto3"]
    assert "--input-location s3://portal-test/portal/playground/x/input" in found["AWS CLI"]
    assert "X-Amzn-SageMaker-InputLocation: s3://" in found["curl"]
    assert "X-Amzn-SageMaker-Content-Type: text/csv" in found["curl"]
