"""Alerts reach a real webhook over HTTP: once per incident, after a failure later, never
twice, and never when no webhook is set."""

import copy
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from django.utils import timezone

from alerts import delivery
from alerts.models import Alert
from endpoints import deploy, idle
from endpoints.models import Deployment, Endpoint
from endpoints.tasks import record_status
from environments import outbound
from environments.backends.base import ProviderError
from modelcards import workflow
from modelcards.models import Status
from portal.celery import app as celery_app
from tests.alerts.webhook import Webhook
from tests.conftest import free_port
from tests.factories import EnvironmentFactory
from tests.modelcards.conftest import FULL

pytestmark = pytest.mark.django_db

# The shape of a Slack incoming-webhook URL; not a real one.
SLACK = "https://hooks.slack.com/services/T0/B0/x"  # pragma: allowlist secret


@pytest.fixture
def webhook(settings) -> object:
    hook = Webhook()
    settings.PORTAL_ALERT_WEBHOOK_URL = hook.url
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    celery_app.conf.task_always_eager = True
    yield hook
    celery_app.conf.task_always_eager = False
    hook.close()


def poll(endpoint: Endpoint, status: str, reason: str = "") -> None:
    """What the poller does when the provider describes the endpoint with `status`."""
    described = {endpoint.name: SimpleNamespace(status=status, failure_reason=reason, variants=[])}
    cycle = SimpleNamespace(described=described, listed={}, gone=set())
    record_status(Endpoint.objects.get(pk=endpoint.pk), cycle, endpoint.name)


def churn(status: str = "InService") -> Endpoint:
    environment = EnvironmentFactory(name="prod")
    return Endpoint.objects.create(environment=environment, name="churn", status=status)


def test_an_endpoint_that_fails_and_recovers_is_told_once_each(
    webhook, django_capture_on_commit_callbacks
) -> None:
    endpoint = churn()
    page = f"https://portal.example.com/endpoints/{endpoint.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        poll(endpoint, "Failed", "The model container failed its ping health check.")
        poll(endpoint, "Failed", "The model container failed its ping health check.")
        poll(endpoint, "OutOfService")  # still the same incident
        poll(endpoint, "Creating")  # a restart that fails again: no news
        poll(endpoint, "Failed", "The model container failed its ping health check.")
        poll(endpoint, "Updating")
        poll(endpoint, "InService")

    assert webhook.texts == [
        "Needs attention: churn (prod) is Failed. The model container failed its ping health "
        f"check. {page}",
        f"Recovered: churn (prod) is back in service. {page}",
    ]
    assert all(alert.state == "sent" for alert in Alert.objects.all())

    with django_capture_on_commit_callbacks(execute=True):
        poll(endpoint, "Updating")
        poll(endpoint, "InService")  # a routine update: nothing to tell
        poll(endpoint, "Failed", "Disk full.")  # a new incident after the recovery
    assert len(webhook.texts) == 3
    assert webhook.texts[-1] == f"Needs attention: churn (prod) is Failed. Disk full. {page}"


def test_a_failed_deployment_is_told_once_and_not_again_after_the_poller_told_it(
    webhook, django_capture_on_commit_callbacks
) -> None:
    updated = churn()
    update = Deployment.objects.create(endpoint=updated, action="update", generation=2)
    created = Endpoint.objects.create(
        environment=updated.environment, name="fraud", status="Creating"
    )
    create = Deployment.objects.create(endpoint=created, action="create", generation=1)

    with django_capture_on_commit_callbacks(execute=True):
        deploy.fail(update, ProviderError("The image cannot be pulled."))
        deploy.fail(update, ProviderError("The image cannot be pulled."))  # a retried task
        poll(created, "Failed", "Out of capacity.")  # the poller tells first
        deploy.fail(create, ProviderError("Out of capacity."))

    assert [text.split(" https://")[0] for text in webhook.texts] == [
        "Deployment failed: Update of churn (prod): The image cannot be pulled.",
        "Needs attention: fraud (prod) is Failed. Out of capacity.",
    ]


def test_a_webhook_that_fails_is_tried_again_later_and_gives_up_after_every_try(
    webhook,
) -> None:
    alert = delivery.raise_alert(Alert.Kind.TEST, "Hello team.")
    webhook.statuses = [500, 404]

    assert delivery.deliver(alert.pk) is False
    alert.refresh_from_db()
    assert alert.attempts == 1 and "HTTP 500: invalid_token" in alert.last_error
    wait = alert.next_try_at - timezone.now()
    assert timedelta(seconds=25) < wait <= timedelta(seconds=30)
    assert "secret-token" not in alert.last_error  # the URL's token stays out of the page

    assert delivery.deliver_due() == 0  # its back-off is not over: not tried
    assert len(webhook.texts) == 1

    Alert.objects.filter(pk=alert.pk).update(next_try_at=timezone.now())
    assert delivery.deliver_due() == 0  # the 404
    alert.refresh_from_db()
    assert alert.attempts == 2
    assert alert.next_try_at - timezone.now() > timedelta(seconds=55)  # twice as long

    Alert.objects.filter(pk=alert.pk).update(next_try_at=timezone.now())
    assert delivery.deliver_due() == 1
    alert.refresh_from_db()
    assert alert.state == "sent" and alert.last_error == ""
    assert delivery.deliver(alert.pk) is False  # sent once, never again
    assert webhook.texts == ["Hello team."] * 3

    given_up = delivery.raise_alert(Alert.Kind.TEST, "Nobody listens.")
    webhook.statuses = [500] * delivery.MAX_ATTEMPTS
    for _ in range(delivery.MAX_ATTEMPTS):
        Alert.objects.filter(pk=given_up.pk).update(next_try_at=timezone.now())
        delivery.deliver_due()
    given_up.refresh_from_db()
    assert given_up.state == "gave-up" and given_up.attempts == delivery.MAX_ATTEMPTS
    assert not Alert.objects.due().exists()


def test_a_try_another_sender_holds_is_not_sent_twice(webhook) -> None:
    alert = delivery.raise_alert(Alert.Kind.TEST, "Once.")
    # Another worker claimed it a moment ago and is sending it now.
    Alert.objects.filter(pk=alert.pk).update(
        attempts=1, next_try_at=timezone.now() + delivery.CLAIM
    )

    assert delivery.deliver(alert.pk) is False
    assert delivery.deliver_due() == 0
    assert webhook.texts == []


def test_without_a_webhook_nothing_is_kept_or_sent(settings) -> None:
    settings.PORTAL_ALERT_WEBHOOK_URL = ""
    endpoint = churn()

    poll(endpoint, "Failed", "Broken.")

    assert delivery.raise_alert(Alert.Kind.TEST, "Hello.") is None
    assert not Alert.objects.exists()


def test_the_outbound_guard_lets_the_portal_reach_the_webhook_and_nothing_new_beside_it(
    settings,
) -> None:
    port = free_port()
    settings.PORTAL_ALERT_WEBHOOK_URL = ""
    assert outbound.refusal("127.0.0.1", port, "127.0.0.1") is not None

    settings.PORTAL_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/hook"
    assert outbound.refusal("127.0.0.1", port, "127.0.0.1") is None
    assert outbound.refusal("127.0.0.1", port + 1, "127.0.0.1") is not None

    settings.PORTAL_ALERT_WEBHOOK_URL = SLACK
    assert outbound.refusal("hooks.slack.com", 443, "52.1.2.3") is None
    assert outbound.refusal("hooks.slack.com", 80, "52.1.2.3") is not None


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        (SLACK, False),
        ("http://127.0.0.1:9000/hook", False),
        (SLACK.replace("https://", "http://"), True),  # the token in the clear
        (SLACK.removeprefix("https://"), True),
        ("ftp://example.com/hook", True),
    ],
)
def test_a_webhook_url_that_would_leak_its_token_stops_every_command(settings, url, refused):
    settings.PORTAL_ALERT_WEBHOOK_URL = url

    if refused:
        with pytest.raises(SystemCheckError, match=r"portal\.E005"):
            call_command("check")
    else:
        call_command("check")


def test_the_alerts_page_says_where_alerts_go_and_how_each_fared(
    webhook, client_for, django_capture_on_commit_callbacks
) -> None:
    endpoint = churn()
    webhook.statuses = [503]
    with django_capture_on_commit_callbacks(execute=True):
        poll(endpoint, "Failed", '<img src=x onerror="alert(1)"> broke')

    page = client_for("deployer").get(reverse("alerts:list")).content.decode()

    assert "Alerts go to the webhook at <strong>127.0.0.1</strong>" in page
    assert "secret-token" not in page
    assert "Needs attention: churn (prod) is Failed." in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; broke" in page
    assert "<img src=x" not in page
    assert f"Try 1 of {delivery.MAX_ATTEMPTS} failed: 127.0.0.1 answered HTTP 503" in page
    assert "Send a test alert" not in page  # Admins only


def test_an_admin_sends_a_test_alert_and_hears_whether_it_arrived(webhook, client_for) -> None:
    admin = client_for("admin")

    sent = admin.post(reverse("alerts:test"), follow=True).content.decode()
    webhook.statuses = [403]
    refused = admin.post(reverse("alerts:test"), follow=True).content.decode()

    assert len(webhook.texts) == 2
    assert all(
        text.startswith("Test alert from Endpoint Portal, sent by ") for text in webhook.texts
    )
    assert "127.0.0.1 took the test alert." in sent
    assert "The test alert was not sent: 127.0.0.1 answered HTTP 403: invalid_token" in refused


def test_with_alerts_off_the_page_says_how_to_turn_them_on(client_for, settings) -> None:
    settings.PORTAL_ALERT_WEBHOOK_URL = ""
    admin = client_for("admin")

    page = admin.get(reverse("alerts:list")).content.decode()
    answer = admin.post(reverse("alerts:test"), follow=True).content.decode()

    assert "Alerts are off." in page and "PORTAL_ALERT_WEBHOOK_URL" in page
    assert "Send a test alert" not in page
    assert "Alerts are off: set PORTAL_ALERT_WEBHOOK_URL first." in answer


def test_the_team_hears_before_an_expiry_deletes_an_endpoint_and_when_it_does(
    webhook, django_capture_on_commit_callbacks
) -> None:
    endpoint = churn()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        expires_at=timezone.now() + timedelta(minutes=30, seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        idle.check(Endpoint.objects.get(pk=endpoint.pk))
        idle.check(Endpoint.objects.get(pk=endpoint.pk))  # warned once
    later = timezone.now() + timedelta(minutes=31)
    with django_capture_on_commit_callbacks(execute=False):  # the delete itself is not sent
        outcome = idle.check(Endpoint.objects.get(pk=endpoint.pk), now=later)
    delivery.deliver_due()

    assert outcome == "deleted"
    assert [text.split(" https://")[0] for text in webhook.texts] == [
        "Expires soon: churn (prod) will be deleted in 30 minutes, as its expiry time says. "
        "To keep it, change or clear the time on its page.",
        "Deleting churn (prod): its expiry time has come.",
    ]


def test_deployers_hear_that_a_card_waits_for_review_and_writers_that_it_was_approved(
    webhook, user_for, django_capture_on_commit_callbacks
) -> None:
    writer, reviewer = user_for("engineer"), user_for("deployer")
    card = workflow.create_card("churn", copy.deepcopy(FULL), writer)
    page = f"https://portal.example.com/model-cards/{card.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        workflow.transition(card, Status.PENDING_REVIEW, writer, "Evaluation is in.")
        workflow.transition(card, Status.DRAFT, writer)  # taken back: nothing to tell
        workflow.transition(card, Status.PENDING_REVIEW, writer)
        workflow.transition(card, Status.APPROVED, reviewer)

    card.refresh_from_db()
    title = f'"{card.title}" (version 1)'
    assert webhook.texts == [
        f"Review wanted: model card {title}, submitted by {writer.username}. "
        f"Comment: Evaluation is in. {page}",
        f"Review wanted: model card {title}, submitted by {writer.username}. {page}",
        f"Approved: model card {title}, by {reviewer.username}. {page}",
    ]


def test_an_environment_with_alerts_off_tells_the_chat_nothing_and_says_so(
    webhook, client_for, django_capture_on_commit_callbacks
) -> None:
    endpoint = churn()
    sandbox = endpoint.environment
    sandbox.alerts_enabled = False
    sandbox.save()

    with django_capture_on_commit_callbacks(execute=True):
        poll(endpoint, "Failed", "Broken.")
        deploy.fail(
            Deployment.objects.create(endpoint=endpoint, action="update", generation=2),
            ProviderError("Nope."),
        )
        delivery.raise_alert(Alert.Kind.TEST, "Still sent: not about an endpoint.")
    page = client_for("viewer").get(reverse("environments:detail", args=[sandbox.pk]))

    assert webhook.texts == ["Still sent: not about an endpoint."]
    assert "Off: the team's chat hears nothing about endpoints here." in page.content.decode()


def test_an_environment_page_says_where_its_alerts_go(client_for, settings) -> None:
    environment = EnvironmentFactory()
    viewer = client_for("viewer")
    page = reverse("environments:detail", args=[environment.pk])

    settings.PORTAL_ALERT_WEBHOOK_URL = ""
    off = viewer.get(page).content.decode()
    settings.PORTAL_ALERT_WEBHOOK_URL = SLACK
    on = viewer.get(page).content.decode()

    assert "On, but the portal has no webhook" in off
    assert "Sent to hooks.slack.com when an endpoint here fails" in on
    assert "/services/" not in on  # the token never reaches a page
