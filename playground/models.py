"""Every invocation made in the playground, kept per user, and the examples a team pins to an
endpoint."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from endpoints.models import Endpoint
from playground import blobs, conf


class InvocationQuerySet(models.QuerySet):
    def pending(self) -> "InvocationQuerySet":
        return self.filter(state=Invocation.State.PENDING, mode=Invocation.Mode.ASYNC)


class Invocation(models.Model):
    """One request sent from the playground and what came back: the answer or the error, its
    timings, and for an async request where its answer will land."""

    class Mode(models.TextChoices):
        REAL_TIME = "real-time", "Real-time"
        STREAM = "stream", "Streamed"
        ASYNC = "async", "Async"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invocations"
    )
    # The endpoint row is soft-deleted, never removed; the name is kept for the record anyway.
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.SET_NULL, null=True, related_name="invocations"
    )
    endpoint_name = models.CharField(max_length=63)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.REAL_TIME)
    target_model = models.CharField(max_length=1024, blank=True)
    target_variant = models.CharField(max_length=63, blank=True)
    target_container = models.CharField(max_length=63, blank=True)
    content_type = models.CharField(max_length=1024)
    accept = models.CharField(max_length=1024, blank=True)
    custom_attributes = models.CharField(max_length=1024, blank=True)
    request_inline = models.BinaryField(blank=True, default=b"")
    request_blob = models.CharField(max_length=64, blank=True)
    request_size = models.PositiveIntegerField(default=0)

    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_inline = models.BinaryField(blank=True, default=b"")
    response_blob = models.CharField(max_length=64, blank=True)
    response_size = models.PositiveIntegerField(default=0)
    response_content_type = models.CharField(max_length=1024, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    variant = models.CharField(max_length=63, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    error_raw = models.TextField(blank=True)

    total_ms = models.FloatField(null=True, blank=True)
    model_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True, help_text="Time to the first token.")
    tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)

    inference_id = models.CharField(max_length=64, blank=True)
    input_location = models.CharField(max_length=1024, blank=True)
    output_location = models.CharField(max_length=1024, blank=True)
    failure_location = models.CharField(max_length=1024, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)

    compare_group = models.CharField(max_length=32, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = InvocationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.endpoint_name} {self.target or ''} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def target(self) -> str:
        """The target in words: model, container or variant, whichever was named."""
        parts = [
            f"model {self.target_model}" if self.target_model else "",
            f"container {self.target_container}" if self.target_container else "",
            f"variant {self.target_variant}" if self.target_variant else "",
        ]
        return ", ".join(part for part in parts if part)

    @property
    def is_pending(self) -> bool:
        return self.state == self.State.PENDING

    @property
    def is_failed(self) -> bool:
        return self.state == self.State.FAILED

    def set_request_body(self, body: bytes) -> None:
        self.request_size = len(body)
        if len(body) <= conf.INLINE_BODY_BYTES:
            self.request_inline, self.request_blob = body, ""
        else:
            self.request_inline, self.request_blob = b"", blobs.put(body)

    def request_body(self) -> bytes:
        return blobs.get(self.request_blob) if self.request_blob else bytes(self.request_inline)

    def set_response_body(self, body: bytes) -> None:
        self.response_size = len(body)
        if len(body) <= conf.INLINE_BODY_BYTES:
            self.response_inline, self.response_blob = body, ""
        else:
            self.response_inline, self.response_blob = b"", blobs.put(body)

    def response_body(self) -> bytes:
        return blobs.get(self.response_blob) if self.response_blob else bytes(self.response_inline)


class PinnedExample(models.Model):
    """A request that worked, pinned to its endpoint so the whole team starts from it."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="pinned_examples")
    name = models.CharField(max_length=100)
    target_model = models.CharField(max_length=1024, blank=True)
    target_variant = models.CharField(max_length=63, blank=True)
    target_container = models.CharField(max_length=63, blank=True)
    content_type = models.CharField(max_length=1024)
    accept = models.CharField(max_length=1024, blank=True)
    custom_attributes = models.CharField(max_length=1024, blank=True)
    body = models.TextField()
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    pinned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "name"], name="unique_pin_name_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return self.name
