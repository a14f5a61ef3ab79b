"""Celery tasks: take deployments a step further, poll endpoint statuses, re-drive stranded work."""

import logging
import threading
from datetime import timedelta

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from alerts import delivery as alerts
from endpoints import deploy, faults
from endpoints.models import Deployment, Endpoint
from environments.backends.base import ProviderBusy, ProviderError
from environments.models import Environment
from environments.polling import status_cycle

log = logging.getLogger(__name__)

CONTINUE = {
    Deployment.Step.MODEL,
    Deployment.Step.CONFIG,
    Deployment.Step.ENDPOINT,
    Deployment.Step.SCALING,
    Deployment.Step.CLEANUP,
}


# A busy provider is retried after a random wait of up to 2, 4, 8 ... s, at most 600 s (below
# the Redis visibility timeout, 900 s, so a countdown never redelivers in a loop): full jitter,
# so that many throttled deployments do not come back in step.
BACKOFF_FACTOR = 2
BACKOFF_MAX = 600
# How long a web request waits for the broker to take a message before it answers anyway.
ENQUEUE_WAIT_SECONDS = 1.0


def backoff(retries: int) -> float:
    """Seconds before retry number `retries + 1`: random in [0, min(600, 2 * 2**retries)]."""
    return get_exponential_backoff_interval(
        factor=BACKOFF_FACTOR, retries=retries, maximum=BACKOFF_MAX, full_jitter=True
    )


@shared_task(bind=True, max_retries=20)
def advance_deployment(self: object, deployment_id: int) -> None:
    """Take the deployment one step further. Safe to run twice."""
    deployment = (
        Deployment.objects.select_related("endpoint__environment").filter(pk=deployment_id).first()
    )
    if deployment is None or deployment.is_finished:
        return
    retry_in = backoff(self.request.retries)
    try:
        step = deploy.advance(deployment, retry_in=retry_in)
    except (ProviderBusy, OperationalError) as error:
        raise self.retry(exc=error, countdown=retry_in) from error
    if step in CONTINUE:
        advance_deployment.delay(deployment_id)
    elif step == Deployment.Step.WAITING:
        # The provider works now; the beat poll notices when it is done. On the local runtime
        # that is seconds, so look again shortly as well.
        advance_deployment.apply_async((deployment_id,), countdown=settings.ENDPOINT_POLL_SECONDS)


def nudge(deployment_id: int) -> None:
    """Send advance_deployment without holding up the caller (a web request) for more than
    ENQUEUE_WAIT_SECONDS. A Redis that is paused or stopped makes a publish block for its
    socket timeout on every retry (celery#4556); the send goes on in the background, and the
    deployment row is the record: the reconciler re-sends a queued row the broker never got."""
    if advance_deployment.app.conf.task_always_eager:
        advance_deployment.delay(deployment_id)
        return
    sender = threading.Thread(
        target=send_advance, args=(deployment_id,), name=f"nudge-{deployment_id}", daemon=True
    )
    sender.start()
    sender.join(ENQUEUE_WAIT_SECONDS)


def send_advance(deployment_id: int) -> None:
    try:
        advance_deployment.delay(deployment_id)
    except Exception as error:  # noqa: BLE001 (any broker failure: the reconciler re-sends)
        log.warning(
            "could not enqueue deployment %s (%s); the reconciler will", deployment_id, error
        )


@shared_task(ignore_result=True)
def poll_endpoints() -> int:
    """One status cycle per environment with a deployment or a live endpoint; returns endpoints
    updated. Settled endpoints are polled too (one ListEndpoints a page of 100, no Describe
    unless the status moved): one can fail on its own, as a model that keeps crashing fails."""
    waiting = Deployment.objects.active().values_list("endpoint__environment_id", flat=True)
    live = Endpoint.objects.live().exclude(status=Endpoint.Status.PENDING)
    updated = 0
    environments = {*waiting, *live.values_list("environment_id", flat=True)}
    for environment in Environment.objects.filter(pk__in=environments):
        endpoints = {
            endpoint.name: endpoint
            for endpoint in environment.endpoints.live().exclude(status=Endpoint.Status.PENDING)
        }
        try:
            cycle = status_cycle(environment.backend, {n: e.status for n, e in endpoints.items()})
        except ProviderError as error:
            log.warning("polling %s failed: %s", environment, error.message)
            continue
        if cycle.described:
            faults.kill_point("polling")  # tests/fault only: a worker dies mid-poll
        for name, endpoint in endpoints.items():
            updated += record_status(endpoint, cycle, name)
        for deployment in Deployment.objects.active().filter(
            endpoint__environment=environment, step=Deployment.Step.WAITING
        ):
            advance_deployment.delay(deployment.pk)
    return updated


def record_status(endpoint: Endpoint, cycle: object, name: str) -> int:
    """Store what the provider said about one endpoint; every change is a timeline event."""
    now = timezone.now()
    if name in cycle.described:
        state = cycle.described[name]
        fields = {
            "status": state.status,
            "failure_reason": state.failure_reason,
            "variants_state": [
                {
                    "name": variant.name,
                    "current": variant.current_instances,
                    "desired": variant.desired_instances,
                    "weight": variant.current_weight,
                }
                for variant in state.variants
            ],
        }
    elif name in cycle.listed:
        fields = {"status": cycle.listed[name].status}
    elif name in cycle.gone and endpoint.status == Endpoint.Status.DELETING:
        return 0  # the delete deployment finishes it
    else:
        return 0
    changed = fields["status"] != endpoint.status
    Endpoint.objects.filter(pk=endpoint.pk).update(polled_at=now, **fields)
    if changed:
        message = f"Status: {fields['status']}."
        if fields.get("failure_reason"):
            message += f" {fields['failure_reason']}"
        endpoint.event(message, kind="error" if fields["status"] == "Failed" else "status")
        alerts.status_changed(
            endpoint, endpoint.status, fields["status"], fields.get("failure_reason", "")
        )
    return int(changed)


@shared_task(ignore_result=True)
def reconcile_deployments() -> int:
    """Re-drive deployments a lost message or a killed worker left behind."""
    stranded = Deployment.objects.stranded(timedelta(seconds=settings.RECONCILE_AFTER_SECONDS))
    count = 0
    for deployment in stranded.select_related("endpoint"):
        if deployment.attempts >= deploy.MAX_ATTEMPTS:
            deploy.fail(
                deployment,
                ProviderError(
                    f"Gave up after {deployment.attempts} attempts at step "
                    f"{deployment.get_step_display()}."
                ),
            )
            continue
        advance_deployment.delay(deployment.pk)
        count += 1
    return count


@shared_task(ignore_result=True)
def enforce_idle_rules() -> int:
    """Expiry times and idle rules of every endpoint that has one; returns how many acted."""
    from endpoints import idle

    acted = 0
    for endpoint in Endpoint.objects.with_cost_rules().select_related("environment"):
        acted += idle.check(endpoint) in {"deleted", "scaled"}
    return acted
