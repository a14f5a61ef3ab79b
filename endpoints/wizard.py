"""The endpoint wizard: one guided flow for each kind of endpoint, a step at a time, to a review
of the exact provider requests and the endpoint's creation; the same steps change an existing
endpoint's capacity, data capture and autoscaling.

Every saved step is written to the user's WizardDraft, so a half-finished wizard survives a
reload or a logout. The draft holds each step's data in the shape the review step exports as
JSON (`portal_wizard_version`, then one object per step), and an imported document goes
through the same step forms, so the form and the JSON document round-trip.
"""

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_safe

from accounts.roles import Role, role_required
from endpoints import deploy, validators
from endpoints.drafts import WizardDraft
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment

VERSION = 1
MAX_DOCUMENT_BYTES = 1024 * 1024
AWS_MAX_INSTANCES = 10

# SageMaker real-time inference list prices, us-east-1, on demand, USD per instance-hour, as
# the AWS pricing page gave them. They estimate, they do not bill: other regions cost more,
# savings plans less, and storage and data transfer are extra. The page renders its prices
# client-side, so check with the Price List API (shared/reference/sagemaker.md §8) and set
# settings.INSTANCE_PRICES_PER_HOUR to override the whole table.
INSTANCE_PRICES_PER_HOUR = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 0.94,
    "ml.g5.xlarge": 1.408,
    "ml.p3.2xlarge": 3.825,
}

STEP_TITLES = {
    "basics": "Basics",
    "capacity": "Models and capacity",
    "async": "Async",
    "capture": "Data capture",
    "autoscaling": "Autoscaling",
    "review": "Review",
}
DATA_STEPS = ("basics", "capacity", "async", "capture", "autoscaling")
DOCUMENT_KEYS = {"portal_wizard_version", "requests", *DATA_STEPS}
KIND_CHOICES = [
    (
        validators.REAL_TIME,
        "Provisioned real-time: instances always on, answers in milliseconds, requests up to 6 MB.",
    ),
    (
        validators.ASYNC,
        "Provisioned async: requests queue and results land in S3; for long jobs and "
        "large inputs, and it can scale to zero.",
    ),
    (
        validators.SERVERLESS,
        "Serverless: no instances to choose, billed per use, cold starts after idle time; "
        "no data capture or autoscaling.",
    ),
]
SERVERLESS_SKIPS = (
    "Serverless endpoints have no data capture or autoscaling (SageMaker scales them by "
    "concurrency), so the wizard skips those steps."
)


# -- prices ---------------------------------------------------------------------------------


def instance_prices() -> dict[str, float]:
    return getattr(settings, "INSTANCE_PRICES_PER_HOUR", INSTANCE_PRICES_PER_HOUR)


def price_estimate(environment: Environment | None, variants: list[tuple[object, object]]) -> str:
    """ "About $X.XX per hour" for (instance type, count) pairs, in words for the page."""
    if environment is not None and environment.is_local:
        return "Free: runs on this machine."
    prices = instance_prices()
    total = Decimal(0)
    unknown: list[str] = []
    for instance_type, count in variants:
        try:
            count = int(count)
        except (TypeError, ValueError):
            continue  # the count is not a number yet: its field says so
        price = prices.get(str(instance_type))
        if price is None:
            unknown.append(str(instance_type))
            continue
        total += Decimal(str(price)) * count
    if unknown and not total:
        return f"No list price for {', '.join(unknown)} here; see the SageMaker pricing page."
    text = f"About ${total.quantize(Decimal('0.01'), ROUND_HALF_UP):,} per hour"
    if unknown:
        return f"{text} for the types with a list price; none here for {', '.join(unknown)}."
    return f"{text} at us-east-1 on-demand list prices: an estimate, not a bill."


def instance_cap(environment: Environment | None) -> int:
    """The most instances a variant may have: each local instance is a process on this machine."""
    if environment is not None and environment.is_local:
        return settings.LOCAL_RUNTIME_MAX_INSTANCES
    return AWS_MAX_INSTANCES


def live_models(environment: Environment | None) -> models.QuerySet:
    return RegisteredModel.objects.filter(environment=environment, deleted_at__isnull=True)


# -- the step forms ---------------------------------------------------------------------------


class LinesField(forms.CharField):
    """Text with one value a line, as a list; a draft or a JSON document gives the list itself."""

    widget = forms.Textarea(attrs={"rows": 2})

    def to_python(self, value: object) -> list[str]:
        if isinstance(value, list | tuple):
            lines = [str(item) for item in value]
        else:
            lines = (super().to_python(value) or "").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def prepare_value(self, value: object) -> object:
        return "\n".join(map(str, value)) if isinstance(value, list | tuple) else value


class BasicsForm(forms.Form):
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.all(),
        to_field_name="name",
        empty_label=None,
        help_text="Where the endpoint runs; its models must be registered there.",
    )
    name = forms.CharField(
        max_length=63,
        validators=[validators.validate_resource_name],
        help_text="The name callers invoke, fixed for life, such as churn-prod.",
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES,
        initial=validators.REAL_TIME,
        widget=forms.RadioSelect(attrs={"class": "choice-list"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        environment, name = data.get("environment"), data.get("name")
        if environment and name:
            taken = Endpoint.objects.live().filter(environment=environment, name=name)
            if taken.exists():
                self.add_error(
                    "name",
                    f"{environment} already has an endpoint named {name}; choose another name, "
                    f"such as {name[:60]}-2.",
                )
        return data


class VariantForm(forms.Form):
    """One production variant of a real-time or async endpoint."""

    name = forms.CharField(
        label="Variant name",
        max_length=63,
        initial="AllTraffic",
        validators=[validators.validate_resource_name],
    )
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.none(), to_field_name="name", empty_label=None
    )
    instance_type = forms.CharField(
        max_length=40,
        initial="ml.m5.large",
        validators=[validators.validate_instance_type],
        # A datalist: the priced types as choices, and any other type typed in.
        widget=forms.TextInput(attrs={"list": "instance-types", "autocomplete": "off"}),
        help_text="Pick a listed type or type another, such as ml.m6i.large.",
    )
    instance_count = forms.IntegerField(initial=1)
    weight = forms.FloatField(
        initial=1.0,
        validators=[validators.validate_weight],
        help_text="Each variant gets its weight's share of the traffic.",
    )

    def __init__(self, *args: object, environment: Environment | None, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.environment = environment
        self.fields["model"].queryset = live_models(environment)

    def clean_instance_count(self) -> int:
        count = self.cleaned_data["instance_count"]
        validators.validate_instance_count(count, instance_cap(self.environment))
        return count


class BaseVariantFormSet(forms.BaseFormSet):
    default_error_messages = {
        "too_few_forms": "Keep at least one variant.",
        "too_many_forms": "Use at most 10 variants.",
    }

    def clean(self) -> None:
        if any(self.errors):
            return
        rows = [form.cleaned_data for form in self.forms]
        validators.validate_variants([{"VariantName": row["name"]} for row in rows])
        if not any(row["weight"] > 0 for row in rows):
            raise ValidationError(
                "Give at least one variant a weight above 0, or no traffic reaches the endpoint."
            )


VariantFormSet = forms.formset_factory(
    VariantForm,
    formset=BaseVariantFormSet,
    extra=0,
    min_num=1,
    max_num=10,
    absolute_max=10,
    validate_min=True,
    validate_max=True,
)


class ServerlessForm(forms.Form):
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.none(), to_field_name="name", empty_label=None
    )
    memory = forms.TypedChoiceField(
        label="Memory size",
        choices=[(size, f"{size // 1024} GB ({size} MB)") for size in validators.MEMORY_SIZES],
        coerce=int,
        initial=2048,
        help_text="More memory also brings more CPU.",
    )
    max_concurrency = forms.IntegerField(
        label="Maximum concurrency",
        initial=20,
        validators=[validators.validate_max_concurrency],
        help_text="Requests served at once; more are throttled.",
    )
    provisioned_concurrency = forms.IntegerField(
        label="Provisioned concurrency",
        required=False,
        help_text="Optional: copies kept warm, with no cold start, billed while provisioned.",
    )

    def __init__(self, *args: object, environment: Environment | None, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = live_models(environment)

    def clean(self) -> dict:
        data = super().clean()
        provisioned, maximum = data.get("provisioned_concurrency"), data.get("max_concurrency")
        if provisioned is not None and maximum is not None:
            try:
                validators.validate_provisioned_concurrency(provisioned, maximum)
            except ValidationError as error:
                self.add_error("provisioned_concurrency", error)
        return data


class AsyncForm(forms.Form):
    output_path = forms.CharField(
        label="S3 output path",
        max_length=512,
        validators=[validators.validate_s3_output_path],
        help_text="Where each result is written.",
    )
    failure_path = forms.CharField(
        label="S3 failure path",
        max_length=512,
        required=False,
        validators=[validators.validate_s3_output_path],
        help_text="Optional: where failed requests' errors are written.",
    )
    max_concurrent = forms.IntegerField(
        label="Concurrent invocations per instance",
        required=False,
        validators=[validators.validate_max_concurrent_invocations],
        help_text="Optional: how many queued requests an instance takes at once; blank lets "
        "SageMaker choose.",
    )
    success_topic = forms.CharField(
        label="SNS topic on success",
        required=False,
        validators=[validators.validate_sns_topic_arn],
        help_text="Optional, such as arn:aws:sns:eu-west-1:123456789012:inference-done.",
    )
    error_topic = forms.CharField(
        label="SNS topic on error",
        required=False,
        validators=[validators.validate_sns_topic_arn],
        help_text="Optional, such as arn:aws:sns:eu-west-1:123456789012:inference-failed.",
    )


class CaptureForm(forms.Form):
    enabled = forms.BooleanField(label="Capture requests and responses", required=False)
    sampling = forms.IntegerField(
        label="Sampling percentage",
        required=False,
        validators=[validators.validate_sampling_percentage],
        help_text="The share of requests captured, 0 to 100.",
    )
    destination = forms.CharField(
        label="Destination",
        max_length=512,
        required=False,
        validators=[validators.validate_capture_destination],
        help_text="The S3 folder captured data is written to.",
    )
    input = forms.BooleanField(label="Capture the input", required=False)
    output = forms.BooleanField(label="Capture the output", required=False)
    csv_types = LinesField(
        label="CSV content types",
        required=False,
        validators=[validators.validate_content_types],
        help_text="One a line, such as text/csv: captured as text.",
    )
    json_types = LinesField(
        label="JSON content types",
        required=False,
        validators=[validators.validate_content_types],
        help_text="One a line, such as application/json: captured as text.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("enabled"):
            return data
        if data.get("sampling") is None and "sampling" not in self.errors:
            self.add_error("sampling", "Give a sampling percentage from 0 to 100, such as 20.")
        if not data.get("destination") and "destination" not in self.errors:
            self.add_error("destination", "Give an S3 folder, such as s3://my-models/capture/.")
        if not data.get("input") and not data.get("output"):
            self.add_error("input", "Capture the input, the output or both.")
        return data


class AutoscalingForm(forms.Form):
    enabled = forms.BooleanField(
        label="Scale automatically (target tracking)",
        required=False,
        help_text="Off: the variants keep their instance counts.",
    )
    min = forms.IntegerField(label="Minimum instances", required=False)
    max = forms.IntegerField(label="Maximum instances", required=False)
    target = forms.FloatField(
        label="Target invocations per instance per minute",
        required=False,
        validators=[validators.validate_target_value],
    )
    scale_in_cooldown = forms.IntegerField(
        label="Scale-in cooldown (seconds)",
        required=False,
        validators=[validators.validate_cooldown],
        help_text="How long to wait after a scale-in before removing more instances.",
    )
    scale_out_cooldown = forms.IntegerField(
        label="Scale-out cooldown (seconds)",
        required=False,
        validators=[validators.validate_cooldown],
        help_text="How long to wait after a scale-out before adding more.",
    )

    def __init__(self, *args: object, kind: str, cap: int, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.kind, self.cap = kind, cap
        if kind == validators.ASYNC:
            self.fields["enabled"].label = "Scale automatically on the queue's backlog"
            self.fields["min"].help_text = "0 lets it scale to zero while the queue is empty."
            self.fields["target"].label = "Target backlog per instance"
            self.fields["target"].help_text = "Queued requests per instance to aim for."
        else:
            self.fields["min"].help_text = "At least 1: a real-time endpoint must answer."
        self.fields["max"].help_text = f"At most {cap} here."

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("enabled"):
            return data
        for name, example in (("min", 1), ("max", 4), ("target", 70)):
            if data.get(name) is None and name not in self.errors:
                self.add_error(name, f"Give a value, such as {example}.")
        if data.get("min") is not None and data.get("max") is not None:
            try:
                validators.validate_capacity(data["min"], data["max"], self.kind, self.cap)
            except ValidationError as error:
                self.add_error("min" if error.code == "invalid_minimum" else "max", error)
        return data


# -- the wizard and its draft -------------------------------------------------------------------


@dataclass
class Problem:
    """One thing wrong in a step, for the import page: where, and how to fix it."""

    step: str
    field: str
    message: str


class Wizard:
    """A user's wizard: the draft, and what its basics (or the endpoint it updates) decide."""

    def __init__(self, draft: WizardDraft):
        self.draft = draft
        self.read_basics()

    def read_basics(self) -> None:
        data = self.draft.data
        self.updating: Endpoint | None = None
        if data.get("updating"):
            self.updating = (
                Endpoint.objects.live()
                .select_related("environment")
                .filter(pk=data["updating"])
                .first()
            )
        if self.updating is not None:
            self.environment = self.updating.environment
            self.kind, self.name = self.updating.kind, self.updating.name
            return
        basics = data.get("basics") or {}
        self.environment = Environment.objects.filter(name=basics.get("environment")).first()
        kinds = [kind for kind, _ in KIND_CHOICES]
        self.kind = basics.get("kind") if basics.get("kind") in kinds else validators.REAL_TIME
        self.name = basics.get("name") or ""

    @classmethod
    def of(cls, user: object) -> "Wizard":
        draft = WizardDraft.objects.filter(user=user).first()
        return cls(draft or WizardDraft(user=user, data={}))

    @property
    def is_update(self) -> bool:
        return bool(self.draft.data.get("updating"))

    @property
    def steps(self) -> list[str]:
        steps = ["capacity"] if self.is_update else ["basics", "capacity"]
        if self.kind == validators.ASYNC:
            steps.append("async")
        if self.kind != validators.SERVERLESS:
            steps += ["capture", "autoscaling"]
        return [*steps, "review"]

    def neighbour(self, step: str, offset: int) -> str | None:
        index = self.steps.index(step) + offset
        return self.steps[index] if 0 <= index < len(self.steps) else None

    def first_missing(self, step: str) -> str | None:
        """The first step before `step` not saved yet."""
        for earlier in self.steps[: self.steps.index(step)]:
            if earlier not in self.draft.data:
                return earlier
        return None

    def defaults(self, step: str) -> dict:
        """A step's starting values, before the user saved it."""
        storage = self.environment.storage_uri if self.environment else "s3://my-models/"
        if step == "async":
            folder = f"{storage}async/{self.name or 'endpoint'}/"
            return {"output_path": f"{folder}output/", "failure_path": f"{folder}failures/"}
        if step == "capture":
            return {
                "enabled": False,
                "sampling": 20,
                "destination": f"{storage}capture/",
                "input": True,
                "output": True,
                "csv_types": ["text/csv"],
                "json_types": ["application/json"],
            }
        if step == "autoscaling":
            backlog = self.kind == validators.ASYNC
            return {
                "enabled": False,
                "min": 1,
                "max": min(4, instance_cap(self.environment)),
                "target": 5.0 if backlog else 70.0,
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            }
        return {}

    def form(self, step: str, data: dict | None = None, initial: object = None) -> object:
        """The step's form (a formset for provisioned variants), bound to `data` if given."""
        if step == "basics":
            return BasicsForm(data, initial=initial)
        if step == "capacity" and self.kind == validators.SERVERLESS:
            return ServerlessForm(data, initial=initial, environment=self.environment)
        if step == "capacity":
            return VariantFormSet(
                data,
                initial=initial,
                prefix="variant",
                form_kwargs={"environment": self.environment},
            )
        if step == "async":
            return AsyncForm(data, initial=initial)
        if step == "capture":
            return CaptureForm(data, initial=initial)
        if step == "autoscaling":
            cap = instance_cap(self.environment)
            return AutoscalingForm(data, initial=initial, kind=self.kind, cap=cap)
        raise Http404(f"No wizard step {step!r}")

    def saved_form(self, step: str) -> object:
        """The step's form bound to what the draft holds, so stale values show their errors."""
        return self.form(step, data=form_data(step, self.draft.data[step], self.kind))

    def problems(self) -> list[Problem]:
        """Every error in the saved steps, step by step; a missing step is one problem."""
        found = []
        for step in self.steps[:-1]:
            if step not in self.draft.data:
                found.append(Problem(STEP_TITLES[step], "", "This step is missing."))
                continue
            form = self.saved_form(step)
            if not form.is_valid():
                found += form_problems(STEP_TITLES[step], form)
                if step == "basics" and "environment" in form.errors:
                    break  # the other steps depend on the environment
        return found

    def first_invalid(self) -> str | None:
        for step in self.steps[:-1]:
            if step not in self.draft.data or not self.saved_form(step).is_valid():
                return step
        return None

    def save(self, step: str, values: dict) -> None:
        """Keep a valid step's values and move the draft on to the step after it."""
        data = self.draft.data
        old = data.get("basics") or {}
        if step == "basics" and old:
            moved = old.get("environment") != values["environment"]
            serverless = (old.get("kind") == validators.SERVERLESS) != (
                values["kind"] == validators.SERVERLESS
            )
            if moved or serverless:
                # Models belong to one environment, and a serverless endpoint has other steps.
                for later in DATA_STEPS[1:]:
                    data.pop(later, None)
        data[step] = values
        self.read_basics()
        self.draft.step = self.neighbour(step, 1) or "review"
        if self.draft.pk is None:  # the first step saved; another tab may have saved one too
            self.draft, _ = WizardDraft.objects.update_or_create(
                user=self.draft.user, defaults={"data": data, "step": self.draft.step}
            )
        else:
            self.draft.save()

    def spec(self) -> dict:
        """The Endpoint.spec the saved (and valid) steps describe."""
        data = self.draft.data
        names = {model.name: model.pk for model in live_models(self.environment)}
        capacity = data["capacity"]
        if self.kind == validators.SERVERLESS:
            serverless = {
                "memory": capacity["memory"],
                "max_concurrency": capacity["max_concurrency"],
            }
            if capacity.get("provisioned_concurrency"):
                serverless["provisioned_concurrency"] = capacity["provisioned_concurrency"]
            variant = {
                "name": "AllTraffic",
                "model_id": names[capacity["model"]],
                "serverless": serverless,
            }
            return {"variants": [variant]}
        spec: dict = {
            "variants": [
                {
                    "name": row["name"],
                    "model_id": names[row["model"]],
                    "instance_type": row["instance_type"],
                    "instance_count": row["instance_count"],
                    "weight": float(row["weight"]),
                }
                for row in capacity["variants"]
            ]
        }
        if self.kind == validators.ASYNC:
            spec["async"] = data["async"]
        spec["capture"] = data["capture"]
        spec["autoscaling"] = data["autoscaling"]
        return spec

    def requests(self) -> dict:
        """The exact CreateModel, CreateEndpointConfig and CreateEndpoint requests. A new
        endpoint has no id yet: its names show `<id>` where the id will be."""
        spec = self.spec()
        if self.updating is not None:
            endpoint = Endpoint(
                pk=self.updating.pk,
                environment=self.environment,
                name=self.name,
                kind=self.kind,
                spec={**self.updating.spec, **spec},
            )
            return deploy.requests(endpoint, self.updating.generation + 1)
        endpoint = Endpoint(
            pk=0, environment=self.environment, name=self.name, kind=self.kind, spec=spec
        )
        found = deploy.requests(endpoint, 1)

        def rename(name: str) -> str:
            return "portal-<id>-" + name.removeprefix("portal-0-")

        for request in found["models"]:
            request["ModelName"] = rename(request["ModelName"])
        for variant in found["config"]["ProductionVariants"]:
            variant["ModelName"] = rename(variant["ModelName"])
        found["config"]["EndpointConfigName"] = rename(found["config"]["EndpointConfigName"])
        found["endpoint"]["EndpointConfigName"] = rename(found["endpoint"]["EndpointConfigName"])
        return found

    def document(self) -> dict:
        """The draft as the JSON document the review step downloads and import reads."""
        document: dict = {"portal_wizard_version": VERSION}
        for step in DATA_STEPS:
            if step in self.draft.data:
                document[step] = self.draft.data[step]
        if self.updating is not None:
            document["basics"] = {
                "environment": self.environment.name,
                "name": self.name,
                "kind": self.kind,
            }
        if self.first_invalid() is None:
            document["requests"] = self.requests()
        return document


def form_data(step: str, values: dict, kind: str) -> dict:
    """A step's saved values as form data: a formset wants its rows and management fields."""
    if step == "capacity" and kind != validators.SERVERLESS:
        rows = values.get("variants") or []
        data: dict = {"variant-TOTAL_FORMS": len(rows), "variant-INITIAL_FORMS": 0}
        for index, row in enumerate(rows):
            for key, value in row.items():
                data[f"variant-{index}-{key}"] = value
        return data
    return dict(values)


def cleaned_values(form: object) -> dict:
    """A valid step form's data as JSON: models and environments by name."""

    def value(item: object) -> object:
        return item.name if isinstance(item, models.Model) else item

    if isinstance(form, forms.BaseFormSet):
        rows = [{key: value(item) for key, item in row.cleaned_data.items()} for row in form]
        return {"variants": rows}
    return {key: value(item) for key, item in form.cleaned_data.items()}


def form_problems(step: str, form: object) -> list[Problem]:
    """A step form's errors, each named by its field (and variant, in a formset)."""

    def of(one: forms.Form, prefix: str = "") -> list[Problem]:
        found = []
        for name, errors in one.errors.items():
            # The form's label, and the document's key it came from.
            where = prefix + f"{one[name].label} ({name})" if name in one.fields else prefix
            found += [Problem(step, where.removesuffix(" · "), message) for message in errors]
        return found

    if isinstance(form, forms.BaseFormSet):
        found = [Problem(step, "", message) for message in form.non_form_errors()]
        for index, row in enumerate(form):
            found += of(row, f"Variant {index + 1} · ")
        return found
    return of(form)


def raw_values(form: forms.Form) -> dict:
    """What a form shows, valid or not, without validating it: for adding a variant row."""
    return {name: form[name].value() for name in form.fields}


def draft_from_endpoint(endpoint: Endpoint) -> dict:
    """A wizard draft that changes `endpoint`: its spec in the steps' shape."""
    spec = endpoint.spec
    ids = [variant.get("model_id") for variant in spec.get("variants", [])]
    names = {model.pk: model.name for model in RegisteredModel.objects.filter(pk__in=ids)}
    wizard = Wizard(WizardDraft(data={"updating": endpoint.pk}))
    data: dict = {"updating": endpoint.pk}
    variants = spec.get("variants", [])
    if endpoint.kind == validators.SERVERLESS:
        variant = variants[0] if variants else {}
        serverless = variant.get("serverless", {})
        data["capacity"] = {
            "model": names.get(variant.get("model_id"), ""),
            "memory": serverless.get("memory", 2048),
            "max_concurrency": serverless.get("max_concurrency", 20),
            "provisioned_concurrency": serverless.get("provisioned_concurrency"),
        }
        return data
    data["capacity"] = {
        "variants": [
            {
                "name": variant.get("name", "AllTraffic"),
                "model": names.get(variant.get("model_id"), ""),
                "instance_type": variant.get("instance_type", ""),
                "instance_count": variant.get("instance_count", 1),
                "weight": float(variant.get("weight", 1.0)),
            }
            for variant in variants
        ]
    }
    for step in wizard.steps[1:-1]:  # async (for async endpoints), capture, autoscaling
        fields = wizard.form(step).fields
        saved = {key: value for key, value in (spec.get(step) or {}).items() if key in fields}
        data[step] = dict.fromkeys(fields) | wizard.defaults(step) | saved
    return data


# -- reading a JSON document --------------------------------------------------------------------


class DocumentError(Exception):
    """A document the wizard cannot read at all: not JSON, not a wizard document, unknown keys."""


def read_document(text: str) -> dict:
    """The steps of a wizard document, checked for shape; their values are the forms' job."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        where = (
            f" at line {error.lineno}, column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        raise DocumentError(
            f"This is not valid JSON ({getattr(error, 'msg', error)}{where}). Upload the file "
            "the review step's Download as JSON gives, or fix the JSON."
        ) from None
    if not isinstance(document, dict) or "portal_wizard_version" not in document:
        raise DocumentError(
            "This is not a wizard document: it needs a JSON object with portal_wizard_version, "
            "as Download as JSON writes it."
        )
    if document["portal_wizard_version"] != VERSION:
        raise DocumentError(
            f"This document is portal_wizard_version {document['portal_wizard_version']!r}; "
            f"this portal reads version {VERSION}."
        )
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise DocumentError(
            f"Unknown keys: {', '.join(unknown)}. A wizard document has only "
            f"portal_wizard_version, {', '.join(DATA_STEPS)} and requests."
        )
    steps = {step: document[step] for step in DATA_STEPS if step in document}
    for step, values in steps.items():
        if not isinstance(values, dict):
            raise DocumentError(f"{step}: use a JSON object of the step's fields.")
    kind = (steps.get("basics") or {}).get("kind")
    wizard = Wizard(WizardDraft(data={"basics": {"kind": kind}}))
    for step, values in steps.items():
        if step == "capacity" and wizard.kind != validators.SERVERLESS:
            check_keys("capacity", values, {"variants"})
            rows = values.get("variants", [])
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise DocumentError("capacity.variants: use a list of variant objects.")
            for index, row in enumerate(rows):
                check_keys(f"capacity.variants[{index}]", row, VariantForm.base_fields)
            continue
        fields = wizard.form(step).fields
        check_keys(step, values, fields)
        for name, value in values.items():
            # A form reads any text as a ticked box; a document must say what it means.
            if isinstance(fields[name], forms.BooleanField) and not isinstance(value, bool):
                raise DocumentError(f"{step}.{name}: use true or false.")
    return steps


def check_keys(where: str, values: dict, allowed: object) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise DocumentError(
            f"{where}: unknown keys {', '.join(unknown)}; it has {', '.join(allowed)}."
        )


# -- views -------------------------------------------------------------------------------------


def step_url(step: str) -> str:
    return reverse("endpoints:wizard_step", args=[step])


def progress(wizard: Wizard, current: str) -> list[dict]:
    return [
        {
            "title": STEP_TITLES[step],
            "url": step_url(step),
            "current": step == current,
            "done": step in wizard.draft.data,
            "reachable": wizard.first_missing(step) is None,
        }
        for step in wizard.steps
    ]


def context(wizard: Wizard, step: str, **extra: object) -> dict:
    previous = wizard.neighbour(step, -1)
    return {
        "wizard": wizard,
        "step": step,
        "title": STEP_TITLES[step],
        "progress": progress(wizard, step),
        "previous_url": step_url(previous) if previous else None,
        "serverless": wizard.kind == validators.SERVERLESS,
        **extra,
    }


def preselected_model(request: HttpRequest) -> RegisteredModel | None:
    pk = request.GET.get("model", "")
    if not (pk.isdecimal() and len(pk) <= 18):  # isdigit() passes "²", which int() refuses
        return None
    return RegisteredModel.objects.filter(pk=pk, deleted_at__isnull=True).first()


@require_http_methods(["GET", "POST"])
@role_required(Role.DEPLOYER)
def create(request: HttpRequest) -> HttpResponse:
    """Start (or resume) a new endpoint's wizard. POST discards the draft: "Start over"."""
    wizard = Wizard.of(request.user)
    model = preselected_model(request)
    query = f"?model={model.pk}" if model else ""
    if request.method == "POST":
        if wizard.draft.pk:
            wizard.draft.delete()
            messages.info(request, "The draft is discarded.")
        if wizard.updating is not None and "replace" not in request.POST:
            return redirect("endpoints:detail", pk=wizard.updating.pk)
        return redirect(step_url("basics") + query)
    if wizard.draft.pk is None:
        return redirect(step_url("basics") + query)
    if model is None and not wizard.is_update:
        return redirect(step_url(wizard.draft.step))
    start = f"deploy {model.name}" if model else "start a new endpoint"
    return replace_page(request, wizard, request.get_full_path(), start)


def replace_page(request: HttpRequest, wizard: Wizard, url: str, start: str) -> HttpResponse:
    """One draft per user: continue the unfinished one, or discard it and `start` anew."""
    values = {
        "wizard": wizard,
        "replace_url": url,
        "start": start,
        "resume_title": STEP_TITLES.get(wizard.draft.step, "first"),
    }
    return render(request, "endpoints/wizard/replace.html", values)


@require_http_methods(["GET", "POST"])
@role_required(Role.DEPLOYER)
def update(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a live endpoint's capacity, capture and autoscaling through the wizard's steps."""
    endpoint = get_object_or_404(Endpoint.objects.live(), pk=pk)
    wizard = Wizard.of(request.user)
    if request.method == "GET" and wizard.draft.pk:
        if wizard.draft.data.get("updating") == endpoint.pk:
            return redirect(step_url(wizard.draft.step))
        return replace_page(request, wizard, request.path, f"change {endpoint.name}")
    WizardDraft.objects.update_or_create(
        user=request.user, defaults={"data": draft_from_endpoint(endpoint), "step": "capacity"}
    )
    return redirect(step_url("capacity"))


@require_http_methods(["GET", "POST"])
@role_required(Role.DEPLOYER)
def wizard_step(request: HttpRequest, step: str) -> HttpResponse:
    if step not in STEP_TITLES:
        raise Http404(f"No wizard step {step!r}")
    wizard = Wizard.of(request.user)
    if wizard.is_update and wizard.updating is None:
        wizard.draft.delete()
        messages.error(request, "The endpoint this draft changed is gone; the draft is discarded.")
        return redirect("endpoints:list")
    if step not in wizard.steps:
        if wizard.kind == validators.SERVERLESS and step in ("capture", "autoscaling"):
            messages.info(request, SERVERLESS_SKIPS)
        resume = wizard.draft.step if wizard.draft.step in wizard.steps else wizard.steps[0]
        return redirect(step_url(resume))
    missing = wizard.first_missing(step)
    if missing is not None:
        return redirect(step_url(missing))
    if step == "review":
        return review(request, wizard)
    if step == "capacity":
        return capacity(request, wizard)
    model = preselected_model(request)  # from a model page's "Deploy" link, until capacity
    if request.method == "POST":
        form = wizard.form(step, data=request.POST)
        if form.is_valid():
            wizard.save(step, cleaned_values(form))
            query = f"?model={model.pk}" if model and step == "basics" else ""
            return redirect(step_url(wizard.draft.step) + query)
    elif step in wizard.draft.data:
        form = wizard.saved_form(step)
    else:
        initial = wizard.defaults(step)
        if step == "basics" and model is not None:
            initial["environment"] = model.environment.name
        form = wizard.form(step, initial=initial or None)
    return render(request, f"endpoints/wizard/{step}.html", context(wizard, step, form=form))


def capacity(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    """The models and capacity step: variant rows added and removed without JavaScript, and
    the hourly price, recomputed by htmx as the instance types and counts change."""
    serverless = wizard.kind == validators.SERVERLESS
    template = "endpoints/wizard/capacity.html"
    if request.method == "POST":
        form = wizard.form("capacity", data=request.POST)
        if request.GET.get("estimate") and not serverless:
            return render(request, template + "#price", {"estimate": estimate_of(wizard, form)})
        adding, removing = "add_variant" in request.POST, request.POST.get("remove_variant")
        if not serverless and (adding or removing):
            rows = [raw_values(row) for row in form]
            if adding and len(rows) < 10:
                rows.append(new_variant(wizard, len(rows)))
            # isdigit() would pass "²", which int() refuses; a row number has 1 or 2 digits.
            typed = removing or ""
            index = int(typed) if typed.isdecimal() and len(typed) <= 2 else -1
            if 0 <= index < len(rows) and len(rows) > 1:
                del rows[index]
            form = wizard.form("capacity", initial=rows)
        elif form.is_valid():
            wizard.save("capacity", cleaned_values(form))
            return redirect(step_url(wizard.draft.step))
    elif "capacity" in wizard.draft.data:
        form = wizard.saved_form("capacity")
    else:
        model = preselected_model(request)
        models_here = live_models(wizard.environment)
        here = model is not None and model.environment == wizard.environment
        chosen = model.name if here else None
        first = chosen or models_here.values_list("name", flat=True).first()
        if serverless:
            form = wizard.form(
                "capacity", initial={"model": first, "memory": 2048, "max_concurrency": 20}
            )
        else:
            form = wizard.form("capacity", initial=[new_variant(wizard, 0, first)])
    extra = {
        "form": form,
        "has_models": live_models(wizard.environment).exists(),
        "estimate": None if serverless else estimate_of(wizard, form),
        "prices": sorted(instance_prices().items(), key=lambda item: item[1]),
        "can_add": not serverless and len(form) < 10,
        "skips": SERVERLESS_SKIPS,
    }
    return render(request, template, context(wizard, "capacity", **extra))


def new_variant(wizard: Wizard, index: int, model: str | None = None) -> dict:
    if model is None:
        model = live_models(wizard.environment).values_list("name", flat=True).first()
    return {
        "name": "AllTraffic" if index == 0 else f"Variant{index + 1}",
        "model": model,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "weight": 1.0,
    }


def estimate_of(wizard: Wizard, formset: forms.BaseFormSet) -> str:
    pairs = [(row["instance_type"].value(), row["instance_count"].value()) for row in formset]
    return price_estimate(wizard.environment, pairs)


def review(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    invalid = wizard.first_invalid()
    if invalid is not None:
        messages.error(request, f"Check the {STEP_TITLES[invalid]} step before the review.")
        return redirect(step_url(invalid))
    if request.method == "POST":
        return finish(request, wizard)
    found = wizard.requests()
    spec = wizard.spec()
    third = "UpdateEndpoint" if wizard.updating else "CreateEndpoint"
    sections = [
        *(("CreateModel", json.dumps(request, indent=2)) for request in found["models"]),
        ("CreateEndpointConfig", json.dumps(found["config"], indent=2)),
        (third, json.dumps(found["endpoint"], indent=2)),
    ]
    variants = spec["variants"]
    models_used = deploy.variant_models(Endpoint(spec=spec))
    extra = {
        "sections": sections,
        "code": boto3_code(found, wizard.environment, bool(wizard.updating)),
        "spec": spec,
        "variant_lines": [
            describe_variant(variant, model)
            for variant, model in zip(variants, models_used, strict=True)
        ],
        "estimate": None
        if wizard.kind == validators.SERVERLESS
        else price_estimate(
            wizard.environment,
            [(variant["instance_type"], variant["instance_count"]) for variant in variants],
        ),
        "skips": SERVERLESS_SKIPS,
    }
    return render(request, "endpoints/wizard/review.html", context(wizard, "review", **extra))


def describe_variant(variant: dict, model: RegisteredModel) -> str:
    if "serverless" in variant:
        serverless = variant["serverless"]
        text = (
            f"{variant['name']}: {model.name}, {serverless['memory']} MB, "
            f"up to {serverless['max_concurrency']} at once"
        )
        if serverless.get("provisioned_concurrency"):
            text += f", {serverless['provisioned_concurrency']} kept warm"
        return text
    return (
        f"{variant['name']}: {model.name}, {variant['instance_count']} × "
        f"{variant['instance_type']}, weight {variant['weight']:g}"
    )


def finish(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    """Create the endpoint (or save the changed one) and start its deployment, in one go."""
    spec = wizard.spec()
    endpoint = wizard.updating
    if endpoint is not None:
        if endpoint.deployments.active().exists():
            messages.error(
                request, f"{endpoint.name} is still deploying; update it once it has settled."
            )
            return redirect(step_url("review"))
        with transaction.atomic():
            endpoint.spec = {**endpoint.spec, **spec}
            endpoint.save(update_fields=["spec", "updated_at"])
            deploy.start(endpoint, Deployment.Action.UPDATE, request.user)
            wizard.draft.delete()
        messages.success(request, f"Updating {endpoint.name}.")
        return redirect("endpoints:detail", pk=endpoint.pk)
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                environment=wizard.environment,
                name=wizard.name,
                kind=wizard.kind,
                spec=spec,
                created_by=request.user,
            )
            deploy.start(endpoint, Deployment.Action.CREATE, request.user)
            wizard.draft.delete()
    except IntegrityError:  # created by someone else since the review was checked
        taken = f"{wizard.environment} already has an endpoint named {wizard.name}."
        messages.error(request, taken)
        return redirect(step_url("basics"))
    messages.success(request, f"Creating {endpoint.name}.")
    return redirect("endpoints:detail", pk=endpoint.pk)


def boto3_code(found: dict, environment: Environment, updating: bool) -> str:
    """The requests as a Python snippet that makes the same calls with boto3."""
    if environment.is_local:
        client = 'boto3.client("sagemaker")  # the portal sends these to its local runtime'
    else:
        client = f'boto3.client("sagemaker", region_name="{environment.region}")'
    lines = ["import boto3", "", f"sagemaker = {client}", ""]
    calls = [("create_model", request) for request in found["models"]]
    calls += [("create_endpoint_config", found["config"])]
    calls += [("update_endpoint" if updating else "create_endpoint", found["endpoint"])]
    for method, request in calls:
        lines.append(f"sagemaker.{method}(")
        lines += [f"    {key}={python_literal(value)}," for key, value in request.items()]
        lines.append(")")
    return "\n".join(lines) + "\n"


def python_literal(value: object, depth: int = 1) -> str:
    """`value` as Python source in Black's style: on one line if it fits, else an item a line."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is also a Python string literal
    if not isinstance(value, dict | list) or not value:
        return repr(value)
    if isinstance(value, dict):
        items = [
            f"{json.dumps(key)}: {python_literal(item, depth + 1)}" for key, item in value.items()
        ]
        opening, closing = "{", "}"
    else:
        items = [python_literal(item, depth + 1) for item in value]
        opening, closing = "[", "]"
    inline = f"{opening}{', '.join(items)}{closing}"
    if "\n" not in inline and len(inline) + 4 * depth <= 80:
        return inline
    indent = "    " * (depth + 1)
    rows = "".join(f"{indent}{item},\n" for item in items)
    return f"{opening}\n{rows}{'    ' * depth}{closing}"


@require_safe
@role_required(Role.DEPLOYER)
def export(request: HttpRequest) -> HttpResponse:
    """The draft as a JSON document, with the requests it makes once every step is valid."""
    wizard = Wizard.of(request.user)
    if wizard.draft.pk is None:
        messages.info(request, "There is no draft to download yet.")
        return redirect("endpoints:create")
    response = JsonResponse(wizard.document(), json_dumps_params={"indent": 2})
    filename = f"{wizard.name or 'endpoint'}-wizard.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ImportForm(forms.Form):
    document = forms.FileField(
        required=False,
        label="Wizard document",
        help_text="A .json file from a review step's Download as JSON.",
    )
    text = forms.CharField(
        required=False,
        label="…or paste it",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("document")
        if upload is not None and upload.size > MAX_DOCUMENT_BYTES:
            raise ValidationError("This file is too large for a wizard document (over 1 MB).")
        if upload is not None:
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("This file is not UTF-8 text; upload a .json file.") from None
        if not data.get("text"):
            raise ValidationError("Choose a file or paste a wizard document.")
        return data


@require_http_methods(["GET", "POST"])
@role_required(Role.DEPLOYER)
def import_document(request: HttpRequest) -> HttpResponse:
    """Start a new endpoint from a wizard document: valid, it becomes the draft and goes to the
    review; otherwise every problem is listed and the current draft is left as it was."""
    current = Wizard.of(request.user)
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        try:
            steps = read_document(form.cleaned_data["text"])
        except DocumentError as error:
            form.add_error("text" if not request.FILES else "document", str(error))
        else:
            candidate = Wizard(WizardDraft(user=request.user, data=steps))
            problems = candidate.problems()
            if not problems:
                data = {step: steps[step] for step in candidate.steps[:-1]}
                WizardDraft.objects.update_or_create(
                    user=request.user, defaults={"data": data, "step": "review"}
                )
                messages.success(request, "The document is imported; review it below.")
                return redirect(step_url("review"))
    return render(
        request,
        "endpoints/wizard/import.html",
        {"form": form, "problems": problems, "current": current},
    )


urlpatterns = [
    path("new/", create, name="create"),
    path("new/export.json", export, name="export"),
    path("new/import/", import_document, name="import"),  # before new/<slug>: import is a slug
    path("new/<slug:step>/", wizard_step, name="wizard_step"),
    path("<int:pk>/update/", update, name="update"),
]
