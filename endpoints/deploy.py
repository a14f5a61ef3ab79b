"""Deployments: the exact provider requests an endpoint needs, and taking a deployment one step
further. Safe to run twice, from two workers at once, or after a worker died half-way.

Every step first claims the deployment row with a conditional UPDATE (the step must still be
the one it read, and no other worker's lease may be running), creates only what the provider
does not already have under the step's deterministic name, then moves the row on with another
conditional UPDATE. A beat reconciler re-drives rows whose lease ran out.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerts import delivery as alerts
from endpoints import faults
from endpoints.models import NEEDS_ATTENTION, Deployment, Endpoint, RegisteredModel
from environments.backends.base import ProviderBusy, ProviderError
from modelcards.workflow import models_without_approved_card

log = logging.getLogger(__name__)


def lease() -> timedelta:
    """How long a claimed step is a worker's alone: at least a step's hard time limit
    (task_time_limit), so a slow step is never run by two workers at once."""
    return timedelta(seconds=settings.DEPLOYMENT_LEASE_SECONDS)


MAX_ATTEMPTS = 5
NEXT_STEP = {
    Deployment.Action.CREATE: {
        Deployment.Step.QUEUED: Deployment.Step.MODEL,
        Deployment.Step.MODEL: Deployment.Step.CONFIG,
        Deployment.Step.CONFIG: Deployment.Step.ENDPOINT,
        Deployment.Step.ENDPOINT: Deployment.Step.WAITING,
        Deployment.Step.WAITING: Deployment.Step.SCALING,
        Deployment.Step.SCALING: Deployment.Step.DONE,
    },
    Deployment.Action.UPDATE: {
        Deployment.Step.QUEUED: Deployment.Step.MODEL,
        Deployment.Step.MODEL: Deployment.Step.CONFIG,
        Deployment.Step.CONFIG: Deployment.Step.ENDPOINT,
        Deployment.Step.ENDPOINT: Deployment.Step.WAITING,
        Deployment.Step.WAITING: Deployment.Step.SCALING,
        Deployment.Step.SCALING: Deployment.Step.DONE,
    },
    Deployment.Action.DELETE: {
        Deployment.Step.QUEUED: Deployment.Step.SCALING,
        Deployment.Step.SCALING: Deployment.Step.ENDPOINT,
        Deployment.Step.ENDPOINT: Deployment.Step.WAITING,
        Deployment.Step.WAITING: Deployment.Step.CLEANUP,
        Deployment.Step.CLEANUP: Deployment.Step.DONE,
    },
}


# -- the requests -------------------------------------------------------------------------


def variant_models(endpoint: Endpoint) -> list[RegisteredModel]:
    ids = [variant["model_id"] for variant in endpoint.spec["variants"]]
    found = {model.pk: model for model in RegisteredModel.objects.filter(pk__in=ids)}
    return [found[model_id] for model_id in ids]


def requests(endpoint: Endpoint, generation: int) -> dict:
    """The exact CreateModel, CreateEndpointConfig and CreateEndpoint requests of a generation."""
    spec = endpoint.spec
    models = variant_models(endpoint)
    model_requests = [
        model.create_model_request(endpoint.model_name_for(generation, index))
        for index, model in enumerate(models)
    ]
    variants = []
    for index, variant in enumerate(spec["variants"]):
        production = {
            "VariantName": variant["name"],
            "ModelName": endpoint.model_name_for(generation, index),
        }
        if endpoint.kind == Endpoint.Kind.SERVERLESS:
            serverless = {
                "MemorySizeInMB": variant["serverless"]["memory"],
                "MaxConcurrency": variant["serverless"]["max_concurrency"],
            }
            if variant["serverless"].get("provisioned_concurrency"):
                serverless["ProvisionedConcurrency"] = variant["serverless"][
                    "provisioned_concurrency"
                ]
            production["ServerlessConfig"] = serverless
        else:
            production["InstanceType"] = variant["instance_type"]
            production["InitialInstanceCount"] = variant["instance_count"]
            production["InitialVariantWeight"] = float(variant.get("weight", 1.0))
        variants.append(production)
    config: dict = {
        "EndpointConfigName": endpoint.config_name_for(generation),
        "ProductionVariants": variants,
    }
    capture = spec.get("capture") or {}
    if capture.get("enabled"):
        modes = [
            m
            for m, on in (("Input", capture.get("input")), ("Output", capture.get("output")))
            if on
        ]
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture["sampling"],
            "DestinationS3Uri": capture["destination"],
            "CaptureOptions": [{"CaptureMode": mode} for mode in modes],
        }
        types = {}
        if capture.get("csv_types"):
            types["CsvContentTypes"] = capture["csv_types"]
        if capture.get("json_types"):
            types["JsonContentTypes"] = capture["json_types"]
        if types:
            config["DataCaptureConfig"]["CaptureContentTypeHeader"] = types
    options = spec.get("async") or {}
    if endpoint.kind == Endpoint.Kind.ASYNC:
        output = {"S3OutputPath": options["output_path"]}
        if options.get("failure_path"):
            output["S3FailurePath"] = options["failure_path"]
        notifications = {}
        if options.get("success_topic"):
            notifications["SuccessTopic"] = options["success_topic"]
        if options.get("error_topic"):
            notifications["ErrorTopic"] = options["error_topic"]
        if notifications:
            output["NotificationConfig"] = notifications
        config["AsyncInferenceConfig"] = {"OutputConfig": output}
        if options.get("max_concurrent"):
            config["AsyncInferenceConfig"]["ClientConfig"] = {
                "MaxConcurrentInvocationsPerInstance": options["max_concurrent"]
            }
    config["Tags"] = [{"Key": "managed-by", "Value": "endpoint-portal"}]
    return {
        "models": model_requests,
        "config": config,
        "endpoint": {
            "EndpointName": endpoint.name,
            "EndpointConfigName": config["EndpointConfigName"],
        },
    }


# -- starting deployments -----------------------------------------------------------------


class CardsNotApproved(PermissionDenied):
    """The environment requires an approved model card, and a model to deploy has none. A
    PermissionDenied, so any view that starts a deployment answers 403 with the reason, and
    the transaction around it rolls back."""


def check_model_cards(endpoint: Endpoint) -> None:
    """Refuse to deploy models without an approved card where the environment requires one."""
    environment = endpoint.environment
    if not environment.require_approved_card or not endpoint.spec.get("variants"):
        return
    missing = models_without_approved_card(variant_models(endpoint))
    if missing:
        names = ", ".join(sorted({model.name for model in missing}))
        raise CardsNotApproved(
            f"{environment.name} deploys only models with an approved model card, and none is "
            f"approved for {names}. Get a card approved on the Model cards page, then deploy again."
        )


def start(endpoint: Endpoint, action: str, user: object = None) -> Deployment:
    """Record a deployment and nudge a worker once the transaction commits. Call inside the
    transaction that saved the endpoint, so both are there or neither is."""
    from endpoints.tasks import nudge

    if action != Deployment.Action.DELETE:
        check_model_cards(endpoint)
    if action == Deployment.Action.UPDATE:
        Endpoint.objects.filter(pk=endpoint.pk).update(generation=F("generation") + 1)
        endpoint.refresh_from_db(fields=["generation"])
    deployment = Deployment.objects.create(
        endpoint=endpoint,
        action=action,
        generation=endpoint.generation,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    endpoint.event(
        f"{deployment.get_action_display()} requested (generation {deployment.generation})."
    )
    # robust: a broker that is down must not turn a committed deployment into an error page;
    # nudge never waits long for the broker, and the reconciler re-sends what it could not.
    transaction.on_commit(lambda: nudge(deployment.pk), robust=True)
    return deployment


# -- taking a step ------------------------------------------------------------------------


def claim(deployment: Deployment) -> bool:
    """Take the lease on the deployment's current step; False if another worker holds it."""
    now = timezone.now()
    return bool(
        Deployment.objects.filter(
            pk=deployment.pk, step=deployment.step, lease_until__lt=now, finished_at__isnull=True
        ).update(lease_until=now + lease(), attempts=F("attempts") + 1)
    )


def move(deployment: Deployment, step: str) -> bool:
    """Move on from the step this worker holds; False if someone else moved it first."""
    now = timezone.now()
    finished = now if step in {Deployment.Step.DONE, Deployment.Step.FAILED} else None
    moved = Deployment.objects.filter(pk=deployment.pk, step=deployment.step).update(
        step=step, lease_until=now, attempts=0, step_started_at=now, finished_at=finished
    )
    if moved:
        seconds = (now - deployment.step_started_at).total_seconds()
        if deployment.step != Deployment.Step.QUEUED:
            label = Deployment.Step(deployment.step).label
            deployment.endpoint.event(f"{label}: done.", kind="step", seconds=seconds)
    return bool(moved)


def fail(deployment: Deployment, error: ProviderError) -> None:
    now = timezone.now()
    # The poller has already told the team when the endpoint itself went Failed.
    told = Endpoint.objects.filter(pk=deployment.endpoint_id, status__in=NEEDS_ATTENTION).exists()
    failed_now = Deployment.objects.filter(pk=deployment.pk, finished_at__isnull=True).update(
        step=Deployment.Step.FAILED,
        last_error=error.message,
        raw_error=error.raw,
        finished_at=now,
        lease_until=now,
    )
    Endpoint.objects.filter(pk=deployment.endpoint_id).update(
        status=Endpoint.Status.FAILED
        if deployment.action == Deployment.Action.CREATE
        else deployment.endpoint.status,
        failure_reason=error.message,
    )
    deployment.endpoint.event(f"Failed: {error.message}", kind="error")
    if failed_now and not told:
        alerts.deployment_failed(deployment, error.message)


def advance(deployment: Deployment, retry_in: float | None = None) -> str | None:
    """Take one step. Returns the step it moved to, or None if there was nothing to do (another
    worker holds it, it is waiting for the provider, or it is finished). `retry_in` is the
    task's backoff should the provider be busy: the step stays leased until then, so the
    reconciler leaves the retry to the task, and the timeline says when it comes."""
    if deployment.is_finished or not claim(deployment):
        return None
    endpoint = deployment.endpoint
    backend = endpoint.environment.backend
    step = deployment.step
    try:
        # No transaction around provider calls: each database write below is one statement,
        # and a long-held write lock would stall every other writer (SQLite above all).
        done = run_step(deployment, endpoint, backend, step)
    except ProviderBusy as error:
        # Visible on the timeline, not only in a worker's log: the provider is slowing us down.
        # A busy provider is no attempt used up: only crashes count towards MAX_ATTEMPTS.
        message = f"{error.message} Retrying with backoff."
        lease_until = timezone.now()
        if retry_in is not None:
            lease_until += timedelta(seconds=retry_in)
            at = timezone.localtime(lease_until).strftime("%H:%M:%S %Z")
            message = f"{error.message} Throttled, retrying at {at} (backoff {retry_in:.0f} s)."
        Deployment.objects.filter(pk=deployment.pk).update(
            lease_until=lease_until, attempts=F("attempts") - 1, last_error=error.message
        )
        endpoint.event(message, kind="info")
        raise  # the task retries with backoff
    except ProviderError as error:
        if error.retryable and deployment.attempts < MAX_ATTEMPTS:
            release(deployment)
            raise
        fail(deployment, error)
        return Deployment.Step.FAILED
    if not done:
        # Waiting for the provider: the beat poll comes back. Waiting is no failed attempt
        # (only a crash is), or a long Creating would reach MAX_ATTEMPTS and be given up.
        Deployment.objects.filter(pk=deployment.pk).update(
            lease_until=timezone.now(), attempts=F("attempts") - 1
        )
        return None
    faults.kill_point(step)  # tests/fault only: a worker dies with the work done, unrecorded
    next_step = NEXT_STEP[deployment.action][step]
    if move(deployment, next_step):
        if next_step == Deployment.Step.DONE:
            finish(deployment)
        return next_step
    return None


def release(deployment: Deployment) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(lease_until=timezone.now())


def run_step(deployment: Deployment, endpoint: Endpoint, backend: object, step: str) -> bool:
    """Do the step's provider work, creating only what is missing. False means "not yet"."""
    generation = deployment.generation
    if step == Deployment.Step.QUEUED:
        return True
    if deployment.action == Deployment.Action.DELETE:
        return run_delete_step(deployment, endpoint, backend, step)
    wanted = requests(endpoint, generation)
    if step == Deployment.Step.MODEL:
        for request in wanted["models"]:
            create_unless_there(
                backend.describe_model, backend.create_model, request["ModelName"], request
            )
        return True
    if step == Deployment.Step.CONFIG:
        config = wanted["config"]
        create_unless_there(
            backend.describe_endpoint_config,
            backend.create_endpoint_config,
            config["EndpointConfigName"],
            config,
        )
        return True
    if step == Deployment.Step.ENDPOINT:
        config_name = wanted["config"]["EndpointConfigName"]
        state = backend.describe_endpoint(endpoint.name)
        if state is None:
            try:
                backend.create_endpoint(endpoint.name, config_name)
            except ProviderBusy:
                raise
            except ProviderError:
                if backend.describe_endpoint(endpoint.name) is None:
                    raise  # a real refusal, not "already exists" from a step run twice
            status = Endpoint.Status.CREATING
        elif state.config_name != config_name:
            if state.status != "InService":
                return False  # SageMaker updates only an InService endpoint: wait
            backend.update_endpoint(endpoint.name, config_name)
            status = Endpoint.Status.UPDATING
        else:
            status = state.status  # a retried step: the call went through last time
        Endpoint.objects.filter(pk=endpoint.pk).update(status=status, failure_reason="")
        if status != endpoint.status:
            endpoint.event(f"Status: {status}.", kind="status")
        return True
    if step == Deployment.Step.WAITING:
        endpoint.refresh_from_db()
        if endpoint.status == Endpoint.Status.IN_SERVICE:
            if endpoint.config_name != wanted["config"]["EndpointConfigName"]:
                Endpoint.objects.filter(pk=endpoint.pk).update(
                    previous_config_name=endpoint.config_name,
                    config_name=wanted["config"]["EndpointConfigName"],
                )
            return True
        if endpoint.status in {Endpoint.Status.FAILED, Endpoint.Status.UPDATE_ROLLBACK_FAILED}:
            raise ProviderError(endpoint.failure_reason or f"The endpoint is {endpoint.status}.")
        return False
    if step == Deployment.Step.SCALING:
        scaling = endpoint.spec.get("autoscaling") or {}
        if scaling.get("enabled") and endpoint.kind != Endpoint.Kind.SERVERLESS:
            for variant in endpoint.spec["variants"]:
                backend.register_scalable_target(
                    endpoint.name, variant["name"], scaling["min"], scaling["max"]
                )
                backend.put_scaling_policy(
                    endpoint.name,
                    variant["name"],
                    name=f"portal-{endpoint.pk}-invocations",
                    target_invocations_per_instance=scaling["target"],
                    scale_in_cooldown=scaling.get("scale_in_cooldown", 300),
                    scale_out_cooldown=scaling.get("scale_out_cooldown", 300),
                    backlog=endpoint.kind == Endpoint.Kind.ASYNC,
                )
        elif deployment.action == Deployment.Action.UPDATE:
            for variant in endpoint.spec["variants"]:  # switched off: the old policy goes
                backend.delete_scaling_policy(
                    endpoint.name, variant["name"], f"portal-{endpoint.pk}-invocations"
                )
        return True
    raise ValueError(f"No step {step!r} for {deployment.action}")


def create_unless_there(describe: Callable, create: Callable, name: str, request: dict) -> None:
    """Create the resource unless the provider has it. "Already exists" from a step that ran
    twice (its lease ran out mid-call) is adopted, not an error: the name is deterministic."""
    if describe(name) is not None:
        return
    try:
        create(request)
    except ProviderBusy:
        raise
    except ProviderError:
        if describe(name) is None:
            raise


def run_delete_step(deployment: Deployment, endpoint: Endpoint, backend: object, step: str) -> bool:
    if step == Deployment.Step.SCALING:
        scaling = endpoint.spec.get("autoscaling") or {}
        if scaling.get("enabled"):
            for variant in endpoint.spec["variants"]:
                backend.delete_scaling_policy(
                    endpoint.name, variant["name"], f"portal-{endpoint.pk}-invocations"
                )
        return True
    if step == Deployment.Step.ENDPOINT:
        if backend.describe_endpoint(endpoint.name) is not None:
            backend.delete_endpoint(endpoint.name)
        Endpoint.objects.filter(pk=endpoint.pk).update(status=Endpoint.Status.DELETING)
        endpoint.event("Status: Deleting.", kind="status")
        return True
    if step == Deployment.Step.WAITING:
        return backend.describe_endpoint(endpoint.name) is None
    if step == Deployment.Step.CLEANUP:
        # Configs and models of every generation this endpoint made; no other endpoint uses
        # them, as their names carry this endpoint's id.
        for generation in range(1, endpoint.generation + 1):
            backend.delete_endpoint_config(endpoint.config_name_for(generation))
            for index in range(len(endpoint.spec["variants"])):
                backend.delete_model(endpoint.model_name_for(generation, index))
        return True
    raise ValueError(f"No step {step!r} for a delete")


def finish(deployment: Deployment) -> None:
    endpoint = deployment.endpoint
    if deployment.action == Deployment.Action.DELETE:
        Endpoint.objects.filter(pk=endpoint.pk).update(
            status=Endpoint.Status.DELETED, deleted_at=timezone.now()
        )
        endpoint.event("Deleted; its configurations and models are cleaned up.", kind="status")
    else:
        total = (timezone.now() - deployment.created_at).total_seconds()
        endpoint.event(f"{deployment.get_action_display()} finished.", kind="step", seconds=total)
