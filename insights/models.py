"""What insights keeps: how far each capture file has been read, per-minute rollups of captured
traffic, the captured records themselves for browsing, and load-test runs.

Charts read rollups only, never records, so they stay fast however many records there are.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from endpoints.models import Endpoint
from environments.models import Environment


class CaptureSource(models.Model):
    """One endpoint's capture prefix as ingestion sees it: who is reading it now (a lease taken
    with a conditional UPDATE, so two beat runs never read it at once) and how the last run went."""

    endpoint = models.OneToOneField(Endpoint, on_delete=models.CASCADE, related_name="capture")
    lease_until = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"capture of {self.endpoint}"


class CaptureFile(models.Model):
    """One capture object and how far it has been read. A re-read starts at `bytes_read`, so
    nothing is counted twice; a last line still being written is left for the next read."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="capture_files")
    uri = models.CharField(max_length=1024)
    size = models.BigIntegerField(default=0)
    modified = models.DateTimeField(null=True, blank=True)
    bytes_read = models.BigIntegerField(default=0)
    lines_read = models.PositiveIntegerField(default=0)
    torn_lines = models.PositiveIntegerField(
        default=0, help_text="Lines that were not a JSON object, skipped and counted."
    )
    pending_bytes = models.PositiveIntegerField(
        default=0, help_text="An unfinished last line, read once it is complete."
    )
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "uri"], name="unique_capture_file")
        ]

    def __str__(self) -> str:
        return self.uri

    @property
    def is_read(self) -> bool:
        return self.bytes_read + self.pending_bytes >= self.size


class MinuteRollup(models.Model):
    """Captured traffic of one endpoint, variant and target model in one minute (UTC)."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=63)
    target_model = models.CharField(max_length=1024, blank=True)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    # Records with an input but no output: the model failed, or only input is captured.
    without_output = models.PositiveIntegerField(default=0)
    request_bytes = models.BigIntegerField(default=0)
    response_bytes = models.BigIntegerField(default=0)
    # {"in": {"text/csv": 12}, "out": {"application/json": 12}}
    content_types = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "minute", "variant", "target_model"], name="unique_rollup"
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.variant} {self.minute:%Y-%m-%d %H:%M}"


class CapturedRecord(models.Model):
    """One captured request and response, its columns extracted for filtering. Payloads are kept
    as text: CSV and JSON as captured, base64 decoded where the bytes are UTF-8 (`*_decoded`)."""

    # Ingestion inserts a million of these at 50,000 a second: no index beyond the one the
    # pages need (endpoint, time), and no per-row constraint check on the file, which only
    # ingestion writes, in the same transaction as the file's row.
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    file = models.ForeignKey(
        CaptureFile,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    time = models.DateTimeField()
    variant = models.CharField(max_length=63)
    target_model = models.CharField(max_length=1024, blank=True)
    event_id = models.CharField(max_length=64, blank=True)
    inference_id = models.CharField(max_length=64, blank=True)
    custom_attributes = models.CharField(max_length=1024, blank=True)
    input_content_type = models.CharField(max_length=256, blank=True)
    input_encoding = models.CharField(max_length=10, blank=True)
    input_decoded = models.BooleanField(default=True)
    input_bytes = models.PositiveIntegerField(default=0)
    input_data = models.TextField(blank=True)
    output_content_type = models.CharField(max_length=256, blank=True)
    output_encoding = models.CharField(max_length=10, blank=True)
    output_decoded = models.BooleanField(default=True)
    output_bytes = models.PositiveIntegerField(default=0)
    output_data = models.TextField(blank=True)
    has_output = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "time"], name="record_endpoint_time")]

    def __str__(self) -> str:
        return self.inference_id or self.event_id


class LoadTestRun(models.Model):
    """N requests sent C at a time to an endpoint from the browser, with what came back."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="load_tests")
    payloads = models.JSONField(default=list, help_text="Request bodies, sent in turn.")
    content_type = models.CharField(max_length=256)
    target_model = models.CharField(max_length=1024, blank=True)
    requests = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    sent = models.PositiveIntegerField(default=0)
    # latency percentiles (ms), errors by code, throughput, and a per-second series for charts
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.requests} requests to {self.endpoint}"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.CANCELLED, self.Status.FAILED}

    @property
    def percent(self) -> int:
        return int(100 * self.sent / self.requests) if self.requests else 100
