"""The card as a Hugging Face model card: README.md with YAML front matter, then Markdown.

Free text goes in the body under the Hugging Face template's headings, where people read it;
everything else (ratings, lists, metrics) rides in the front matter, under the standard keys
where Hugging Face has one (`model_name`, `datasets`, `model-index`) and under
`sagemaker_model_card` for the rest, so our own export reads back to exactly the same card.
A Hugging Face card written elsewhere is mapped heading by heading.
"""

import copy
import re

import yaml

from modelcards.sections import get_path, set_path

# Body headings, in the order written: (level, heading, content path or None for a heading
# that only groups the ones below it).
BODY = (
    (2, "Model Details", None),
    (3, "Model Description", "model_overview.model_description"),
    (2, "Uses", None),
    (3, "Purpose", "intended_uses.purpose_of_model"),
    (3, "Direct Use", "intended_uses.intended_uses"),
    (3, "Factors Affecting Performance", "intended_uses.factors_affecting_model_efficiency"),
    (3, "Why This Risk Rating", "intended_uses.explanations_for_risk_rating"),
    (2, "Business Details", None),
    (3, "Business Problem", "business_details.business_problem"),
    (3, "Business Stakeholders", "business_details.business_stakeholders"),
    (2, "Bias, Risks, and Limitations", "additional_information.ethical_considerations"),
    (3, "Recommendations", "additional_information.caveats_and_recommendations"),
    (2, "Training Details", None),
    (3, "Training Procedure", "training_details.training_observations"),
    (3, "Training Objective", "training_details.objective_function.notes"),
)
# Headings of the Hugging Face template (and a few common variants) that also carry text.
IMPORT_ALIASES = {
    "downstream use": "intended_uses.intended_uses",
    "downstream use [optional]": "intended_uses.intended_uses",
    "intended uses": "intended_uses.intended_uses",
    "intended uses & limitations": "intended_uses.intended_uses",
    "out-of-scope use": "additional_information.caveats_and_recommendations",
    "limitations": "additional_information.caveats_and_recommendations",
    "training data": "training_details.training_observations",
    "preprocessing [optional]": "training_details.training_observations",
    "training hyperparameters": "training_details.training_observations",
    "results": "evaluation",
    "summary": "evaluation",
    "evaluation": "evaluation",
    "testing data, factors & metrics": "evaluation",
}
HEADINGS = {title.lower(): path for _, title, path in BODY} | IMPORT_ALIASES
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
PLACEHOLDER = re.compile(r"<!--.*?-->|\[More Information Needed\]", re.DOTALL)
EXTRA_KEY = "sagemaker_model_card"
NOTHING_FOUND = (
    "Found nothing of a model card: no front matter and none of the usual headings "
    "(Model Description, Uses, Bias, Risks, and Limitations, Training Details)."
)


class MarkdownCardError(ValueError):
    """The file is not a model card we can read; the message says why."""


def heading_key(line: str) -> str | None:
    found = HEADING.match(line)
    return found[2].strip().lower() if found else None


def export_markdown(content: dict) -> str:
    rest = copy.deepcopy(content)
    body = []
    for level, title, path in BODY:
        text = get_path(content, path) if path else None
        # Text holding a line that looks like one of our headings would read back split in
        # two: such text stays in the front matter instead.
        if text and not any(heading_key(line) in HEADINGS for line in text.splitlines()):
            set_path(rest, path, None)
            body.append((level, title, text))
    front: dict = {}
    name = get_path(content, "model_overview.model_name")
    if name:
        front["model_name"] = name
        set_path(rest, "model_overview.model_name", None)
    datasets = get_path(content, "training_details.training_job_details.training_datasets")
    if datasets:
        front["datasets"] = list(datasets)
    front["tags"] = ["sagemaker-model-card"]
    results = model_index_results(content)
    if results:
        front["model-index"] = [{"name": name or "model", "results": results}]
    if rest:
        front[EXTRA_KEY] = rest
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {name or 'Model card'}", ""]
    written = {title for _, title, _ in body}
    for level, title, path in BODY:
        if path is None:
            below = [t for lvl, t, p in section_children(title)]
            if not any(t in written for t in below):
                continue
            lines += [f"{'#' * level} {title}", ""]
        elif title in written:
            text = next(text for _, t, text in body if t == title)
            lines += [f"{'#' * level} {title}", "", text.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def section_children(group: str) -> list[tuple[int, str, str]]:
    """The level-3 headings under a level-2 grouping heading."""
    children, inside = [], False
    for level, title, path in BODY:
        if level == 2:
            inside = title == group
        elif inside:
            children.append((level, title, path))
    return children


def model_index_results(content: dict) -> list[dict]:
    """Number metrics of each evaluation in Hugging Face's `model-index` shape."""
    results = []
    task = get_path(content, "model_overview.problem_type") or "evaluation"
    for evaluation in content.get("evaluation_details", []):
        metrics = [
            {"name": metric["name"], "type": metric["name"], "value": metric["value"]}
            for group in evaluation.get("metric_groups", [])
            for metric in group.get("metric_data", [])
            if metric.get("type") == "number"
        ]
        if metrics:
            results.append(
                {
                    "task": {"type": task},
                    "dataset": {"name": evaluation["name"], "type": evaluation["name"]},
                    "metrics": metrics,
                }
            )
    return results


def import_markdown(text: str) -> dict:
    """A README.md model card as SageMaker content. MarkdownCardError says what is wrong."""
    found = FRONT_MATTER.match(text.lstrip("\ufeff"))
    if found is None:
        if text.lstrip().startswith("---"):
            raise MarkdownCardError(
                "The YAML front matter is not closed: end it with a line holding only ---."
            )
        if not any(heading_key(line) for line in text.splitlines()):
            raise MarkdownCardError(NOTHING_FOUND)
        front, body = {}, text
    else:
        try:
            front = yaml.safe_load(found[1]) or {}
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" on line {where.line + 2}" if where is not None else ""
            raise MarkdownCardError(f"The YAML front matter is not valid YAML{line}.") from None
        if not isinstance(front, dict):
            raise MarkdownCardError("The YAML front matter must be a mapping of keys to values.")
        body = found[2]
    extra = front.get(EXTRA_KEY)
    if extra is not None and not isinstance(extra, dict):
        raise MarkdownCardError(f"{EXTRA_KEY} in the front matter must be a mapping.")
    content = copy.deepcopy(extra) if extra else from_hugging_face_keys(front)
    title, blocks = split_body(body)
    name = front.get("model_name") or title
    if name:
        set_path(content, "model_overview.model_name", str(name))
    evaluation_text = []
    for path, block in blocks:
        if path == "evaluation":
            evaluation_text.append(block)
        elif path:
            joined = "\n\n".join(filter(None, [get_path(content, path) or "", block]))
            set_path(content, path, joined)
    if evaluation_text:
        evaluations = content.setdefault("evaluation_details", [])
        if not evaluations:
            evaluations.append({"name": "Evaluation"})
        evaluations[0]["evaluation_observation"] = "\n\n".join(evaluation_text)
    if not content:
        raise MarkdownCardError(NOTHING_FOUND)
    return content


def split_body(body: str) -> tuple[str, list[tuple[str | None, str]]]:
    """The H1 title and the text under each known heading; text under an unknown heading
    stays with the known heading above it."""
    title, blocks = "", []
    path: str | None = "model_overview.model_description"  # a summary before any heading
    lines: list[str] = []
    fenced = False
    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        key = None if fenced else heading_key(line)
        if key is not None and line.startswith("# ") and not title:
            blocks.append((path, lines))
            title, lines, path = HEADING.match(line)[2].strip(), [], path
            continue
        if key is not None and key in HEADINGS:
            blocks.append((path, lines))
            path, lines = HEADINGS[key], []
            continue
        lines.append(line)
    blocks.append((path, lines))
    cleaned = []
    for block_path, block_lines in blocks:
        text = PLACEHOLDER.sub("", "\n".join(block_lines)).strip()
        if text:
            cleaned.append((block_path, text))
    return title, cleaned


def from_hugging_face_keys(front: dict) -> dict:
    """Content from a Hugging Face card's standard front-matter keys."""
    content: dict = {}
    datasets = front.get("datasets")
    if isinstance(datasets, str):
        datasets = [datasets]
    if datasets:
        set_path(
            content,
            "training_details.training_job_details.training_datasets",
            [str(name) for name in datasets],
        )
    if front.get("pipeline_tag"):
        set_path(content, "model_overview.problem_type", str(front["pipeline_tag"]))
    if front.get("library_name"):
        set_path(content, "model_overview.algorithm_type", str(front["library_name"]))
    details = {
        key: str(
            front[key] if not isinstance(front[key], list) else ", ".join(map(str, front[key]))
        )
        for key in ("license", "license_name", "license_link", "language", "base_model", "tags")
        if front.get(key)
    }
    if details:
        set_path(content, "additional_information.custom_details", details)
    evaluations = []
    for entry in front.get("model-index") or []:
        for result in (entry or {}).get("results") or []:
            dataset = (result.get("dataset") or {}).get("name") or "Evaluation"
            metrics = [
                {
                    "name": str(metric.get("name") or metric.get("type")),
                    "type": "number",
                    "value": metric["value"],
                }
                for metric in result.get("metrics") or []
                if isinstance(metric.get("value"), int | float)
                and not isinstance(metric["value"], bool)
            ]
            evaluation = {"name": str(dataset)[:63]}
            if metrics:
                evaluation["metric_groups"] = [{"name": "Results", "metric_data": metrics}]
            evaluations.append(evaluation)
    if evaluations:
        content["evaluation_details"] = evaluations
    return content
