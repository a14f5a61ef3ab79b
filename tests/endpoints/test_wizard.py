"""The endpoint wizard: each kind walked to its creation, steps that refuse bad values, a draft
that outlives a sign-out, the review's exact requests, and the JSON document round trip."""

import html
import json
import sys
import types

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from endpoints.drafts import WizardDraft
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment
from tests.conftest import sign_in
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db

CONTAINERS = [{"Image": "sklearn", "ModelDataUrl": "s3://acme-ml/portal/iris.tar.gz"}]


@pytest.fixture
def environment() -> Environment:
    return EnvironmentFactory(
        name="prod-eu", kind=Environment.Kind.AWS, region="eu-west-1", bucket="acme-ml"
    )


@pytest.fixture
def model(environment) -> RegisteredModel:
    return RegisteredModel.objects.create(
        environment=environment, name="iris", containers=CONTAINERS
    )


@pytest.fixture
def deployer(client_for) -> Client:
    return client_for("deployer")


def step_url(step: str) -> str:
    return reverse("endpoints:wizard_step", args=[step])


def variants(*rows: dict) -> dict:
    """Form data for the variant rows of the capacity step."""
    data = {"variant-TOTAL_FORMS": len(rows), "variant-INITIAL_FORMS": 0}
    for index, row in enumerate(rows):
        values = {
            "name": "AllTraffic",
            "model": "iris",
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "weight": 1.0,
        } | row
        data |= {f"variant-{index}-{key}": value for key, value in values.items()}
    return data


CAPTURE_ON = {
    "enabled": "on",
    "sampling": 20,
    "destination": "s3://acme-ml/portal/capture/",
    "input": "on",
    "output": "on",
    "csv_types": "text/csv",
    "json_types": "application/json\napplication/jsonlines",
}
SCALING_ON = {
    "enabled": "on",
    "min": 1,
    "max": 4,
    "target": 70,
    "scale_in_cooldown": 300,
    "scale_out_cooldown": 60,
}


def walk(client: Client, steps: list[tuple[str, dict]]) -> None:
    """Post each step in turn; each must be accepted (a redirect to the next one)."""
    for step, data in steps:
        response = client.post(step_url(step), data)
        assert response.status_code == 302, (step, response.content.decode()[:3000])


def real_time_steps(name: str = "churn", capacity: dict | None = None) -> list[tuple[str, dict]]:
    return [
        ("basics", {"environment": "prod-eu", "name": name, "kind": "real-time"}),
        ("capacity", capacity or variants({})),
        ("capture", CAPTURE_ON),
        ("autoscaling", SCALING_ON),
    ]


def test_deployer_creates_a_real_time_endpoint_through_every_step(deployer, model) -> None:
    walk(deployer, real_time_steps(capacity=variants({}, {"name": "Canary", "weight": 0.1})))

    review = deployer.get(step_url("review"))
    response = deployer.post(step_url("review"))

    endpoint = Endpoint.objects.get(name="churn")
    assert review.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == reverse("endpoints:detail", args=[endpoint.pk])
    assert endpoint.kind == Endpoint.Kind.REAL_TIME
    assert endpoint.spec["variants"] == [
        {
            "name": "AllTraffic",
            "model_id": model.pk,
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "weight": 1.0,
        },
        {
            "name": "Canary",
            "model_id": model.pk,
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "weight": 0.1,
        },
    ]
    assert endpoint.spec["capture"]["json_types"] == ["application/json", "application/jsonlines"]
    assert endpoint.spec["autoscaling"]["max"] == 4
    assert "async" not in endpoint.spec
    deployment = Deployment.objects.get(endpoint=endpoint)
    assert deployment.action == Deployment.Action.CREATE
    assert endpoint.created_by == deployment.created_by
    assert not WizardDraft.objects.exists()


def test_deployer_creates_an_async_endpoint_that_scales_to_zero(deployer, model) -> None:
    walk(
        deployer,
        [
            ("basics", {"environment": "prod-eu", "name": "batch-scores", "kind": "async"}),
            ("capacity", variants({"instance_count": 2})),
            (
                "async",
                {
                    "output_path": "s3://acme-ml/portal/async/out/",
                    "failure_path": "s3://acme-ml/portal/async/failed/",
                    "max_concurrent": 4,
                    "success_topic": "arn:aws:sns:eu-west-1:123456789012:scored",
                    "error_topic": "",
                },
            ),
            ("capture", {"enabled": ""}),
            ("autoscaling", SCALING_ON | {"min": 0, "target": 5}),
        ],
    )

    response = deployer.post(step_url("review"))

    endpoint = Endpoint.objects.get(name="batch-scores")
    assert response.status_code == 302
    assert endpoint.kind == Endpoint.Kind.ASYNC
    assert endpoint.spec["async"] == {
        "output_path": "s3://acme-ml/portal/async/out/",
        "failure_path": "s3://acme-ml/portal/async/failed/",
        "max_concurrent": 4,
        "success_topic": "arn:aws:sns:eu-west-1:123456789012:scored",
        "error_topic": "",
    }
    assert endpoint.spec["autoscaling"]["min"] == 0
    assert endpoint.spec["capture"]["enabled"] is False
    assert Deployment.objects.filter(endpoint=endpoint, action="create").exists()


def test_real_time_autoscaling_refuses_a_minimum_of_zero(deployer, model) -> None:
    walk(deployer, real_time_steps()[:3])

    response = deployer.post(step_url("autoscaling"), SCALING_ON | {"min": 0})

    assert response.status_code == 200
    assert "only async endpoints can scale to zero" in response.content.decode()


def test_serverless_wizard_skips_capture_and_autoscaling(deployer, model) -> None:
    walk(deployer, [("basics", {"environment": "prod-eu", "name": "quick", "kind": "serverless"})])

    saved = deployer.post(
        step_url("capacity"),
        {"model": "iris", "memory": 3072, "max_concurrency": 10, "provisioned_concurrency": 2},
    )
    capture = deployer.get(step_url("capture"), follow=True)
    review = deployer.get(step_url("review"))
    created = deployer.post(step_url("review"))

    assert saved["Location"] == step_url("review")
    assert capture.redirect_chain[-1][0] == step_url("review")
    assert "no data capture or autoscaling" in capture.content.decode()
    assert "Data capture" not in review.content.decode().split("</ol>")[0]
    endpoint = Endpoint.objects.get(name="quick")
    assert created.status_code == 302
    assert endpoint.spec == {
        "variants": [
            {
                "name": "AllTraffic",
                "model_id": model.pk,
                "serverless": {"memory": 3072, "max_concurrency": 10, "provisioned_concurrency": 2},
            }
        ]
    }
    assert Deployment.objects.filter(endpoint=endpoint).exists()


def test_serverless_provisioned_concurrency_above_the_maximum_is_refused(deployer, model) -> None:
    walk(deployer, [("basics", {"environment": "prod-eu", "name": "quick", "kind": "serverless"})])

    response = deployer.post(
        step_url("capacity"),
        {"model": "iris", "memory": 2048, "max_concurrency": 5, "provisioned_concurrency": 6},
    )

    assert response.status_code == 200
    assert "Use a provisioned concurrency from 1 to 5" in response.content.decode()


def test_an_instance_count_of_zero_is_refused_until_it_is_fixed(deployer, model) -> None:
    walk(deployer, real_time_steps()[:1])

    refused = deployer.post(step_url("capacity"), variants({"instance_count": 0}))
    fixed = deployer.post(step_url("capacity"), variants({"instance_count": 3}))

    assert refused.status_code == 200
    assert "Use a whole number of instances from 1 to 10" in refused.content.decode()
    assert fixed.status_code == 302
    draft = WizardDraft.objects.get()
    assert draft.data["capacity"]["variants"][0]["instance_count"] == 3
    assert draft.step == "capture"


def test_a_local_environment_caps_instances_at_the_runtime_limit(
    deployer, settings, user_for
) -> None:
    settings.LOCAL_RUNTIME_MAX_INSTANCES = 2
    local = EnvironmentFactory(name="laptop")
    RegisteredModel.objects.create(environment=local, name="iris", containers=CONTAINERS)
    walk(deployer, [("basics", {"environment": "laptop", "name": "churn", "kind": "real-time"})])

    response = deployer.post(step_url("capacity"), variants({"instance_count": 3}))

    assert response.status_code == 200
    assert "Use a whole number of instances from 1 to 2" in response.content.decode()
    assert "Free: runs on this machine." in response.content.decode()


def test_a_name_already_used_in_the_environment_is_refused(deployer, environment) -> None:
    Endpoint.objects.create(environment=environment, name="churn", spec={"variants": []})
    other = EnvironmentFactory(name="staging")

    taken = deployer.post(
        step_url("basics"), {"environment": "prod-eu", "name": "churn", "kind": "real-time"}
    )
    elsewhere = deployer.post(
        step_url("basics"), {"environment": other.name, "name": "churn", "kind": "real-time"}
    )

    assert taken.status_code == 200
    assert "prod-eu already has an endpoint named churn" in taken.content.decode()
    assert elsewhere.status_code == 302


def test_an_invalid_endpoint_name_is_refused_with_how_to_fix_it(deployer, environment) -> None:
    response = deployer.post(
        step_url("basics"), {"environment": "prod-eu", "name": "-churn_", "kind": "real-time"}
    )

    assert response.status_code == 200
    assert "Use 1 to 63 letters, digits or hyphens" in response.content.decode()
    assert not WizardDraft.objects.exists()


def test_a_draft_survives_signing_out_and_in_again(user_for, model) -> None:
    user = user_for("deployer")
    client = Client()
    client.force_login(user)
    walk(client, real_time_steps()[:2])

    client.post(reverse("accounts:logout"))
    client.force_login(user)
    resumed = client.get(reverse("endpoints:create"))
    page = client.get(resumed["Location"])

    assert resumed["Location"] == step_url("capture")
    assert page.status_code == 200
    assert 'aria-current="step"' in page.content.decode()
    basics = client.get(step_url("basics")).content.decode()
    assert 'value="churn"' in basics


def test_start_over_discards_the_draft(deployer, model) -> None:
    walk(deployer, real_time_steps()[:2])

    response = deployer.post(reverse("endpoints:create"))

    assert response["Location"] == step_url("basics")
    assert not WizardDraft.objects.exists()


def test_a_step_cannot_be_reached_before_the_ones_it_needs(deployer, model) -> None:
    walk(deployer, real_time_steps()[:1])

    response = deployer.get(step_url("autoscaling"))

    assert response["Location"] == step_url("capacity")


def test_the_progress_list_marks_the_current_step(deployer, model) -> None:
    walk(deployer, real_time_steps()[:2])

    page = deployer.get(step_url("capture")).content.decode()

    current = page.split('aria-current="step"')[1].split("</li>")[0]
    assert "Data capture" in current
    assert page.count('aria-current="step"') == 1


def test_the_capacity_step_shows_the_hourly_price_of_the_chosen_instances(
    deployer, model, settings
) -> None:
    settings.INSTANCE_PRICES_PER_HOUR = {"ml.m5.large": 0.115, "ml.g5.xlarge": 1.408}
    walk(deployer, real_time_steps()[:1])
    rows = variants({"instance_count": 2}, {"name": "Gpu", "instance_type": "ml.g5.xlarge"})

    page = deployer.get(step_url("capacity")).content.decode()
    estimate = deployer.post(f"{step_url('capacity')}?estimate=1", rows, HTTP_HX_REQUEST="true")

    assert "About $0.12 per hour" in page
    assert estimate.status_code == 200
    assert 'id="wizard-price"' in estimate.content.decode()
    assert "About $1.64 per hour" in estimate.content.decode()
    assert "<html" not in estimate.content.decode()
    assert not WizardDraft.objects.get().data.get("capacity")


def test_an_instance_type_without_a_list_price_is_accepted_and_said_so(deployer, model) -> None:
    walk(deployer, real_time_steps()[:1])

    response = deployer.post(step_url("capacity"), variants({"instance_type": "ml.m7i.large"}))
    page = deployer.get(step_url("capacity")).content.decode()

    assert response.status_code == 302
    assert "No list price for ml.m7i.large" in page


def test_adding_and_removing_a_variant_keeps_the_values_typed(deployer, model) -> None:
    walk(deployer, real_time_steps()[:1])
    rows = variants({"instance_count": 2})

    added = deployer.post(step_url("capacity"), rows | {"add_variant": "1"})
    removed = deployer.post(
        step_url("capacity"),
        variants({"instance_count": 2}, {"name": "B"}) | {"remove_variant": "1"},
    )

    assert added.status_code == 200
    assert 'name="variant-1-name"' in added.content.decode()
    assert 'name="variant-0-instance_count" value="2"' in added.content.decode()
    assert 'name="variant-1-name"' not in removed.content.decode()
    assert not WizardDraft.objects.get().data.get("capacity")


def test_two_variants_with_one_name_are_refused(deployer, model) -> None:
    walk(deployer, real_time_steps()[:1])

    response = deployer.post(step_url("capacity"), variants({}, {}))

    assert response.status_code == 200
    assert "Give each variant its own name; AllTraffic is used twice." in response.content.decode()


def test_review_shows_the_endpoint_config_with_the_chosen_production_variants(
    deployer, model
) -> None:
    capacity = variants({"instance_count": 2}, {"name": "Canary", "instance_type": "ml.c5.xlarge"})
    walk(deployer, real_time_steps(capacity=capacity))

    response = deployer.get(step_url("review"))

    page = response.content.decode()
    config = page.split("CreateEndpointConfig</h3>")[1].split("</code></pre>")[0]
    config = json.loads(html.unescape(config.split("<code>")[1]))
    assert config["EndpointConfigName"] == "portal-<id>-g1"
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "portal-<id>-g1-v0",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
        },
        {
            "VariantName": "Canary",
            "ModelName": "portal-<id>-g1-v1",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
        },
    ]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert "sagemaker.create_endpoint_config(" in page


def test_the_boto3_code_makes_the_requests_the_review_shows(deployer, model, monkeypatch) -> None:
    walk(deployer, real_time_steps())
    document = deployer.get(reverse("endpoints:export")).json()
    calls = []

    class FakeClient:
        def __getattr__(self, method: str):
            return lambda **request: calls.append((method, request))

    fake = types.ModuleType("boto3")
    fake.client = lambda service, **options: FakeClient()
    monkeypatch.setitem(sys.modules, "boto3", fake)
    code = deployer.get(step_url("review")).context["code"]

    exec(compile(code, "review", "exec"), {})  # noqa: S102 - our own generated snippet

    wanted = document["requests"]
    assert calls == [
        ("create_model", wanted["models"][0]),
        ("create_endpoint_config", wanted["config"]),
        ("create_endpoint", wanted["endpoint"]),
    ]


def test_export_then_import_gives_the_same_draft(deployer, model) -> None:
    walk(deployer, real_time_steps(capacity=variants({}, {"name": "B", "weight": 0.5})))
    before = WizardDraft.objects.get().data

    exported = deployer.get(reverse("endpoints:export"))
    deployer.post(reverse("endpoints:create"))  # start over: nothing left of the draft
    upload = SimpleUploadedFile("churn.json", exported.content, "application/json")
    imported = deployer.post(reverse("endpoints:import"), {"document": upload})

    assert exported["Content-Disposition"] == 'attachment; filename="churn-wizard.json"'
    assert exported.json()["portal_wizard_version"] == 1
    assert imported["Location"] == step_url("review")
    draft = WizardDraft.objects.get()
    assert draft.data == before
    assert draft.step == "review"


def test_malformed_json_is_refused_clearly_and_the_draft_is_kept(deployer, model) -> None:
    walk(deployer, real_time_steps()[:2])
    before = WizardDraft.objects.get().data

    response = deployer.post(reverse("endpoints:import"), {"text": '{"basics": {'})

    assert response.status_code == 200
    assert "This is not valid JSON" in response.content.decode()
    assert "line 1, column" in response.content.decode()
    assert WizardDraft.objects.get().data == before


def test_unknown_keys_in_a_document_are_named(deployer, model) -> None:
    document = {"portal_wizard_version": 1, "basics": {}, "endpoint_name": "churn"}

    response = deployer.post(reverse("endpoints:import"), {"text": json.dumps(document)})

    assert response.status_code == 200
    assert "Unknown keys: endpoint_name." in response.content.decode()
    assert not WizardDraft.objects.exists()


def test_an_imported_document_reports_every_bad_value_by_step_and_field(deployer, model) -> None:
    document = {
        "portal_wizard_version": 1,
        "basics": {"environment": "prod-eu", "name": "churn", "kind": "real-time"},
        "capacity": {
            "variants": [
                {
                    "name": "AllTraffic",
                    "model": "iris",
                    "instance_type": "m5.large",
                    "instance_count": 0,
                    "weight": 1.0,
                }
            ]
        },
        "capture": {"enabled": False},
    }

    response = deployer.post(reverse("endpoints:import"), {"text": json.dumps(document)})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Variant 1 · Instance type (instance_type):</strong> Use a SageMaker instance" in page
    assert "Variant 1 · Instance count (instance_count):</strong> Use a whole number" in page
    assert "Autoscaling:</strong> This step is missing." in page
    assert not WizardDraft.objects.exists()


def test_deployer_changes_an_endpoint_through_the_same_steps(deployer, model) -> None:
    spec = {
        "variants": [
            {
                "name": "AllTraffic",
                "model_id": model.pk,
                "instance_type": "ml.m5.large",
                "instance_count": 1,
                "weight": 1.0,
            }
        ]
    }
    endpoint = Endpoint.objects.create(
        environment=model.environment, name="churn", spec=spec, status="InService"
    )

    started = deployer.get(reverse("endpoints:update", args=[endpoint.pk]))
    prefilled = deployer.get(step_url("capacity")).content.decode()
    walk(
        deployer,
        [
            ("capacity", variants({"instance_count": 3})),
            ("capture", CAPTURE_ON),
            ("autoscaling", {"enabled": ""}),
        ],
    )
    review = deployer.get(step_url("review")).content.decode()
    response = deployer.post(step_url("review"))

    endpoint.refresh_from_db()
    assert started["Location"] == step_url("capacity")
    assert 'name="variant-0-instance_type" value="ml.m5.large"' in prefilled
    assert "Basics" not in prefilled.split("</ol>")[0]
    assert f"portal-{endpoint.pk}-g2" in review
    assert response["Location"] == reverse("endpoints:detail", args=[endpoint.pk])
    assert endpoint.spec["variants"][0]["instance_count"] == 3
    assert endpoint.spec["capture"]["enabled"] is True
    assert endpoint.generation == 2
    assert endpoint.deployments.get().action == Deployment.Action.UPDATE
    assert not WizardDraft.objects.exists()


def test_a_model_link_preselects_the_model_and_its_environment(deployer, model) -> None:
    EnvironmentFactory(name="aaa-first")
    chosen = RegisteredModel.objects.create(
        environment=model.environment, name="zebra", containers=CONTAINERS
    )
    link = reverse("endpoints:create") + f"?model={chosen.pk}"

    basics = deployer.get(link, follow=True)
    saved = deployer.post(
        basics.redirect_chain[-1][0], {"environment": "prod-eu", "name": "z", "kind": "real-time"}
    )
    capacity = deployer.get(saved["Location"])

    assert basics.redirect_chain[-1][0] == step_url("basics") + f"?model={chosen.pk}"
    assert '<option value="prod-eu" selected>' in basics.content.decode()
    assert saved["Location"] == step_url("capacity") + f"?model={chosen.pk}"
    assert '<option value="zebra" selected>' in capacity.content.decode()


WIZARD_URLS = [
    ("endpoints:create", []),
    ("endpoints:wizard_step", ["basics"]),
    ("endpoints:wizard_step", ["review"]),
    ("endpoints:export", []),
    ("endpoints:import", []),
]


@pytest.mark.parametrize("role", ["viewer", "engineer"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_viewers_and_engineers_are_refused_every_wizard_url(
    client_for, environment, role, method
) -> None:
    endpoint = Endpoint.objects.create(environment=environment, name="churn", spec={})
    urls = [reverse(name, args=args) for name, args in WIZARD_URLS]
    urls.append(reverse("endpoints:update", args=[endpoint.pk]))
    client = client_for(role)

    statuses = {url: getattr(client, method)(url).status_code for url in urls}

    export = reverse("endpoints:export")
    assert statuses.pop(export) == (405 if method == "post" else 403)  # export only reads
    assert set(statuses.values()) == {403}, statuses
    assert not WizardDraft.objects.exists()
    assert endpoint.deployments.count() == 0


def test_changing_an_endpoint_asks_before_discarding_an_unfinished_wizard(deployer, model) -> None:
    endpoint = Endpoint.objects.create(
        environment=model.environment,
        name="live",
        spec={"variants": [{"name": "AllTraffic", "model_id": model.pk}]},
    )
    walk(deployer, real_time_steps()[:2])
    url = reverse("endpoints:update", args=[endpoint.pk])

    asked = deployer.get(url)
    kept = WizardDraft.objects.get().data
    replaced = deployer.post(url, {"replace": "1"})

    assert asked.status_code == 200
    assert "You were creating <strong>churn</strong>" in asked.content.decode()
    assert kept["basics"]["name"] == "churn"
    assert replaced["Location"] == step_url("capacity")
    assert WizardDraft.objects.get().data["updating"] == endpoint.pk


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_price_follows_the_instance_count_in_a_browser(page, user_for) -> None:
    environment = EnvironmentFactory(
        name="prod-eu", kind=Environment.Kind.AWS, region="eu-west-1", bucket="acme-ml"
    )
    RegisteredModel.objects.create(environment=environment, name="iris", containers=CONTAINERS)
    sign_in(page, user_for("deployer").username)
    page.wait_for_selector("nav.mainnav")
    page.goto(reverse("endpoints:create"))
    page.fill("#id_name", "churn")
    page.click("text=Save and continue")

    page.fill("#id_variant-0-instance_count", "3")
    page.locator("#id_variant-0-instance_count").dispatch_event("change")
    page.wait_for_selector("#wizard-price:has-text('About $0.35 per hour')")
    page.press("#id_variant-0-instance_count", "Enter")  # saves, not "Remove" or "Add"

    page.wait_for_selector("h2:has-text('Data capture')")
    assert WizardDraft.objects.get().data["capacity"]["variants"][0]["instance_count"] == 3
