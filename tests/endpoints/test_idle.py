"""Idle cost rules: expiry, and idle endpoints deleted or scaled down, announced and recorded.
Against a real runtime, whose metrics say whether anyone called."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from endpoints import deploy, idle
from endpoints.models import Deployment, Endpoint
from endpoints.tasks import enforce_idle_rules
from tests.endpoints.test_deploy import drive, eager, local, new_endpoint  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def serving(eager, local):  # noqa: F811
    environment, model = local
    endpoint = new_endpoint(environment, model)
    endpoint.spec["variants"][0]["instance_count"] = 2
    endpoint.save()
    drive(deploy.start(endpoint, Deployment.Action.CREATE))
    endpoint.refresh_from_db()
    return endpoint


def test_an_expired_endpoint_is_deleted_and_the_timeline_says_why(serving) -> None:
    Endpoint.objects.filter(pk=serving.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    acted = enforce_idle_rules()

    serving.refresh_from_db()
    assert acted == 1
    assert serving.deployments.first().action == Deployment.Action.DELETE
    assert "Expired: deleting it" in serving.events.filter(kind="status").last().message


def test_an_hour_before_expiry_the_timeline_warns_once(serving) -> None:
    Endpoint.objects.filter(pk=serving.pk).update(expires_at=timezone.now() + timedelta(minutes=30))
    serving.refresh_from_db()

    first = idle.check(serving)
    serving.refresh_from_db()
    second = idle.check(serving)

    assert (first, second) == ("warned", None)
    assert "Expires in 29 minutes" in serving.events.filter(kind="status").last().message or (
        "Expires in 30 minutes" in serving.events.filter(kind="status").last().message
    )


def test_an_idle_endpoint_is_scaled_to_its_minimum(serving) -> None:
    Endpoint.objects.filter(pk=serving.pk).update(idle_hours=1, idle_action="scale-down")
    serving.refresh_from_db()
    later = timezone.now() + timedelta(hours=2)  # served for two hours with no invocation

    outcome = idle.check(serving, now=later)

    serving.refresh_from_db()
    assert outcome == "scaled"
    assert serving.spec["variants"][0]["instance_count"] == 1
    assert serving.deployments.first().action == Deployment.Action.UPDATE


def test_an_endpoint_someone_calls_is_left_alone(serving) -> None:
    serving.environment.backend.invoke("iris", b"9,1", content_type="text/csv")
    Endpoint.objects.filter(pk=serving.pk).update(idle_hours=1, idle_action="delete")
    three_hours_ago = timezone.now() - timedelta(hours=3)  # in service long enough to judge
    serving.deployments.update(finished_at=three_hours_ago)
    serving.refresh_from_db()

    outcome = idle.check(serving)

    assert outcome is None
    assert not serving.deployments.filter(action=Deployment.Action.DELETE).exists()


def test_deployer_sets_cost_rules_and_the_page_announces_them(serving, client_for) -> None:
    client = client_for("deployer")
    url = reverse("endpoints:idle_rules", args=[serving.pk])

    refused = client.post(url, {"idle_hours": "3"}, follow=True)
    client.post(url, {"idle_hours": "3", "idle_action": "delete"})
    page = client.get(reverse("endpoints:detail", args=[serving.pk])).content.decode()

    assert "needs both the hours without invocations and what to do" in refused.content.decode()
    assert "after 3 hours without an invocation, delete it" in page
    assert "Cost rules: after 3 hours" in serving.events.last().message
