"""The playground's forms: one request, a chat turn, a comparison of two targets, a pin.

SageMaker's rules for the header values live in endpoints/validators.py; `invoke.check` applies
them with the endpoint's own limits, so these forms only shape the input."""

import json

from django import forms

from endpoints.models import Endpoint
from playground.invoke import Request

TEXTAREA = {"rows": 10, "spellcheck": "false", "autocomplete": "off"}


class EndpointChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, endpoint: Endpoint) -> str:
        label = f"{endpoint.name} · {endpoint.environment.name} · {endpoint.get_kind_display()}"
        if endpoint.status != Endpoint.Status.IN_SERVICE:
            label += f" ({endpoint.get_status_display()})"
        return label


def live_endpoints() -> object:
    return Endpoint.objects.live().select_related("environment").order_by("name")


class TargetFields(forms.Form):
    """Which endpoint, and which model, container or variant in it."""

    endpoint = EndpointChoiceField(queryset=live_endpoints(), empty_label="Choose an endpoint…")
    target_model = forms.CharField(
        label="Target model",
        required=False,
        max_length=1024,
        help_text="TargetModel: the archive under the endpoint's model prefix.",
    )
    target_container = forms.CharField(
        label="Target container",
        required=False,
        max_length=63,
        help_text="TargetContainerHostname: the container that answers (Direct mode).",
    )
    target_variant = forms.CharField(
        label="Target variant",
        required=False,
        max_length=63,
        help_text="TargetVariant: skip the weighted routing and ask this variant.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = live_endpoints()


class InvokeForm(TargetFields):
    """One request as SageMaker's InvokeEndpoint takes it. The body arrives as a file part (the
    page's script sends the editor's text that way) or, without script, as a text field."""

    content_type = forms.CharField(
        label="Content type", max_length=1024, initial="application/json"
    )
    accept = forms.CharField(label="Accept", max_length=1024, required=False)
    custom_attributes = forms.CharField(
        label="Custom attributes",
        max_length=1024,
        required=False,
        help_text="Passed to the model as X-Amzn-SageMaker-Custom-Attributes.",
    )
    body = forms.CharField(
        label="Body", required=False, strip=False, widget=forms.Textarea(attrs=TEXTAREA)
    )
    upload = forms.FileField(
        label="Or send a file",
        required=False,
        help_text="An image, a CSV or JSON file, up to 6 MB.",
    )

    def request_for(self, body: bytes) -> Request:
        data = self.cleaned_data
        return Request(
            endpoint=data["endpoint"],
            body=body,
            content_type=data["content_type"],
            accept=data["accept"],
            custom_attributes=data["custom_attributes"],
            target_model=data["target_model"],
            target_variant=data["target_variant"],
            target_container=data["target_container"],
        )


class ChatForm(TargetFields):
    """A chat turn for a text-generation model: the conversation so far plus settings."""

    system = forms.CharField(
        label="System prompt",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        initial="You are a helpful assistant. Answer briefly.",
    )
    messages = forms.CharField(widget=forms.HiddenInput, initial="[]", max_length=500_000)
    prompt = forms.CharField(
        label="Message", max_length=100_000, widget=forms.Textarea(attrs={"rows": 3})
    )
    max_new_tokens = forms.IntegerField(
        label="Max new tokens", min_value=1, max_value=4096, initial=128
    )
    temperature = forms.FloatField(label="Temperature", min_value=0, max_value=2, initial=0.7)
    top_p = forms.FloatField(label="Top-p", min_value=0.01, max_value=1, initial=0.9)
    stop = forms.CharField(
        label="Stop sequences",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line, at most 4.",
    )

    def clean_messages(self) -> list[dict]:
        message = "The conversation is not a list of {role, content} turns; start a new one."
        try:
            turns = json.loads(self.cleaned_data["messages"] or "[]")
        except (ValueError, RecursionError):
            raise forms.ValidationError(message) from None
        if not isinstance(turns, list) or not all(
            isinstance(turn, dict)
            and turn.get("role") in ("user", "assistant")
            and isinstance(turn.get("content"), str)
            for turn in turns
        ):
            raise forms.ValidationError(message)
        return [{"role": turn["role"], "content": turn["content"]} for turn in turns]

    def clean_stop(self) -> list[str]:
        sequences = [line for line in self.cleaned_data["stop"].splitlines() if line.strip()]
        if len(sequences) > 4:
            raise forms.ValidationError("Give at most 4 stop sequences, one per line.")
        return sequences


class CompareForm(forms.Form):
    """The same request to two targets; each side's target is one choice, such as
    `model:ridge.tar.gz`, `container:sentiment` or `variant:Blue` (empty: the default)."""

    left_endpoint = EndpointChoiceField(
        queryset=live_endpoints(), label="Endpoint", empty_label="Choose an endpoint…"
    )
    left_target = forms.CharField(label="Target", required=False, max_length=1100)
    right_endpoint = EndpointChoiceField(
        queryset=live_endpoints(), label="Endpoint", empty_label="Choose an endpoint…"
    )
    right_target = forms.CharField(label="Target", required=False, max_length=1100)
    content_type = forms.CharField(
        label="Content type", max_length=1024, initial="application/json"
    )
    accept = forms.CharField(label="Accept", max_length=1024, required=False)
    body = forms.CharField(
        label="Body",
        strip=False,
        max_length=2_000_000,
        widget=forms.Textarea(attrs=TEXTAREA | {"rows": 5}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["left_endpoint"].queryset = live_endpoints()
        self.fields["right_endpoint"].queryset = live_endpoints()

    def clean_left_target(self) -> dict[str, str]:
        return parse_target(self.cleaned_data["left_target"])

    def clean_right_target(self) -> dict[str, str]:
        return parse_target(self.cleaned_data["right_target"])

    def requests(self) -> tuple[Request, Request]:
        data = self.cleaned_data
        return tuple(  # type: ignore[return-value]
            Request(
                endpoint=data[f"{side}_endpoint"],
                body=data["body"].encode(),
                content_type=data["content_type"],
                accept=data["accept"],
                **data[f"{side}_target"],
            )
            for side in ("left", "right")
        )


TARGET_KINDS = {
    "model": "target_model",
    "container": "target_container",
    "variant": "target_variant",
}
TARGET_RULE = (
    "Give the target as model:NAME, container:NAME or variant:NAME, "
    "or leave it empty for the endpoint's default routing."
)


def parse_target(value: str) -> dict[str, str]:
    """`model:ridge.tar.gz` → {"target_model": "ridge.tar.gz"}; "" → {} (default routing).
    Anything else is refused: a typo must not quietly become the default routing."""
    if not value:
        return {}
    kind, _, name = value.partition(":")
    if kind not in TARGET_KINDS or not name:
        raise forms.ValidationError(TARGET_RULE)
    return {TARGET_KINDS[kind]: name}


class PinForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="Say what it shows.")
