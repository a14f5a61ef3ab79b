"""Celery tasks: take deployments a step further, poll endpoint statuses, re-drive stranded work."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from endpoints import deploy
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


@shared_task(
    autoretry_for=(ProviderBusy, OperationalError),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=20,
)
def advance_deployment(deployment_id: int) -> None:
    """Take the deployment one step further. Safe to run twice."""
    deployment = (
        Deployment.objects.select_related("endpoint__environment").filter(pk=deployment_id).first()
    )
    if deployment is None or deployment.is_finished:
        return
    step = deploy.advance(deployment)
    if step in CONTINUE:
        advance_deployment.delay(deployment_id)
    elif step == Deployment.Step.WAITING:
        # The provider works now; the beat poll notices when it is done. On the local runtime
        # that is seconds, so look again shortly as well.
        advance_deployment.apply_async((deployment_id,), countdown=settings.ENDPOINT_POLL_SECONDS)


@shared_task(ignore_result=True)
def poll_endpoints() -> int:
    """One status cycle per environment with something to wait for; returns endpoints updated."""
    waiting = Deployment.objects.active().values_list("endpoint__environment_id", flat=True)
    moving = Endpoint.objects.in_transition().values_list("environment_id", flat=True)
    updated = 0
    for environment in Environment.objects.filter(pk__in={*waiting, *moving}):
        endpoints = {
            endpoint.name: endpoint
            for endpoint in environment.endpoints.live().exclude(status=Endpoint.Status.PENDING)
        }
        try:
            cycle = status_cycle(environment.backend, {n: e.status for n, e in endpoints.items()})
        except ProviderError as error:
            log.warning("polling %s failed: %s", environment, error.message)
            continue
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
