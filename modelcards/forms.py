"""A form per card section, filled in over as many sittings as a writer needs.

Each form reads its fields from the current content and writes them back into a copy of it;
the copy is checked against SageMaker's schema and each problem is shown on its own field.
"""

import copy
import json

from django import forms
from django.core.exceptions import ValidationError

from endpoints.models import RegisteredModel
from environments.models import Environment
from modelcards import schema
from modelcards.models import ModelCard, Status
from modelcards.sections import SECTIONS, Field, Section, from_text, get_path, set_path, to_text


def live_models() -> "forms.QuerySet":
    return RegisteredModel.objects.filter(deleted_at__isnull=True).select_related("environment")


class ModelsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, model: RegisteredModel) -> str:
        return f"{model.name} ({model.environment.name})"


class CardCreateForm(forms.Form):
    name = forms.CharField(
        max_length=63,
        validators=ModelCard._meta.get_field("name").validators,
        help_text="Letters, digits and hyphens, like churn-classifier. Its name in SageMaker too.",
    )
    model_name = forms.CharField(
        max_length=1024, label="Model name", help_text="The name people know the model by."
    )
    models = ModelsField(
        queryset=live_models(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Registered models it describes",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["models"].queryset = live_models()

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if ModelCard.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"A card named {name} exists already; choose another name.")
        return name


class LinkModelsForm(forms.Form):
    models = ModelsField(
        queryset=live_models(), required=False, widget=forms.CheckboxSelectMultiple, label=""
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["models"].queryset = live_models()


class SectionForm(forms.Form):
    """Base of the generated section forms: `section` and `content` set by `section_form`."""

    section: Section
    note = forms.CharField(
        max_length=200,
        required=False,
        label="What changed (optional)",
        widget=forms.TextInput(attrs={"placeholder": "Added the training data sources"}),
    )

    def __init__(self, *args: object, content: dict, **kwargs: object) -> None:
        initial = {
            name(item): to_text(item, get_path(content, item.path)) for item in self.section.fields
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.content = content
        self.order_fields([*(name(item) for item in self.section.fields), "note"])

    def clean(self) -> dict:
        cleaned = super().clean()
        updated = copy.deepcopy(self.content)
        for item in self.section.fields:
            if name(item) not in cleaned:
                continue
            try:
                set_path(updated, item.path, from_text(item, cleaned[name(item)]))
            except ValidationError as error:
                self.add_error(name(item), error)
        if not self.errors:
            for problem in schema.problems(updated):
                item = field_for(self.section, problem.path)
                self.add_error(name(item) if item else None, problem_text(item, problem))
        self.updated = updated
        return cleaned


def problem_text(item: Field | None, problem: schema.Problem) -> str:
    return problem.message if item and item.path == problem.path else str(problem)


def field_for(section: Section, path: str) -> Field | None:
    for item in section.fields:
        if (
            path == item.path
            or path.startswith(f"{item.path}[")
            or path.startswith(f"{item.path}.")
        ):
            return item
    return None


def name(item: Field) -> str:
    return item.path.replace(".", "__")


def form_field(item: Field) -> forms.Field:
    common = {"label": item.label, "required": False, "help_text": item.help}
    if item.kind == "markdown":
        help_text = (item.help + " " if item.help else "") + "Markdown allowed."
        return forms.CharField(
            **common | {"help_text": help_text},
            max_length=item.max_length,
            widget=forms.Textarea(attrs={"rows": 4, "class": "prose"}),
        )
    if item.kind == "number":
        return forms.FloatField(**common, min_value=1)
    if item.kind == "choice":
        return forms.ChoiceField(**common, choices=[("", "—"), *((c, c) for c in item.choices)])
    if item.kind in {"list", "metrics", "pairs"}:
        return forms.CharField(**common, widget=forms.Textarea(attrs={"rows": 3}))
    return forms.CharField(**common, max_length=item.max_length)


def section_form(section: Section) -> type[SectionForm]:
    """The form class of one section, its fields made from the catalogue."""
    fields = {name(item): form_field(item) for item in section.fields}
    return type(
        f"{section.key.title().replace('_', '')}Form", (SectionForm,), fields | {"section": section}
    )


SECTION_FORMS = {section.key: section_form(section) for section in SECTIONS if section.fields}

METRICS_HELP = (
    'Metric groups as SageMaker writes them: <code>[{"name": "Holdout", "metric_data": '
    '[{"name": "AUC", "type": "number", "value": 0.91}]}]</code>. Types: number, string, '
    "boolean, bar_chart, linear_graph ([x, y] pairs) and matrix (rows of numbers)."
)


class EvaluationForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Such as Holdout 2026-Q3.")
    evaluation_observation = forms.CharField(
        max_length=2096,
        required=False,
        label="Observations",
        help_text="What the evaluation showed. Markdown allowed.",
        widget=forms.Textarea(attrs={"rows": 4, "class": "prose"}),
    )
    datasets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One dataset a line: a name or an s3:// URI.",
    )
    evaluation_job_arn = forms.CharField(max_length=256, required=False, label="Evaluation job ARN")
    metric_groups = forms.CharField(
        required=False,
        label="Metrics (JSON)",
        help_text=METRICS_HELP,
        widget=forms.Textarea(attrs={"rows": 12}),
    )

    @staticmethod
    def initial_for(evaluation: dict) -> dict:
        return {
            "name": evaluation.get("name", ""),
            "evaluation_observation": evaluation.get("evaluation_observation", ""),
            "datasets": "\n".join(evaluation.get("datasets", [])),
            "evaluation_job_arn": evaluation.get("evaluation_job_arn", ""),
            "metric_groups": json.dumps(evaluation["metric_groups"], indent=2)
            if evaluation.get("metric_groups")
            else "",
        }

    def clean_metric_groups(self) -> list:
        text = self.cleaned_data["metric_groups"].strip()
        if not text:
            return []
        try:
            groups = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValidationError(f"Not valid JSON: {error.msg} on line {error.lineno}.") from None
        except (ValueError, RecursionError):
            raise ValidationError("Not valid JSON: nested too deep or a number too long.") from None
        if not isinstance(groups, list):
            raise ValidationError("Write a list of metric groups: [{…}, {…}].")
        return groups

    def evaluation(self, previous: dict) -> dict:
        """The evaluation as content, keeping fields the form does not show (metadata)."""
        data = self.cleaned_data
        evaluation = {key: value for key, value in previous.items() if key == "metadata"}
        evaluation["name"] = data["name"].strip()
        for key in ("evaluation_observation", "evaluation_job_arn"):
            if data[key].strip():
                evaluation[key] = data[key].strip()
        datasets = [line.strip() for line in data["datasets"].splitlines() if line.strip()]
        if datasets:
            evaluation["datasets"] = datasets
        if data["metric_groups"]:
            evaluation["metric_groups"] = data["metric_groups"]
        return evaluation


class BaseEvaluationFormSet(forms.BaseFormSet):
    def __init__(self, *args: object, content: dict, **kwargs: object) -> None:
        self.content = content
        evaluations = content.get("evaluation_details", [])
        initial = [EvaluationForm.initial_for(evaluation) for evaluation in evaluations]
        super().__init__(*args, initial=initial, **kwargs)

    def clean(self) -> None:
        if any(self.errors):
            return
        previous = self.content.get("evaluation_details", [])
        evaluations = []
        for index, form in enumerate(self.forms):
            if not form.has_changed() and index >= len(previous):
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            old = previous[index] if index < len(previous) else {}
            evaluations.append(form.evaluation(old))
        updated = copy.deepcopy(self.content)
        set_path(updated, "evaluation_details", evaluations)
        forms_kept = [
            form
            for index, form in enumerate(self.forms)
            if not (self.can_delete and self._should_delete_form(form))
            and (form.has_changed() or index < len(previous))
        ]
        for problem in schema.problems(updated):
            position, _, rest = problem.path.removeprefix("evaluation_details[").partition("]")
            if position.isdigit() and int(position) < len(forms_kept):
                form = forms_kept[int(position)]
                field = rest.lstrip(".").split("[")[0].split(".")[0]
                field = field if field in form.fields else None
                message = (
                    problem.message
                    if field and rest.lstrip(".") == field
                    else (f"{rest.lstrip('.')}: {problem.message}" if rest else problem.message)
                )
                form.add_error(field, message)
            else:
                raise ValidationError(str(problem))
        self.updated = updated


EvaluationFormSet = forms.formset_factory(
    EvaluationForm, formset=BaseEvaluationFormSet, extra=1, can_delete=True, max_num=20
)


class NoteForm(forms.Form):
    """The version note of the evaluation section, whose fields are a formset."""

    note = forms.CharField(max_length=200, required=False, label="What changed (optional)")


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices)
    comment = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Comment (optional)",
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Model card file",
        help_text="A SageMaker model card (.json) or a Hugging Face README.md.",
    )
    name = forms.CharField(
        max_length=63,
        required=False,
        validators=ModelCard._meta.get_field("name").validators,
        help_text="The new card's name; blank: made from the model name.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name and ModelCard.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"A card named {name} exists already; choose another name.")
        return name


class PublishForm(forms.Form):
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.filter(kind=Environment.Kind.AWS), empty_label=None
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = Environment.objects.filter(kind=Environment.Kind.AWS)
