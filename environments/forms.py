from django import forms

from environments.models import Environment


class EnvironmentForm(forms.ModelForm):
    class Meta:
        model = Environment
        fields = [
            "name",
            "kind",
            "description",
            "region",
            "bucket",
            "prefix",
            "assume_role_arn",
            "external_id",
            "execution_role_arn",
            "require_approved_card",
            "alerts_enabled",
        ]
