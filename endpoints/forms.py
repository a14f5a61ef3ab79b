"""Registering a model: single container, multi-model, or up to 15 containers."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from endpoints import validators
from endpoints.models import Endpoint, RegisteredModel
from environments.models import Environment

MAX_ARCHIVE_BYTES = 4 * 1024**3


class ModelForm(forms.Form):
    """The model as a whole. Its containers come from ContainerFormSet."""

    environment = forms.ModelChoiceField(
        queryset=Environment.objects.all(),
        empty_label=None,
        help_text="Where the model will be deployed.",
    )
    name = forms.CharField(max_length=63, validators=[validators.validate_model_name])
    description = forms.CharField(max_length=300, required=False)
    kind = forms.ChoiceField(
        choices=RegisteredModel.Kind.choices,
        widget=forms.RadioSelect,
        initial=RegisteredModel.Kind.SINGLE,
    )
    inference_mode = forms.ChoiceField(
        choices=[("", "—"), *RegisteredModel.Mode.choices],
        required=False,
        label="Multi-container mode",
        help_text="Serial runs the containers as a pipeline; Direct lets the caller pick one.",
    )
    execution_role_arn = forms.CharField(
        required=False,
        max_length=2048,
        validators=[validators.validate_role_arn],
        label="Execution role",
        help_text="The role SageMaker uses to pull the image and artifacts; blank: the "
        "environment's default. Not used by the local runtime.",
    )
    subnets = forms.CharField(
        required=False,
        label="VPC subnets",
        help_text="Subnet ids, separated by commas: subnet-0abc12345.",
    )
    security_groups = forms.CharField(
        required=False, label="Security groups", help_text="Security group ids: sg-0abc12345."
    )
    network_isolation = forms.BooleanField(
        required=False, help_text="The container may make no network calls at all."
    )

    def clean_subnets(self) -> list[str]:
        ids = validators.parse_id_list(self.cleaned_data["subnets"])
        if ids:
            validators.validate_subnets(ids)
        return ids

    def clean_security_groups(self) -> list[str]:
        ids = validators.parse_id_list(self.cleaned_data["security_groups"])
        if ids:
            validators.validate_security_groups(ids)
        return ids

    def clean(self) -> dict:
        data = super().clean()
        # Here, not in clean_name: only the cleaned environment is known to be a real one.
        environment, name = data.get("environment"), data.get("name")
        taken = RegisteredModel.objects.filter(
            environment=environment, name__iexact=name, deleted_at__isnull=True
        )
        if environment and name and taken.exists():
            self.add_error("name", f"This environment already has a model named {name}.")
        if bool(data.get("subnets")) != bool(data.get("security_groups")):
            raise ValidationError("A VPC needs both subnets and security groups, or neither.")
        environment = data.get("environment")
        if (
            environment
            and environment.is_local
            and (data.get("subnets") or data.get("execution_role_arn"))
        ):
            self.add_error(None, "Roles and VPCs apply to AWS; the local runtime ignores them.")
        if data.get("kind") == RegisteredModel.Kind.MULTI_CONTAINER and not data.get(
            "inference_mode"
        ):
            self.add_error("inference_mode", "Choose Serial or Direct for a multi-container model.")
        return data


class ContainerForm(forms.Form):
    hostname = forms.CharField(
        required=False,
        max_length=63,
        validators=[validators.validate_resource_name],
        help_text="Needed for multi-container models.",
    )
    image = forms.CharField(
        max_length=255,
        error_messages={
            "required": "Give the container's image: an ECR image URI, or locally sklearn, "
            "python or llm."
        },
        help_text="An ECR image URI; locally sklearn, python or llm.",
    )
    model_data_url = forms.CharField(
        required=False,
        max_length=1024,
        label="Artifacts",
        help_text="s3://bucket/key/model.tar.gz, or for a multi-model container the folder "
        "holding the models, ending with /.",
    )
    archive = forms.FileField(
        required=False,
        label="…or upload model.tar.gz",
        help_text="The portal puts it in the environment's storage.",
    )
    environment_variables = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One KEY=value a line.",
    )

    def clean_environment_variables(self) -> dict:
        return validators.parse_environment_text(self.cleaned_data["environment_variables"])

    def clean_archive(self) -> object:
        archive = self.cleaned_data.get("archive")
        if archive and archive.size > MAX_ARCHIVE_BYTES:
            raise ValidationError("Upload at most 4 GB; put larger archives in S3 yourself.")
        if archive and archive.read(2) != b"\x1f\x8b":
            raise ValidationError("This is not a .tar.gz file (it is not gzip-compressed).")
        if archive:
            archive.seek(0)
        return archive


class BaseContainerFormSet(forms.BaseFormSet):
    default_error_messages = {"too_many_forms": "Use at most 15 containers (SageMaker's limit)."}

    def clean(self) -> None:
        if any(form.errors for form in self.forms):
            return
        filled = [form for form in self.forms if form.cleaned_data.get("image")]
        if not filled:
            raise ValidationError("Add at least one container with an image.")


ContainerFormSet = forms.formset_factory(
    ContainerForm,
    formset=BaseContainerFormSet,
    extra=0,
    min_num=1,
    max_num=15,
    validate_max=True,
)


def build_containers(model_form: ModelForm, container_forms: list[ContainerForm]) -> list[dict]:
    """The ContainerDefinitions, checked against SageMaker's rules; field errors go on the forms.
    Uploaded archives are not stored here: the view does that once everything is valid."""
    data = model_form.cleaned_data
    environment: Environment = data["environment"]
    kind = data["kind"]
    filled = [form for form in container_forms if form.cleaned_data.get("image")]
    containers = []
    for index, form in enumerate(filled):
        fields = dict(form.cleaned_data)  # add_error() below drops fields from cleaned_data
        container: dict = {}
        if fields["hostname"]:
            container["ContainerHostname"] = fields["hostname"]
        try:
            validators.validate_image(fields["image"], allow_local=environment.is_local)
        except ValidationError as error:
            form.add_error("image", error)
        container["Image"] = fields["image"]
        url = fields["model_data_url"]
        if fields.get("archive") and url:
            form.add_error("archive", "Give an S3 location or upload an archive, not both.")
        elif fields.get("archive"):
            url = f"{environment.storage_uri}models/{data['name']}/{index}/model.tar.gz"
        if kind == RegisteredModel.Kind.MULTI_MODEL:
            check = validators.validate_model_prefix
            container["Mode"] = "MultiModel"
        else:
            check = validators.validate_model_data_url
        if url:
            try:
                check(url)
                validators.s3_uri_in(url, environment.bucket, environment.prefix)
            except ValidationError as error:
                form.add_error("model_data_url", error)
            container["ModelDataUrl"] = url
        elif kind == RegisteredModel.Kind.MULTI_MODEL:
            form.add_error(
                "model_data_url",
                "A multi-model container needs the S3 folder of its "
                "models, such as s3://bucket/models/.",
            )
        if fields["environment_variables"]:
            container["Environment"] = fields["environment_variables"]
        containers.append(container)
    if kind != RegisteredModel.Kind.MULTI_CONTAINER and len(containers) > 1:
        model_form.add_error("kind", "Only a multi-container model has more than one container.")
    if kind == RegisteredModel.Kind.MULTI_CONTAINER and len(containers) < 2:
        model_form.add_error("kind", "A multi-container model has 2 to 15 containers; add one.")
    try:
        validators.validate_containers(containers, data.get("inference_mode") or "Serial")
    except ValidationError as error:
        if kind == RegisteredModel.Kind.MULTI_CONTAINER:
            model_form.add_error(None, error)
    return containers


class IdleRulesForm(forms.ModelForm):
    """An endpoint's expiry time and idle rule; both optional."""

    class Meta:
        model = Endpoint
        fields = ["expires_at", "idle_hours", "idle_action"]
        labels = {
            "expires_at": "Delete at",
            "idle_hours": "Idle hours",
            "idle_action": "Then",
        }
        widgets = {"expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}

    def clean_expires_at(self) -> object:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at and expires_at <= timezone.now():
            raise ValidationError("Pick a time in the future, or leave it empty.")
        return expires_at

    def clean(self) -> dict:
        data = super().clean()
        hours, action = data.get("idle_hours"), data.get("idle_action")
        if bool(hours) != bool(action):
            raise ValidationError(
                "An idle rule needs both the hours without invocations and what to do then."
            )
        if hours is not None and not 1 <= hours <= 24 * 30:
            self.add_error("idle_hours", "Use 1 to 720 hours (30 days).")
        return data
