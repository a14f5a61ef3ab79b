"""S5 (reliability.md): a catalogue of bad inputs, each refused with a message that says what to
fix, and none of them leaving anything behind: no row (audit entries included), no changed draft,
no object in storage and, for model archives, no file outside the folder they unpack into.

Every group is a table of (field, bad value, the words the user must see), sent through the real
page or function with the role that may use it. Each group first checks that its valid base is
accepted, so a case is refused for its bad value and not for something else. The one thing a
refusal may write is the playground's history row that shows the user what was refused."""

import html
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from endpoints.drafts import WizardDraft
from endpoints.models import Endpoint, RegisteredModel
from environments.models import Environment
from modelcards.models import ModelCard
from playground import conf as playground_conf
from playground.models import Invocation
from runtime.storage import StorageError, safe_extract
from tests.factories import PASSWORD, EnvironmentFactory, UserFactory

pytestmark = [pytest.mark.security, pytest.mark.django_db]

ALL_CASES: dict[str, list] = {}  # group: its cases, for the count at the end


def catalogue(group: str, cases: list[tuple]) -> list:
    """The group's cases as pytest params named by their field and bad value."""
    params = []
    for case in cases:
        field, value = case[0], case[1]
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "…"
        params.append(pytest.param(*case, id=f"{field}={shown}"))
    ALL_CASES[group] = params
    return params


def row_counts() -> dict[str, int]:
    """The number of rows of every model of every app, audit entries and drafts included."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def files_under(folder: Path) -> set[str]:
    return (
        {str(path.relative_to(folder)) for path in folder.rglob("*")} if folder.exists() else set()
    )


def page_text(response: object) -> str:
    """The response as the user reads it: tags dropped, HTML entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", response.content.decode()))


@pytest.fixture
def storage(settings, tmp_path, monkeypatch) -> Path:
    """The local object store and the playground's body store, in a folder of this test's own."""
    settings.LOCAL_S3_ROOT = tmp_path / "s3"
    monkeypatch.setattr(playground_conf, "BLOB_DIR", tmp_path / "blobs")
    return tmp_path


@pytest.fixture
def unchanged(storage):
    """Call it before the bad input, call what it returns after: nothing may have been written.
    `allowed` names models that may gain rows (a refusal the page keeps, such as history)."""

    def snapshot(allowed: tuple[str, ...] = ()) -> object:
        counts, files = row_counts(), files_under(storage / "s3")
        drafts = list(WizardDraft.objects.values_list("user_id", "step", "data"))

        def check() -> None:
            after = row_counts()
            changed = {
                label: (counts[label], after[label])
                for label in counts
                if counts[label] != after[label] and label not in allowed
            }
            assert not changed, f"rows written: {changed}"
            assert files_under(storage / "s3") == files, "storage changed"
            assert list(WizardDraft.objects.values_list("user_id", "step", "data")) == drafts

        return check

    return snapshot


# -- environments (Admin) -------------------------------------------------------------------------

ENVIRONMENT = {
    "name": "prod-eu",
    "kind": "aws",
    "description": "",
    "region": "eu-west-1",
    "bucket": "acme-ml",
    "prefix": "portal/",
    "assume_role_arn": "",
    "external_id": "",
    "execution_role_arn": "",
}
ENVIRONMENT_CASES = catalogue(
    "environment form",
    [
        ("name", "Prod EU", "Use lowercase letters, digits and single hyphens, like prod-eu."),
        ("name", "prod--eu", "Use lowercase letters, digits and single hyphens"),
        ("name", "taken", "Environment with this Name already exists."),
        ("region", "europe", "Use an AWS Region code such as eu-west-1 or us-east-1."),
        ("region", "", "An AWS environment needs a Region, like eu-west-1."),
        ("bucket", "Acme_ML", "Use 3 to 63 lowercase letters, digits, dots or hyphens"),
        ("bucket", "acme..ml", "(S3 bucket naming rules)"),
        ("prefix", "/portal/", "Use folder names of letters, digits and ! _ . * ' ( ) -"),
        ("prefix", "portal", "each ending with a slash, such as portal/"),
        ("prefix", "../portal/", "Leave out . and .. folders, as in portal/models/."),
        ("prefix", "portal/./models/", "Leave out . and .. folders"),
        ("assume_role_arn", "arn:aws:iam::12:role/x", "Use an IAM role ARN such as arn:aws:iam::"),
        ("execution_role_arn", "role/Portal", "Use an IAM role ARN such as"),
        ("external_id", "x", "Use 2 to 1224 letters, digits or + = , . @ : / - _ characters."),
        ("kind", "gcp", "Select a valid choice. gcp is not one of the available choices."),
    ],
)


def test_a_valid_environment_is_saved(client_for) -> None:
    response = client_for("admin").post(reverse("environments:create"), ENVIRONMENT)

    assert response.status_code == 302
    assert Environment.objects.filter(name="prod-eu").exists()


@pytest.mark.parametrize(("field", "value", "message"), ENVIRONMENT_CASES)
def test_bad_environment_values_are_refused(client_for, unchanged, field, value, message) -> None:
    EnvironmentFactory(name="taken")
    data = ENVIRONMENT | {field: value}
    admin = client_for("admin")
    check = unchanged()

    response = admin.post(reverse("environments:create"), data)

    assert response.status_code == 200
    assert message in page_text(response)
    check()


# -- registering a model (Deployer) ---------------------------------------------------------------


def container(index: int, **values: str) -> dict:
    fields = {"hostname": "", "image": "sklearn", "model_data_url": "", "environment_variables": ""}
    fields |= {"model_data_url": f"s3://portal-test/portal/churn/{index}/model.tar.gz"} | values
    return {f"containers-{index}-{key}": value for key, value in fields.items()}


def model_form(*containers: dict, **values: object) -> dict:
    data = {
        "name": "churn",
        "description": "",
        "kind": "single",
        "inference_mode": "",
        "execution_role_arn": "",
        "subnets": "",
        "security_groups": "",
        "containers-TOTAL_FORMS": len(containers),
        "containers-INITIAL_FORMS": 0,
        "containers-MIN_NUM_FORMS": 0,
        "containers-MAX_NUM_FORMS": 1000,
    }
    for row in containers:
        data |= row
    return data | values


def pipeline(count: int, **values: str) -> dict:
    rows = [container(index, hostname=f"step{index}") for index in range(count)]
    return model_form(*rows, kind="multi-container", inference_mode="Serial") | values


GZIP = b"\x1f\x8b\x08\x00" + b"\x00" * 16
MODEL_CASES = catalogue(
    "model registration",
    [
        ("name", "churn_model", "Use 1 to 63 letters, digits or hyphens, starting and ending"),
        ("name", "-churn", "such as churn-model-v2."),
        ("name", "iris", "This environment already has a model named iris."),
        ("name", "c" * 64, "Ensure this value has at most 63 characters (it has 64)."),
        ("environment", "abc", "Select a valid choice."),
        ("environment", "999999", "Select a valid choice."),
        ("kind", "ensemble", "Select a valid choice. ensemble is not one of the available"),
        ("containers-0-image", "docker.io/library/python:3", "Use an ECR image URI such as"),
        ("containers-0-image", "", "Give the container's image: an ECR image URI"),
        (
            "containers-0-image",
            "123456789012.dkr.ecr.mars-1.amazonaws.com/churn:1.0",
            "or a local serving image: sklearn, python or llm",
        ),
        ("containers-0-image", "sklearn latest", "Use an ECR image URI such as"),
        (
            "containers-0-model_data_url",
            "https://evil.example.com/model.tar.gz",
            "Use an s3:// URI such as s3://my-models/churn/model.tar.gz.",
        ),
        (
            "containers-0-model_data_url",
            "s3://portal-test/portal/../../etc/model.tar.gz",
            "Remove the .. folder from the path",
        ),
        (
            "containers-0-model_data_url",
            "s3://portal-test/portal/churn/model.zip",
            "Point at a .tar.gz archive, such as s3://my-models/churn/model.tar.gz.",
        ),
        (
            "containers-0-model_data_url",
            "s3://other-bucket/portal/model.tar.gz",
            "Use a location under s3://portal-test/portal/, the environment's storage.",
        ),
        (
            "containers-0-model_data_url",
            "s3://portal-test/elsewhere/model.tar.gz",
            "Use a location under s3://portal-test/portal/",
        ),
        (
            "containers-0-model_data_url",
            "s3://Bad_Bucket/portal/model.tar.gz",
            "Use a bucket name of 3 to 63 lowercase letters",
        ),
        (
            "containers-0-model_data_url",
            "s3://portal-test/portal/my model.tar.gz",
            "Remove the spaces and control characters",
        ),
        (
            "containers-0-environment_variables",
            "1ABC=x",
            "Line 1: use letters, digits and underscores, not starting with a digit",
        ),
        (
            "containers-0-environment_variables",
            "MODE=a\nMODE=b",
            "Line 2: MODE is already set above; keep one line.",
        ),
        ("containers-0-environment_variables", "just words", "Line 1: write KEY=value."),
        (
            "containers-0-environment_variables",
            "BIG=" + "x" * 1025,
            "Shorten the value of BIG to at most 1024 bytes",
        ),
        (
            "containers-0-environment_variables",
            "\n".join(f"V{number}=1" for number in range(101)),
            "Use at most 100 environment variables; this has 101.",
        ),
        ("containers-0-hostname", "my host", "Use 1 to 63 letters, digits or hyphens"),
        (
            "containers-0-archive",
            b"PK\x03\x04 a zip file",
            "This is not a .tar.gz file (it is not gzip-compressed).",
        ),
        ("containers-0-archive", GZIP, "Give an S3 location or upload an archive, not both."),
        ("subnets", "subnet-0abc12345", "A VPC needs both subnets and security groups"),
        ("subnets", "subnet-xyz", "'subnet-xyz' is not an id; use one such as subnet-0abc1234."),
        ("security_groups", "sg-1 sg-2", "is not an id; use one such as sg-0abc1234."),
        ("execution_role_arn", "arn:aws:iam::1:role/x", "Use an IAM role ARN such as"),
        ("inference_mode", "Parallel", "Select a valid choice. Parallel is not one of"),
    ],
)
MULTI_CONTAINER_CASES = catalogue(
    "model containers",
    [
        ("containers", pipeline(16), "Use at most 15 containers (SageMaker's limit)."),
        (
            "hostnames",
            pipeline(2, **{"containers-1-hostname": "step0"}),
            "Give each container its own hostname; step0 is used twice.",
        ),
        (
            "hostnames",
            pipeline(2, **{"containers-1-hostname": "STEP0"}),
            "Give each container its own hostname; STEP0 is used twice.",
        ),
        (
            "hostnames",
            pipeline(2, **{"containers-1-hostname": ""}),
            "Give every container a hostname, or none",
        ),
        (
            "hostnames",
            pipeline(2, inference_mode="Direct", **{"containers-0-hostname": ""}),
            "Give every container a hostname, such as preprocess",
        ),
        ("inference_mode", pipeline(2, inference_mode=""), "Choose Serial or Direct"),
        ("containers", pipeline(1), "A multi-container model has 2 to 15 containers; add one."),
        (
            "kind",
            pipeline(2, kind="single"),
            "Only a multi-container model has more than one container.",
        ),
        (
            "model_data_url",
            model_form(
                container(0, model_data_url="s3://portal-test/portal/team-a"), kind="multi-model"
            ),
            "End the folder with a slash, such as s3://my-models/team-a/.",
        ),
        (
            "model_data_url",
            model_form(container(0, model_data_url=""), kind="multi-model"),
            "A multi-model container needs the S3 folder of its models",
        ),
        ("containers", model_form(), "Add at least one container with an image."),
        (
            "containers-TOTAL_FORMS",
            model_form(container(0)) | {"containers-TOTAL_FORMS": "many"},
            "Add at least one container with an image.",
        ),
    ],
)


IRIS = [{"Image": "sklearn", "ModelDataUrl": "s3://portal-test/portal/iris.tar.gz"}]


@pytest.fixture
def local(storage) -> Environment:
    environment = EnvironmentFactory(name="local")
    RegisteredModel.objects.create(environment=environment, name="iris", containers=IRIS)
    return environment


def test_a_valid_model_is_registered(client_for, local) -> None:
    data = model_form(container(0), environment=local.pk)

    response = client_for("deployer").post(reverse("endpoints:model_create"), data)

    assert response.status_code == 302
    assert RegisteredModel.objects.filter(name="churn").exists()


@pytest.mark.parametrize(("field", "value", "message"), MODEL_CASES)
def test_bad_model_values_are_refused(client_for, local, unchanged, field, value, message) -> None:
    data = model_form(container(0), environment=local.pk)
    if field == "containers-0-archive":
        data[field] = SimpleUploadedFile("model.tar.gz", value)
    else:
        data[field] = value
    if field == "containers-0-archive" and value != GZIP:
        data["containers-0-model_data_url"] = ""
    deployer = client_for("deployer")
    check = unchanged()

    response = deployer.post(reverse("endpoints:model_create"), data)

    assert response.status_code == 200
    assert message in page_text(response)
    check()


@pytest.mark.parametrize(("field", "data", "message"), MULTI_CONTAINER_CASES)
def test_bad_container_sets_are_refused(client_for, local, unchanged, field, data, message) -> None:
    deployer = client_for("deployer")
    check = unchanged()

    response = deployer.post(reverse("endpoints:model_create"), data | {"environment": local.pk})

    assert response.status_code == 200
    assert message in page_text(response)
    check()


def test_a_tampered_row_count_when_adding_a_container_shows_the_form(client_for, local) -> None:
    for count in ("many", "²", "9" * 5000):
        data = model_form(container(0), environment=local.pk, add_container="1")
        data["containers-TOTAL_FORMS"] = count

        response = client_for("deployer").post(reverse("endpoints:model_create"), data)

        assert response.status_code == 200
        assert 'name="containers-1-image"' in response.content.decode()
        assert not RegisteredModel.objects.filter(name="churn").exists()


# -- the endpoint wizard and its JSON documents (Deployer) ----------------------------------------


def variant_rows(count: int = 1) -> dict:
    data = {"variant-TOTAL_FORMS": count, "variant-INITIAL_FORMS": 0}
    for index in range(count):
        row = {
            "name": f"Variant{index}",
            "model": "iris",
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "weight": 1.0,
        }
        data |= {f"variant-{index}-{key}": value for key, value in row.items()}
    return data


SERVERLESS = {"model": "iris", "memory": 2048, "max_concurrency": 20, "provisioned_concurrency": ""}
ASYNC = {
    "output_path": "s3://acme-ml/portal/async/output/",
    "failure_path": "",
    "max_concurrent": "",
    "success_topic": "",
    "error_topic": "",
}
CAPTURE = {
    "enabled": "on",
    "sampling": 20,
    "destination": "s3://acme-ml/portal/capture/",
    "input": "on",
    "output": "",
    "csv_types": "text/csv",
    "json_types": "application/json",
}
SCALING = {
    "enabled": "on",
    "min": 1,
    "max": 4,
    "target": 70,
    "scale_in_cooldown": 300,
    "scale_out_cooldown": 60,
}
STEPS = {  # kind: the valid data of each step, in order
    "real-time": [("capacity", variant_rows()), ("capture", CAPTURE), ("autoscaling", SCALING)],
    "async": [
        ("capacity", variant_rows()),
        ("async", ASYNC),
        ("capture", CAPTURE),
        ("autoscaling", SCALING | {"min": 0}),
    ],
    "serverless": [("capacity", SERVERLESS)],
}
WIZARD_CASES = catalogue(
    "endpoint wizard",
    [
        ("basics", "name", "churn prod", "Use 1 to 63 letters, digits or hyphens"),
        ("basics", "name", "live", "prod-eu already has an endpoint named live; choose another"),
        ("basics", "kind", "batch", "Select a valid choice. batch is not one of the available"),
        ("basics", "environment", "nowhere", "Select a valid choice."),
        ("capacity", "variant-0-instance_count", 0, "Use a whole number of instances from 1 to 10"),
        ("capacity", "variant-0-instance_count", 11, "Use a whole number of instances from 1 to"),
        ("capacity", "variant-0-instance_count", "two", "Enter a whole number."),
        ("capacity", "variant-0-instance_type", "m5.large", "Use a SageMaker instance type such"),
        ("capacity", "variant-0-weight", -1, "Use a weight of 0 or more, such as 1.0"),
        ("capacity", "variant-0-weight", "inf", "Enter a number."),
        ("capacity", "variant-0-weight", 0, "Give at least one variant a weight above 0"),
        ("capacity", "variant-0-name", "All Traffic", "Use 1 to 63 letters, digits or hyphens"),
        ("capacity", "variant-0-model", "ghost", "Select a valid choice."),
        ("capacity", "variant-1-name", "Variant0", "Give each variant its own name; Variant0 is"),
        ("capacity", "variant-TOTAL_FORMS", 11, "Use at most 10 variants."),
        ("capacity", "variant-TOTAL_FORMS", 0, "Keep at least one variant."),
        ("serverless", "memory", 1000, "Select a valid choice. 1000 is not one of the available"),
        ("serverless", "memory", 8192, "Select a valid choice. 8192 is not one of"),
        ("serverless", "max_concurrency", 201, "Use a maximum concurrency from 1 to 200"),
        ("serverless", "max_concurrency", 0, "Use a maximum concurrency from 1 to 200"),
        ("serverless", "provisioned_concurrency", 21, "Use a provisioned concurrency from 1 to 20"),
        (
            "async",
            "output_path",
            "file:///srv/results/",
            "Use an s3:// URI such as s3://my-models/async",
        ),
        ("async", "failure_path", "s3://acme-ml/a/../b/", "Remove the .. folder from the path"),
        ("async", "success_topic", "arn:aws:sns:mars:1:done", "Use an SNS topic ARN such as"),
        ("async", "max_concurrent", 1001, "Use 1 to 1000 concurrent invocations per instance"),
        ("capture", "sampling", 101, "Use a whole percentage from 0 to 100, such as 20."),
        ("capture", "sampling", -1, "Use a whole percentage from 0 to 100"),
        ("capture", "destination", "https://x.example/capture/", "Use an s3:// URI such as"),
        ("capture", "destination", "", "Give an S3 folder, such as s3://my-models/capture/."),
        ("capture", "csv_types", "text csv", "'text csv' is not a content type; use type/subtype"),
        ("capture", "json_types", "\n".join(["a/b"] * 11), "List 1 to 10 content types"),
        ("capture", "input", "", "Capture the input, the output or both."),
        ("autoscaling", "min", 0, "Use a minimum of at least 1: only async endpoints can scale"),
        ("autoscaling", "max", 0, "Use a maximum of at least 1 (no less than the minimum)."),
        ("autoscaling", "max", 11, "Use a maximum of at most 10."),
        ("autoscaling", "target", 0, "Use a target above 0, such as 70 invocations"),
        ("autoscaling", "scale_in_cooldown", 86401, "Use 0 to 86400 seconds, such as 300"),
    ],
)


@pytest.fixture
def aws(storage) -> Environment:
    environment = EnvironmentFactory(
        name="prod-eu", kind=Environment.Kind.AWS, region="eu-west-1", bucket="acme-ml"
    )
    model = RegisteredModel.objects.create(environment=environment, name="iris", containers=IRIS)
    spec = {"variants": [{"name": "AllTraffic", "model_id": model.pk, "instance_type": "x"}]}
    Endpoint.objects.create(environment=environment, name="live", spec=spec)
    return environment


def step_url(step: str) -> str:
    return reverse("endpoints:wizard_step", args=[step])


def walk_to(client: Client, kind: str, step: str) -> None:
    """Save every step before `step`, each accepted."""
    basics = {"environment": "prod-eu", "name": "churn", "kind": kind}
    for name, data in [("basics", basics), *STEPS[kind]]:
        if name == step:
            return
        response = client.post(step_url(name), data)
        assert response.status_code == 302, (name, page_text(response)[-3000:])


def test_each_kind_walks_through_the_wizard_to_the_review(client_for, aws) -> None:
    for kind in STEPS:
        deployer = client_for("deployer")
        walk_to(deployer, kind, "review")

        assert deployer.get(step_url("review")).status_code == 200


@pytest.mark.parametrize(("step", "field", "value", "message"), WIZARD_CASES)
def test_bad_wizard_values_are_refused_and_the_draft_is_kept(
    client_for, aws, unchanged, step, field, value, message
) -> None:
    kind = {"serverless": "serverless", "async": "async"}.get(step, "real-time")
    step = "capacity" if step == "serverless" else step
    deployer = client_for("deployer")
    walk_to(deployer, kind, step)
    data = dict(STEPS[kind])[step] if step != "basics" else {"environment": "prod-eu"}
    data = {"name": "churn", "kind": kind} | data if step == "basics" else dict(data)
    if field.startswith("variant-1-"):
        data = variant_rows(2)
    data[field] = value
    check = unchanged()

    response = deployer.post(step_url(step), data)

    assert response.status_code == 200
    assert message in page_text(response)
    check()


IMPORT_CASES = catalogue(
    "wizard documents",
    [
        ("text", '{"basics": {', "This is not valid JSON (Expecting property name"),
        ("text", "[" * 100_000 + "]" * 100_000, "This is not valid JSON"),
        ("text", '{"portal_wizard_version": ' + "7" * 5000 + "}", "This is not valid JSON"),
        ("text", "[1, 2]", "This is not a wizard document: it needs a JSON object"),
        ("text", '{"portal_wizard_version": 2}', "this portal reads version 1."),
        ("text", '{"portal_wizard_version": 1, "x": 1}', "Unknown keys: x. A wizard document"),
        ("text", '{"portal_wizard_version": 1, "basics": []}', "basics: use a JSON object"),
        (
            "text",
            '{"portal_wizard_version": 1, "basics": {"environment": "prod-eu", "name": "a b"}}',
            "Use 1 to 63 letters, digits or hyphens",
        ),
        ("document", b"{" + b" " * 1_048_576 + b"}", "This file is too large for a wizard"),
        ("document", b"\xff\xfe{}", "This file is not UTF-8 text; upload a .json file."),
        ("text", "", "Choose a file or paste a wizard document."),
    ],
)


@pytest.mark.parametrize(("field", "value", "message"), IMPORT_CASES)
def test_bad_wizard_documents_are_refused_and_the_draft_is_kept(
    client_for, aws, unchanged, field, value, message
) -> None:
    deployer = client_for("deployer")
    walk_to(deployer, "real-time", "capture")
    if field == "document":
        value = SimpleUploadedFile("churn.json", value, "application/json")
    check = unchanged()

    response = deployer.post(reverse("endpoints:import"), {field: value})

    assert response.status_code == 200
    assert message in page_text(response)
    check()


# -- model cards (Engineer) -----------------------------------------------------------------------

CARD_CASES = catalogue(
    "model card form",
    [
        ("name", "churn card", "Use 1 to 63 letters, digits or hyphens, starting and ending"),
        ("name", "Churn-Card", "A card named Churn-Card exists already; choose another name."),
        ("name", "", "This field is required."),
        ("model_name", "m" * 1025, "Ensure this value has at most 1024 characters"),
    ],
)


def test_a_valid_card_is_created(client_for) -> None:
    data = {"name": "fraud-card", "model_name": "Fraud"}

    response = client_for("engineer").post(reverse("modelcards:create"), data)

    assert response.status_code == 302
    assert ModelCard.objects.filter(name="fraud-card").exists()


@pytest.mark.parametrize(("field", "value", "message"), CARD_CASES)
def test_bad_card_values_are_refused(client_for, unchanged, field, value, message) -> None:
    engineer = client_for("engineer")
    engineer.post(reverse("modelcards:create"), {"name": "churn-card", "model_name": "Churn"})
    data = {"name": "fraud-card", "model_name": "Fraud"} | {field: value}
    check = unchanged()

    response = engineer.post(reverse("modelcards:create"), data)

    assert response.status_code == 200
    assert message in page_text(response)
    check()


def card_json(**content: object) -> bytes:
    return json.dumps({"model_overview": {"model_name": "Churn"}} | content).encode()


CARD_FILE_CASES = catalogue(
    "model card import",
    [
        ("card.json", b'{"model_overview": ', "This is not valid JSON (Expecting value at line 1"),
        ("card.json", b"[1, 2]", "A SageMaker model card is a JSON object, {…}, at the top level."),
        ("card.json", b"[" * 100_000 + b"]" * 100_000, "This JSON is nested too deep"),
        ("card.json", b'{"a": ' + b"9" * 5000 + b"}", "or holds a number too long."),
        (
            "card.json",
            card_json(model_overview={"model_name": 5}),
            "model_overview.model_name: Use text in quotes here, not 5.",
        ),
        (
            "card.json",
            card_json(intended_uses={"risk_rating": "Extreme"}),
            "intended_uses.risk_rating: Use one of High, Medium, Low, Unknown.",
        ),
        ("card.json", card_json(colour="red"), "SageMaker model cards have no field 'colour'."),
        ("card.json", b"{}" + b" " * 1_000_000, "card.json is larger than 1 MB"),
        ("card.json", b'{"model_overview": "\xff"}', "card.json is not UTF-8 text."),
        (
            "README.md",
            b"---\nlicense: [mit\n---\n# Churn\n",
            "The YAML front matter is not valid YAML on line",
        ),
        (
            "README.md",
            b"---\nlicense: mit\n# Churn\n## Model Description\nA model.\n",
            "The YAML front matter is not closed: end it with a line holding only ---.",
        ),
        ("README.md", b"---\n- a\n- b\n---\n# Churn\n", "must be a mapping of keys to values."),
        (
            "README.md",
            b"---\nsagemaker_model_card: yes\n---\n# Churn\n",
            "sagemaker_model_card in the front matter must be a mapping.",
        ),
        ("README.md", b"Just some notes.\n", "Found nothing of a model card: no front matter"),
        ("README.md", b"\x00\xff\xfe", "README.md is not UTF-8 text."),
    ],
)


@pytest.mark.parametrize(("name", "data", "message"), CARD_FILE_CASES)
def test_bad_card_files_are_refused(client_for, unchanged, name, data, message) -> None:
    engineer = client_for("engineer")
    check = unchanged()

    response = engineer.post(
        reverse("modelcards:import"), {"file": SimpleUploadedFile(name, data), "name": ""}
    )

    assert response.status_code == 200
    assert message in page_text(response)
    check()


def test_a_valid_card_file_is_imported(client_for) -> None:
    upload = SimpleUploadedFile("card.json", card_json())

    response = client_for("engineer").post(reverse("modelcards:import"), {"file": upload})

    assert response.status_code == 302
    assert ModelCard.objects.count() == 1


# -- signing in, passwords and people --------------------------------------------------------------

PASSWORD_CASES = catalogue(
    "password change",
    [
        ("new_password1", "short 1", "This password is too short. It must contain at least 12"),
        ("new_password1", "password1234", "This password is too common."),
        ("new_password1", "482910573625", "This password is entirely numeric."),
        ("new_password1", "robin-the-user", "The password is too similar to the username."),
        ("new_password2", "something else 42", "The two password fields didn’t match."),
        ("old_password", "not my password", "Your old password was entered incorrectly."),
    ],
)


@pytest.mark.parametrize(("field", "value", "message"), PASSWORD_CASES)
def test_bad_new_passwords_are_refused(client, unchanged, field, value, message) -> None:
    user = UserFactory(username="robin-the-user")
    client.force_login(user)
    data = {"old_password": PASSWORD, "new_password1": value, "new_password2": value}
    if field != "new_password1":
        data = {
            "old_password": PASSWORD,
            "new_password1": "a new long password 7",  # pragma: allowlist secret
            "new_password2": "a new long password 7",  # pragma: allowlist secret
        } | {field: value}
    check = unchanged()

    response = client.post(reverse("accounts:password_change"), data)

    assert response.status_code == 200
    assert message in page_text(response)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    check()


def test_a_wrong_password_is_refused_at_sign_in(client, unchanged) -> None:
    UserFactory(username="robin")
    # The failure itself is counted (the sign-in throttle's rows); nothing else is written.
    check = unchanged(allowed=("accounts.LoginFailure",))

    wrong = "guess 12345"  # pragma: allowlist secret (a wrong password, on purpose)
    response = client.post(reverse("accounts:login"), {"username": "robin", "password": wrong})

    assert response.status_code == 200
    assert "Please enter a correct username and password." in page_text(response)
    check()


USER_CASES = catalogue(
    "user form",
    [
        ("username", "robin", "Someone already has this username. Choose another one."),
        ("username", "ROBIN", "Someone already has this username."),
        ("username", "robin hood!", "Enter a valid username. This value may contain only letters"),
        ("username", "r" * 151, "Ensure this value has at most 150 characters"),
        ("email", "not-an-email", "Enter a valid email address."),
        ("role", "9", "Select a valid choice. 9 is not one of the available choices."),
    ],
)


@pytest.mark.parametrize(("field", "value", "message"), USER_CASES)
def test_bad_user_values_are_refused(client_for, unchanged, field, value, message) -> None:
    UserFactory(username="robin")
    admin = client_for("admin")
    data = {"username": "sam", "first_name": "", "last_name": "", "email": "", "role": "1"}
    check = unchanged()

    response = admin.post(reverse("accounts:user_create"), data | {field: value})

    assert response.status_code == 200
    assert message in page_text(response)
    check()


# -- model archives, unpacked by the local runtime ------------------------------------------------


def archive(*members: tarfile.TarInfo, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1, link: str = "") -> object:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


TAR_CASES = catalogue(
    "model archives",
    [
        ("absolute path", archive(member("/etc/cron.d/evil")), "with an absolute path, /etc/cron"),
        ("..", archive(member("../evil.py")), "climbs out of its folder, ../evil.py"),
        ("nested ..", archive(member("model/../../evil.py")), "Model archives may not use '..'"),
        (
            "symlink escape",
            archive(member("model.pkl", tarfile.SYMTYPE, link="/etc/passwd")),
            "holds a symbolic link, model.pkl -> /etc/passwd; model archives may hold only files",
        ),
        (
            "symlink then file",
            archive(member("up", tarfile.SYMTYPE, link=".."), member("up/evil.py")),
            "holds a symbolic link, up -> ..",
        ),
        (
            "hard link",
            archive(member("model.pkl", tarfile.LNKTYPE, link="/etc/shadow")),
            "holds a hard link, model.pkl -> /etc/shadow",
        ),
        ("device", archive(member("dev/sda", tarfile.BLKTYPE)), "holds a device file, dev/sda"),
        ("char device", archive(member("tty", tarfile.CHRTYPE)), "holds a device file, tty"),
        ("FIFO", archive(member("pipe", tarfile.FIFOTYPE)), "holds a named pipe (FIFO), pipe"),
        (
            "members over the cap",
            archive(*(member(f"part-{number}.bin") for number in range(11))),
            "The archive holds more than 10 members. Pack the model into fewer files.",
        ),
        (
            "bytes over the cap",
            archive(member("model.bin", size=2048)),
            "The archive unpacks to more than 1,024 bytes.",
        ),
        ("not gzip", b"PK\x03\x04" + b"\x00" * 600, "This is not a .tar.gz archive."),
        (
            "truncated",
            archive(member("model.bin", size=600))[:40],
            "The archive is damaged or incomplete",
        ),
        (
            "plain tar with ..",
            archive(member("../x"), compress=False),
            "climbs out of its folder, ../x",
        ),
    ],
)


@pytest.mark.parametrize(("field", "data", "message"), TAR_CASES)
def test_bad_archives_are_refused_and_nothing_is_unpacked(tmp_path, field, data, message) -> None:
    path = tmp_path / "upload" / "model.tar.gz"
    path.parent.mkdir()
    path.write_bytes(data)
    target = tmp_path / "work" / "models" / "churn"
    before = files_under(tmp_path)

    with pytest.raises(StorageError) as refused:
        safe_extract(path, target, max_bytes=1024, max_members=10)

    assert message in str(refused.value)
    assert files_under(tmp_path) - before <= {"work", "work/models"}
    assert not target.exists()
    assert not (Path("/etc/cron.d/evil").exists() or (tmp_path / "evil.py").exists())


def test_a_valid_archive_is_unpacked_inside_its_folder(tmp_path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(archive(member("model/weights.bin", size=10), member("code/inference.py")))

    names = safe_extract(path, tmp_path / "churn", max_bytes=1024, max_members=10)

    assert names == ["model/weights.bin", "code/inference.py"]
    assert (tmp_path / "churn" / "model" / "weights.bin").read_bytes() == b"x" * 10


# -- the playground (Engineer) --------------------------------------------------------------------


@pytest.fixture
def in_service(local) -> dict[str, Endpoint]:
    """A real-time and a serverless endpoint on the local runtime, both InService. No runtime
    runs: a request that got past the checks would fail at the provider, not be refused."""
    model = RegisteredModel.objects.get(name="iris")
    real_time = {"name": "AllTraffic", "model_id": model.pk, "instance_type": "ml.m5.large"}
    serverless = {"name": "AllTraffic", "model_id": model.pk, "serverless": {"memory": 2048}}
    return {
        name: Endpoint.objects.create(
            environment=local,
            name=name,
            kind=kind,
            spec={"variants": [variant | {"instance_count": 1, "weight": 1.0}]},
            status=Endpoint.Status.IN_SERVICE,
        )
        for name, kind, variant in (
            ("rt", Endpoint.Kind.REAL_TIME, real_time),
            ("sls", Endpoint.Kind.SERVERLESS, serverless),
        )
    }


PATH_RULE = "Use a path under the model prefix, without .., a leading /, \\, # or ?"
PLAYGROUND_CASES = catalogue(
    "playground requests",
    [
        ("upload", b"1" * 6_291_457, "The body is 6.0 MB (6,291,457 bytes); real-time endpoints"),
        ("sls upload", b"1" * 4_000_001, "serverless endpoints take at most 4 MB (4,000,000"),
        ("body", "1" * 2_700_000, "The body typed into the page is over 2.5 MB"),
        ("body", "", "Write a request body; SageMaker requires one."),
        (
            "content_type",
            "application/json\r\nX-Injected: 1",
            "Use only printable ASCII characters in Content-Type, with no line breaks",
        ),
        ("content_type", "json", "Use a media type such as text/csv or application/json"),
        ("content_type", "application/json; charset", "Use a media type such as text/csv"),
        ("content_type", "text/csv, application/json", "Use a media type such as"),
        ("content_type", "", "This field is required."),
        ("accept", "text/csv\nX-Injected: 1", "Use only printable ASCII characters in Accept"),
        ("custom_attributes", "trace=1\r\nX: 2", "printable ASCII characters in Custom attributes"),
        ("custom_attributes", "caf\u00e9", "Use only printable ASCII characters in Custom"),
        ("custom_attributes", "a" * 1025, "Ensure this value has at most 1024 characters"),
        ("target_model", "../secret.tar.gz", PATH_RULE),
        ("target_model", "team/../../secret.tar.gz", PATH_RULE),
        ("target_model", "/etc/passwd", PATH_RULE),
        ("target_model", "team\\model.tar.gz", PATH_RULE),
        ("target_model", "model.tar.gz#part", PATH_RULE),
        ("target_model", "model.tar.gz?version=2", PATH_RULE),
        ("target_model", "%2e%2e/secret.tar.gz", PATH_RULE),
        ("target_model", "%2Fetc%2Fpasswd", PATH_RULE),
        ("target_model", "model\x00.tar.gz", "Null characters are not allowed."),
        ("target_model", "model\u00e9.tar.gz", "Use printable ASCII characters"),
        ("target_model", "model-a.tar.gz", "rt is not a multi-model endpoint; leave the target"),
        ("target_variant", "Ghost", "rt has no variant named Ghost; choose one of AllTraffic."),
        ("target_container", "prep", "rt is not a Direct multi-container endpoint."),
        ("endpoint", "999999", "Select a valid choice."),
    ],
)


@pytest.mark.parametrize(("field", "value", "message"), PLAYGROUND_CASES)
def test_bad_playground_requests_are_refused_before_the_provider(
    client_for, in_service, unchanged, field, value, message
) -> None:
    engineer = client_for("engineer")
    endpoint = in_service["sls" if field.startswith("sls") else "rt"]
    data = {
        "endpoint": endpoint.pk,
        "content_type": "application/json",
        "accept": "",
        "custom_attributes": "",
        "target_model": "",
        "target_variant": "",
        "target_container": "",
        "body": '{"x": 1}',
    }
    if field.endswith("upload"):
        data["upload"] = SimpleUploadedFile("input.json", value)
    else:
        data[field] = value
    # A refusal is history too: at most one failed row, which shows the user what was refused.
    check = unchanged(allowed=("playground.Invocation",))

    response = engineer.post(reverse("playground:invoke"), data, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert message in page_text(response)
    check()
    rows = list(Invocation.objects.all())
    assert len(rows) <= 1
    assert all(
        row.state == Invocation.State.FAILED and message in row.error_message for row in rows
    )
    assert all(row.response_size == 0 and not row.response_blob for row in rows)


CHAT_CASES = catalogue(
    "playground chat",
    [
        ("messages", "[" * 100_000 + "]" * 100_000, "The conversation is not a list of {role"),
        ("messages", "[" + "9" * 5000 + "]", "The conversation is not a list of {role, content}"),
        ("messages", '[{"role": "user", "content": 1}]', "The conversation is not a list"),
        ("messages", '[{"role": "system", "content": "x"}]', "The conversation is not a list"),
        ("messages", '{"role": "user"}', "The conversation is not a list of {role, content}"),
        ("stop", "a\nb\nc\nd\ne", "Give at most 4 stop sequences, one per line."),
        ("temperature", "3", "Ensure this value is less than or equal to 2."),
        ("temperature", "nan", "Enter a number."),
        ("max_new_tokens", "0", "Ensure this value is greater than or equal to 1."),
        ("max_new_tokens", "100000", "Ensure this value is less than or equal to 4096."),
        ("top_p", "0", "Ensure this value is greater than or equal to 0.01."),
        ("prompt", "", "This field is required."),
    ],
)


@pytest.mark.parametrize(("field", "value", "message"), CHAT_CASES)
def test_bad_chat_turns_are_refused(
    client_for, in_service, unchanged, field, value, message
) -> None:
    engineer = client_for("engineer")
    data = {
        "endpoint": in_service["rt"].pk,
        "system": "",
        "messages": "[]",
        "prompt": "Hello",
        "max_new_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": "",
    }
    check = unchanged()

    response = engineer.post(reverse("playground:stream"), data | {field: value})

    assert response.status_code == 400
    assert message in response.json()["message"]
    check()


# -- insights: time ranges, record filters and load tests ------------------------------------------

CUSTOM_RANGE_RULE = "Give the custom range as dates and times, such as 2026-01-15T10:00."
RANGE_CASES = catalogue(
    "insights ranges",
    [
        ({"range": "forever"}, "Choose last hour, 6 hours, 24 hours, 7 days or a custom range."),
        ({"range": "custom", "start": "yesterday"}, CUSTOM_RANGE_RULE),
        ({"range": "custom", "start": ""}, "such as 2026-01-15T10:00."),
        (
            {"range": "custom", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"},
            "The custom range must end after it starts.",
        ),
        (
            {"range": "custom", "start": "2026-01-01T00:00", "end": "2026-06-01T00:00"},
            "Choose a custom range of at most 62 days.",
        ),
        ({"range": "custom", "start": "0001-01-01T00:00+01:00"}, CUSTOM_RANGE_RULE),
        (
            {"range": "custom", "start": "9999-12-01T00:00", "end": "9999-12-31T23:59-01:00"},
            CUSTOM_RANGE_RULE,
        ),
    ],
)


@pytest.mark.parametrize(("query", "message"), RANGE_CASES)
def test_bad_time_ranges_fall_back_to_a_day_and_say_why(
    client_for, in_service, unchanged, query, message
) -> None:
    viewer = client_for("viewer")
    check = unchanged()

    for name in ("insights:endpoint", "insights:records", "insights:metrics", "insights:cost"):
        response = viewer.get(reverse(name, args=[in_service["rt"].pk]), query)

        assert response.status_code == 200, name
        if name in ("insights:endpoint", "insights:records"):  # the fragments show it once
            assert f"{message} Showing the last 24 hours instead." in page_text(response), name
    check()


FILTER_CASES = catalogue(
    "insights filters",
    [
        ({"status": "bogus"}, "Select a valid choice. bogus is not one of the available choices."),
        ({"variant": "v" * 64}, "Ensure this value has at most 63 characters (it has 64)."),
        ({"q": "q" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
    ],
)


@pytest.mark.parametrize(("query", "message"), FILTER_CASES)
def test_bad_record_filters_are_named(client_for, in_service, unchanged, query, message) -> None:
    viewer = client_for("viewer")
    check = unchanged()

    response = viewer.get(reverse("insights:records", args=[in_service["rt"].pk]), query)

    assert response.status_code == 200
    assert message in page_text(response)
    check()


LOAD_TEST = {
    "requests": 10,
    "concurrency": 2,
    "source": "pasted",
    "payloads": "1,2,3",
    "content_type": "text/csv",
    "target_model": "",
}
LOAD_TEST_CASES = catalogue(
    "load tests",
    [
        ("requests", 0, "Ensure this value is greater than or equal to 1."),
        ("requests", 5001, "Ensure this value is less than or equal to 5000."),
        ("requests", "many", "Enter a whole number."),
        ("concurrency", 0, "Ensure this value is greater than or equal to 1."),
        ("concurrency", 17, "Ensure this value is less than or equal to 16."),
        ("source", "s3", "Select a valid choice. s3 is not one of the available choices."),
        ("source", "recorded", "This endpoint has no captured requests to replay yet"),
        ("payloads", " \n \n", "Paste at least one request body, one per line."),
        ("payloads", "1\n" * 131_073, "Paste at most 256 KB of payloads."),
        ("content_type", "", "Give the content type of the pasted payloads."),
        ("content_type", "text/csv\r\nX-Injected: 1", "Use only printable ASCII characters in"),
        ("content_type", "csv", "Use a media type such as text/csv or application/json"),
        ("target_model", "../../etc/passwd", PATH_RULE),
        ("target_model", "%2e%2e/model.tar.gz", PATH_RULE),
    ],
)


def test_a_valid_load_test_is_queued(client_for, in_service) -> None:
    url = reverse("insights:start_load_test", args=[in_service["rt"].pk])

    response = client_for("engineer").post(url, LOAD_TEST)

    assert response.status_code == 302
    assert in_service["rt"].load_tests.count() == 1


@pytest.mark.parametrize(("field", "value", "message"), LOAD_TEST_CASES)
def test_bad_load_tests_are_refused(
    client_for, in_service, unchanged, field, value, message
) -> None:
    engineer = client_for("engineer")
    check = unchanged()

    response = engineer.post(
        reverse("insights:start_load_test", args=[in_service["rt"].pk]), LOAD_TEST | {field: value}
    )

    assert response.status_code == 200
    assert message in page_text(response)
    check()


# -- ids in query strings ------------------------------------------------------------------------


@pytest.mark.parametrize("odd", ["²", "٣", "9" * 5000, "-1"])
def test_odd_ids_in_query_strings_are_ignored_not_errors(client_for, in_service, aws, odd) -> None:
    """isdigit() is true for "²" and for 5000 digits, which int() refuses: such an id is ignored
    (or read as the number it is: ٣ is 3), never a server error."""
    deployer = client_for("deployer")
    card = deployer.post(reverse("modelcards:create"), {"name": "churn", "model_name": "Churn"})
    pages = {
        reverse("playground:index"): {"endpoint": odd},
        reverse("playground:index") + f"?endpoint={in_service['rt'].pk}": {"pin": odd},
        reverse("playground:history"): {"endpoint": odd},
        reverse("playground:compare_targets"): {"side": "left", "left_endpoint": odd},
        reverse("insights:index"): {"endpoint": odd},
        step_url("basics"): {"model": odd},
        card["Location"] + "view/": {"version": odd},
    }

    for url, query in pages.items():
        response = deployer.get(url, query)

        assert response.status_code in (200, 302, 404), url
    walk_to(deployer, "real-time", "capacity")
    response = deployer.post(step_url("capacity"), variant_rows(2) | {"remove_variant": odd})
    assert response.status_code == 200
    assert 'name="variant-1-name"' in response.content.decode()


# -- the catalogue ---------------------------------------------------------------------------------


def test_the_catalogue_holds_at_least_fifty_distinct_bad_inputs() -> None:
    cases = [(group, param.values) for group, params in ALL_CASES.items() for param in params]
    distinct = {(group, repr(values[:-1])) for group, values in cases}

    assert len(distinct) == len(cases), "a case is listed twice"
    assert len(cases) >= 50
    assert len(ALL_CASES) >= 10  # spread over the portal's forms, endpoints and archives
