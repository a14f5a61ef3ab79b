"""Idle cost: provisioned endpoints are billed while nobody calls them. An endpoint may carry an
expiry time or an idle rule (after N hours without invocations: delete it, or scale it to its
minimum); beat enforces both, warns on the timeline an hour before an expiry, and records what
it did."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from alerts import delivery as alerts
from endpoints import deploy
from endpoints.models import Deployment, Endpoint, IdleAction
from environments.backends.base import ProviderError

WARN_BEFORE = timedelta(hours=1)


def describe(endpoint: Endpoint) -> str:
    """The endpoint's rules in one sentence, for its page."""
    parts = []
    if endpoint.expires_at:
        parts.append(f"deleted at {timezone.localtime(endpoint.expires_at):%Y-%m-%d %H:%M %Z}")
    if endpoint.idle_hours and endpoint.idle_action:
        action = IdleAction(endpoint.idle_action).label
        parts.append(f"after {endpoint.idle_hours} hours without an invocation, {action}")
    return "; ".join(parts)


def minimum_spec(endpoint: Endpoint) -> dict:
    """The spec with every variant at its autoscaling minimum (at least one instance)."""
    scaling = endpoint.spec.get("autoscaling") or {}
    minimum = max(int(scaling.get("min", 1)) if scaling.get("enabled") else 1, 1)
    spec = {**endpoint.spec, "variants": [dict(v) for v in endpoint.spec["variants"]]}
    for variant in spec["variants"]:
        variant["instance_count"] = minimum
    return spec


def in_service_since(endpoint: Endpoint) -> datetime:
    last = endpoint.deployments.filter(finished_at__isnull=False).order_by("-finished_at").first()
    return last.finished_at if last else endpoint.created_at


def check(endpoint: Endpoint, now: datetime | None = None) -> str | None:
    """Apply the endpoint's rules once. Returns what it did: warned, deleted, scaled, or None."""
    now = now or timezone.now()
    if endpoint.status != Endpoint.Status.IN_SERVICE or endpoint.kind == Endpoint.Kind.SERVERLESS:
        return None
    if endpoint.deployments.active().exists():
        return None
    if endpoint.expires_at:
        if now >= endpoint.expires_at:
            with transaction.atomic():
                endpoint.event("Expired: deleting it, as its expiry time said.", kind="status")
                deploy.start(endpoint, Deployment.Action.DELETE)
                alerts.rule_acted(endpoint, "Deleting {where}: its expiry time has come.")
            return "deleted"
        if now >= endpoint.expires_at - WARN_BEFORE and not endpoint.idle_warned_at:
            Endpoint.objects.filter(pk=endpoint.pk).update(idle_warned_at=now)
            minutes = int((endpoint.expires_at - now).total_seconds() // 60)
            endpoint.event(f"Expires in {minutes} minutes, then it is deleted.", kind="status")
            alerts.rule_acted(
                endpoint,
                f"Expires soon: {{where}} will be deleted in {minutes} minutes, as its expiry time "
                "says. To keep it, change or clear the time on its page.",
            )
            return "warned"
    if not (endpoint.idle_hours and endpoint.idle_action):
        return None
    window = timedelta(hours=endpoint.idle_hours)
    if now - in_service_since(endpoint) < window:
        return None  # not serving for long enough to call it idle
    try:
        points = endpoint.environment.backend.metric_series(
            endpoint.name, "", "Invocations", now - window, now, period=3600, stat="Sum"
        )
    except ProviderError:
        return None  # no metrics, no verdict: never delete on a guess
    if sum(point.value for point in points) > 0:
        return None
    if endpoint.idle_action == IdleAction.DELETE:
        with transaction.atomic():
            endpoint.event(
                f"No invocation for {endpoint.idle_hours} hours: deleting it, as its idle rule "
                "said.",
                kind="status",
            )
            deploy.start(endpoint, Deployment.Action.DELETE)
            alerts.rule_acted(
                endpoint,
                f"Deleting {{where}}: no invocation for {endpoint.idle_hours} hours, as its idle "
                "rule says.",
            )
        return "deleted"
    spec = minimum_spec(endpoint)
    if spec == endpoint.spec:
        return None
    with transaction.atomic():
        Endpoint.objects.filter(pk=endpoint.pk).update(spec=spec)
        endpoint.spec = spec
        endpoint.event(
            f"No invocation for {endpoint.idle_hours} hours: scaling it to its minimum, as its "
            "idle rule said.",
            kind="status",
        )
        deploy.start(endpoint, Deployment.Action.UPDATE)
        alerts.rule_acted(
            endpoint,
            f"Scaling {{where}} to its minimum: no invocation for {endpoint.idle_hours} hours, "
            "as its idle rule says.",
        )
    return "scaled"
