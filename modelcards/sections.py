"""The card's sections and fields, in SageMaker's words and in plain ones.

One catalogue serves the section forms, the stakeholder page, the version diff and the Markdown
export, so a field has one label everywhere. Paths are dotted keys into the SageMaker content
document (`training_details.objective_function.notes`).
"""

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from modelcards.models import RISK_RATINGS


@dataclass(frozen=True)
class Field:
    path: str
    label: str
    # line: one line of text; markdown: free text, Markdown allowed; number; choice; list: one
    # item a line; metrics: `name = value | notes` a line; pairs: `name = value` a line.
    kind: str = "line"
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    summary: str
    fields: tuple[Field, ...] = field(default_factory=tuple)


SECTIONS = (
    Section(
        "model_overview",
        "Model overview",
        "What the model is, who made it and who owns it.",
        (
            Field("model_overview.model_name", "Model name", max_length=1024),
            Field(
                "model_overview.model_description",
                "Description",
                "markdown",
                1024,
                help="What the model does, in words a non-engineer understands.",
            ),
            Field("model_overview.model_owner", "Owner", max_length=1024),
            Field("model_overview.model_creator", "Creator", max_length=1024),
            Field(
                "model_overview.problem_type",
                "Problem type",
                help="Such as Binary Classification, Regression or Text Generation.",
            ),
            Field("model_overview.algorithm_type", "Algorithm", max_length=1024),
            Field("model_overview.model_version", "Model version", "number"),
            Field("model_overview.model_id", "Model ID or ARN", max_length=1024),
            Field("model_overview.model_artifact", "Model artifacts", "list", 1024),
            Field(
                "model_overview.inference_environment.container_image",
                "Inference container images",
                "list",
            ),
        ),
    ),
    Section(
        "intended_uses",
        "Intended uses",
        "What the model is for, what affects it, and how risky a wrong answer is.",
        (
            Field("intended_uses.purpose_of_model", "Purpose", "markdown", 2048),
            Field(
                "intended_uses.intended_uses",
                "Intended uses",
                "markdown",
                2048,
                help="Who uses its answers, for which decisions.",
            ),
            Field(
                "intended_uses.factors_affecting_model_efficiency",
                "Factors affecting performance",
                "markdown",
                2048,
            ),
            Field(
                "intended_uses.risk_rating", "Risk rating", "choice", choices=tuple(RISK_RATINGS)
            ),
            Field(
                "intended_uses.explanations_for_risk_rating",
                "Why this risk rating",
                "markdown",
                2048,
            ),
        ),
    ),
    Section(
        "business_details",
        "Business details",
        "The business problem it answers and who depends on it.",
        (
            Field("business_details.business_problem", "Business problem", "markdown", 2048),
            Field("business_details.business_stakeholders", "Stakeholders", "markdown", 2048),
            Field("business_details.line_of_business", "Line of business", max_length=2048),
        ),
    ),
    Section(
        "training_details",
        "Training details",
        "The data and the procedure that made the model.",
        (
            Field(
                "training_details.training_job_details.training_datasets",
                "Training datasets",
                "list",
                1024,
                help="One dataset a line: a name or an s3:// URI.",
            ),
            Field(
                "training_details.training_observations", "Training observations", "markdown", 1024
            ),
            Field(
                "training_details.objective_function.function.function",
                "Objective",
                "choice",
                choices=("Maximize", "Minimize"),
            ),
            Field(
                "training_details.objective_function.function.facet",
                "Objective facet",
                max_length=63,
                help="Such as Loss, Accuracy, RMSE, MAE or AUC.",
            ),
            Field(
                "training_details.objective_function.function.condition",
                "Objective condition",
                max_length=63,
            ),
            Field("training_details.objective_function.notes", "Objective notes", "markdown", 1024),
            Field(
                "training_details.training_job_details.training_arn",
                "Training job ARN",
                max_length=1024,
            ),
            Field(
                "training_details.training_job_details.training_environment.container_image",
                "Training container images",
                "list",
            ),
            Field(
                "training_details.training_job_details.training_metrics",
                "Training metrics",
                "metrics",
                help="One a line: <code>name = value</code>, optionally <code>| notes</code>.",
            ),
            Field(
                "training_details.training_job_details.user_provided_training_metrics",
                "Your own training metrics",
                "metrics",
                help="One a line: <code>name = value</code>, optionally <code>| notes</code>.",
            ),
            Field(
                "training_details.training_job_details.hyper_parameters",
                "Hyperparameters",
                "pairs",
                help="One a line: <code>name = value</code>.",
            ),
            Field(
                "training_details.training_job_details.user_provided_hyper_parameters",
                "Your own hyperparameters",
                "pairs",
                help="One a line: <code>name = value</code>.",
            ),
        ),
    ),
    Section(
        "evaluation_details",
        "Evaluation",
        "How well it does: each evaluation, its datasets and its metrics.",
    ),
    Section(
        "additional_information",
        "Additional information",
        "Ethics, caveats and what the model must not be used for.",
        (
            Field(
                "additional_information.ethical_considerations",
                "Ethical considerations",
                "markdown",
                2048,
                help="Bias, fairness and harm: what was checked, what remains.",
            ),
            Field(
                "additional_information.caveats_and_recommendations",
                "Caveats and recommendations",
                "markdown",
                2048,
                help="Limits, and the uses it must not be put to.",
            ),
            Field(
                "additional_information.custom_details",
                "Custom details",
                "pairs",
                help="One a line: <code>name = value</code>.",
            ),
        ),
    ),
)
SECTION_KEYS = [section.key for section in SECTIONS]
FIELDS = {item.path: item for section in SECTIONS for item in section.fields}
EVALUATION_LABELS = {
    "name": "Name",
    "evaluation_observation": "Observations",
    "evaluation_job_arn": "Evaluation job ARN",
    "datasets": "Datasets",
    "metadata": "Metadata",
    "metric_groups": "Metrics",
}


def section(key: str) -> Section:
    for candidate in SECTIONS:
        if candidate.key == key:
            return candidate
    raise KeyError(key)


# -- reading and writing paths ------------------------------------------------------------


def get_path(content: dict, path: str) -> object:
    value: object = content
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def set_path(content: dict, path: str, value: object) -> None:
    """Set a value, or remove the key when the value is empty (and any parent left empty), so
    a card never carries empty strings SageMaker would store as content."""
    keys = path.split(".")
    parents = [content]
    for key in keys[:-1]:
        parents.append(parents[-1].setdefault(key, {}))
    if is_empty(value):
        parents[-1].pop(keys[-1], None)
        for depth in range(len(keys) - 1, 0, -1):
            if parents[depth] == {}:
                parents[depth - 1].pop(keys[depth - 1], None)
    else:
        parents[-1][keys[-1]] = value


def is_empty(value: object) -> bool:
    return value is None or value == "" or value == [] or value == {}


# -- form text and content values -----------------------------------------------------------

LINE = re.compile(r"^(?P<name>[^=]+?)\s*=\s*(?P<value>.*?)(?:\s*\|\s*(?P<notes>.*))?$")


def to_text(item: Field, value: object) -> object:
    """The content value as its form field shows it."""
    if value is None:
        return ""
    if item.kind == "list":
        return "\n".join(str(entry) for entry in value)
    if item.kind == "metrics":
        lines = []
        for metric in value:
            line = f"{metric.get('name', '')} = {metric.get('value', '')}"
            if metric.get("notes"):
                line += f" | {metric['notes']}"
            lines.append(line)
        return "\n".join(lines)
    if item.kind == "pairs":
        entries = (
            value.items()
            if isinstance(value, dict)
            else [(entry.get("name", ""), entry.get("value", "")) for entry in value]
        )
        return "\n".join(f"{name} = {entry}" for name, entry in entries)
    return value


def to_display(item: Field, value: object) -> str:
    """The content value as a reader sees it: metrics as "loss: 0.21 (final)", a line each."""
    if item.kind == "metrics":
        return "\n".join(
            f"{metric.get('name', '')}: {metric.get('value', '')}"
            + (f" ({metric['notes']})" if metric.get("notes") else "")
            for metric in value or []
        )
    if item.kind == "pairs":
        return to_text(item, value).replace(" = ", ": ")
    return str(to_text(item, value))


def from_text(item: Field, text: object) -> object:
    """The form's value as content; ValidationError with a fix-it message when a line is off."""
    if item.kind == "number":
        return None if text in (None, "") else (int(text) if float(text).is_integer() else text)
    if not isinstance(text, str):
        return text
    if item.kind in {"line", "markdown", "choice"}:
        return text.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if item.kind == "list":
        return lines
    if item.kind == "metrics":
        metrics = []
        for number, line in enumerate(lines, start=1):
            found = LINE.match(line)
            try:
                value = float((found and found["value"]) or "x")
            except ValueError:
                raise ValidationError(
                    f"Line {number}, “{line}”: write name = number, like accuracy = 0.93."
                ) from None
            metric = {"name": found["name"], "value": int(value) if value.is_integer() else value}
            if found["notes"]:
                metric["notes"] = found["notes"]
            metrics.append(metric)
        return metrics
    pairs = []
    for number, line in enumerate(lines, start=1):
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValidationError(f"Line {number}, “{line}”: write name = value, like epochs = 10.")
        pairs.append((name.strip(), value.strip()))
    if item.path.endswith("custom_details"):
        return dict(pairs)
    return [{"name": name, "value": value} for name, value in pairs]
