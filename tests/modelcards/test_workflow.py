"""Versions, the review workflow, who may move a card, and the approved-card deployment rule."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from audit.models import AuditEntry
from endpoints import deploy
from endpoints.models import Deployment, Endpoint
from modelcards import workflow
from modelcards.models import CardVersion, ModelCard, Status, Transition
from tests.endpoints.test_wizard import real_time_steps, step_url, walk

pytestmark = pytest.mark.django_db


def approve(card, user_for):
    workflow.transition(card, Status.PENDING_REVIEW, user_for("engineer"))
    workflow.transition(card, Status.APPROVED, user_for("deployer"), "Looks right.")
    card.refresh_from_db()
    return card


def test_every_save_is_a_new_version_with_its_author(card, writer, full_content) -> None:
    full_content["intended_uses"]["risk_rating"] = "High"

    version = workflow.save_version(card, full_content, writer, note="Rated the risk")

    card.refresh_from_db()
    assert [v.number for v in card.versions.all()] == [2, 1]
    assert version.created_by == writer and version.note == "Rated the risk"
    assert card.versions.get(number=1).content["intended_uses"]["risk_rating"] == "Medium"
    assert card.risk_rating == "High"


def test_version_numbers_are_unique_per_card(card) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        CardVersion.objects.create(card=card, number=1, content={})


def test_review_workflow_records_each_transition_with_its_comment(card, user_for) -> None:
    approve(card, user_for)

    moves = list(card.transitions.order_by("at", "pk").values_list("from_status", "to_status"))
    assert moves == [("Draft", "PendingReview"), ("PendingReview", "Approved")]
    assert card.transitions.get(to_status="Approved").comment == "Looks right."
    assert card.status == Status.APPROVED
    assert card.latest.approved_at is not None
    assert card.latest.approved_by.role == 3  # the Deployer


def test_an_engineer_cannot_approve_or_archive(card, user_for) -> None:
    workflow.transition(card, Status.PENDING_REVIEW, user_for("engineer"))

    for target in (Status.APPROVED, Status.ARCHIVED):
        with pytest.raises(PermissionDenied):
            workflow.transition(card, target, user_for("engineer"))

    card.refresh_from_db()
    assert card.status == Status.PENDING_REVIEW
    assert card.latest.approved_at is None


def test_a_draft_cannot_skip_review(card, user_for) -> None:
    with pytest.raises(ValidationError, match="cannot become Approved"):
        workflow.transition(card, Status.APPROVED, user_for("admin"))


def test_an_approved_version_never_changes(card, user_for, full_content) -> None:
    approve(card, user_for)
    version = card.latest
    version.content = {"model_overview": {"model_name": "tampered"}}

    with pytest.raises(ValidationError, match="approved and cannot change"):
        version.save()

    assert CardVersion.objects.get(pk=version.pk).content["model_overview"]["model_name"] == (
        "Churn classifier"
    )


@pytest.mark.skipif(connection.vendor not in {"sqlite", "postgresql"}, reason="trigger per vendor")
def test_the_database_refuses_a_raw_update_of_an_approved_version(card, user_for) -> None:
    approve(card, user_for)

    with pytest.raises(Exception, match="approved"), transaction.atomic():
        CardVersion.objects.filter(pk=card.latest.pk).update(note="sneaked in")

    assert CardVersion.objects.get(pk=card.latest.pk).note != "sneaked in"


def test_editing_an_approved_card_starts_a_draft_version_and_keeps_the_approved_one(
    card, user_for, writer, full_content
) -> None:
    approve(card, user_for)
    full_content["model_overview"]["model_description"] = "Now weekly."

    version = workflow.save_version(card, full_content, writer)

    card.refresh_from_db()
    assert version.number == 2 and version.approved_at is None
    assert card.status == Status.DRAFT
    assert card.approved_version.number == 1
    assert ModelCard.objects.approved().filter(pk=card.pk).exists()
    assert card.transitions.first().to_status == Status.DRAFT


def test_cards_under_review_or_archived_refuse_edits(card, user_for, writer, full_content) -> None:
    workflow.transition(card, Status.PENDING_REVIEW, writer)
    with pytest.raises(ValidationError, match="waiting for review"):
        workflow.save_version(card, full_content, writer)

    workflow.transition(card, Status.ARCHIVED, user_for("deployer"), "Replaced.")
    with pytest.raises(ValidationError, match="archived and read-only"):
        workflow.save_version(card, full_content, writer)

    assert card.versions.count() == 1


def test_card_models_are_protected_from_deletion(card, registered_model) -> None:
    from django.db.models import ProtectedError

    workflow.link_models(card, [registered_model])

    with pytest.raises(ProtectedError):
        registered_model.delete()


def test_card_changes_are_in_the_audit_log(card, user_for) -> None:
    approve(card, user_for)

    kinds = set(AuditEntry.objects.values_list("content_type__model", flat=True))
    assert {"modelcard", "cardversion", "transition"} <= kinds


# The environment setting: an approved card before anything deploys there


@pytest.fixture
def strict_endpoint(registered_model) -> Endpoint:
    environment = registered_model.environment
    environment.require_approved_card = True
    environment.save()
    return Endpoint.objects.create(
        environment=environment,
        name="churn",
        spec={"variants": [{"name": "AllTraffic", "model_id": registered_model.pk}]},
    )


def test_deployment_is_refused_without_an_approved_card(strict_endpoint, card) -> None:
    with pytest.raises(deploy.CardsNotApproved, match="none is approved for churn"):
        deploy.start(strict_endpoint, Deployment.Action.CREATE)

    assert not Deployment.objects.exists()


def test_deployment_starts_once_a_card_for_the_model_is_approved(
    strict_endpoint, card, registered_model, user_for
) -> None:
    workflow.link_models(card, [registered_model])
    approve(card, user_for)

    deployment = deploy.start(strict_endpoint, Deployment.Action.CREATE)

    assert deployment.action == Deployment.Action.CREATE


def test_an_archived_card_does_not_count_as_approved(
    strict_endpoint, card, registered_model, user_for
) -> None:
    workflow.link_models(card, [registered_model])
    approve(card, user_for)
    workflow.transition(card, Status.ARCHIVED, user_for("deployer"))

    with pytest.raises(deploy.CardsNotApproved):
        deploy.start(strict_endpoint, Deployment.Action.UPDATE)


def test_deleting_an_endpoint_needs_no_card(strict_endpoint) -> None:
    deployment = deploy.start(strict_endpoint, Deployment.Action.DELETE)

    assert deployment.action == Deployment.Action.DELETE


def test_the_wizard_refuses_to_deploy_a_model_without_an_approved_card(
    client_for, user_for, writer
) -> None:
    from endpoints.models import RegisteredModel
    from environments.models import Environment
    from tests.factories import EnvironmentFactory

    environment = EnvironmentFactory(
        name="prod-eu",
        kind=Environment.Kind.AWS,
        region="eu-west-1",
        bucket="acme-ml",
        require_approved_card=True,
    )
    model = RegisteredModel.objects.create(
        environment=environment, name="iris", containers=[{"Image": "sklearn"}]
    )
    deployer = client_for("deployer")
    walk(deployer, real_time_steps())

    refused = deployer.post(step_url("review"))

    assert refused.status_code == 403
    assert "none is approved for iris" in refused.content.decode()
    assert not Endpoint.objects.filter(name="churn").exists()

    card = workflow.create_card("iris", {"model_overview": {"model_name": "Iris"}}, writer, [model])
    approve(card, user_for)
    created = deployer.post(step_url("review"))

    assert created.status_code == 302
    assert created["Location"] == reverse("endpoints:detail", args=[Endpoint.objects.get().pk])


def test_transition_rows_keep_who_and_when(card, writer) -> None:
    entry = workflow.transition(card, Status.PENDING_REVIEW, writer, "  Ready.  ")

    assert Transition.objects.get(pk=entry.pk).comment == "Ready."
    assert entry.by == writer and entry.at is not None
