"""Admins add and change environments; every bad value gets a message that says how to fix it."""

import pytest
from django.urls import reverse

from environments.models import Environment

GOOD = {"name": "prod-eu", "kind": "aws", "region": "eu-west-1", "bucket": "acme-ml"}
GOOD |= {"prefix": "portal/", "execution_role_arn": "arn:aws:iam::123456789012:role/Exec"}


def test_admin_adds_an_aws_environment(client_for) -> None:
    response = client_for("admin").post(reverse("environments:create"), GOOD)

    environment = Environment.objects.get(name="prod-eu")
    assert response.status_code == 302
    assert response["Location"] == reverse("environments:detail", args=[environment.pk])
    assert environment.storage_uri == "s3://acme-ml/portal/"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Prod EU", "lowercase letters, digits and single hyphens"),
        ("region", "europe", "AWS Region code"),
        ("region", "", "needs a Region"),
        ("bucket", "Acme_ML", "S3 bucket naming rules"),
        ("bucket", "ab", "3 to 63"),
        ("prefix", "portal", "ending with a slash"),
        ("execution_role_arn", "arn:aws:iam::123:role/x", "IAM role ARN"),
        ("assume_role_arn", "role/Portal", "IAM role ARN"),
        ("external_id", "abc", "only applies with a role to assume"),
    ],
)
def test_bad_values_are_refused_with_a_fix(client_for, field, value, message) -> None:
    response = client_for("admin").post(reverse("environments:create"), GOOD | {field: value})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Environment.objects.exists()


def test_load_demo_adds_the_local_environment_once(db, settings, tmp_path) -> None:
    from django.core.management import call_command

    settings.LOCAL_S3_ROOT = tmp_path
    call_command("load_demo")
    call_command("load_demo")

    assert list(Environment.objects.values_list("name", "kind")) == [("local", "local")]


def test_viewer_reads_environments_without_an_edit_button(client_for) -> None:
    Environment.objects.create(name="local", bucket="demo-bucket")

    response = client_for("viewer").get(reverse("environments:list"))

    assert b"local" in response.content
    assert reverse("environments:create").encode() not in response.content


@pytest.mark.integration
def test_admin_tests_a_local_environment_and_sees_what_works(client_for, runtime_url) -> None:
    environment = Environment.objects.create(name="local", bucket="demo-bucket")
    url = reverse("environments:test_connection", args=[environment.pk])

    response = client_for("admin").post(url, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="connection">')  # the fragment
    assert f"Local runtime at {runtime_url}" in html
    assert "Running for" in html and "Writable" in html
    assert "check-fail" not in html


def test_a_missing_runtime_is_reported_not_raised(client_for, settings) -> None:
    settings.LOCAL_RUNTIME_URL = "http://127.0.0.1:9"
    environment = Environment.objects.create(name="local", bucket="demo-bucket")

    response = client_for("admin").post(
        reverse("environments:test_connection", args=[environment.pk])
    )

    assert response.status_code == 200
    assert "make run starts it" in response.content.decode()


def test_a_provider_failure_is_shown_in_plain_words_with_the_raw_text_behind_a_toggle(
    client_for, monkeypatch
) -> None:
    from environments.backends.base import ProviderError
    from environments.backends.local import LocalBackend

    def fail(self):
        raise ProviderError(
            "The portal may not pass the execution role to SageMaker.",
            code="AccessDeniedException",
            raw="User: arn:aws:sts::1:assumed-role/x is not authorized to perform: iam:PassRole",
        )

    monkeypatch.setattr(LocalBackend, "test_connection", fail)
    environment = Environment.objects.create(name="local", bucket="demo-bucket")

    response = client_for("admin").post(
        reverse("environments:test_connection", args=[environment.pk])
    )

    html = response.content.decode()
    assert "The portal may not pass the execution role to SageMaker." in html
    assert "<details>" in html and "not authorized to perform: iam:PassRole" in html


def test_environments_hold_no_credentials(client_for) -> None:
    fields = {field.name for field in Environment._meta.get_fields()}
    secrets = {
        "access_key",
        "secret_key",
        "aws_access_key_id",
        "aws_secret_access_key",
        "session_token",
        "password",
        "token",
    }

    client_for("admin").post(
        reverse("environments:create"),
        GOOD | {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3cr3t"},
    )

    assert not fields & secrets
    from django.core import serializers

    dump = serializers.serialize("json", Environment.objects.all())
    assert "AKIAEXAMPLE" not in dump and "s3cr3t" not in dump
