"""Each way an invocation can go wrong ends in a clear message, kept in the history: refused
before calling (size, content type, headers, target path, endpoint not InService) or refused
by the provider (throttling, a model error with the model's message, a target that does not
exist). The provider side runs against AWS's own runtime API through botocore's Stubber."""

import boto3
import pytest
from botocore.stub import Stubber
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from endpoints.models import Endpoint
from environments.backends.aws import AwsBackend
from playground.invoke import Shape
from playground.models import Invocation
from tests.factories import EnvironmentFactory
from tests.playground.factories import endpoint

pytestmark = pytest.mark.django_db


def invoke(client, target: Endpoint, **fields):
    data = {"endpoint": target.pk, "content_type": "application/json", "body": "{}"} | fields
    return client.post(reverse("playground:invoke"), data, HTTP_HX_REQUEST="true")


def only_invocation() -> Invocation:
    (row,) = Invocation.objects.all()
    return row


@pytest.fixture
def aws_endpoint(monkeypatch):
    """An endpoint in an AWS environment whose runtime calls a test scripts with a Stubber."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    environment = EnvironmentFactory(kind="aws", region="eu-west-1", bucket="acme-ml")
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    backend = AwsBackend(environment, session=session)
    monkeypatch.setattr("environments.backends.get_backend", lambda environment: backend)
    target = endpoint(environment=environment, name="churn")
    target.stubber = Stubber(backend.runtime)
    return target


def test_a_body_over_6_mb_is_refused_before_calling(client_for):
    target = endpoint()
    upload = SimpleUploadedFile("big.bin", b"x" * 6_291_457)

    response = invoke(client_for("engineer"), target, upload=upload)

    text = response.content.decode()
    assert "The body is 6.0 MB (6,291,457 bytes); real-time endpoints take at most 6 MB" in text
    assert only_invocation().status_code == 413


def test_a_serverless_body_over_4_mb_is_refused(client_for):
    target = endpoint(kind=Endpoint.Kind.SERVERLESS)
    upload = SimpleUploadedFile("big.bin", b"x" * 4_000_001)

    response = invoke(client_for("engineer"), target, upload=upload)

    assert "serverless endpoints take at most 4 MB (4,000,000 bytes)" in response.content.decode()


def test_a_typed_body_over_the_form_limit_says_to_send_a_file(client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = invoke(client_for("engineer"), endpoint(), body="x" * 2000)

    assert "send it with “Or send a file” instead" in response.content.decode()
    assert not Invocation.objects.exists()


def test_a_bad_content_type_is_refused_with_an_example(client_for):
    response = invoke(client_for("engineer"), endpoint(), content_type="text csv")

    assert "Use a media type such as text/csv or application/json" in response.content.decode()
    assert only_invocation().error_code == "ValidationError"


def test_a_line_break_in_custom_attributes_is_refused(client_for):
    response = invoke(client_for("engineer"), endpoint(), custom_attributes="a\r\nX-Evil: 1")

    text = response.content.decode()
    assert "Use only printable ASCII characters in Custom attributes, with no line breaks" in text


def test_a_target_model_climbing_out_of_the_prefix_is_refused(client_for):
    response = invoke(client_for("engineer"), endpoint(), target_model="../secrets.tar.gz")

    assert "Use a path under the model prefix, without .." in response.content.decode()


def test_an_endpoint_not_in_service_is_refused_before_calling(client_for):
    target = endpoint(status=Endpoint.Status.CREATING)

    response = invoke(client_for("engineer"), target)

    assert "The endpoint iris is Creating, not In service" in response.content.decode()
    assert only_invocation().error_code == "EndpointNotInService"


def test_throttling_says_to_wait(client_for, aws_endpoint):
    aws_endpoint.stubber.add_client_error(
        "invoke_endpoint", "ThrottlingException", "Rate exceeded", 400
    )

    with aws_endpoint.stubber:
        response = invoke(client_for("engineer"), aws_endpoint)

    assert "The endpoint is throttling requests" in response.content.decode()
    row = only_invocation()
    assert (row.status_code, row.error_code) == (429, "ThrottlingException")


def test_a_model_error_shows_the_models_own_message(client_for, aws_endpoint):
    aws_endpoint.stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        'Received server error (500) from primary with message "division by zero".',
        424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": "division by zero"},
    )

    with aws_endpoint.stubber:
        response = invoke(client_for("engineer"), aws_endpoint)

    assert "The model answered 500: division by zero." in response.content.decode()
    assert only_invocation().status_code == 424


def test_a_target_model_that_does_not_exist_is_named(client_for, aws_endpoint, monkeypatch):
    multi_model = Shape(("AllTraffic",), "s3://acme-ml/models/", (), "sklearn", ("regressors",))
    monkeypatch.setattr("playground.invoke.shape_of", lambda target: multi_model)
    aws_endpoint.stubber.add_client_error(
        "invoke_endpoint",
        "ValidationError",
        "Failed to download model data for TargetModel nope.tar.gz: it does not exist.",
        400,
    )

    with aws_endpoint.stubber:
        response = invoke(client_for("engineer"), aws_endpoint, target_model="nope.tar.gz")

    assert "There is no model nope.tar.gz under this endpoint" in response.content.decode()


def test_a_container_that_does_not_exist_is_refused(client_for, monkeypatch):
    monkeypatch.setattr(
        "playground.invoke.shape_of",
        lambda target: Shape(("AllTraffic",), "", ("sentiment", "statistics"), "python", ()),
    )

    response = invoke(client_for("engineer"), endpoint(), target_container="nope")

    assert "iris has no container named nope; choose one of sentiment, statistics." in (
        response.content.decode()
    )


def test_a_viewer_may_not_invoke(client_for):
    response = invoke(client_for("viewer"), endpoint())

    assert response.status_code == 403
    assert not Invocation.objects.exists()


def test_a_request_without_an_endpoint_says_which_field_is_missing(client_for):
    response = client_for("engineer").post(
        reverse("playground:invoke"), {"content_type": "text/csv"}, HTTP_HX_REQUEST="true"
    )

    assert "Endpoint: This field is required." in response.content.decode()
    assert not Invocation.objects.exists()


def test_an_empty_body_is_refused(client_for):
    response = invoke(client_for("engineer"), endpoint(), body="")

    assert "Write a request body; SageMaker requires one." in response.content.decode()


def test_a_variant_that_does_not_exist_is_refused(client_for, monkeypatch):
    two_variants = Shape(("Blue", "Red"), "", (), "sklearn", ("iris-classifier",))
    monkeypatch.setattr("playground.invoke.shape_of", lambda target: two_variants)

    response = invoke(client_for("engineer"), endpoint(), target_variant="Green")

    assert "iris has no variant named Green; choose one of Blue, Red." in response.content.decode()
    assert only_invocation().error_code == "TargetNotFound"
