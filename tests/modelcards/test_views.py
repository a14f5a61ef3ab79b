"""Model card pages: writing a card section by section, review buttons by role, the list's
search and filters, the version diff, the stakeholder page, safe rendering, and publishing."""

import copy
import json
from html.parser import HTMLParser

import boto3
import pytest
from django.urls import reverse
from moto import mock_aws

from endpoints.models import Endpoint
from environments.models import Environment
from modelcards import workflow
from modelcards.models import CardVersion, ModelCard, Publication, Status
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db


def edit_url(card, key: str) -> str:
    return reverse("modelcards:edit", args=[card.pk, key])


def test_engineer_creates_a_card_linked_to_a_model(client_for, registered_model) -> None:
    response = client_for("engineer").post(
        reverse("modelcards:create"),
        {"name": "churn", "model_name": "Churn classifier", "models": [registered_model.pk]},
    )

    card = ModelCard.objects.get()
    assert response["Location"] == edit_url(card, "model_overview")
    assert card.latest.content == {
        "model_overview": {"model_name": "Churn classifier"},
        "intended_uses": {"risk_rating": "Unknown"},
    }
    assert list(card.registered_models.all()) == [registered_model]


def test_card_names_follow_sagemakers_rules(client_for) -> None:
    response = client_for("engineer").post(
        reverse("modelcards:create"), {"name": "bad name!", "model_name": "x"}
    )

    assert response.status_code == 200
    assert "Use 1 to 63 letters, digits or hyphens" in response.content.decode()
    assert not ModelCard.objects.exists()


JOB = "training_details__training_job_details__"


def test_a_card_is_filled_in_over_several_sittings(client_for, writer) -> None:
    client = client_for("engineer")
    card = workflow.create_card("churn", {"model_overview": {"model_name": "Churn"}}, writer)

    client.post(
        edit_url(card, "intended_uses"),
        {
            "intended_uses__purpose_of_model": "Rank customers.",
            "intended_uses__risk_rating": "Low",
            "note": "First pass",
        },
    )
    client.post(
        edit_url(card, "training_details"),
        {
            f"{JOB}training_datasets": "s3://d/a.csv\n\ns3://d/b.csv",
            f"{JOB}user_provided_training_metrics": "loss = 0.2 | final",
            f"{JOB}hyper_parameters": "max_depth = 6",
        },
    )
    client.post(
        edit_url(card, "evaluation_details"),
        {
            "evaluations-TOTAL_FORMS": 1,
            "evaluations-INITIAL_FORMS": 0,
            "evaluations-0-name": "Holdout",
            "evaluations-0-metric_groups": json.dumps(
                [
                    {
                        "name": "Scores",
                        "metric_data": [{"name": "AUC", "type": "number", "value": 0.9}],
                    }
                ]
            ),
        },
    )

    card.refresh_from_db()
    content = card.latest.content
    assert card.latest.number == 4
    assert card.versions.get(number=2).note == "First pass"
    assert content["model_overview"] == {"model_name": "Churn"}  # untouched by later sittings
    assert content["intended_uses"] == {"purpose_of_model": "Rank customers.", "risk_rating": "Low"}
    job = content["training_details"]["training_job_details"]
    assert job["training_datasets"] == ["s3://d/a.csv", "s3://d/b.csv"]
    assert job["user_provided_training_metrics"] == [
        {"name": "loss", "value": 0.2, "notes": "final"}
    ]
    assert job["hyper_parameters"] == [{"name": "max_depth", "value": "6"}]
    assert content["evaluation_details"][0]["metric_groups"][0]["metric_data"][0]["value"] == 0.9
    assert card.risk_rating == "Low"


def test_saving_an_unchanged_section_makes_no_version(client_for, card) -> None:
    client = client_for("engineer")
    form = client.get(edit_url(card, "business_details")).context["form"]
    data = dict(form.initial.items())

    client.post(edit_url(card, "business_details"), data)

    assert card.versions.count() == 1


def test_section_errors_are_shown_on_their_field_and_nothing_is_saved(client_for, card) -> None:
    response = client_for("engineer").post(
        edit_url(card, "training_details"),
        {
            "training_details__training_job_details__user_provided_training_metrics": "loss: low",
            "training_details__objective_function__function__facet": "x" * 64,
        },
    )

    form = response.context["form"]
    assert response.status_code == 200
    assert (
        "write name = number"
        in form.errors["training_details__training_job_details__user_provided_training_metrics"][0]
    )
    assert (
        "at most 63 characters"
        in form.errors["training_details__objective_function__function__facet"][0]
    )
    assert card.versions.count() == 1


def test_evaluation_metric_errors_point_at_their_evaluation(client_for, card) -> None:
    response = client_for("engineer").post(
        edit_url(card, "evaluation_details"),
        {
            "evaluations-TOTAL_FORMS": 2,
            "evaluations-INITIAL_FORMS": 1,
            "evaluations-0-name": "Holdout 2026-Q1",
            "evaluations-0-metric_groups": json.dumps([{"name": "Scores"}]),
            "evaluations-1-name": "",
        },
    )

    errors = response.context["form"].forms[0].errors
    assert "metric_data" in errors["metric_groups"][0]
    assert card.versions.count() == 1


def test_viewer_reads_but_cannot_write(client_for, card) -> None:
    viewer = client_for("viewer")

    assert viewer.get(reverse("modelcards:view", args=[card.pk])).status_code == 200
    assert viewer.post(edit_url(card, "intended_uses"), {}).status_code == 403
    assert (
        viewer.post(
            reverse("modelcards:status", args=[card.pk]), {"to_status": "PendingReview"}
        ).status_code
        == 403
    )


def test_only_deployers_see_and_may_use_approve(client_for, card, writer) -> None:
    workflow.transition(card, Status.PENDING_REVIEW, writer)
    url = reverse("modelcards:status", args=[card.pk])

    engineer_page = client_for("engineer").get(reverse("modelcards:detail", args=[card.pk]))
    deployer_page = client_for("deployer").get(reverse("modelcards:detail", args=[card.pk]))
    refused = client_for("engineer").post(url, {"to_status": "Approved"})
    approved = client_for("deployer").post(url, {"to_status": "Approved", "comment": "Fine."})

    assert 'value="Approved"' not in engineer_page.content.decode()
    assert 'value="Approved"' in deployer_page.content.decode()
    assert refused.status_code == 403
    assert approved.status_code == 302
    card.refresh_from_db()
    assert card.status == Status.APPROVED
    assert card.transitions.first().comment == "Fine."


def test_list_searches_and_filters_by_status_risk_and_owner(client_for, user_for) -> None:
    alice, bob = user_for("engineer", username="alice"), user_for("engineer", username="bob")
    workflow.create_card(
        "churn",
        {"model_overview": {"model_name": "Churn"}, "intended_uses": {"risk_rating": "High"}},
        alice,
    )
    fraud = workflow.create_card(
        "fraud",
        {"model_overview": {"model_name": "Fraud"}, "intended_uses": {"risk_rating": "Low"}},
        bob,
    )
    workflow.transition(fraud, Status.PENDING_REVIEW, bob)
    client = client_for("viewer")

    def names(**params) -> list[str]:
        response = client.get(reverse("modelcards:list"), params)
        return [card.name for card in response.context["page"]]

    assert sorted(names()) == ["churn", "fraud"]
    assert names(q="frau") == ["fraud"]
    assert names(status="PendingReview") == ["fraud"]
    assert names(risk="High") == ["churn"]
    assert names(owner="alice") == ["churn"]
    assert names(owner="alice", risk="Low") == []


def test_diff_names_fields_and_marks_words(client_for, card, writer, full_content) -> None:
    full_content["intended_uses"]["risk_rating"] = "High"
    full_content["intended_uses"]["intended_uses"] = (
        "Weekly batch scoring by the retention team, and daily scoring by the call centre "
        "for every customer who phones."
    )
    del full_content["business_details"]["line_of_business"]
    workflow.save_version(card, full_content, writer)

    response = client_for("viewer").get(
        reverse("modelcards:diff", args=[card.pk]), {"from": 1, "to": 2}
    )

    changes = {change.label: change for change in response.context["changes"]}
    assert set(changes) == {
        "Intended uses \u203a Risk rating",
        "Intended uses \u203a Intended uses",
        "Business details \u203a Line of business",
    }
    assert (
        changes["Intended uses \u203a Risk rating"].before,
        changes["Intended uses \u203a Risk rating"].after,
    ) == ("Medium", "High")
    assert changes["Business details \u203a Line of business"].kind == "removed"
    words = changes["Intended uses \u203a Intended uses"].words
    assert ("removed", "team.") in words
    assert any(kind == "added" and "call centre" in text for kind, text in words)
    assert "<ins>" in response.content.decode()


def test_stakeholder_view_shows_the_approved_version_while_a_draft_is_written(
    client_for, card, user_for, writer, full_content
) -> None:
    workflow.transition(card, Status.PENDING_REVIEW, writer)
    workflow.transition(card, Status.APPROVED, user_for("deployer"))
    full_content["model_overview"]["model_name"] = "Churn classifier v2"
    workflow.save_version(card, full_content, writer)

    response = client_for("viewer").get(reverse("modelcards:view", args=[card.pk]))

    page = response.content.decode()
    assert response.context["version"].number == 1
    assert "<h1>Churn classifier</h1>" in page
    assert "A newer draft, version 2" in page
    assert "Do not use it to <strong>price</strong> contracts." in page
    charts = json.loads(
        page.split('id="metric-charts-data" type="application/json">')[1].split("</script>")[0]
    )
    assert [chart["kind"] for chart in charts] == ["bar", "line", "heatmap"]
    assert charts[0]["x"] == ["AUC", "Recall"]


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str]]) -> None:
        self.found.append((tag, attrs))


HOSTILE = (
    '<script>alert("card")</script> [click](javascript:alert(1)) '
    '<img src=x onerror="alert(2)"> <a href="#" onclick="alert(3)">x</a> '
    '<div hx-get="/accounts/logout/" hx-trigger="load">y</div> [ok](https://example.com)'
)


def test_a_hostile_card_renders_inert(client_for, writer, full_content) -> None:
    full_content["model_overview"]["model_description"] = HOSTILE
    full_content["model_overview"]["model_name"] = '<script>alert("title")</script>'
    full_content["evaluation_details"][0]["name"] = "<img src=x onerror=alert(4)>"
    card = workflow.create_card("hostile", full_content, writer)

    page = client_for("viewer").get(reverse("modelcards:view", args=[card.pk])).content.decode()

    article = page.split('<article class="model-card" hx-disable>')[1].split("</article>")[0]
    tags = Tags()
    tags.feed(article)
    assert not {"script", "img", "iframe", "style"} & {tag for tag, _ in tags.found}
    attributes = {name for _, attrs in tags.found for name, _ in attrs}
    assert not [name for name in attributes if name.startswith(("on", "hx-"))]
    links = [value for _, attrs in tags.found for name, value in attrs if name == "href"]
    assert not [link for link in links if not link.startswith(("https:", "/", "?"))]
    assert "&lt;script&gt;" in article
    assert 'href="https://example.com" rel="noopener noreferrer nofollow"' in article
    assert "\\u003Cimg src=x onerror=alert(4)\\u003E" in page  # chart data: json_script escapes


def test_model_and_endpoint_pages_show_the_card_and_its_status(
    client_for, card, registered_model
) -> None:
    workflow.link_models(card, [registered_model])
    endpoint = Endpoint.objects.create(
        environment=registered_model.environment,
        name="churn",
        spec={"variants": [{"name": "AllTraffic", "model_id": registered_model.pk}]},
    )
    viewer = client_for("viewer")

    model_page = viewer.get(reverse("endpoints:model_detail", args=[registered_model.pk]))
    endpoint_page = viewer.get(reverse("endpoints:detail", args=[endpoint.pk]))

    for page in (model_page.content.decode(), endpoint_page.content.decode()):
        assert reverse("modelcards:view", args=[card.pk]) in page
        assert "card-status-draft" in page


def test_a_model_without_a_card_invites_an_engineer_to_write_one(client_for, registered_model):
    page = (
        client_for("engineer")
        .get(reverse("endpoints:model_detail", args=[registered_model.pk]))
        .content.decode()
    )

    assert "No model card yet." in page
    assert f"{reverse('modelcards:create')}?model={registered_model.pk}" in page


def test_environment_form_offers_the_approved_card_rule(client_for) -> None:
    environment = EnvironmentFactory()
    url = reverse("environments:update", args=[environment.pk])

    page = client_for("admin").get(url).content.decode()

    assert 'name="require_approved_card"' in page


# Publishing


@pytest.fixture
def aws_environment(aws_test_keys) -> Environment:
    return EnvironmentFactory(name="prod", kind="aws", region="eu-west-1", bucket="acme-ml")


def test_a_deployer_publishes_the_card_with_its_status_to_sagemaker(
    client_for, card, aws_environment, user_for, writer
) -> None:
    deployer = client_for("deployer")
    url = reverse("modelcards:publish", args=[card.pk])
    with mock_aws():
        deployer.post(url, {"environment": aws_environment.pk})
        workflow.transition(card, Status.PENDING_REVIEW, writer)
        workflow.transition(card, Status.APPROVED, user_for("deployer"))
        deployer.post(url, {"environment": aws_environment.pk})
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
        described = sagemaker.describe_model_card(ModelCardName="churn")
        # moto drops the content from a status-only update's version; AWS keeps it.
        first = sagemaker.describe_model_card(ModelCardName="churn", ModelCardVersion=1)

    assert json.loads(first["Content"]) == card.latest.content
    assert first["ModelCardStatus"] == "Draft"
    assert described["ModelCardStatus"] == "Approved"
    assert described["ModelCardVersion"] == 2  # the status change only: no content re-sent
    publications = list(Publication.objects.order_by("pk"))
    assert [p.status for p in publications] == ["Draft", "Approved"]
    assert publications[-1].arn == described["ModelCardArn"]


def test_publishing_offers_aws_environments_only(client_for, card) -> None:
    local = EnvironmentFactory(kind="local")

    response = client_for("deployer").post(
        reverse("modelcards:publish", args=[card.pk]), {"environment": local.pk}
    )

    assert response.status_code == 302
    assert not Publication.objects.exists()


def test_the_local_backend_keeps_no_model_cards(card) -> None:
    # Decision: the local runtime has no model-card store; the portal's own rows are the card.
    local = EnvironmentFactory(kind="local")

    assert local.backend.create_or_update_model_card("churn", card.latest.content, "Draft") == ""


def test_a_card_version_is_never_changed_by_a_page(client_for, card, user_for, writer) -> None:
    workflow.transition(card, Status.PENDING_REVIEW, writer)
    workflow.transition(card, Status.APPROVED, user_for("deployer"))
    approved = copy.deepcopy(CardVersion.objects.get(card=card, number=1).content)

    client_for("engineer").post(
        edit_url(card, "intended_uses"),
        {
            "intended_uses__risk_rating": "High",
        },
    )

    assert CardVersion.objects.get(card=card, number=1).content == approved
    assert card.versions.get(number=2).content["intended_uses"] == {"risk_rating": "High"}
