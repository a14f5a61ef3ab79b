"""Deployers register models; every bad value gets a message that says how to fix it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from endpoints.models import RegisteredModel
from tests.factories import EnvironmentFactory
from tests.runtime import artifacts


def post_data(environment, **fields) -> dict:
    data = {
        "environment": environment.pk,
        "name": "churn",
        "kind": "single",
        "containers-TOTAL_FORMS": "1",
        "containers-INITIAL_FORMS": "0",
        "containers-MIN_NUM_FORMS": "1",
        "containers-MAX_NUM_FORMS": "15",
        "containers-0-image": "sklearn",
        "containers-0-model_data_url": f"s3://{environment.bucket}/portal/churn/model.tar.gz",
    }
    return data | fields


def test_deployer_registers_a_single_container_model(client_for, db) -> None:
    environment = EnvironmentFactory()

    response = client_for("deployer").post(
        reverse("endpoints:model_create"),
        post_data(environment, **{"containers-0-environment_variables": "THREADS=2\n# note\n"}),
    )

    model = RegisteredModel.objects.get(name="churn")
    assert response.status_code == 302
    assert model.containers == [
        {
            "Image": "sklearn",
            "ModelDataUrl": f"s3://{environment.bucket}/portal/churn/model.tar.gz",
            "Environment": {"THREADS": "2"},
        }
    ]
    assert model.create_model_request("portal-1-g1-v0")["PrimaryContainer"]["Image"] == "sklearn"


def test_an_uploaded_archive_goes_into_the_environments_storage(client_for, db, settings, tmp_path):
    settings.LOCAL_S3_ROOT = tmp_path
    environment = EnvironmentFactory(bucket="demo")
    archive = SimpleUploadedFile("model.tar.gz", artifacts.iris_like_classifier())
    data = post_data(
        environment, **{"containers-0-model_data_url": "", "containers-0-archive": archive}
    )

    client_for("deployer").post(reverse("endpoints:model_create"), data)

    model = RegisteredModel.objects.get(name="churn")
    assert model.containers[0]["ModelDataUrl"] == "s3://demo/portal/models/churn/0/model.tar.gz"
    assert (tmp_path / "demo/portal/models/churn/0/model.tar.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_multi_container_direct_model_needs_hostnames(client_for, db) -> None:
    environment = EnvironmentFactory()
    data = post_data(
        environment,
        kind="multi-container",
        inference_mode="Direct",
        **{
            "containers-TOTAL_FORMS": "2",
            "containers-1-image": "python",
            "containers-1-model_data_url": f"s3://{environment.bucket}/portal/b/model.tar.gz",
        },
    )

    refused = client_for("deployer").post(reverse("endpoints:model_create"), data)
    data |= {"containers-0-hostname": "pre", "containers-1-hostname": "post"}
    accepted = client_for("deployer").post(reverse("endpoints:model_create"), data)

    assert refused.status_code == 200
    assert "Give every container a hostname" in refused.content.decode()
    assert accepted.status_code == 302
    model = RegisteredModel.objects.get()
    assert model.create_model_request("x")["InferenceExecutionConfig"] == {"Mode": "Direct"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "bad name!"}, "letters, digits"),
        ({"containers-0-image": "ubuntu latest"}, "ECR image URI"),
        ({"containers-0-model_data_url": "https://evil.example.com/m.tar.gz"}, "s3://"),
        ({"containers-0-model_data_url": "s3://elsewhere/m/model.tar.gz"}, "environment"),
        ({"containers-0-model_data_url": "s3://env-bucket/portal/model.zip"}, ".tar.gz"),
        ({"containers-0-environment_variables": "no equals sign"}, "Line 1: write KEY=value."),
        ({"kind": "multi-model"}, "End the folder with a slash"),
        ({"subnets": "subnet-0abc12345"}, "both subnets and security groups"),
        ({"containers-0-image": ""}, "Give the container&#x27;s image"),
    ],
)
def test_bad_model_values_are_refused_with_a_fix(client_for, db, fields, message) -> None:
    environment = EnvironmentFactory(bucket="env-bucket")

    response = client_for("deployer").post(
        reverse("endpoints:model_create"), post_data(environment, **fields)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RegisteredModel.objects.exists()


def test_adding_a_container_row_keeps_what_was_typed(client_for, db) -> None:
    environment = EnvironmentFactory()

    response = client_for("deployer").post(
        reverse("endpoints:model_create"), post_data(environment, add_container="1")
    )

    html = response.content.decode()
    assert "Container 2" in html
    assert 'value="sklearn"' in html
    assert "errorlist" not in html and 'class="error"' not in html


def test_a_fake_archive_is_refused(client_for, db) -> None:
    environment = EnvironmentFactory()
    fake = SimpleUploadedFile("model.tar.gz", b"PK\x03\x04 a zip")
    data = post_data(
        environment, **{"containers-0-model_data_url": "", "containers-0-archive": fake}
    )

    response = client_for("deployer").post(reverse("endpoints:model_create"), data)

    assert "not gzip-compressed" in response.content.decode()


def test_a_multi_model_page_lists_the_targets_under_its_prefix(client_for, db, settings, tmp_path):
    settings.LOCAL_S3_ROOT = tmp_path
    environment = EnvironmentFactory(bucket="demo")
    for name in ("linear.tar.gz", "ridge.tar.gz"):
        artifacts.write(tmp_path, f"s3://demo/portal/mme/{name}", artifacts.linear_model(2))
    model = RegisteredModel.objects.create(
        environment=environment,
        name="set",
        kind="multi-model",
        containers=[
            {"Image": "sklearn", "Mode": "MultiModel", "ModelDataUrl": "s3://demo/portal/mme/"}
        ],
    )

    page = client_for("viewer").get(reverse("endpoints:model_detail", args=[model.pk]))

    html = page.content.decode()
    assert "<code>linear.tar.gz</code>" in html and "<code>ridge.tar.gz</code>" in html


def test_the_model_list_names_the_endpoints_each_model_serves(client_for, db) -> None:
    from django.utils import timezone

    from endpoints.models import Endpoint

    environment = EnvironmentFactory()
    container = [{"Image": "sklearn", "ModelDataUrl": "s3://portal-test/portal/m.tar.gz"}]
    churn, _unused = (
        RegisteredModel.objects.create(environment=environment, name=name, containers=container)
        for name in ("churn", "unused")
    )

    def endpoint(name: str, *model_ids: int) -> Endpoint:
        variants = [{"name": f"v{n}", "model_id": pk} for n, pk in enumerate(model_ids)]
        return Endpoint.objects.create(
            environment=environment, name=name, spec={"variants": variants}
        )

    endpoint("churn-a", churn.pk, churn.pk)  # two variants of one model: listed once
    for name in ("churn-b", "churn-c", "churn-d"):
        endpoint(name, churn.pk)
    gone = endpoint("churn-gone", churn.pk)
    Endpoint.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    html = client_for("viewer").get(reverse("endpoints:model_list")).content.decode()

    rows = {row.split("</a>", 1)[0]: row for row in html.split('<a href="/endpoints/models/')[1:]}
    churn_row = next(row for key, row in rows.items() if key.endswith(">churn"))
    unused_row = next(row for key, row in rows.items() if key.endswith(">unused"))
    assert churn_row.count('<a class="nowrap" href="/endpoints/') == 3  # the first three, by name
    for name in ("churn-a", "churn-b", "churn-c"):
        assert f">{name}</a>" in churn_row
    assert "churn-d" not in churn_row and "churn-gone" not in churn_row
    assert '<span class="muted">+1</span>' in churn_row
    assert '<span class="muted">none</span>' in unused_row
