"""Environments: a local runtime or an AWS account and region, with where artifacts live."""

from functools import cached_property
from typing import TYPE_CHECKING

from django.core.validators import RegexValidator
from django.db import models

from environments import validators

if TYPE_CHECKING:
    from environments.backends.base import Backend


class Environment(models.Model):
    """A place endpoints run. Credentials are never stored: AWS uses the default chain, optionally
    assuming `assume_role_arn`."""

    class Kind(models.TextChoices):
        LOCAL = "local", "Local runtime"
        AWS = "aws", "Amazon SageMaker"

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9](-?[a-z0-9])*$",
                "Use lowercase letters, digits and single hyphens, like prod-eu.",
            )
        ],
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LOCAL)
    description = models.CharField(max_length=200, blank=True)
    region = models.CharField(
        max_length=30,
        blank=True,
        validators=[validators.validate_region],
        help_text="AWS Region, such as eu-west-1. Not used by the local runtime.",
    )
    bucket = models.CharField(
        max_length=63,
        validators=[validators.validate_bucket],
        help_text="S3 bucket for artifacts and captured data (a folder under var/s3 locally).",
    )
    prefix = models.CharField(
        max_length=200,
        blank=True,
        default="portal/",
        validators=[validators.validate_prefix],
        help_text="Key prefix the portal writes under, ending in a slash.",
    )
    assume_role_arn = models.CharField(
        "role to assume",
        max_length=2048,
        blank=True,
        validators=[validators.validate_role_arn],
        help_text="Optional: the portal calls sts:AssumeRole for this role before each session.",
    )
    external_id = models.CharField(
        max_length=1224, blank=True, validators=[validators.validate_external_id]
    )
    execution_role_arn = models.CharField(
        "default execution role",
        max_length=2048,
        blank=True,
        validators=[validators.validate_role_arn],
        help_text="The role SageMaker uses to pull images and artifacts (needs iam:PassRole).",
    )
    require_approved_card = models.BooleanField(
        "require an approved model card",
        default=False,
        help_text="Refuse to deploy a model here unless a model card for it has been approved.",
    )
    alerts_enabled = models.BooleanField(
        "send alerts",
        default=True,
        help_text="Tell the team's chat when an endpoint here fails, recovers, or is deleted or "
        "scaled down by a rule (when the portal has a webhook). Off for a sandbox nobody watches.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return self.kind == self.Kind.LOCAL

    @cached_property
    def backend(self) -> "Backend":
        """The provider backend for this environment: `environment.backend.describe_endpoint(n)`."""
        from environments.backends import get_backend

        return get_backend(self)

    @property
    def storage_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind == self.Kind.AWS and not self.region:
            raise ValidationError({"region": "An AWS environment needs a Region, like eu-west-1."})
        if {".", ".."} & set(self.prefix.split("/")):
            # The pattern allows dots in names, but storage keys may not climb out of the prefix.
            raise ValidationError({"prefix": "Leave out . and .. folders, as in portal/models/."})
        if self.external_id and not self.assume_role_arn:
            raise ValidationError(
                {"external_id": "An external ID only applies with a role to assume; add the role."}
            )
