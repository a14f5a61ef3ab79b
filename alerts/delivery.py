"""Raising alerts and sending them to the webhook in PORTAL_ALERT_WEBHOOK_URL.

An alert is a row first (in the transaction of the change that raised it) and a webhook call
after it commits. Each try claims the row by a conditional UPDATE, so the task sent at commit
and beat's sweep never send one alert twice at once; a try that fails waits longer each time
(ALERT_FIRST_BACKOFF_SECONDS, 30 s: then 1 min, 2 min, … up to an hour) and the alert gives up
after MAX_ATTEMPTS tries.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from alerts.models import MAX_ATTEMPTS as MAX_ATTEMPTS  # re-exported: views and tests read it here
from alerts.models import Alert

log = logging.getLogger(__name__)

LONGEST_BACKOFF = timedelta(hours=1)
# A claimed try holds the row this long: longer than the webhook call may take.
CLAIM = timedelta(seconds=60)
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
LONGEST_TEXT = 3000  # chat services cut or refuse much longer messages


class WebhookError(Exception):
    pass


def webhook_url() -> str:
    return settings.PORTAL_ALERT_WEBHOOK_URL


def webhook_host() -> str:
    """Where alerts go, for people to see: the host only, as the URL's path holds its token."""
    return urlsplit(webhook_url()).hostname or ""


def raise_alert(kind: str, text: str, endpoint: object = None, path: str = "") -> Alert | None:
    """Keep an alert and send it once the caller's transaction commits; nothing when no
    webhook is set, or when the endpoint's environment has alerts off. `path` is the page it is
    about (an endpoint's, unless given)."""
    if not webhook_url():
        return None
    if endpoint is not None and not endpoint.environment.alerts_enabled:
        return None
    if endpoint is not None and not path:
        path = reverse("endpoints:detail", args=[endpoint.pk])
    alert = Alert.objects.create(endpoint=endpoint, kind=kind, text=text[:LONGEST_TEXT], path=path)
    transaction.on_commit(lambda: send_soon(alert.pk))
    return alert


def message(alert: Alert) -> str:
    """The alert's text as the chat gets it: with a link to its page when PORTAL_BASE_URL
    says where the portal is."""
    base = settings.PORTAL_BASE_URL
    return f"{alert.text} {base}{alert.path}" if alert.path and base else alert.text


def send_soon(pk: int) -> None:
    from alerts.tasks import send_alert

    try:
        send_alert.delay(pk)
    except Exception as error:  # noqa: BLE001 (the broker is down: beat's sweep sends it later)
        log.warning("alert %s waits for the next sweep: %s", pk, error)


def deliver(pk: int) -> bool:
    """One try at sending alert `pk`; True if the webhook took it. False when another sender
    holds it, it was sent, it gave up, or this try failed (then it is tried again later)."""
    now = timezone.now()
    claimed = (
        Alert.objects.due()
        .filter(pk=pk)
        .update(attempts=F("attempts") + 1, next_try_at=now + CLAIM)
    )
    if not claimed:
        return False
    alert = Alert.objects.get(pk=pk)
    try:
        post(message(alert))
    except WebhookError as error:
        first = timedelta(seconds=settings.ALERT_FIRST_BACKOFF_SECONDS)
        wait = min(first * 2 ** (alert.attempts - 1), LONGEST_BACKOFF)
        Alert.objects.filter(pk=pk).update(
            last_error=str(error)[:500], next_try_at=timezone.now() + wait
        )
        log.warning("alert %s not sent (try %s): %s", pk, alert.attempts, error)
        return False
    Alert.objects.filter(pk=pk).update(sent_at=timezone.now(), last_error="")
    return True


def deliver_due(limit: int = 100) -> int:
    """Try every alert whose turn has come (beat's sweep); how many were sent."""
    due = Alert.objects.due().order_by("created_at", "pk").values_list("pk", flat=True)
    return sum(deliver(pk) for pk in list(due[:limit]))


def post(text: str) -> None:
    """POST {"text": ...}: what Slack's incoming webhooks, Mattermost, Rocket.Chat and Google
    Chat take. The connection goes through the outbound guard like every other."""
    url = webhook_url()
    if not url:
        raise WebhookError("No webhook is set (PORTAL_ALERT_WEBHOOK_URL).")
    try:
        response = urllib3.request(
            "POST",
            url,
            body=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
            retries=False,
            redirect=False,
        )
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise WebhookError(f"Could not reach {webhook_host()}: {error}") from error
    if not 200 <= response.status < 300:
        answer = response.data[:200].decode("utf-8", "replace")
        raise WebhookError(f"{webhook_host()} answered HTTP {response.status}: {answer}")


def status_changed(endpoint: object, before: str, after: str, reason: str = "") -> Alert | None:
    """What the poller saw: an endpoint that came to need attention, or one the team was last
    told about as failing that is in service again (often by way of Updating)."""
    from endpoints.models import NEEDS_ATTENTION

    if not webhook_url() or not endpoint.environment.alerts_enabled:
        return None
    where = f"{endpoint.name} ({endpoint.environment.name})"
    last = endpoint.alerts.exclude(kind=Alert.Kind.TEST).order_by("-created_at", "-pk").first()
    if after in NEEDS_ATTENTION and before not in NEEDS_ATTENTION:
        if last is not None and last.kind == Alert.Kind.ATTENTION:
            return None  # told, and not recovered since: a retry that failed again is no news
        text = f"Needs attention: {where} is {after}." + (f" {reason}" if reason else "")
        return raise_alert(Alert.Kind.ATTENTION, text, endpoint)
    told = last is not None and last.kind in (Alert.Kind.ATTENTION, Alert.Kind.FAILED)
    if after == "InService" and told:
        text = f"Recovered: {where} is back in service."
        return raise_alert(Alert.Kind.RECOVERED, text, endpoint)
    return None


def deployment_failed(deployment: object, reason: str) -> Alert | None:
    endpoint = deployment.endpoint
    where = f"{endpoint.name} ({endpoint.environment.name})"
    text = f"Deployment failed: {deployment.get_action_display()} of {where}: {reason}"
    return raise_alert(Alert.Kind.FAILED, text, endpoint)


def rule_acted(endpoint: object, what: str) -> Alert | None:
    """An expiry time or idle rule is about to delete the endpoint, deletes it or scales it
    down: the team hears it in time to keep one it still needs."""
    where = f"{endpoint.name} ({endpoint.environment.name})"
    return raise_alert(Alert.Kind.RULE, what.format(where=where), endpoint)


def card_moved(card: object, to_status: str, user: object, comment: str = "") -> Alert | None:
    """A card waits for a reviewer, or was approved: Deployers hear that a review is wanted,
    writers that their card may now be deployed with."""
    from modelcards.models import Status

    who = user.get_username() if user.is_authenticated else "the portal"
    name = f'"{card.title or card.name}" (version {card.latest.number})'
    if to_status == Status.PENDING_REVIEW:
        text = f"Review wanted: model card {name}, submitted by {who}."
    elif to_status == Status.APPROVED:
        text = f"Approved: model card {name}, by {who}."
    else:
        return None
    if comment.strip():
        text += f" Comment: {comment.strip()}"
    return raise_alert(Alert.Kind.CARD, text, path=reverse("modelcards:detail", args=[card.pk]))
