"""Forms: the records filter and starting a load test."""

from django import forms

from endpoints import validators
from insights import conf

MAX_PASTED_BYTES = 256 * 1024
RECORDED_PAYLOADS = 200


class RecordFilterForm(forms.Form):
    """Which captured records to list or download. Every field is optional."""

    STATUS_CHOICES = [
        ("", "Any"),
        ("answered", "Answered (output captured)"),
        ("no-output", "No output captured"),
    ]

    variant = forms.CharField(required=False, max_length=63)
    target = forms.CharField(required=False, max_length=1024, label="Target model")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search payloads",
        help_text="Finds the text anywhere in the request, the response or the inference id.",
    )

    def problems(self) -> list[str]:
        """Each error as "Field: what is wrong", as the page and a refused download say it."""
        return [
            f"{self[name].label}: {error}"
            for name, errors in self.errors.items()
            for error in errors
        ]


class LoadTestForm(forms.Form):
    SOURCE_CHOICES = [
        ("recorded", "Recorded: the endpoint's latest captured requests"),
        ("pasted", "Pasted: one request body per line"),
    ]

    requests = forms.IntegerField(
        min_value=1,
        max_value=conf.LOADTEST_MAX_REQUESTS,
        initial=200,
        label="Requests",
        help_text=f"1 to {conf.LOADTEST_MAX_REQUESTS:,}.",
    )
    concurrency = forms.IntegerField(
        min_value=1,
        max_value=conf.LOADTEST_MAX_CONCURRENCY,
        initial=4,
        label="At once",
        help_text=f"1 to {conf.LOADTEST_MAX_CONCURRENCY} requests in flight.",
    )
    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial="recorded", widget=forms.RadioSelect)
    payloads = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "5.1,3.5,1.4,0.2"}),
        label="Payloads",
    )
    content_type = forms.CharField(
        required=False,
        max_length=256,
        initial="text/csv",
        # Checked here as the playground checks it: every request of the run sends it.
        validators=[validators.validate_content_type],
        label="Content type",
        help_text="For pasted payloads; recorded ones keep their own.",
    )
    target_model = forms.CharField(
        required=False,
        max_length=1024,
        validators=[validators.validate_target_model],
        label="Target model",
        help_text="Multi-model endpoints only: the archive to invoke, such as model-a.tar.gz.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("source") == "pasted":
            text = data.get("payloads") or ""
            if len(text.encode("utf-8")) > MAX_PASTED_BYTES:
                self.add_error("payloads", "Paste at most 256 KB of payloads.")
            elif not [line for line in text.splitlines() if line.strip()]:
                self.add_error("payloads", "Paste at least one request body, one per line.")
            if not data.get("content_type"):
                self.add_error("content_type", "Give the content type of the pasted payloads.")
        return data

    def pasted_payloads(self) -> list[str]:
        return [line for line in self.cleaned_data["payloads"].splitlines() if line.strip()]
