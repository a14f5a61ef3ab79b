"""A half-finished endpoint wizard, kept in the database so it survives a reload or a logout.

Django discovers models only in `endpoints.models`, which imports WizardDraft from here.
"""

from django.conf import settings
from django.db import models


class WizardDraft(models.Model):
    """One user's wizard in progress: every saved step's data, in the shape the wizard exports
    (`basics`, `capacity`, `async`, `capture`, `autoscaling`), plus `updating` (an endpoint's id)
    when the wizard changes an existing endpoint. One draft per user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wizard_draft"
    )
    data = models.JSONField(default=dict, blank=True)
    step = models.CharField(max_length=20, default="basics", help_text="The step to resume at.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "endpoints"

    def __str__(self) -> str:
        name = self.data.get("basics", {}).get("name") or "unnamed endpoint"
        return f"Wizard draft of {self.user} for {name}"
