"""Model cards, their immutable versions, their status changes and where they were published.

A card's content is the SageMaker model card JSON document, stored whole in each version. Every
save makes a new version; an approved version is never changed again (an edit of an approved
card starts version n+1 as a draft), so what reviewers approved is what stays on record.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from endpoints.models import RegisteredModel
from environments.models import Environment

RISK_RATINGS = ["High", "Medium", "Low", "Unknown"]


class Status(models.TextChoices):
    """SageMaker's ModelCardStatus values, in workflow order."""

    DRAFT = "Draft", "Draft"
    PENDING_REVIEW = "PendingReview", "Pending review"
    APPROVED = "Approved", "Approved"
    ARCHIVED = "Archived", "Archived"


class ModelCardQuerySet(models.QuerySet):
    def approved(self) -> "ModelCardQuerySet":
        """Cards with an approved version that are not archived: good enough to deploy with,
        even while a newer draft is being written."""
        return self.exclude(status=Status.ARCHIVED).filter(versions__approved_at__isnull=False)


class ModelCard(models.Model):
    """One model card: its name (SageMaker's ModelCardName), its workflow status, the models it
    describes and the version most recently saved."""

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                "Use 1 to 63 letters, digits or hyphens, starting and ending with a letter or "
                "digit, like churn-classifier.",
            )
        ],
        help_text="Its name in SageMaker too; fixed for life.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Copied from the latest version so the list can search and filter without reading JSON.
    title = models.CharField(max_length=1024, blank=True)
    risk_rating = models.CharField(max_length=10, default="Unknown")
    registered_models = models.ManyToManyField(
        RegisteredModel, through="CardModel", related_name="model_cards", blank=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelCardQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def latest(self) -> "CardVersion | None":
        return self.versions.order_by("-number").first()

    @property
    def approved_version(self) -> "CardVersion | None":
        return self.versions.filter(approved_at__isnull=False).order_by("-number").first()

    @property
    def is_archived(self) -> bool:
        return self.status == Status.ARCHIVED

    @property
    def is_editable(self) -> bool:
        """Drafts and approved cards take edits (an approved one as a new draft version); a card
        under review waits for its reviewer, and an archived one is read-only."""
        return self.status in {Status.DRAFT, Status.APPROVED}


class CardModel(models.Model):
    """A registered model a card describes. PROTECT: a model with a card keeps its row."""

    card = models.ForeignKey(ModelCard, on_delete=models.PROTECT, related_name="links")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="card_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "model"], name="unique_card_model_link")
        ]

    def __str__(self) -> str:
        return f"{self.card} describes {self.model}"


class CardVersion(models.Model):
    """One saved state of a card's content. Immutable once approved."""

    card = models.ForeignKey(ModelCard, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.JSONField(default=dict)
    note = models.CharField(max_length=200, blank=True, help_text="What this save changed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["card", "number"], name="unique_card_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.card} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        # What reviewers approved stays exactly as they saw it: checked against the stored row,
        # so a stale in-memory copy cannot slip an edit past it.
        if self.pk is not None:
            stored = CardVersion.objects.filter(pk=self.pk).values("approved_at").first()
            if stored is not None and stored["approved_at"] is not None:
                raise ValidationError(
                    f"Version {self.number} of {self.card} is approved and cannot change; "
                    "edit the card to start a new version."
                )
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        if self.approved_at is not None:
            raise ValidationError(f"Version {self.number} of {self.card} is approved; it stays.")
        return super().delete(*args, **kwargs)

    @property
    def title(self) -> str:
        return self.content.get("model_overview", {}).get("model_name", "") or self.card.name

    @property
    def risk_rating(self) -> str:
        return self.content.get("intended_uses", {}).get("risk_rating", "Unknown")


class Transition(models.Model):
    """One status change of a card: who, when, from what to what, and why."""

    card = models.ForeignKey(ModelCard, on_delete=models.PROTECT, related_name="transitions")
    version = models.ForeignKey(CardVersion, on_delete=models.PROTECT, related_name="+")
    from_status = models.CharField(max_length=20, choices=Status.choices)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    comment = models.TextField(blank=True, max_length=2000)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.card}: {self.from_status} → {self.to_status}"


class Publication(models.Model):
    """A card version sent to an AWS environment's SageMaker, with the ARN it answered."""

    card = models.ForeignKey(ModelCard, on_delete=models.PROTECT, related_name="publications")
    version = models.ForeignKey(CardVersion, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices)
    arn = models.CharField(max_length=2048, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.card} v{self.version.number} in {self.environment}"
