"""Registered models, endpoints, their deployments and their timelines.

A RegisteredModel is the portal's template of a SageMaker model. Each deployment of an endpoint
creates its own provider resources from it, under deterministic names (`portal-<endpoint>-g<n>`),
so a retried or duplicated step finds what it made before instead of making a second one.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from endpoints.drafts import WizardDraft  # noqa: F401 (Django finds models in <app>.models)
from environments.models import Environment

TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
# An endpoint in one of these needs a person: it serves nothing, or not what was asked.
NEEDS_ATTENTION = ("Failed", "UpdateRollbackFailed", "OutOfService")


class State(models.TextChoices):
    """What a team member asks of an endpoint, over SageMaker's eleven statuses."""

    SERVING = "serving", "In service"
    IN_PROGRESS = "in-progress", "In progress"
    ATTENTION = "attention", "Needs attention"


class RegisteredModel(models.Model):
    """A serving container image (or several) with its artifacts, role and network settings."""

    class Kind(models.TextChoices):
        SINGLE = "single", "Single model"
        MULTI_MODEL = "multi-model", "Multi-model (many models, one container)"
        MULTI_CONTAINER = "multi-container", "Multi-container (up to 15 containers)"

    class Mode(models.TextChoices):
        SERIAL = "Serial", "Serial: an inference pipeline"
        DIRECT = "Direct", "Direct: the caller picks a container"

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="registered_models"
    )
    name = models.CharField(max_length=63)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SINGLE)
    # SageMaker ContainerDefinitions, as CreateModel takes them: Image, ModelDataUrl, Mode,
    # Environment, ContainerHostname.
    containers = models.JSONField(default=list)
    inference_mode = models.CharField(max_length=10, choices=Mode.choices, blank=True)
    execution_role_arn = models.CharField(max_length=2048, blank=True)
    subnets = models.JSONField(default=list, blank=True)
    security_groups = models.JSONField(default=list, blank=True)
    network_isolation = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="unique_live_model_name_per_environment",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def create_model_request(self, provider_name: str) -> dict:
        """The exact CreateModel request for this model under `provider_name`."""
        request: dict = {"ModelName": provider_name}
        if self.kind == self.Kind.MULTI_CONTAINER:
            request["Containers"] = self.containers
            request["InferenceExecutionConfig"] = {"Mode": self.inference_mode or "Serial"}
        else:
            request["PrimaryContainer"] = self.containers[0]
        role = self.execution_role_arn or self.environment.execution_role_arn
        if role:
            request["ExecutionRoleArn"] = role
        if self.subnets and self.security_groups:
            request["VpcConfig"] = {
                "Subnets": self.subnets,
                "SecurityGroupIds": self.security_groups,
            }
        if self.network_isolation:
            request["EnableNetworkIsolation"] = True
        request["Tags"] = [{"Key": "managed-by", "Value": "endpoint-portal"}]
        return request


class IdleAction(models.TextChoices):
    DELETE = "delete", "delete it"
    SCALE_DOWN = "scale-down", "scale it to its minimum"


class EndpointQuerySet(models.QuerySet):
    def live(self) -> "EndpointQuerySet":
        return self.filter(deleted_at__isnull=True)

    def in_transition(self) -> "EndpointQuerySet":
        return self.live().filter(status__in=TRANSITIONAL)

    def in_state(self, state: str) -> "EndpointQuerySet":
        """Those in `state` (a State): needing attention by their status; in progress while
        the provider is in transition or a deployment of theirs runs; else serving if InService.
        """
        deploying = models.Exists(
            Deployment.objects.filter(endpoint=models.OuterRef("pk"), finished_at__isnull=True)
        )
        attention = models.Q(status__in=NEEDS_ATTENTION)
        progress = ~attention & (models.Q(status__in=(*TRANSITIONAL, "Pending")) | deploying)
        if state == State.ATTENTION:
            return self.filter(attention)
        if state == State.IN_PROGRESS:
            return self.filter(progress)
        if state == State.SERVING:
            return self.filter(models.Q(status="InService") & ~deploying)
        raise ValueError(f"{state!r} is not an endpoint state; use one of {State.values}.")

    def with_cost_rules(self) -> "EndpointQuerySet":
        return self.live().filter(
            models.Q(expires_at__isnull=False) | models.Q(idle_hours__isnull=False)
        )


def endpoints_by_model(endpoints: "models.QuerySet[Endpoint]") -> dict[int, list["Endpoint"]]:
    """The given endpoints under the id of each registered model their variants serve; an
    endpoint appears once per model however many of its variants serve it."""
    found: dict[int, list[Endpoint]] = {}
    for endpoint in endpoints:
        ids = {variant.get("model_id") for variant in endpoint.spec.get("variants", [])}
        for model_id in ids - {None}:
            found.setdefault(model_id, []).append(endpoint)
    return found


class Endpoint(models.Model):
    """An endpoint as the portal wants it (`spec`) and as the provider last reported it."""

    class Kind(models.TextChoices):
        REAL_TIME = "real-time", "Provisioned real-time"
        ASYNC = "async", "Provisioned async"
        SERVERLESS = "serverless", "Serverless"

    class Status(models.TextChoices):
        PENDING = "Pending", "Pending"
        CREATING = "Creating", "Creating"
        UPDATING = "Updating", "Updating"
        SYSTEM_UPDATING = "SystemUpdating", "System updating"
        ROLLING_BACK = "RollingBack", "Rolling back"
        IN_SERVICE = "InService", "In service"
        OUT_OF_SERVICE = "OutOfService", "Out of service"
        DELETING = "Deleting", "Deleting"
        FAILED = "Failed", "Failed"
        UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed", "Update rollback failed"
        DELETED = "Deleted", "Deleted"

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="endpoints")
    name = models.CharField(max_length=63, help_text="The name callers invoke; fixed for life.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REAL_TIME)
    # What the portal wants: variants (model ids, instance type and count or serverless
    # settings, weights), async options, data capture and autoscaling.
    spec = models.JSONField(default=dict)
    generation = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.TextField(blank=True)
    config_name = models.CharField(max_length=63, blank=True)
    previous_config_name = models.CharField(max_length=63, blank=True)
    variants_state = models.JSONField(default=list, blank=True)  # instance counts per variant
    polled_at = models.DateTimeField(null=True, blank=True)
    # Idle cost: provisioned endpoints are billed while nobody calls them.
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Delete the endpoint at this time."
    )
    idle_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="After this many hours without an invocation…"
    )
    idle_action = models.CharField(max_length=20, choices=IdleAction.choices, blank=True)
    idle_warned_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="unique_live_endpoint_name_per_environment",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_settled(self) -> bool:
        """Nothing to wait for: no deployment running and the provider not in transition."""
        if self.status in TRANSITIONAL or self.status == self.Status.PENDING:
            return False
        return not self.deployments.filter(finished_at__isnull=True).exists()

    @property
    def is_live(self) -> bool:
        return self.deleted_at is None

    def config_name_for(self, generation: int) -> str:
        return f"portal-{self.pk}-g{generation}"

    def model_name_for(self, generation: int, index: int) -> str:
        return f"portal-{self.pk}-g{generation}-v{index}"

    def event(self, message: str, kind: str = "info", seconds: float | None = None) -> "Event":
        """A line on the timeline. The endpoint counts as updated then: status changes are
        written with a plain UPDATE, which leaves `updated_at` alone."""
        event = Event.objects.create(endpoint=self, kind=kind, message=message, seconds=seconds)
        Endpoint.objects.filter(pk=self.pk).update(updated_at=event.at)
        return event


class DeploymentQuerySet(models.QuerySet):
    def active(self) -> "DeploymentQuerySet":
        return self.filter(finished_at__isnull=True)

    def stranded(self, older_than: timedelta) -> "DeploymentQuerySet":
        """Work a lost broker message or a killed worker left behind: not finished, and nobody
        has held its lease for `older_than` (a queued row's lease ran out when it was made)."""
        return self.active().filter(lease_until__lt=timezone.now() - older_than)


class Deployment(models.Model):
    """One change of an endpoint, driven a step at a time by Celery. The database holds its
    state; the broker only carries the nudge to take the next step."""

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    class Step(models.TextChoices):
        QUEUED = "queued", "Queued"
        MODEL = "model", "Create models"
        CONFIG = "config", "Create endpoint configuration"
        ENDPOINT = "endpoint", "Create or update endpoint"
        SCALING = "scaling", "Apply autoscaling"
        WAITING = "waiting", "Wait for the provider"
        CLEANUP = "cleanup", "Clean up"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="deployments")
    action = models.CharField(max_length=10, choices=Action.choices)
    generation = models.PositiveIntegerField()
    step = models.CharField(max_length=10, choices=Step.choices, default=Step.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    raw_error = models.TextField(blank=True)
    step_started_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.endpoint} (generation {self.generation})"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class Event(models.Model):
    """One line of an endpoint's timeline: a status change, a step done, an error."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=10, default="info")  # info, status, step, error
    message = models.TextField()
    seconds = models.FloatField(null=True, blank=True, help_text="How long the step took.")

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return self.message
