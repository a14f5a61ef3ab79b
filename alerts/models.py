from django.db import models
from django.utils import timezone

MAX_ATTEMPTS = 8  # tries before an alert gives up


class AlertQuerySet(models.QuerySet):
    def due(self) -> "AlertQuerySet":
        """Alerts still to send whose next try has come: new ones, and failed ones after their
        back-off, until they have had every try."""
        return self.filter(
            sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS, next_try_at__lte=timezone.now()
        )


class Alert(models.Model):
    """One message for the team's chat, kept until the webhook took it (an outbox): a lost
    broker message or a webhook that was down delays an alert, it does not lose it."""

    class Kind(models.TextChoices):
        ATTENTION = "attention", "Needs attention"
        FAILED = "failed", "Deployment failed"
        RECOVERED = "recovered", "Recovered"
        RULE = "rule", "Expiry or idle rule"
        CARD = "card", "Model card"
        TEST = "test", "Test"

    endpoint = models.ForeignKey(
        "endpoints.Endpoint",
        on_delete=models.PROTECT,
        related_name="alerts",
        null=True,
        blank=True,
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The portal page the alert is about (an endpoint's, a model card's), without the host.
    path = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the next try may start: a sender's claim holds it in the future while it sends.
    next_try_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["sent_at", "next_try_at"])]

    def __str__(self) -> str:
        return self.text

    @property
    def state(self) -> str:
        if self.sent_at:
            return "sent"
        return "gave-up" if self.attempts >= MAX_ATTEMPTS else "pending"
